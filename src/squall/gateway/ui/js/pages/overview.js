// Overview: invocations, errors, cold starts, p50/p99 and cost over a window, per function.

import { api, query } from "../api.js";
import { timeChart } from "../chart.js";
import { clear, fmtMs, fmtNumber, fmtUsd, h, link, table } from "../dom.js";

const WINDOWS = [
  { label: "15 min", seconds: 900, step: 15 },
  { label: "1 hour", seconds: 3600, step: 60 },
  { label: "6 hours", seconds: 6 * 3600, step: 300 },
  { label: "24 hours", seconds: 86400, step: 1200 },
  { label: "7 days", seconds: 7 * 86400, step: 3 * 3600 },
];
const REFRESH_MS = 10000;

export async function render(page) {
  let chosen = WINDOWS[1];
  const picker = h(
    "select",
    { "aria-label": "window", onchange: () => { chosen = WINDOWS[picker.selectedIndex]; load(); } },
    WINDOWS.map((w) => h("option", { selected: w === chosen }, w.label)),
  );
  const totals = h("div", { class: "stat-row totals" });
  const charts = h("div", { class: "charts" });
  const perFunction = h("div", {});
  page.append(
    h("div", { class: "page-head" }, h("h1", {}, "Overview"), h("label", {}, "Window ", picker)),
    totals,
    charts,
    h("h2", {}, "Functions"),
    perFunction,
  );

  async function load() {
    const until = Date.now() / 1000;
    const since = Math.floor((until - chosen.seconds) / chosen.step) * chosen.step;
    const params = { since, until, step: chosen.step };
    const [series, summary] = await Promise.all([
      api(`/metrics/series${query(params)}`),
      api(`/metrics/summary${query({ since, until })}`),
    ]);
    const points = series.points;
    const step = series.step;
    const count = (v) => fmtNumber(Math.round(v));
    const sum = (key) => points.reduce((n, p) => n + p[key], 0);
    const invocations = sum("invocations");
    const errors = sum("errors");
    clear(totals).append(
      ...[
        ["invocations", fmtNumber(invocations)],
        ["errors", fmtNumber(errors)],
        ["error rate", invocations ? `${((errors / invocations) * 100).toFixed(1)}%` : "-"],
        ["cold starts", fmtNumber(sum("cold_starts"))],
        ["cost", fmtUsd(sum("cost_usd"))],
      ].map(([label, value]) =>
        h("div", { class: "stat", dataset: { stat: label } }, h("span", { class: "stat-value" }, value), h("span", { class: "stat-label" }, label)),
      ),
    );
    clear(charts).append(
      timeChart({
        title: "Invocations",
        points,
        step,
        kind: "bar",
        integer: true,
        format: count,
        series: [
          { label: "invocations", value: (p) => p.invocations, cls: "s1" },
          { label: "errors", value: (p) => p.errors, cls: "s-err" },
        ],
      }),
      timeChart({
        title: "Cold starts",
        points,
        step,
        kind: "bar",
        integer: true,
        format: count,
        series: [{ label: "cold starts", value: (p) => p.cold_starts, cls: "s2" }],
      }),
      timeChart({
        title: "Duration",
        points,
        step,
        format: fmtMs,
        series: [
          { label: "p50", value: (p) => p.p50_ms, cls: "s1" },
          { label: "p99", value: (p) => p.p99_ms, cls: "s3" },
        ],
      }),
      timeChart({
        title: "Cost",
        points,
        step,
        kind: "bar",
        format: fmtUsd,
        series: [{ label: "USD", value: (p) => p.cost_usd, cls: "s4" }],
      }),
    );
    clear(perFunction).append(
      table(
        [
          { label: "function", value: (r) => link(`#/functions/${encodeURIComponent(r.function)}`, r.function) },
          { label: "invocations", value: (r) => r.invocations, cls: "num" },
          { label: "errors", value: (r) => r.errors, cls: "num" },
          { label: "error rate", value: (r) => `${(r.error_rate * 100).toFixed(1)}%`, cls: "num" },
          { label: "throttles", value: (r) => r.throttles, cls: "num" },
          { label: "cold starts", value: (r) => r.cold_starts, cls: "num" },
          { label: "p50", value: (r) => fmtMs(r.p50_ms), cls: "num" },
          { label: "p99", value: (r) => fmtMs(r.p99_ms), cls: "num" },
        ],
        summary.functions,
        { empty: "no functions" },
      ),
    );
  }

  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
