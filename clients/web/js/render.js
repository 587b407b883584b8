// Small DOM helpers: build elements, and render any field value (string, number,
// list, map, HIDDEN) as readable, accessible markup.
import { isHidden } from "./wire.js";

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export const label = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

/** A node showing `value`; HIDDEN shows as a marker without any content. */
export function valueNode(value, depth = 0) {
  if (isHidden(value)) return el("span", { class: "hidden-field", text: "not visible to your role" });
  if (value === null || value === undefined) return el("span", { class: "muted", text: "—" });
  if (Array.isArray(value)) {
    if (!value.length) return el("span", { class: "muted", text: "none" });
    if (value.every((v) => typeof v !== "object" || v === null)) return document.createTextNode(value.join(", "));
    return el("ul", { class: "plain" }, ...value.map((v) => el("li", {}, valueNode(v, depth + 1))));
  }
  if (typeof value === "object" && !(value instanceof Uint8Array)) {
    if (depth > 4) return document.createTextNode(JSON.stringify(value));
    return fieldList(value, depth + 1);
  }
  if (typeof value === "boolean") return document.createTextNode(value ? "yes" : "no");
  return document.createTextNode(String(value));
}

export function fieldList(fields, depth = 0, skip = []) {
  const dl = el("dl", { class: "fields" });
  for (const [key, value] of Object.entries(fields)) {
    if (skip.includes(key)) continue;
    dl.append(el("dt", { text: label(key) }), el("dd", {}, valueNode(value, depth)));
  }
  return dl;
}

export function clockText(seconds) {
  if (typeof seconds !== "number") return "";
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** Replace a list's items with `items` rendered by `render`, keeping at most `cap`. */
export function fillList(list, items, render, cap = 50) {
  const shown = items.slice(-cap);
  list.replaceChildren(...shown.map((item) => el("li", {}, render(item))));
}
