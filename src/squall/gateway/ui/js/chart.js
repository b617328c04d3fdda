// Hand-drawn SVG charts: lines or bars over time, with axes and a hover tooltip.

import { fmtClock, h, s } from "./dom.js";

const W = 560;
const H = 170;
const PAD = { left: 60, right: 10, top: 10, bottom: 24 };

// The top of the axis: four equal ticks of a round size (whole ones for counts).
function niceMax(value, integer) {
  if (!(value > 0)) return integer ? 4 : 1;
  const raw = value / 4;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  let tick = 10 * magnitude;
  for (const m of [1, 2, 5, 10]) {
    if (m * magnitude >= raw) {
      tick = m * magnitude;
      break;
    }
  }
  return 4 * (integer ? Math.max(1, Math.ceil(tick)) : tick);
}

// series: [{label, value: (point) => number|null, cls}]; kind: "line" or "bar".
export function timeChart({ title, points, series, format = String, kind = "line", step = 60, integer = false }) {
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const n = points.length;
  const t0 = n ? points[0].t : 0;
  const t1 = n ? points[n - 1].t + step : 1;
  const values = series.flatMap((line) => points.map(line.value)).filter((v) => v !== null);
  const yMax = niceMax(Math.max(0, ...values), integer);
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0 || 1)) * innerW;
  const y = (v) => PAD.top + innerH - (v / yMax) * innerH;
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": title,
  });
  // Axes and grid: four horizontal lines, five time labels.
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(
      s("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid-line" }),
      s("text", { x: PAD.left - 6, y: y(v) + 4, class: "axis y" }, format(v)),
    );
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    svg.append(
      s("text", { x: x(t), y: H - 6, class: "axis x", "text-anchor": anchor }, fmtClock(t)),
    );
  }
  const slot = innerW / Math.max(1, n);
  series.forEach((line, index) => {
    if (kind === "bar") {
      const width = Math.max(1, slot / series.length - 1);
      points.forEach((p) => {
        const v = line.value(p);
        if (!v) return;
        svg.append(
          s("rect", {
            x: x(p.t) + index * width,
            y: y(v),
            width,
            height: PAD.top + innerH - y(v),
            class: `bar ${line.cls}`,
          }),
        );
      });
      return;
    }
    // A line breaks where a point has no value (no invocations: no percentile).
    let d = "";
    let pen = false;
    points.forEach((p) => {
      const v = line.value(p);
      if (v === null || v === undefined) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${(x(p.t) + slot / 2).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) svg.append(s("path", { d, class: `line ${line.cls}` }));
    // Dots too: a lone point between gaps draws no line.
    points.forEach((p) => {
      const v = line.value(p);
      if (v === null || v === undefined) return;
      svg.append(s("circle", { cx: x(p.t) + slot / 2, cy: y(v), r: 2.5, class: `dot ${line.cls}` }));
    });
  });
  const cursor = s("line", { y1: PAD.top, y2: PAD.top + innerH, class: "cursor", visibility: "hidden" });
  svg.append(cursor);
  const tip = h("div", { class: "tooltip", hidden: true });
  const wrap = h(
    "figure",
    { class: "chart-card" },
    h(
      "figcaption",
      {},
      title,
      h(
        "span",
        { class: "legend" },
        series.map((line) => h("span", { class: `key ${line.cls}` }, line.label)),
      ),
    ),
    h("div", { class: "chart-area" }, svg, tip),
  );
  svg.addEventListener("mousemove", (event) => {
    if (!n) return;
    const box = svg.getBoundingClientRect();
    const px = ((event.clientX - box.left) / box.width) * W;
    const i = Math.min(n - 1, Math.max(0, Math.floor((px - PAD.left) / slot)));
    const p = points[i];
    const cx = x(p.t) + slot / 2;
    cursor.setAttribute("x1", cx);
    cursor.setAttribute("x2", cx);
    cursor.setAttribute("visibility", "visible");
    tip.replaceChildren(
      h("strong", {}, fmtClock(p.t)),
      ...series.map((line) => {
        const v = line.value(p);
        return h("div", {}, `${line.label}: ${v === null || v === undefined ? "-" : format(v)}`);
      }),
    );
    tip.hidden = false;
    const left = (cx / W) * box.width;
    tip.style.left = `${Math.min(left + 8, box.width - 140)}px`;
  });
  svg.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
  return wrap;
}

// Horizontal bars for a few labelled values (cost by function).
export function barList(rows, { format = String } = {}) {
  const max = Math.max(0, ...rows.map((r) => r.value)) || 1;
  return h(
    "div",
    { class: "bar-list" },
    rows.map((r) => {
      const bar = h("span", { class: "fill" });
      bar.style.width = `${(r.value / max) * 100}%`;
      return h(
        "div",
        { class: "bar-row" },
        h("span", { class: "label" }, r.label),
        h("span", { class: "track" }, bar),
        h("span", { class: "value" }, format(r.value)),
      );
    }),
  );
}
