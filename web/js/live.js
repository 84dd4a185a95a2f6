// One shared subscription to the `runs` topic of the tab's event stream. Views and the tree
// register listeners; each gets {kind, run} for run_created / run_status, and {kind: "resync"}
// when changes may have been missed (the server said so, or the stream came back).

import { onConnection, reconnectEvents, subscribe } from "./events.js";

const listeners = new Set();
let subscribed = false;

/** Registers `fn`; returns the function that unregisters it. */
export function onRunChange(fn) {
  listeners.add(fn);
  ensureOpen();
  return () => listeners.delete(fn);
}

/** Reopens the stream, e.g. after logging in. */
export function reconnect() {
  ensureOpen();
  reconnectEvents();
}

function emit(change) {
  for (const fn of [...listeners]) {
    try {
      fn(change);
    } catch (err) {
      console.warn("run change listener failed", err);
    }
  }
}

function ensureOpen() {
  if (subscribed) return;
  subscribed = true;
  onConnection((open) => { document.body.dataset.live = open ? "on" : "off"; });
  subscribe("runs", null, (kind, data) => {
    if (kind === "run_created" || kind === "run_status") emit({ kind, run: data });
    else if (kind === "resync") emit({ kind: "resync" });
  });
}
