// All runs, newest first, filtered by project, task, status, agent (name or type) and start
// time (the fragment's query, so a filtered list is a link), a page at a time from the API's
// cursor. Times in the fragment are RFC 3339 (UTC); the form shows them in local time.

import { get } from "../api.js";
import { h, notice } from "../dom.js";
import { runTable } from "./dashboard.js";

const PAGE = 50;
const STATUSES = ["", "running", "completed", "failed", "stopped", "unknown"];
/** The filters of the page, in the order of the fragment's query. */
const FILTERS = ["project", "task", "status", "agent", "since", "until"];

/** "2026-12-05T14:03" (local, for a datetime-local input) from an RFC 3339 time, or "". */
function localInput(rfc3339) {
  const d = rfc3339 ? new Date(rfc3339) : null;
  if (!d || Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The RFC 3339 UTC time of a datetime-local input's value, or "". */
function fromLocalInput(value) {
  const d = value ? new Date(value) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : "";
}

export function runsView(view, params, ctx) {
  const q = new URLSearchParams(params.query || "");
  const project = h("input", { name: "project", id: "runs-project", list: "project-ids", value: q.get("project") || "", placeholder: "any" });
  const task = h("input", { name: "task", id: "runs-task", value: q.get("task") || "", placeholder: "any" });
  const status = h("select", { name: "status", id: "runs-status" },
    STATUSES.map((s) => h("option", { value: s, selected: s === (q.get("status") || "") }, s || "any")));
  const agentNames = h("datalist", { id: "runs-agent-names" });
  const agent = h("input", { name: "agent", id: "runs-agent", list: "runs-agent-names", value: q.get("agent") || "", placeholder: "name or type" });
  const since = h("input", { type: "datetime-local", name: "since", id: "runs-since", value: localInput(q.get("since")) });
  const until = h("input", { type: "datetime-local", name: "until", id: "runs-until", value: localInput(q.get("until")) });
  const form = h("form", { class: "panel form filters", id: "runs-filter" },
    h("div", { class: "form-row" },
      h("label", {}, "Project", project), h("label", {}, "Task", task), h("label", {}, "Status", status),
      h("label", {}, "Agent", agent, agentNames)),
    h("div", { class: "form-row" },
      h("label", {}, "Started from", since), h("label", {}, "Started before", until)),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Filter"),
      h("a", { href: "#/runs", id: "runs-clear" }, "Clear")));
  const list = h("div", { id: "runs-list", class: "kb-list" }, "Loading…");
  const more = h("button", { type: "button", class: "secondary", id: "runs-more", hidden: true }, "Older runs");
  view.replaceChildren(h("h1", {}, "Runs"), form, h("section", { class: "panel" }, list, more));
  document.title = "Runs — Conductor";

  get("/agents").then((a) => {
    const seen = new Set();
    for (const x of a.agents) {
      for (const v of [x.name, x.type]) {
        if (!seen.has(v)) agentNames.append(h("option", { value: v }));
        seen.add(v);
      }
    }
  }, () => { /* The list only helps typing; the filter works without it. */ });

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const values = {
      project: project.value.trim(), task: task.value.trim(), status: status.value, agent: agent.value.trim(),
      since: fromLocalInput(since.value), until: fromLocalInput(until.value),
    };
    const next = new URLSearchParams();
    for (const k of FILTERS) if (values[k]) next.set(k, values[k]);
    ctx.navigate(`#/runs${next.toString() ? `?${next}` : ""}`);
  });

  let cursor = null;
  async function load(append) {
    const api = new URLSearchParams({ limit: String(PAGE) });
    for (const k of FILTERS) if (q.get(k)) api.set(k, q.get(k));
    if (append && cursor) api.set("cursor", cursor);
    try {
      const { runs, next_cursor: next } = await get(`/runs?${api}`);
      if (append) list.querySelector("tbody")?.append(...runTable(runs, true).querySelectorAll("tbody tr"));
      else list.replaceChildren(runs.length ? runTable(runs, true) : h("p", { class: "muted", id: "runs-none" }, "No runs match."));
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
