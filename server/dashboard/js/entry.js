// The entry panel: one entry and its metadata (template, fields, tags, links), read through v2;
// picked in the tree, typed as an id or a path, or reached along a link.

import { $, API2, api, auth, errorText, formatSize, make, onSignOut, setText, showMessage, toPath } from "./core.js";

const el = {
  tree: $("tree"), entry: $("entry"), entryForm: $("entry-form"), entryInput: $("entry-input"),
  entryRefresh: $("entry-refresh"), entryError: $("entry-error"), entryEmpty: $("entry-empty"),
  entryDetails: $("entry-details"), entryName: $("entry-name"), entryPath: $("entry-path"),
  entryFacts: $("entry-facts"), entryTemplate: $("entry-template"), entryFields: $("entry-fields"),
  entryFieldsEmpty: $("entry-fields-empty"), entryTags: $("entry-tags"), entryTagsEmpty: $("entry-tags-empty"),
  entryLinks: $("entry-links"), entryLinksEmpty: $("entry-links-empty"),
};

const ENTRY_PAGES = 100; // of each collection at most: plenty for a sandbox's entry
let entryShown = null; // the entry the panel shows, as v2 gives it
let entryRequest = 0; // bumped by every load: only the latest one's answer is drawn

onSignOut(() => {
  entryRequest++;
  entryShown = null;
  el.entryInput.value = "";
  el.entry.removeAttribute("aria-busy");
  el.entryDetails.hidden = el.entryRefresh.hidden = true;
  el.entryEmpty.hidden = false;
  showMessage(el.entryError, "");
  for (const list of [el.entryFields, el.entryTags, el.entryLinks]) list.replaceChildren();
  markSelected();
});

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
export async function showEntry(target, text, { focus = false } = {}) {
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
    if (req !== entryRequest || !auth.session) return;
    entryShown = null;
    el.entryDetails.hidden = el.entryRefresh.hidden = true;
    el.entryEmpty.hidden = true;
    showMessage(el.entryError, errorText(err));
    markSelected();
  } finally {
    if (req === entryRequest) el.entry.removeAttribute("aria-busy");
  }
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
export function markSelected() {
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
