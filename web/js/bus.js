// A message-bus panel (project or task bus): the last messages, live updates over SSE, and a
// post form. The stream resumes after the last shown msg_id, so nothing is shown twice.

import { API, get, post, seg } from "./api.js";
import { fmtTime, h, link, notice } from "./dom.js";

const INITIAL_TAIL = 200;
const MAX_SHOWN = 1000;
const TYPES = ["INFO", "FACT", "PROGRESS", "DECISION", "QUESTION", "ANSWER", "WARNING", "ERROR"];

/**
 * Builds the panel for the bus of `project` (and `task`, when given). Returns {element, close}.
 */
export function busPanel(project, task) {
  const path = task
    ? `/projects/${seg(project)}/tasks/${seg(task)}/bus`
    : `/projects/${seg(project)}/bus`;
  const list = h("ol", { class: "bus-messages", "aria-live": "polite" });
  const status = h("p", { class: "bus-status muted" }, "Loading…");
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
    h("h2", {}, task ? "Task message bus" : "Project message bus"), status, list, form);

  const shown = new Set();
  let lastId = null;
  let source = null;
  let closed = false;

  function show(msg) {
    if (shown.has(msg.msg_id)) return;
    shown.add(msg.msg_id);
    lastId = msg.msg_id;
    const stick = list.scrollTop + list.clientHeight >= list.scrollHeight - 8;
    const meta = [h("time", { datetime: msg.ts }, fmtTime(msg.ts)), h("span", { class: `bus-type type-${msg.type}` }, msg.type)];
    if (msg.task_id && !task) meta.push(h("a", { href: link.task(project, msg.task_id) }, msg.task_id));
    if (msg.run_id) meta.push(h("a", { href: link.run(msg.run_id), class: "bus-run" }, msg.run_id));
    list.append(h("li", { class: "bus-message", dataset: { msgId: msg.msg_id } },
      h("div", { class: "bus-meta" }, meta),
      h("pre", { class: "bus-body" }, msg.body)));
    while (list.children.length > MAX_SHOWN) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
    status.textContent = "";
  }

  function follow() {
    if (closed) return;
    const since = lastId ? `?since=${encodeURIComponent(lastId)}` : "";
    source = new EventSource(`${API}${path}/stream${since}`, { withCredentials: true });
    source.addEventListener("message", (ev) => {
      try {
        show(JSON.parse(ev.data));
      } catch (err) {
        console.warn("bad bus event", err);
      }
    });
    source.addEventListener("error", (ev) => {
      if (ev.data) status.textContent = `Bus read error: ${ev.data}`;
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
      source?.close();
    },
  };
}
