// Keyboard navigation: `/` focuses the page's search, `j`/`k` (and the arrows once a row is
// selected) move through the page's list (runs, tasks, failures) by focusing each row's link,
// so Enter opens it as a click would,
// `g d` / `g r` / `g a` go to the dashboard, runs and about pages, `[` / `]` open the previous
// and next run of a run page, `?` shows the shortcuts. Keys typed into inputs, and keys with
// Ctrl/Alt/Meta, are left alone; Escape leaves a field.

import { h } from "./dom.js";

/** The shortcuts, as shown by `?`. */
export const SHORTCUTS = [
  ["/", "focus the search (the log's, or the first filter)"],
  ["j / k", "next / previous row of the list (↓ / ↑ once a row is selected)"],
  ["Enter", "open the selected row"],
  ["g d", "go to the dashboard"],
  ["g r", "go to the runs page"],
  ["g a", "go to the about page"],
  ["[ / ]", "previous / next run of the task (run page)"],
  ["Esc", "leave a field, close this help"],
  ["?", "show this help"],
];

const GO = { d: "#/", r: "#/runs", a: "#/about" };
/** How long a `g` waits for its second key. */
const CHORD_MS = 1500;

/** Rows of the page's lists: table body rows and failure entries that hold a link. */
const ROWS = "#view tbody tr, #view .failures li";

function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}

function rows() {
  return [...document.querySelectorAll(ROWS)].filter((r) => r.querySelector("a[href]") && r.offsetParent !== null);
}

/** Whether the focus is on a row of the page's list. */
function inRow() {
  return rows().some((r) => r.contains(document.activeElement));
}

/** Moves the selection by `step` rows (from the row holding the focus, else from the edge). */
function move(step) {
  const all = rows();
  if (all.length === 0) return;
  const at = all.findIndex((r) => r.contains(document.activeElement));
  const next = at < 0 ? (step > 0 ? 0 : all.length - 1) : Math.min(all.length - 1, Math.max(0, at + step));
  for (const r of all) r.classList.remove("kb-current");
  const row = all[next];
  row.classList.add("kb-current");
  row.querySelector("a[href]").focus();
  row.scrollIntoView({ block: "nearest" });
}

function focusSearch() {
  const target = document.querySelector("#view [data-kb-search]:not([hidden])") ||
    document.querySelector("#view input:not([type=hidden]), #view textarea");
  if (!target) return false;
  target.focus();
  target.select?.();
  return true;
}

function helpDialog() {
  let dialog = document.getElementById("kb-help");
  if (dialog) return dialog;
  dialog = h("dialog", { id: "kb-help", "aria-labelledby": "kb-help-title" },
    h("h2", { id: "kb-help-title" }, "Keyboard shortcuts"),
    h("dl", { class: "kb-keys" }, SHORTCUTS.flatMap(([k, what]) => [h("dt", {}, h("kbd", {}, k)), h("dd", {}, what)])),
    h("form", { method: "dialog", class: "form-actions" }, h("button", { type: "submit" }, "Close")));
  document.body.append(dialog);
  return dialog;
}

/** Opens the shortcuts help. */
export function showShortcuts() {
  helpDialog().showModal();
}

/** Installs the shortcuts; `navigate(hash)` changes the page. */
export function installKeys(navigate) {
  let pendingG = 0;
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
    if (typing(ev.target)) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    if (document.getElementById("kb-help")?.open) return;
    const now = Date.now();
    if (pendingG && now - pendingG < CHORD_MS && GO[ev.key]) {
      pendingG = 0;
      ev.preventDefault();
      navigate(GO[ev.key]);
      return;
    }
    pendingG = 0;
    let handled = true;
    switch (ev.key) {
      case "g": pendingG = now; break;
      case "/": handled = focusSearch(); break;
      case "j": move(1); break;
      case "k": move(-1); break;
      // Arrows move too once a row is selected (before that they scroll the page).
      case "ArrowDown": handled = inRow() && (move(1), true); break;
      case "ArrowUp": handled = inRow() && (move(-1), true); break;
      case "[": document.querySelector("#view a.run-prev")?.click(); break;
      case "]": document.querySelector("#view a.run-next")?.click(); break;
      case "?": showShortcuts(); break;
      default: handled = false;
    }
    if (handled) ev.preventDefault();
  });
}
