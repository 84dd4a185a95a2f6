// A project: its tasks with live status, and the project message bus.

import { get, seg } from "../api.js";
import { badge, debounce, fmtTime, fmtTotals, fmtUsd, h, link, notice } from "../dom.js";
import { busPanel } from "../bus.js";
import { onRunChange } from "../live.js";

export function projectView(view, { project }) {
  const tasksBox = h("div", { id: "task-list" }, "Loading…");
  const usageText = h("p", { id: "project-usage" }, "");
  const bus = busPanel(project);
  view.replaceChildren(
    h("nav", { class: "crumbs" }, h("a", { href: link.home() }, "Dashboard"), " / ", project),
    h("h1", {}, "Project ", h("span", { class: "id" }, project)),
    h("section", { class: "panel" }, h("h2", {}, "Tasks"), usageText, tasksBox),
    bus.element);

  document.title = `${project} — Conductor`;
  async function load() {
    try {
      const { tasks } = await get(`/projects/${seg(project)}/tasks`);
      const total = tasks.reduce((sum, t) => {
        const u = t.usage || {};
        for (const k of ["runs_with_usage", "runs_without_cost", "total_tokens", "cost_usd"]) sum[k] += u[k] || 0;
        return sum;
      }, { runs_with_usage: 0, runs_without_cost: 0, total_tokens: 0, cost_usd: 0 });
      usageText.textContent = total.runs_with_usage ? `Project total: ${fmtTotals(total)}` : "";
      tasksBox.replaceChildren(tasks.length === 0
        ? h("p", { class: "muted" }, "No tasks yet.")
        : h("table", { class: "table tasks-table" },
          h("thead", {}, h("tr", {}, ["Task", "Status", "Runs", "Latest run", "Last activity", "Cost"].map((c) => h("th", {}, c)))),
          h("tbody", {}, tasks.map((t) => h("tr", { dataset: { task: t.task_id } },
            h("td", {}, h("a", { href: link.task(project, t.task_id) }, t.task_id)),
            h("td", {}, badge(t.status)),
            h("td", {}, t.run_count),
            h("td", {}, t.latest_run ? h("a", { href: link.run(t.latest_run) }, t.latest_run) : "—"),
            h("td", {}, fmtTime(t.last_activity)),
            h("td", { class: "cost" }, t.usage?.runs_with_usage ? fmtUsd(t.usage.cost_usd) : "—"))))));
    } catch (err) {
      tasksBox.replaceChildren(notice("error", err.message));
    }
  }
  load();
  const refresh = debounce(load, 250);
  const off = onRunChange((c) => {
    if (c.kind === "resync" || c.run.project_id === project) refresh();
  });
  return () => { off(); refresh.cancel(); bus.close(); };
}
