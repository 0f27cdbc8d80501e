// One operation in detail, opened from its row: what it is, its times (and what is left while it
// runs), its timeline of status changes, its errors, and its webhook: each delivery's payload, the
// headers each attempt was sent with, the attempts, and Redeliver. Follows the stream while open.

import {
  $, api, auth, debounced, errorText, formatClock, formatDuration, make, on, onSignOut, pairRows,
  plural, setText, showMessage, timeOf,
} from "./core.js";
import { attemptFailed, attemptText, redeliver } from "./deliveries.js";
import { RUNNING, cancel, labelOf, opEvents, ops, timing, typeText } from "./operations.js";

const el = {
  card: $("detail"), title: $("detail-title"), close: $("detail-close"), head: $("detail-head"),
  status: $("detail-status"), label: $("detail-label"), bar: $("detail-bar"), fill: $("detail-fill"),
  facts: $("detail-facts"), cancel: $("detail-cancel"), error: $("detail-error"),
  timeline: $("detail-timeline"), errors: $("detail-errors"), errorsEmpty: $("detail-errors-empty"),
  webhookNote: $("detail-webhook-note"), webhookError: $("detail-webhook-error"), webhooks: $("detail-webhooks"),
};
let shown = null; // the token of the operation shown
let webhookRequest = 0; // bumped by every load of its webhook: only the latest one's answer is drawn

onSignOut(() => close());

opEvents.addEventListener("open", (ev) => open(ev.detail));
opEvents.addEventListener("change", (ev) => {
  if (ev.detail !== shown) return;
  const before = el.card.dataset.opStatus;
  render();
  // its webhook is made as it ends: look again then
  if (before !== el.card.dataset.opStatus && !RUNNING.has(el.card.dataset.opStatus)) loadWebhook();
});
opEvents.addEventListener("gone", (ev) => ev.detail === shown && close());
opEvents.addEventListener("tick", (ev) => {
  if (ev.detail === shown) renderFacts(ops.get(shown).op);
});
const reloadWebhook = debounced(() => loadWebhook(), 150);
on("delivery", (d) => {
  const op = shown && ops.get(shown)?.op;
  if (op?.eventId && d?.eventId === op.eventId) reloadWebhook();
});

function open(token) {
  if (!ops.has(token)) return;
  for (const row of document.querySelectorAll("#operations tr.selected")) row.classList.remove("selected");
  ops.get(token).row?.classList.add("selected");
  shown = token;
  el.card.dataset.token = token;
  showMessage(el.error, "");
  el.webhooks.replaceChildren();
  el.card.hidden = false;
  render();
  loadWebhook();
  el.card.scrollIntoView({ block: "start" });
  el.title.focus({ preventScroll: true });
}

function close() {
  shown = null;
  webhookRequest++;
  el.card.hidden = true;
  delete el.card.dataset.token;
  for (const row of document.querySelectorAll("#operations tr.selected")) row.classList.remove("selected");
}

el.close.addEventListener("click", () => {
  const row = shown && ops.get(shown)?.row;
  close();
  row?.querySelector("button.open")?.focus();
});

el.cancel.addEventListener("click", async () => {
  el.cancel.disabled = true;
  try {
    await cancel(shown);
    showMessage(el.error, "");
  } catch (err) {
    if (auth.session) showMessage(el.error, `Cancel failed: ${errorText(err)}`);
  } finally {
    el.cancel.disabled = false;
  }
});

// ---- the operation -------------------------------------------------------------------------

function render() {
  const op = ops.get(shown)?.op;
  if (!op) return;
  // (the status's colour is the head's: the timeline's changes have colours of their own)
  el.card.dataset.opStatus = el.head.dataset.status = op.status;
  setText(el.status, op.status);
  setText(el.label, labelOf(op));
  const pct = Math.max(0, Math.min(100, Math.round(op.percentComplete ?? 0)));
  el.bar.setAttribute("aria-valuenow", String(pct));
  el.fill.style.width = `${pct}%`;
  el.cancel.hidden = !RUNNING.has(op.status);
  renderFacts(op);
  renderTimeline(op);
  renderErrors(op.errors ?? []);
}

function renderErrors(errors) {
  const key = JSON.stringify(errors);
  if (el.errors.dataset.key === key) return;
  el.errors.dataset.key = key;
  el.errors.replaceChildren(...errors.map((e) => {
    const li = make("li", "", e.errorMessage ?? "");
    if (e.objectId) li.prepend(make("span", "meta", `entry ${e.objectId}: `));
    return li;
  }));
  el.errorsEmpty.hidden = errors.length > 0;
}

function renderFacts(op) {
  const t = timing(op);
  const running = RUNNING.has(op.status);
  const ended = running ? null : timeOf(op.statusTimestamp);
  const entries = `${op.entriesDone ?? 0} of ${op.entriesTotal ?? "?"} entries`;
  const queued = t.waited !== null ? `queued ${formatDuration(t.waited)}` : "";
  const facts = [
    ["Type", typeText(op)],
    ["Progress", `${Math.round(op.percentComplete ?? 0)}% · ${entries}`],
    ["Created", formatClock(t.created)],
    ["Started", t.started !== null ? formatClock(t.started) : running ? "waiting" : "never"],
    ["Ended", ended !== null ? formatClock(ended) : ""],
    ["Took", t.took !== null ? formatDuration(t.took) : queued],
    ["Left", t.eta !== null ? `~${formatDuration(t.eta)}` : ""],
    ["Records", typeof op.recordsCount === "number" ? plural(op.recordsCount, "record") : ""],
    ["Event", op.eventId ? String(op.eventId) : ""],
    ["Entry", op.entryId ? String(op.entryId) : ""],
    ["Pace", op.paceMs ? `${op.paceMs} ms per entry` : ""],
    ["User", op.user ?? ""],
    ["Session", op.sessionId ?? ""],
    ["Token", op.operationToken],
  ].filter(([, value]) => value);
  const key = JSON.stringify(facts);
  if (el.facts.dataset.key !== key) {
    el.facts.dataset.key = key;
    el.facts.replaceChildren(...pairRows(facts));
  }
}

function renderTimeline(op) {
  const created = timeOf(op.createdTimestamp);
  const changes = op.timeline ?? [];
  const key = JSON.stringify(changes);
  if (el.timeline.dataset.key === key) return; // (progress alone changes nothing here)
  el.timeline.dataset.key = key;
  el.timeline.replaceChildren(...changes.map((c) => {
    const at = timeOf(c.timestamp);
    const li = make("li");
    li.dataset.status = c.status;
    const when = make("time", "when", formatClock(at));
    when.dateTime = c.timestamp;
    const offset = at !== null && created !== null ? `+${formatDuration(at - created)}` : "";
    li.append(when, make("span", "status", c.status), make("span", "pct", `${c.percentComplete ?? 0}%`));
    if (offset) li.append(make("span", "offset", offset));
    return li;
  }));
}

// ---- its webhook ---------------------------------------------------------------------------

async function loadWebhook() {
  const req = ++webhookRequest;
  const op = ops.get(shown)?.op;
  if (!op) return;
  if (!op.eventId) {
    showMessage(el.webhookError, "");
    setText(el.webhookNote, "None: only the Elements dialect's asynchronous requests send a webhook.");
    el.webhooks.replaceChildren();
    return;
  }
  try {
    const listed = await api(`/sandbox/deliveries?eventId=${encodeURIComponent(op.eventId)}`);
    const sent = await Promise.all((listed?.value ?? []).map(
      (d) => api(`/sandbox/deliveries/${encodeURIComponent(d.notificationId)}`),
    ));
    if (req !== webhookRequest) return;
    showMessage(el.webhookError, "");
    setText(el.webhookNote, sent.length ? "" : RUNNING.has(op.status)
      ? "Not sent yet: the webhook goes when the operation ends."
      : "No delivery (the request named no callback URL).");
    el.webhooks.replaceChildren(...sent.map(renderDelivery));
  } catch (err) {
    if (req === webhookRequest && auth.session) {
      showMessage(el.webhookError, `Could not load the webhook: ${errorText(err)}`);
    }
  }
}

function renderDelivery(d) {
  const box = make("article", "webhook");
  box.dataset.notification = String(d.notificationId);
  box.dataset.status = d.status ?? "";
  const head = make("div", "webhook-head");
  const redeliverButton = make("button", "redeliver", "Redeliver");
  redeliverButton.type = "button";
  redeliverButton.setAttribute("aria-label", `Redeliver webhook ${d.notificationId}`);
  head.append(
    make("span", "nid", `#${d.notificationId}`), make("span", "status", d.status ?? ""),
    make("span", "url", d.url ?? ""), redeliverButton,
  );
  head.querySelector(".url").title = d.url ?? "";

  const attempts = make("ol", "attempts");
  attempts.append(...(d.attempts ?? []).map((a) => {
    const li = make("li", attemptFailed(a) ? "failed" : "", attemptText(a));
    li.title = a.startedTimestamp ?? "";
    return li;
  }));
  const last = d.attempts?.at(-1);
  const headers = make("table", "pairs headers");
  const tbody = make("tbody");
  tbody.append(...pairRows(Object.entries(d.headers ?? {})));
  headers.append(tbody);
  const payload = make("pre", "payload", d.payload !== null && d.payload !== undefined
    ? JSON.stringify(d.payload, null, 2) : d.body ?? "");

  box.append(
    head, make("h4", "", "Attempts"), attempts,
    make("h4", "", last ? `Headers of attempt #${last.number}` : "Headers"), headers,
    make("h4", "", "Payload"), payload,
  );
  if (!d.attempts?.length) attempts.replaceWith(make("p", "empty", "No attempt yet."));
  return box;
}

el.webhooks.addEventListener("click", async (ev) => {
  const button = ev.target.closest("button.redeliver");
  if (!button) return;
  button.disabled = true;
  try {
    await redeliver(button.closest("article").dataset.notification);
    showMessage(el.webhookError, "");
    loadWebhook();
  } catch (err) {
    if (auth.session) showMessage(el.webhookError, `Redeliver failed: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
});
