// Webhook deliveries: the log of every delivery with its attempts, and the queue of those whose
// every attempt failed, each with Redeliver (the operation's details offer it too: `redeliver`).

import {
  $, api, auth, errorText, everyFrame, insertSorted, on, onSignOut, onSnapshot, setText, showMessage,
} from "./core.js";

// the latest deliveries listed (the server's default $top); queued ones older than those are
// fetched on their own, this many at most
const SNAPSHOT_TOP = 200;
const QUEUE_TOP = 1000;

const el = {
  deliveries: $("deliveries"), deliveriesEmpty: $("deliveries-empty"),
  queue: $("queue"), queueEmpty: $("queue-empty"), queueCount: $("queue-count"), queueError: $("queue-error"),
};
const deliveries = new Map(); // notificationId -> {d, attempts: Map(number -> attempt), merged, row, ...}
const dirty = new Set();
let merges = 0; // merges so far: each record keeps the number of its latest as `merged`

onSignOut(() => {
  deliveries.clear();
  dirty.clear();
  el.deliveries.replaceChildren();
  el.deliveriesEmpty.hidden = false;
  el.queue.replaceChildren();
  el.queueEmpty.hidden = false;
  setText(el.queueCount, "");
  showMessage(el.queueError, "");
});

onSnapshot(async () => {
  const gen = auth.generation;
  const asked = merges;
  const [all, queued] = await Promise.allSettled([
    api(`/sandbox/deliveries?$top=${SNAPSHOT_TOP}`),
    api(`/sandbox/deliveries?status=queued&$top=${QUEUE_TOP}`),
  ]);
  if (gen !== auth.generation) return;
  if (all.status === "fulfilled" && queued.status === "fulfilled") {
    prune(all.value?.value ?? [], queued.value?.value ?? [], asked);
  }
  if (all.status === "fulfilled") for (const d of all.value?.value ?? []) mergeDelivery(d);
  if (queued.status === "fulfilled") {
    showMessage(el.queueError, "");
    for (const d of queued.value?.value ?? []) mergeDelivery(d);
  } else {
    showMessage(el.queueError, `Could not load the delivery queue: ${errorText(queued.reason)}`);
  }
});

on("delivery", (d) => mergeDelivery(d));

/** Forget the deliveries fresh listings should have and have not (a reset while the stream was
 * down): those last heard of before they were asked for (`asked`: the count of merges then), and
 * no older than a full listing reaches. */
function prune(latest, queued, asked) {
  const seen = new Set([...latest, ...queued].map((d) => d.notificationId));
  const ids = latest.map((d) => d.notificationId);
  const oldest = latest.length >= SNAPSHOT_TOP ? Math.min(...ids) : -Infinity;
  for (const [id, rec] of deliveries) {
    if (seen.has(id) || rec.merged > asked || id < oldest) continue;
    rec.row?.remove();
    rec.queueRow?.remove();
    deliveries.delete(id);
    dirty.delete(id);
  }
  render();
}

export function mergeDelivery(d) {
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
  rec.merged = ++merges;
  dirty.add(id);
  render();
}

/** Send a delivered or queued webhook again, now (the bearer's route; the Elements dialect's own
 * redeliver takes Elements credentials). */
export async function redeliver(id) {
  const d = await api(`/sandbox/deliveries/${encodeURIComponent(id)}/redeliver`, { method: "POST" });
  mergeDelivery(d);
  return d;
}

export function attemptText(a) {
  const given = (v) => v !== null && v !== undefined;
  const parts = [`#${a.number}`];
  if (given(a.statusCode)) parts.push(String(a.statusCode));
  if (given(a.durationMs)) parts.push(`${Math.round(a.durationMs)} ms`);
  if (a.error) parts.push(a.error);
  if (parts.length === 1) parts.push("sending…");
  return parts.join(" · ");
}

export function attemptFailed(a) {
  return Boolean(a.error || (a.statusCode && (a.statusCode < 200 || a.statusCode >= 300)));
}

const logTemplate = document.createElement("template");
logTemplate.innerHTML = `<tr>
  <td class="num nid" data-label="#"></td><td class="num eid" data-label="Event"></td>
  <td class="url" data-label="URL"></td><td data-label="Status"><span class="status"></span></td>
  <td data-label="Attempts"><ol class="attempts"></ol></td>
</tr>`;

function updateLogRow(rec, id) {
  if (!rec.row) {
    rec.row = logTemplate.content.firstElementChild.cloneNode(true);
    rec.row.dataset.notification = String(id);
    rec.row.querySelector(".nid").textContent = String(id);
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
    li.className = attemptFailed(a) ? "failed" : "";
    li.title = a.startedTimestamp ?? "";
  }
}

const queueTemplate = document.createElement("template");
queueTemplate.innerHTML = `<tr data-status="queued">
  <td class="num nid" data-label="#"></td><td class="num eid" data-label="Event"></td>
  <td class="url" data-label="URL"></td><td class="last" data-label="Attempts"></td>
  <td class="actions"><button type="button" class="redeliver">Redeliver</button></td>
</tr>`;

/** Put a queued delivery in the queue, or take out one that no longer is; true if its row is new. */
function updateQueueRow(rec, id) {
  if (rec.d.status !== "queued") {
    rec.queueRow?.remove();
    rec.queueRow = null;
    return false;
  }
  const fresh = !rec.queueRow;
  if (fresh) {
    rec.queueRow = queueTemplate.content.firstElementChild.cloneNode(true);
    rec.queueRow.dataset.notification = String(id);
    rec.queueRow.querySelector(".nid").textContent = String(id);
    rec.queueRow.querySelector(".redeliver").setAttribute("aria-label", `Redeliver webhook ${id}`);
  }
  const row = rec.queueRow;
  setText(row.querySelector(".eid"), String(rec.d.eventId ?? ""));
  const url = row.querySelector(".url");
  if (url.textContent !== (rec.d.url ?? "")) url.textContent = url.title = rec.d.url ?? "";
  const numbers = [...rec.attempts.keys()];
  const last = numbers.length ? rec.attempts.get(Math.max(...numbers)) : null;
  const tried = `${numbers.length} attempt${numbers.length === 1 ? "" : "s"}`;
  setText(row.querySelector(".last"), last ? `${tried}, last ${attemptText(last)}` : "");
  return fresh;
}

const render = everyFrame(() => {
  const fresh = [];
  const queued = [];
  for (const id of dirty) {
    const rec = deliveries.get(id);
    if (!rec) continue;
    if (!rec.row) fresh.push(rec);
    updateLogRow(rec, id);
    if (updateQueueRow(rec, id)) queued.push(rec);
  }
  dirty.clear();
  const newer = (a, b) => Number(a.d.notificationId) > Number(b.d.notificationId);
  const recOf = (row) => deliveries.get(Number(row.dataset.notification)) ?? deliveries.get(row.dataset.notification);
  if (fresh.length) insertSorted(el.deliveries, fresh, newer, recOf);
  if (queued.length) insertSorted(el.queue, queued, newer, recOf, (rec) => rec.queueRow);
  el.deliveriesEmpty.hidden = deliveries.size > 0;
  const waiting = el.queue.children.length;
  el.queueEmpty.hidden = waiting > 0;
  setText(el.queueCount, waiting ? `${waiting} queued` : "");
});

el.queue.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button.redeliver");
  if (!button) return;
  button.disabled = true;
  try {
    await redeliver(button.closest("tr").dataset.notification);
    showMessage(el.queueError, "");
  } catch (err) {
    if (auth.session) showMessage(el.queueError, `Redeliver failed: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
});
