// Conductor web UI: a hash-routed single page. Plain ES modules, no build step, no external
// resources. Routes: #/ (dashboard), #/runs[?filters], #/projects/P, #/projects/P/tasks/T,
// #/runs/R, #/about, #/login.

import { get, onUnauthorized, post } from "./js/api.js";
import { h } from "./js/dom.js";
import { installKeys, showShortcuts } from "./js/keys.js";
import { reconnect } from "./js/live.js";
import { Tree } from "./js/tree.js";
import { refreshTimes } from "./js/dom.js";
import { aboutView } from "./js/views/about.js";
import { dashboard } from "./js/views/dashboard.js";
import { runsView } from "./js/views/runs.js";
import { loginView } from "./js/views/login.js";
import { projectView } from "./js/views/project.js";
import { runView } from "./js/views/run.js";
import { taskView } from "./js/views/task.js";

const ROUTES = [
  [/^\/?$/, [], dashboard],
  [/^\/login$/, [], loginView],
  [/^\/about$/, [], aboutView],
  [/^\/runs(?:\?(.*))?$/, ["query"], runsView],
  [/^\/projects\/([^/]+)$/, ["project"], projectView],
  [/^\/projects\/([^/]+)\/tasks\/([^/]+)$/, ["project", "task"], taskView],
  [/^\/runs\/([^/]+)$/, ["run"], runView],
];

const view = document.getElementById("view");
const tree = new Tree(document.getElementById("tree"));
const projectIds = document.getElementById("project-ids");
let cleanup = () => {};
let afterLogin = "#/";

const ctx = {
  navigate(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  },
  reveal(r) {
    tree.reveal(r);
  },
  setStatus(s) {
    showStatus(s);
  },
  setProjects(ids) {
    projectIds.replaceChildren(...ids.map((id) => h("option", { value: id })));
  },
  loggedIn() {
    reconnect();
    tree.load();
    refreshStatus();
    ctx.navigate(afterLogin === "#/login" ? "#/" : afterLogin);
  },
};

function route() {
  const path = location.hash.replace(/^#/, "");
  cleanup();
  cleanup = () => {};
  for (const [re, names, render] of ROUTES) {
    const m = re.exec(path || "/");
    if (!m) continue;
    const params = {};
    names.forEach((name, i) => { params[name] = name === "query" ? (m[i + 1] || "") : decodeURIComponent(m[i + 1]); });
    document.body.dataset.route = render.name;
    view.replaceChildren();
    cleanup = render(view, params, ctx) || (() => {});
    tree.reveal(params);
    window.scrollTo(0, 0);
    return;
  }
  view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, "No such page. "), h("a", { href: "#/" }, "Back to the dashboard"));
}

function showStatus(s) {
  document.getElementById("version").textContent = `v${s.version}`;
  const badge = document.getElementById("update-badge");
  const state = s.update?.state || "idle";
  badge.hidden = state === "idle";
  badge.textContent = `update: ${state}`;
  badge.className = `status status-${state}`;
  document.getElementById("logout").hidden = !s.auth_enabled;
  document.getElementById("read-only").hidden = s.task_start_enabled;
}

async function refreshStatus() {
  if (location.hash === "#/login") return;
  try {
    showStatus(await get("/status"));
  } catch (_) {
    // A 401 already routed to the login form; other errors show in the views.
  }
}

onUnauthorized(() => {
  if (location.hash !== "#/login") {
    afterLogin = location.hash || "#/";
    location.hash = "#/login";
  }
});

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await post("/auth/logout");
  } finally {
    afterLogin = "#/";
    location.hash = "#/login";
  }
});

window.addEventListener("hashchange", route);
installKeys((hash) => ctx.navigate(hash));
document.getElementById("kb-help-open").addEventListener("click", showShortcuts);
route();
tree.load();
refreshStatus();
setInterval(refreshStatus, 15000);
setInterval(() => refreshTimes(), 15000);
