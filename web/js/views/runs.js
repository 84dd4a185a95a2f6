// All runs, newest first, filtered by project, task and status (the fragment's query, so a
// filtered list is a link), a page at a time from the API's cursor.

import { get } from "../api.js";
import { h, notice } from "../dom.js";
import { runTable } from "./dashboard.js";

const PAGE = 50;
const STATUSES = ["", "running", "completed", "failed", "stopped", "unknown"];

export function runsView(view, params, ctx) {
  const q = new URLSearchParams(params.query || "");
  const project = h("input", { name: "project", id: "runs-project", list: "project-ids", value: q.get("project") || "", placeholder: "any" });
  const task = h("input", { name: "task", id: "runs-task", value: q.get("task") || "", placeholder: "any" });
  const status = h("select", { name: "status", id: "runs-status" },
    STATUSES.map((s) => h("option", { value: s, selected: s === (q.get("status") || "") }, s || "any")));
  const form = h("form", { class: "panel form filters", id: "runs-filter" },
    h("div", { class: "form-row" },
      h("label", {}, "Project", project), h("label", {}, "Task", task), h("label", {}, "Status", status)),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Filter")));
  const list = h("div", { id: "runs-list" }, "Loading…");
  const more = h("button", { type: "button", class: "secondary", id: "runs-more", hidden: true }, "Older runs");
  view.replaceChildren(h("h1", {}, "Runs"), form, h("section", { class: "panel" }, list, more));
  document.title = "Runs — Conductor";

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    if (project.value.trim()) next.set("project", project.value.trim());
    if (task.value.trim()) next.set("task", task.value.trim());
    if (status.value) next.set("status", status.value);
    ctx.navigate(`#/runs${next.toString() ? `?${next}` : ""}`);
  });

  let cursor = null;
  async function load(append) {
    const api = new URLSearchParams({ limit: String(PAGE) });
    for (const k of ["project", "task", "status"]) if (q.get(k)) api.set(k, q.get(k));
    if (append && cursor) api.set("cursor", cursor);
    try {
      const { runs, next_cursor: next } = await get(`/runs?${api}`);
      if (append) list.querySelector("tbody")?.append(...runTable(runs, true).querySelectorAll("tbody tr"));
      else list.replaceChildren(runTable(runs, true));
      cursor = next || null;
      more.hidden = !cursor;
    } catch (err) {
      list.replaceChildren(notice("error", err.message));
    }
  }
  more.addEventListener("click", () => load(true));
  load(false);
  return () => {};
}
