"""Policy documents as statements, and how a statement answers (action, resource, principal).

Answers have three levels: ``NO``, ``CONDITIONAL`` (a condition, a policy variable or a part of
the resource decides; we report it rather than guess) and ``YES``. Action names match
case-insensitively, resources case-sensitively, both with ``*`` and ``?`` wildcards, as AWS
documents: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

NO, CONDITIONAL, YES = 0, 1, 2
LEVEL_NAMES = {NO: "no", CONDITIONAL: "conditional", YES: "yes"}
_VARIABLE = re.compile(r"\$\{[^}]*\}")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class Statement:
    """One statement, normalised: tuples of patterns, ``None`` for an absent element."""

    effect: str
    actions: tuple[str, ...]
    not_action: bool
    resources: tuple[str, ...] | None
    not_resource: bool
    principals: tuple[tuple[str, str], ...] | None
    not_principal: bool
    conditional: bool
    sid: str | None = None

    @property
    def allow(self) -> bool:
        return self.effect == "Allow"


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def _principals(value: Any) -> tuple[tuple[str, str], ...]:
    """``"*"`` or ``{"AWS": ..., "Service": ...}`` as (type, value) pairs; account ids as roots."""
    if value == "*":
        return (("AWS", "*"),)
    if not isinstance(value, dict):
        return ()
    found = []
    for kind, entries in value.items():
        for entry in _strings(entries):
            if kind == "AWS" and _ACCOUNT.match(entry):
                entry = f"arn:aws:iam::{entry}:root"
            found.append((str(kind), entry))
    return tuple(found)


def statements(document: Mapping[str, Any] | None) -> list[Statement]:
    """A document's statements; malformed ones (no Effect, no action element) are left out."""
    if not isinstance(document, Mapping):
        return []
    raw = document.get("Statement")
    entries = [raw] if isinstance(raw, dict) else raw if isinstance(raw, list) else []
    found = (_statement(entry) for entry in entries if isinstance(entry, dict))
    return [statement for statement in found if statement is not None]


def _element(entry: Mapping[str, Any], name: str) -> tuple[bool, bool, Any]:
    """(whether the ``Not`` form is used, whether the element is there, its value)."""
    negated = f"Not{name}" in entry
    key = f"Not{name}" if negated else name
    return negated, key in entry, entry.get(key)


def _statement(entry: Mapping[str, Any]) -> Statement | None:
    if entry.get("Effect") not in ("Allow", "Deny"):
        return None
    not_action, _, action = _element(entry, "Action")
    actions = _strings(action)
    if not actions:
        return None
    not_resource, has_resource, resource = _element(entry, "Resource")
    not_principal, has_principal, principal = _element(entry, "Principal")
    sid = entry.get("Sid")
    return Statement(
        effect=entry["Effect"],
        actions=tuple(a.lower() for a in actions),
        not_action=not_action,
        resources=_strings(resource) if has_resource else None,
        not_resource=not_resource,
        principals=_principals(principal) if has_principal else None,
        not_principal=not_principal,
        conditional=bool(entry.get("Condition")),
        sid=sid if isinstance(sid, str) else None,
    )


@lru_cache(maxsize=65536)
def _glob(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``*`` any run of characters, ``?`` any one; everything else literal."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), flags | re.DOTALL)


@lru_cache(maxsize=65536)
def _covering(pattern: str) -> re.Pattern[str]:
    """Matches a query pattern (read literally) only if ``pattern`` matches all it stands for."""
    parts = [".*" if c == "*" else "[^*]" if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.DOTALL)


def action_matches(statement: Statement, action: str) -> bool:
    """Whether the statement's Action (or NotAction) covers a lower-case action name."""
    hit = any(_glob(p).fullmatch(action) for p in statement.actions)
    return hit != statement.not_action


@lru_cache(maxsize=65536)
def _literal_ends(pattern: str) -> tuple[str, str]:
    """The literal text before the first wildcard and after the last one."""
    cut = [i for i, c in enumerate(pattern) if c in "*?"]
    if not cut:
        return pattern, pattern
    return pattern[: cut[0]], pattern[cut[-1] + 1 :]


def literal_head(pattern: str) -> str:
    """The literal text before a pattern's first wildcard or policy variable."""
    cut = min((i for i in (pattern.find("*"), pattern.find("?"), pattern.find("${")) if i >= 0),
              default=len(pattern))  # fmt: skip
    return pattern[:cut]


def glob_intersects(a: str, b: str) -> bool:
    """Whether some string matches both wildcard patterns."""
    (a_head, a_tail), (b_head, b_tail) = _literal_ends(a), _literal_ends(b)
    if not (a_head.startswith(b_head) or b_head.startswith(a_head)):
        return False  # they differ before either has a wildcard (most ARNs: at once)
    if not (a_tail.endswith(b_tail) or b_tail.endswith(a_tail)):
        return False
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(a) and j == len(b):
            result = True
        elif i < len(a) and a[i] == "*":
            result = go(i + 1, j) or (j < len(b) and go(i, j + 1))
        elif j < len(b) and b[j] == "*":
            result = go(i, j + 1) or (i < len(a) and go(i + 1, j))
        elif i < len(a) and j < len(b):
            result = (a[i] == b[j] or "?" in (a[i], b[j])) and go(i + 1, j + 1)
        else:
            result = False
        memo[key] = result
        return result

    return go(0, 0)


def pattern_level(pattern: str, resource: str) -> int:
    """How far one Resource pattern covers a resource (itself possibly a pattern)."""
    level = YES
    if "${" in pattern:
        # A policy variable (${aws:username}...) is known only per request.
        pattern, level = _VARIABLE.sub("*", pattern), CONDITIONAL
    head, _ = _literal_ends(pattern)
    query_head, _ = _literal_ends(resource)
    if not (head.startswith(query_head) or query_head.startswith(head)):
        return NO  # they differ before any wildcard: no regex needed (most patterns)
    if "*" not in resource and "?" not in resource:
        return level if _glob(pattern).fullmatch(resource) else NO
    if _covering(pattern).fullmatch(resource):
        return level
    return CONDITIONAL if glob_intersects(pattern, resource) else NO


def resource_level(statement: Statement, resource: str) -> int:
    """How far the statement's Resource (or NotResource) covers the resource."""
    if statement.resources is None:
        return YES  # a trust policy: the role it is attached to
    matched = max((pattern_level(p, resource) for p in statement.resources), default=NO)
    if not statement.not_resource:
        return matched
    return {NO: YES, CONDITIONAL: CONDITIONAL, YES: NO}[matched]


@dataclass(frozen=True)
class Caller:
    """A principal as resource policies name it."""

    arn: str
    account_id: str
    kind: str  # iam_role | iam_user

    @property
    def is_role(self) -> bool:
        return self.kind == "iam_role"


def _entry_level(entry: tuple[str, str], caller: Caller) -> tuple[int, bool]:
    """(level, direct): does one Principal entry name the caller, and by its own ARN?"""
    kind, value = entry
    if kind != "AWS":
        return NO, False
    if value == "*":
        return YES, True
    if value == caller.arn:
        return YES, True
    if value == f"arn:aws:iam::{caller.account_id}:root":
        return YES, False
    if caller.is_role:
        name = caller.arn.rsplit("/", 1)[-1]
        session = f"arn:aws:sts::{caller.account_id}:assumed-role/{name}/"
        if value.startswith(session):
            return CONDITIONAL, True  # one session of the role
    if ("*" in value or "?" in value) and _glob(value).fullmatch(caller.arn):
        return CONDITIONAL, True
    return NO, False


def principal_level(statement: Statement, caller: Caller) -> tuple[int, bool]:
    """(level, direct) for a resource policy statement's Principal or NotPrincipal."""
    if statement.principals is None:
        return YES, False  # identity policies name no principal
    best, direct = NO, False
    for entry in statement.principals:
        level, by_arn = _entry_level(entry, caller)
        if (level, by_arn) > (best, direct):
            best, direct = level, by_arn
    if not statement.not_principal:
        return best, direct
    return {NO: YES, CONDITIONAL: CONDITIONAL, YES: NO}[best], True


def statement_level(statement: Statement, action: str, resource: str) -> int:
    """How far one statement applies to (action, resource), ignoring its Principal."""
    if not action_matches(statement, action):
        return NO
    level = resource_level(statement, resource)
    if level and statement.conditional:
        level = CONDITIONAL
    return level


@dataclass
class Decision:
    """The answer for one principal, with the reasons a person can check."""

    level: int
    reasons: list[str]

    @property
    def name(self) -> str:
        return LEVEL_NAMES[self.level]


@dataclass(frozen=True)
class Identity:
    """A principal's policies: identity documents by label, and its permissions boundary."""

    caller: Caller
    documents: tuple[tuple[str, tuple[Statement, ...]], ...]
    boundary: tuple[Statement, ...] | None = None


def _best(
    labelled: Iterable[tuple[str, Iterable[Statement]]],
    effect: str,
    action: str,
    resource: str,
) -> tuple[int, str | None]:
    best, where = NO, None
    for label, found in labelled:
        for statement in found:
            if statement.effect != effect:
                continue
            level = statement_level(statement, action, resource)
            if level > best:
                best, where = level, label
                if best == YES:
                    return best, where
    return best, where


def _resource_policy(
    policy: Iterable[Statement], effect: str, caller: Caller, action: str, resource: str
) -> tuple[int, bool]:
    """(level, direct) of the resource policy's statements of one effect naming the caller."""
    best, direct = NO, False
    for statement in policy:
        if statement.effect != effect:
            continue
        level = statement_level(statement, action, resource)
        if not level:
            continue
        named, by_arn = principal_level(statement, caller)
        level = min(level, named)
        if (level, by_arn) > (best, direct):
            best, direct = level, by_arn
    return best, direct


def _denied(
    identity: Identity, policy: list[Statement], action: str, resource: str
) -> tuple[int, str | None]:
    """The strongest explicit Deny (identity documents, boundary, resource policy)."""
    labelled = list(identity.documents)
    if identity.boundary is not None:
        labelled.append(("permissions boundary", identity.boundary))
    denied, where = _best(labelled, "Deny", action, resource)
    rp_denied, _ = _resource_policy(policy, "Deny", identity.caller, action, resource)
    if rp_denied > denied:
        return rp_denied, "resource policy"
    return denied, where


def _identity_allowed(
    identity: Identity, action: str, resource: str, reasons: list[str]
) -> tuple[int, int]:
    """(identity allow capped by the boundary, the boundary's own cap)."""
    allowed, where = _best(identity.documents, "Allow", action, resource)
    if allowed:
        reasons.append(f"allowed by {where}")
    if identity.boundary is None:
        return allowed, YES
    cap, _ = _best([("boundary", identity.boundary)], "Allow", action, resource)
    if allowed and cap < allowed:
        reasons.append("capped by the permissions boundary")
    return min(allowed, cap), cap


def _with_resource_policy(
    caller: Caller,
    allowed: int,
    cap: int,
    granted: int,
    direct: bool,
    same_account: bool,
    reasons: list[str],
) -> int:
    """Combine the identity side with what the resource policy grants."""
    if not same_account:
        level = min(allowed, granted)
        if allowed and not granted:
            reasons.append("the resource policy does not grant it to this account")
        elif level:
            reasons.append("granted across accounts by the resource policy")
        return level
    if not (direct and granted):
        return allowed
    if caller.is_role:
        granted = min(granted, cap)
    if granted > allowed:
        reasons.append("allowed by the resource policy")
    return max(allowed, granted)


def evaluate(
    identity: Identity,
    action: str,
    resource: str,
    resource_account: str | None,
    resource_policy: Iterable[Statement] | None = None,
) -> Decision:
    """AWS's evaluation for one principal, action and resource (SCPs and sessions aside).

    Explicit Deny anywhere wins. Within the resource's account, an identity allow (capped by
    the boundary) or a resource policy naming the principal itself suffices; a grant to the
    account root delegates to identity policies. Across accounts both sides must allow. A
    resource policy grant to a role ARN is still capped by the role's boundary, one to a user
    ARN is not (access_policies_boundaries.html).
    """
    action = action.lower()
    policy = list(resource_policy or ())
    denied, deny_where = _denied(identity, policy, action, resource)
    if denied == YES:
        return Decision(NO, [f"explicitly denied by {deny_where}"])
    reasons: list[str] = []
    allowed, cap = _identity_allowed(identity, action, resource, reasons)
    granted, direct = _resource_policy(policy, "Allow", identity.caller, action, resource)
    same_account = resource_account == identity.caller.account_id
    level = _with_resource_policy(
        identity.caller, allowed, cap, granted, direct, same_account, reasons
    )
    if denied == CONDITIONAL and level:
        level = CONDITIONAL
        reasons.append(f"a conditional Deny in {deny_where}")
    if level == CONDITIONAL and not any("condition" in r for r in reasons):
        reasons.append("depends on a condition or on part of the resource")
    return Decision(level, reasons)
