// The policies table: search, filters from the facets API, sortable columns and a pager.
// The state lives in the URL so a filtered, sorted page can be bookmarked or shared.
"use strict";

(function () {
  const I = window.Inventory;
  const { api, el, clear, showError, flash, debounce, resourceHref, kindBadge, kindLabel, timeAgo } = I;
  const DEFAULT_LIMIT = 50;
  const MAX_LIMIT = 500;
  const FILTERS = ["q", "account", "kind", "region", "has_errors", "severity"];
  const DEFAULT_ORDER = { errors: "desc", last_updated: "desc", findings: "desc" };

  const state = { q: "", account: "", kind: "", region: "", has_errors: "", severity: "", sort: "name", order: "asc", offset: 0, limit: DEFAULT_LIMIT };
  let generation = 0;
  let accountNames = {};

  function readUrl() {
    const params = new URLSearchParams(window.location.search);
    for (const key of [...FILTERS, "sort", "order"]) {
      if (params.has(key)) state[key] = params.get(key);
    }
    state.offset = Math.max(0, parseInt(params.get("offset") || "0", 10) || 0);
    const limit = parseInt(params.get("limit") || "", 10);
    if (limit >= 1 && limit <= MAX_LIMIT) state.limit = limit;
  }

  function query(extra) {
    const params = new URLSearchParams();
    for (const key of FILTERS) if (state[key]) params.set(key, state[key]);
    if (state.sort !== "name") params.set("sort", state.sort);
    if (state.order !== "asc") params.set("order", state.order);
    if (state.offset) params.set("offset", String(state.offset));
    if (state.limit !== DEFAULT_LIMIT) params.set("limit", String(state.limit));
    for (const [k, v] of Object.entries(extra || {})) params.set(k, v);
    return params.toString();
  }

  function writeUrl() {
    const qs = query();
    history.replaceState(null, "", window.location.pathname + (qs ? "?" + qs : ""));
  }

  function option(value, label, selected) {
    return el("option", { value, selected: value === selected, text: label });
  }

  async function loadFacets() {
    const [facets, accounts] = await Promise.all([
      api("/api/v1/policies/facets"),
      api("/api/v1/accounts").catch(() => ({ accounts: [] })),
    ]);
    accountNames = Object.fromEntries((accounts.accounts || []).map((a) => [a.id, a.name]));
    const fill = (id, values, label) => {
      const select = document.getElementById(id);
      for (const v of values || []) select.appendChild(option(v, label(v), state[id]));
    };
    fill("account", facets.account_id, (id) => (accountNames[id] ? accountNames[id] + " (" + id + ")" : id));
    fill("kind", facets.kind, kindLabel);
    fill("region", facets.region, (r) => r);
  }

  function renderHeaders() {
    for (const th of document.querySelectorAll("#policies th[data-sort]")) {
      const active = th.dataset.sort === state.sort;
      th.classList.toggle("sorted", active);
      if (active) th.setAttribute("aria-sort", state.order === "desc" ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
  }

  // What a free-text search found in a row whose name and ARN do not show it: the tag.
  function matchNote(m) {
    if (!m || m.field !== "tag") return null;
    return el(
      "div",
      { class: "match", dataset: { field: m.field } },
      el("span", { class: "muted", text: "tag " }),
      el("span", { class: "mono match-key", text: m.key }),
      " = ",
      el("mark", { class: "mono match-value", text: m.value })
    );
  }

  function row(r) {
    const account = r.account_name || accountNames[r.account_id] || "";
    return el(
      "tr",
      { dataset: { arn: r.arn } },
      el(
        "td",
        { class: "cell-name" },
        r.link
          ? el("a", { href: r.link, class: "name-link external", target: "_blank", rel: "noopener noreferrer", title: "history in the AWS Config console", text: r.name })
          : el("a", { href: resourceHref(r.arn), class: "name-link", text: r.name }),
        el("div", { class: "arn" }, I.breakable(r.arn)),
        matchNote(r.matched)
      ),
      el("td", {}, kindBadge(r.kind)),
      el(
        "td",
        {},
        account ? el("div", { text: account }) : null,
        el("div", { class: "muted small", text: r.account_id || "" })
      ),
      el("td", { text: r.region || "" }),
      el("td", { text: r.owner || "" }),
      el(
        "td",
        { class: "num" },
        r.errors ? el("span", { class: "badge badge-error", text: String(r.errors) }) : el("span", { class: "muted", text: "0" })
      ),
      el(
        "td",
        { class: "num cell-findings" },
        r.findings
          ? el("span", { class: "badge badge-severity", dataset: { severity: r.severity || "" }, title: r.severity || "", text: String(r.findings) })
          : el("span", { class: "muted", text: "0" })
      ),
      el("td", {}, timeAgo(r.last_updated))
    );
  }

  // The rows are stale until a query's answer replaces them (assistive technology waits).
  function busy(flag) {
    document.getElementById("policies").setAttribute("aria-busy", String(flag));
  }

  async function load() {
    const mine = ++generation;
    busy(true);
    writeUrl();
    renderHeaders();
    let page;
    try {
      page = await api("/api/v1/policies?" + query({ limit: String(state.limit) }));
    } catch (err) {
      if (mine === generation) {
        showError(err);
        busy(false);
      }
      return;
    }
    if (mine !== generation) return; // a newer query is on its way
    flash("");
    const body = clear(document.getElementById("rows"));
    for (const r of page.rows) body.appendChild(row(r));
    if (!page.rows.length) {
      body.appendChild(el("tr", { class: "empty" }, el("td", { colspan: "8", text: "No resources match." })));
    }
    const total = page.total;
    document.getElementById("total").textContent = total + (total === 1 ? " resource" : " resources");
    const first = total ? page.offset + 1 : 0;
    const last = page.offset + page.rows.length;
    document.getElementById("range").textContent = total ? "showing " + first + "–" + last : "";
    const pages = Math.max(1, Math.ceil(total / page.limit));
    document.getElementById("page").textContent = "Page " + (Math.floor(page.offset / page.limit) + 1) + " of " + pages;
    document.getElementById("prev").disabled = page.offset <= 0;
    document.getElementById("next").disabled = last >= total;
    busy(false);
  }

  function onFilter(event) {
    const target = event.target;
    if (!FILTERS.includes(target.name) || state[target.name] === target.value.trim()) return;
    state[target.name] = target.value.trim();
    state.offset = 0;
    load();
  }

  function init() {
    readUrl();
    const q = document.getElementById("q");
    q.value = state.q;
    document.getElementById("has_errors").value = state.has_errors;
    document.getElementById("severity").value = state.severity;
    const limit = document.getElementById("limit");
    if (![...limit.options].some((o) => o.value === String(state.limit))) {
      limit.appendChild(el("option", { value: String(state.limit), text: String(state.limit) }));
    }
    limit.value = String(state.limit);
    limit.addEventListener("change", () => {
      state.limit = parseInt(limit.value, 10);
      state.offset = 0;
      load();
    });
    const form = document.getElementById("filters");
    form.addEventListener("submit", (e) => e.preventDefault());
    form.addEventListener("change", onFilter);
    q.addEventListener("input", debounce(onFilter, 250));
    for (const th of document.querySelectorAll("#policies th[data-sort]")) {
      th.querySelector("button").addEventListener("click", () => {
        const column = th.dataset.sort;
        if (state.sort === column) state.order = state.order === "asc" ? "desc" : "asc";
        else {
          state.sort = column;
          state.order = DEFAULT_ORDER[column] || "asc";
        }
        state.offset = 0;
        load();
      });
    }
    document.getElementById("prev").addEventListener("click", () => {
      state.offset = Math.max(0, state.offset - state.limit);
      load();
    });
    document.getElementById("next").addEventListener("click", () => {
      state.offset += state.limit;
      load();
    });
    loadFacets().catch(showError);
    load();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
