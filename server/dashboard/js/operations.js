// The operations table: every kind the engine runs (copies, deletes, v2's searches, exports,
// imports and test tasks, Open Connectors bulk jobs), live from the event stream, newest first,
// each with its start, how long it has taken, an estimate of what is left while it runs, and
// Cancel. Other panels follow it through `opEvents`: "change" (a row was redrawn), "ended" (an
// operation reached a terminal status), "gone" (a fresh listing no longer has it), "tick" (a
// running one's clock moved) and "open" (its details were asked for).

import {
  $, api, auth, errorText, everyFrame, formatClock, formatDuration, insertSorted, on, onSignOut,
  onSnapshot, plural, setText, showMessage, timeOf,
} from "./core.js";

export const RUNNING = new Set(["NotStarted", "InProgress"]);
const RANK = { NotStarted: 0, InProgress: 1, Completed: 2, Failed: 2, Cancelled: 2 };
const BULK = "BulkQuery";
const BULK_LABEL = "Bulk query: ";
// running rows' durations and estimates are redrawn this often
const TICK_MS = 1000;

export const opEvents = new EventTarget();
export const ops = new Map(); // token -> {op, key, merged, row, cells, shown}
const dirty = new Set();
let merges = 0; // merges so far: each record keeps the number of its latest as `merged`
const el = {
  ops: $("operations"), empty: $("ops-empty"), count: $("ops-count"), error: $("ops-error"),
};

onSignOut(() => {
  ops.clear();
  dirty.clear();
  el.ops.replaceChildren();
  el.empty.hidden = false;
  showMessage(el.error, "");
  setText(el.count, "");
});

// the listing's newest operations, at most (the server's default $top)
const SNAPSHOT_TOP = 200;

onSnapshot(async () => {
  const gen = auth.generation;
  const asked = merges;
  try {
    const body = await api(`/sandbox/operations?$top=${SNAPSHOT_TOP}`);
    if (gen !== auth.generation) return;
    showMessage(el.error, "");
    const listed = body?.value ?? [];
    prune(listed, asked);
    for (const op of listed) mergeOp(op, false);
    render();
  } catch (err) {
    if (gen === auth.generation) showMessage(el.error, `Could not load the operations: ${errorText(err)}`);
  }
});

on("operation", (op) => mergeOp(op, true));

/** Forget the operations a fresh listing should have and has not (a reset, or expiry, while the
 * stream was down): those last heard of before it was asked for (`asked`: the count of merges
 * then), and no older than a full listing reaches. */
function prune(listed, asked) {
  const seen = new Set(listed.map((op) => op.operationToken));
  const created = listed.map((op) => Date.parse(op.createdTimestamp) || 0);
  const oldest = listed.length >= SNAPSHOT_TOP ? Math.min(...created) : -Infinity;
  for (const [token, rec] of ops) {
    if (seen.has(token) || rec.merged > asked || rec.key < oldest) continue;
    rec.row?.remove();
    ops.delete(token);
    dirty.delete(token);
    emit("gone", token);
  }
}

function emit(type, token) {
  opEvents.dispatchEvent(new CustomEvent(type, { detail: token }));
}

/** Merge an operation as the server gave it; messages may come late or twice, never going back. */
export function mergeOp(op, live) {
  const token = op?.operationToken;
  if (!token) return;
  const rec = ops.get(token);
  if (!rec) {
    ops.set(token, { op, key: Date.parse(op.createdTimestamp) || 0, row: null, shown: {} });
    if (live && !RUNNING.has(op.status)) emit("ended", token);
  } else {
    const old = rec.op;
    // never back: a terminal status stays, a started one does not return to NotStarted
    if ((RANK[op.status] ?? 0) < (RANK[old.status] ?? 0)) return;
    const rising = (a, b) => (typeof a === "number" && typeof b === "number" ? Math.max(a, b) : b);
    const longer = (a, b) => ((b?.length ?? 0) >= (a?.length ?? 0) ? b : a);
    rec.op = {
      ...old,
      ...op,
      percentComplete: Math.max(old.percentComplete ?? 0, op.percentComplete ?? 0),
      entriesDone: Math.max(old.entriesDone ?? 0, op.entriesDone ?? 0),
      // (a bulk job's records found so far rise while it runs; its end says how many it wrote)
      recordsCount: RUNNING.has(op.status) ? rising(old.recordsCount, op.recordsCount) : op.recordsCount,
      timeline: longer(old.timeline, op.timeline),
    };
    if (RUNNING.has(old.status) && !RUNNING.has(op.status)) emit("ended", token);
  }
  ops.get(token).merged = ++merges;
  dirty.add(token);
  render();
}

/** When it started, how long it has taken (or took), and, while it runs, how long it may still
 * take: the time so far, scaled by what percentComplete says is left. */
export function timing(op, now = Date.now()) {
  const created = timeOf(op.createdTimestamp);
  const started = timeOf(op.startTimestamp);
  const running = RUNNING.has(op.status);
  const end = running ? now : timeOf(op.statusTimestamp);
  const took = started !== null && end !== null ? Math.max(0, end - started) : null;
  const pct = op.percentComplete ?? 0;
  const eta = op.status === "InProgress" && took !== null && pct > 0 && pct < 100
    ? (took * (100 - pct)) / pct : null;
  const waited = started === null && running && created !== null ? Math.max(0, now - created) : null;
  return { created, started, took, eta, waited };
}

export function typeText(op) {
  return op.operationType === BULK ? "Bulk query" : op.operationType ?? "";
}

/** A bulk job's query (its label says "Bulk query: <CEQL>"), and what else is known of it. */
function bulkText(op) {
  const query = op.label?.startsWith(BULK_LABEL) ? op.label.slice(BULK_LABEL.length) : "";
  const records = typeof op.recordsCount === "number" ? plural(op.recordsCount, "record") : "";
  const event = op.eventId ? `job ${op.eventId}` : "";
  return { query, meta: [records, event].filter(Boolean).join(" · ") };
}

export function labelOf(op) {
  if (op.operationType === BULK) return bulkText(op).query || `Bulk query ${op.eventId ?? ""}`.trim();
  return op.label || `${op.operationType} of entry ${op.entryId ?? "?"}`;
}

// ---- rows ----------------------------------------------------------------------------------

const rowTemplate = document.createElement("template");
rowTemplate.innerHTML = `<tr>
  <td class="label"><button type="button" class="text open"></button><div class="meta" hidden></div><div class="err" hidden></div></td>
  <td class="type"></td>
  <td class="state"><span class="status"></span></td>
  <td class="progress"><div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div class="fill"></div></div></td>
  <td class="num pct">0%</td>
  <td class="started" data-label="Started"></td>
  <td class="num took" data-label="Took"><span class="duration"></span><span class="eta" hidden></span></td>
  <td class="user"></td>
  <td class="actions"><button type="button" class="cancel">Cancel</button></td>
</tr>`;

function buildRow(rec) {
  const row = rowTemplate.content.firstElementChild.cloneNode(true);
  row.dataset.token = rec.op.operationToken;
  const q = (s) => row.querySelector(s);
  rec.cells = {
    label: q(".label .text"), meta: q(".meta"), err: q(".err"), type: q(".type"), status: q(".status"),
    bar: q(".bar"), fill: q(".fill"), pct: q(".pct"), started: q(".started"), duration: q(".duration"),
    eta: q(".eta"), user: q(".user"), cancel: q(".cancel"),
  };
  rec.row = row;
}

function updateRow(rec) {
  const { op, cells, shown, row } = rec;
  const bulk = op.operationType === BULK ? bulkText(op) : null;
  const label = labelOf(op);
  if (shown.kind !== op.operationType) {
    shown.kind = row.dataset.kind = op.operationType ?? "";
    cells.label.classList.toggle("query", Boolean(bulk));
    setText(cells.type, typeText(op));
  }
  if (bulk && shown.meta !== bulk.meta) showMessage(cells.meta, (shown.meta = bulk.meta));
  if (shown.label !== label) {
    shown.label = cells.label.textContent = label;
    cells.label.parentElement.title = `${label}\n${op.operationToken}`;
    cells.label.setAttribute("aria-label", `Details of ${label}`);
    cells.bar.setAttribute("aria-label", `Progress of ${label}`);
    cells.cancel.setAttribute("aria-label", `Cancel ${label}`);
  }
  if (shown.user !== op.user) setText(cells.user, (shown.user = op.user ?? ""));
  if (shown.status !== op.status) {
    shown.status = row.dataset.status = cells.status.textContent = op.status;
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
  if (shown.err !== err) showMessage(cells.err, (shown.err = err));
  updateTimes(rec);
}

function updateTimes(rec) {
  const { op, cells } = rec;
  const t = timing(op);
  const notYet = RUNNING.has(op.status) ? "waiting" : "never";
  setText(cells.started, t.started !== null ? formatClock(t.started) : notYet);
  cells.started.title = t.started !== null ? op.startTimestamp : `created ${op.createdTimestamp ?? ""}`;
  const queued = t.waited !== null ? `queued ${formatDuration(t.waited)}` : "";
  setText(cells.duration, t.took !== null ? formatDuration(t.took) : queued);
  const eta = t.eta !== null ? `~${formatDuration(t.eta)} left` : "";
  if (cells.eta.textContent !== eta) showMessage(cells.eta, eta);
}

const render = everyFrame(() => {
  const fresh = [];
  for (const token of dirty) {
    const rec = ops.get(token);
    if (!rec) continue;
    if (!rec.row) {
      buildRow(rec);
      fresh.push(rec);
    }
    updateRow(rec);
  }
  const changed = [...dirty];
  dirty.clear();
  if (fresh.length) {
    const newer = (a, b) => a.key > b.key || (a.key === b.key && a.op.operationToken > b.op.operationToken);
    insertSorted(el.ops, fresh, newer, (row) => ops.get(row.dataset.token));
  }
  el.empty.hidden = ops.size > 0;
  let running = 0;
  for (const rec of ops.values()) if (RUNNING.has(rec.op.status)) running++;
  setText(el.count, `${plural(ops.size, "operation")}${running ? `, ${running} running` : ""}`);
  for (const token of changed) emit("change", token);
});

// the running ones' clocks go on between messages
setInterval(() => {
  for (const rec of ops.values()) {
    if (rec.row && RUNNING.has(rec.op.status)) {
      updateTimes(rec);
      emit("tick", rec.op.operationToken);
    }
  }
}, TICK_MS);

export async function cancel(token) {
  mergeOp(await api(`/sandbox/operations/${encodeURIComponent(token)}/cancel`, { method: "POST" }), true);
}

el.ops.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button");
  const token = button?.closest("tr")?.dataset.token;
  if (!token) return;
  if (button.classList.contains("open")) {
    emit("open", token);
    return;
  }
  if (!button.classList.contains("cancel")) return;
  button.disabled = true;
  try {
    await cancel(token);
    showMessage(el.error, "");
  } catch (err) {
    if (auth.session) showMessage(el.error, `Cancel failed: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
});
