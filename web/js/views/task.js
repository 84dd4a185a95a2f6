// A task: its status, TASK.md, its runs (newest first, a page at a time from GET /api/v1/runs),
// stop / resume (with the agent name of its runs; "reset DONE and resume" on a done task) /
// delete, and the task message bus.

import { del, get, post, seg } from "../api.js";
import { badge, debounce, fmtTotals, h, link, notice, usageChart } from "../dom.js";
import { busPanel } from "../bus.js";
import { onRunChange } from "../live.js";
import { runTable } from "./dashboard.js";

export function taskView(view, { project, task }, ctx) {
  const base = `/projects/${seg(project)}/tasks/${seg(task)}`;
  const statusSlot = h("span", { id: "task-status" }, badge("unknown"));
  const message = h("div", { class: "form-message", id: "task-message" });
  const taskMd = h("pre", { class: "task-md" }, "");
  const runsBox = h("div", { id: "task-runs" }, "Loading…");
  const usageText = h("p", { id: "task-usage" }, "");
  const budgetNote = h("div", { id: "task-budget" });
  const chartBox = h("div", { id: "task-usage-chart" });
  const resumeNote = h("span", { class: "muted", id: "resume-agent" });
  const moreButton = h("button", { type: "button", id: "task-runs-more", class: "secondary", hidden: true }, "Older runs");
  const stopButton = h("button", { type: "button", id: "task-stop", class: "danger" }, "Stop");
  const resumeButton = h("button", { type: "button", id: "task-resume" }, "Resume");
  const deleteButton = h("button", { type: "button", id: "task-delete", class: "danger" }, "Delete");
  const bus = busPanel(project, task);
  view.replaceChildren(
    h("nav", { class: "crumbs" }, h("a", { href: link.home() }, "Dashboard"), " / ",
      h("a", { href: link.project(project) }, project), " / ", task),
    h("h1", {}, "Task ", h("span", { class: "id" }, task), " ", statusSlot),
    h("div", { class: "actions" }, stopButton, resumeButton,
      resumeNote, deleteButton),
    message,
    h("section", { class: "panel" }, h("h2", {}, "Usage"), budgetNote, usageText, chartBox),
    h("section", { class: "panel" }, h("h2", {}, "Runs ", h("span", { class: "muted", id: "task-run-count" })), runsBox, moreButton),
    h("details", { class: "panel", open: true }, h("summary", {}, "TASK.md"), taskMd),
    bus.element);

  let gone = false;
  let done = false;
  let agentName = null;
  let sendName = null;
  let cursor = null;
  const PAGE = 25;
  document.title = `${task} · ${project} — Conductor`;

  function showRuns(t, more) {
    if (!more) {
      const latest = t.runs[0]?.info;
      agentName = latest ? (latest.agent_name || latest.agent || null) : null;
      // Only a recorded name is sent; for older runs the server picks the agent of the run.
      sendName = latest?.agent_name || null;
      runsBox.replaceChildren(runTable(t.runs, false));
    } else {
      runsBox.querySelector("tbody")?.append(...runTable(t.runs, false).querySelectorAll("tbody tr"));
    }
    if (!more || t.next_cursor !== undefined) cursor = t.next_cursor || null;
    moreButton.hidden = !cursor;
  }

  async function load() {
    if (gone) return;
    try {
      const t = await get(`${base}?limit=${PAGE}`);
      showRuns(t, false);
      statusSlot.replaceChildren(badge(t.status));
      taskMd.textContent = t.task_md || "(no TASK.md)";
      view.querySelector("#task-run-count").textContent = `(${t.run_count})`;
      usageText.textContent = fmtTotals(t.usage) || "No usage reported.";
      budgetNote.replaceChildren(t.budget_exceeded ? notice("error", t.budget_exceeded) : "");
      chartBox.replaceChildren(usageChart(t.runs));
      const running = t.status === "running";
      done = !!t.done;
      stopButton.disabled = !running;
      resumeButton.disabled = running;
      deleteButton.disabled = running;
      resumeButton.textContent = done ? "Reset DONE and resume" : "Resume";
      resumeNote.textContent = agentName ? `with agent ${agentName}` : "";
    } catch (err) {
      if (err.status === 404) {
        gone = true;
        statusSlot.replaceChildren(badge("deleted"));
        runsBox.replaceChildren(notice("error", `This task does not exist (any more): ${err.message}`));
      } else {
        runsBox.replaceChildren(notice("error", err.message));
      }
    }
  }

  moreButton.addEventListener("click", async () => {
    moreButton.disabled = true;
    try {
      if (cursor) showRuns(await get(`${base}?limit=${PAGE}&cursor=${seg(cursor)}`), true);
    } catch (err) {
      message.replaceChildren(notice("error", err.message));
    } finally {
      moreButton.disabled = false;
    }
  });

  async function act(button, label, fn) {
    message.replaceChildren();
    button.disabled = true;
    try {
      const text = await fn();
      if (text) message.replaceChildren(notice("ok", text));
    } catch (err) {
      message.replaceChildren(notice("error", `${label} failed: ${err.message}`));
    } finally {
      button.disabled = false;
      load();
    }
  }

  stopButton.addEventListener("click", () => act(stopButton, "Stop", async () => {
    const r = await post(`${base}/stop`);
    const errors = (r.errors || []).length ? ` Errors: ${r.errors.join("; ")}` : "";
    return `Stop requested; stopped runs: ${(r.stopped_runs || []).join(", ") || "none"}.${errors}`;
  }));
  resumeButton.addEventListener("click", () => {
    if (done && !window.confirm(`Task ${task} is DONE. Remove the DONE marker and resume it?`)) return;
    act(resumeButton, "Resume", async () => {
      const body = {};
      if (done) body.reset_done = true;
      if (sendName) body.agent = sendName;
      await post(`${base}/resume`, body);
      return `Resumed${agentName ? ` with agent ${agentName}` : ""}: the task loop continues after its latest run.`;
    });
  });
  deleteButton.addEventListener("click", () => {
    if (!window.confirm(`Delete task ${task} of ${project} and all its runs? This cannot be undone.`)) return;
    act(deleteButton, "Delete", async () => {
      // No reloads while the task's files go away (they would only find it half-deleted).
      gone = true;
      try {
        await del(base);
      } catch (err) {
        gone = false;
        throw err;
      }
      ctx.navigate(link.project(project));
      return "";
    });
  });

  load();
  const refresh = debounce(load, 250);
  const off = onRunChange((c) => {
    if (c.kind === "resync" || (c.run.project_id === project && c.run.task_id === task)) refresh();
  });
  const timer = setInterval(load, 30000);
  return () => { off(); refresh.cancel(); clearInterval(timer); bus.close(); gone = true; };
}
