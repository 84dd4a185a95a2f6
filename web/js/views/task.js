// A task: its status, TASK.md, runs, stop / resume / delete, and the task message bus.

import { del, get, post, seg } from "../api.js";
import { badge, debounce, h, link, notice } from "../dom.js";
import { busPanel } from "../bus.js";
import { onRunChange } from "../live.js";
import { runTable } from "./dashboard.js";

export function taskView(view, { project, task }, ctx) {
  const base = `/projects/${seg(project)}/tasks/${seg(task)}`;
  const statusSlot = h("span", { id: "task-status" }, badge("unknown"));
  const message = h("div", { class: "form-message", id: "task-message" });
  const taskMd = h("pre", { class: "task-md" }, "");
  const runsBox = h("div", { id: "task-runs" }, "Loading…");
  const resetDone = h("input", { type: "checkbox", id: "resume-reset-done" });
  const stopButton = h("button", { type: "button", id: "task-stop", class: "danger" }, "Stop");
  const resumeButton = h("button", { type: "button", id: "task-resume" }, "Resume");
  const deleteButton = h("button", { type: "button", id: "task-delete", class: "danger" }, "Delete");
  const bus = busPanel(project, task);
  view.replaceChildren(
    h("nav", { class: "crumbs" }, h("a", { href: link.home() }, "Dashboard"), " / ",
      h("a", { href: link.project(project) }, project), " / ", task),
    h("h1", {}, "Task ", h("span", { class: "id" }, task), " ", statusSlot),
    h("div", { class: "actions" }, stopButton, resumeButton,
      h("label", { class: "inline" }, resetDone, " reset DONE"), deleteButton),
    message,
    h("section", { class: "panel" }, h("h2", {}, "Runs"), runsBox),
    h("details", { class: "panel", open: true }, h("summary", {}, "TASK.md"), taskMd),
    bus.element);

  let gone = false;
  async function load() {
    if (gone) return;
    try {
      const t = await get(base);
      statusSlot.replaceChildren(badge(t.status));
      taskMd.textContent = t.task_md || "(no TASK.md)";
      runsBox.replaceChildren(runTable(t.runs || [], false));
      const running = t.status === "running";
      stopButton.disabled = !running;
      resumeButton.disabled = running;
      deleteButton.disabled = running;
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
  resumeButton.addEventListener("click", () => act(resumeButton, "Resume", async () => {
    await post(`${base}/resume`, resetDone.checked ? { reset_done: true } : {});
    return "Resumed: the task loop continues after its latest run.";
  }));
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
  const timer = setInterval(load, 10000);
  return () => { off(); refresh.cancel(); clearInterval(timer); bus.close(); gone = true; };
}
