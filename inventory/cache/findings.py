"""Where findings bookkeeping lives in Redis: document analyses, subject keys, pending accounts.

The findings themselves are an ordinary durable partition kind (``finding``, one partition per
account, one record per subject with findings) written by ``Store.replace_partition``, so they
reach DynamoDB, the other regions and the change history like any resource. This module keeps
what makes the analysis incremental:

- ``docs``: document key (kind + content hash) -> its analysis, shared by every subject;
- ``keys:<account>``: subject ARN -> the content key its findings were computed from;
- ``pending``: accounts whose cached data changed since their last analysis (``*``: all);
- ``counts``: account -> finding counts by severity and category (for the exporter);
- ``stats``: how many subjects and documents were analysed, ever (tests and benchmarks).

:class:`FindingsListener` is a :class:`~inventory.cache.store.PartitionListener`: a change to an
account's IAM or resource partitions marks the account pending.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

from inventory.cache.keys import ACCOUNT, AWS_MANAGED_POLICY, FINDING, IAM_KINDS, Keys, Partition
from inventory.registry import RESOURCE_POLICY_KINDS

__all__ = ["FINDING", "FindingsListener", "FindingsState"]
ALL = "*"
#: Kinds whose changes can change findings.
WATCHED_KINDS = frozenset({*IAM_KINDS, *RESOURCE_POLICY_KINDS})
#: Kinds every account's findings depend on (AWS managed policies, the organisation).
SHARED_KINDS = frozenset({AWS_MANAGED_POLICY, ACCOUNT})


class FindingsState:
    """The Redis side of incremental analysis (see the module docstring)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.prefix = f"{keys.prefix}fd:"

    def docs_key(self) -> str:
        return f"{self.prefix}docs"

    def subject_keys_key(self, account_id: str) -> str:
        return f"{self.prefix}keys:{account_id}"

    def pending_key(self) -> str:
        return f"{self.prefix}pending"

    def counts_key(self) -> str:
        return f"{self.prefix}counts"

    def stats_key(self) -> str:
        return f"{self.prefix}stats"

    # --- document analyses ------------------------------------------------------------------
    def documents(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = list(keys)
        if not wanted:
            return {}
        values = self.client.hmget(self.docs_key(), wanted)
        return {k: json.loads(v) for k, v in zip(wanted, values, strict=True) if v is not None}

    def put_documents(self, analyses: Mapping[str, Mapping[str, Any]]) -> None:
        if analyses:
            mapping = {k: json.dumps(v, sort_keys=True) for k, v in analyses.items()}
            self.client.hset(self.docs_key(), mapping=mapping)

    # --- subject keys -----------------------------------------------------------------------
    def subject_keys(self, account_id: str) -> dict[str, str]:
        return dict(self.client.hgetall(self.subject_keys_key(account_id)))

    def set_subject_keys(
        self, account_id: str, keys: Mapping[str, str], counts: Mapping[str, Any]
    ) -> None:
        """Replace an account's subject keys and counts in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.subject_keys_key(account_id))
        if keys:
            pipe.hset(self.subject_keys_key(account_id), mapping=dict(keys))
        pipe.hset(self.counts_key(), account_id, json.dumps(counts, sort_keys=True))
        pipe.execute()

    def counts(self) -> dict[str, dict[str, Any]]:
        """Account -> {"severity": {...}, "category": {...}}, as last analysed."""
        return {a: json.loads(v) for a, v in self.client.hgetall(self.counts_key()).items()}

    # --- pending accounts ---------------------------------------------------------------------
    def mark(self, *accounts: str) -> None:
        if accounts:
            self.client.sadd(self.pending_key(), *accounts)

    def take_pending(self) -> set[str]:
        """The pending accounts, emptied atomically (whoever takes them analyses them)."""
        pipe = self.client.pipeline(transaction=True)
        pipe.smembers(self.pending_key())
        pipe.delete(self.pending_key())
        members, _ = pipe.execute()
        return set(members)

    def pending(self) -> set[str]:
        return set(self.client.smembers(self.pending_key()))

    # --- statistics ---------------------------------------------------------------------------
    def count_analyses(self, subjects: int, documents: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(self.stats_key(), "subjects", subjects)
        pipe.hincrby(self.stats_key(), "documents", documents)
        pipe.execute()

    def stats(self) -> dict[str, int]:
        raw = self.client.hgetall(self.stats_key())
        return {"subjects": int(raw.get("subjects", 0)), "documents": int(raw.get("documents", 0))}


class FindingsListener:
    """Marks an account pending when a partition its findings depend on changes."""

    def __init__(self, state: FindingsState) -> None:
        self.state = state

    def partition_changed(
        self, p: Partition, upserts: Mapping[str, str], removed: list[str]
    ) -> None:
        if p.kind in WATCHED_KINDS:
            self.state.mark(p.account_id)
        elif p.kind in SHARED_KINDS:
            self.state.mark(ALL)
