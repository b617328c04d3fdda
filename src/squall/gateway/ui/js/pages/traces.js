// Traces: recent traces, and one trace's spans as a waterfall (across async hops too: a
// span's parent may be in another invocation).

import { api, hasPath, query } from "../api.js";
import { clear, fmtMs, fmtTime, h, link, pill, pre, table } from "../dom.js";

export async function render(page, params) {
  if (!(await hasPath("/traces"))) {
    page.append(
      h("h1", {}, "Traces"),
      h("p", { class: "notice", dataset: { unavailable: "traces" } }, "Traces are not available on this gateway: it serves no /api/v1/traces."),
    );
    return undefined;
  }
  if (params.length) return waterfall(page, params[0]);
  return list(page);
}

async function list(page) {
  const fn = h("input", { type: "search", placeholder: "function", "aria-label": "function" });
  const body = h("div", {});
  let cursor = null;
  const older = h("button", { type: "button", class: "secondary", hidden: true, onclick: () => load(cursor) }, "Older traces");
  page.append(h("div", { class: "page-head" }, h("h1", {}, "Traces"), fn), h("section", { class: "card" }, body, older));
  fn.addEventListener("change", () => load());

  async function load(before) {
    let answer;
    try {
      answer = await api(`/traces${query({ limit: 50, function: fn.value, before })}`);
    } catch (err) {
      if (err.status === 404) {
        clear(body).append(h("p", { class: "notice" }, "Traces are not available on this gateway."));
        return;
      }
      throw err;
    }
    cursor = answer.next;
    older.hidden = !cursor;
    const rows = table(
      [
        { label: "trace", value: (t) => link(`#/traces/${encodeURIComponent(t.trace_id)}`, t.name || t.trace_id) },
        { label: "started", value: (t) => fmtTime(t.start) },
        { label: "duration", value: (t) => fmtMs(t.duration_ms), cls: "num" },
        { label: "spans", value: (t) => t.spans, cls: "num" },
        { label: "status", value: (t) => pill(t.error ? "error" : "ok") },
        { label: "functions", value: (t) => (t.functions || []).join(", ") },
      ],
      answer.traces,
      { empty: "no traces yet" },
    );
    if (before) body.append(rows);
    else clear(body).append(rows);
  }
  await load();
}

// Depth-first from the roots, children by start time; spans whose parent is not in the
// trace count as roots.
function ordered(spans) {
  const ids = new Set(spans.map((sp) => sp.span_id));
  const children = new Map();
  for (const sp of spans) {
    const parent = sp.parent_id && ids.has(sp.parent_id) ? sp.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(sp);
  }
  for (const list of children.values()) list.sort((a, b) => a.start - b.start);
  const out = [];
  const walk = (parent, depth) => {
    for (const sp of children.get(parent) || []) {
      out.push({ span: sp, depth });
      walk(sp.span_id, depth + 1);
    }
  };
  walk(null, 0);
  return out;
}

async function waterfall(page, traceId) {
  const trace = await api(`/traces/${encodeURIComponent(traceId)}`);
  const spans = trace.spans;
  const detail = h("div", {}, h("p", { class: "muted" }, "click a span for its attributes and events"));
  page.append(h("div", { class: "page-head" }, h("h1", {}, `Trace ${traceId}`), link("#/traces", "all traces")));
  if (!spans.length) {
    page.append(h("p", { class: "muted" }, "this trace has no spans"));
    return undefined;
  }
  const t0 = Math.min(...spans.map((sp) => sp.start));
  const t1 = Math.max(...spans.map((sp) => sp.end ?? sp.start), t0 + 0.000001);
  const total = t1 - t0;
  const rows = ordered(spans).map(({ span, depth }) => {
    const bar = h("span", { class: `tl-bar ${span.status}` });
    bar.style.left = `${((span.start - t0) / total) * 100}%`;
    bar.style.width = `${Math.max(0.3, (((span.end ?? span.start) - span.start) / total) * 100)}%`;
    const name = h("span", { class: "tl-name", title: `${span.kind} ${span.name}` }, h("span", { class: "muted" }, span.kind, " "), span.name);
    name.style.paddingLeft = `${depth * 14}px`;
    return h(
      "div",
      {
        class: "tl-row selectable span",
        dataset: { span: span.span_id, status: span.status },
        onclick: () => clear(detail).append(
          h("h2", {}, span.name, " ", pill(span.status)),
          h("p", { class: "muted" }, `${span.kind} span ${span.span_id}, parent ${span.parent_id || "none"}: starts at +${fmtMs((span.start - t0) * 1000)}, lasts ${fmtMs(((span.end ?? span.start) - span.start) * 1000)}`),
          h("div", { class: "columns" }, h("div", {}, h("h4", {}, "Attributes"), pre(span.attributes || {})), h("div", {}, h("h4", {}, "Events"), pre(span.events || [])))),
      },
      name,
      h("span", { class: "tl-track" }, bar),
      h("span", { class: "tl-dur" }, fmtMs(((span.end ?? span.start) - span.start) * 1000)),
    );
  });
  page.append(
    h("section", { class: "card" },
      h("div", { class: "timeline waterfall" },
        h("div", { class: "tl-row head" }, h("span", {}, `${spans.length} spans`), h("span", {}, `0 → ${fmtMs(total * 1000)}`), h("span", { class: "tl-dur" }, "duration")),
        rows)),
    h("section", { class: "card" }, detail),
  );
  return undefined;
}
