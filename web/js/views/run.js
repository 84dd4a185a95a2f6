// A run: run-info, live stdout/stderr (the tail of each file, then the run stream from those
// byte offsets), the rendered output.md, the prompt and the raw run-info.yaml.

import { API, ApiError, get, post, readTail, request, seg } from "../api.js";
import { badge, dl, fmtTime, h, link, notice } from "../dom.js";
import { renderMarkdown } from "../markdown.js";

const TAIL_BYTES = 256 * 1024;
const MAX_LINES = 5000;

export function runView(view, { run }, ctx) {
  const base = `/runs/${seg(run)}`;
  const statusSlot = h("span", { id: "run-status" }, badge("unknown"));
  const crumbs = h("nav", { class: "crumbs" }, h("a", { href: link.home() }, "Dashboard"));
  const infoBox = h("div", { id: "run-info" }, "Loading…");
  const message = h("div", { class: "form-message" });
  const stopButton = h("button", { type: "button", id: "run-stop", class: "danger", disabled: true }, "Stop run");
  const stdout = logPane("stdout");
  const stderr = logPane("stderr");
  const outputBox = h("div", { id: "run-output" }, h("p", { class: "muted" }, "Loading…"));
  const promptBox = h("pre", { id: "run-prompt" }, "");
  const yamlBox = h("pre", { id: "run-yaml" }, "");
  view.replaceChildren(
    crumbs,
    h("h1", {}, "Run ", h("span", { class: "id" }, run), " ", statusSlot),
    h("div", { class: "actions" }, stopButton), message,
    h("section", { class: "panel" }, h("h2", {}, "Run info"), infoBox),
    h("section", { class: "panel" }, h("h2", {}, "Output"), outputBox),
    h("section", { class: "panel logs" }, h("h2", {}, "Live log ", h("span", { class: "muted", id: "stream-state" }, "")),
      h("div", { class: "log-grid" }, stdout.element, stderr.element)),
    h("details", { class: "panel" }, h("summary", {}, "Prompt"), promptBox),
    h("details", { class: "panel" }, h("summary", {}, "run-info.yaml"), yamlBox));

  let source = null;
  let closed = false;
  let project = null;
  let task = null;

  function setStatus(s) {
    statusSlot.replaceChildren(badge(s));
    stopButton.disabled = s !== "running";
  }

  async function loadInfo() {
    try {
      const r = await get(base);
      const i = r.info || {};
      project = r.project_id;
      task = r.task_id;
      crumbs.replaceChildren(h("a", { href: link.home() }, "Dashboard"), " / ",
        h("a", { href: link.project(project) }, project), " / ",
        h("a", { href: link.task(project, task) }, task), " / ", run);
      setStatus(r.status);
      ctx.reveal({ project, task, run });
      infoBox.replaceChildren(
        r.error ? notice("error", `run-info.yaml is unreadable: ${r.error}`) : "",
        dl([
          ["Status", r.status],
          ["Agent", i.agent],
          ["Agent version", i.agent_version],
          ["Exit code", r.status === "running" ? "—" : i.exit_code],
          ["Error", i.error_summary],
          ["Started", fmtTime(i.start_time)],
          ["Ended", fmtTime(i.end_time)],
          ["Parent run", i.parent_run_id ? h("a", { href: link.run(i.parent_run_id) }, i.parent_run_id) : ""],
          ["PID / PGID", i.pid ? `${i.pid} / ${i.pgid}` : ""],
          ["Working dir", i.cwd],
          ["Command", i.commandline],
          ["Session", i.agent_session_id || i.session_id],
        ], { class: "run-info-list" }));
      yamlBox.textContent = await request("GET", `${base}?format=yaml`);
      return r;
    } catch (err) {
      infoBox.replaceChildren(notice("error", err.message));
      return null;
    }
  }

  async function loadOutput() {
    try {
      const text = await get(`${base}/files/output`);
      outputBox.replaceChildren(renderMarkdown(text));
    } catch (err) {
      outputBox.replaceChildren(h("p", { class: "muted" },
        err instanceof ApiError && err.status === 404 ? "No output.md yet." : err.message));
    }
  }

  async function loadPrompt() {
    try {
      promptBox.textContent = await get(`${base}/files/prompt`);
    } catch (err) {
      promptBox.textContent = err.message;
    }
  }

  async function follow() {
    const streamState = view.querySelector("#stream-state");
    try {
      const [o, e] = await Promise.all([readTail(run, "stdout", TAIL_BYTES), readTail(run, "stderr", TAIL_BYTES)]);
      if (closed) return;
      stdout.reset(o);
      stderr.reset(e);
      source = new EventSource(`${API}${base}/stream?from=${o.offset}:${e.offset}`, { withCredentials: true });
      source.addEventListener("open", () => { streamState.textContent = "(live)"; });
      source.addEventListener("stdout", (ev) => stdout.add(ev.data));
      source.addEventListener("stderr", (ev) => stderr.add(ev.data));
      source.addEventListener("status", (ev) => onStatus(ev.data, false));
      source.addEventListener("end", (ev) => onStatus(ev.data, true));
      source.onerror = () => { if (!closed && source.readyState !== EventSource.CLOSED) streamState.textContent = "(reconnecting…)"; };
    } catch (err) {
      streamState.textContent = `(${err.message})`;
    }
  }

  function onStatus(data, end) {
    let s = data;
    try {
      const parsed = JSON.parse(data);
      s = typeof parsed === "string" ? parsed : parsed.status;
    } catch (_) {
      // `end` carries the bare status.
    }
    setStatus(s);
    if (end) {
      source?.close();
      view.querySelector("#stream-state").textContent = "(ended)";
      loadInfo();
      loadOutput();
    }
  }

  stopButton.addEventListener("click", async () => {
    message.replaceChildren();
    stopButton.disabled = true;
    try {
      const r = await post(`${base}/stop`);
      message.replaceChildren(notice("ok", `Run ${r.run_id}: ${r.status}.`));
    } catch (err) {
      message.replaceChildren(notice("error", `Stop failed: ${err.message}`));
    }
    loadInfo();
  });

  loadInfo();
  loadOutput();
  loadPrompt();
  follow();
  return () => { closed = true; source?.close(); };
}

/** A log pane that keeps at most MAX_LINES lines and follows the end while scrolled there. */
function logPane(name) {
  const pre = h("pre", { class: "log", id: `log-${name}`, tabindex: 0 });
  const note = h("p", { class: "muted log-note" });
  const element = h("div", { class: `log-pane log-${name}` }, h("h3", {}, name), note, pre);
  let lines = 0;
  function atEnd() {
    return pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  }
  function trim() {
    while (lines > MAX_LINES && pre.firstChild) {
      pre.firstChild.remove();
      lines--;
      note.textContent = "Earlier output is not shown.";
    }
  }
  return {
    element,
    reset({ text, truncated }) {
      pre.replaceChildren();
      lines = 0;
      note.textContent = truncated ? "Earlier output is not shown." : "";
      if (text) {
        for (const line of text.replace(/\n$/, "").split("\n")) {
          pre.append(line + "\n");
          lines++;
        }
      }
      trim();
      pre.scrollTop = pre.scrollHeight;
    },
    add(line) {
      const stick = atEnd();
      pre.append(line + "\n");
      lines++;
      trim();
      if (stick) pre.scrollTop = pre.scrollHeight;
    },
  };
}
