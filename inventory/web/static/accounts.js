// Accounts and how fresh each kind's cached data is; stale cells get the "stale" class, kinds
// not enabled in an account (beat entry disabled, no AWS Config recorder) say so.
"use strict";

(function () {
  const I = window.Inventory;
  const { api, el, clear, showError, kindLabel } = I;

  // Columns in the registry's order; kinds the page does not know go last.
  const ORDER = I.kinds.map((k) => k.kind);

  function byOrder(a, b) {
    const ia = ORDER.indexOf(a) < 0 ? ORDER.length : ORDER.indexOf(a);
    const ib = ORDER.indexOf(b) < 0 ? ORDER.length : ORDER.indexOf(b);
    return ia - ib || a.localeCompare(b);
  }

  function ageCell(kind, info) {
    if (info && info.enabled === false) {
      return el("td", {
        class: "age not-enabled",
        dataset: { kind },
        title: "not enabled: not scheduled, or the service is not set up in this account",
        text: "not enabled",
      });
    }
    if (!info || info.age === null || info.age === undefined) {
      const stale = Boolean(info && info.stale);
      return el("td", {
        class: "age missing" + (stale ? " stale" : ""),
        dataset: { kind },
        title: stale ? "stale: never synced" : "never synced (not scheduled)",
        text: "never",
      });
    }
    const label = I.duration(info.age);
    return el("td", {
      class: "age" + (info.stale ? " stale" : ""),
      dataset: { kind },
      title: (info.stale ? "stale: " : "") + "synced " + label + " ago",
      text: label,
    });
  }

  async function load() {
    let body;
    try {
      body = await api("/api/v1/accounts/freshness");
    } catch (err) {
      document.getElementById("total").textContent = "";
      showError(err);
      return;
    }
    const accounts = body.accounts;
    const kinds = [...new Set(accounts.flatMap((a) => Object.keys(a.kinds || {})))].sort(byOrder);
    const head = clear(document.getElementById("accounts-head"));
    I.append(head, [
      el("th", { text: "Account" }),
      el("th", { text: "Status" }),
      kinds.map((k) => el("th", { dataset: { kind: k }, text: kindLabel(k) })),
    ]);
    const rows = clear(document.getElementById("rows"));
    for (const a of accounts) {
      const stale = kinds.some((k) => a.kinds && a.kinds[k] && a.kinds[k].stale);
      rows.appendChild(
        el(
          "tr",
          { dataset: { account: a.id }, class: stale ? "has-stale" : null },
          el("td", {}, el("div", { class: "account-name", text: a.name || "" }), el("div", { class: "muted small mono", text: a.id })),
          el("td", {}, el("span", { class: "badge badge-status", dataset: { status: (a.status || "").toLowerCase() }, text: a.status || "unknown" })),
          kinds.map((k) => ageCell(k, (a.kinds || {})[k]))
        )
      );
    }
    const staleCount = accounts.filter((a) => kinds.some((k) => a.kinds && a.kinds[k] && a.kinds[k].stale)).length;
    document.getElementById("total").textContent =
      accounts.length + (accounts.length === 1 ? " account" : " accounts") +
      (staleCount ? ", " + staleCount + " with stale data" : ", all fresh");
  }

  document.addEventListener("DOMContentLoaded", load);
})();
