"""What is analysed in one account: principals, customer policies and resource policies.

A :class:`Subject` lists the documents its findings depend on, and ``key`` hashes them (with
the analyser's version and, for resource and trust policies, the organisation's accounts): a
subject whose key is unchanged is not analysed again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from inventory.analysis.findings import (
    Organisation,
    analyser_version,
    combined_escalation,
    document_findings,
    exposure,
    grammar_findings,
)
from inventory.analysis.policy import statements
from inventory.cache.keys import IAM_GROUP, IAM_POLICY, IAM_ROLE, IAM_USER
from inventory.cache.store import canonical_json, content_hash
from inventory.registry import RESOURCE_POLICY_KINDS

#: Resource kinds whose records carry a resource policy in ``policy``.
IDENTITY, RESOURCE, TRUST = "identity", "resource", "trust"
#: Cloudsplaining leaves AWS's service-linked roles out: AWS owns and maintains them.
SERVICE_LINKED_PATH = "/aws-service-role/"


def document_key(kind: str, document: Mapping[str, Any]) -> str:
    """The memo key of one document's analysis: its kind and content hash."""
    return f"{kind}:{content_hash(canonical_json(document))}"


@dataclass(frozen=True)
class Source:
    """One document a subject's findings come from."""

    label: str
    kind: str  # identity | resource | trust
    document: Mapping[str, Any] | None
    grammar: bool = True  # a shared policy's grammar is reported on the policy itself

    @property
    def key(self) -> str | None:
        return None if self.document is None else document_key(self.kind, self.document)


@dataclass
class Subject:
    """A principal, customer policy or resource, with the documents it is judged on."""

    arn: str
    kind: str
    name: str
    account_id: str
    sources: list[Source] = field(default_factory=list)
    boundary: Mapping[str, Any] | None = None
    boundary_arn: str | None = None
    org_digest: str = ""

    @property
    def key(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(analyser_version().encode())
        for part in (self.kind, self.org_digest, self.boundary_arn or ""):
            h.update(f"\0{part}".encode())
        if self.boundary is not None:
            h.update(document_key(IDENTITY, self.boundary).encode())
        for s in self.sources:
            h.update(f"\0{s.label}\0{s.key}\0{int(s.grammar)}".encode())
        return h.hexdigest()

    def document_keys(self) -> set[str]:
        return {s.key for s in self.sources if s.key is not None}


def org_digest(org: Organisation) -> str:
    return content_hash(",".join(sorted(org.accounts)))


def _attached(
    record: Mapping[str, Any], policies: Mapping[str, Mapping[str, Any]], prefix: str = ""
) -> list[Source]:
    return [
        Source(f"{prefix}{a['arn']}", IDENTITY, policies.get(a["arn"]), grammar=False)
        for a in record.get("attached_policies") or ()
    ]


def _inline(record: Mapping[str, Any], prefix: str, grammar: bool) -> list[Source]:
    return [
        Source(f"{prefix}inline policy {name}", IDENTITY, doc, grammar)
        for name, doc in sorted((record.get("inline_policies") or {}).items())
    ]


def _principal(
    kind: str,
    arn: str,
    record: Mapping[str, Any],
    account_id: str,
    groups: Mapping[str, Mapping[str, Any]],
    policies: Mapping[str, Mapping[str, Any]],
    digest: str,
) -> Subject:
    """A role, user or group with its documents (a user's groups' too) and its boundary."""
    subject = Subject(arn, kind, record.get("name") or arn, account_id)
    subject.sources = _inline(record, "", True) + _attached(record, policies)
    for group_name in record.get("groups") or ():
        group = groups.get(group_name)
        if group is not None:
            prefix = f"group {group_name}: "
            subject.sources += _inline(group, prefix, False)
            subject.sources += _attached(group, policies, prefix)
    boundary = record.get("permissions_boundary")
    if boundary:
        subject.boundary_arn = boundary["arn"]
        subject.boundary = policies.get(boundary["arn"]) or {"Statement": []}
    if kind == IAM_ROLE:
        subject.sources.append(Source("trust policy", TRUST, record.get("trust_policy")))
        subject.org_digest = digest
    return subject


def build_subjects(
    account_id: str,
    records: Mapping[str, Mapping[str, Mapping[str, Any]]],
    policies: Mapping[str, Mapping[str, Any]],
    org: Organisation,
) -> list[Subject]:
    """Every subject of one account; ``policies`` maps managed policy ARN -> document."""
    digest = org_digest(org)
    groups = {g["name"]: g for g in records.get(IAM_GROUP, {}).values()}
    found: list[Subject] = []
    for kind in (IAM_ROLE, IAM_USER, IAM_GROUP):
        for arn, record in sorted(records.get(kind, {}).items()):
            if not _service_linked(kind, record):
                found.append(_principal(kind, arn, record, account_id, groups, policies, digest))
    for arn, record in sorted(records.get(IAM_POLICY, {}).items()):
        subject = Subject(arn, IAM_POLICY, record.get("name") or arn, account_id)
        subject.sources = [Source("policy document", IDENTITY, record.get("document"))]
        found.append(subject)
    for kind in RESOURCE_POLICY_KINDS:
        found += (
            _resource(kind, arn, record, account_id, digest)
            for arn, record in sorted(records.get(kind, {}).items())
        )
    return found


def _service_linked(kind: str, record: Mapping[str, Any]) -> bool:
    """AWS's own roles (left out, as Cloudsplaining leaves them out)."""
    return kind == IAM_ROLE and (record.get("path") or "").startswith(SERVICE_LINKED_PATH)


def _resource(
    kind: str, arn: str, record: Mapping[str, Any], account_id: str, digest: str
) -> Subject:
    subject = Subject(arn, kind, record.get("name") or arn, account_id, org_digest=digest)
    if record.get("policy"):
        subject.sources = [Source("resource policy", RESOURCE, record["policy"])]
    return subject


def subject_findings(
    subject: Subject, analyses: Mapping[str, Mapping[str, Any]], org: Organisation
) -> list[dict[str, Any]]:
    """A subject's findings from its documents' analyses (``analyses`` by document key)."""
    boundary = statements(subject.boundary) if subject.boundary is not None else None
    found: list[dict[str, Any]] = []
    identity: list[Mapping[str, Any]] = []
    for source in subject.sources:
        if source.key is None:
            continue
        analysis = analyses[source.key]
        if source.kind == IDENTITY:
            identity.append(analysis)
            found += document_findings(source.label, analysis, boundary, source.grammar)
            continue
        found += exposure(source.document, subject.account_id, org, source.label)
        found += grammar_findings(source.label, analysis["grammar"])
    if len(identity) > 1:
        found += combined_escalation(identity, boundary)
    unique = {f["id"]: f for f in found}
    return [unique[k] for k in sorted(unique)]


def documents_to_analyse(subjects: Iterable[Subject]) -> dict[str, Source]:
    """One source per distinct document key among the subjects."""
    wanted: dict[str, Source] = {}
    for subject in subjects:
        for source in subject.sources:
            if source.key is not None:
                wanted.setdefault(source.key, source)
    return wanted


def analyse_source(source: Source) -> dict[str, Any]:
    """Analyse one document by its kind (Cloudsplaining + Parliament, or Parliament alone)."""
    from inventory.analysis.findings import analyse_document, grammar

    assert source.document is not None
    if source.kind == IDENTITY:
        return analyse_document(source.document)
    return {"grammar": grammar(source.document, trust=source.kind == TRUST)}


def record_of(subject: Subject, findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The cached findings record of a subject: its findings by id (so history diffs by id)."""
    from inventory.analysis.findings import summarise

    summary = summarise(findings)
    return {
        "arn": subject.arn,
        "kind": "finding",
        "subject_kind": subject.kind,
        "name": subject.name,
        "account_id": subject.account_id,
        "worst": summary["worst"],
        "count": summary["count"],
        "findings": {f["id"]: {k: v for k, v in f.items() if k != "id"} for f in findings},
    }
