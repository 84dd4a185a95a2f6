// Live events for this tab: one subscription API over the browser's single event stream.
// With SharedWorker, every tab of this UI shares one connection (events-worker.js); without
// it, this tab holds its own (events-hub.js). Either way a tab never opens more than one.

import { API } from "./api.js";
import { EventHub, topicKey } from "./events-hub.js";

const TAB = Math.random().toString(36).slice(2, 10);
const PING_MS = 5000;
const handlers = new Map(); // key -> fn(kind, data)
const stateListeners = new Set();
let serial = 0;
let send;

function dispatch(key, kind, data) {
  if (key === "*") {
    for (const fn of stateListeners) fn(data.open);
    return;
  }
  const fn = handlers.get(key);
  if (!fn) return;
  try {
    fn(kind, data);
  } catch (err) {
    console.warn("event handler failed", err);
  }
}

function start() {
  if (typeof SharedWorker === "function") {
    try {
      const worker = new SharedWorker(new URL("./events-worker.js", import.meta.url), { type: "module", name: "conductor-events" });
      const port = worker.port;
      port.onmessage = ({ data }) => dispatch(data.key, data.kind, data.data);
      port.start();
      send = (msg) => port.postMessage(msg);
      setInterval(() => send({ op: "ping" }), PING_MS);
      window.addEventListener("pagehide", () => send({ op: "bye" }));
      return;
    } catch (err) {
      console.warn("no shared worker; this tab opens its own event stream", err);
    }
  }
  const hub = new EventHub(API, dispatch);
  send = (msg) => {
    if (msg.op === "add") hub.add(msg.topic);
    else if (msg.op === "remove") hub.remove(msg.key);
    else if (msg.op === "reconnect") hub.reconnect();
  };
}

/**
 * Follows `name` ("runs", "run:<id>", "bus:<project>[/<task>]") from `pos` (optional); `fn`
 * gets (kind, data) per event. Returns the function that stops following.
 */
export function subscribe(name, pos, fn) {
  if (!send) start();
  const key = name === "runs" ? name : `${name}#${TAB}-${++serial}`;
  handlers.set(key, fn);
  send({ op: "add", topic: pos ? `${key}@${pos}` : key });
  return () => {
    handlers.delete(key);
    send({ op: "remove", key: topicKey(key) });
  };
}

/** Calls `fn(open)` when the shared stream opens or drops. */
export function onConnection(fn) {
  stateListeners.add(fn);
}

/** Reopens the stream (after logging in). */
export function reconnectEvents() {
  if (send) send({ op: "reconnect" });
}
