// What both pages share: the configuration embedded in the page, the API client, the
// status line, error boxes and the refresh loop.

import { ApiClient } from "./api.js";
import { h, replace } from "./dom.js";

export function loadConfig() {
  const node = document.getElementById("console-config");
  try {
    return JSON.parse(node?.textContent || "{}");
  } catch {
    return {};
  }
}

export function createClient(config) {
  return new ApiClient(config);
}

export function setStatus(text, tone = "ok") {
  const node = document.getElementById("status-line");
  if (!node) return;
  node.dataset.tone = tone;
  node.textContent = text;
}

export function updatedNow() {
  setStatus(`Updated ${new Date().toISOString().slice(11, 19)} UTC`, "ok");
}

/** A box that shows an API error as the API phrased it. */
export function errorBox(err, prefix = "") {
  const meta = [err?.code, err?.status ? `HTTP ${err.status}` : null].filter(Boolean).join(" · ");
  return h(
    "div",
    { class: "error-box", role: "alert" },
    prefix ? h("strong", {}, prefix, " ") : null,
    h("span", { class: "api-message" }, err?.message || String(err)),
    meta ? h("code", { class: "api-code" }, meta) : null,
  );
}

/** Call ``fn`` every ``seconds`` while the page is visible (0 disables). */
export function startRefresh(fn, seconds) {
  if (!seconds || seconds <= 0) return null;
  return setInterval(() => {
    if (!document.hidden) fn();
  }, seconds * 1000);
}

export function mainElement() {
  const main = document.getElementById("main");
  replace(main);
  return main;
}

export function section(title, attrs = {}, ...children) {
  return h("section", { class: `panel ${attrs.class ?? ""}`.trim(), id: attrs.id }, h("h2", {}, title), ...children);
}
