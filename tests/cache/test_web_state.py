"""The web tier's Redis state on a real redis-server: rate windows, refresh claims, sessions."""

from __future__ import annotations

import uuid

import pytest
import redis

from inventory.cache.keys import Keys
from inventory.cache.web_state import LoginSessions, RateLimiter, RefreshClaims, release_refresh


@pytest.fixture
def client(redis_server) -> redis.Redis:
    return redis.Redis(port=redis_server.port, db=5, decode_responses=True)


@pytest.fixture
def keys() -> Keys:
    """Keys under a prefix of their own, so no other test's windows or claims are seen."""
    return Keys(prefix=f"t{uuid.uuid4().hex[:8]}:")


def test_a_fixed_window_allows_the_limit_then_says_when_the_next_window_opens(client, keys):
    limiter = RateLimiter(client, keys)
    within = [limiter.hit("logins", "alice", 3, 60, 1200.0 + n) for n in range(3)]
    over = limiter.hit("logins", "alice", 3, 60, 1219.5)
    other = limiter.hit("logins", "bob", 3, 60, 1219.5)
    next_window = limiter.hit("logins", "alice", 3, 60, 1260.0)
    assert within == [None, None, None]
    assert over == 41  # 1260 - 1219.5, rounded up
    assert other is None
    assert next_window is None


def test_a_window_expires_with_its_length(client, keys):
    RateLimiter(client, keys).hit("refreshes", "alice", 5, 60, 600.0)
    (key,) = client.scan_iter(match=f"{keys.prefix}*")
    assert 55 <= client.ttl(key) <= 60


def test_a_claim_is_held_by_the_first_task_and_freed_only_by_it(client, keys):
    claims = RefreshClaims(client, keys)
    assert claims.claim("inventory.t", "111122223333", "first", 60) is None
    assert claims.claim("inventory.t", "111122223333", "second", 60) == "first"
    assert claims.claim("inventory.t", "444455556666", "third", 60) is None
    assert claims.release("inventory.t", "111122223333", "second") is False
    assert claims.claim("inventory.t", "111122223333", "fourth", 60) == "first"
    release_refresh(client, keys, "inventory.t", "111122223333", "first")
    assert claims.claim("inventory.t", "111122223333", "fifth", 60) is None


def test_release_without_an_account_or_with_redis_down_does_not_raise(keys):
    down = redis.Redis(port=1, socket_connect_timeout=0.2)
    release_refresh(down, keys, "inventory.t", "111122223333", "x")
    release_refresh(down, keys, "inventory.t", None, "x")


def test_a_session_resolves_until_it_ends_and_redis_never_holds_its_id(client, keys):
    sessions = LoginSessions(client, keys)
    session = sessions.start("digest-of-token", 3600)
    stored = {k: client.get(k) for k in client.scan_iter(match=f"{keys.prefix}*")}
    assert sessions.token_digest(session) == "digest-of-token"
    assert list(stored.values()) == ["digest-of-token"]
    assert not any(session in k for k in stored)
    sessions.end(session)
    assert sessions.token_digest(session) is None
