// Policy requests: the list (with a status filter), the new-request form with an ARN typeahead,
// and approve/reject for admins (the API decides who may; the buttons only save a click).
"use strict";

(function () {
  const I = window.Inventory;
  const { api, el, clear, showError, flash, timeAgo, debounce, resourceHref, jsonBlock } = I;
  const TEMPLATE = {
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::example-bucket/*"] }],
  };
  let isAdmin = false;
  let me = "";

  // --- the list ---------------------------------------------------------------------------
  function statusBadge(status) {
    return el("span", { class: "badge badge-status", dataset: { status }, text: status });
  }

  // Admins approve or reject, but nobody approves their own request (the API refuses it too);
  // the requester may cancel their own pending request.
  function reviewControls(request) {
    const actions = [];
    const own = request.requester.toLowerCase() === me.toLowerCase();
    if (isAdmin && !own) actions.push(["approve", "Approve", "button-approve"]);
    if (isAdmin) actions.push(["reject", "Reject", "button-reject"]);
    if (request.requester === me) actions.push(["cancel", "Cancel request", ""]);
    if (!actions.length) return null;
    const comment = el("input", {
      type: "text",
      class: "review-comment",
      placeholder: "Comment (optional)",
      "aria-label": "Review comment",
    });
    const act = (action) => async (event) => {
      const buttons = event.target.parentElement.querySelectorAll("button");
      buttons.forEach((b) => (b.disabled = true));
      try {
        const body = comment.value.trim() ? { comment: comment.value.trim() } : {};
        await api("/api/v1/requests/" + encodeURIComponent(request.id) + "/" + action, { method: "POST", json: body });
        flash("");
        await loadRequests();
      } catch (err) {
        buttons.forEach((b) => (b.disabled = false));
        showError(err);
      }
    };
    return el(
      "div",
      { class: "review" },
      comment,
      actions.map(([action, label, style]) =>
        el("button", { type: "button", class: "button " + style, onclick: act(action), text: label })
      )
    );
  }

  function requestItem(r) {
    const review = r.reviewer
      ? el(
          "p",
          { class: "review-note" },
          el("span", { class: "muted", text: r.status + " by " }),
          r.reviewer,
          r.review_comment ? el("span", { class: "muted", text: ": " }) : null,
          r.review_comment || null
        )
      : null;
    return el(
      "li",
      { class: "request", dataset: { id: r.id, status: r.status } },
      el(
        "div",
        { class: "request-head" },
        statusBadge(r.status),
        el("a", { href: resourceHref(r.resource_arn), class: "request-arn mono" }, I.breakable(r.resource_arn))
      ),
      el(
        "p",
        { class: "request-meta muted" },
        "by ",
        el("strong", { text: r.requester }),
        " · ",
        timeAgo(r.created_at),
        " · account ",
        r.account_id || ""
      ),
      el("p", { class: "justification", text: r.justification }),
      el("details", { class: "policy" }, el("summary", { text: "Policy document" }), jsonBlock(r.policy_document)),
      review,
      r.status === "pending" ? reviewControls(r) : null
    );
  }

  async function loadRequests() {
    const status = document.getElementById("status").value;
    const params = new URLSearchParams({ limit: "100" });
    if (status) params.set("status", status);
    let body;
    try {
      body = await api("/api/v1/requests?" + params);
    } catch (err) {
      showError(err);
      return;
    }
    const list = clear(document.getElementById("requests"));
    for (const r of body.requests) list.appendChild(requestItem(r));
    document.getElementById("requests-empty").hidden = body.requests.length > 0;
  }

  // --- the form ---------------------------------------------------------------------------
  function formMessage(id, text) {
    const box = document.getElementById(id);
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function submit(event) {
    event.preventDefault();
    formMessage("form-error", "");
    formMessage("form-ok", "");
    const arn = document.getElementById("req-arn").value.trim();
    const justification = document.getElementById("req-justification").value.trim();
    const raw = document.getElementById("req-policy").value;
    if (!arn.startsWith("arn:")) {
      formMessage("form-error", "Choose the resource: its ARN starts with arn:.");
      return;
    }
    if (!justification) {
      formMessage("form-error", "Say why the change is needed.");
      return;
    }
    let policy;
    try {
      policy = JSON.parse(raw);
    } catch (err) {
      formMessage("form-error", "The policy document is not valid JSON: " + err.message);
      return;
    }
    if (policy === null || typeof policy !== "object" || Array.isArray(policy)) {
      formMessage("form-error", "The policy document must be a JSON object.");
      return;
    }
    const button = document.getElementById("req-submit");
    button.disabled = true;
    try {
      const created = await api("/api/v1/requests", {
        method: "POST",
        json: { arn, justification, policy_document: policy },
      });
      formMessage("form-ok", "Request submitted (" + created.id + ").");
      document.getElementById("req-justification").value = "";
      document.getElementById("status").value = "";
      await loadRequests();
    } catch (err) {
      formMessage("form-error", err.message);
    } finally {
      button.disabled = false;
    }
  }

  // --- the ARN typeahead ------------------------------------------------------------------
  function typeahead(input, listbox) {
    let active = -1;
    let generation = 0;

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      active = -1;
    }

    function choose(arn) {
      input.value = arn;
      close();
    }

    function highlight(index) {
      const options = listbox.querySelectorAll("[role=option]");
      active = Math.max(-1, Math.min(index, options.length - 1));
      options.forEach((o, i) => o.setAttribute("aria-selected", String(i === active)));
      if (active >= 0) options[active].scrollIntoView({ block: "nearest" });
    }

    const lookup = debounce(async () => {
      const q = input.value.trim();
      const mine = ++generation;
      if (q.length < 2) {
        close();
        return;
      }
      let body;
      try {
        body = await api("/api/v1/typeahead/resources?" + new URLSearchParams({ q, limit: "10" }));
      } catch (err) {
        close();
        return;
      }
      if (mine !== generation) return;
      clear(listbox);
      for (const r of body.results) {
        listbox.appendChild(
          el(
            "li",
            {
              role: "option",
              dataset: { arn: r.arn },
              onmousedown: (e) => {
                e.preventDefault();
                choose(r.arn);
              },
            },
            el("span", { class: "option-name", text: r.name }),
            I.kindBadge(r.kind),
            el("span", { class: "option-arn mono" }, I.breakable(r.arn))
          )
        );
      }
      listbox.hidden = body.results.length === 0;
      input.setAttribute("aria-expanded", String(!listbox.hidden));
      active = -1;
    }, 200);

    input.addEventListener("input", lookup);
    input.addEventListener("blur", close);
    input.addEventListener("keydown", (e) => {
      if (listbox.hidden) return;
      const options = listbox.querySelectorAll("[role=option]");
      if (e.key === "ArrowDown") highlight(active + 1);
      else if (e.key === "ArrowUp") highlight(active - 1);
      else if (e.key === "Enter" && active >= 0) choose(options[active].dataset.arn);
      else if (e.key === "Escape") close();
      else return;
      e.preventDefault();
    });
  }

  function init() {
    const root = document.getElementById("requests-page");
    isAdmin = root.dataset.admin === "true";
    me = root.dataset.identity || "";
    const params = new URLSearchParams(window.location.search);
    document.getElementById("req-arn").value = params.get("arn") || "";
    document.getElementById("req-policy").value = JSON.stringify(TEMPLATE, null, 2);
    document.getElementById("new-request").addEventListener("submit", submit);
    document.getElementById("status").addEventListener("change", loadRequests);
    typeahead(document.getElementById("req-arn"), document.getElementById("req-arn-options"));
    loadRequests();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
