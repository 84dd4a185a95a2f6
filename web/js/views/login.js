// The API-key login: POST /api/v1/auth/login sets an HttpOnly session cookie, which the UI's
// requests and event streams then carry (EventSource cannot send an Authorization header).

import { post } from "../api.js";
import { h, notice } from "../dom.js";

export function loginView(view, _params, ctx) {
  const key = h("input", { type: "password", id: "login-key", name: "api_key", required: true, autocomplete: "current-password" });
  const message = h("div", { class: "form-message" });
  const form = h("form", { id: "login-form", class: "panel form narrow" },
    h("h1", {}, "Log in"),
    h("p", {}, "This server requires its API key."),
    h("label", {}, "API key", key),
    h("div", { class: "form-actions" }, h("button", { type: "submit" }, "Log in")),
    message);
  view.replaceChildren(form);
  key.focus();
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    message.replaceChildren();
    try {
      await post("/auth/login", { api_key: key.value });
      key.value = "";
      ctx.loggedIn();
    } catch (err) {
      message.replaceChildren(notice("error", err.message));
    }
  });
  return () => {};
}
