// Events: what each bus did, the rules as a graph and a table, a live tail of the
// invocations events caused, and a form to publish a test event.

import { api, query } from "../api.js";
import { clear, errorBox, fmtTime, h, link, pill, pre, table } from "../dom.js";
import { eventGraph } from "../graph.js";

const TAIL_MS = 2000;

function publishForm(onSent) {
  const type = h("input", { name: "type", value: "test.ping", "aria-label": "type", required: true });
  const source = h("input", { name: "source", value: "dashboard", "aria-label": "source", required: true });
  const data = h("textarea", { name: "data", rows: 2, "aria-label": "data", spellcheck: false }, "{}");
  const out = h("div", { "aria-live": "polite" });
  return h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        clear(out);
        let payload;
        try {
          payload = JSON.parse(data.value || "null");
        } catch (err) {
          out.append(errorBox(`data is not JSON: ${err.message}`));
          return;
        }
        const id = `ui-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
        const cloudEvent = { specversion: "1.0", id, type: type.value, source: source.value, data: payload };
        try {
          await api("/events", { method: "POST", body: cloudEvent, headers: { "Content-Type": "application/cloudevents+json" } });
          out.append(h("p", { class: "muted" }, `published ${cloudEvent.id}`));
          onSent();
        } catch (err) {
          out.append(errorBox(err));
        }
      },
    },
    h("div", { class: "row" }, h("label", {}, "type ", type), h("label", {}, "source ", source)),
    h("label", { class: "stack" }, "data (JSON)", data),
    h("div", { class: "row" }, h("button", { type: "submit" }, "Publish")),
    out,
  );
}

export async function render(page) {
  const stats = h("div", {});
  const graph = h("div", {});
  const rulesBody = h("div", {});
  const tail = h("div", {});
  page.append(
    h("h1", {}, "Events"),
    h("div", { class: "columns" },
      h("section", { class: "card" }, h("h2", {}, "Buses"), stats),
      h("section", { class: "card" }, h("h2", {}, "Publish a test event"), publishForm(() => loadTail()))),
    h("section", { class: "card" }, h("h2", {}, "Producers → rules → targets"), graph),
    h("section", { class: "card" }, h("h2", {}, "Rules"), rulesBody),
    h("section", { class: "card" }, h("h2", {}, "Live tail: invocations caused by events"), tail),
  );

  const { rules } = await api("/rules");
  graph.append(eventGraph(rules));
  rulesBody.append(
    table(
      [
        { label: "name", value: (r) => r.name },
        { label: "bus", value: (r) => r.bus },
        { label: "pattern", value: (r) => pre(r.pattern) },
        { label: "targets", value: (r) => r.targets.map((t) => t.function || t.queue || t.bus || t.url || t.kind).join(", ") },
        { label: "enabled", value: (r) => (r.enabled ? "yes" : "no") },
        { label: "origin", value: (r) => r.origin },
      ],
      rules,
      { empty: "no rules" },
    ),
  );

  async function loadTail() {
    const [{ buses }, { invocations }] = await Promise.all([
      api("/buses/stats"),
      api(`/invocations${query({ limit: 200 })}`),
    ]);
    clear(stats).append(
      table(
        ["bus", "published", "duplicates", "matched", "deliveries", "looped"].map((k) => ({ label: k, value: (b) => b[k], cls: k === "bus" ? "" : "num" })),
        buses,
        { empty: "no buses" },
      ),
    );
    const caused = invocations.filter((r) => r.trigger === "event").slice(0, 50);
    clear(tail).append(
      table(
        [
          { label: "time", value: (r) => fmtTime(r.created_at) },
          { label: "function", value: (r) => link(`#/functions/${encodeURIComponent(r.function)}`, r.function) },
          { label: "status", value: (r) => pill(r.status) },
          { label: "invocation", value: (r) => h("code", {}, r.id) },
          { label: "error", value: (r) => r.error?.message || "" },
        ],
        caused,
        { empty: "no event deliveries yet" },
      ),
    );
  }
  await loadTail();
  const timer = setInterval(() => loadTail().catch(() => {}), TAIL_MS);
  return () => clearInterval(timer);
}
