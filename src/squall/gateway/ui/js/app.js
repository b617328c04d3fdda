// The dashboard's entry: sign-in, then hash routing to one page module at a time.

import { ApiError, forgetKey, getKey, request, setKey, whenUnauthorized } from "./api.js";
import { clear, errorBox, h } from "./dom.js";

// "#/functions/hello" -> the page "functions" with params ["hello"].
const PAGES = {
  overview: () => import("./pages/overview.js"),
  functions: () => import("./pages/functions.js"),
  events: () => import("./pages/events.js"),
  queues: () => import("./pages/queues.js"),
  "dead-letters": () => import("./pages/deadletters.js"),
  workflows: () => import("./pages/workflows.js"),
  traces: () => import("./pages/traces.js"),
  logs: () => import("./pages/logs.js"),
  cost: () => import("./pages/cost.js"),
};

const view = document.getElementById("view");
const nav = document.getElementById("nav");
const signIn = document.getElementById("sign-in");
const signInError = document.getElementById("sign-in-error");
const signOut = document.getElementById("sign-out");
let cleanup = null;
let generation = 0;

function showSignIn(message) {
  stopPage();
  forgetKey();
  view.hidden = true;
  nav.hidden = true;
  signOut.hidden = true;
  signIn.hidden = false;
  signInError.hidden = !message;
  signInError.textContent = message || "";
  document.getElementById("key").focus();
}

function stopPage() {
  if (cleanup) cleanup();
  cleanup = null;
}

function parseHash() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const name = parts[0] && PAGES[parts[0]] ? parts[0] : "overview";
  return { name, params: parts.slice(1).map(decodeURIComponent) };
}

async function route() {
  // Already at sign-in (a refused key put it there): keep the message it shows.
  if (!getKey()) return signIn.hidden ? showSignIn() : undefined;
  signIn.hidden = true;
  view.hidden = false;
  nav.hidden = false;
  signOut.hidden = false;
  const { name, params } = parseHash();
  for (const a of nav.querySelectorAll("a")) {
    a.classList.toggle("active", a.getAttribute("href") === `#/${name}`);
  }
  stopPage();
  const mine = ++generation;
  clear(view);
  const page = h("div", { class: "page", dataset: { page: name } });
  view.append(page);
  try {
    const module = await PAGES[name]();
    if (mine !== generation) return;
    const stop = await module.render(page, params);
    if (mine !== generation) {
      if (stop) stop();
      return;
    }
    cleanup = stop || null;
  } catch (err) {
    if (mine !== generation) return;
    if (err instanceof ApiError && err.status === 401) return;
    page.append(errorBox(err));
  }
}

document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = document.getElementById("key").value.trim();
  const answer = await request("/functions", { key });
  if (answer.status === 401) {
    return showSignIn(`That key was not accepted: ${answer.data?.error?.message || "HTTP 401"}`);
  }
  if (!answer.ok) {
    return showSignIn(`That key cannot read the admin API: ${answer.data?.error?.message}`);
  }
  setKey(key);
  document.getElementById("key").value = "";
  if (!location.hash) location.hash = "#/overview"; // the hashchange routes
  else route();
});

// A failed reload or filter change (the pages' event handlers) shows its error on the page
// instead of failing silently in the console.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  const err = event.reason;
  if (err instanceof ApiError && err.status === 401) return;
  const page = view.querySelector(".page");
  if (page) page.prepend(errorBox(err));
});

signOut.addEventListener("click", () => showSignIn());
whenUnauthorized(() => showSignIn("The key was refused (revoked or expired): sign in again."));
window.addEventListener("hashchange", route);
route();
