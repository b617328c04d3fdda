// Dead letters: async invocations that failed for good, with redrive (run again) per letter,
// per function or all at once.

import { api, query } from "../api.js";
import { clear, errorBox, fmtTime, h, link, pre, table } from "../dom.js";

export async function render(page) {
  const filter = h("input", { type: "search", placeholder: "function", "aria-label": "function" });
  const status = h("div", { class: "action-status", "aria-live": "polite" });
  const body = h("div", {});
  const redriveAll = h("button", { type: "button", class: "redrive-all", onclick: () => redrive({ function: filter.value || undefined }) }, "Redrive all shown");
  page.append(
    h("div", { class: "page-head" }, h("h1", {}, "Dead letters"), h("div", { class: "row" }, filter, redriveAll)),
    status,
    body,
  );
  filter.addEventListener("change", load);

  async function redrive(selection) {
    clear(status);
    try {
      const { redriven } = await api("/dead-letters/redrive", { method: "POST", body: selection });
      const ids = Array.isArray(redriven) ? redriven : [];
      status.append(h("p", { class: "notice", dataset: { redriven: ids.join(" ") } }, `Redriven ${ids.length}: queued again as fresh attempts of ${ids.join(", ") || "-"}`));
    } catch (err) {
      status.append(errorBox(err));
    }
    await load();
  }

  async function load() {
    const { dead_letters: letters } = await api(`/dead-letters${query({ function: filter.value, limit: 200 })}`);
    redriveAll.disabled = !letters.length;
    clear(body).append(
      table(
        [
          { label: "function", value: (d) => link(`#/functions/${encodeURIComponent(d.function)}`, d.function) },
          { label: "invocation", value: (d) => h("code", {}, d.invocation_id) },
          { label: "failed", value: (d) => fmtTime(d.failed_at) },
          { label: "attempts", value: (d) => d.attempts, cls: "num" },
          { label: "error", value: (d) => h("details", {}, h("summary", {}, `${d.error?.condition || ""} ${d.error?.message || ""}`), pre(d.error?.traceback || d.error)) },
          { label: "payload", value: (d) => h("details", {}, h("summary", {}, "payload"), pre(d.payload)) },
          { label: "", value: (d) => h("button", { type: "button", class: "redrive", onclick: () => redrive({ ids: [d.id] }) }, "Redrive") },
        ],
        letters,
        { empty: "no dead letters", rowProps: (d) => ({ dataset: { letter: d.id, function: d.function } }) },
      ),
    );
  }
  await load();
}
