"""Findings tasks: analyse an account's changed subjects; send pending or all accounts out.

Only subjects whose content key moved are analysed, and each distinct document once (its
analysis is kept by content hash), so a sweep in which nothing changed analyses nothing.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from celery import group, shared_task

from inventory.analysis.findings import SEVERITIES, Organisation, summarise
from inventory.analysis.subjects import (
    Subject,
    analyse_source,
    build_subjects,
    documents_to_analyse,
    record_of,
    subject_findings,
)
from inventory.cache.findings import ALL, FINDING, WATCHED_KINDS, FindingsState
from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    AWS_MANAGED_POLICY,
    GLOBAL,
    IAM_KINDS,
    IAM_POLICY,
    Partition,
)
from inventory.registry import RESOURCE_POLICY_KINDS
from inventory.runtime import Runtime
from inventory.tasks.base import (
    AWS,
    FANOUT,
    FANOUT_HARD_LIMIT,
    FANOUT_SOFT_LIMIT,
    MAINTENANCE,
    InventoryTask,
)

log = logging.getLogger(__name__)

FOR_ACCOUNT = "inventory.analyse_findings_for_account"
AWS_ACCOUNT = "aws"  # the partition "account" of AWS managed policy documents


def state(runtime: Runtime) -> FindingsState:
    return runtime.findings


def organisation(runtime: Runtime) -> Organisation:
    """Every account in the mapping, whatever its status, is inside the organisation."""
    accounts = runtime.redis_cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
    return Organisation(frozenset(str(a["id"]) for a in accounts.values() if a.get("id")))


def load_account(runtime: Runtime, account_id: str) -> dict[str, dict[str, dict[str, Any]]]:
    """An account's IAM records and policy-bearing resources, by kind and ARN."""
    cache = runtime.redis_cache
    records = {kind: cache.items(Partition(kind, account_id, GLOBAL)) for kind in IAM_KINDS}
    for kind in RESOURCE_POLICY_KINDS:
        records[kind] = {}
        for p in cache.partitions(kind):
            if p.account_id == account_id:
                records[kind].update(cache.items(p))
    return records


def managed_documents(
    runtime: Runtime, records: Mapping[str, Mapping[str, Mapping[str, Any]]]
) -> dict[str, dict[str, Any]]:
    """Managed policy ARN -> default document: the account's own, and AWS's it refers to."""
    found = {arn: r["document"] for arn, r in records[IAM_POLICY].items() if r.get("document")}
    aws = sorted(a for a in _referenced(records) if ":iam::aws:policy/" in a)
    raw = runtime.redis_cache.get_items(Partition(AWS_MANAGED_POLICY, AWS_ACCOUNT, GLOBAL), aws)
    for arn, document in raw.items():
        record = json.loads(document)
        if record.get("document"):
            found[arn] = record["document"]
    return found


def _referenced(records: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> set[str]:
    """Managed policy ARNs the account's principals attach or take as their boundary."""
    wanted: set[str] = set()
    for kind in IAM_KINDS:
        for record in records[kind].values():
            wanted.update(a["arn"] for a in record.get("attached_policies") or ())
            boundary = record.get("permissions_boundary")
            if boundary:
                wanted.add(boundary["arn"])
    return wanted


def _analyses(fs: FindingsState, subjects: list[Subject]) -> tuple[dict[str, dict[str, Any]], int]:
    """The analyses the subjects need: stored ones, and the missing ones computed now."""
    wanted = documents_to_analyse(subjects)
    analyses = fs.documents(wanted)
    fresh = {k: analyse_source(s) for k, s in wanted.items() if k not in analyses}
    fs.put_documents(fresh)
    analyses.update(fresh)
    return analyses, len(fresh)


def _records(
    subjects: list[Subject],
    changed: list[Subject],
    cached: Mapping[str, dict[str, Any]],
    analyses: Mapping[str, Mapping[str, Any]],
    org: Organisation,
) -> dict[str, dict[str, Any]]:
    """The account's findings records: the cached ones of unchanged subjects, and the changed
    subjects' own (none for a subject left without findings)."""
    current = {s.arn for s in subjects}
    kept = {a: r for a, r in cached.items() if a in current}
    for subject in changed:
        found = subject_findings(subject, analyses, org)
        if found:
            kept[subject.arn] = record_of(subject, found)
        else:
            kept.pop(subject.arn, None)
    return kept


def analyse_account(runtime: Runtime, account_id: str) -> dict[str, Any]:
    """Re-analyse one account's subjects whose content key changed; store the findings."""
    started = time.perf_counter()
    fs = state(runtime)
    org = organisation(runtime)
    records = load_account(runtime, account_id)
    subjects = build_subjects(account_id, records, managed_documents(runtime, records), org)
    previous = fs.subject_keys(account_id)
    changed = [s for s in subjects if previous.get(s.arn) != s.key]
    analyses, documents = _analyses(fs, changed)
    cached = runtime.redis_cache.items(Partition(FINDING, account_id, GLOBAL))
    kept = _records(subjects, changed, cached, analyses, org)
    result = runtime.store.replace_partition(
        FINDING, account_id, GLOBAL, list(kept.values()), complete=True
    )
    findings = [f for r in kept.values() for f in r["findings"].values()]
    summary = summarise(findings)
    counts = {"severity": summary["severity"], "category": summary["category"]}
    fs.set_subject_keys(account_id, {s.arn: s.key for s in subjects}, counts)
    fs.count_analyses(len(changed), documents)
    return {
        "account_id": account_id,
        "subjects": len(subjects),
        "analysed": len(changed),
        "documents_analysed": documents,
        "with_findings": len(kept),
        "findings": {s: summary["severity"].get(s, 0) for s in SEVERITIES},
        "new_or_changed": result.created + result.updated,
        "resolved": result.removed,
        "seconds": round(time.perf_counter() - started, 3),
    }


def analysed_accounts(runtime: Runtime) -> list[str]:
    """Every account with cached IAM or resource data, or with findings to clear."""
    kinds = WATCHED_KINDS | {FINDING}
    found = {p.account_id for p in runtime.redis_cache.partitions() if p.kind in kinds}
    return sorted(found)


def pending_accounts(runtime: Runtime) -> list[str]:
    """The accounts marked pending (all of them after a shared change), emptying the mark."""
    taken = state(runtime).take_pending()
    if ALL in taken:
        return analysed_accounts(runtime)
    return sorted(taken)


def _send(task: InventoryTask, accounts: list[str]) -> dict[str, Any]:
    if not accounts:
        return {"accounts": [], "task_ids": []}
    signatures = (task.app.signature(FOR_ACCOUNT, (a,)) for a in accounts)
    result = group(signatures).apply_async()
    return {"accounts": accounts, "task_ids": [r.id for r in result.results]}


@shared_task(
    bind=True,
    base=InventoryTask,
    name=FOR_ACCOUNT,
    routing_queue=AWS,  # beside the other per-account work, off the fan-out and maintenance queues
    per_account=True,
    active_only=True,
    replicates=(FINDING,),
    soft_time_limit=900,
    time_limit=960,
)
def analyse_findings_for_account(self: InventoryTask, account_id: str) -> dict[str, Any]:
    """Cloudsplaining + Parliament + exposure checks on one account's changed subjects."""
    return analyse_account(self.runtime, account_id)


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.analyse_pending_findings",
    routing_queue=MAINTENANCE,
    active_only=True,
    soft_time_limit=FANOUT_SOFT_LIMIT,
    time_limit=FANOUT_HARD_LIMIT,
)
def analyse_pending_findings(self: InventoryTask) -> dict[str, Any]:
    """Send one analyse_findings_for_account per account whose cached data changed."""
    accounts = pending_accounts(self.runtime)
    try:
        return _send(self, accounts)
    except Exception:
        state(self.runtime).mark(*accounts)  # not sent: leave them pending for the next run
        raise


@shared_task(
    bind=True,
    base=InventoryTask,
    name="inventory.analyse_findings_across_accounts",
    routing_queue=FANOUT,
    active_only=True,
    soft_time_limit=FANOUT_SOFT_LIMIT,
    time_limit=FANOUT_HARD_LIMIT,
)
def analyse_findings_across_accounts(self: InventoryTask) -> dict[str, Any]:
    """Send one analyse_findings_for_account per account (a reconcile; unchanged = no work)."""
    return _send(self, analysed_accounts(self.runtime))
