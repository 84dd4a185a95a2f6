// The home view: server status and self-update state, the start-task form, projects and the
// latest runs (live).

import { ApiError, get, post } from "../api.js";
import { badge, debounce, dl, fmtDuration, fmtTime, h, link, notice } from "../dom.js";
import { onRunChange } from "../live.js";

const AGENTS = ["claude", "codex", "gemini", "perplexity", "xai"];

export function dashboard(view, _params, ctx) {
  const statusBox = h("div", { id: "server-status" }, "Loading…");
  const updateBox = h("div", { id: "update-state" }, "Loading…");
  const runsBox = h("div", { id: "recent-runs" }, "Loading…");
  const projectsBox = h("div", { id: "project-list" }, "Loading…");
  view.replaceChildren(
    h("h1", {}, "Dashboard"),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Server"), statusBox),
      h("section", { class: "panel" }, h("h2", {}, "Self-update"), updateBox)),
    startTaskForm(ctx),
    h("section", { class: "panel" }, h("h2", {}, "Projects"), projectsBox),
    h("section", { class: "panel" }, h("h2", {}, "Latest runs"), runsBox));

  async function loadStatus() {
    try {
      const s = await get("/status");
      ctx.setStatus(s);
      const runs = Object.entries(s.runs || {}).map(([k, v]) => `${k} ${v}`).join(", ");
      statusBox.replaceChildren(
        s.config_error ? notice("error", `Config error: ${s.config_error}`) : "",
        ...(s.warnings || []).map((w) => notice("warning", w)),
        dl([
          ["Version", `${s.version} (${s.commit})`],
          ["Root", s.root],
          ["Config", s.config],
          ["Uptime", fmtDuration(s.uptime_seconds)],
          ["Started", fmtTime(s.started_at)],
          ["PID", s.pid],
          ["Active runs", s.active_runs],
          ["Runs", runs || "none"],
          ["Task start", s.task_start_enabled ? "enabled" : "disabled (read-only server)"],
          ["Auth", s.auth_enabled ? "API key required" : "off"],
          ["Executable sha256", s.executable_sha256],
        ], { class: "status-list" }));
      const u = s.update || {};
      updateBox.replaceChildren(
        dl([
          ["State", badge(u.state)],
          ["Mode", u.mode],
          ["Requested", fmtTime(u.started_at)],
          ["Last error", u.last_error],
        ], { class: "update-list" }));
      // The history is an audited admin read: fetch it when the page opens and when the
      // state changes, not on every refresh. The login cookie cannot read it.
      if (u.state !== lastUpdateState) {
        lastUpdateState = u.state;
        historyBox = null;
        if (s.auth_enabled) {
          historyBox = h("p", { class: "muted" }, "The update history needs the admin key (`run-agent server update status`).");
          updateBox.append(historyBox);
        } else {
          loadHistory();
        }
      } else if (historyBox) {
        updateBox.append(historyBox);
      }
    } catch (err) {
      statusBox.replaceChildren(notice("error", err.message));
    }
  }

  let lastUpdateState = null;
  let historyBox = null;

  async function loadHistory() {
    try {
      const full = await get("/admin/self-update", { own401: true });
      const rows = (full.history || []).slice(-5).reverse();
      historyBox = null;
      if (rows.length === 0) return;
      historyBox = h("div", { class: "update-history" }, h("h3", {}, "Recent updates"), h("table", { class: "table" },
        h("thead", {}, h("tr", {}, ["Time", "From", "To", "Mode", "Result"].map((c) => h("th", {}, c)))),
        h("tbody", {}, rows.map((r) => h("tr", {},
          h("td", {}, fmtTime(r.time)), h("td", {}, r.from_version), h("td", {}, r.to_version || "—"),
          h("td", {}, r.mode), h("td", {}, r.error ? `${r.result}: ${r.error}` : r.result))))));
      updateBox.append(historyBox);
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
        historyBox = h("p", { class: "muted" }, "The update history needs the admin key.");
        updateBox.append(historyBox);
      }
    }
  }

  async function loadProjects() {
    try {
      const { projects } = await get("/projects");
      ctx.setProjects(projects.map((p) => p.project_id));
      projectsBox.replaceChildren(projects.length === 0
        ? h("p", { class: "muted" }, "No projects yet. Start a task to create one.")
        : h("table", { class: "table" },
          h("thead", {}, h("tr", {}, h("th", {}, "Project"), h("th", {}, "Tasks"))),
          h("tbody", {}, projects.map((p) => h("tr", {},
            h("td", {}, h("a", { href: link.project(p.project_id) }, p.project_id)),
            h("td", {}, p.task_count))))));
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

  loadStatus();
  loadProjects();
  loadRuns();
  const refresh = debounce(() => { loadRuns(); loadProjects(); loadStatus(); }, 300);
  const off = onRunChange(refresh);
  const timer = setInterval(loadStatus, 5000);
  return () => { off(); refresh.cancel(); clearInterval(timer); };
}

function startTaskForm(ctx) {
  const project = h("input", { name: "project_id", id: "start-project", required: true, list: "project-ids", autocomplete: "off", placeholder: "my-project" });
  const task = h("input", { name: "task_id", id: "start-task", autocomplete: "off", placeholder: "generated when empty" });
  const agent = h("input", { name: "agent", id: "start-agent", list: "agent-names", autocomplete: "off", placeholder: "server default" });
  const maxRestarts = h("input", { name: "max_restarts", id: "start-max-restarts", type: "number", min: 0, placeholder: "server default" });
  const prompt = h("textarea", { name: "prompt", id: "start-prompt", rows: 6, required: true, placeholder: "What should the agent do?" });
  const message = h("div", { class: "form-message" });
  const form = h("form", { id: "start-task-form", class: "panel form" },
    h("h2", {}, "Start a task"),
    h("datalist", { id: "agent-names" }, AGENTS.map((a) => h("option", { value: a }))),
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
        h("td", {}, i.agent || "—"),
        h("td", {}, fmtTime(i.start_time)),
        h("td", {}, fmtTime(i.end_time)),
        h("td", {}, r.status === "running" || i.exit_code === undefined ? "—" : i.exit_code));
    })));
}
