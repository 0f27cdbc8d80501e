// The webhook inbox panel: the inboxes (/sandbox/inbox), and in the one opened, each delivery that
// arrived, newest first: its verdict and each signature scheme's, its headers and its body. Live:
// the stream's "inbox" message says something arrived, and only what is new is read.

import {
  $, api, auth, debounced, errorText, formatClock, make, on, onSignOut, onSnapshot, pairRows, plural,
  setText, showMessage, timeOf,
} from "./core.js";

const el = {
  form: $("inbox-form"), name: $("inbox-name"), error: $("inbox-error"), list: $("inboxes"),
  listEmpty: $("inboxes-empty"), count: $("inbox-count"), view: $("inbox-view"), url: $("inbox-url"),
  clear: $("inbox-clear"), deliveries: $("inbox-deliveries"), empty: $("inbox-empty"),
};
const SCHEMES = { elements: "Elements HMAC", standard: "Standard Webhooks" };
let current = null; // {name, last: the latest id shown, loading, again}

onSignOut(() => {
  current = null;
  el.list.replaceChildren();
  el.listEmpty.hidden = false;
  el.view.hidden = true;
  el.deliveries.replaceChildren();
  el.name.value = "";
  setText(el.count, "");
  showMessage(el.error, "");
});

onSnapshot(() => {
  loadList();
  if (current) openInbox(current.name);
});
const reloadList = debounced(() => loadList(), 150);
on("inbox", (msg) => {
  reloadList();
  if (!current || msg?.name !== current.name) return;
  // (an inbox emptied elsewhere numbers from 1 again: read it all again)
  if (typeof msg.id === "number" && msg.id <= current.last) openInbox(current.name);
  else loadNew();
});

const inboxPath = (name) => `/sandbox/inbox/${encodeURIComponent(name)}`;

async function loadList() {
  const gen = auth.generation;
  try {
    const body = await api("/sandbox/inbox");
    if (gen === auth.generation) renderList(body?.value ?? []);
  } catch (err) {
    if (gen !== auth.generation || !auth.session) return;
    showMessage(el.error, `Could not list the inboxes: ${errorText(err)}`);
  }
}

function renderList(inboxes) {
  el.list.replaceChildren(...inboxes.map((box) => {
    const li = make("li");
    const button = make("button", "inbox");
    button.type = "button";
    button.dataset.name = box.name;
    if (current?.name === box.name) button.setAttribute("aria-current", "true");
    const last = box.lastReceivedAt ? ` · last ${formatClock(timeOf(box.lastReceivedAt))}` : "";
    const count = plural(box.count, "delivery", "deliveries");
    button.append(make("span", "inbox-name", box.name), make("span", "meta", ` ${count}${last}`));
    li.append(button);
    return li;
  }));
  el.listEmpty.hidden = inboxes.length > 0;
  setText(el.count, inboxes.length ? plural(inboxes.length, "inbox", "inboxes") : "");
}

function openInbox(name) {
  current = { name, last: 0, loading: false, again: false };
  el.name.value = name;
  for (const b of el.list.querySelectorAll("button.inbox")) {
    if (b.dataset.name === name) b.setAttribute("aria-current", "true");
    else b.removeAttribute("aria-current");
  }
  el.view.dataset.name = name;
  setText(el.url, new URL(inboxPath(name), location.href).href);
  el.deliveries.replaceChildren();
  el.empty.hidden = true;
  el.view.hidden = false;
  showMessage(el.error, "");
  loadNew();
}

/** Read what arrived in the open inbox since the last shown (one read at a time; a message that
 * comes meanwhile asks for one more). */
async function loadNew() {
  const box = current;
  if (box.loading) {
    box.again = true;
    return;
  }
  box.loading = true;
  try {
    do {
      box.again = false;
      const body = await api(`${inboxPath(box.name)}?after=${box.last}`);
      if (box !== current) return;
      for (const d of body?.deliveries ?? []) {
        if (d.id <= box.last) continue;
        box.last = d.id;
        el.deliveries.prepend(renderDelivery(d));
      }
      el.empty.hidden = el.deliveries.children.length > 0;
    } while (box.again && box === current);
  } catch (err) {
    if (box === current && auth.session) showMessage(el.error, errorText(err));
  } finally {
    box.loading = false;
  }
}

function verdictText(verified) {
  if (verified === true) return "verified";
  return verified === false ? "not verified" : "unsigned";
}

function schemeText(s) {
  if (!s?.present) return "absent";
  if (s.valid === null || s.valid === undefined) return "not checked";
  return s.valid ? "valid" : "invalid";
}

function renderDelivery(d) {
  const li = make("li", "inbox-delivery");
  li.dataset.id = String(d.id);
  li.dataset.verified = String(d.verified);
  const details = make("details");
  const summary = make("summary");
  const when = make("time", "when", formatClock(timeOf(d.receivedAt)));
  when.dateTime = d.receivedAt ?? "";
  summary.append(
    make("span", "nid", `#${d.id}`), when, make("span", "method", d.method ?? ""),
    make("span", "verdict", verdictText(d.verified)),
  );
  const schemes = make("span", "schemes");
  for (const [key, title] of Object.entries(SCHEMES)) {
    const s = d.signatures?.[key];
    const chip = make("span", "scheme", `${title}: ${schemeText(s)}`);
    chip.dataset.scheme = key;
    chip.dataset.valid = String(s?.present ? s.valid : "absent");
    schemes.append(chip);
  }
  const facts = [d.instanceId !== null && d.instanceId !== undefined ? `instance ${d.instanceId}` : "",
    `answered ${d.answeredStatus}`].filter(Boolean).join(" · ");
  summary.append(schemes, make("span", "meta", facts));

  const headers = make("table", "pairs headers");
  const tbody = make("tbody");
  tbody.append(...pairRows(Object.entries(d.headers ?? {})));
  headers.append(tbody);
  const json = d.json !== null && d.json !== undefined;
  const body = make("pre", "payload", json ? JSON.stringify(d.json, null, 2) : d.body ?? "");
  body.dataset.encoding = d.bodyEncoding ?? "";
  const bodyTitle = d.bodyEncoding === "base64" ? "Body (base64: not UTF-8)" : "Body";
  details.append(summary, make("h4", "", "Headers"), headers, make("h4", "", bodyTitle), body);
  li.append(details);
  return li;
}

el.form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = el.name.value.trim();
  if (name) openInbox(name);
});

el.list.addEventListener("click", (ev) => {
  const button = ev.target.closest("button.inbox");
  if (button) openInbox(button.dataset.name);
});

el.clear.addEventListener("click", async () => {
  if (!current) return;
  const name = current.name;
  el.clear.disabled = true;
  try {
    await api(inboxPath(name), { method: "DELETE" });
    showMessage(el.error, "");
    if (current?.name === name) openInbox(name);
    loadList();
  } catch (err) {
    if (auth.session) showMessage(el.error, `Could not empty the inbox: ${errorText(err)}`);
  } finally {
    el.clear.disabled = false;
  }
});
