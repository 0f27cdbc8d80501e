// The repository tree (folders expand in place, and are read again when an operation ends) and the
// copy form it fills: click an entry to make it the copy's source and show it in the entry panel,
// "dest" to make a folder the destination.

import {
  $, API, ApiError, api, auth, errorText, formatSize, onSignOut, setText, showMessage, toPath,
} from "./core.js";
import { markSelected, showEntry } from "./entry.js";
import { mergeOp, opEvents } from "./operations.js";

const CHILDREN = "Laserfiche.Repository.Folder/children";
const el = {
  tree: $("tree"), treeRefresh: $("tree-refresh"),
  copyForm: $("copy-form"), copySource: $("copy-source"), copyDest: $("copy-dest"),
  copyName: $("copy-name"), copyPace: $("copy-pace"), copyError: $("copy-error"), copyOk: $("copy-ok"),
};

onSignOut(() => el.tree.replaceChildren());

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
  const gen = auth.generation;
  let entries;
  try {
    entries = await listChildren(li.dataset.id);
  } catch (err) {
    if (gen === auth.generation && err.status !== 401) ul.replaceChildren(note(errorText(err)));
    return;
  }
  if (gen !== auth.generation) return;
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

export function initTree() {
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
  treeTimer = setTimeout(() => auth.session && refreshTree(), 250);
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

opEvents.addEventListener("ended", scheduleTreeRefresh);

// ---- copy form -----------------------------------------------------------------------------

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
    if (auth.session) showMessage(el.copyError, errorText(err));
  } finally {
    button.disabled = false;
  }
});
