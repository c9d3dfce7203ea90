"""What the web tier keeps in Redis besides the cache: login sessions, rate-limit windows and
the one queued refresh per task and account."""

from __future__ import annotations

import hashlib
import logging
import math
import secrets

import redis

from inventory.cache.keys import Keys

log = logging.getLogger(__name__)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class LoginSessions:
    """Server-side sessions: the cookie holds a random id, Redis what it stands for.

    Only the id's SHA-256 is stored, so whoever reads Redis cannot use a session.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def start(self, token_digest: str, seconds: int) -> str:
        """A new session for the token with this digest; returns its id."""
        session_id = secrets.token_urlsafe(32)
        self.client.set(self.keys.login_session(_hash(session_id)), token_digest, ex=seconds)
        return session_id

    def token_digest(self, session_id: str) -> str | None:
        """The digest of the token a live session signed in with; None once it ended."""
        value = self.client.get(self.keys.login_session(_hash(session_id)))
        return None if value is None else str(value)

    def end(self, session_id: str) -> None:
        self.client.delete(self.keys.login_session(_hash(session_id)))


class RateLimiter:
    """A fixed-window counter per (scope, caller): ``SET NX EX`` then ``INCR``, in one MULTI."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def hit(self, scope: str, caller: str, limit: int, seconds: int, now: float) -> int | None:
        """Count one request: None within ``limit``, else the seconds until the next window."""
        window = int(now // seconds)
        key = self.keys.rate_window(scope, _hash(caller), window)
        pipe = self.client.pipeline(transaction=True)
        pipe.set(key, 0, ex=seconds, nx=True)
        pipe.incr(key)
        count = int(pipe.execute()[1])
        if count <= limit:
            return None
        return max(1, math.ceil((window + 1) * seconds - now))


class RefreshClaims:
    """At most one refresh per (task, account) queued or running: the claim holds its task id."""

    # Delete the claim only if it still names this task (a later refresh may own it by now).
    _RELEASE = (
        "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
        "return 0"
    )

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def claim(self, task: str, account_id: str, task_id: str, seconds: int) -> str | None:
        """Claim for ``task_id``; None when claimed, else the id of the refresh holding it."""
        key = self.keys.refresh_claim(task, account_id)
        for _ in range(3):  # the holder's claim may expire between the two calls
            if self.client.set(key, task_id, ex=seconds, nx=True):
                return None
            holder = self.client.get(key)
            if holder is not None:
                return str(holder)
        raise redis.RedisError(f"the refresh claim {key} kept expiring")

    def release(self, task: str, account_id: str, task_id: str) -> bool:
        """Drop the claim if ``task_id`` holds it (a worker calls this when that task ends)."""
        key = self.keys.refresh_claim(task, account_id)
        return bool(self.client.eval(self._RELEASE, 1, key, task_id))

    def release_quietly(self, task: str, account_id: str | None, task_id: str) -> None:
        """Free the claim of a per-account run that has ended (called by the worker).

        Only the run the claim names frees it; a scheduled run of the same task and account
        leaves a queued refresh's claim alone. Without this call the claim simply expires, so a
        Redis error is only logged.
        """
        if account_id is None:
            return
        try:
            self.release(task, account_id, task_id)
        except redis.RedisError as exc:
            log.warning("could not free the refresh claim of %s %s: %s", task, account_id, exc)


def release_refresh(
    client: redis.Redis, keys: Keys, task: str, account_id: str | None, task_id: str
) -> None:
    """Free the web's refresh claim of a run that has ended (see RefreshClaims.release_quietly)."""
    RefreshClaims(client, keys).release_quietly(task, account_id, task_id)
