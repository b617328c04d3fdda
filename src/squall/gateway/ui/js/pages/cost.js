// Cost: requests, GB-seconds and USD by function or day over a window, and budgets.

import { api, query } from "../api.js";
import { barList } from "../chart.js";
import { clear, fmtNumber, fmtTime, fmtUsd, h, table } from "../dom.js";

const WINDOWS = [
  { label: "24 hours", seconds: 86400 },
  { label: "7 days", seconds: 7 * 86400 },
  { label: "30 days", seconds: 30 * 86400 },
];

export async function render(page) {
  const by = h("select", { "aria-label": "group by" }, h("option", { value: "function" }, "by function"), h("option", { value: "day" }, "by day"));
  const windowPick = h("select", { "aria-label": "window" }, WINDOWS.map((w, i) => h("option", { value: String(i), selected: i === 1 }, w.label)));
  const body = h("div", {});
  page.append(h("div", { class: "page-head" }, h("h1", {}, "Cost"), h("div", { class: "row" }, by, windowPick)), body);
  by.addEventListener("change", load);
  windowPick.addEventListener("change", load);

  async function load() {
    const until = Date.now() / 1000;
    const since = until - WINDOWS[Number(windowPick.value)].seconds;
    const report = await api(`/cost${query({ by: by.value, since, until })}`);
    const key = report.by;
    clear(body).append(
      h("div", { class: "stat-row" },
        [["total", fmtUsd(report.total.total_usd)], ["requests", fmtNumber(report.total.requests)], ["GB-seconds", fmtNumber(report.total.gb_seconds)], ["compute", fmtUsd(report.total.compute_usd)], ["requests cost", fmtUsd(report.total.request_usd)]].map(([label, value]) =>
          h("div", { class: "stat" }, h("span", { class: "stat-value" }, value), h("span", { class: "stat-label" }, label)))),
      h("section", { class: "card" }, h("h2", {}, `Spend ${key === "day" ? "by UTC day" : "by function"}`),
        report.rows.length ? barList(report.rows.map((r) => ({ label: r[key], value: r.total_usd })), { format: fmtUsd }) : h("p", { class: "muted" }, "nothing billed in this window")),
      h("section", { class: "card" }, table(
        [
          { label: key, value: (r) => r[key] },
          { label: "requests", value: (r) => r.requests, cls: "num" },
          { label: "billed", value: (r) => `${r.billed_ms} ms`, cls: "num" },
          { label: "GB-seconds", value: (r) => fmtNumber(r.gb_seconds), cls: "num" },
          { label: "requests", value: (r) => fmtUsd(r.request_usd), cls: "num" },
          { label: "compute", value: (r) => fmtUsd(r.compute_usd), cls: "num" },
          { label: "total", value: (r) => fmtUsd(r.total_usd), cls: "num" },
        ],
        report.rows,
        { empty: "nothing billed in this window" },
      )),
      h("p", { class: "muted" }, `Prices: $${report.prices.request_usd_per_million} per million requests, $${report.prices.gb_second_usd} per GB-second.`),
      h("section", { class: "card" }, h("h2", {}, "Budgets"), table(
        [
          { label: "function", value: (b) => b.function || "whole app" },
          { label: "period", value: (b) => b.period },
          { label: "limit", value: (b) => fmtUsd(b.usd), cls: "num" },
          { label: "spent", value: (b) => fmtUsd(b.spend_usd), cls: "num" },
          { label: "since", value: (b) => fmtTime(b.period_start) },
          { label: "exceeded", value: (b) => (b.exceeded ? (b.stop ? "yes: stopped" : "yes") : "no") },
        ],
        report.budgets,
        { empty: "no budgets declared" },
      )),
    );
  }
  await load();
}
