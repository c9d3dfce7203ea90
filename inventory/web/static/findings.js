// The resource page's findings, "who can do this?" and (roles, users) "what can it do?".
// Every value is set as text through Inventory.el: cached names and policies are never HTML.
"use strict";

(function () {
  const I = window.Inventory;
  const { api, el, clear, showError, resourceHref } = I;
  // The question asked first on each kind of resource page (the resource pattern it covers).
  const DEFAULTS = [
    [/^arn:aws:s3:::[^/]+$/, "s3:GetObject", (arn) => arn + "/*"],
    [/^arn:aws:sqs:/, "sqs:SendMessage", (arn) => arn],
    [/^arn:aws:sns:/, "sns:Publish", (arn) => arn],
    [/^arn:aws:kms:/, "kms:Decrypt", (arn) => arn],
    [/^arn:aws:lambda:/, "lambda:InvokeFunction", (arn) => arn],
    [/^arn:aws:secretsmanager:/, "secretsmanager:GetSecretValue", (arn) => arn],
    [/^arn:aws:ecr:/, "ecr:BatchGetImage", (arn) => arn],
    [/^arn:aws:iam::\d{12}:role\//, "sts:AssumeRole", (arn) => arn],
  ];

  function severityBadge(severity) {
    return el("span", { class: "badge badge-severity", dataset: { severity }, text: severity });
  }

  function detailText(detail) {
    if (detail === null || detail === undefined) return "";
    if (typeof detail === "string") return detail;
    if (detail.actions) {
      const more = detail.count > detail.actions.length ? " … (" + detail.count + " in all)" : "";
      return detail.actions.join(", ") + more;
    }
    if (detail.methods) {
      const more = detail.count > detail.methods.length ? " … (" + detail.count + " in all)" : "";
      return detail.methods.map((m) => m.type + " (" + m.actions.join(", ") + ")").join("; ") + more;
    }
    return JSON.stringify(detail);
  }

  function renderFindings(page) {
    const box = clear(document.getElementById("findings"));
    if (!page.findings.length) {
      box.appendChild(el("p", { class: "muted", id: "findings-empty", text: "No findings." }));
      return;
    }
    const rows = page.findings.map((f) =>
      el(
        "tr",
        { dataset: { finding: f.id, category: f.category } },
        el("td", {}, severityBadge(f.severity)),
        el("td", { text: f.title }),
        el("td", { class: "mono", text: f.source }),
        el("td", {}, el("p", { class: "finding-detail mono", text: detailText(f.detail) }))
      )
    );
    box.appendChild(
      el(
        "table",
        { class: "table table-compact", id: "findings-table" },
        el(
          "thead",
          {},
          el("tr", {}, ["Severity", "Finding", "Policy", "Detail"].map((h) => el("th", { text: h })))
        ),
        el("tbody", {}, rows)
      )
    );
  }

  async function loadFindings(arn) {
    try {
      renderFindings(await api("/api/v1/findings?" + new URLSearchParams({ arn, limit: "500" })));
    } catch (err) {
      clear(document.getElementById("findings")).appendChild(
        el("p", { class: "muted", text: "Findings could not be loaded." })
      );
      showError(err);
    }
  }

  function decisionBadge(decision) {
    return el("span", { class: "badge badge-decision", dataset: { decision }, text: decision });
  }

  function renderAccess(answer) {
    const box = clear(document.getElementById("access-answer"));
    box.appendChild(
      el(
        "p",
        { id: "access-summary" },
        answer.allowed + " allowed, " + answer.conditional + " conditional, of " +
          answer.principals_indexed + " principals in the organisation"
      )
    );
    if (answer.principals.length) {
      box.appendChild(
        el(
          "table",
          { class: "table table-compact", id: "access-table" },
          el("thead", {}, el("tr", {}, ["Principal", "Account", "Decision", "Why"].map((h) => el("th", { text: h })))),
          el(
            "tbody",
            {},
            answer.principals.map((p) =>
              el(
                "tr",
                { dataset: { arn: p.arn } },
                el("td", {}, el("a", { href: resourceHref(p.arn), class: "mono", text: p.name })),
                el("td", { class: "mono", text: p.account_id }),
                el("td", {}, decisionBadge(p.decision)),
                el("td", { text: p.reasons.join("; ") })
              )
            )
          )
        )
      );
    }
    for (const g of answer.other_grants) {
      box.appendChild(el("p", { class: "muted other-grant", text: "Also granted by the resource policy to " + g.principal + " (" + g.type + ", " + g.level + ")" }));
    }
  }

  async function ask(event) {
    if (event) event.preventDefault();
    const action = document.getElementById("access-action").value.trim();
    const resource = document.getElementById("access-resource").value.trim();
    if (!action || !resource) return;
    try {
      renderAccess(await api("/api/v1/access?" + new URLSearchParams({ action, resource })));
    } catch (err) {
      clear(document.getElementById("access-answer")).appendChild(el("p", { class: "muted", text: err.message }));
    }
  }

  function renderCan(answer) {
    const box = clear(document.getElementById("can-answer"));
    if (!answer.actions.length) {
      box.appendChild(el("p", { class: "muted", id: "can-empty", text: "Nothing on " + answer.service + "." }));
      return;
    }
    box.appendChild(
      el(
        "table",
        { class: "table table-compact", id: "can-table" },
        el("thead", {}, el("tr", {}, ["Action", "Level", "Resources", "Denied on"].map((h) => el("th", { text: h })))),
        el(
          "tbody",
          {},
          answer.actions.map((a) =>
            el(
              "tr",
              { dataset: { action: a.action } },
              el("td", { class: "mono", text: a.action + (a.conditional ? " (conditional)" : "") }),
              el("td", { text: a.access_level || "" }),
              el("td", { class: "mono", text: a.resources.join(", ") }),
              el("td", { class: "mono", text: a.denied.join(", ") })
            )
          )
        )
      )
    );
  }

  async function can(arn, event) {
    if (event) event.preventDefault();
    const service = document.getElementById("can-service").value.trim();
    if (!service) return;
    try {
      renderCan(await api("/api/v1/access/principal?" + new URLSearchParams({ arn, service })));
    } catch (err) {
      clear(document.getElementById("can-answer")).appendChild(el("p", { class: "muted", text: err.message }));
    }
  }

  async function fillActions(service) {
    if (!service) return;
    try {
      const found = await api("/api/v1/access/actions?" + new URLSearchParams({ service }));
      I.append(clear(document.getElementById("access-actions")), found.actions.map((a) => el("option", { value: a })));
    } catch (err) {
      // Not every ARN names a service AWS defines actions for: leave the list empty.
    }
  }

  function init() {
    const arn = document.getElementById("resource").dataset.arn;
    loadFindings(arn);
    const form = document.getElementById("access-form");
    form.addEventListener("submit", ask);
    const found = DEFAULTS.find(([pattern]) => pattern.test(arn));
    document.getElementById("access-resource").value = found ? found[2](arn) : arn;
    const service = arn.split(":")[2] === "iam" && found ? "sts" : arn.split(":")[2];
    fillActions(service);
    if (found) {
      document.getElementById("access-action").value = found[1];
      ask();
    }
    if (/^arn:aws:iam::\d{12}:(role|user)\//.test(arn)) {
      document.getElementById("can-panel").hidden = false;
      document.getElementById("can-form").addEventListener("submit", (e) => can(arn, e));
      can(arn);
    }
  }

  document.addEventListener("DOMContentLoaded", init);
})();
