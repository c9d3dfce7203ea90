"""Policy change requests: list (Redis read model), create, approve, reject, cancel (DynamoDB)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import tornado.web

from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, POLICY_REQUEST, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.cache.requests import (
    APPROVED,
    CANCELLED,
    PENDING,
    REJECTED,
    PolicyRequests,
    RequestConflict,
)
from inventory.cache.store import canonical_json, content_hash
from inventory.web.api import operation
from inventory.web.base import AuthenticatedHandler
from inventory.web.models.requests import (
    REQUEST_ID,
    NewRequest,
    PolicyRequest,
    RequestPage,
    RequestsQuery,
    Review,
)

READ_MODEL = Partition(POLICY_REQUEST, ALL_ACCOUNTS, GLOBAL)
ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)

T = TypeVar("T")


def store_in_read_model(
    cache: RedisCache, requests: PolicyRequests, record: dict[str, Any], now: float
) -> None:
    """Write one changed request into the Redis read model as ``cache_policy_requests`` would.

    Only that record is written: a full rebuild from a scan could drop a request another
    process has just created (scans are eventually consistent). A partition Redis has never
    held is filled from the table first, so it is never marked complete with one record.
    """
    cached = cache.load_hashes(READ_MODEL)
    records: dict[str, dict[str, Any]] = {}
    if cached is None:
        records = {r["arn"]: r for r in requests.all()}
        complete = True
    else:
        meta = cache.meta(READ_MODEL)
        complete = meta.complete if meta is not None else True
    records[record["arn"]] = record
    encoded: dict[str, tuple[str, str]] = {}
    for arn, item in records.items():
        document = canonical_json(item)
        encoded[arn] = (document, content_hash(document))
    cached = cached or {}
    upserts = {arn: v for arn, v in encoded.items() if cached.get(arn) != v[1]}
    count = len(cached.keys() | encoded.keys())
    cache.apply(READ_MODEL, upserts, [], encoded, now, complete, count)


def account_of(body: NewRequest, cache: RedisCache) -> str:
    """The account of a request's resource: the ARN's, else the cached record's (S3 bucket ARNs
    carry none); 400 naming 'arn' when neither knows it."""
    found = body.account_in_arn()
    if found:
        return found
    cached = cache.get(body.arn)
    account_id = str(cached.get("account_id") or "") if cached else ""
    if not ACCOUNT_ID.fullmatch(account_id):
        raise tornado.web.HTTPError(
            400, "field 'arn' has no account id and is not a cached resource"
        )
    return account_id


def same_person(a: str, b: str) -> bool:
    """Names as a proxy or a token gives them: the same user in any letter case."""
    return a.casefold() == b.casefold()


def matches(q: RequestsQuery, r: dict[str, Any]) -> bool:
    return (
        (not q.status or r.get("status") == q.status)
        and (not q.account or r.get("account_id") == q.account)
        and (not q.arn or r.get("resource_arn") == q.arn)
        and (not q.requester or same_person(str(r.get("requester", "")), q.requester))
    )


def list_page(cache: RedisCache, q: RequestsQuery) -> dict[str, Any]:
    """One page, newest first: filtered, sorted and counted on the summaries; then only the
    page's own requests are read (documents can be large)."""
    found = [(key, s) for key, s in cache.summaries(READ_MODEL).items() if matches(q, s)]
    found.sort(key=lambda f: (f[1].get("created_at") or 0, f[1].get("id") or ""), reverse=True)
    keys = [key for key, _ in found[q.offset : q.offset + q.limit]]
    items = cache.get_items(READ_MODEL, keys)
    return {
        "requests": [json.loads(items[k]) for k in keys if k in items],
        "total": len(found),
        "limit": q.limit,
        "offset": q.offset,
    }


def open_requests(cache: RedisCache, requester: str) -> int:
    """How many pending requests ``requester`` has."""
    return sum(
        1
        for s in cache.summaries(READ_MODEL).values()
        if s.get("status") == PENDING and same_person(str(s.get("requester", "")), requester)
    )


class RequestsBase(AuthenticatedHandler):
    """The requests table (503 when not configured) and its read model."""

    def table(self) -> PolicyRequests:
        if self.readers.requests is None:
            raise tornado.web.HTTPError(503, "policy requests are not configured")
        return self.readers.requests

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """DynamoDB calls block (and retry): off the IOLoop."""
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    async def stored(self, record: dict[str, Any]) -> None:
        """The changed record into the read model, so the list shows it at once."""
        await self.blocking(
            store_in_read_model, self.readers.cache, self.table(), record, time.time()
        )


class RequestsHandler(RequestsBase):
    """``GET /api/v1/requests``: filtered, newest first; ``POST``: create a request."""

    @operation(RequestPage, query=RequestsQuery)
    async def get(self) -> None:
        """Policy requests, newest first."""
        query = self.query(RequestsQuery)
        page = await self.blocking(list_page, self.readers.cache, query)
        self.write_model(RequestPage.model_validate(page))

    @operation(PolicyRequest, body=NewRequest, status=201, errors=(409, 429))
    async def post(self) -> None:
        """Ask for a policy change on a resource."""
        table = self.table()
        web = self.inventory_settings.web
        requester = self.identity.name
        self.rate_limit("policy requests", f"identity {requester}", web.request_rate)
        body = self.body(NewRequest)
        account_id = account_of(body, self.readers.cache)
        if await self.blocking(open_requests, self.readers.cache, requester) >= (
            web.max_open_requests
        ):
            raise tornado.web.HTTPError(
                409,
                f"you have {web.max_open_requests} pending requests, the most one may have "
                "(web.max_open_requests): cancel one or wait for a review",
            )
        record = await self.blocking(
            lambda: table.create(
                arn=body.arn,
                account_id=account_id,
                requester=requester,
                justification=body.justification,
                policy_document=body.policy_document,
                now=time.time(),
            )
        )
        await self.stored(record)
        self.set_header("Location", f"/api/v1/requests/{record['id']}")
        self.write_model(PolicyRequest.model_validate(record))


class RequestHandler(RequestsBase):
    """``GET /api/v1/requests/<id>``: one request from the read model."""

    @operation(PolicyRequest, errors=(404,))
    def get(self, request_id: str) -> None:
        """One policy request."""
        found = self.readers.cache.get_items(READ_MODEL, [request_id])
        if not found:
            raise tornado.web.HTTPError(404, "no request with that id")
        self.write_model(PolicyRequest.model_validate_json(found[request_id]))


class ReviewHandler(RequestsBase):
    """``POST /api/v1/requests/<id>/(approve|reject|cancel)``: move a pending request on."""

    @operation(PolicyRequest, body=Review, errors=(404, 409))
    async def post(self, request_id: str, action: str) -> None:
        """Approve or reject (an admin only), or cancel (the requester only), a pending request."""
        table = self.table()
        if action in ("approve", "reject"):
            identity = self.require_groups(*self.inventory_settings.web.admin_groups)
        else:
            identity = self.identity
        comment = self.body(Review).comment
        current = await self.blocking(table.get, request_id)
        if current is None:
            raise tornado.web.HTTPError(404, "no request with that id")
        if action == "cancel" and current["requester"] != identity.name:
            raise tornado.web.HTTPError(403, "only the requester may cancel a request")
        if action == "approve" and same_person(current["requester"], identity.name):
            raise tornado.web.HTTPError(403, "nobody may approve their own request")
        status = {"approve": APPROVED, "reject": REJECTED, "cancel": CANCELLED}[action]
        try:
            record = await self.blocking(
                lambda: table.set_status(request_id, status, identity.name, time.time(), comment)
            )
        except RequestConflict:
            latest = await self.blocking(table.get, request_id)
            if latest is None:
                raise tornado.web.HTTPError(404, "no request with that id") from None
            raise tornado.web.HTTPError(
                409, f"request is {latest['status']}, not pending"
            ) from None
        await self.stored(record)
        self.write_model(PolicyRequest.model_validate(record))


ROUTES = [
    (r"/api/v1/requests", RequestsHandler),
    (rf"/api/v1/requests/(?P<request_id>{REQUEST_ID})", RequestHandler),
    (
        rf"/api/v1/requests/(?P<request_id>{REQUEST_ID})/(?P<action>approve|reject|cancel)",
        ReviewHandler,
    ),
]
