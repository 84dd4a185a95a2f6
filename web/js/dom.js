// Small DOM helpers. Every piece of server data reaches the page through textContent or
// attribute values set here, never through innerHTML, so nothing the server returns can
// inject markup.

/** Creates an element: h("a", {href: "#/", class: "x"}, "text", child, …). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.append(child);
    else el.append(document.createTextNode(String(child)));
  }
}

/** The `#/…` link of a route. */
export const link = {
  home: () => "#/",
  project: (p) => `#/projects/${encodeURIComponent(p)}`,
  task: (p, t) => `#/projects/${encodeURIComponent(p)}/tasks/${encodeURIComponent(t)}`,
  run: (r) => `#/runs/${encodeURIComponent(r)}`,
};

/** A status badge: <span class="status status-running">running</span>. */
export function badge(status) {
  const s = status || "unknown";
  return h("span", { class: `status status-${s}`, "data-status": s }, s);
}

/** A definition list from [name, value] pairs; empty values show as "—". */
export function dl(rows, attrs) {
  const list = h("dl", attrs);
  for (const [name, value] of rows) {
    const shown = value === null || value === undefined || value === "" ? "—" : value;
    list.append(h("dt", {}, name), h("dd", {}, shown));
  }
  return list;
}

/** "2026-11-25 12:00:01" in local time, or "—" for an unset / zero time. */
export function fmtTime(value) {
  if (!value || value.startsWith("0001-01-01")) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return value;
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "1h 02m", "3m 07s", "12s". */
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "—";
  const s = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  if (s >= 86400) return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${s}s`;
}

/** A message line shown in a form or panel; kind is "error" or "ok". */
export function notice(kind, text) {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Calls `fn` at most once per `ms`, after the last call (trailing debounce). */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** "3 min ago" / "in 2 h" for an RFC 3339 time; "—" for an unset or zero time. */
export function fmtRelative(value, now = Date.now()) {
  if (!value || value.startsWith("0001-01-01")) return "—";
  const t = new Date(value).getTime();
  if (Number.isNaN(t)) return value;
  const s = Math.round((now - t) / 1000);
  const a = Math.abs(s);
  const text = a < 45 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

/** A <time> showing the relative time, with the absolute local time and zone on hover. */
export function timeEl(value) {
  if (!value || value.startsWith("0001-01-01")) return "—";
  const d = new Date(value);
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  return h("time", { datetime: value, class: "rel", title: `${fmtTime(value)} ${zone}` }, fmtRelative(value));
}

/** Refreshes every relative time on the page (called periodically by the app). */
export function refreshTimes(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("time.rel")) el.textContent = fmtRelative(el.getAttribute("datetime"), now);
}

/**
 * Calls `fn` at once, then at most once per `ms` while calls keep coming (the last call is
 * never lost): a steady stream of events still refreshes once per `ms`.
 */
export function throttle(fn, ms) {
  let timer = null;
  let last = 0;
  let pending = false;
  const run = () => {
    timer = null;
    last = Date.now();
    pending = false;
    fn();
  };
  const wrapped = () => {
    pending = true;
    if (timer) return;
    timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
  };
  wrapped.cancel = () => { clearTimeout(timer); timer = null; pending = false; };
  wrapped.pending = () => pending;
  return wrapped;
}

/** A whole number with thousands separators: 12,345. */
export function fmtInt(n) {
  return Number(n || 0).toLocaleString("en-US");
}

/** US dollars with up to four decimals: $0.0123, $12.5. */
export function fmtUsd(value) {
  return `$${Number(value || 0).toFixed(4).replace(/0+$/, "").replace(/\.$/, "")}`;
}

/** One run's usage: "2,008 in (1,000 cached) / 50 out · $0.0123 reported". */
export function fmtUsage(u) {
  if (!u) return "";
  const cached = u.cached_input_tokens ? ` (${fmtInt(u.cached_input_tokens)} cached)` : "";
  const cost = u.cost_usd === undefined || u.cost_usd === null ? " · no cost known"
    : ` · ${fmtUsd(u.cost_usd)} ${u.cost_source || ""}`.trimEnd();
  return `${fmtInt(u.input_tokens)} in${cached} / ${fmtInt(u.output_tokens)} out${cost}`;
}

/** Usage totals of a task or project: "4,116 tokens · $0.0246" ("" when no run has usage). */
export function fmtTotals(t) {
  if (!t || !t.runs_with_usage) return "";
  const unknown = t.runs_without_cost ? ` (${t.runs_without_cost} of ${t.runs_with_usage} runs without a known cost)` : "";
  return `${fmtInt(t.total_tokens)} tokens · ${fmtUsd(t.cost_usd)}${unknown}`;
}

/**
 * A small bar chart (inline SVG) of the runs' cost, oldest left; tokens when no run has a
 * cost. Each bar is titled with its run id and figure.
 */
export function usageChart(runs) {
  const points = runs.filter((r) => r.usage).slice().reverse();
  if (points.length === 0) return h("p", { class: "muted" }, "No usage reported yet.");
  const byCost = points.some((r) => typeof r.usage.cost_usd === "number");
  const value = (u) => byCost ? (u.cost_usd || 0) : (u.input_tokens || 0) + (u.output_tokens || 0);
  const max = Math.max(...points.map((r) => value(r.usage)), 1e-12);
  const ns = "http://www.w3.org/2000/svg";
  const width = 240, height = 48, gap = 2;
  const bar = Math.max(2, Math.min(24, (width - gap * points.length) / points.length));
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "usage-chart");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${byCost ? "Cost" : "Tokens"} per run`);
  points.forEach((r, n) => {
    const v = value(r.usage);
    const barHeight = Math.max(1, Math.round((v / max) * (height - 2)));
    const rect = document.createElementNS(ns, "rect");
    rect.setAttribute("x", String(n * (bar + gap)));
    rect.setAttribute("y", String(height - barHeight));
    rect.setAttribute("width", String(bar));
    rect.setAttribute("height", String(barHeight));
    rect.setAttribute("data-run", r.run_id);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${r.run_id}: ${byCost ? fmtUsd(v) : `${fmtInt(v)} tokens`}`;
    rect.append(title);
    svg.append(rect);
  });
  return svg;
}
