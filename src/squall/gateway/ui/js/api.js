// The admin API with the signed-in key. The key lives in sessionStorage: it is gone when the
// tab closes and is never sent anywhere but this gateway.

const KEY = "squall.key";
export const PREFIX = "/api/v1";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type;
    this.field = error.field;
    this.body = body;
  }
}

export function getKey() {
  return sessionStorage.getItem(KEY);
}

export function setKey(key) {
  sessionStorage.setItem(KEY, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY);
}

// A 401 anywhere means the key is gone or revoked: the app goes back to sign-in.
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

async function parse(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function request(path, { method = "GET", body, headers = {}, key } = {}) {
  const auth = key || getKey();
  const init = { method, headers: { ...headers } };
  if (auth) init.headers.Authorization = `Bearer ${auth}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = init.headers["Content-Type"] || "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const response = await fetch(PREFIX + path, init);
  const data = await parse(response);
  return { status: response.status, ok: response.ok, data, headers: response.headers };
}

export async function api(path, options = {}) {
  const answer = await request(path, options);
  if (answer.status === 401 && !options.key) onUnauthorized();
  if (!answer.ok) throw new ApiError(answer.status, answer.data);
  return answer.data;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

// Which admin API paths this gateway serves, from its OpenAPI document: a page whose API is
// not there says so instead of calling it.
let documented;
export async function hasPath(path) {
  if (!documented) {
    documented = fetch(`${PREFIX}/openapi.json`)
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((doc) => new Set(Object.keys(doc.paths || {})));
  }
  return (await documented).has(PREFIX + path);
}
