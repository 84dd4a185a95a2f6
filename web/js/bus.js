// A message-bus panel (project or task bus): the last messages, live updates from the tab's
// event stream (resumed after the last shown msg_id, so nothing is shown twice), a type filter
// with the runner's lifecycle messages hidden by default, and a post form.

import { get, post, seg } from "./api.js";
import { subscribe } from "./events.js";
import { fmtTime, h, link, notice } from "./dom.js";

const INITIAL_TAIL = 200;
const MAX_SHOWN = 1000;
const LIFECYCLE = new Set(["RUN_START", "RUN_STOP", "RUN_CRASH"]);
const TYPES = ["INFO", "FACT", "PROGRESS", "DECISION", "QUESTION", "ANSWER", "WARNING", "ERROR"];

/**
 * Builds the panel for the bus of `project` (and `task`, when given). Returns {element, close}.
 */
export function busPanel(project, task) {
  const path = task
    ? `/projects/${seg(project)}/tasks/${seg(task)}/bus`
    : `/projects/${seg(project)}/bus`;
  const list = h("ol", { class: "bus-messages", "aria-live": "polite", dataset: { lifecycle: "hidden" } });
  const status = h("p", { class: "bus-status muted" }, "Loading…");
  const typeFilter = h("select", { class: "bus-filter", "aria-label": "show messages of type" }, h("option", { value: "" }, "all types"));
  const lifecycle = h("input", { type: "checkbox", class: "bus-lifecycle" });
  const seenTypes = new Set();
  function applyFilter() {
    list.dataset.lifecycle = lifecycle.checked ? "shown" : "hidden";
    const only = typeFilter.value;
    for (const li of list.children) li.hidden = only !== "" && li.dataset.type !== only;
  }
  typeFilter.addEventListener("change", applyFilter);
  lifecycle.addEventListener("change", applyFilter);
  const filters = h("div", { class: "bus-filters" }, h("label", { class: "inline" }, "Type ", typeFilter),
    h("label", { class: "inline" }, lifecycle, " show RUN_START / RUN_STOP"));
  const typeInput = h("input", { name: "type", list: "bus-types", value: "INFO", required: true, size: 10, "aria-label": "message type" });
  const bodyInput = h("textarea", { name: "body", rows: 3, required: true, placeholder: "Message", "aria-label": "message body" });
  const formMessage = h("div", { class: "form-message" });
  const form = h("form", { class: "bus-post" },
    h("datalist", { id: "bus-types" }, TYPES.map((t) => h("option", { value: t }))),
    h("label", {}, "Type ", typeInput),
    bodyInput,
    h("button", { type: "submit" }, "Post"),
    formMessage);
  const element = h("section", { class: "panel bus-panel", dataset: { bus: task ? "task" : "project" } },
    h("h2", {}, task ? "Task message bus" : "Project message bus"), filters, status, list, form);

  const shown = new Set();
  let lastId = null;
  let unsubscribe = null;
  let closed = false;

  function show(msg) {
    if (shown.has(msg.msg_id)) return;
    shown.add(msg.msg_id);
    lastId = msg.msg_id;
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    const meta = [h("time", { datetime: msg.ts }, fmtTime(msg.ts)), h("span", { class: `bus-type type-${msg.type}` }, msg.type)];
    if (msg.task_id && !task) meta.push(h("a", { href: link.task(project, msg.task_id) }, msg.task_id));
    if (msg.run_id) meta.push(h("a", { href: link.run(msg.run_id), class: "bus-run" }, msg.run_id));
    if (!seenTypes.has(msg.type)) {
      seenTypes.add(msg.type);
      typeFilter.append(h("option", { value: msg.type }, msg.type));
    }
    const hiddenByType = typeFilter.value !== "" && typeFilter.value !== msg.type;
    list.append(h("li", { class: `bus-message${LIFECYCLE.has(msg.type) ? " bus-lifecycle-msg" : ""}`, hidden: hiddenByType, dataset: { msgId: msg.msg_id, type: msg.type } },
      h("div", { class: "bus-meta" }, meta),
      h("pre", { class: "bus-body" }, msg.body)));
    while (list.children.length > MAX_SHOWN) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
    status.textContent = "";
  }

  function follow() {
    if (closed) return;
    const name = task ? `bus:${project}/${task}` : `bus:${project}`;
    unsubscribe = subscribe(name, lastId, (kind, data) => {
      if (kind === "bus") for (const m of data.messages) show(m);
      else if (kind === "error") status.textContent = `Bus read error: ${data.message}`;
    });
  }

  (async () => {
    try {
      const { messages } = await get(`${path}?tail=${INITIAL_TAIL}`);
      list.replaceChildren();
      for (const m of messages) show(m);
      status.textContent = messages.length ? "" : "No messages yet.";
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      status.textContent = `Cannot read the bus: ${err.message}`;
    }
    follow();
  })();

  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    formMessage.replaceChildren();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const { msg_id: id } = await post(path, { type: typeInput.value.trim(), body: bodyInput.value });
      bodyInput.value = "";
      formMessage.replaceChildren(notice("ok", `Posted ${id}`));
    } catch (err) {
      formMessage.replaceChildren(notice("error", err.message));
    } finally {
      button.disabled = false;
    }
  });

  return {
    element,
    close() {
      closed = true;
      unsubscribe?.();
    },
  };
}
