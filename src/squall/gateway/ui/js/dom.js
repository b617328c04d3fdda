// A tiny render helper and formatters. Text always goes in as text nodes, never as HTML,
// so nothing the API returns can inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, props, children) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.setAttribute("class", value);
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (name in el && !(el instanceof SVGElement)) el[name] = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

export function s(tag, props, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

export function table(columns, rows, { empty = "nothing yet", rowProps } = {}) {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h(
    "table",
    { class: "grid" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.cls }, c.label)))),
    h(
      "tbody",
      {},
      rows.map((row) =>
        h(
          "tr",
          rowProps ? rowProps(row) : {},
          columns.map((c) => h("td", { class: c.cls }, c.value(row))),
        ),
      ),
    ),
  );
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, err && err.message ? err.message : String(err));
}

export function pill(status) {
  return h("span", { class: `pill ${String(status).replace(/[^a-z_]/g, "")}` }, status);
}

export function pre(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return h("pre", { class: "code" }, text);
}

export function fmtTime(epoch) {
  if (epoch === null || epoch === undefined) return "-";
  const d = new Date(epoch * 1000);
  return d.toLocaleString(undefined, { hour12: false });
}

export function fmtClock(epoch) {
  if (epoch === null || epoch === undefined) return "-";
  return new Date(epoch * 1000).toLocaleTimeString(undefined, { hour12: false });
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "-";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`;
}

export function fmtUsd(usd) {
  if (usd === null || usd === undefined) return "-";
  if (usd !== 0 && Math.abs(usd) < 0.001) return `$${usd.toExponential(1)}`;
  if (usd !== 0 && Math.abs(usd) < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

export function fmtNumber(n) {
  if (n === null || n === undefined) return "-";
  if (Math.abs(n) >= 1000) return n.toLocaleString();
  return Number.isInteger(n) ? String(n) : n.toPrecision(3);
}

export function link(href, text) {
  return h("a", { href }, text);
}
