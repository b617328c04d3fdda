// Workflows: the app's workflows, their runs, and one run's step timeline.

import { api, query } from "../api.js";
import { clear, errorBox, fmtMs, fmtTime, h, link, pill, pre, table } from "../dom.js";

const STATUSES = ["", "pending", "running", "sleeping", "waiting", "completed", "failed", "compensated", "compensation_failed", "cancelled"];
const REFRESH_MS = 3000;

export async function render(page, params) {
  if (params[0] === "runs" && params[1]) return run(page, params[1]);
  return runs(page);
}

async function runs(page) {
  const { workflows } = await api("/workflows");
  const workflow = h("select", { "aria-label": "workflow" }, h("option", { value: "" }, "all workflows"), workflows.map((w) => h("option", { value: w.name }, w.name)));
  const status = h("select", { "aria-label": "status" }, STATUSES.map((s) => h("option", { value: s }, s || "any status")));
  const body = h("div", {});
  let cursor = null;
  const older = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(cursor) }, "Older runs");
  page.append(
    h("h1", {}, "Workflows"),
    h("section", { class: "card" }, h("h2", {}, "Workflows"), table(
      [
        { label: "name", value: (w) => w.name },
        { label: "step retries", value: (w) => w.step_retries, cls: "num" },
        { label: "step backoff", value: (w) => `${w.step_backoff_s} s`, cls: "num" },
        { label: "run retries", value: (w) => w.run_retries, cls: "num" },
        { label: "description", value: (w) => w.description },
      ],
      workflows,
      { empty: "the app has no workflows" },
    )),
    h("section", { class: "card" }, h("div", { class: "filters" }, h("h2", {}, "Runs"), workflow, status), body, older),
  );
  workflow.addEventListener("change", () => load());
  status.addEventListener("change", () => load());

  async function load(before) {
    const answer = await api(`/workflows/runs${query({ workflow: workflow.value, status: status.value, limit: 50, cursor: before })}`);
    cursor = answer.next_cursor;
    older.hidden = !cursor;
    const rows = table(
      [
        { label: "run", value: (r) => link(`#/workflows/runs/${encodeURIComponent(r.id)}`, r.id) },
        { label: "workflow", value: (r) => r.workflow },
        { label: "status", value: (r) => pill(r.status) },
        { label: "created", value: (r) => fmtTime(r.created_at) },
        { label: "updated", value: (r) => fmtTime(r.updated_at) },
        { label: "replays", value: (r) => r.replays, cls: "num" },
        { label: "error", value: (r) => r.error?.message || "" },
      ],
      answer.runs,
      { empty: "no runs" },
    );
    if (before) body.append(rows);
    else clear(body).append(rows);
  }
  await load();
}

function timeline(run, steps) {
  const times = steps.flatMap((s) => [s.started_at, s.ended_at, s.wake_at]).filter((t) => t);
  const t0 = Math.min(run.created_at, ...times);
  const t1 = Math.max(run.updated_at, ...times, t0 + 0.001);
  const span = t1 - t0;
  return h(
    "div",
    { class: "timeline" },
    h("div", { class: "tl-row head" }, h("span", {}, "step"), h("span", {}, `0 → ${fmtMs(span * 1000)}`), h("span", { class: "tl-dur" }, "duration")),
    steps.map((step) => {
      const start = step.started_at ?? t0;
      const end = step.ended_at ?? (step.status === "completed" || step.status === "failed" ? start : t1);
      const bar = h("span", { class: `tl-bar ${step.status}`, title: `${step.kind} ${step.name}: ${step.status}` });
      bar.style.left = `${((start - t0) / span) * 100}%`;
      bar.style.width = `${Math.max(0.3, ((end - start) / span) * 100)}%`;
      const duration = step.ended_at && step.started_at ? fmtMs((step.ended_at - step.started_at) * 1000) : step.status;
      return h(
        "div",
        { class: "tl-row step", dataset: { step: step.name, status: step.status } },
        h("span", { class: "tl-name" }, h("span", { class: "muted" }, `${step.seq}. ${step.kind} `), step.name, " ", pill(step.status), step.attempts > 1 ? h("span", { class: "muted" }, ` ×${step.attempts}`) : null),
        h("span", { class: "tl-track" }, bar),
        h("span", { class: "tl-dur" }, duration),
      );
    }),
  );
}

async function run(page, id) {
  const head = h("div", {});
  const body = h("div", {});
  const cancel = h("button", { type: "button", class: "danger", onclick: async () => {
    try {
      await api(`/workflows/runs/${encodeURIComponent(id)}/cancel`, { method: "POST", body: {} });
      await load();
    } catch (err) {
      head.append(errorBox(err));
    }
  } }, "Cancel run");
  page.append(h("div", { class: "page-head" }, h("h1", {}, `Run ${id}`), cancel), head, body);
  const ENDED = new Set(["completed", "failed", "compensated", "compensation_failed", "cancelled"]);
  let timer = null;

  async function load() {
    const [info, history] = await Promise.all([
      api(`/workflows/runs/${encodeURIComponent(id)}`),
      api(`/workflows/runs/${encodeURIComponent(id)}/history`),
    ]);
    cancel.hidden = ENDED.has(info.status);
    clear(head).append(
      h("section", { class: "card columns" },
        h("dl", { class: "facts" },
          [["workflow", info.workflow], ["status", pill(info.status)], ["created", fmtTime(info.created_at)], ["updated", fmtTime(info.updated_at)], ["replays", info.replays], ["failures", info.failures]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
        h("div", {}, h("h4", {}, "Input"), pre(info.input)),
        h("div", {}, h("h4", {}, info.error ? "Error" : "Result"), pre(info.error || info.result)),
      ),
    );
    clear(body).append(h("section", { class: "card" }, h("h2", {}, "Steps"), history.steps.length ? timeline(info, history.steps) : h("p", { class: "muted" }, "no steps yet")));
    if (ENDED.has(info.status) && timer) {
      clearInterval(timer);
      timer = null;
    }
  }
  await load();
  timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => timer && clearInterval(timer);
}
