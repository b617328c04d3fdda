// Functions: the list, and one function's config, versions, instances, invoke form and
// recent invocations with their logs.

import { api, query, request } from "../api.js";
import { clear, errorBox, fmtMs, fmtTime, h, link, pill, table } from "../dom.js";
import { invocationView, settledRecord } from "../invocation.js";

const REFRESH_MS = 3000;

export async function render(page, params) {
  if (params.length) return detail(page, params[0]);
  return list(page);
}

async function list(page) {
  const body = h("div", {});
  page.append(h("h1", {}, "Functions"), body);
  async function load() {
    const { functions } = await api("/functions");
    clear(body).append(
      table(
        [
          { label: "name", value: (f) => link(`#/functions/${encodeURIComponent(f.name)}`, f.name) },
          { label: "memory", value: (f) => `${f.memory_mb} MB`, cls: "num" },
          { label: "timeout", value: (f) => `${f.timeout_s} s`, cls: "num" },
          { label: "concurrency", value: (f) => f.concurrency, cls: "num" },
          { label: "retries", value: (f) => f.retries, cls: "num" },
          { label: "warm", value: (f) => f.stats.warm, cls: "num" },
          { label: "busy", value: (f) => f.stats.busy, cls: "num" },
          { label: "cold starts", value: (f) => f.stats.cold_starts, cls: "num" },
          { label: "description", value: (f) => f.description || "" },
        ],
        functions,
        { empty: "the app has no functions" },
      ),
    );
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}

const CONFIG_FIELDS = [
  "memory_mb", "timeout_s", "concurrency", "min_instances", "keep_alive_s", "retries",
  "max_event_age_s", "on_success", "on_failure", "dead_letter", "is_async", "has_init",
  "permissions", "secrets",
];

function configView(fn) {
  return h(
    "dl",
    { class: "facts" },
    CONFIG_FIELDS.map((field) => {
      const value = fn[field];
      const text = Array.isArray(value) ? value.join(", ") || "-" : value === null ? "-" : String(value);
      return [h("dt", {}, field), h("dd", {}, text)];
    }),
  );
}

function instancesView(stats) {
  return h(
    "div",
    { class: "stat-row" },
    ["warm", "busy", "starting", "cold_starts"].map((k) =>
      h("div", { class: "stat", dataset: { stat: k } }, h("span", { class: "stat-value" }, stats[k]), h("span", { class: "stat-label" }, k.replace("_", " "))),
    ),
  );
}

function versionsView(invocations) {
  const versions = new Map();
  for (const r of invocations) {
    const v = versions.get(r.version) || { version: r.version, count: 0, last: 0 };
    v.count += 1;
    v.last = Math.max(v.last, r.created_at);
    versions.set(r.version, v);
  }
  return table(
    [
      { label: "version", value: (v) => h("code", {}, v.version) },
      { label: "recent invocations", value: (v) => v.count, cls: "num" },
      { label: "last invoked", value: (v) => fmtTime(v.last) },
    ],
    [...versions.values()].sort((a, b) => b.last - a.last),
    { empty: "not invoked yet" },
  );
}

function invokeForm(name, onDone) {
  const payload = h("textarea", { name: "payload", rows: 4, spellcheck: false, "aria-label": "payload" }, "{}");
  const mode = h(
    "select",
    { name: "mode", "aria-label": "mode" },
    h("option", { value: "sync" }, "sync (wait for the result)"),
    h("option", { value: "async" }, "async (queued)"),
  );
  const out = h("div", { class: "invoke-output", "aria-live": "polite" });
  const button = h("button", { type: "submit" }, "Invoke");
  const form = h(
    "form",
    {
      class: "invoke-form",
      onsubmit: async (event) => {
        event.preventDefault();
        clear(out);
        let body;
        try {
          body = JSON.stringify(JSON.parse(payload.value || "null"));
        } catch (err) {
          out.append(errorBox(`The payload is not JSON: ${err.message}`));
          return;
        }
        button.disabled = true;
        out.append(h("p", { class: "muted" }, "invoking…"));
        try {
          const headers = mode.value === "async" ? { "X-Squall-Invocation-Type": "Event" } : {};
          const answer = await request(`/functions/${encodeURIComponent(name)}/invoke`, {
            method: "POST",
            body,
            headers,
          });
          const id = answer.headers.get("x-squall-invocation-id") || answer.data?.invocation_id;
          if (!id) throw new Error(answer.data?.error?.message || `HTTP ${answer.status}`);
          const record = await settledRecord(id);
          clear(out).append(invocationView(record));
          onDone();
        } catch (err) {
          clear(out).append(errorBox(err));
        } finally {
          button.disabled = false;
        }
      },
    },
    h("label", { class: "stack" }, "Payload (JSON)", payload),
    h("div", { class: "row" }, mode, button),
  );
  return h("div", {}, form, out);
}

async function detail(page, name) {
  const fn = await api(`/functions/${encodeURIComponent(name)}`);
  const instances = h("div", {});
  const versions = h("div", {});
  const recent = h("div", {});
  page.append(
    h("div", { class: "page-head" }, h("h1", {}, `Function ${fn.name}`), fn.description ? h("span", { class: "muted" }, fn.description) : null),
    h(
      "div",
      { class: "columns" },
      h("section", { class: "card" }, h("h2", {}, "Configuration"), configView(fn)),
      h(
        "section",
        { class: "card" },
        h("h2", {}, "Instances"),
        instances,
        h("h2", {}, "Versions"),
        versions,
      ),
      h("section", { class: "card" }, h("h2", {}, "Invoke"), invokeForm(fn.name, () => load())),
    ),
    h("section", { class: "card" }, h("h2", {}, "Recent invocations"), recent),
  );

  async function toggle(row, id) {
    const next = row.nextElementSibling;
    if (next && next.classList.contains("expanded")) {
      next.remove();
      return;
    }
    const cell = h("td", { colSpan: 7 }, h("p", { class: "muted" }, "loading…"));
    row.after(h("tr", { class: "expanded" }, cell));
    const record = await api(`/invocations/${encodeURIComponent(id)}`);
    clear(cell).append(invocationView(record));
  }

  async function load() {
    const [current, { invocations }] = await Promise.all([
      api(`/functions/${encodeURIComponent(name)}`),
      api(`/invocations${query({ function: name, limit: 50 })}`),
    ]);
    clear(instances).append(instancesView(current.stats));
    clear(versions).append(versionsView(invocations));
    if (recent.querySelector("tr.expanded")) return; // keep what the reader opened
    clear(recent).append(
      table(
        [
          { label: "id", value: (r) => h("button", { class: "link", type: "button", onclick: (e) => toggle(e.target.closest("tr"), r.id) }, r.id) },
          { label: "status", value: (r) => pill(r.status) },
          { label: "trigger", value: (r) => r.trigger },
          { label: "created", value: (r) => fmtTime(r.created_at) },
          { label: "duration", value: (r) => fmtMs(r.duration_ms), cls: "num" },
          { label: "cold", value: (r) => (r.cold ? "cold" : ""), },
          { label: "error", value: (r) => (r.error ? r.error.message : "") },
        ],
        invocations,
        { empty: "no invocations yet" },
      ),
    );
  }

  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
