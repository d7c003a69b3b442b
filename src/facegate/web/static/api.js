// The facegate REST client used by the UI: API key handling and problem+json errors.

const KEY = "facegate.apiKey";
const COLLECTION = "facegate.collection";

export class ApiProblem extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export const apiKey = {
  get: () => localStorage.getItem(KEY) || "",
  set: (value) => (value ? localStorage.setItem(KEY, value.trim()) : localStorage.removeItem(KEY)),
};

/** The collection (isolated gallery) every page works in; "default" unless chosen. */
export const collection = {
  get: () => localStorage.getItem(COLLECTION) || "default",
  set: (name) => (name && name !== "default" ? localStorage.setItem(COLLECTION, name) : localStorage.removeItem(COLLECTION)),
};

/** ``path`` with the current collection as a query parameter (API paths that do not name one yet). */
export function inCollection(path) {
  const name = collection.get();
  if (name === "default" || !path.startsWith("/v1/") || /[?&]collection=/.test(path)) return path;
  return `${path}${path.includes("?") ? "&" : "?"}collection=${encodeURIComponent(name)}`;
}

const listeners = new Set();
/** Call ``fn`` whenever the server answers 401 (so the UI can ask for a key). */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

function headers(extra = {}) {
  const key = apiKey.get();
  return key ? { ...extra, "X-API-Key": key } : extra;
}

/** Call the API: ``api("/v1/people", {method: "POST", json: {...}})``; resolves the JSON body (or null). */
export async function api(path, { method = "GET", json, form, body, signal } = {}) {
  const init = { method, headers: headers(), signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (form !== undefined) {
    init.body = form;
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await answered(fetch(inCollection(path), init));
  if (response.status === 204) return null;
  return response.json();
}

/**
 * POST a multipart ``form`` like api(), calling ``onProgress(loaded, total)`` as its bytes go up.
 * XMLHttpRequest, because fetch reports no upload progress. Resolves the JSON body (or null).
 */
export function apiUpload(path, form, onProgress = () => {}) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", inCollection(path));
    for (const [name, value] of Object.entries(headers())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded, e.total));
    xhr.upload.addEventListener("load", (e) => e.lengthComputable && onProgress(e.total, e.total));
    xhr.addEventListener("error", () => reject(new ApiProblem(0, "network", "the server cannot be reached")));
    xhr.addEventListener("abort", () => reject(new DOMException("upload aborted", "AbortError")));
    xhr.addEventListener("load", () => {
      if (xhr.status === 401) listeners.forEach((fn) => fn());
      let body = null;
      try {
        body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        /* not JSON */
      }
      if (xhr.status < 200 || xhr.status > 299) {
        const problem = body || {};
        reject(new ApiProblem(xhr.status, problem.code, problem.detail || xhr.statusText));
      } else {
        resolve(xhr.status === 204 ? null : body);
      }
    });
    xhr.send(form);
  });
}

/** Object URLs made for one view, released together when it is left or redrawn. */
export class UrlBag {
  constructor() {
    this.urls = [];
  }

  add(blob) {
    const url = URL.createObjectURL(blob);
    this.urls.push(url);
    return url;
  }

  release() {
    this.urls.forEach((url) => URL.revokeObjectURL(url));
    this.urls = [];
  }
}

/** The response of a fetch, or an ApiProblem: the server unreachable, or a refusal with its code. */
async function answered(request) {
  let response;
  try {
    response = await request;
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiProblem(0, "network", "the server cannot be reached");
  }
  if (response.status === 401) listeners.forEach((fn) => fn());
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      /* not JSON */
    }
    throw new ApiProblem(response.status, problem.code, problem.detail || response.statusText);
  }
  return response;
}

/**
 * GET ``path`` with the key in a header (never in the URL) and resolve the Response itself, for
 * bodies read as they arrive (e.g. an MJPEG stream) or as a blob. Refusals throw like api().
 */
export async function apiResponse(path, { signal } = {}) {
  return answered(fetch(path, { headers: headers(), signal, cache: "no-store" }));
}

/** Show a same-origin image that needs the API key (e.g. a face chip) in ``img``. */
export async function showProtectedImage(img, path, bag) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new ApiProblem(response.status, "image", `cannot load ${path}`);
  img.src = bag.add(await response.blob());
}

/** The WebSocket URL of the stream (never with the key: URLs end up in logs). */
export function streamUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const params = new URLSearchParams({ collection: collection.get() });
  return `${scheme}//${location.host}/v1/stream?${params}`;
}

/**
 * The WebSocket URL of ``path`` with ``params`` (empty values left out) and the current collection
 * unless one is named; never with the key (send it with streamProtocols()).
 */
export function socketUrl(path, params = {}) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== null && value !== "") query.set(name, value);
  if (!query.has("collection") && collection.get() !== "default") query.set("collection", collection.get());
  const rest = query.toString();
  return `${scheme}//${location.host}${path}${rest ? `?${rest}` : ""}`;
}

/** Tell the UI the server refused the key (e.g. a WebSocket closed with 4401), as a 401 answer does. */
export function notifyUnauthorized() {
  listeners.forEach((fn) => fn());
}

/** The stream's subprotocols: browsers cannot set headers on a WebSocket, so the key travels as one. */
export function streamProtocols() {
  const key = apiKey.get();
  return /^[\w-]+$/.test(key) ? ["facegate", `facegate.key.${key}`] : ["facegate"];
}

/** Files as a multipart form under one field name. */
export function filesForm(field, files) {
  const form = new FormData();
  for (const file of files) form.append(field, file, file.name || "frame.jpg");
  return form;
}
