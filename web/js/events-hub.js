// The one event stream of a browser: GET /api/v1/events with the topics every open tab follows.
// Topics are added and removed on the open stream (POST /api/v1/events/{id}/topics); after a
// disconnect the stream reopens with each topic's last position, so nothing is lost or repeated.
// Runs inside the shared worker (events-worker.js), or in the page when SharedWorker is missing.

const RETRY_MIN = 1000;
const RETRY_MAX = 15000;

/** Name of a topic without its `@position`. */
export const topicKey = (topic) => topic.split("@")[0];

export class EventHub {
  /**
   * @param {string} api  base path of the API, e.g. "/api/v1"
   * @param {(key: string, kind: string, data: object) => void} deliver  called per event;
   *   `key` "*" with kind "state" reports the connection ({open: bool})
   */
  constructor(api, deliver) {
    this.api = api;
    this.deliver = deliver;
    this.topics = new Map(); // key -> position ("" when none)
    this.onServer = new Set();
    this.source = null;
    this.stream = null;
    this.retry = RETRY_MIN;
    this.syncing = false;
    this.dirty = false;
    this.opened = false;
    this.timer = null;
  }

  add(topic) {
    const [key, pos] = topic.split("@");
    if (!this.topics.has(key)) this.topics.set(key, pos || "");
    this.changed();
  }

  remove(key) {
    this.topics.delete(key);
    this.changed();
  }

  /** Reopens the stream (e.g. after logging in). */
  reconnect() {
    this.close();
    this.open();
  }

  close() {
    clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
    this.stream = null;
    this.onServer.clear();
  }

  changed() {
    if (this.topics.size === 0) {
      if (this.source) this.close();
      return;
    }
    if (!this.source) {
      if (!this.timer) this.timer = setTimeout(() => { this.timer = null; this.open(); }, 0);
      return;
    }
    this.sync();
  }

  spec(key) {
    const pos = this.topics.get(key);
    return pos ? `${key}@${pos}` : key;
  }

  open() {
    clearTimeout(this.timer);
    this.timer = null;
    if (this.source || this.topics.size === 0) return;
    const list = [...this.topics.keys()];
    const url = `${this.api}/events?topics=${encodeURIComponent(list.map((k) => this.spec(k)).join(","))}`;
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    this.onServer = new Set(list);
    source.addEventListener("hello", (ev) => {
      this.stream = JSON.parse(ev.data).stream;
      this.retry = RETRY_MIN;
      if (this.opened && this.topics.has("runs")) this.deliver("runs", "resync", { topic: "runs" });
      this.opened = true;
      this.deliver("*", "state", { open: true });
      this.sync();
    });
    for (const kind of ["run_created", "run_status", "log", "status", "end", "bus", "resync", "error"]) {
      source.addEventListener(kind, (ev) => {
        if (!ev.data) return; // a transport error, handled by onerror
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch (_) {
          return;
        }
        const key = data.topic;
        if (!this.topics.has(key)) return;
        if (data.pos) this.topics.set(key, data.pos);
        if (kind === "bus" && data.messages.length) this.topics.set(key, data.messages[data.messages.length - 1].msg_id);
        this.deliver(key, kind, data);
      });
    }
    source.onerror = () => {
      if (this.source !== source) return;
      this.close();
      this.deliver("*", "state", { open: false });
      this.timer = setTimeout(() => { this.timer = null; this.open(); }, this.retry);
      this.retry = Math.min(this.retry * 2, RETRY_MAX);
    };
  }

  /** Brings the open stream's topics in line with the wanted ones, one request at a time. */
  async sync() {
    if (!this.stream) return;
    if (this.syncing) {
      this.dirty = true;
      return;
    }
    this.syncing = true;
    try {
      do {
        this.dirty = false;
        const add = [...this.topics.keys()].filter((k) => !this.onServer.has(k));
        const remove = [...this.onServer].filter((k) => !this.topics.has(k));
        if (add.length === 0 && remove.length === 0) break;
        const stream = this.stream;
        const resp = await fetch(`${this.api}/events/${encodeURIComponent(stream)}/topics`, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ add: add.map((k) => this.spec(k)), remove }),
        });
        if (stream !== this.stream) break;
        if (!resp.ok) {
          // The stream is gone (or the server refused): reopen with the wanted topics.
          this.reconnect();
          break;
        }
        for (const k of add) this.onServer.add(k);
        for (const k of remove) this.onServer.delete(k);
      } while (this.dirty);
    } catch (_) {
      this.reconnect();
    } finally {
      this.syncing = false;
    }
  }
}
