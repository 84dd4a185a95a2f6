// The API reference page (api.html): renders the OpenAPI document as a list of routes. Plain JS,
// no external resources. (The UI's API client is js/api.js.)
"use strict";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

async function render() {
  const box = document.getElementById("routes");
  const error = document.getElementById("api-error");
  try {
    const resp = await fetch("../api/v1/openapi.json", { credentials: "same-origin" });
    if (!resp.ok) throw new Error(`openapi.json: HTTP ${resp.status}`);
    const doc = await resp.json();
    for (const [path, item] of Object.entries(doc.paths).sort()) {
      for (const [method, op] of Object.entries(item)) {
        const block = el("div", undefined, "route");
        block.append(el("h3", `${method.toUpperCase()} ${path}`));
        if (op.description || op.summary) block.append(el("p", op.summary || op.description));
        const list = el("ul");
        for (const [code, r] of Object.entries(op.responses || {})) {
          list.append(el("li", `${code}: ${r.description}`));
        }
        block.append(list);
        box.append(block);
      }
    }
  } catch (err) {
    error.hidden = false;
    error.textContent = String(err);
  }
}

render();
