// The sandbox's event stream, read with fetch (EventSource cannot send Authorization): each message
// goes to the handlers panels registered (core.on); after a drop it reconnects with Last-Event-ID
// and reloads the snapshots, since replay may not reach back far enough.

import { $, ApiError, auth, dispatch, loadSnapshots, readBody, signOut } from "./core.js";

const RECONNECT_MS = 1000;
const state = $("stream-state");

export class EventStream {
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
    return !this.controller.signal.aborted && this.gen === auth.generation;
  }

  setState(text, live) {
    state.textContent = text;
    state.classList.toggle("live", live);
  }

  async run() {
    let connects = 0;
    while (this.alive) {
      this.setState(connects ? "reconnecting…" : "connecting…", false);
      try {
        const headers = { Accept: "text/event-stream", Authorization: `Bearer ${auth.session.token}` };
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
