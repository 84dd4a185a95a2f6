// A small Markdown renderer that builds DOM nodes directly: headings, paragraphs, lists,
// block quotes, fenced and indented code, rules, tables, and inline code, emphasis, links.
// Raw HTML is shown as text, links keep only http(s)/mailto/relative targets, and images
// become links (the UI never loads anything from another host). That is the sanitizing.

import { h } from "./dom.js";


/** Renders `source` into a new <div class="markdown">. */
export function renderMarkdown(source) {
  const root = h("div", { class: "markdown" });
  const lines = String(source).replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (/^\s*$/.test(line)) {
      i++;
      continue;
    }
    const fence = /^ {0,3}(```+|~~~+)\s*([\w+-]*)/.exec(line);
    if (fence) {
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) body.push(lines[i++]);
      i++;
      const code = h("code", fence[2] ? { class: `language-${fence[2]}` } : {}, body.join("\n"));
      root.append(h("pre", {}, code));
      continue;
    }
    const heading = /^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line);
    if (heading) {
      root.append(h(`h${heading[1].length}`, {}, inline(heading[2])));
      i++;
      continue;
    }
    if (/^ {0,3}([-*_])(\s*\1){2,}\s*$/.test(line)) {
      root.append(h("hr"));
      i++;
      continue;
    }
    if (/^ {0,3}>/.test(line)) {
      const body = [];
      while (i < lines.length && /^ {0,3}>/.test(lines[i])) body.push(lines[i++].replace(/^ {0,3}> ?/, ""));
      const quote = renderMarkdown(body.join("\n"));
      root.append(h("blockquote", {}, ...quote.childNodes));
      continue;
    }
    if (/^( {4}|\t)/.test(line)) {
      const body = [];
      while (i < lines.length && (/^( {4}|\t)/.test(lines[i]) || /^\s*$/.test(lines[i]))) {
        body.push(lines[i++].replace(/^( {4}|\t)/, ""));
      }
      while (body.length && body[body.length - 1].trim() === "") body.pop();
      root.append(h("pre", {}, h("code", {}, body.join("\n"))));
      continue;
    }
    const item = listItem(line);
    if (item) {
      const list = h(item.ordered ? "ol" : "ul");
      while (i < lines.length) {
        const it = listItem(lines[i]);
        if (!it || it.ordered !== item.ordered) break;
        const text = [it.text];
        i++;
        while (i < lines.length && /^\s{2,}\S/.test(lines[i]) && !listItem(lines[i])) text.push(lines[i++].trim());
        list.append(h("li", {}, inline(text.join(" "))));
      }
      root.append(list);
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && /^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(lines[i + 1])) {
      const rows = [];
      rows.push(cells(line));
      i += 2;
      while (i < lines.length && lines[i].includes("|") && lines[i].trim() !== "") rows.push(cells(lines[i++]));
      const head = h("tr", {}, rows[0].map((c) => h("th", {}, inline(c))));
      const body = rows.slice(1).map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c)))));
      root.append(h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
      continue;
    }
    const para = [];
    while (i < lines.length && !/^\s*$/.test(lines[i]) && !startsBlock(lines[i])) para.push(lines[i++]);
    if (para.length === 0) para.push(lines[i++]);
    root.append(h("p", {}, inline(para.join("\n"))));
  }
  return root;
}

function listItem(line) {
  const m = /^ {0,3}([-*+]|\d{1,9}[.)])\s+(.*)$/.exec(line);
  if (!m) return null;
  return { ordered: /\d/.test(m[1]), text: m[2] };
}

function startsBlock(line) {
  return /^ {0,3}(#{1,6}\s|```|~~~|>)/.test(line) || listItem(line) !== null ||
    /^ {0,3}([-*_])(\s*\1){2,}\s*$/.test(line);
}

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

/** Inline markup of one block: returns an array of nodes. */
export function inline(text) {
  const out = [];
  let rest = text;
  const patterns = [
    { re: /^`([^`]+)`/, make: (m) => h("code", {}, m[1]) },
    { re: /^!\[([^\]]*)\]\(((?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"]*")?\)/, make: (m) => anchor(m[2], m[1] || m[2]) },
    { re: /^\[([^\]]+)\]\(((?:[^()\s]|\([^()\s]*\))+)(?:\s+"[^"]*")?\)/, make: (m) => anchor(m[2], inline(m[1])) },
    { re: /^<(https?:\/\/[^>\s]+)>/, make: (m) => anchor(m[1], m[1]) },
    { re: /^(\*\*|__)(?=\S)([\s\S]*?\S)\1/, make: (m) => h("strong", {}, inline(m[2])) },
    { re: /^(\*|_)(?=\S)([\s\S]*?\S)\1(?![\w*])/, make: (m) => h("em", {}, inline(m[2])) },
    { re: /^~~(?=\S)([\s\S]*?\S)~~/, make: (m) => h("del", {}, inline(m[1])) },
    { re: /^\\([\\`*_{}[\]()#+\-.!|~<>])/, make: (m) => m[1] },
    { re: /^\n/, make: () => " " },
  ];
  let plain = "";
  outer: while (rest.length > 0) {
    for (const { re, make } of patterns) {
      const m = re.exec(rest);
      if (m) {
        if (plain) out.push(plain);
        plain = "";
        out.push(make(m));
        rest = rest.slice(m[0].length);
        continue outer;
      }
    }
    plain += rest[0];
    rest = rest.slice(1);
  }
  if (plain) out.push(plain);
  return out;
}

function anchor(url, content) {
  if (!safeUrl(url)) return h("span", { class: "unsafe-link" }, content);
  const external = /^(https?:|mailto:)/i.test(url);
  return h("a", { href: url, rel: external ? "noopener noreferrer" : undefined, target: external ? "_blank" : undefined }, content);
}

/** http(s) and mailto URLs, and relative ones (no scheme, not protocol-relative). */
export function safeUrl(url) {
  if (/^(https?:|mailto:)/i.test(url)) return true;
  if (url.startsWith("//") || url.startsWith("\\")) return false;
  const scheme = url.split(/[/?#]/, 1)[0];
  return !scheme.includes(":");
}
