"""What event-driven refresh remembers in Redis: events handled, reads made, lag, locks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from inventory.cache.keys import Keys, Partition
from inventory.metrics import EVENT_LAG_BUCKETS


class EventLedger:
    """Event ids already handled, when each resource part was last read, the lag histogram."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def seen(self, event_ids: Iterable[str]) -> set[str]:
        """Which of these event ids were handled before."""
        ids = list(dict.fromkeys(event_ids))
        pipe = self.client.pipeline(transaction=False)
        for event_id in ids:
            pipe.exists(self.keys.event_seen(event_id))
        return {i for i, found in zip(ids, pipe.execute(), strict=True) if found}

    def mark_seen(self, event_ids: Iterable[str], ttl: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        for event_id in set(event_ids):
            pipe.set(self.keys.event_seen(event_id), 1, ex=ttl)
        pipe.execute()

    def last_reads(self, fields: list[str]) -> dict[str, float]:
        """When each ``<arn>|<aspect>`` (or ``<arn>|*``, a whole read) was last read."""
        if not fields:
            return {}
        values = self.client.hmget(self.keys.event_applied(), fields)
        return {f: float(v) for f, v in zip(fields, values, strict=True) if v is not None}

    def record(self, read_at: Mapping[str, float], lags: Iterable[float]) -> None:
        """When each resource was read, and each applied event's lag into the histogram."""
        pipe = self.client.pipeline(transaction=False)
        if read_at:
            pipe.hset(self.keys.event_applied(), mapping=dict(read_at))
        for lag in lags:
            for bound in EVENT_LAG_BUCKETS:
                if lag <= bound:
                    pipe.hincrby(self.keys.event_lag(), f"{bound:g}", 1)
            pipe.hincrby(self.keys.event_lag(), "+Inf", 1)
            pipe.hincrbyfloat(self.keys.event_lag(), "sum", lag)
        pipe.execute()

    def prune_reads(self, older_than: float) -> int:
        """Forget read times older than the de-duplication window (they would only grow)."""
        key = self.keys.event_applied()
        old = [f for f, t in self.client.hscan_iter(key, count=1000) if float(t) < older_than]
        for start in range(0, len(old), 1000):
            self.client.hdel(key, *old[start : start + 1000])
        return len(old)

    def account_lock(self, account_id: str, timeout: float, wait: float) -> Any:
        """The lock that keeps one event refresh of an account at a time."""
        return self.client.lock(
            self.keys.event_lock(account_id), timeout=timeout, blocking_timeout=wait
        )

    def find_by_name(self, p: Partition, segment: str, name: str) -> str | None:
        """The ARN in a partition of a principal named without its path (``role/a/b/name``)."""
        suffix = f":{segment}/"
        for arn in self.client.hkeys(self.keys.hashes(p)):
            if suffix in arn and arn.rsplit("/", 1)[-1] == name:
                return str(arn)
        return None
