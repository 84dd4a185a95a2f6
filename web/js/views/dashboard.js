// The dashboard: what is running now (with live elapsed time), recent failures with their
// error, run counts by status (each a link to the runs page), the latest runs, the start-task
// form (agents from the server's config) and the projects. Refreshed on run events at most
// once a second, so it keeps up under steady activity without redrawing per event.

import { get, post } from "../api.js";
import { badge, fmtDuration, fmtTotals, h, link, notice, throttle, timeEl } from "../dom.js";
import { onRunChange } from "../live.js";

export function dashboard(view, _params, ctx) {
  const countsBox = h("div", { id: "run-counts", class: "counts" }, "Loading…");
  const runningBox = h("div", { id: "running-runs" }, "Loading…");
  const failedBox = h("div", { id: "failed-runs" }, "Loading…");
  const runsBox = h("div", { id: "recent-runs" }, "Loading…");
  const projectsBox = h("div", { id: "project-list" }, "Loading…");
  view.replaceChildren(
    h("h1", {}, "Dashboard"),
    countsBox,
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Running now"), runningBox),
      h("section", { class: "panel" }, h("h2", {}, "Recent failures"), failedBox)),
    h("section", { class: "panel" }, h("h2", {}, "Latest runs ", h("a", { href: "#/runs", class: "small" }, "all runs →")), runsBox),
    startTaskForm(ctx),
    h("section", { class: "panel" }, h("h2", {}, "Projects"), projectsBox));
  document.title = "Dashboard — Conductor";

  async function loadCounts() {
    try {
      const s = await get("/status");
      ctx.setStatus(s);
      const entries = Object.entries(s.runs || {});
      countsBox.replaceChildren(entries.length === 0 ? h("p", { class: "muted" }, "No runs yet.") :
        h("ul", { class: "count-list" }, entries.map(([status, n]) =>
          h("li", {}, h("a", { href: `#/runs?status=${encodeURIComponent(status)}`, dataset: { status } }, badge(status), " ", String(n))))),
        s.config_error ? notice("error", `Config error: ${s.config_error}`) : "");
    } catch (err) {
      countsBox.replaceChildren(notice("error", err.message));
    }
  }

  async function loadRunning() {
    try {
      const { runs } = await get("/runs?status=running&limit=50");
      runningBox.replaceChildren(runs.length === 0 ? h("p", { class: "muted" }, "Nothing is running.") :
        h("table", { class: "table runs-table" },
          h("thead", {}, h("tr", {}, ["Run", "Task", "Agent", "Elapsed"].map((c) => h("th", {}, c)))),
          h("tbody", {}, runs.map((r) => h("tr", { dataset: { run: r.run_id } },
            h("td", {}, h("a", { href: link.run(r.run_id) }, r.run_id)),
            h("td", {}, h("a", { href: link.task(r.project_id, r.task_id) }, `${r.project_id}/${r.task_id}`)),
            h("td", {}, agentOf(r)),
            h("td", { class: "elapsed", dataset: { since: r.info?.start_time || "" } }, elapsed(r.info?.start_time)))))));
    } catch (err) {
      runningBox.replaceChildren(notice("error", err.message));
    }
  }

  async function loadFailed() {
    try {
      const { runs } = await get("/runs?status=failed&limit=5");
      failedBox.replaceChildren(runs.length === 0 ? h("p", { class: "muted" }, "No failed runs.") :
        h("ul", { class: "failures" }, runs.map((r) => h("li", { dataset: { run: r.run_id } },
          h("a", { href: link.run(r.run_id) }, `${r.project_id}/${r.task_id}`), " ", timeEl(r.info?.end_time),
          h("div", { class: "failure-error" }, r.info?.error_summary || r.error || `exit code ${r.info?.exit_code ?? "?"}`)))));
    } catch (err) {
      failedBox.replaceChildren(notice("error", err.message));
    }
  }

  async function loadProjects() {
    try {
      const { projects } = await get("/projects");
      ctx.setProjects(projects.map((p) => p.project_id));
      projectsBox.replaceChildren(projects.length === 0
        ? h("p", { class: "muted" }, "No projects yet. Start a task to create one.")
        : h("table", { class: "table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Project"), h("th", {}, "Tasks"), h("th", {}, "Usage"))),
          h("tbody", {}, projects.map((p) => h("tr", { dataset: { project: p.project_id } },
            h("td", {}, h("a", { href: link.project(p.project_id) }, p.project_id)),
            h("td", {}, p.task_count),
            h("td", { class: "usage" }, fmtTotals(p.usage) || "—"))))));
    } catch (err) {
      projectsBox.replaceChildren(notice("error", err.message));
    }
  }

  async function loadRuns() {
    try {
      const { runs } = await get("/runs?limit=15");
      runsBox.replaceChildren(runTable(runs, true));
    } catch (err) {
      runsBox.replaceChildren(notice("error", err.message));
    }
  }

  const all = () => { loadCounts(); loadRunning(); loadFailed(); loadRuns(); };
  all();
  loadProjects();
  const refresh = throttle(all, 1000);
  const refreshProjects = throttle(loadProjects, 5000);
  const off = onRunChange((c) => {
    refresh();
    if (c.kind !== "run_status") refreshProjects();
  });
  const ticker = setInterval(() => {
    for (const td of runningBox.querySelectorAll("td.elapsed")) td.textContent = elapsed(td.dataset.since);
  }, 1000);
  return () => { off(); refresh.cancel(); refreshProjects.cancel(); clearInterval(ticker); };
}

function elapsed(start) {
  if (!start) return "—";
  return fmtDuration((Date.now() - new Date(start).getTime()) / 1000);
}

/** The agent of a run summary: its name (and type when they differ). */
export function agentOf(r) {
  const i = r.info || {};
  if (i.agent_name && i.agent_name !== i.agent) return `${i.agent_name} (${i.agent})`;
  return i.agent_name || i.agent || "—";
}

function startTaskForm(ctx) {
  const project = h("input", { name: "project_id", id: "start-project", required: true, list: "project-ids", autocomplete: "off", placeholder: "my-project" });
  const task = h("input", { name: "task_id", id: "start-task", autocomplete: "off", placeholder: "generated when empty" });
  const agent = h("input", { name: "agent", id: "start-agent", list: "agent-names", autocomplete: "off", placeholder: "server default" });
  const maxRestarts = h("input", { name: "max_restarts", id: "start-max-restarts", type: "number", min: 0, placeholder: "server default" });
  const prompt = h("textarea", { name: "prompt", id: "start-prompt", rows: 6, required: true, placeholder: "What should the agent do?" });
  const message = h("div", { class: "form-message" });
  const agentList = h("datalist", { id: "agent-names" });
  get("/agents").then((a) => {
    agentList.replaceChildren(...a.agents.map((x) => h("option", { value: x.name }, x.name === x.type ? x.name : `${x.name} (${x.type})`)));
    agent.placeholder = a.default ? `default: ${a.default}` : "server default";
  }, (err) => message.replaceChildren(notice("error", `Cannot list agents: ${err.message}`)));
  const form = h("form", { id: "start-task-form", class: "panel form" },
    h("h2", {}, "Start a task"),
    agentList,
    h("div", { class: "form-row" },
      h("label", {}, "Project", project),
      h("label", {}, "Task id", task),
      h("label", {}, "Agent", agent),
      h("label", {}, "Max restarts", maxRestarts)),
    h("label", { class: "wide" }, "Prompt", prompt),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Start task")),
    message);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    message.replaceChildren();
    const body = { project_id: project.value.trim(), prompt: prompt.value };
    if (task.value.trim()) body.task_id = task.value.trim();
    if (agent.value.trim()) body.agent = agent.value.trim();
    if (maxRestarts.value !== "") body.max_restarts = Number(maxRestarts.value);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const started = await post("/tasks", body);
      message.replaceChildren(notice("ok", `Started ${started.task_id} (run ${started.run_id}).`));
      ctx.navigate(link.task(started.project_id, started.task_id));
    } catch (err) {
      message.replaceChildren(notice("error", err.message));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** A table of run summaries; `withTask` adds project/task columns. */
export function runTable(runs, withTask) {
  if (runs.length === 0) return h("p", { class: "muted" }, "No runs.");
  const head = ["Run", ...(withTask ? ["Project", "Task"] : []), "Status", "Agent", "Started", "Ended", "Exit"];
  return h("table", { class: "table runs-table" },
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, runs.map((r) => {
      const i = r.info || {};
      return h("tr", { dataset: { run: r.run_id } },
        h("td", {}, h("a", { href: link.run(r.run_id) }, r.run_id)),
        withTask ? h("td", {}, h("a", { href: link.project(r.project_id) }, r.project_id)) : null,
        withTask ? h("td", {}, h("a", { href: link.task(r.project_id, r.task_id) }, r.task_id)) : null,
        h("td", {}, badge(r.status)),
        h("td", {}, agentOf(r)),
        h("td", {}, timeEl(i.start_time)),
        h("td", {}, timeEl(i.end_time)),
        h("td", {}, r.status === "running" || i.exit_code === undefined ? "—" : i.exit_code));
    })));
}
