// The gateway's management API, on this same origin (no CORS). The account API key lives in
// sessionStorage only: it is gone when the tab closes, never in localStorage, a cookie or a URL.

const KEY_ITEM = "llmGatewayLab.apiKey";

/** The API's base URL: the Lab is served at <base>/lab/, under whatever stage prefix. */
export const apiBase = new URL("../", document.baseURI);

export function apiUrl(path) {
  return new URL(path.replace(/^\//, ""), apiBase);
}

export function currentKey() {
  return sessionStorage.getItem(KEY_ITEM);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_ITEM);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `The gateway answered HTTP ${status}.`);
    this.status = status;
    this.code = error.code || `http_${status}`;
    this.details = error.details;
  }
}

let unauthorizedHandler = () => {};

/** Called when the signed-in key is refused (revoked, or the account is gone). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/**
 * One JSON call. `key` overrides the stored key (sign-in tries a key before storing it).
 * Resolves {data, headers, status}; rejects with ApiError.
 */
export async function call(method, path, { body, headers = {}, key, signal, query } = {}) {
  const useKey = key ?? currentKey();
  const url = apiUrl(path);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const sent = { Accept: "application/json", ...headers };
  if (useKey) sent.Authorization = `Bearer ${useKey}`;
  if (body !== undefined) sent["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers: sent,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
    credentials: "omit",
    signal,
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && key === undefined) unauthorizedHandler(error);
    throw error;
  }
  return { data, headers: response.headers, status: response.status };
}

export function describeError(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code})`;
  if (error && error.name === "AbortError") return "Cancelled.";
  return "The gateway could not be reached. Is it running?";
}
