""" "Who can do this?": an in-memory index of every principal's policies, and its two queries.

:class:`AccessIndex` is an immutable snapshot built from the cached records of every account:
distinct identity documents (boundaries included) parsed once, an index from each catalogue
action to the statements that can grant or deny it (wildcards expanded against the catalogue,
``*`` and ``NotAction`` statements kept aside), principal -> documents pairs as arrays, and the
resource and trust policies by ARN. :meth:`AccessIndex.who_can` evaluates only the statements
indexed under the action whose Resource can match (by literal prefix), then combines them per
principal with numpy. :func:`inventory.analysis.policy.evaluate` is the same logic for one
principal, written plainly: a test checks every principal's vectorised answer against it.
"""

from __future__ import annotations

import bisect
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from inventory.analysis.catalogue import catalogue
from inventory.analysis.policy import (
    CONDITIONAL,
    LEVEL_NAMES,
    NO,
    YES,
    Caller,
    Identity,
    Statement,
    action_matches,
    literal_head,
    resource_level,
    statement_level,
    statements,
)
from inventory.cache.keys import IAM_GROUP, IAM_POLICY, IAM_ROLE, IAM_USER
from inventory.cache.store import canonical_json, content_hash
from inventory.registry import RESOURCE_POLICY_KINDS

#: Actions whose resource policy is the role's trust policy.
TRUST_ACTIONS = frozenset(
    {
        "sts:assumerole",
        "sts:assumerolewithsaml",
        "sts:assumerolewithwebidentity",
        "sts:tagsession",
        "sts:setsourceidentity",
    }
)
MAX_LISTED = 1000


@lru_cache(maxsize=65536)
def _expand(pattern: str) -> tuple[str, ...] | None:
    """Lower-case catalogue actions a pattern names; None for "every service" patterns."""
    service = pattern.partition(":")[0]
    if not service or "*" in service or "?" in service:
        return None
    if "*" not in pattern and "?" not in pattern:
        return (pattern,)
    return tuple(a.lower() for a in catalogue().expand(pattern))


@dataclass(frozen=True)
class Principal:
    arn: str
    kind: str
    account_id: str
    name: str


@dataclass(frozen=True)
class Resource:
    """A cached resource that carries a resource (or trust) policy."""

    arn: str
    kind: str
    account_id: str
    policy: tuple[Statement, ...]


@dataclass
class _Builder:
    """Accumulates documents, statements and principals, then freezes them into arrays."""

    docs: dict[str, int] = field(default_factory=dict)
    doc_statements: list[tuple[Statement, ...]] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    stmt_doc: list[int] = field(default_factory=list)
    by_action: dict[str, list[int]] = field(default_factory=dict)
    wild: list[int] = field(default_factory=list)
    principals: list[Principal] = field(default_factory=list)
    labels: list[tuple[tuple[str, int], ...]] = field(default_factory=list)
    boundary: list[int] = field(default_factory=list)
    pair_principal: list[int] = field(default_factory=list)
    pair_doc: list[int] = field(default_factory=list)
    specs: dict[tuple[tuple[str, ...] | None, bool], int] = field(default_factory=dict)
    stmt_spec: list[int] = field(default_factory=list)
    heads: dict[str, set[int]] = field(default_factory=dict)
    unbounded: set[int] = field(default_factory=set)

    def spec(self, statement: Statement) -> int:
        """The id of a statement's resource element; heads index it by literal prefix."""
        key = (statement.resources, statement.not_resource)
        found = self.specs.get(key)
        if found is not None:
            return found
        index = self.specs[key] = len(self.specs)
        if statement.resources is None or statement.not_resource:
            self.unbounded.add(index)  # a trust policy, or NotResource: may match anything
        else:
            for pattern in statement.resources:
                self.heads.setdefault(literal_head(pattern), set()).add(index)
        return index

    def doc(self, document: Mapping[str, Any] | None) -> int:
        if not isinstance(document, Mapping):
            document = {"Statement": []}
        key = content_hash(canonical_json(document))
        found = self.docs.get(key)
        if found is not None:
            return found
        index = len(self.doc_statements)
        self.docs[key] = index
        parsed = tuple(statements(document))
        self.doc_statements.append(parsed)
        for statement in parsed:
            sid = len(self.statements)
            self.statements.append(statement)
            self.stmt_doc.append(index)
            self.stmt_spec.append(self.spec(statement))
            expanded: set[str] | None = set()
            if not statement.not_action:
                for pattern in statement.actions:
                    actions = _expand(pattern)
                    if actions is None:
                        expanded = None
                        break
                    expanded.update(actions)
            if statement.not_action or expanded is None:
                self.wild.append(sid)
            else:
                for action in expanded:
                    self.by_action.setdefault(action, []).append(sid)
        return index

    def principal(
        self,
        principal: Principal,
        documents: Iterable[tuple[str, Mapping[str, Any] | None]],
        boundary: Mapping[str, Any] | None,
    ) -> None:
        index = len(self.principals)
        self.principals.append(principal)
        labelled = tuple((label, self.doc(doc)) for label, doc in documents)
        self.labels.append(labelled)
        for _, doc in labelled:
            self.pair_principal.append(index)
            self.pair_doc.append(doc)
        self.boundary.append(-1 if boundary is None else self.doc(boundary))


def _documents(
    record: Mapping[str, Any], policies: Mapping[str, Mapping[str, Any]], prefix: str = ""
) -> list[tuple[str, Mapping[str, Any] | None]]:
    found: list[tuple[str, Mapping[str, Any] | None]] = [
        (f"{prefix}inline policy {name}", doc)
        for name, doc in sorted((record.get("inline_policies") or {}).items())
    ]
    found += [
        (prefix + a["arn"], policies.get(a["arn"])) for a in record.get("attached_policies") or ()
    ]
    return found


def _bucket_of(arn: str) -> str:
    """The bucket ARN of an S3 object ARN (bucket policies cover their objects)."""
    if arn.startswith("arn:aws:s3:::") and "/" in arn:
        return arn.split("/", 1)[0]
    return arn


def _account_in(arn: str) -> str | None:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


@dataclass
class _Evaluation:
    """One who-can evaluation: the levels and the per-principal parts they came from."""

    holder: Resource | None
    account: str | None
    level: np.ndarray
    evaluated: int
    others: list[dict[str, Any]]
    doc_allow: np.ndarray
    doc_deny: np.ndarray
    identity: np.ndarray
    cap: np.ndarray
    boundary_deny: np.ndarray
    identity_deny: np.ndarray
    rp_allow: np.ndarray
    granted: np.ndarray
    rp_deny: np.ndarray
    same: np.ndarray


@dataclass
class Answer:
    """Who can perform an action on a resource."""

    action: str
    resource: str
    resource_account: str | None
    resource_kind: str | None
    principals: list[dict[str, Any]]
    allowed: int
    conditional: int
    other_grants: list[dict[str, Any]]
    evaluated_statements: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "resource": self.resource,
            "resource_account": self.resource_account,
            "resource_kind": self.resource_kind,
            "allowed": self.allowed,
            "conditional": self.conditional,
            "principals": self.principals,
            "truncated": self.allowed + self.conditional > len(self.principals),
            "other_grants": self.other_grants,
            "evaluated_statements": self.evaluated_statements,
        }


class AccessIndex:
    """An immutable snapshot: principals, their documents and the action index, as arrays."""

    def __init__(
        self,
        builder: _Builder,
        resources: Mapping[str, Resource],
        org: frozenset[str],
        generation: str = "",
    ) -> None:
        self.principals = builder.principals
        self.labels = builder.labels
        self.doc_statements = builder.doc_statements
        self.statements = builder.statements
        self.stmt_doc = np.array(builder.stmt_doc, dtype=np.int64)
        self.by_action = builder.by_action
        self.wild = np.array(builder.wild, dtype=np.int64)
        self.wild_list = list(builder.wild)
        self.stmt_doc_list = list(builder.stmt_doc)
        self.stmt_spec = list(builder.stmt_spec)
        self.heads = builder.heads
        self.sorted_heads = sorted(builder.heads)
        self.unbounded = frozenset(builder.unbounded)
        self.boundary = np.array(builder.boundary, dtype=np.int64)
        self.pair_principal = np.array(builder.pair_principal, dtype=np.int64)
        self.pair_doc = np.array(builder.pair_doc, dtype=np.int64)
        self.by_arn = {p.arn: i for i, p in enumerate(self.principals)}
        accounts = sorted({p.account_id for p in self.principals})
        self.account_codes = {a: i for i, a in enumerate(accounts)}
        self.account_of = np.array(
            [self.account_codes[p.account_id] for p in self.principals], dtype=np.int64
        )
        self.is_role = np.array([p.kind == IAM_ROLE for p in self.principals], dtype=bool)
        self.resources = dict(resources)
        self.org = org
        self.generation = generation

    @property
    def size(self) -> int:
        return len(self.principals)

    # --- the reference evaluation for one principal ---------------------------------------
    def identity(self, index: int) -> Identity:
        p = self.principals[index]
        documents = tuple((label, self.doc_statements[d]) for label, d in self.labels[index])
        b = int(self.boundary[index])
        return Identity(
            Caller(p.arn, p.account_id, p.kind),
            documents,
            None if b < 0 else self.doc_statements[b],
        )

    def resource_context(
        self, action: str, resource: str
    ) -> tuple[Resource | None, str | None, tuple[Statement, ...]]:
        """The cached resource holding the policy, the resource's account, and that policy."""
        holder = self.resources.get(_bucket_of(resource))
        account = holder.account_id if holder else _account_in(resource)
        if holder is None:
            return None, account, ()
        if holder.kind == IAM_ROLE and action.lower() not in TRUST_ACTIONS:
            return holder, account, ()  # a trust policy governs assuming the role only
        return holder, account, holder.policy

    # --- who can ---------------------------------------------------------------------------
    def _statement_levels(self, action: str, resource: str) -> tuple[np.ndarray, np.ndarray, int]:
        """Per document: the best Allow level and the best Deny level for (action, resource)."""
        allow = np.zeros(len(self.doc_statements), dtype=np.int8)
        deny = np.zeros(len(self.doc_statements), dtype=np.int8)
        memo: dict[tuple[tuple[str, ...] | None, bool], int] = {}
        candidates = self._candidates(action, resource)
        for sid, statement in candidates:
            key = (statement.resources, statement.not_resource)
            level = memo.get(key)
            if level is None:
                level = memo[key] = resource_level(statement, resource)
            if not level:
                continue
            if statement.conditional:
                level = CONDITIONAL
            doc = self.stmt_doc_list[sid]
            target = allow if statement.allow else deny
            if level > target[doc]:
                target[doc] = level
        return allow, deny, len(candidates)

    def _candidates(self, action: str, resource: str) -> list[tuple[int, Statement]]:
        """Statements that may apply: indexed under the action, or with a wildcard action that
        matches it, and whose Resource patterns agree with the resource before any wildcard."""
        compatible = self._compatible_specs(resource)
        spec, statements_ = self.stmt_spec, self.statements
        found = [
            (sid, statements_[sid])
            for sid in self.by_action.get(action, ())
            if spec[sid] in compatible
        ]
        found += [
            (sid, statements_[sid])
            for sid in self.wild_list
            if spec[sid] in compatible and action_matches(statements_[sid], action)
        ]
        return found

    def _compatible_specs(self, resource: str) -> set[int]:
        """Resource elements that may match: their literal head and the resource's agree."""
        head = literal_head(resource)
        found = set(self.unbounded)
        for end in range(len(head) + 1):
            found.update(self.heads.get(head[:end], ()))
        start = bisect.bisect_left(self.sorted_heads, head)
        for candidate in self.sorted_heads[start:]:
            if not candidate.startswith(head):
                break
            found.update(self.heads[candidate])
        return found

    def _per_principal(self, per_doc: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size, dtype=np.int8)
        values = per_doc[self.pair_doc]
        hit = values > 0
        np.maximum.at(out, self.pair_principal[hit], values[hit])
        return out

    def _entry_masks(self, kind: str, value: str) -> tuple[np.ndarray, bool, int]:
        """(principals one Principal entry names, by their own ARN?, at which level)."""
        mask = np.zeros(self.size, dtype=bool)
        if kind != "AWS":
            return mask, False, NO
        if value == "*":
            mask[:] = True
            return mask, True, YES
        if value in self.by_arn:
            mask[self.by_arn[value]] = True
            return mask, True, YES
        account = _account_in(value)
        if value.endswith(":root") and account in self.account_codes:
            return self.account_of == self.account_codes[account], False, YES
        return self._pattern_mask(value, account, mask)

    def _pattern_mask(
        self, value: str, account: str | None, mask: np.ndarray
    ) -> tuple[np.ndarray, bool, int]:
        """A session ARN or a wildcard pattern: the principals it may stand for, conditionally."""
        if ":assumed-role/" in value and account is not None:
            # A session ARN names the role by name only (no path): one session of it.
            name = value.split(":assumed-role/", 1)[1].split("/", 1)[0]
            prefix = f"arn:aws:iam::{account}:role/"
            hits = [
                i
                for arn, i in self.by_arn.items()
                if arn.startswith(prefix) and arn.rsplit("/", 1)[-1] == name
            ]
        elif "*" in value or "?" in value:
            caller = re.compile(fnmatch.translate(value))
            hits = [i for arn, i in self.by_arn.items() if caller.match(arn)]
        else:
            return mask, False, NO
        mask[np.asarray(hits, dtype=np.int64)] = True
        return mask, True, CONDITIONAL

    def _named(self, statement: Statement) -> tuple[np.ndarray, np.ndarray]:
        """Per principal: the level at which a resource policy statement names it, and
        whether by its own ARN (see :func:`inventory.analysis.policy.principal_level`)."""
        level = np.zeros(self.size, dtype=np.int8)
        direct = np.zeros(self.size, dtype=bool)
        for kind, value in statement.principals or ():
            mask, by_arn, value_level = self._entry_masks(kind, value)
            if not value_level:
                continue
            better = mask & ((level < value_level) | ((level == value_level) & by_arn & ~direct))
            level[better] = value_level
            direct[better] = by_arn
        if statement.not_principal:
            level = np.choose(level, [YES, CONDITIONAL, NO]).astype(np.int8)
            direct = np.ones(self.size, dtype=bool)
        return level, direct

    def _resource_policy(
        self, policy: Iterable[Statement], action: str, resource: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Per principal: resource policy Allow level, whether by its own ARN, Deny level."""
        allow = np.zeros(self.size, dtype=np.int8)
        direct = np.zeros(self.size, dtype=bool)
        deny = np.zeros(self.size, dtype=np.int8)
        others: list[dict[str, Any]] = []
        for statement in policy:
            level = statement_level(statement, action, resource)
            if not level:
                continue
            named, by_arn = self._named(statement)
            value = np.minimum(named, level).astype(np.int8)
            if statement.allow:
                others += self._other_grants(statement, level)
                better = (value > allow) | ((value == allow) & (value > 0) & by_arn & ~direct)
                allow[better] = value[better]
                direct[better] = by_arn[better]
            else:
                deny = np.maximum(deny, value)
        return allow, direct, deny, others

    def _other_grants(self, statement: Statement, level: int) -> list[dict[str, Any]]:
        """Grantees that are not principals in the index: the public, services, other accounts."""
        found = []
        for kind, value in statement.principals or ():
            what = self._grantee(kind, value)
            if what is not None:
                found.append({"principal": value, "type": what, "level": LEVEL_NAMES[level]})
        if statement.not_principal:
            found.append({"principal": "NotPrincipal", "type": "public", "level": "conditional"})
        return found

    def _grantee(self, kind: str, value: str) -> str | None:
        """What a grantee is (public, service, outside the organisation...); None when the
        index lists its principals one by one."""
        if kind != "AWS":
            return "service" if kind == "Service" else kind.lower()
        if value in self.by_arn:
            return None
        account = _account_in(value)
        if value.endswith(":root") and account in self.org:
            return None
        if value == "*":
            return "public"
        if account is not None and account not in self.org:
            return "outside the organisation"
        return "aws"

    def _evaluation(self, action: str, resource: str) -> _Evaluation:
        """Every principal's level for (action, resource), with what it was made of."""
        action = action.lower()
        holder, account, policy = self.resource_context(action, resource)
        doc_allow, doc_deny, evaluated = self._statement_levels(action, resource)
        identity = self._per_principal(doc_allow)
        denied = self._per_principal(doc_deny)
        has_boundary = self.boundary >= 0
        cap = np.full(self.size, YES, dtype=np.int8)
        cap[has_boundary] = doc_allow[self.boundary[has_boundary]]
        boundary_deny = np.zeros(self.size, dtype=np.int8)
        boundary_deny[has_boundary] = doc_deny[self.boundary[has_boundary]]
        allowed = np.minimum(identity, cap)
        rp_allow, rp_direct, rp_deny, others = self._resource_policy(policy, action, resource)
        granted = np.where(rp_direct, rp_allow, 0).astype(np.int8)
        granted = np.where(self.is_role, np.minimum(granted, cap), granted)
        code = self.account_codes.get(account or "", -1)
        same = self.account_of == code
        level = np.where(same, np.maximum(allowed, granted), np.minimum(allowed, rp_allow))
        all_denied = np.maximum(np.maximum(denied, boundary_deny), rp_deny)
        level = np.where(all_denied == YES, NO, level)
        level = np.where((all_denied == CONDITIONAL) & (level > 0), CONDITIONAL, level)
        return _Evaluation(
            holder, account, level.astype(np.int8), evaluated, others, doc_allow, doc_deny,
            identity, cap, boundary_deny, denied, rp_allow, granted, rp_deny, same,
        )  # fmt: skip

    def levels(self, action: str, resource: str) -> tuple[np.ndarray, int, list[dict[str, Any]]]:
        """Every principal's level for (action, resource), and the resource policy's others."""
        found = self._evaluation(action, resource)
        return found.level, found.evaluated, found.others

    def _reasons(self, e: _Evaluation, i: int) -> list[str]:
        """Why one principal got its level, from the evaluation's parts."""
        reasons = self._allow_reasons(e, i) + self._deny_reasons(e, i)
        if e.level[i] == CONDITIONAL and not any("onditional" in r for r in reasons):
            reasons.append("depends on a condition or on part of the resource")
        return reasons

    def _allow_reasons(self, e: _Evaluation, i: int) -> list[str]:
        reasons = []
        if e.identity[i]:
            label = next(
                (lb for lb, d in self.labels[i] if e.doc_allow[d] == e.identity[i]), "policy"
            )
            reasons.append(f"allowed by {label}")
            if e.cap[i] < e.identity[i]:
                reasons.append("capped by the permissions boundary")
        if e.same[i] and e.granted[i] > min(e.identity[i], e.cap[i]):
            reasons.append("allowed by the resource policy")
        elif not e.same[i] and e.rp_allow[i]:
            reasons.append("granted across accounts by the resource policy")
        return reasons

    def _deny_reasons(self, e: _Evaluation, i: int) -> list[str]:
        reasons = []
        if e.identity_deny[i] == CONDITIONAL:
            label = next((lb for lb, d in self.labels[i] if e.doc_deny[d]), "policy")
            reasons.append(f"a conditional Deny in {label}")
        if e.boundary_deny[i] == CONDITIONAL:
            reasons.append("a conditional Deny in the permissions boundary")
        if e.rp_deny[i] == CONDITIONAL:
            reasons.append("a conditional Deny in the resource policy")
        return reasons

    def who_can(self, action: str, resource: str, limit: int = 200) -> Answer:
        """Every principal allowed (or conditionally allowed) the action on the resource."""
        e = self._evaluation(action, resource)
        hits = np.flatnonzero(e.level > 0)
        order = sorted(
            hits.tolist(),
            key=lambda i: (-int(e.level[i]), self.principals[i].account_id, self.principals[i].arn),
        )
        listed = []
        for index in order[: min(limit, MAX_LISTED)]:
            p = self.principals[index]
            listed.append(
                {
                    "arn": p.arn,
                    "kind": p.kind,
                    "name": p.name,
                    "account_id": p.account_id,
                    "decision": "allowed" if e.level[index] == YES else "conditional",
                    "reasons": self._reasons(e, index),
                }
            )
        return Answer(
            action=action,
            resource=resource,
            resource_account=e.account,
            resource_kind=e.holder.kind if e.holder else None,
            principals=listed,
            allowed=int((e.level == YES).sum()),
            conditional=int((e.level == CONDITIONAL).sum()),
            other_grants=e.others,
            evaluated_statements=e.evaluated,
        )

    # --- what can a principal do --------------------------------------------------------------
    def what_can(self, arn: str, service: str) -> list[dict[str, Any]] | None:
        """For each action of a service: the resources the principal's policies allow it on."""
        index = self.by_arn.get(arn)
        if index is None:
            return None
        identity = self.identity(index)
        cat = catalogue()
        found = []
        for name in cat.service_actions(service):
            lowered = name.lower()
            allows, denies, conditional = _grants(identity, lowered)
            if not allows:
                continue
            if identity.boundary is not None and not any(
                s.allow and action_matches(s, lowered) for s in identity.boundary
            ):
                continue
            action = cat.get(name)
            found.append(
                {
                    "action": name,
                    "access_level": action.access_level if action else None,
                    "resources": sorted(set(allows)),
                    "denied": sorted(set(denies)),
                    "conditional": conditional,
                }
            )
        return found


def _grants(identity: Identity, action: str) -> tuple[list[str], list[str], bool]:
    """Resource patterns a principal's documents allow and (unconditionally) deny an action on."""
    allows: list[str] = []
    denies: list[str] = []
    conditional = False
    for _, doc in identity.documents:
        for s in doc:
            if not action_matches(s, action):
                continue
            patterns = list(s.resources or ["(the role itself)"])
            if s.not_resource:
                patterns = [f"everything but {p}" for p in patterns]
            if s.allow:
                allows += patterns
                conditional = conditional or s.conditional
            elif not s.conditional:
                denies += patterns
    return allows, denies, conditional


def _principal_documents(
    record: Mapping[str, Any],
    policies: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Mapping[str, Any]],
) -> tuple[list[tuple[str, Mapping[str, Any] | None]], Mapping[str, Any] | None]:
    """A role's or user's labelled documents (its groups' too) and its boundary document."""
    documents = _documents(record, policies)
    for name in record.get("groups") or ():
        if name in groups:
            documents += _documents(groups[name], policies, f"group {name}: ")
    boundary = record.get("permissions_boundary")
    if not boundary:
        return documents, None
    return documents, policies.get(boundary["arn"]) or {"Statement": []}


def _add_account(
    builder: _Builder,
    resources: dict[str, Resource],
    account_id: str,
    kinds: Mapping[str, Mapping[str, Mapping[str, Any]]],
    aws_policies: Mapping[str, Mapping[str, Any]],
) -> None:
    """One account's roles and users (with their documents) and its policy-bearing resources."""
    policies = dict(aws_policies)
    policies.update(
        {a: r["document"] for a, r in kinds.get(IAM_POLICY, {}).items() if r.get("document")}
    )
    groups = {g["name"]: g for g in kinds.get(IAM_GROUP, {}).values()}
    for kind in (IAM_ROLE, IAM_USER):
        for arn, record in sorted(kinds.get(kind, {}).items()):
            documents, boundary_doc = _principal_documents(record, policies, groups)
            principal = Principal(arn, kind, account_id, record.get("name") or arn)
            builder.principal(principal, documents, boundary_doc)
    for arn, record in kinds.get(IAM_ROLE, {}).items():
        # A role's trust policy is its resource policy (for sts:AssumeRole*).
        trust = tuple(statements(record.get("trust_policy")))
        resources[arn] = Resource(arn, IAM_ROLE, account_id, trust)
    for kind in RESOURCE_POLICY_KINDS:
        for arn, record in kinds.get(kind, {}).items():
            policy = _document(record.get("policy"))
            resources[arn] = Resource(arn, kind, account_id, tuple(statements(policy)))


def _document(policy: Any) -> Any:
    """A policy document as cached (a dict), or parsed from JSON text."""
    return json.loads(policy) if isinstance(policy, str) else policy


def build_index(
    accounts: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]],
    aws_policies: Mapping[str, Mapping[str, Any]],
    org: Iterable[str],
    generation: str = "",
) -> AccessIndex:
    """An index over ``accounts`` (account -> kind -> ARN -> record) and AWS managed documents."""
    builder = _Builder()
    resources: dict[str, Resource] = {}
    for account_id, kinds in sorted(accounts.items()):
        _add_account(builder, resources, account_id, kinds, aws_policies)
    return AccessIndex(builder, resources, frozenset(org), generation)
