// Document sandbox dashboard: sign in, browse the repository and read an entry's metadata, start
// paced copies and watch every kind of operation live (with a detail view of each: its timeline,
// errors and webhook), webhook deliveries and their queue, arm faults, and read what arrived in the
// webhook inboxes. No build step, no dependencies: each panel is an ES module in js/.

import {
  $, API, ApiError, REPO_ID, STORE_KEY, auth, errorText, loadSnapshots, onSignOut, readBody, showMessage, signOut,
} from "./js/core.js";
import { EventStream } from "./js/stream.js";
import { initTree } from "./js/tree.js";
import "./js/operations.js";
import "./js/deliveries.js";
import "./js/detail.js";
import "./js/faults.js";
import "./js/inbox.js";

const el = {
  signin: $("signin"), signinForm: $("signin-form"), username: $("username"), password: $("password"),
  signinError: $("signin-error"), app: $("app"), who: $("who"), signout: $("signout"), stream: $("stream-state"),
};
$("repo-label").textContent = REPO_ID;

function saved() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
  } catch {
    return null;
  }
}

onSignOut((message) => {
  el.app.hidden = true;
  el.who.hidden = el.signout.hidden = el.stream.hidden = true;
  el.signin.hidden = false;
  showMessage(el.signinError, message);
  el.password.value = "";
  el.username.focus();
});

function start(token, user) {
  const gen = ++auth.generation;
  auth.session = { token, user, gen, stream: null };
  sessionStorage.setItem(STORE_KEY, JSON.stringify({ token, user }));
  el.signin.hidden = true;
  el.app.hidden = false;
  el.who.textContent = user;
  el.who.hidden = el.signout.hidden = el.stream.hidden = false;
  showMessage(el.signinError, "");
  initTree();
  // the stream first, then the snapshots: nothing that happens in between is missed
  auth.session.stream = new EventStream(gen);
  auth.session.stream.opened.then(() => {
    if (gen === auth.generation) loadSnapshots();
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

const resumed = saved();
if (resumed?.token) {
  el.username.value = resumed.user ?? "";
  start(resumed.token, resumed.user ?? "");
} else {
  signOut();
}
