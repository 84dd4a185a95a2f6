// The About page: server internals (version, root, config, pid, executable sha256, auth) and
// the self-update state with the last updates.

import { ApiError, get } from "../api.js";
import { badge, dl, fmtDuration, fmtTime, h, notice } from "../dom.js";

export function aboutView(view, _params, ctx) {
  const statusBox = h("div", { id: "server-status" }, "Loading…");
  const updateBox = h("div", { id: "update-state" }, "Loading…");
  view.replaceChildren(
    h("h1", {}, "About this server"),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, h("h2", {}, "Server"), statusBox),
      h("section", { class: "panel" }, h("h2", {}, "Self-update"), updateBox)));
  document.title = "About — Conductor";

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

  loadStatus();
  const timer = setInterval(loadStatus, 5000);
  return () => { clearInterval(timer); };
}

