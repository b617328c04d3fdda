// Logs: search by function, level, text and age; follow new lines as they arrive.

import { api, query } from "../api.js";
import { clear, h } from "../dom.js";
import { logLines } from "../invocation.js";

const SINCE = [
  { label: "5 min", seconds: 300 },
  { label: "1 hour", seconds: 3600 },
  { label: "24 hours", seconds: 86400 },
  { label: "7 days", seconds: 7 * 86400 },
  { label: "all", seconds: null },
];
const LEVELS = ["", "debug", "info", "warning", "error", "critical"];
const FOLLOW_MS = 2000;

export async function render(page) {
  const fn = h("input", { type: "search", name: "function", placeholder: "function", "aria-label": "function" });
  const level = h("select", { name: "level", "aria-label": "level" }, LEVELS.map((l) => h("option", { value: l }, l ? `${l} and above` : "any level")));
  const grep = h("input", { type: "search", name: "grep", placeholder: "text", "aria-label": "text" });
  const since = h("select", { name: "since", "aria-label": "since" }, SINCE.map((w, i) => h("option", { value: String(i), selected: i === 1 }, w.label)));
  const follow = h("input", { type: "checkbox", name: "follow" });
  const body = h("div", {});
  let lines = [];
  let cursor = null;
  let timer = null;
  const form = h(
    "form",
    { class: "filters", onsubmit: (e) => { e.preventDefault(); search(); } },
    fn, level, grep, since,
    h("button", { type: "submit" }, "Search"),
    h("label", {}, follow, " follow"),
  );
  page.append(h("h1", {}, "Logs"), form, h("section", { class: "card" }, body));

  function filters() {
    const chosen = SINCE[Number(since.value)];
    return {
      function: fn.value,
      level: level.value,
      grep: grep.value,
      since: chosen.seconds ? Date.now() / 1000 - chosen.seconds : undefined,
    };
  }

  function show() {
    const shown = lines.slice(-1000);
    const list = logLines(shown);
    if (shown.length) {
      list.classList.add("wide");
      [...list.children].forEach((item, i) => {
        item.insertBefore(h("span", { class: "log-function" }, shown[i].function), item.lastChild);
      });
    }
    clear(body).append(h("p", { class: "muted" }, `${lines.length} line(s)`), list);
  }

  async function search() {
    const answer = await api(`/logs${query({ ...filters(), limit: 1000 })}`);
    lines = answer.logs;
    cursor = answer.next;
    show();
  }

  async function more() {
    const answer = await api(`/logs${query({ ...filters(), since: undefined, after: cursor, limit: 1000 })}`);
    if (answer.logs.length) {
      lines = lines.concat(answer.logs);
      show();
    }
    cursor = answer.next ?? cursor;
  }

  follow.addEventListener("change", () => {
    if (timer) clearInterval(timer);
    timer = follow.checked ? setInterval(() => more().catch(() => {}), FOLLOW_MS) : null;
  });
  await search();
  return () => timer && clearInterval(timer);
}
