// Shared helpers for every page: JSON fetches that surface API errors, DOM building without
// innerHTML (so cached values are always text), relative times and debounce.
"use strict";

(function () {
  class ApiError extends Error {
    constructor(message, status, body) {
      super(message);
      this.name = "ApiError";
      this.status = status;
      this.body = body;
    }
  }

  // fetch() a same-origin JSON endpoint; non-2xx answers throw ApiError with the API's message.
  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin" }, options || {});
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (opts.json !== undefined) {
      opts.body = JSON.stringify(opts.json);
      opts.headers["Content-Type"] = "application/json";
      delete opts.json;
    }
    let response;
    try {
      response = await fetch(path, opts);
    } catch (err) {
      throw new ApiError("The server could not be reached: " + err.message, 0, null);
    }
    if (response.status === 401) {
      // The login cookie expired: sign in again and come back here.
      const next = window.location.pathname + window.location.search;
      window.location.assign("/login?next=" + encodeURIComponent(next));
      throw new ApiError("Signing in again…", 401, null);
    }
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("application/json") ? await response.json() : null;
    if (!response.ok) {
      const message = (body && body.error) || response.status + " " + response.statusText;
      throw new ApiError(message, response.status, body);
    }
    return body;
  }

  // One banner per page for errors that belong to no form.
  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message || "";
    box.className = "flash" + (kind ? " flash-" + kind : "");
    box.hidden = !message;
  }

  function showError(err) {
    flash(err instanceof Error ? err.message : String(err), "error");
  }

  // el("a", {href: "/x", class: "y", dataset: {arn: a}}, "text", child): text is never HTML.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // A duration in seconds as "45 seconds", "3 minutes", "2 hours", "5 days".
  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    const units = [
      [86400, "day"],
      [3600, "hour"],
      [60, "minute"],
      [1, "second"],
    ];
    for (const [size, name] of units) {
      if (s >= size || size === 1) {
        const n = Math.floor(s / size);
        return n + " " + name + (n === 1 ? "" : "s");
      }
    }
    return "0 seconds";
  }

  // A unix time as "just now" / "N minutes ago"; "never" for null.
  function ago(unix, now) {
    if (unix === null || unix === undefined) return "never";
    const seconds = (now === undefined ? Date.now() / 1000 : now) - unix;
    if (seconds < 10) return "just now";
    return duration(seconds) + " ago";
  }

  function absolute(unix) {
    if (unix === null || unix === undefined) return "";
    return new Date(unix * 1000).toLocaleString();
  }

  // A <time> element showing "N minutes ago" with the exact time as its tooltip.
  function timeAgo(unix) {
    if (unix === null || unix === undefined) return el("span", { class: "muted", text: "never" });
    return el("time", {
      datetime: new Date(unix * 1000).toISOString(),
      title: absolute(unix),
      text: ago(unix),
    });
  }

  function debounce(fn, ms) {
    let timer = null;
    return function (...args) {
      clearTimeout(timer);
      timer = setTimeout(() => fn.apply(this, args), ms);
    };
  }

  // An ARN (or any path-like token) as unwrappable parts with a <wbr> after each ':' and '/',
  // so it wraps between its parts, never inside an account id, a name (at a '-') or a region.
  function breakable(text) {
    const parts = String(text === null || text === undefined ? "" : text).split(/(?<=[:/])/);
    return parts.flatMap((part, i) => {
      const span = el("span", { class: "part", text: part });
      return i ? [document.createElement("wbr"), span] : [span];
    });
  }

  function resourceHref(arn) {
    return "/resource/" + encodeURIComponent(arn);
  }

  // The registry's kinds (GET /api/v1/kinds), embedded in every page by the server.
  const KINDS = (function () {
    try {
      return JSON.parse(document.body.dataset.kinds || "[]");
    } catch (e) {
      return [];
    }
  })();
  const KIND_LABELS = Object.fromEntries(KINDS.map((k) => [k.kind, k.label]));

  function kindLabel(kind) {
    return KIND_LABELS[kind] || kind || "";
  }

  function kindBadge(kind) {
    return el("span", { class: "badge badge-kind", dataset: { kind: kind || "" }, text: kindLabel(kind) });
  }

  // Pretty JSON in a <pre>, set through textContent.
  function jsonBlock(value) {
    return el("pre", { class: "json", text: JSON.stringify(value, null, 2) });
  }

  window.Inventory = {
    ApiError,
    api,
    flash,
    showError,
    el,
    append,
    clear,
    duration,
    ago,
    absolute,
    timeAgo,
    debounce,
    resourceHref,
    breakable,
    kindLabel,
    kinds: KINDS,
    kindBadge,
    jsonBlock,
  };
})();
