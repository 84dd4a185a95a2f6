// The shared worker holding the browser's one event stream for every tab of this UI. A tab
// sends {op: "add", topic} / {op: "remove", key} / {op: "reconnect"} / {op: "ping"} /
// {op: "bye"}; it receives {key, kind, data} for its topics and {kind: "state"} for the
// connection. Tabs ping every few seconds; a silent tab's topics are dropped.

import { EventHub, topicKey } from "./events-hub.js";

const SILENT_MS = 30000;
const API = new URL("../../api/v1", self.location.href).pathname;
const ports = new Map(); // port -> {keys: Set, seen: time}
const subscribers = new Map(); // key -> Set(port)
let connection = { open: false };

const hub = new EventHub(API, (key, kind, data) => {
  if (key === "*") {
    connection = data;
    for (const port of ports.keys()) port.postMessage({ key, kind, data });
    return;
  }
  for (const port of subscribers.get(key) || []) port.postMessage({ key, kind, data });
});

function drop(port, key) {
  const set = subscribers.get(key);
  if (!set) return;
  set.delete(port);
  if (set.size === 0) {
    subscribers.delete(key);
    hub.remove(key);
  }
}

function forget(port) {
  const entry = ports.get(port);
  if (!entry) return;
  for (const key of entry.keys) drop(port, key);
  ports.delete(port);
}

self.onconnect = (ev) => {
  const port = ev.ports[0];
  ports.set(port, { keys: new Set(), seen: Date.now() });
  port.onmessage = ({ data: msg }) => {
    const entry = ports.get(port);
    if (!entry) return;
    entry.seen = Date.now();
    if (msg.op === "add") {
      const key = topicKey(msg.topic);
      entry.keys.add(key);
      if (!subscribers.has(key)) subscribers.set(key, new Set());
      subscribers.get(key).add(port);
      hub.add(msg.topic);
    } else if (msg.op === "remove") {
      entry.keys.delete(msg.key);
      drop(port, msg.key);
    } else if (msg.op === "reconnect") {
      hub.reconnect();
    } else if (msg.op === "bye") {
      forget(port);
    }
  };
  port.start();
  port.postMessage({ key: "*", kind: "state", data: connection });
};

setInterval(() => {
  const now = Date.now();
  for (const [port, entry] of ports) if (now - entry.seen > SILENT_MS) forget(port);
}, SILENT_MS / 3);
