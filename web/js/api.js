// The JSON API client: same-origin requests (the login cookie rides along), JSON bodies for
// every mutation, errors turned into ApiError with the server's code and message.

/** Base path of the API, relative to the UI's own location (works behind a path prefix). */
export const API = new URL("../api/v1", document.baseURI).pathname;

/** An error answer: HTTP status, the server's error code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const unauthorizedListeners = new Set();

/** Calls `fn` whenever a request answers 401 (the UI then shows the login form). */
export function onUnauthorized(fn) {
  unauthorizedListeners.add(fn);
}

/** Encodes one id as a path segment. */
export const seg = encodeURIComponent;

/**
 * Sends a request to `${API}${path}`; resolves to parsed JSON (or text), rejects with ApiError.
 * A 401 sends the user to the login form unless `opts.own401` (the caller handles it: admin
 * routes do not take the login cookie).
 */
export async function request(method, path, body, opts) {
  const init = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(`${API}${path}`, init);
  } catch (err) {
    throw new ApiError(0, "network", `cannot reach the server: ${err.message || err}`);
  }
  if (resp.status === 401 && !(opts && opts.own401)) {
    for (const fn of unauthorizedListeners) fn();
  }
  if (!resp.ok) {
    let code = `http_${resp.status}`;
    let message = `${method} ${path}: HTTP ${resp.status}`;
    try {
      const json = await resp.json();
      if (json && json.error) {
        code = json.error.code || code;
        message = json.error.message || message;
      }
    } catch (_) {
      // Not JSON: keep the generic message.
    }
    throw new ApiError(resp.status, code, message);
  }
  const type = resp.headers.get("Content-Type") || "";
  return type.includes("application/json") ? resp.json() : resp.text();
}

export const get = (path, opts) => request("GET", path, undefined, opts);
export const post = (path, body) => request("POST", path, body === undefined ? {} : body);
export const del = (path) => request("DELETE", path);

/**
 * Reads the last `maxBytes` of a run file. Resolves to {text, offset}: `text` holds whole
 * lines only (a partial last line is left for the stream) and `offset` is the byte position
 * after it; `truncated` is true when earlier bytes were skipped. A missing file reads as empty.
 */
export async function readTail(run, name, maxBytes) {
  const resp = await fetch(`${API}/runs/${seg(run)}/files/${name}`, {
    credentials: "same-origin",
    headers: { Range: `bytes=-${maxBytes}` },
  });
  if (resp.status === 404 || resp.status === 416) return { text: "", offset: 0, truncated: false };
  if (resp.status === 401) for (const fn of unauthorizedListeners) fn();
  if (!resp.ok) throw new ApiError(resp.status, `http_${resp.status}`, `${name}: HTTP ${resp.status}`);
  const bytes = new Uint8Array(await resp.arrayBuffer());
  let start = 0;
  let total = bytes.length;
  const range = resp.headers.get("Content-Range");
  const m = range && /bytes (\d+)-(\d+)\/(\d+)/.exec(range);
  if (resp.status === 206 && m) {
    start = Number(m[1]);
    total = Number(m[2]) + 1;
  }
  let from = 0;
  if (start > 0) {
    // Skip the partial first line of the window.
    const nl = bytes.indexOf(10);
    from = nl < 0 ? bytes.length : nl + 1;
  }
  let to = bytes.length;
  if (to > from && bytes[to - 1] !== 10) {
    const nl = bytes.lastIndexOf(10);
    to = nl < from ? from : nl + 1;
  }
  const text = new TextDecoder().decode(bytes.subarray(from, to));
  return { text, offset: start + to, truncated: start > 0, total };
}
