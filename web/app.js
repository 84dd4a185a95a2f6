// Conductor web UI: server status. Plain JS, no build step, no external resources.
"use strict";

function row(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value === null || value === undefined ? "—" : String(value);
  list.append(dt, dd);
}

async function loadStatus() {
  const list = document.getElementById("status");
  const error = document.getElementById("status-error");
  try {
    const resp = await fetch("../api/v1/status", { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`status request failed: HTTP ${resp.status}`);
    const s = await resp.json();
    document.getElementById("version").textContent = `v${s.version} (${s.commit})`;
    list.replaceChildren();
    row(list, "Root", s.root);
    row(list, "Config", s.config);
    row(list, "Uptime", `${s.uptime_seconds} s`);
    row(list, "PID", s.pid);
    row(list, "Task start", s.task_start_enabled ? "enabled" : "disabled (read-only)");
    row(list, "Executable sha256", s.executable_sha256);
    error.hidden = !s.config_error;
    error.textContent = s.config_error ? `Config error: ${s.config_error}` : "";
  } catch (err) {
    error.hidden = false;
    error.textContent = String(err);
  }
}

loadStatus();
setInterval(loadStatus, 5000);
