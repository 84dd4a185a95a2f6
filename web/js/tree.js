// The navigation tree: projects → tasks → runs, with live status. Projects are listed at
// once; a project's tasks and a task's latest runs load when expanded. Run events from the
// all-runs stream reload only the parts they touch.

import { get, seg } from "./api.js";
import { badge, debounce, h, link } from "./dom.js";
import { onRunChange } from "./live.js";

const RUNS_PER_TASK = 10;

export class Tree {
  constructor(container) {
    this.container = container;
    this.expandedProjects = new Set();
    this.expandedTasks = new Set(); // "project/task"
    this.projectNodes = new Map();
    this.selected = null;
    this.pending = new Set();
    this.flush = debounce(() => this.reloadPending(), 250);
    this.list = h("ul", { class: "tree-projects", role: "tree" });
    this.error = h("p", { class: "tree-error notice notice-error", hidden: true });
    container.replaceChildren(h("h2", {}, "Projects"), this.error, this.list);
    onRunChange((change) => this.onChange(change));
  }

  /** Loads the project list. */
  async load() {
    try {
      const { projects } = await get("/projects");
      this.error.hidden = true;
      const seen = new Set();
      for (const p of projects) {
        seen.add(p.project_id);
        this.projectNode(p.project_id).count.textContent = String(p.task_count);
      }
      for (const [id, node] of this.projectNodes) {
        if (!seen.has(id)) {
          node.li.remove();
          this.projectNodes.delete(id);
        }
      }
      const order = [...this.projectNodes.keys()].sort();
      for (const id of order) this.list.append(this.projectNodes.get(id).li);
      if (order.length === 0) this.list.replaceChildren(h("li", { class: "tree-empty" }, "No projects yet."));
      else this.list.querySelector(".tree-empty")?.remove();
      await Promise.all([...this.expandedProjects].filter((p) => seen.has(p)).map((p) => this.loadTasks(p)));
    } catch (err) {
      this.error.hidden = false;
      this.error.textContent = `Cannot list projects: ${err.message}`;
    }
  }

  projectNode(project) {
    let node = this.projectNodes.get(project);
    if (node) return node;
    const toggle = h("button", { class: "tree-toggle", type: "button", "aria-label": `expand ${project}` }, "▸");
    const count = h("span", { class: "tree-count", title: "tasks" });
    const tasks = h("ul", { class: "tree-tasks", hidden: true });
    const li = h("li", { class: "tree-project", dataset: { project } },
      h("div", { class: "tree-row" }, toggle, h("a", { href: link.project(project) }, project), count),
      tasks);
    node = { li, toggle, count, tasks, taskNodes: new Map() };
    toggle.addEventListener("click", () => this.toggleProject(project));
    this.projectNodes.set(project, node);
    // Shown at once, in order (a route or a run event may name a project before a reload).
    this.list.querySelector(".tree-empty")?.remove();
    const next = [...this.projectNodes.keys()].sort().find((id) => id > project);
    this.list.insertBefore(li, next ? this.projectNodes.get(next).li : null);
    return node;
  }

  async toggleProject(project, open) {
    const node = this.projectNode(project);
    const expand = open ?? !this.expandedProjects.has(project);
    if (expand) this.expandedProjects.add(project);
    else this.expandedProjects.delete(project);
    node.tasks.hidden = !expand;
    node.toggle.textContent = expand ? "▾" : "▸";
    node.li.setAttribute("aria-expanded", String(expand));
    if (expand) await this.loadTasks(project);
  }

  async loadTasks(project) {
    const node = this.projectNode(project);
    try {
      const { tasks } = await get(`/projects/${seg(project)}/tasks`);
      node.count.textContent = String(tasks.length);
      const seen = new Set();
      const sorted = [...tasks].sort((a, b) => (b.last_activity || "").localeCompare(a.last_activity || "") || a.task_id.localeCompare(b.task_id));
      for (const t of sorted) {
        seen.add(t.task_id);
        const tn = this.taskNode(project, t.task_id);
        const fresh = badge(t.status);
        tn.status.replaceWith(fresh);
        tn.status = fresh;
        node.tasks.append(tn.li);
      }
      for (const [id, tn] of node.taskNodes) {
        if (!seen.has(id)) {
          tn.li.remove();
          node.taskNodes.delete(id);
        }
      }
      if (tasks.length === 0) node.tasks.replaceChildren(h("li", { class: "tree-empty" }, "No tasks."));
      else node.tasks.querySelector(".tree-empty")?.remove();
      await Promise.all(sorted.filter((t) => this.expandedTasks.has(`${project}/${t.task_id}`)).map((t) => this.loadRuns(project, t.task_id)));
      this.highlight();
    } catch (err) {
      node.tasks.replaceChildren(h("li", { class: "notice notice-error" }, err.message));
    }
  }

  taskNode(project, task) {
    const pn = this.projectNode(project);
    let tn = pn.taskNodes.get(task);
    if (tn) return tn;
    const toggle = h("button", { class: "tree-toggle", type: "button", "aria-label": `expand ${task}` }, "▸");
    const status = badge("queued");
    const runs = h("ul", { class: "tree-runs", hidden: true });
    const li = h("li", { class: "tree-task", dataset: { project, task } },
      h("div", { class: "tree-row" }, toggle, h("a", { href: link.task(project, task) }, task), status),
      runs);
    tn = { li, toggle, status, runs };
    toggle.addEventListener("click", () => this.toggleTask(project, task));
    pn.taskNodes.set(task, tn);
    pn.tasks.querySelector(".tree-empty")?.remove();
    pn.tasks.append(li);
    return tn;
  }

  async toggleTask(project, task, open) {
    const key = `${project}/${task}`;
    const tn = this.taskNode(project, task);
    const expand = open ?? !this.expandedTasks.has(key);
    if (expand) this.expandedTasks.add(key);
    else this.expandedTasks.delete(key);
    tn.runs.hidden = !expand;
    tn.toggle.textContent = expand ? "▾" : "▸";
    tn.li.setAttribute("aria-expanded", String(expand));
    if (expand) await this.loadRuns(project, task);
  }

  async loadRuns(project, task) {
    const tn = this.taskNode(project, task);
    try {
      const q = `project=${seg(project)}&task=${seg(task)}&limit=${RUNS_PER_TASK}`;
      const { runs } = await get(`/runs?${q}`);
      tn.runs.replaceChildren(...runs.map((r) =>
        h("li", { class: "tree-run", dataset: { run: r.run_id } },
          h("div", { class: "tree-row" }, h("a", { href: link.run(r.run_id) }, r.run_id), badge(r.status)))));
      if (runs.length === 0) tn.runs.append(h("li", { class: "tree-empty" }, "No runs."));
      this.highlight();
    } catch (err) {
      tn.runs.replaceChildren(h("li", { class: "notice notice-error" }, err.message));
    }
  }

  /** Expands the tree down to the route's project/task and marks the selected node. */
  async reveal(route) {
    this.selected = route;
    if (route.project) {
      await this.toggleProject(route.project, true);
      if (route.task) await this.toggleTask(route.project, route.task, true);
    }
    this.highlight();
  }

  highlight() {
    for (const el of this.container.querySelectorAll(".selected")) el.classList.remove("selected");
    const r = this.selected;
    if (!r) return;
    let el = null;
    if (r.run) el = this.container.querySelector(`.tree-run[data-run="${CSS.escape(r.run)}"]`);
    else if (r.task) el = this.projectNodes.get(r.project)?.taskNodes.get(r.task)?.li;
    else if (r.project) el = this.projectNodes.get(r.project)?.li;
    el?.querySelector(".tree-row")?.classList.add("selected");
  }

  onChange(change) {
    if (change.kind === "resync") {
      this.pending.add("*");
    } else {
      const { project_id: p, task_id: t } = change.run;
      if (!this.projectNodes.has(p)) this.pending.add("*");
      else if (this.expandedProjects.has(p)) this.pending.add(p);
      if (this.expandedTasks.has(`${p}/${t}`)) this.pending.add(`${p}/${t}`);
    }
    this.flush();
  }

  async reloadPending() {
    const work = [...this.pending];
    this.pending.clear();
    if (work.includes("*")) return this.load();
    for (const key of work) {
      const [p, t] = key.split("/");
      if (t === undefined) await this.loadTasks(p);
      else if (!work.includes(p)) await this.loadRuns(p, t);
    }
  }
}
