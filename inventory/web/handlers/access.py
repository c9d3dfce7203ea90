"""Login and logout; who may use which role; how fresh each account is; on-demand refresh."""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Container
from dataclasses import dataclass
from typing import Any

import tornado.web
from kombu.exceptions import OperationalError

from inventory.cache.keys import (
    ACCOUNT,
    ALL_ACCOUNTS,
    GLOBAL,
    PRINCIPAL_ACCESS,
    ROLE_ACCESS,
    Partition,
    principal_key,
)
from inventory.cache.redis_cache import PartitionMeta, RedisCache
from inventory.cache.web_state import RefreshClaims
from inventory.registry import synced_kinds
from inventory.schedule import ScheduleEntry, effective_schedule
from inventory.settings import Settings
from inventory.web import params
from inventory.web.api import operation
from inventory.web.auth import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    client_address,
    identity_for_digest,
    login_page,
    safe_next,
    session_id,
    session_value,
    token_digest,
)
from inventory.web.base import AuthenticatedHandler, BaseHandler, TaskQueue
from inventory.web.models.access import (
    EligibleQuery,
    EligibleRoles,
    Freshness,
    PrincipalsQuery,
    RefreshQueued,
    RefreshStatus,
    RefreshStatusQuery,
    RolePrincipals,
    WhoAmI,
)
from inventory.web.models.core import ByArn

#: Data older than this many schedule intervals is stale (one missed run is tolerated).
STALE_INTERVALS = 2


class LoginHandler(BaseHandler):
    """``GET /login``: the form; ``POST /login``: a valid token starts a session (a cookie).

    Attempts are rate-limited per client address, and logins per user name (each one is a
    session in Redis).
    """

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(login_page(params.raw(self, "next") or ""))

    def post(self) -> None:
        web = self.inventory_settings.web
        address = client_address(self.request.remote_ip, self.request.headers, web)
        self.rate_limit("login attempts", f"address {address}", web.login_rate)
        token, next_path = self.credentials()
        if not isinstance(token, str) or not token.strip():
            raise tornado.web.HTTPError(401, "invalid token")
        digest = token_digest(token)
        identity = identity_for_digest(digest, web, "cookie")
        if identity is None:
            raise tornado.web.HTTPError(401, "invalid token")
        self.rate_limit("logins", f"name {identity.name}", web.login_rate)
        session = self.sessions.start(digest, SESSION_SECONDS)
        self.set_cookie(
            SESSION_COOKIE,
            session_value(session, web).decode(),
            path="/",
            max_age=SESSION_SECONDS,
            httponly=True,
            secure=self.https,
            samesite="Strict",
        )
        self.redirect(safe_next(next_path if isinstance(next_path, str) else None), status=303)

    def credentials(self) -> tuple[Any, Any]:
        """(token, next) from a JSON or form body; ``next`` may also be in the query."""
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() == "application/json":
            body = self.json_body()
            token, next_path = body.get("token"), body.get("next")
        else:
            self.check_body()
            token = self.get_body_argument("token", None)
            next_path = self.get_body_argument("next", None)
        if next_path is None:
            next_path = params.raw(self, "next")
        return token, next_path


class LogoutHandler(BaseHandler):
    """``POST /logout``: end the session in Redis (a copy of the cookie is then worthless)."""

    def post(self) -> None:
        found = session_id(self.get_cookie(SESSION_COOKIE), self.inventory_settings.web)
        if found is not None:
            self.sessions.end(found)
        self.clear_cookie(
            SESSION_COOKIE, path="/", httponly=True, secure=self.https, samesite="Strict"
        )
        self.redirect("/login", status=303)


class WhoAmIHandler(AuthenticatedHandler):
    """``GET /api/v1/whoami``: the caller's name, groups and how it was identified."""

    @operation(WhoAmI)
    def get(self) -> None:
        """The caller's name, groups, how it was identified and whether it is an admin."""
        identity = self.identity
        admin = identity.in_any(self.inventory_settings.web.admin_groups)
        self.write_model(WhoAmI.model_validate(identity.public() | {"admin": admin}))


class EligibleRolesHandler(AuthenticatedHandler):
    """``GET /api/v1/roles/eligible?principal=``: role ARNs a group or user may use."""

    @operation(EligibleRoles, query=EligibleQuery)
    def get(self) -> None:
        """Role ARNs a group or user may use."""
        principal = self.query(EligibleQuery).principal.lower()
        found = self.readers.cache.get_items(
            Partition(PRINCIPAL_ACCESS, ALL_ACCOUNTS, GLOBAL), [principal_key(principal)]
        )
        roles = json.loads(next(iter(found.values())))["roles"] if found else []
        self.write_model(EligibleRoles(principal=principal, roles=sorted(roles)))


class RolePrincipalsHandler(AuthenticatedHandler):
    """``GET /api/v1/roles/principals?arn=``: the groups and users who may use a role."""

    @operation(RolePrincipals, query=PrincipalsQuery)
    def get(self) -> None:
        """The groups and users who may use a role."""
        arn = self.query(PrincipalsQuery).arn
        found = self.readers.cache.get_items(Partition(ROLE_ACCESS, ALL_ACCOUNTS, GLOBAL), [arn])
        principals = json.loads(found[arn])["principals"] if found else []
        self.write_model(RolePrincipals(arn=arn, principals=sorted(principals)))


def kind_schedules(settings: Settings) -> dict[str, ScheduleEntry]:
    """The beat entry that refreshes each per-account kind, with the settings' overrides."""
    entries = {e.name: e for e in effective_schedule(settings)}
    return {kind: entries[sync.schedule_name] for kind, sync in synced_kinds().items()}


@dataclass
class _Synced:
    """What one account's partitions of one kind say: the oldest listing, and whether any
    region has the service set up."""

    refreshed_at: float = math.inf
    enabled: bool = False

    def add(self, meta: PartitionMeta) -> None:
        self.refreshed_at = min(self.refreshed_at, meta.refreshed_at)
        self.enabled = self.enabled or meta.enabled


def _synced(cache: RedisCache, kinds: Container[str]) -> dict[tuple[str, str], _Synced]:
    """Per (account, kind): its partitions' freshness, as last written."""
    found: dict[tuple[str, str], _Synced] = defaultdict(_Synced)
    for p in cache.partitions():
        meta = cache.meta(p) if p.kind in kinds else None
        if meta is not None:
            found[(p.account_id, p.kind)].add(meta)
    return found


def kind_freshness(
    synced: _Synced | None, entry: ScheduleEntry, active: bool, now: float
) -> dict[str, Any]:
    """One account's kind: its age, and whether it is stale or not enabled at all.

    Not enabled: its beat entry is disabled, or every region's last listing found the service
    not set up (no AWS Config recorder). That is not stale, nor is an account that is not
    ACTIVE (it is never synced).
    """
    at = None if synced is None else synced.refreshed_at
    age = None if at is None else round(max(0.0, now - at), 3)
    enabled = entry.enabled and (synced is None or synced.enabled)
    expected = active and enabled
    return {
        "age": age,
        "refreshed_at": at,
        "interval_seconds": entry.every,
        "enabled": enabled,
        "stale": expected and (age is None or age > STALE_INTERVALS * entry.every),
    }


def account_freshness(cache: RedisCache, settings: Settings, now: float) -> list[dict[str, Any]]:
    """Per mapped account and kind: age of the oldest partition, whether that is stale, and
    whether the kind is enabled there (see :func:`kind_freshness`)."""
    schedules = kind_schedules(settings)
    synced = _synced(cache, schedules)
    accounts = cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL)).values()
    rows = []
    for account in sorted(accounts, key=lambda a: a["id"]):
        active = account.get("status") == "ACTIVE"
        kinds = {
            kind: kind_freshness(synced.get((account["id"], kind)), entry, active, now)
            for kind, entry in schedules.items()
        }
        rows.append(
            {
                "id": account["id"],
                "name": account.get("name"),
                "status": account.get("status"),
                "stale": any(k["stale"] for k in kinds.values()),
                "kinds": kinds,
            }
        )
    return rows


class FreshnessHandler(AuthenticatedHandler):
    """``GET /api/v1/accounts/freshness``: per account and kind, how old the cached data is."""

    @operation(Freshness)
    def get(self) -> None:
        """Per account and kind: age of the cached data and whether it is stale."""
        now = time.time()
        rows = account_freshness(self.readers.cache, self.inventory_settings, now)
        self.write_model(Freshness.model_validate({"checked_at": now, "accounts": rows}))


def refresh_task(kind: str) -> str | None:
    """The per-account task that re-syncs a kind, or None when none does."""
    sync = synced_kinds().get(kind)
    return sync.for_account_task if sync is not None else None


def partition_of(cache: RedisCache, arn: str) -> Partition | None:
    """The partition an ARN was last cached in, from the ARN index."""
    partition_id = cache.client.hget(cache.keys.arn_index(), arn)
    return None if partition_id is None else Partition.parse(str(partition_id))


class RefreshHandler(AuthenticatedHandler):
    """``POST /api/v1/refresh?arn=``: enqueue a re-sync of the account and kind of a resource.

    At most one such refresh per task and account is queued or running: a second request gets
    the first one's task id. Each identity may ask ``web.refresh_rate`` times (429 beyond).
    """

    @operation(RefreshQueued, query=ByArn, status=202, errors=(404, 429))
    async def post(self) -> None:
        """Enqueue a re-sync of the account and kind of a cached resource."""
        queue = self.readers.tasks
        if queue is None:
            raise tornado.web.HTTPError(503, "refresh is not configured")
        web = self.inventory_settings.web
        self.rate_limit("refreshes", f"identity {self.identity.name}", web.refresh_rate)
        record = self.readers.cache.get(self.query(ByArn).arn)
        if record is None:
            raise tornado.web.HTTPError(404, "no cached resource with that ARN")
        task = refresh_task(str(record.get("kind")))
        account_id = record.get("account_id")
        if task is None or not isinstance(account_id, str):
            raise tornado.web.HTTPError(
                400, f"resources of kind {record.get('kind')!r} cannot be refreshed"
            )
        requested_at = time.time()
        task_id, queued = await self.enqueue(queue, task, account_id)
        self.write_model(
            RefreshQueued(
                task_id=task_id,
                task=task,
                account_id=account_id,
                requested_at=requested_at,
                already_queued=not queued,
            )
        )

    async def enqueue(self, queue: TaskQueue, task: str, account_id: str) -> tuple[str, bool]:
        """(task id, whether it was sent now): the refresh already queued or running, else a new
        one. The message is dropped if no worker starts it within the task's time limit, so the
        claim (twice that long) outlives every copy of it; the worker frees it when it ends."""
        limit = queue.time_limit(task)
        claims = RefreshClaims(self.readers.cache.client, self.readers.cache.keys)
        task_id = str(uuid.uuid4())
        holder = claims.claim(task, account_id, task_id, int(2 * limit))
        if holder is not None:
            return holder, False
        try:
            # Publishing blocks (and retries) while the broker is unreachable: off the IOLoop.
            sent = await asyncio.get_running_loop().run_in_executor(
                None, queue.send, task, [account_id], task_id, limit
            )
        except (OperationalError, OSError):
            claims.release(task, account_id, task_id)
            raise tornado.web.HTTPError(503, "task queue unavailable") from None
        return sent, True


class RefreshStatusHandler(AuthenticatedHandler):
    """``GET /api/v1/refresh/status?arn=&since=``: has the resource's partition been re-stored?"""

    @operation(RefreshStatus, query=RefreshStatusQuery, errors=(404,))
    def get(self) -> None:
        """Whether the resource's partition was stored again since a time."""
        query = self.query(RefreshStatusQuery)
        arn, since = query.arn, query.since
        p = partition_of(self.readers.cache, arn)
        if p is None:
            raise tornado.web.HTTPError(404, "no cached resource with that ARN")
        meta = self.readers.cache.meta(p)
        refreshed_at = meta.refreshed_at if meta else None
        self.write_model(
            RefreshStatus(
                arn=arn,
                since=since,
                refreshed=refreshed_at is not None and refreshed_at > since,
                refreshed_at=refreshed_at,
            )
        )


ROUTES = [
    (r"/login", LoginHandler),
    (r"/logout", LogoutHandler),
    (r"/api/v1/whoami", WhoAmIHandler),
    (r"/api/v1/roles/eligible", EligibleRolesHandler),
    (r"/api/v1/roles/principals", RolePrincipalsHandler),
    (r"/api/v1/accounts/freshness", FreshnessHandler),
    (r"/api/v1/refresh", RefreshHandler),
    (r"/api/v1/refresh/status", RefreshStatusHandler),
]
