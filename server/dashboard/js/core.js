// What every panel shares: the repository's URLs, the signed-in session, requests with its bearer,
// the hooks panels register (sign-out, snapshots, stream events) and small DOM and format helpers.

const metaRepo = document.querySelector('meta[name="repository-id"]')?.content ?? "";
export const REPO_ID = metaRepo && !metaRepo.startsWith("{{") ? metaRepo : "r-sandbox";
export const API = `/v1/Repositories/${encodeURIComponent(REPO_ID)}`;
// (the entry panel reads metadata through v2, with the same bearer)
export const API2 = `/v2/Repositories/${encodeURIComponent(REPO_ID)}`;
export const STORE_KEY = `sandbox-dashboard:${REPO_ID}`;

export const $ = (id) => document.getElementById(id);

// ---- session and the hooks panels register ---------------------------------------------------

/** The signed-in session ({token, user, gen, stream}) and a generation bumped on every sign-in
 * and sign-out: stale async work checks it and gives up. */
export const auth = { session: null, generation: 0 };

const resets = [];
const loaders = [];
const handlers = new Map();

/** `fn()` runs on sign-out: the panel forgets what it showed. */
export function onSignOut(fn) {
  resets.push(fn);
}

/** `fn()` loads the panel's snapshot once the event stream is open (and after it reconnects). */
export function onSnapshot(fn) {
  loaders.push(fn);
}

/** `fn(data)` runs on each event-stream message of that event. */
export function on(event, fn) {
  if (!handlers.has(event)) handlers.set(event, []);
  handlers.get(event).push(fn);
}

export function dispatch(event, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return;
  }
  for (const fn of handlers.get(event) ?? []) fn(data);
}

export function loadSnapshots() {
  for (const load of loaders) load();
}

export function signOut(message = "") {
  auth.generation++;
  auth.session?.stream?.abort();
  auth.session = null;
  sessionStorage.removeItem(STORE_KEY);
  for (const reset of resets) reset(message);
}

// ---- HTTP ------------------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, body) {
    super(problemText(body) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

function problemText(body) {
  if (!body || typeof body !== "object") return typeof body === "string" ? body.slice(0, 300) : "";
  const { title, detail } = body;
  if (title && detail && title !== detail) return `${title} ${detail}`;
  return title || detail || "";
}

export function errorText(err) {
  return err instanceof ApiError ? err.message : `Request failed: ${err.message || err}`;
}

export async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A request with the bearer; any 401 signs out with the server's message. */
export async function api(url, { method = "GET", json, headers = {} } = {}) {
  const gen = auth.generation;
  const h = { Accept: "application/json", ...headers };
  if (auth.session) h.Authorization = `Bearer ${auth.session.token}`;
  let body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const resp = await fetch(url, { method, headers: h, body, cache: "no-store" });
  const data = await readBody(resp);
  if (resp.status === 401) {
    const err = new ApiError(401, data);
    if (gen === auth.generation) signOut(err.message || "Please sign in again.");
    throw err;
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  if (gen !== auth.generation) throw new Error("signed out");
  return data;
}

// ---- DOM -------------------------------------------------------------------------------------

export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

export function showMessage(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

/** `fn` once per animation frame at most, however often this asks. */
export function everyFrame(fn) {
  let requested = false;
  return () => {
    if (requested) return;
    requested = true;
    requestAnimationFrame(() => {
      requested = false;
      fn();
    });
  };
}

/** `fn` once, `ms` after the last of a burst of calls. */
export function debounced(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Insert new rows into a tbody sorted newest first, without moving the rows already there. */
export function insertSorted(tbody, fresh, newer, recOf, rowOf = (rec) => rec.row) {
  fresh.sort((a, b) => (newer(a, b) ? -1 : newer(b, a) ? 1 : 0));
  let cur = tbody.firstElementChild;
  let batch = document.createDocumentFragment();
  for (const rec of fresh) {
    if (cur && newer(recOf(cur), rec)) {
      if (batch.childNodes.length) {
        tbody.insertBefore(batch, cur); // everything batched so far is newer than `cur`
        batch = document.createDocumentFragment();
      }
      while (cur && newer(recOf(cur), rec)) cur = cur.nextElementSibling;
    }
    batch.append(rowOf(rec));
  }
  if (batch.childNodes.length) tbody.insertBefore(batch, cur);
}

/** A name/value table's rows (headers, facts), as text. */
export function pairRows(pairs) {
  return pairs.map(([name, value]) => {
    const tr = make("tr");
    tr.dataset.name = name;
    tr.append(make("th", "pname", name), make("td", "pvalue", value));
    tr.firstChild.scope = "row";
    return tr;
  });
}

// ---- formats ---------------------------------------------------------------------------------

/** `/A/B`, `A\B` or `\A\B` -> `\A\B` (names hold neither slash). */
export function toPath(text) {
  const parts = text.trim().split(/[\\/]+/).filter(Boolean);
  return "\\" + parts.join("\\");
}

export function formatSize(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

/** Milliseconds since the epoch of an ISO-8601 time, or null. */
export function timeOf(iso) {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(ms) ? null : ms;
}

const two = (n) => String(n).padStart(2, "0");

/** A time of day as the browser's clock shows it (with the date if it is not today's). */
export function formatClock(ms) {
  if (ms === null) return "";
  const d = new Date(ms);
  const clock = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  const today = new Date().toDateString() === d.toDateString();
  return today ? clock : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${clock}`;
}

/** "850 ms", "12.3 s", "3 min 05 s", "2 h 04 min". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "";
  ms = Math.max(0, ms);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const whole = Math.round(s);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${two(whole % 60)} s`;
  return `${Math.floor(whole / 3600)} h ${two(Math.floor((whole % 3600) / 60))} min`;
}

export function plural(n, word, many = `${word}s`) {
  return `${n.toLocaleString("en")} ${n === 1 ? word : many}`;
}
