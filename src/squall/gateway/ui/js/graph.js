// The event graph: producers -> rules -> targets, three columns of boxes joined by curves.

import { h, s } from "./dom.js";

const COL_W = 190;
const GAP = 110;
const ROW_H = 34;
const BOX_H = 24;

// A rule's producers are the sources its pattern names; without one, anything on its bus.
function producersOf(rule) {
  const source = rule.pattern && rule.pattern.source;
  const names = Array.isArray(source) ? source.filter((v) => typeof v === "string") : [];
  return names.length ? names.map((n) => `${n} (on ${rule.bus})`) : [`any source on ${rule.bus}`];
}

function targetLabel(target) {
  if (target.kind === "function") return `function ${target.function}`;
  if (target.kind === "queue") return `queue ${target.queue}`;
  if (target.kind === "bus") return `bus ${target.bus}`;
  if (target.kind === "http") return `http ${target.url || target.endpoint || ""}`;
  return target.kind;
}

function clip(text, max = 28) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function eventGraph(rules) {
  if (!rules.length) return h("p", { class: "muted" }, "no rules: events reach nothing");
  const columns = [new Map(), new Map(), new Map()];
  const edges = [];
  const node = (col, key, label, cls) => {
    if (!columns[col].has(key)) columns[col].set(key, { key, label, cls, index: columns[col].size });
    return columns[col].get(key);
  };
  for (const rule of rules) {
    const r = node(1, rule.name, `rule ${rule.name}`, `rule${rule.enabled ? "" : " disabled"}`);
    for (const p of producersOf(rule)) edges.push([node(0, p, p, "producer"), r, 0]);
    for (const t of rule.targets) {
      const label = targetLabel(t);
      edges.push([r, node(2, label, label, "target"), 1]);
    }
  }
  const rows = Math.max(...columns.map((c) => c.size));
  const width = COL_W * 3 + GAP * 2;
  const height = rows * ROW_H + 10;
  const x = (col) => col * (COL_W + GAP);
  const y = (n) => 5 + n.index * ROW_H;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width, class: "graph", role: "img", "aria-label": "event graph" });
  for (const [from, to, col] of edges) {
    const x1 = x(col) + COL_W;
    const x2 = x(col + 1);
    const y1 = y(from) + BOX_H / 2;
    const y2 = y(to) + BOX_H / 2;
    const mid = (x1 + x2) / 2;
    svg.append(s("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: "edge" }));
  }
  columns.forEach((column, col) => {
    for (const n of column.values()) {
      svg.append(
        s("g", { class: `node ${n.cls}` },
          s("title", {}, n.label),
          s("rect", { x: x(col), y: y(n), width: COL_W, height: BOX_H, rx: 4 }),
          s("text", { x: x(col) + 8, y: y(n) + 16 }, clip(n.label))),
      );
    }
  });
  return svg;
}
