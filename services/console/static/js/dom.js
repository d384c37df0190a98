// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so strings
// from the API cannot inject markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    for (const c of child) append(parent, c);
  } else if (child instanceof Node) {
    parent.appendChild(child);
  } else {
    parent.appendChild(document.createTextNode(String(child)));
  }
}

/** An HTML element: h("a", {href, class, onclick}, "text", child...). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      node.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      node.className = v;
    } else if (v === true) {
      node.setAttribute(k, "");
    } else {
      node.setAttribute(k, String(v));
    }
  }
  append(node, children);
  return node;
}

/** An SVG element tree from a vnode of plots.js. */
export function svg(vnode) {
  if (typeof vnode === "string" || typeof vnode === "number") return document.createTextNode(String(vnode));
  const node = document.createElementNS(SVG_NS, vnode.tag);
  for (const [k, v] of Object.entries(vnode.attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    node.setAttribute(k, String(v));
  }
  for (const c of vnode.children ?? []) node.appendChild(svg(c));
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

export function replace(node, ...children) {
  clear(node);
  append(node, children);
  return node;
}
