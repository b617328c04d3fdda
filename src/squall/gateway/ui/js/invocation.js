// One invocation shown in full: status, timing, result or error, and its captured logs.

import { api } from "./api.js";
import { fmtMs, fmtTime, h, pill, pre } from "./dom.js";

export const FINISHED = new Set(["succeeded", "failed", "dead_lettered"]);

export function logLines(lines) {
  if (!lines.length) return h("p", { class: "muted" }, "no log lines");
  return h(
    "ol",
    { class: "logs" },
    lines.map((line) =>
      h(
        "li",
        { class: `log ${line.level}` },
        h("span", { class: "log-time" }, fmtTime(line.time)),
        h("span", { class: "log-level" }, line.level),
        h("span", { class: "log-message" }, line.message),
      ),
    ),
  );
}

export function invocationView(record) {
  const facts = [
    ["status", pill(record.status)],
    ["id", h("code", {}, record.id)],
    ["trigger", record.trigger],
    ["version", record.version],
    ["attempt", record.attempt],
    ["created", fmtTime(record.created_at)],
    ["duration", fmtMs(record.duration_ms)],
    ["billed", record.billed_ms === null ? "-" : `${record.billed_ms} ms`],
    ["cold start", record.cold === null ? "-" : record.cold ? `yes (init ${fmtMs(record.init_ms)})` : "no"],
    ["peak memory", record.peak_rss_kb ? `${(record.peak_rss_kb / 1024).toFixed(1)} MB` : "-"],
  ];
  return h(
    "div",
    { class: "invocation", dataset: { invocation: record.id } },
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    record.error
      ? h("div", { class: "result error-result" }, h("h4", {}, "Error"), pre(record.error.traceback || record.error.message))
      : h("div", { class: "result" }, h("h4", {}, "Result"), pre(record.result === undefined ? null : record.result)),
    h("div", { class: "invocation-logs" }, h("h4", {}, "Logs"), logLines(record.logs || [])),
  );
}

// The record of an invocation that has (or soon will have) finished: a sync call's record is
// committed just after it answers, an async one runs when a worker takes it.
export async function settledRecord(id, { timeoutMs = 30000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let record = null;
    try {
      record = await api(`/invocations/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
    }
    if (record && FINISHED.has(record.status)) return record;
    if (Date.now() > deadline) return record;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
