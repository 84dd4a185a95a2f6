// A run: status and run-info, the log viewer (the tail of stdout/stderr, then the tab's event
// stream from those byte offsets), output.md (rendered when it is a small answer, else a raw
// link), the prompt and the raw run-info.yaml. While the run is running the log comes first.

import { API, get, post, readTail, request, seg } from "../api.js";
import { badge, dl, fmtDuration, fmtUsage, h, link, notice, timeEl } from "../dom.js";
import { subscribe } from "../events.js";
import { logViewer } from "../logview.js";
import { renderMarkdown } from "../markdown.js";

const TAIL_BYTES = 256 * 1024;
/** Largest output.md rendered as Markdown; a bigger one is shown collapsed with a raw link. */
export const MAX_MARKDOWN = 64 * 1024;

export function runView(view, { run }, ctx) {
  const base = `/runs/${seg(run)}`;
  const rawUrl = (name) => `${API}${base}/files/${name}`;
  const statusSlot = h("span", { id: "run-status" }, badge("unknown"));
  const crumbs = h("nav", { class: "crumbs" }, h("a", { href: link.home() }, "Dashboard"));
  const infoBox = h("div", { id: "run-info" }, "Loading…");
  const message = h("div", { class: "form-message" });
  const neighbours = h("nav", { class: "run-neighbours", id: "run-neighbours", "aria-label": "Runs of this task" });
  const stopButton = h("button", { type: "button", id: "run-stop", class: "danger", disabled: true }, "Stop run");
  const logs = logViewer(rawUrl);
  const outputBox = h("div", { id: "run-output" }, h("p", { class: "muted" }, "Loading…"));
  const promptBox = h("pre", { id: "run-prompt" }, "");
  const yamlBox = h("pre", { id: "run-yaml" }, "");
  const streamState = h("span", { class: "muted", id: "stream-state" }, "");
  const logSection = h("section", { class: "panel logs" }, h("h2", {}, "Log ", streamState), logs.element);
  const outputSection = h("section", { class: "panel" }, h("h2", {}, "Output"), outputBox);
  const promptDetails = h("details", { class: "panel" }, h("summary", {}, "Prompt"), promptBox);
  view.replaceChildren(
    crumbs,
    h("h1", {}, "Run ", h("span", { class: "id" }, run), " ", statusSlot),
    h("div", { class: "actions" }, stopButton, neighbours), message,
    h("section", { class: "panel" }, h("h2", {}, "Run info"), infoBox),
    logSection, outputSection, promptDetails,
    h("details", { class: "panel" }, h("summary", {}, "run-info.yaml"), yamlBox));
  document.title = `run ${run} — Conductor`;

  let unsubscribe = null;
  let closed = false;
  let running = false;
  let files = {};

  function setStatus(s) {
    statusSlot.replaceChildren(badge(s));
    stopButton.disabled = s !== "running";
    running = s === "running";
    // While running the log comes first; afterwards the answer does.
    if (running) view.insertBefore(logSection, outputSection);
    else view.insertBefore(outputSection, logSection);
  }

  async function loadInfo() {
    try {
      const r = await get(base);
      const i = r.info || {};
      files = r.files || {};
      crumbs.replaceChildren(h("a", { href: link.home() }, "Dashboard"), " / ",
        h("a", { href: link.project(r.project_id) }, r.project_id), " / ",
        h("a", { href: link.task(r.project_id, r.task_id) }, r.task_id), " / ", run);
      document.title = `${run} · ${r.task_id} · ${r.project_id} — Conductor`;
      setStatus(r.status);
      neighbours.replaceChildren(...neighbourLinks(r));
      ctx.reveal({ project: r.project_id, task: r.task_id, run });
      const ended = i.end_time && !i.end_time.startsWith("0001") ? new Date(i.end_time) : null;
      const started = i.start_time ? new Date(i.start_time) : null;
      const duration = started ? ((ended || new Date()) - started) / 1000 : null;
      infoBox.replaceChildren(
        r.error ? notice("error", `run-info.yaml is unreadable: ${r.error}`) : "",
        dl([
          ["Status", r.status],
          ["Agent", i.agent_name ? `${i.agent_name} (${i.agent})` : i.agent],
          ["Agent version", i.agent_version],
          ["Exit code", r.status === "running" ? "—" : i.exit_code],
          ["Error", i.error_summary],
          ["Started", timeEl(i.start_time)],
          ["Ended", timeEl(i.end_time)],
          ["Duration", duration === null ? "" : fmtDuration(duration)],
          ["Restart", restartText(i.restart_index)],
          ["Previous in chain", runLink(i.previous_run_id)],
          ["Parent run", runLink(i.parent_run_id)],
          ["PID / PGID", i.pid ? `${i.pid} / ${i.pgid}` : ""],
          ["Working dir", i.cwd],
          ["Command", i.commandline],
          ["Session", i.agent_session_id || i.session_id],
          ["Model", r.usage?.model],
          ["Usage", h("span", { id: "run-usage" }, fmtUsage(r.usage))],
        ], { class: "run-info-list" }));
      yamlBox.textContent = await request("GET", `${base}?format=yaml`);
      return r;
    } catch (err) {
      infoBox.replaceChildren(notice("error", err.message));
      return null;
    }
  }

  async function loadOutput() {
    const size = files.output;
    if (size === null || size === undefined) {
      outputBox.replaceChildren(h("p", { class: "muted" }, running ? "No output.md yet (the run is running)." : "This run wrote no output.md."));
      return;
    }
    const raw = h("a", { href: rawUrl("output"), target: "_blank", rel: "noopener" }, "raw output.md");
    const collapsed = (why) => outputBox.replaceChildren(h("details", { class: "output-collapsed" },
      h("summary", {}, why, " — not rendered; open the ", raw, "."),
      h("p", { class: "muted" }, "A command agent's output.md is a copy of its stdout: see the log.")));
    if (size > MAX_MARKDOWN) {
      collapsed(`output.md is ${(size / 1024).toFixed(0)} KB`);
      return;
    }
    try {
      // Same size as stdout: a command agent's byte copy of its log, not an answer.
      const [text, stdout] = await Promise.all([
        get(`${base}/files/output`),
        size > 0 && files.stdout === size ? get(`${base}/files/stdout`) : null,
      ]);
      if (stdout !== null && stdout === text) collapsed("output.md is a copy of stdout");
      else outputBox.replaceChildren(renderMarkdown(text), h("p", { class: "muted output-raw" }, raw));
    } catch (err) {
      outputBox.replaceChildren(notice("error", err.message));
    }
  }

  async function loadPrompt() {
    if (files.prompt === null) {
      promptBox.textContent = "(no prompt file)";
      return;
    }
    try {
      promptBox.textContent = await get(`${base}/files/prompt`);
    } catch (err) {
      promptBox.textContent = err.message;
    }
  }

  async function follow() {
    try {
      const none = { text: "", offset: 0, truncated: false };
      const [o, e] = await Promise.all([
        files.stdout ? readTail(run, "stdout", TAIL_BYTES) : none,
        files.stderr ? readTail(run, "stderr", TAIL_BYTES) : none,
      ]);
      if (closed) return;
      logs.panes.stdout.reset(o.text, o.truncated);
      logs.panes.stderr.reset(e.text, e.truncated);
      if (e.text) logs.panes.stderr.element.dispatchEvent(new CustomEvent("lines"));
      unsubscribe = subscribe(`run:${run}`, `${o.offset}:${e.offset}`, (kind, data) => {
        if (kind === "log") {
          logs.panes[data.stream].add(data.lines);
          streamState.textContent = "(live)";
        } else if (kind === "status") {
          streamState.textContent = data.status === "running" ? "(live)" : "";
          setStatus(data.status);
        } else if (kind === "end") {
          onEnd(data.status);
        } else if (kind === "error") {
          streamState.textContent = `(${data.message})`;
        }
      });
    } catch (err) {
      streamState.textContent = `(${err.message})`;
    }
  }

  async function onEnd(status) {
    setStatus(status);
    streamState.textContent = "(ended)";
    unsubscribe?.();
    unsubscribe = null;
    await loadInfo();
    loadOutput();
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

  (async () => {
    await loadInfo();
    if (closed) return;
    follow();
    loadOutput();
    loadPrompt();
  })();
  return () => { closed = true; unsubscribe?.(); };
}

/** A link to a run, or "" when there is none. */
function runLink(id) {
  return id ? h("a", { href: link.run(id) }, id) : "";
}

/** "0 (first run)", "2 (third run)": restart_index counts from 0. */
function restartText(index) {
  if (index === null || index === undefined) return "";
  return index === 0 ? "0 (first run)" : `${index} (run ${index + 1} of the chain)`;
}

/** "← Previous run" / "Next run →" within the task, as links (disabled text at either end). */
function neighbourLinks(r) {
  const one = (id, rel, text) => id
    ? h("a", { href: link.run(id), rel, class: `run-${rel}`, title: id }, text)
    : h("span", { class: `muted run-${rel}`, "aria-disabled": "true" }, text);
  return [one(r.previous_run, "prev", "← Previous run"), " ", one(r.next_run, "next", "Next run →")];
}
