// The faults panel: the armed faults (POST /sandbox/faults arms one for a session: this dashboard's
// unless another is named), a form for each kind, and Disarm. A fault is used up as it matches, so
// the list is read again when operations start and webhooks are attempted.

import {
  $, api, auth, debounced, errorText, make, on, onSignOut, onSnapshot, plural, setText, showMessage,
} from "./core.js";
import { ops } from "./operations.js";

const el = {
  form: $("fault-form"), kind: $("fault-kind"), after: $("fault-after"), opType: $("fault-op-type"),
  message: $("fault-message"), url: $("fault-url"), status: $("fault-status"), delay: $("fault-delay"),
  times: $("fault-times"), session: $("fault-session"), sessions: $("fault-sessions"),
  error: $("fault-error"), ok: $("fault-ok"), list: $("faults"), empty: $("faults-empty"),
  count: $("faults-count"), clear: $("faults-clear"),
};
// what the server does when the status is left out (server/api/sandbox.py)
const DEFAULT_STATUS = { "operation-failure": 500, "webhook-failure": 503 };
let armed = 0; // faults listed: while there are none, nothing can use one up

onSignOut(() => {
  armed = 0;
  el.list.replaceChildren();
  el.empty.hidden = false;
  el.clear.hidden = true;
  setText(el.count, "");
  showMessage(el.error, "");
  showMessage(el.ok, "");
});

onSnapshot(() => load());
const reload = debounced(() => armed && load(), 200);
on("operation", (op) => op?.status === "NotStarted" && reload());
on("delivery", () => reload());

async function load() {
  const gen = auth.generation;
  try {
    const body = await api("/sandbox/faults");
    if (gen === auth.generation) render(body?.value ?? []);
  } catch (err) {
    if (gen !== auth.generation || !auth.session) return;
    showMessage(el.error, `Could not load the faults: ${errorText(err)}`);
  }
}

function describe(f) {
  const parts = [];
  if (f.kind === "operation-failure") {
    parts.push(`${f.operationType ?? "any operation"} fails after ${plural(f.afterEntries ?? 0, "entry", "entries")}`);
    parts.push(`status ${f.status}`);
    if (f.message) parts.push(`“${f.message}”`);
  } else if (f.kind === "webhook-failure") {
    parts.push(`webhooks to ${f.url} fail with ${f.status}`);
  } else {
    parts.push(`webhooks to ${f.url} held ${f.delayMs} ms`);
  }
  return parts.join(" · ");
}

function render(faults) {
  armed = faults.length;
  el.list.replaceChildren(...faults.map((f) => {
    const li = make("li", "fault");
    li.dataset.fault = f.id;
    li.dataset.kind = f.kind;
    const text = make("div", "fault-text");
    text.append(make("span", "fault-kind", f.kind), " ", make("span", "fault-what", describe(f)));
    const meta = make("div", "meta", `${plural(f.remaining, "use")} left · ${f.user}'s session ${f.sessionId}`);
    const disarm = make("button", "disarm small", "Disarm");
    disarm.type = "button";
    disarm.setAttribute("aria-label", `Disarm fault ${f.id}`);
    li.append(text, meta, disarm);
    return li;
  }));
  el.empty.hidden = faults.length > 0;
  el.clear.hidden = faults.length === 0;
  setText(el.count, faults.length ? `${faults.length} armed` : "");
}

// ---- the form ---------------------------------------------------------------------------------

function showFields() {
  const kind = el.kind.value;
  for (const group of el.form.querySelectorAll("[data-for]")) {
    group.hidden = !group.dataset.for.split(" ").includes(kind);
  }
  el.status.placeholder = String(DEFAULT_STATUS[kind] ?? "");
}
el.kind.addEventListener("change", showFields);
showFields();

// the sessions the operations listed ran in, to pick from
el.session.addEventListener("focus", () => {
  const seen = new Map();
  for (const { op } of ops.values()) if (op.sessionId) seen.set(op.sessionId, op.user);
  el.sessions.replaceChildren(...[...seen].map(([id, user]) => {
    const option = make("option");
    option.value = id;
    option.label = `${user}'s session`;
    return option;
  }));
});

/** The request for the form's kind: only the fields that kind takes, and only those filled in (the
 * server checks them and says what is wrong). */
function request() {
  const kind = el.kind.value;
  const body = { kind };
  const number = (input) => (input.value.trim() === "" ? undefined : Number(input.value));
  const put = (name, value) => {
    if (value !== undefined && value !== "") body[name] = value;
  };
  put("times", number(el.times));
  put("sessionId", el.session.value.trim());
  if (kind === "operation-failure") {
    put("afterEntries", number(el.after));
    put("operationType", el.opType.value);
    put("message", el.message.value.trim());
  } else {
    put("url", el.url.value.trim());
  }
  if (kind !== "webhook-delay") put("status", number(el.status));
  else put("delayMs", number(el.delay));
  return body;
}

el.form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const button = el.form.querySelector("button[type=submit]");
  showMessage(el.error, "");
  showMessage(el.ok, "");
  button.disabled = true;
  try {
    const fault = await api("/sandbox/faults", { method: "POST", json: request() });
    showMessage(el.ok, `Armed ${fault.kind} ${fault.id}.`);
    await load();
  } catch (err) {
    if (auth.session) showMessage(el.error, errorText(err));
  } finally {
    button.disabled = false;
  }
});

async function disarm(url) {
  showMessage(el.ok, "");
  try {
    await api(url, { method: "DELETE" });
    showMessage(el.error, "");
  } catch (err) {
    if (auth.session) showMessage(el.error, `Disarm failed: ${errorText(err)}`);
  }
  await load();
}

el.list.addEventListener("click", (ev) => {
  const button = ev.target.closest("button.disarm");
  if (!button) return;
  button.disabled = true;
  disarm(`/sandbox/faults/${encodeURIComponent(button.closest("li").dataset.fault)}`);
});
el.clear.addEventListener("click", () => disarm("/sandbox/faults"));
