// One resource: facts, tags, who may use it, CloudTrail errors and every policy as pretty JSON.
"use strict";

(function () {
  const I = window.Inventory;
  const { api, el, clear, showError, flash, timeAgo, jsonBlock, resourceHref } = I;
  const POLL_MS = 2000;
  const POLL_GIVE_UP_MS = 5 * 60 * 1000;
  // Fields shown in their own sections, not in "Details".
  const SHOWN = new Set([
    "arn", "kind", "name", "account_id", "region", "tags", "trust_policy", "policy", "document",
    "inline_policies", "attached_policies", "permissions_boundary",
  ]);

  let arn = "";
  let refreshedAt = null;

  function factsRow(id, ...content) {
    I.append(clear(document.getElementById(id)), content);
  }

  function renderTags(tags) {
    const box = clear(document.getElementById("tags"));
    const entries = Object.entries(tags || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!entries.length) {
      box.appendChild(el("p", { class: "muted", text: "No tags." }));
      return;
    }
    box.appendChild(
      el(
        "table",
        { class: "table table-compact", id: "tags-table" },
        el("thead", {}, el("tr", {}, el("th", { text: "Key" }), el("th", { text: "Value" }))),
        el(
          "tbody",
          {},
          entries.map(([k, v]) => el("tr", {}, el("td", { class: "mono token", text: k }), el("td", { text: String(v) })))
        )
      )
    );
  }

  function renderPrincipals(kind, principals) {
    const panel = document.getElementById("principals-panel");
    panel.hidden = kind !== "iam_role";
    const list = clear(document.getElementById("principals"));
    for (const p of principals || []) list.appendChild(el("li", { class: "chip", text: p }));
    if (!(principals || []).length) {
      list.appendChild(el("li", { class: "muted", text: "No group or user is mapped to this role." }));
    }
  }

  function detailValue(value) {
    if (value === null || value === undefined || value === "") return el("span", { class: "muted", text: "—" });
    if (Array.isArray(value) && value.every((v) => typeof v !== "object")) {
      return value.length ? el("ul", { class: "plain" }, value.map((v) => el("li", { class: "mono arn-cell" }, I.breakable(String(v))))) : el("span", { class: "muted", text: "none" });
    }
    if (typeof value === "object") return jsonBlock(value);
    const text = String(value);
    // A timestamp or an id is one token: never wrapped inside; an ARN wraps at ':' and '/'.
    if (text.startsWith("arn:")) return el("span", { class: "mono arn-cell" }, I.breakable(text));
    return el("span", { class: /\s/.test(text) ? null : "token", text });
  }

  function renderDetails(record) {
    const list = clear(document.getElementById("details"));
    const keys = Object.keys(record).filter((k) => !SHOWN.has(k)).sort();
    for (const key of keys) {
      list.appendChild(el("div", {}, el("dt", { text: key.replace(/_/g, " ") }), el("dd", {}, detailValue(record[key]))));
    }
    document.getElementById("details-panel").hidden = !keys.length;
  }

  function countTable(title, counts) {
    const entries = Object.entries(counts || {}).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    return el(
      "table",
      { class: "table table-compact" },
      el("thead", {}, el("tr", {}, el("th", { text: title }), el("th", { class: "num", text: "Count" }))),
      el("tbody", {}, entries.map(([k, n]) => el("tr", {}, el("td", { class: "mono arn-cell" }, I.breakable(k)), el("td", { class: "num", text: String(n) }))))
    );
  }

  function renderErrors(errors) {
    const box = clear(document.getElementById("errors"));
    if (!errors || !errors.count) {
      box.appendChild(el("p", { class: "muted", text: "No CloudTrail errors recorded for this principal." }));
      return;
    }
    box.appendChild(
      el(
        "p",
        { class: "errors-summary" },
        el("span", { class: "badge badge-error", text: errors.count + (errors.count === 1 ? " error" : " errors") }),
        " first seen ",
        timeAgo(errors.first_seen),
        ", last seen ",
        timeAgo(errors.last_seen)
      )
    );
    box.appendChild(
      el(
        "div",
        { class: "grid grid-3", id: "errors-tables" },
        countTable("Error code", errors.error_codes),
        countTable("Action", errors.actions),
        countTable("Resource", errors.resources)
      )
    );
  }

  function policyBlock(title, subtitle, document, note) {
    return el(
      "details",
      { class: "policy", open: true },
      el(
        "summary",
        {},
        el("span", { class: "policy-title", text: title }),
        subtitle ? el("span", { class: "policy-sub" }, subtitle) : null
      ),
      document === null || document === undefined
        ? el("p", { class: "muted", text: note || "Document not cached." })
        : jsonBlock(document)
    );
  }

  function arnLink(target) {
    return el("a", { href: resourceHref(target), class: "mono arn-cell" }, I.breakable(target));
  }

  function renderPolicies(data) {
    const record = data.record;
    const box = clear(document.getElementById("policies"));
    const blocks = [];
    if (record.trust_policy) blocks.push(policyBlock("Trust policy", null, record.trust_policy));
    if ("policy" in record) {
      blocks.push(policyBlock("Resource policy", null, record.policy, "This resource has no policy."));
    }
    if (record.document) blocks.push(policyBlock("Policy document", null, record.document));
    for (const [name, doc] of Object.entries(record.inline_policies || {})) {
      blocks.push(policyBlock("Inline policy: " + name, null, doc));
    }
    const documents = data.attached_documents || {};
    for (const p of record.attached_policies || []) {
      blocks.push(policyBlock("Attached policy: " + p.name, arnLink(p.arn), documents[p.arn]));
    }
    const boundary = record.permissions_boundary;
    if (boundary) {
      blocks.push(
        el(
          "div",
          { class: "policy policy-boundary" },
          el("span", { class: "policy-title", text: "Permissions boundary " }),
          arnLink(boundary.arn)
        )
      );
    }
    if (!blocks.length) blocks.push(el("p", { class: "muted", text: "No policies." }));
    I.append(box, blocks);
  }

  function renderRefreshed() {
    const dd = clear(document.getElementById("refreshed"));
    dd.appendChild(timeAgo(refreshedAt));
  }

  function render(data) {
    const record = data.record;
    document.getElementById("name").textContent = record.name || arn;
    document.title = (record.name || arn) + " · AWS inventory";
    factsRow("kind", I.kindBadge(data.kind));
    factsRow(
      "account",
      data.account_name ? data.account_name + " " : "",
      el("span", { class: "muted", text: data.account_id || "" })
    );
    factsRow("region", data.region || "");
    refreshedAt = data.refreshed_at;
    renderRefreshed();
    renderTags(record.tags);
    renderPrincipals(data.kind, data.principals);
    renderDetails(record);
    renderErrors(data.cloudtrail_errors);
    renderPolicies(data);
    document.getElementById("loading").hidden = true;
    document.getElementById("content").hidden = false;
  }

  // Not (or no longer) cached: a page fact, not an error. A deletion the history recorded
  // is shown by the server above (when and by whom); the sections about the live resource go.
  function notCached() {
    const loading = document.getElementById("loading");
    loading.hidden = "gone" in loading.dataset;
    loading.textContent = "This resource is not in the cache.";
    document.getElementById("refresh").disabled = true;
    for (const id of ["findings-panel", "access-panel", "can-panel"]) document.getElementById(id).hidden = true;
  }

  async function load() {
    try {
      render(await api("/api/v1/resource/details?arn=" + encodeURIComponent(arn)));
    } catch (err) {
      if (err.status === 404) {
        notCached();
        return;
      }
      document.getElementById("loading").textContent = "Could not load it.";
      showError(err);
    }
  }

  function setStatus(...content) {
    I.append(clear(document.getElementById("refresh-status")), content);
  }

  async function refreshNow() {
    const button = document.getElementById("refresh");
    button.disabled = true;
    let requested;
    try {
      requested = await api("/api/v1/refresh?arn=" + encodeURIComponent(arn), { method: "POST" });
    } catch (err) {
      button.disabled = false;
      setStatus("");
      showError(err);
      return;
    }
    flash("");
    setStatus(el("span", { class: "spinner", "aria-hidden": "true" }), "Refresh requested…");
    const since = requested.requested_at;
    const started = Date.now();
    const poll = async () => {
      let status;
      try {
        status = await api("/api/v1/refresh/status?" + new URLSearchParams({ arn, since: String(since) }));
      } catch (err) {
        showError(err);
        button.disabled = false;
        return;
      }
      if (status.refreshed) {
        setStatus(
          "Refreshed at ",
          el("time", { title: I.absolute(status.refreshed_at), text: new Date(status.refreshed_at * 1000).toLocaleTimeString() })
        );
        button.disabled = false;
        load();
        return;
      }
      if (Date.now() - started > POLL_GIVE_UP_MS) {
        setStatus("Still waiting for the worker; the page will show the new data once it lands.");
        button.disabled = false;
        return;
      }
      setTimeout(poll, POLL_MS);
    };
    setTimeout(poll, POLL_MS);
  }

  function init() {
    arn = document.getElementById("resource").dataset.arn;
    document.getElementById("refresh").addEventListener("click", refreshNow);
    setInterval(() => refreshedAt !== null && renderRefreshed(), 30000);
    load();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
