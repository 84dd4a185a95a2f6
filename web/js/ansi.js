// ANSI SGR colours to DOM: `appendAnsi(el, text)` appends text with \x1b[…m colour and bold
// codes as spans (classes ansi-fg-N, ansi-bold); every other escape sequence is dropped, so
// copied text carries no escape codes.

// eslint-disable-next-line no-control-regex
const ESC = /\x1b\[([0-9;]*)([A-Za-z])|\x1b[^[]/g;

/** Appends `text` to `el` with ANSI colours rendered. Returns `el`. */
export function appendAnsi(el, text) {
  if (text.indexOf("\x1b") < 0) {
    el.append(text);
    return el;
  }
  let fg = null;
  let bold = false;
  let last = 0;
  const flush = (chunk) => {
    if (!chunk) return;
    if (fg === null && !bold) {
      el.append(chunk);
      return;
    }
    const span = document.createElement("span");
    span.className = `${fg !== null ? `ansi-fg-${fg}` : ""}${bold ? " ansi-bold" : ""}`.trim();
    span.textContent = chunk;
    el.append(span);
  };
  for (const m of text.matchAll(ESC)) {
    flush(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] !== "m") continue;
    const codes = (m[1] || "0").split(";").map(Number);
    for (const c of codes) {
      if (c === 0) { fg = null; bold = false; }
      else if (c === 1) bold = true;
      else if (c === 22) bold = false;
      else if (c === 39) fg = null;
      else if ((c >= 30 && c <= 37) || (c >= 90 && c <= 97)) fg = c;
    }
  }
  flush(text.slice(last));
  return el;
}
