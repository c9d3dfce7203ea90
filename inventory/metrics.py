"""Last success and last failure of every task, per account, kept in Redis for every process."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis

from inventory.cache.keys import ALL_ACCOUNTS, Keys, outcome_field

OK = "ok"
FAILED = "failed"
RETRY = "retry"
RUNTIME_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)
#: Seconds from a CloudTrail change event to the refreshed resource in the cache.
EVENT_LAG_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
#: Why a change event is dropped without a read: a message that is no change we follow, an
#: event id already handled, an account not synced, an event older than our last read.
EVENT_DROP_REASONS = ("not_a_change", "duplicate", "not_synced", "stale")


@dataclass(frozen=True)
class TaskStatus:
    """Freshness of one task for one account (``all`` for tasks not tied to an account)."""

    task: str
    account_id: str
    last_success: float | None
    last_failure: float | None
    last_error: str | None


class TaskOutcomes:
    """Record and read task outcomes; one pipelined round trip per outcome."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def record(
        self,
        task: str,
        account_id: str | None,
        outcome: str,
        now: float,
        error: str | None = None,
    ) -> None:
        name = outcome_field(task, account_id)
        pipe = self.client.pipeline(transaction=False)
        if outcome == OK:
            pipe.hset(self.keys.last_success(), name, now)
        else:
            pipe.hset(self.keys.last_failure(), name, now)
            pipe.hset(self.keys.last_error(), name, (error or "")[:500])
        pipe.hincrby(self.keys.outcomes(), f"{name}|{outcome}", 1)
        pipe.execute()

    def restore(self, entries: Iterable[tuple[str, str, tuple[Any, Any, Any]]]) -> None:
        """Outcomes recorded elsewhere (the active region): (task, account, (success, failure,
        error)) each, written as they were, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for task, account_id, (success, failure, error) in entries:
            name = outcome_field(task, account_id)
            if success is not None:
                pipe.hset(self.keys.last_success(), name, success)
            if failure is not None:
                pipe.hset(self.keys.last_failure(), name, failure)
                pipe.hset(self.keys.last_error(), name, error or "")
        pipe.execute()

    def set_last_success_gauge(self, gauge: dict[str, float]) -> None:
        """Seconds since each task's last success (ConsoleMe's per-task gauge)."""
        if gauge:
            self.client.hset(self.keys.last_success_gauge(), mapping=gauge)

    def record_runtime(self, task: str, seconds: float) -> None:
        """One run's duration into cumulative histogram buckets (read by the exporter)."""
        pipe = self.client.pipeline(transaction=False)
        for bound in RUNTIME_BUCKETS:
            if seconds <= bound:
                pipe.hincrby(self.keys.runtimes(), f"{task}|{bound:g}", 1)
        pipe.hincrby(self.keys.runtimes(), f"{task}|+Inf", 1)
        pipe.hincrbyfloat(self.keys.runtimes(), f"{task}|sum", seconds)
        pipe.execute()

    def runtimes(self) -> dict[str, dict[str, float]]:
        """task -> {bucket bound ('0.5', ..., '+Inf') or 'sum': value}; buckets are cumulative."""
        result: dict[str, dict[str, float]] = {}
        for name, value in self.client.hgetall(self.keys.runtimes()).items():
            task, _, bucket = name.rpartition("|")
            result.setdefault(task, {})[bucket] = float(value)
        return result

    def status(self) -> list[TaskStatus]:
        """Every task/account pair that has an outcome, sorted."""
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(self.keys.last_success())
        pipe.hgetall(self.keys.last_failure())
        pipe.hgetall(self.keys.last_error())
        success, failure, errors = pipe.execute()
        result = []
        for name in sorted(set(success) | set(failure)):
            task, _, account = name.partition("|")
            result.append(
                TaskStatus(
                    task=task,
                    account_id=account or ALL_ACCOUNTS,
                    last_success=float(success[name]) if name in success else None,
                    last_failure=float(failure[name]) if name in failure else None,
                    last_error=errors.get(name),
                )
            )
        return result

    def counts(self) -> dict[tuple[str, str, str], int]:
        """(task, account, outcome) -> count."""
        raw = self.client.hgetall(self.keys.outcomes())
        result = {}
        for name, value in raw.items():
            task, account, outcome = name.split("|")
            result[(task, account, outcome)] = int(value)
        return result
