"""Task messages a worker refused, and the signed messages whose task has already run."""

from __future__ import annotations

import math

import redis

from inventory.cache.keys import Keys


class MessageLedger:
    """Counts refusals by reason; remembers run nonces until their seal expires (no replays)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def refused(self, reason: str) -> None:
        self.client.hincrby(self.keys.rejected_messages(), reason, 1)

    def already_run(self, nonce: str) -> bool:
        return bool(self.client.exists(self.keys.message_run(nonce)))

    def mark_run(self, nonce: str, expires: float, now: float) -> None:
        """Kept until the seal expires: after that the message is refused as expired anyway."""
        ttl = max(1, math.ceil(expires - now))
        self.client.set(self.keys.message_run(nonce), 1, ex=ttl)
