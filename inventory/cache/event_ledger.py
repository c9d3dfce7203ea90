"""What event-driven refresh remembers in Redis: events handled, reads made, lag, locks,
the consumers' heartbeats and the event counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from inventory.cache.keys import Keys, Partition
from inventory.metrics import EVENT_LAG_BUCKETS

#: A consumer that polled within this long is running (the beat drain skips; the exporter
#: counts it up).
CONSUMER_GONE_SECONDS = 60.0


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

    def claim(self, event_ids: Iterable[str], ttl: int) -> set[str]:
        """Which of these event ids were neither handled nor claimed before, now claimed for
        ``ttl`` seconds (SET NX: of two consumers holding one event, one gets it)."""
        ids = list(dict.fromkeys(event_ids))
        pipe = self.client.pipeline(transaction=False)
        for event_id in ids:
            pipe.set(self.keys.event_seen(event_id), "claimed", ex=ttl, nx=True)
        return {i for i, won in zip(ids, pipe.execute(), strict=True) if won}

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

    def record(
        self,
        read_at: Mapping[str, float],
        lags: Iterable[float],
        counts: Mapping[str, int] | None = None,
    ) -> None:
        """When each resource was read, each applied event's lag into the histogram, and
        the counters (:meth:`count`) in the same round trip."""
        pipe = self.client.pipeline(transaction=False)
        self._count(pipe, counts or {})
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

    def count(self, counts: Mapping[str, int]) -> None:
        """Add to the event counters (``received``, ``applied``, ``dropped|<reason>``)."""
        pipe = self.client.pipeline(transaction=False)
        self._count(pipe, counts)
        pipe.execute()

    def _count(self, pipe: Any, counts: Mapping[str, int]) -> None:
        for name, value in counts.items():
            if value:
                pipe.hincrby(self.keys.event_counts(), name, value)

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.client.hgetall(self.keys.event_counts()).items()}

    def consumer_polled(self, name: str, now: float, forget_before: float) -> None:
        """A consumer's heartbeat (it is polling); consumers silent since ``forget_before``
        (killed long ago, their name never comes back) are forgotten."""
        key = self.keys.event_consumers()
        old = [c for c, t in self.client.hgetall(key).items() if float(t) < forget_before]
        pipe = self.client.pipeline(transaction=False)
        if old:
            pipe.hdel(key, *old)
        pipe.hset(key, name, now)
        pipe.execute()

    def consumer_stopped(self, name: str) -> None:
        """A consumer that stopped on purpose: the beat drain takes over at once."""
        self.client.hdel(self.keys.event_consumers(), name)

    def consumers(self) -> dict[str, float]:
        """Every consumer's last poll (Unix time), by name."""
        return {k: float(v) for k, v in self.client.hgetall(self.keys.event_consumers()).items()}

    def consumers_running(self, now: float) -> dict[str, float]:
        """The consumers that polled within CONSUMER_GONE_SECONDS."""
        return {c: t for c, t in self.consumers().items() if t >= now - CONSUMER_GONE_SECONDS}
