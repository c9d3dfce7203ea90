"""Risk findings for one policy document, one principal, one resource or trust policy (pure).

Identity documents go through Cloudsplaining's ``PolicyDocument``, the class its
``AuthorizationDetails`` runs on every inline and managed policy of a
GetAccountAuthorizationDetails listing: privilege escalation, data exfiltration, resource
exposure, credentials exposure, infrastructure modification. Full admin is an unconditional
Allow of ``*`` on ``*``. Every document also goes through Parliament (grammar). A principal's
findings are its documents' findings plus the escalation methods its documents only complete
together (Cloudsplaining's own method table, applied to the union of their unrestricted
actions). Resource and trust policies are checked for public access and for principals outside
the organisation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import Any

from inventory.analysis import libraries
from inventory.analysis.policy import Statement, action_matches, statements

SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}
#: Category -> severity (Cloudsplaining's own ratings where it has one).
CATEGORIES: dict[str, str] = {
    "full_admin": "critical",
    "privilege_escalation": "high",
    "resource_exposure": "high",
    "credentials_exposure": "high",
    "data_exfiltration": "medium",
    "infrastructure_modification": "low",
    "public_access": "critical",
    "outside_organisation": "medium",
    "policy_grammar": "low",  # each finding carries Parliament's own severity
}
TITLES = {
    "full_admin": "Full administrator: Allow * on * without a condition",
    "privilege_escalation": "Privilege escalation",
    "resource_exposure": "Resource exposure (permissions management without constraints)",
    "credentials_exposure": "Credentials exposure",
    "data_exfiltration": "Data exfiltration",
    "infrastructure_modification": "Infrastructure modification without resource constraints",
    "public_access": "Public access: any principal, no limiting condition",
    "outside_organisation": "Principal outside the organisation",
    "policy_grammar": "Policy grammar",
}
#: Actions listed in a finding; the rest are counted (an admin policy modifies ~10,000).
MAX_LISTED = 25
#: Condition keys that limit "*" to known callers, networks or sources.
LIMITING_KEYS = frozenset(
    {
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalservicename",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:sourceip",
        "aws:userid",
        "aws:username",
        "sts:externalid",
    }
)
_ACCOUNT_IN_ARN = re.compile(r"^arn:aws[\w-]*:(?:iam|sts)::(\d{12}):")


@lru_cache(maxsize=1)
def analyser_version() -> str:
    """Part of every content key: new library versions (new rules) re-analyse everything."""
    return f"3|cloudsplaining {version('cloudsplaining')}|parliament {version('parliament')}"


def finding(
    category: str,
    source: str,
    detail: Any,
    key: str = "",
    severity: str | None = None,
    title: str | None = None,
) -> dict[str, Any]:
    """One finding: where it comes from (a policy), what it is and how bad."""
    return {
        "id": f"{category}:{source}" + (f":{key}" if key else ""),
        "category": category,
        "severity": severity or CATEGORIES[category],
        "title": title or TITLES[category],
        "source": source,
        "detail": detail,
    }


def _methods(methods: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ordered = sorted(methods, key=lambda m: m["type"])
    return {"methods": ordered[:MAX_LISTED], "count": len(ordered)}


def _listed(actions: Iterable[str]) -> dict[str, Any]:
    ordered = sorted(set(actions))
    return {"actions": ordered[:MAX_LISTED], "count": len(ordered)}


@lru_cache(maxsize=1)
def _escalation_universe() -> frozenset[str]:
    libraries.load()
    from cloudsplaining.shared.constants import PRIVILEGE_ESCALATION_METHODS

    return frozenset(a for actions in PRIVILEGE_ESCALATION_METHODS.values() for a in actions)


def _is_admin(statement: Statement) -> bool:
    return (
        statement.allow
        and not statement.conditional
        and not statement.not_action
        and "*" in statement.actions
        and not statement.not_resource
        and statement.resources is not None
        and "*" in statement.resources
    )


def grammar(document: Mapping[str, Any], trust: bool = False) -> list[dict[str, Any]]:
    """Parliament's findings (issue, severity, title, detail)."""
    libraries.load()
    from parliament import analyze_policy_string, enhance_finding

    policy = analyze_policy_string(json.dumps(document))
    found = []
    for item in policy.findings:
        item = enhance_finding(item)
        detail = item.detail if isinstance(item.detail, str) else json.dumps(item.detail)
        if trust and item.issue == "MALFORMED" and "Resource" in detail:
            continue  # trust policies have no Resource element by design
        found.append(
            {
                "issue": item.issue,
                "severity": (item.severity or "low").lower(),
                "title": item.title or item.issue,
                "detail": detail[:500],
            }
        )
    return sorted(found, key=lambda f: (f["issue"], f["detail"]))


def analyse_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """Cloudsplaining's risk lists and Parliament's grammar findings for one identity document.

    ``escalation_allowed`` / ``escalation_denied`` keep the unrestricted escalation-relevant
    actions, so a principal's documents can be combined without analysing them again.
    """
    libraries.load()
    from cloudsplaining.scan.policy_document import PolicyDocument
    from cloudsplaining.shared.exclusions import DEFAULT_EXCLUSIONS

    pd = PolicyDocument(dict(document), exclusions=DEFAULT_EXCLUSIONS)
    universe = _escalation_universe()
    unrestricted = {
        a.lower()
        for a in (*pd.all_allowed_unrestricted_actions, *pd.all_allowed_unrestrictable_actions)
    }
    denied = set()
    for statement in pd.statements:
        if statement.effect_deny and not statement.has_condition:
            denied.update(a.lower() for a in statement.expanded_actions or ())
    return {
        "privilege_escalation": [
            {"type": e["type"], "actions": sorted(e["actions"])}
            for e in pd.allows_privilege_escalation
        ],
        "data_exfiltration": sorted(pd.allows_data_exfiltration_actions),
        "resource_exposure": sorted(pd.permissions_management_without_constraints),
        "credentials_exposure": sorted(pd.credentials_exposure),
        "infrastructure_modification": pd.infrastructure_modification,
        "admin": any(_is_admin(s) for s in statements(document)),
        "escalation_allowed": sorted(unrestricted & universe),
        "escalation_denied": sorted(denied & universe),
        "grammar": grammar(document),
    }


def _denied_everywhere(statement: Statement, action: str) -> bool:
    """An unconditional Deny of a lower-case action on every resource."""
    return (
        not statement.allow
        and not statement.conditional
        and not statement.not_resource
        and "*" in (statement.resources or ())
        and action_matches(statement, action)
    )


def _boundary_allows(boundary: Sequence[Statement] | None, action: str) -> bool:
    """Whether a permissions boundary can allow an action at all (any resource)."""
    if boundary is None:
        return True
    lowered = action.lower()
    allowed = any(s.allow and action_matches(s, lowered) for s in boundary)
    return allowed and not any(_denied_everywhere(s, lowered) for s in boundary)


def _boundary_allows_all(boundary: Sequence[Statement] | None, actions: Iterable[str]) -> bool:
    return all(_boundary_allows(boundary, a) for a in actions)


#: Cloudsplaining's categories that list actions (each finding names the actions, capped).
LISTED_CATEGORIES = (
    "resource_exposure",
    "credentials_exposure",
    "data_exfiltration",
    "infrastructure_modification",
)


def document_findings(
    source: str,
    analysis: Mapping[str, Any],
    boundary: Sequence[Statement] | None = None,
    with_grammar: bool = True,
) -> list[dict[str, Any]]:
    """The findings one analysed document contributes (actions the boundary forbids left out)."""
    found = _admin_and_escalation(source, analysis, boundary)
    for category in LISTED_CATEGORIES:
        actions = [a for a in analysis[category] if _boundary_allows(boundary, a)]
        if actions:
            found.append(finding(category, source, _listed(actions)))
    if with_grammar:
        found += grammar_findings(source, analysis["grammar"])
    return found


def _admin_and_escalation(
    source: str, analysis: Mapping[str, Any], boundary: Sequence[Statement] | None
) -> list[dict[str, Any]]:
    found = []
    if analysis["admin"] and (boundary is None or any(_is_admin(s) for s in boundary)):
        found.append(finding("full_admin", source, {}))
    escalation = analysis["privilege_escalation"]
    methods = [m for m in escalation if _boundary_allows_all(boundary, m["actions"])]
    if methods:
        found.append(finding("privilege_escalation", source, _methods(methods)))
    return found


def grammar_findings(source: str, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Parliament's findings on one document as findings."""
    return [
        finding(
            "policy_grammar",
            source,
            item["detail"],
            f"{item['issue']}:{item['detail'][:80]}",
            severity=item["severity"] if item["severity"] in SEVERITY_RANK else "low",
            title=f"Policy grammar: {item['title']}",
        )
        for item in items
    ]


def combined_escalation(
    analyses: Sequence[Mapping[str, Any]], boundary: Sequence[Statement] | None
) -> list[dict[str, Any]]:
    """Escalation methods a principal's documents complete only together."""
    libraries.load()
    from cloudsplaining.shared.constants import PRIVILEGE_ESCALATION_METHODS

    allowed = _gathered(analyses, "escalation_allowed") - _gathered(analyses, "escalation_denied")
    single = {m["type"] for x in analyses for m in x["privilege_escalation"]}
    completed = {
        method: actions
        for method, actions in PRIVILEGE_ESCALATION_METHODS.items()
        if method not in single and set(actions) <= allowed
    }
    methods = [
        {"type": method, "actions": sorted(actions)}
        for method, actions in completed.items()
        if _boundary_allows_all(boundary, actions)
    ]
    if not methods:
        return []
    return [finding("privilege_escalation", "several policies together", _methods(methods))]


def _gathered(analyses: Sequence[Mapping[str, Any]], key: str) -> set[str]:
    return {a for x in analyses for a in x[key]}


@dataclass(frozen=True)
class Organisation:
    """The accounts of the organisation (every cached account), for "outside" checks."""

    accounts: frozenset[str]


def _limited(condition: Any) -> bool:
    """Whether a Condition block names a key that limits who or where the caller is."""
    if not isinstance(condition, Mapping):
        return False
    for operator, keys in condition.items():
        if str(operator).startswith(("StringNotEquals", "StringNotLike", "ArnNotEquals")):
            continue  # a negation excludes some callers; everyone else still gets in
        if isinstance(keys, Mapping) and any(str(k).lower() in LIMITING_KEYS for k in keys):
            return True
    return False


def _account_of(principal: str) -> str | None:
    found = _ACCOUNT_IN_ARN.match(principal)
    return found.group(1) if found else None


def _statement_exposure(
    entry: Mapping[str, Any], index: int, own_account: str, org: Organisation, source: str
) -> list[dict[str, Any]]:
    """Public access and outside principals in one raw statement."""
    parsed = statements({"Statement": [entry]})
    if not parsed or not parsed[0].allow or parsed[0].principals is None:
        return []
    statement = parsed[0]
    label = statement.sid or f"statement {index + 1}"
    found = []
    everyone = statement.not_principal or ("AWS", "*") in statement.principals
    if everyone and not _limited(entry.get("Condition")):
        detail = {"statement": label, "actions": list(statement.actions)[:MAX_LISTED]}
        found.append(finding("public_access", source, detail, label))
    return found + _outside(statement.principals, label, own_account, org, source)


def _outside(
    principals: Iterable[tuple[str, str]],
    label: str,
    own_account: str,
    org: Organisation,
    source: str,
) -> list[dict[str, Any]]:
    """A finding per AWS principal of an account outside the organisation."""
    found = []
    for kind, value in principals:
        account = _account_of(value) if kind == "AWS" else None
        if account is None or account == own_account or account in org.accounts:
            continue
        detail = {"statement": label, "principal": value, "account": account}
        found.append(finding("outside_organisation", source, detail, f"{label}:{value}"))
    return found


def exposure(
    document: Mapping[str, Any] | None, own_account: str, org: Organisation, source: str
) -> list[dict[str, Any]]:
    """Public access and principals outside the organisation in a resource or trust policy."""
    if not isinstance(document, Mapping):
        return []
    raw = document.get("Statement")
    entries = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    found: dict[str, dict[str, Any]] = {}
    for index, entry in enumerate(entries):
        if isinstance(entry, Mapping):
            for f in _statement_exposure(entry, index, own_account, org, source):
                found.setdefault(f["id"], f)
    return list(found.values())


def summarise(findings: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts by severity and category, and the worst severity (None without findings)."""
    by_severity: dict[str, int] = {}
    by_category: dict[str, int] = {}
    for f in findings:
        by_severity[f["severity"]] = by_severity.get(f["severity"], 0) + 1
        by_category[f["category"]] = by_category.get(f["category"], 0) + 1
    worst = min(by_severity, key=lambda s: SEVERITY_RANK.get(s, 99), default=None)
    return {"count": sum(by_severity.values()), "worst": worst, "severity": by_severity,
            "category": by_category}  # fmt: skip
