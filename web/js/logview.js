// A log viewer: stdout and stderr as tabs (stderr hidden while empty), line numbers, ANSI
// colours, search with next/previous, wrap and follow toggles, and a raw download link.
// Lines arriving from the stream are queued and added once per animation frame in one
// fragment; only the last MAX_LINES lines stay in the page, and "follow" (stay at the bottom)
// is decided once per batch, so a fast writer cannot freeze the tab.

import { appendAnsi } from "./ansi.js";
import { h } from "./dom.js";

/** Lines kept in the page per stream. */
export const MAX_LINES = 5000;
/** Lines per block of the page. */
const CHUNK = 200;

function pane(name, rawUrl) {
  const box = h("div", { class: "log", id: `log-${name}`, tabindex: 0, role: "log", "aria-label": name });
  const note = h("p", { class: "muted log-note" });
  const element = h("div", { class: `log-pane log-${name}`, dataset: { stream: name } }, note, box);
  let queue = [];
  let next = 1; // number of the next line
  let first = 1; // number of the first line in the page
  let frame = 0;
  let shown = 0; // lines in the page
  const state = { follow: true, earlier: false };

  function line(n, text) {
    const div = document.createElement("div");
    div.className = "log-line";
    div.dataset.n = n;
    appendAnsi(div, text);
    return div;
  }

  /** The chunk new lines go to: lines live in blocks of CHUNK, which the browser skips
   * laying out and painting while they are off screen (content-visibility). */
  function tailChunk() {
    const last = box.lastElementChild;
    if (last && last.childElementCount < CHUNK) return last;
    const chunk = document.createElement("div");
    chunk.className = "log-chunk";
    box.append(chunk);
    return chunk;
  }

  function flush() {
    frame = 0;
    if (queue.length === 0) return;
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
    let lines = queue;
    queue = [];
    if (lines.length > MAX_LINES) {
      next += lines.length - MAX_LINES;
      lines = lines.slice(lines.length - MAX_LINES);
      state.earlier = true;
    }
    let i = 0;
    while (i < lines.length) {
      const chunk = tailChunk();
      const fragment = document.createDocumentFragment();
      const room = CHUNK - chunk.childElementCount;
      for (const text of lines.slice(i, i + room)) fragment.append(line(next++, text));
      i += room;
      chunk.append(fragment);
    }
    shown += lines.length;
    let extra = shown - MAX_LINES;
    if (extra > 0) {
      state.earlier = true;
      first += extra;
      shown -= extra;
      while (extra > 0) {
        const head = box.firstElementChild;
        if (head.childElementCount <= extra) {
          extra -= head.childElementCount;
          head.remove();
        } else {
          while (extra-- > 0) head.firstElementChild.remove();
        }
      }
    }
    note.textContent = state.earlier ? "Earlier output is not shown (download the raw file for all of it)." : "";
    if (state.follow && atEnd) box.scrollTop = box.scrollHeight;
    element.dispatchEvent(new CustomEvent("lines"));
  }

  return {
    name,
    element,
    box,
    rawUrl,
    get count() { return next - 1; },
    /** Replaces the content with `text` (whole lines); `truncated` when the file has more before. */
    reset(text, truncated) {
      box.replaceChildren();
      shown = 0;
      queue = [];
      next = 1;
      first = 1;
      state.earlier = truncated;
      if (text) this.add(text.replace(/\n$/, "").split("\n"));
      flush();
      box.scrollTop = box.scrollHeight;
    },
    /** Queues lines; they appear at the next animation frame. */
    add(lines) {
      for (const l of lines) queue.push(l);
      if (queue.length > MAX_LINES * 2) queue = queue.slice(queue.length - MAX_LINES);
      if (!frame) frame = requestAnimationFrame(flush);
    },
    setFollow(on) {
      state.follow = on;
      if (on) box.scrollTop = box.scrollHeight;
    },
    hasText() { return next > 1 || queue.length > 0; },
  };
}

/** Builds the viewer for a run's stdout and stderr; `rawUrl(name)` is the file's URL. */
export function logViewer(rawUrl) {
  const panes = { stdout: pane("stdout", rawUrl("stdout")), stderr: pane("stderr", rawUrl("stderr")) };
  let active = "stdout";
  const tabs = {};
  const tabBar = h("div", { class: "log-tabs", role: "tablist" });
  for (const name of ["stdout", "stderr"]) {
    tabs[name] = h("button", { type: "button", role: "tab", class: "log-tab", id: `tab-${name}`, dataset: { stream: name } }, name);
    tabs[name].addEventListener("click", () => show(name));
    tabBar.append(tabs[name]);
  }
  tabs.stderr.hidden = true;
  const search = h("input", { type: "search", class: "log-search", "data-kb-search": true, placeholder: "Search the log", "aria-label": "search the log" });
  const prev = h("button", { type: "button", class: "secondary", title: "previous match (Shift+Enter)" }, "↑");
  const nextBtn = h("button", { type: "button", class: "secondary", title: "next match (Enter)" }, "↓");
  const hits = h("span", { class: "muted log-hits" });
  const wrap = h("input", { type: "checkbox", id: "log-wrap" });
  const follow = h("input", { type: "checkbox", id: "log-follow", checked: true });
  const download = h("a", { class: "log-download", download: "", href: panes.stdout.rawUrl }, "Download raw");
  const tools = h("div", { class: "log-tools" }, tabBar, search, prev, nextBtn, hits,
    h("label", { class: "inline" }, wrap, " wrap"), h("label", { class: "inline" }, follow, " follow"), download);
  const element = h("div", { class: "log-viewer", dataset: { wrap: "off" } }, tools, panes.stdout.element, panes.stderr.element);

  function show(name) {
    active = name;
    for (const n of ["stdout", "stderr"]) {
      panes[n].element.hidden = n !== name;
      tabs[n].setAttribute("aria-selected", String(n === name));
      tabs[n].classList.toggle("active", n === name);
    }
    download.href = panes[name].rawUrl;
    download.textContent = `Download ${name}`;
  }
  show("stdout");
  panes.stderr.element.addEventListener("lines", () => { tabs.stderr.hidden = false; });

  let current = null;
  function find(dir) {
    const q = search.value;
    current?.classList.remove("log-hit");
    if (!q) { hits.textContent = ""; return; }
    const lines = [...panes[active].box.querySelectorAll(".log-line")];
    const start = current && current.isConnected && panes[active].box.contains(current) ? lines.indexOf(current) : (dir > 0 ? -1 : lines.length);
    for (let i = 1; i <= lines.length; i++) {
      const idx = (start + dir * i + lines.length * 2) % lines.length;
      if (lines[idx].textContent.includes(q)) {
        current = lines[idx];
        current.classList.add("log-hit");
        current.scrollIntoView({ block: "center" });
        follow.checked = false;
        panes[active].setFollow(false);
        hits.textContent = `line ${current.dataset.n}`;
        return;
      }
    }
    current = null;
    hits.textContent = "no match";
  }
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") { ev.preventDefault(); find(ev.shiftKey ? -1 : 1); }
  });
  prev.addEventListener("click", () => find(-1));
  nextBtn.addEventListener("click", () => find(1));
  wrap.addEventListener("change", () => { element.dataset.wrap = wrap.checked ? "on" : "off"; });
  follow.addEventListener("change", () => { for (const p of Object.values(panes)) p.setFollow(follow.checked); });

  return { element, panes, show };
}
