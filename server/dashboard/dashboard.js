// Document sandbox dashboard: sign in, browse the repository and read an entry's metadata (template,
// fields, tags, links), start paced copies and watch the operations (copies, deletes, Open Connectors
// bulk jobs) and webhook deliveries live; send a queued webhook again. No build step, no dependencies.
"use strict";

const metaRepo = document.querySelector('meta[name="repository-id"]')?.content ?? "";
const REPO_ID = metaRepo && !metaRepo.startsWith("{{") ? metaRepo : "r-sandbox";
const API = `/v1/Repositories/${encodeURIComponent(REPO_ID)}`;
// (the entry panel reads metadata through v2, with the same bearer)
const API2 = `/v2/Repositories/${encodeURIComponent(REPO_ID)}`;
const CHILDREN = "Laserfiche.Repository.Folder/children";
const STORE_KEY = `sandbox-dashboard:${REPO_ID}`;
const RANK = { NotStarted: 0, InProgress: 1, Completed: 2, Failed: 2, Cancelled: 2 };
const RUNNING = new Set(["NotStarted", "InProgress"]);
const BULK = "BulkQuery";
const BULK_LABEL = "Bulk query: ";
// queued webhooks older than the latest deliveries listed are fetched on their own, this many at most
const QUEUE_TOP = 1000;
const RECONNECT_MS = 1000;

const $ = (id) => document.getElementById(id);
const el = {
  signin: $("signin"), signinForm: $("signin-form"), username: $("username"), password: $("password"),
  signinError: $("signin-error"), app: $("app"), who: $("who"), signout: $("signout"),
  stream: $("stream-state"), tree: $("tree"), treeRefresh: $("tree-refresh"),
  copyForm: $("copy-form"), copySource: $("copy-source"), copyDest: $("copy-dest"),
  copyName: $("copy-name"), copyPace: $("copy-pace"), copyError: $("copy-error"), copyOk: $("copy-ok"),
  ops: $("operations"), opsEmpty: $("ops-empty"), opsCount: $("ops-count"), opsError: $("ops-error"),
  deliveries: $("deliveries"), deliveriesEmpty: $("deliveries-empty"),
  queue: $("queue"), queueEmpty: $("queue-empty"), queueCount: $("queue-count"), queueError: $("queue-error"),
  entry: $("entry"), entryForm: $("entry-form"), entryInput: $("entry-input"), entryRefresh: $("entry-refresh"),
  entryError: $("entry-error"), entryEmpty: $("entry-empty"), entryDetails: $("entry-details"),
  entryName: $("entry-name"), entryPath: $("entry-path"), entryFacts: $("entry-facts"),
  entryTemplate: $("entry-template"), entryFields: $("entry-fields"), entryFieldsEmpty: $("entry-fields-empty"),
  entryTags: $("entry-tags"), entryTagsEmpty: $("entry-tags-empty"),
  entryLinks: $("entry-links"), entryLinksEmpty: $("entry-links-empty"),
};
$("repo-label").textContent = REPO_ID;

// ---- session -------------------------------------------------------------------------------

let session = null; // {token, user, gen, stream}
let generation = 0; // bumped on every sign-in/out: stale async work checks it and gives up

function saved() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
  } catch {
    return null;
  }
}

function showMessage(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

function signOut(message = "") {
  generation++;
  session?.stream?.abort();
  session = null;
  sessionStorage.removeItem(STORE_KEY);
  resetOperations();
  resetDeliveries();
  resetEntry();
  el.tree.replaceChildren();
  el.app.hidden = true;
  el.who.hidden = el.signout.hidden = el.stream.hidden = true;
  el.signin.hidden = false;
  showMessage(el.signinError, message);
  el.password.value = "";
  el.username.focus();
}

function start(token, user) {
  const gen = ++generation;
  session = { token, user, gen, stream: null };
  sessionStorage.setItem(STORE_KEY, JSON.stringify({ token, user }));
  el.signin.hidden = true;
  el.app.hidden = false;
  el.who.textContent = user;
  el.who.hidden = el.signout.hidden = el.stream.hidden = false;
  showMessage(el.signinError, "");
  initTree();
  // the stream first, then the snapshots: nothing that happens in between is missed
  session.stream = new EventStream(gen);
  session.stream.opened.then(() => {
    if (gen === generation) loadSnapshots();
  });
}

el.signinForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const user = el.username.value.trim();
  const button = el.signinForm.querySelector("button");
  button.disabled = true;
  showMessage(el.signinError, "");
  try {
    const body = new URLSearchParams({ grant_type: "password", username: user, password: el.password.value });
    const resp = await fetch(`${API}/Token`, { method: "POST", body, headers: { Accept: "application/json" } });
    const data = await readBody(resp);
    if (!resp.ok) throw new ApiError(resp.status, data);
    el.password.value = "";
    start(data.access_token, user);
  } catch (err) {
    showMessage(el.signinError, errorText(err));
  } finally {
    button.disabled = false;
  }
});

el.signout.addEventListener("click", () => signOut());

// ---- HTTP ----------------------------------------------------------------------------------

class ApiError extends Error {
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

function errorText(err) {
  return err instanceof ApiError ? err.message : `Request failed: ${err.message || err}`;
}

async function readBody(resp) {
  const text = await resp.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** A request with the bearer; any 401 signs out with the server's message. */
async function api(url, { method = "GET", json, headers = {} } = {}) {
  const gen = generation;
  const h = { Accept: "application/json", ...headers };
  if (session) h.Authorization = `Bearer ${session.token}`;
  let body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const resp = await fetch(url, { method, headers: h, body, cache: "no-store" });
  const data = await readBody(resp);
  if (resp.status === 401) {
    const err = new ApiError(401, data);
    if (gen === generation) signOut(err.message || "Please sign in again.");
    throw err;
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  if (gen !== generation) throw new Error("signed out");
  return data;
}

// ---- event stream (fetch, since EventSource cannot send Authorization) ----------------------

class EventStream {
  constructor(gen) {
    this.gen = gen;
    this.lastEventId = null;
    this.controller = new AbortController();
    this.opened = new Promise((resolve) => (this.resolveOpened = resolve));
    this.run();
  }

  abort() {
    this.controller.abort();
  }

  get alive() {
    return !this.controller.signal.aborted && this.gen === generation;
  }

  setState(text, live) {
    el.stream.textContent = text;
    el.stream.classList.toggle("live", live);
  }

  async run() {
    let connects = 0;
    while (this.alive) {
      this.setState(connects ? "reconnecting…" : "connecting…", false);
      try {
        const headers = { Accept: "text/event-stream", Authorization: `Bearer ${session.token}` };
        if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
        const resp = await fetch("/sandbox/events", {
          headers, cache: "no-store", signal: this.controller.signal,
        });
        if (resp.status === 401) {
          const err = new ApiError(401, await readBody(resp));
          if (this.alive) signOut(err.message);
          return;
        }
        if (!resp.ok || !resp.body) throw new ApiError(resp.status, await readBody(resp));
        this.setState("live", true);
        this.resolveOpened();
        // after a drop, re-read the snapshots too: replay may not reach back far enough
        if (connects++ > 0) loadSnapshots();
        await this.read(resp.body);
      } catch (err) {
        if (!this.alive) return;
        if (!(err instanceof ApiError)) console.debug("event stream dropped", err);
      }
      this.resolveOpened(); // the first attempt failed: load the snapshots anyway
      if (!this.alive) return;
      this.setState("reconnecting…", false);
      await new Promise((r) => setTimeout(r, RECONNECT_MS));
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const eol = /\r\n|\r|\n/g;
    let buf = "";
    let data = [];
    let event = "";
    let id = this.lastEventId;
    const line = (text) => {
      if (text === "") {
        if (data.length) {
          this.lastEventId = id;
          if (this.alive) dispatch(event || "message", data.join("\n"));
        }
        data = [];
        event = "";
        return;
      }
      if (text.startsWith(":")) return; // comment (keepalive)
      const colon = text.indexOf(":");
      const field = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") data.push(value);
      else if (field === "event") event = value;
      else if (field === "id" && !value.includes("\0")) id = value;
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let start = 0;
        let m;
        eol.lastIndex = 0;
        while ((m = eol.exec(buf))) {
          if (m[0] === "\r" && m.index === buf.length - 1) break; // maybe half of a \r\n
          line(buf.slice(start, m.index));
          start = eol.lastIndex;
        }
        buf = buf.slice(start);
      }
    } finally {
      reader.cancel().catch(() => {});
    }
  }
}

function dispatch(event, data) {
  let obj;
  try {
    obj = JSON.parse(data);
  } catch {
    return;
  }
  if (event === "operation") mergeOp(obj, true);
  else if (event === "delivery") mergeDelivery(obj);
}

async function loadSnapshots() {
  const gen = generation;
  const [ops, deliveries, queued] = await Promise.allSettled([
    api("/sandbox/operations"),
    api("/sandbox/deliveries"),
    api(`/sandbox/deliveries?status=queued&$top=${QUEUE_TOP}`),
  ]);
  if (gen !== generation) return;
  if (ops.status === "fulfilled") {
    showMessage(el.opsError, "");
    for (const op of ops.value?.value ?? []) mergeOp(op, false);
  } else {
    showMessage(el.opsError, `Could not load the operations: ${errorText(ops.reason)}`);
  }
  if (deliveries.status === "fulfilled") {
    for (const d of deliveries.value?.value ?? []) mergeDelivery(d);
  }
  if (queued.status === "fulfilled") {
    showMessage(el.queueError, "");
    for (const d of queued.value?.value ?? []) mergeDelivery(d);
  } else {
    showMessage(el.queueError, `Could not load the delivery queue: ${errorText(queued.reason)}`);
  }
}

// ---- rendering, coalesced per animation frame -----------------------------------------------

let frameRequested = false;
function scheduleRender() {
  if (frameRequested) return;
  frameRequested = true;
  requestAnimationFrame(() => {
    frameRequested = false;
    renderOps();
    renderDeliveries();
  });
}

/** Insert new rows into a tbody sorted newest first, without moving the rows already there. */
function insertSorted(tbody, fresh, newer, recOf, rowOf = (rec) => rec.row) {
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

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// ---- operations -----------------------------------------------------------------------------

const ops = new Map(); // token -> {op, key, row, cells, shown}
const dirtyOps = new Set();

function resetOperations() {
  ops.clear();
  dirtyOps.clear();
  el.ops.replaceChildren();
  el.opsEmpty.hidden = false;
  showMessage(el.opsError, "");
  setText(el.opsCount, "");
}

function mergeOp(op, live) {
  const token = op?.operationToken;
  if (!token) return;
  const rec = ops.get(token);
  if (!rec) {
    ops.set(token, { op, key: Date.parse(op.createdTimestamp) || 0, row: null, shown: {} });
    if (live && !RUNNING.has(op.status)) scheduleTreeRefresh();
  } else {
    const old = rec.op;
    // never back: a terminal status stays, a started one does not return to NotStarted
    if ((RANK[op.status] ?? 0) < (RANK[old.status] ?? 0)) return;
    const rising = (a, b) => (typeof a === "number" && typeof b === "number" ? Math.max(a, b) : b);
    rec.op = {
      ...old,
      ...op,
      percentComplete: Math.max(old.percentComplete ?? 0, op.percentComplete ?? 0),
      entriesDone: Math.max(old.entriesDone ?? 0, op.entriesDone ?? 0),
      // (a bulk job's records found so far rise while it runs; its end says how many it wrote)
      recordsCount: RUNNING.has(op.status) ? rising(old.recordsCount, op.recordsCount) : op.recordsCount,
    };
    if (RUNNING.has(old.status) && !RUNNING.has(op.status)) scheduleTreeRefresh();
  }
  dirtyOps.add(token);
  scheduleRender();
}

const opRowTemplate = document.createElement("template");
opRowTemplate.innerHTML = `<tr>
  <td class="label"><span class="text"></span><div class="meta" hidden></div><div class="err" hidden></div></td>
  <td class="type"></td>
  <td><span class="status"></span></td>
  <td><div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="fill"></div></div></td>
  <td class="num pct">0%</td>
  <td class="user"></td>
  <td><button type="button" class="cancel">Cancel</button></td>
</tr>`;

function buildOpRow(rec) {
  const row = opRowTemplate.content.firstElementChild.cloneNode(true);
  row.dataset.token = rec.op.operationToken;
  const q = (s) => row.querySelector(s);
  rec.cells = {
    label: q(".label .text"), meta: q(".meta"), err: q(".err"), type: q(".type"), status: q(".status"),
    bar: q(".bar"), fill: q(".fill"), pct: q(".pct"), user: q(".user"), cancel: q(".cancel"),
  };
  rec.row = row;
}

/** A bulk job's query (its label says "Bulk query: <CEQL>"), and what else is known of it. */
function bulkText(op) {
  const query = op.label?.startsWith(BULK_LABEL) ? op.label.slice(BULK_LABEL.length) : "";
  const records = typeof op.recordsCount === "number"
    ? `${op.recordsCount.toLocaleString("en")} record${op.recordsCount === 1 ? "" : "s"}` : "";
  const event = op.eventId ? `job ${op.eventId}` : "";
  return { query, meta: [records, event].filter(Boolean).join(" · ") };
}

function updateOpRow(rec) {
  const { op, cells, shown, row } = rec;
  const bulk = op.operationType === BULK ? bulkText(op) : null;
  const label = bulk
    ? bulk.query || `Bulk query ${op.eventId ?? ""}`.trim()
    : op.label || `${op.operationType} of entry ${op.entryId ?? "?"}`;
  if (shown.kind !== op.operationType) {
    shown.kind = row.dataset.kind = op.operationType ?? "";
    cells.label.classList.toggle("query", Boolean(bulk));
  }
  if (bulk && shown.meta !== bulk.meta) {
    shown.meta = bulk.meta;
    showMessage(cells.meta, bulk.meta);
  }
  if (shown.label !== label) {
    shown.label = label;
    cells.label.textContent = label;
    cells.label.parentElement.title = `${label}\n${op.operationToken}`;
    cells.bar.setAttribute("aria-label", `Progress of ${label}`);
    cells.cancel.setAttribute("aria-label", `Cancel ${label}`);
  }
  if (shown.type !== op.operationType) {
    shown.type = op.operationType;
    setText(cells.type, op.operationType === BULK ? "Bulk query" : op.operationType ?? "");
  }
  if (shown.user !== op.user) setText(cells.user, (shown.user = op.user ?? ""));
  if (shown.status !== op.status) {
    shown.status = op.status;
    row.dataset.status = op.status;
    cells.status.textContent = op.status;
    cells.cancel.hidden = !RUNNING.has(op.status);
  }
  const pct = Math.max(0, Math.min(100, Math.round(op.percentComplete ?? 0)));
  if (shown.pct !== pct) {
    shown.pct = pct;
    cells.bar.setAttribute("aria-valuenow", String(pct));
    cells.fill.style.width = `${pct}%`;
    cells.pct.textContent = `${pct}%`;
  }
  const entries = `${op.entriesDone ?? 0} of ${op.entriesTotal ?? "?"} entries, ${op.paceMs ?? 0} ms each`;
  if (shown.entries !== entries) cells.pct.title = shown.entries = entries;
  const err = op.errors?.[0]?.errorMessage ?? "";
  if (shown.err !== err) {
    shown.err = err;
    showMessage(cells.err, err);
  }
}

function renderOps() {
  if (!dirtyOps.size) return;
  const fresh = [];
  for (const token of dirtyOps) {
    const rec = ops.get(token);
    if (!rec) continue;
    if (!rec.row) {
      buildOpRow(rec);
      fresh.push(rec);
    }
    updateOpRow(rec);
  }
  dirtyOps.clear();
  if (fresh.length) {
    const newer = (a, b) => a.key > b.key || (a.key === b.key && a.op.operationToken > b.op.operationToken);
    insertSorted(el.ops, fresh, newer, (row) => ops.get(row.dataset.token));
  }
  el.opsEmpty.hidden = ops.size > 0;
  let running = 0;
  for (const rec of ops.values()) if (RUNNING.has(rec.op.status)) running++;
  setText(el.opsCount, `${ops.size} operation${ops.size === 1 ? "" : "s"}${running ? `, ${running} running` : ""}`);
}

el.ops.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button.cancel");
  if (!button) return;
  const token = button.closest("tr").dataset.token;
  button.disabled = true;
  try {
    mergeOp(await api(`/sandbox/operations/${encodeURIComponent(token)}/cancel`, { method: "POST" }), true);
    showMessage(el.opsError, "");
  } catch (err) {
    if (session) showMessage(el.opsError, `Cancel failed: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
});

// ---- deliveries ----------------------------------------------------------------------------

const deliveries = new Map(); // notificationId -> {d, attempts: Map(number -> attempt), row, ...}
const dirtyDeliveries = new Set();

function resetDeliveries() {
  deliveries.clear();
  dirtyDeliveries.clear();
  el.deliveries.replaceChildren();
  el.deliveriesEmpty.hidden = false;
  el.queue.replaceChildren();
  el.queueEmpty.hidden = false;
  setText(el.queueCount, "");
  showMessage(el.queueError, "");
}

function mergeDelivery(d) {
  const id = d?.notificationId;
  if (id === undefined || id === null) return;
  let rec = deliveries.get(id);
  if (!rec) {
    rec = { d, attempts: new Map(), row: null, items: new Map(), shown: {}, queueRow: null };
    deliveries.set(id, rec);
  }
  const maxBefore = Math.max(0, ...rec.attempts.keys());
  for (const a of d.attempts ?? []) rec.attempts.set(a.number, { ...rec.attempts.get(a.number), ...a });
  const maxIncoming = Math.max(0, ...(d.attempts ?? []).map((a) => a.number));
  // the status of whichever message knows the latest attempt
  if (rec.d !== d && maxIncoming >= maxBefore) rec.d = { ...rec.d, ...d };
  dirtyDeliveries.add(id);
  scheduleRender();
}

const deliveryRowTemplate = document.createElement("template");
deliveryRowTemplate.innerHTML = `<tr>
  <td class="num nid"></td><td class="num eid"></td><td class="url"></td>
  <td><span class="status"></span></td><td><ol class="attempts"></ol></td>
</tr>`;

function attemptText(a) {
  const given = (v) => v !== null && v !== undefined;
  const parts = [`#${a.number}`];
  if (given(a.statusCode)) parts.push(String(a.statusCode));
  if (given(a.durationMs)) parts.push(`${Math.round(a.durationMs)} ms`);
  if (a.error) parts.push(a.error);
  if (parts.length === 1) parts.push("sending…");
  return parts.join(" · ");
}

function renderDeliveries() {
  if (!dirtyDeliveries.size) return;
  const fresh = [];
  for (const id of dirtyDeliveries) {
    const rec = deliveries.get(id);
    if (!rec) continue;
    if (!rec.row) {
      rec.row = deliveryRowTemplate.content.firstElementChild.cloneNode(true);
      rec.row.dataset.notification = String(id);
      rec.row.querySelector(".nid").textContent = String(id);
      fresh.push(rec);
    }
    const { d, row, shown } = rec;
    if (shown.status !== d.status) {
      shown.status = row.dataset.status = d.status ?? "";
      row.querySelector(".status").textContent = d.status ?? "";
    }
    setText(row.querySelector(".eid"), String(d.eventId ?? ""));
    const url = row.querySelector(".url");
    if (url.textContent !== (d.url ?? "")) url.textContent = url.title = d.url ?? "";
    const list = row.querySelector(".attempts");
    for (const number of [...rec.attempts.keys()].sort((a, b) => a - b)) {
      const a = rec.attempts.get(number);
      let li = rec.items.get(number);
      if (!li) {
        li = document.createElement("li");
        rec.items.set(number, li);
        const next = [...rec.items.keys()].filter((n) => n > number).sort((x, y) => x - y)[0];
        list.insertBefore(li, next === undefined ? null : rec.items.get(next));
      }
      setText(li, attemptText(a));
      li.className = a.error || (a.statusCode && (a.statusCode < 200 || a.statusCode >= 300)) ? "failed" : "";
      li.title = a.startedTimestamp ?? "";
    }
  }
  const queued = renderQueue(dirtyDeliveries);
  dirtyDeliveries.clear();
  const newer = (a, b) => Number(a.d.notificationId) > Number(b.d.notificationId);
  const recOf = (row) => deliveries.get(Number(row.dataset.notification)) ?? deliveries.get(row.dataset.notification);
  if (fresh.length) insertSorted(el.deliveries, fresh, newer, recOf);
  if (queued.length) insertSorted(el.queue, queued, newer, recOf, (rec) => rec.queueRow);
  el.deliveriesEmpty.hidden = deliveries.size > 0;
  const waiting = el.queue.children.length;
  el.queueEmpty.hidden = waiting > 0;
  setText(el.queueCount, waiting ? `${waiting} queued` : "");
}

// ---- the delivery queue: deliveries whose every attempt failed, each with a Redeliver button --

const queueRowTemplate = document.createElement("template");
queueRowTemplate.innerHTML = `<tr data-status="queued">
  <td class="num nid"></td><td class="num eid"></td><td class="url"></td>
  <td class="last"></td><td><button type="button" class="redeliver">Redeliver</button></td>
</tr>`;

/** Put the dirty deliveries that are queued in the queue, take out those that no longer are;
 * return the rows to insert. */
function renderQueue(dirty) {
  const fresh = [];
  for (const id of dirty) {
    const rec = deliveries.get(id);
    if (!rec) continue;
    if (rec.d.status !== "queued") {
      rec.queueRow?.remove();
      rec.queueRow = null;
      continue;
    }
    if (!rec.queueRow) {
      rec.queueRow = queueRowTemplate.content.firstElementChild.cloneNode(true);
      rec.queueRow.dataset.notification = String(id);
      rec.queueRow.querySelector(".nid").textContent = String(id);
      rec.queueRow.querySelector(".redeliver").setAttribute("aria-label", `Redeliver webhook ${id}`);
      fresh.push(rec);
    }
    const row = rec.queueRow;
    setText(row.querySelector(".eid"), String(rec.d.eventId ?? ""));
    const url = row.querySelector(".url");
    if (url.textContent !== (rec.d.url ?? "")) url.textContent = url.title = rec.d.url ?? "";
    const numbers = [...rec.attempts.keys()];
    const last = numbers.length ? rec.attempts.get(Math.max(...numbers)) : null;
    setText(row.querySelector(".last"), last ? `${numbers.length} attempt${numbers.length === 1 ? "" : "s"}, last ${attemptText(last)}` : "");
  }
  return fresh;
}

el.queue.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button.redeliver");
  if (!button) return;
  const id = button.closest("tr").dataset.notification;
  button.disabled = true;
  try {
    // (the Elements dialect's redeliver takes Elements credentials: this one takes the bearer)
    mergeDelivery(await api(`/sandbox/deliveries/${encodeURIComponent(id)}/redeliver`, { method: "POST" }));
    showMessage(el.queueError, "");
  } catch (err) {
    if (session) showMessage(el.queueError, `Redeliver failed: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
});

// ---- repository tree ------------------------------------------------------------------------

function formatSize(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${units[i]}`;
}

function makeNode(entry) {
  const folder = entry.entryType === "Folder";
  const li = document.createElement("li");
  li.className = folder ? "folder" : "document";
  li.dataset.id = String(entry.id);
  li.dataset.type = entry.entryType;
  const node = document.createElement("div");
  node.className = "node";
  if (folder) {
    const twisty = document.createElement("button");
    twisty.type = "button";
    twisty.className = "twisty";
    twisty.setAttribute("aria-expanded", "false");
    node.append(twisty);
  } else {
    const leaf = document.createElement("span");
    leaf.className = "leaf";
    node.append(leaf);
  }
  const name = document.createElement("button");
  name.type = "button";
  name.className = "name";
  node.append(name);
  if (folder) {
    const dest = document.createElement("button");
    dest.type = "button";
    dest.className = "dest small";
    dest.textContent = "dest";
    node.append(dest);
  } else {
    const size = document.createElement("span");
    size.className = "size";
    node.append(size);
  }
  li.append(node);
  if (folder) {
    const ul = document.createElement("ul");
    ul.hidden = true;
    li.append(ul);
  }
  updateNode(li, entry);
  return li;
}

function updateNode(li, entry) {
  const label = entry.id === 1 ? "\\ (root)" : entry.name;
  li.dataset.path = entry.fullPath || "\\";
  const name = li.querySelector(":scope > .node > .name");
  setText(name, label);
  name.title = `${li.dataset.path} — use as the copy source`;
  const twisty = li.querySelector(":scope > .node > .twisty");
  twisty?.setAttribute("aria-label", `${twisty.getAttribute("aria-expanded") === "true" ? "Collapse" : "Expand"} ${label}`);
  li.querySelector(":scope > .node > .dest")?.setAttribute("aria-label", `Use ${label} as the destination`);
  const size = li.querySelector(":scope > .node > .size");
  if (size) setText(size, formatSize(entry.elecDocumentSize));
}

function note(text) {
  const li = document.createElement("li");
  li.className = "note";
  li.textContent = text;
  return li;
}

async function listChildren(id) {
  let url = `${API}/Entries/${id}/${CHILDREN}`;
  const out = [];
  for (let pages = 0; url && pages < 1000; pages++) {
    const body = await api(url);
    out.push(...(body?.value ?? []));
    url = body?.["@odata.nextLink"];
  }
  const folderFirst = (e) => (e.entryType === "Folder" ? 0 : 1);
  return out.sort((a, b) => folderFirst(a) - folderFirst(b) || a.name.localeCompare(b.name));
}

async function loadFolder(li) {
  const ul = li.querySelector(":scope > ul");
  if (!ul.children.length) ul.replaceChildren(note("Loading…"));
  const gen = generation;
  let entries;
  try {
    entries = await listChildren(li.dataset.id);
  } catch (err) {
    if (gen === generation && err.status !== 401) ul.replaceChildren(note(errorText(err)));
    return;
  }
  if (gen !== generation) return;
  const existing = new Map();
  for (const child of ul.children) if (child.dataset.id) existing.set(child.dataset.id, child);
  const nodes = entries.map((e) => {
    const old = existing.get(String(e.id));
    if (old && old.dataset.type === e.entryType) {
      updateNode(old, e);
      return old; // keeps its expanded subtree
    }
    return makeNode(e);
  });
  if (!nodes.length) nodes.push(note("Empty folder"));
  const same = nodes.length === ul.children.length && nodes.every((n, i) => n === ul.children[i]);
  if (!same) ul.replaceChildren(...nodes);
  markSelected();
}

function setExpanded(li, open) {
  const twisty = li.querySelector(":scope > .node > .twisty");
  twisty.setAttribute("aria-expanded", String(open));
  li.querySelector(":scope > ul").hidden = !open;
  const label = li.querySelector(":scope > .node > .name").textContent;
  twisty.setAttribute("aria-label", `${open ? "Collapse" : "Expand"} ${label}`);
  if (open) loadFolder(li);
}

function initTree() {
  const root = makeNode({ id: 1, name: "", entryType: "Folder", fullPath: "\\" });
  el.tree.replaceChildren(root);
  setExpanded(root, true);
}

function refreshTree() {
  for (const twisty of el.tree.querySelectorAll('.twisty[aria-expanded="true"]')) {
    loadFolder(twisty.closest("li"));
  }
}

let treeTimer = 0;
function scheduleTreeRefresh() {
  clearTimeout(treeTimer);
  treeTimer = setTimeout(() => session && refreshTree(), 250);
}

el.treeRefresh.addEventListener("click", refreshTree);
el.tree.addEventListener("click", (ev) => {
  const button = ev.target.closest("button");
  const li = button?.closest("li");
  if (!li) return;
  if (button.classList.contains("twisty")) {
    setExpanded(li, button.getAttribute("aria-expanded") !== "true");
  } else if (button.classList.contains("dest")) {
    el.copyDest.value = li.dataset.path;
  } else if (button.classList.contains("name")) {
    el.copySource.value = li.dataset.path;
    showEntry({ id: li.dataset.id }, li.dataset.path);
  }
});

// ---- copy form -----------------------------------------------------------------------------

/** `/A/B`, `A\B` or `\A\B` -> `\A\B` (names hold neither slash). */
function toPath(text) {
  const parts = text.trim().split(/[\\/]+/).filter(Boolean);
  return "\\" + parts.join("\\");
}

async function entryAt(path, what) {
  try {
    const body = await api(`${API}/Entries/ByPath?fullPath=${encodeURIComponent(path)}`);
    if (!body?.entry) throw new Error(`no entry at ${path}`);
    return body.entry;
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) err.message = `${what}: ${err.message}`;
    throw err;
  }
}

el.copyForm.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = el.copyForm.querySelector("button[type=submit]");
  showMessage(el.copyError, "");
  showMessage(el.copyOk, "");
  button.disabled = true;
  try {
    const [source, dest] = await Promise.all([
      entryAt(toPath(el.copySource.value), "Source"),
      entryAt(toPath(el.copyDest.value), "Destination"),
    ]);
    if (dest.entryType !== "Folder") throw new Error(`The destination ${dest.fullPath} is not a folder.`);
    const name = el.copyName.value.trim() || source.name;
    const started = await api(`${API}/Entries/${dest.id}/Laserfiche.Repository.Folder/CopyAsync?autoRename=true`, {
      method: "POST",
      json: { sourceId: source.id, name },
      headers: { "Sandbox-Pace-Ms": el.copyPace.value.trim() || "0" },
    });
    el.copyForm.dataset.lastToken = started.token;
    showMessage(el.copyOk, `Copying ${source.fullPath} to ${dest.fullPath}.`);
    // the stream will tell too; this covers a stream that is reconnecting
    api(`/sandbox/operations/${encodeURIComponent(started.token)}`).then((op) => mergeOp(op, true), () => {});
  } catch (err) {
    if (session) showMessage(el.copyError, errorText(err));
  } finally {
    button.disabled = false;
  }
});

// ---- entry: one entry and its metadata (template, fields, tags, links), read through v2 -------

const ENTRY_PAGES = 100; // of each collection at most: plenty for a sandbox's entry
let entryShown = null; // the entry the panel shows, as v2 gives it
let entryRequest = 0; // bumped by every load: only the latest one's answer is drawn

function resetEntry() {
  entryRequest++;
  entryShown = null;
  el.entryInput.value = "";
  el.entry.removeAttribute("aria-busy");
  el.entryDetails.hidden = el.entryRefresh.hidden = true;
  el.entryEmpty.hidden = false;
  showMessage(el.entryError, "");
  for (const list of [el.entryFields, el.entryTags, el.entryLinks]) list.replaceChildren();
  markSelected();
}

/** The server writes absolute nextLinks with its own host: follow them on this page's origin. */
function onThisOrigin(url) {
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

/** Every item of a v2 collection, page after page. */
async function collection(url) {
  const out = [];
  for (let pages = 0; url && pages < ENTRY_PAGES; pages++) {
    const body = await api(url);
    out.push(...(body?.value ?? []));
    const next = body?.["@odata.nextLink"];
    url = next ? onThisOrigin(next) : "";
  }
  return out;
}

/** What the entry box holds: digits are an id, anything else a path (`/A/B`, `A\B`, `\A\B`). */
function entryTarget(text) {
  const t = text.trim();
  return /^\d+$/.test(t) ? { id: t } : { path: toPath(t) };
}

/** Show the entry `{id}` or `{path}` with its metadata; `text`, if given, goes in the entry box. */
async function showEntry(target, text, { focus = false } = {}) {
  const req = ++entryRequest;
  if (text !== undefined) el.entryInput.value = text;
  showMessage(el.entryError, "");
  el.entry.setAttribute("aria-busy", "true");
  try {
    const entry = target.path !== undefined
      ? (await api(`${API2}/Entries/ByPath?fullPath=${encodeURIComponent(target.path)}`))?.entry
      : await api(`${API2}/Entries/${encodeURIComponent(target.id)}`);
    if (!entry || entry.id === undefined) throw new Error(`no entry at ${target.path ?? target.id}`);
    const at = `${API2}/Entries/${encodeURIComponent(entry.id)}`;
    const [fields, tags, links] = await Promise.all([
      collection(`${at}/Fields`), collection(`${at}/Tags`), collection(`${at}/Links`),
    ]);
    if (req !== entryRequest) return;
    renderEntry(entry, fields, tags, links);
    if (focus) el.entryName.focus();
  } catch (err) {
    if (req !== entryRequest || !session) return;
    entryShown = null;
    el.entryDetails.hidden = el.entryRefresh.hidden = true;
    el.entryEmpty.hidden = true;
    showMessage(el.entryError, errorText(err));
    markSelected();
  } finally {
    if (req === entryRequest) el.entry.removeAttribute("aria-busy");
  }
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function watermarkText(w) {
  return typeof w === "string" ? w : w?.text ?? "";
}

function renderEntry(entry, fields, tags, links) {
  entryShown = entry;
  const path = entry.fullPath || "\\";
  el.entryDetails.dataset.id = String(entry.id);
  el.entryDetails.dataset.type = entry.entryType ?? "";
  setText(el.entryName, entry.name ? entry.name : "\\ (root)");
  setText(el.entryPath, path);
  const size = entry.electronicDocumentSize ?? entry.elecDocumentSize;
  const facts = [entry.entryType, formatSize(size), entry.mimeType, `id ${entry.id}`];
  setText(el.entryFacts, facts.filter(Boolean).join(" · "));

  const template = entry.templateName || "";
  setText(el.entryTemplate, template || "None");
  el.entryTemplate.classList.toggle("none", !template);
  el.entryTemplate.title = template ? `Template ${entry.templateId ?? ""}`.trim() : "No template";

  // the fields the server lists (the template's first, in its order), then any template field it
  // left out, empty
  const listed = new Set(fields.map((f) => f.name));
  const missing = (entry.templateFieldNames ?? []).filter((name) => !listed.has(name));
  const rows = [...fields, ...missing.map((name) => ({ name, values: [] }))].map((f) => {
    const tr = make("tr");
    tr.dataset.field = f.name;
    tr.dataset.required = String(Boolean(f.isRequired));
    const name = make("td", "fname");
    name.append(make("span", "fname-text", f.name));
    if (f.isRequired) name.append(" ", make("span", "badge req", "required"));
    name.title = [f.fieldType, f.isMultiValue ? "multi-value" : "", f.isRequired ? "required" : ""]
      .filter(Boolean).join(", ");
    const values = (f.values ?? []).map((v) => String(v ?? ""));
    const value = make("td", "fvalue", values.join(", ") + (f.hasMoreValues ? ", …" : ""));
    if (f.isMultiValue) {
      value.classList.add("multi");
      if (values.length) value.title = values.join("\n");
    }
    tr.append(name, value);
    return tr;
  });
  el.entryFields.replaceChildren(...rows);
  el.entryFieldsEmpty.hidden = rows.length > 0;

  el.entryTags.replaceChildren(...tags.map((t) => {
    const li = make("li", "chip");
    li.dataset.tag = t.name;
    li.dataset.secure = String(Boolean(t.isSecure));
    li.append(make("span", "chip-name", t.displayName || t.name));
    if (t.isSecure) {
      li.classList.add("secure");
      li.append(" ", make("span", "badge", "secure"));
      const mark = watermarkText(t.watermark);
      li.title = `Security tag${mark ? `; watermark: ${mark}` : ""}`;
    } else if (t.description) {
      li.title = t.description;
    }
    return li;
  }));
  el.entryTagsEmpty.hidden = tags.length > 0;

  const same = (a, b) => String(a) === String(b);
  el.entryLinks.replaceChildren(...links.map((link) => {
    // this entry's side of the link first, then the other end (a link to itself reads as outgoing)
    const outgoing = same(link.sourceId, entry.id);
    const [own, otherId, otherPath, otherLabel] = outgoing
      ? [link.sourceLabel, link.targetId, link.targetFullPath, link.targetLabel]
      : [link.targetLabel, link.sourceId, link.sourceFullPath, link.sourceLabel];
    const li = make("li");
    li.dataset.direction = outgoing ? "out" : "in";
    if (link.description) li.title = link.description;
    const other = make("button", "other", otherPath || `entry ${otherId}`);
    other.type = "button";
    other.dataset.id = String(otherId);
    other.dataset.path = otherPath ?? "";
    other.setAttribute("aria-label", `Show ${otherPath || `entry ${otherId}`}`);
    li.append(make("span", "own", own ?? ""), " → ", other);
    if (otherLabel) li.append(" ", make("span", "other-label", `(${otherLabel})`));
    return li;
  }));
  el.entryLinksEmpty.hidden = links.length > 0;

  el.entryEmpty.hidden = true;
  el.entryDetails.hidden = el.entryRefresh.hidden = false;
  markSelected();
}

/** The tree marks the entry the panel shows, wherever it is drawn. */
function markSelected() {
  for (const node of el.tree.querySelectorAll(".node.selected")) {
    node.classList.remove("selected");
    node.querySelector(":scope > .name")?.removeAttribute("aria-current");
  }
  if (!entryShown) return;
  const li = el.tree.querySelector(`li[data-id="${CSS.escape(String(entryShown.id))}"]`);
  const node = li?.querySelector(":scope > .node");
  node?.classList.add("selected");
  node?.querySelector(":scope > .name")?.setAttribute("aria-current", "true");
}

el.entryForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  showEntry(entryTarget(el.entryInput.value));
});

el.entryRefresh.addEventListener("click", () => {
  if (entryShown) showEntry({ id: entryShown.id });
});

el.entryLinks.addEventListener("click", (ev) => {
  const button = ev.target.closest("button.other");
  if (!button) return;
  showEntry({ id: button.dataset.id }, button.dataset.path || button.dataset.id, { focus: true });
});

// ---- boot ----------------------------------------------------------------------------------

const resumed = saved();
if (resumed?.token) {
  el.username.value = resumed.user ?? "";
  start(resumed.token, resumed.user ?? "");
} else {
  signOut();
}
