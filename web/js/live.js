// One shared subscription to the all-runs stream (GET /api/v1/runs/stream/all). Views and the
// tree register listeners; each gets {kind, run} for run_created / run_status, and
// {kind: "resync"} when the server says the client fell behind or the connection came back.

import { API } from "./api.js";

const listeners = new Set();
let source = null;

/** Registers `fn`; returns the function that unregisters it. */
export function onRunChange(fn) {
  listeners.add(fn);
  ensureOpen();
  return () => listeners.delete(fn);
}

/** (Re)opens the stream, e.g. after logging in. */
export function reconnect() {
  if (source) source.close();
  source = null;
  ensureOpen();
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
  if (source) return;
  source = new EventSource(`${API}/runs/stream/all`, { withCredentials: true });
  let opened = false;
  source.addEventListener("ready", () => {
    // A reconnect may have missed events: let everyone re-read.
    if (opened) emit({ kind: "resync" });
    opened = true;
    document.body.dataset.live = "on";
  });
  for (const kind of ["run_created", "run_status"]) {
    source.addEventListener(kind, (ev) => {
      try {
        emit({ kind, run: JSON.parse(ev.data) });
      } catch (err) {
        console.warn("bad run event", err);
      }
    });
  }
  source.addEventListener("resync", () => emit({ kind: "resync" }));
  source.onerror = () => {
    document.body.dataset.live = "off";
  };
}
