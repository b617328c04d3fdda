// Queues and streams: depth by state, dead-letter queues with a redrive button, and each
// stream's shards and consumers.

import { api } from "../api.js";
import { clear, errorBox, h, table } from "../dom.js";

const REFRESH_MS = 3000;

function age(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 120) return `${seconds.toFixed(0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export async function render(page) {
  const queues = h("div", {});
  const status = h("div", { "aria-live": "polite" });
  const streams = h("div", {});
  page.append(
    h("h1", {}, "Queues & streams"),
    h("section", { class: "card" }, h("h2", {}, "Queues"), status, queues),
    h("section", { class: "card" }, h("h2", {}, "Streams"), streams),
  );

  async function redrive(name) {
    clear(status);
    try {
      const { total } = await api(`/queues/${encodeURIComponent(name)}/redrive`, { method: "POST", body: {} });
      status.append(h("p", { class: "notice" }, `${total} message(s) moved from ${name} back to their queues`));
    } catch (err) {
      status.append(errorBox(err));
    }
    await load();
  }

  async function load() {
    const [{ queues: rows }, { streams: logs }] = await Promise.all([api("/queues"), api("/streams")]);
    const dlqs = new Set(rows.map((q) => q.dead_letter).filter(Boolean));
    clear(queues).append(
      table(
        [
          { label: "name", value: (q) => q.name },
          { label: "type", value: (q) => (q.fifo ? "FIFO" : "standard") },
          { label: "visible", value: (q) => q.visible, cls: "num" },
          { label: "in flight", value: (q) => q.in_flight, cls: "num" },
          { label: "delayed", value: (q) => q.delayed, cls: "num" },
          { label: "oldest", value: (q) => age(q.oldest_age_s), cls: "num" },
          { label: "max receives", value: (q) => q.max_receive ?? "-", cls: "num" },
          { label: "dead letters to", value: (q) => q.dead_letter || "-" },
          { label: "", value: (q) => (dlqs.has(q.name) ? h("button", { type: "button", class: "redrive", disabled: !q.visible, onclick: () => redrive(q.name) }, "Redrive") : "") },
        ],
        rows,
        { empty: "no queues", rowProps: (q) => ({ dataset: { queue: q.name } }) },
      ),
    );
    clear(streams).append(
      table(
        [
          { label: "name", value: (st) => st.name },
          { label: "shards", value: (st) => st.shards, cls: "num" },
          { label: "records", value: (st) => st.shard_details.reduce((n, d) => n + d.records, 0), cls: "num" },
          { label: "retention", value: (st) => age(st.retention_s), cls: "num" },
          { label: "consumers", value: (st) => st.consumers.map((c) => `${c.function}#${c.shard}: ${c.behind} behind`).join("; ") || "-" },
        ],
        logs,
        { empty: "no streams" },
      ),
    );
  }
  await load();
  const timer = setInterval(() => load().catch(() => {}), REFRESH_MS);
  return () => clearInterval(timer);
}
