"""Policy change requests: list (Redis read model), create, approve, reject, cancel (DynamoDB)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import tornado.web

from inventory.cache.keys import ALL_ACCOUNTS, GLOBAL, POLICY_REQUEST, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.cache.requests import (
    APPROVED,
    CANCELLED,
    PENDING,
    REJECTED,
    STATUSES,
    PolicyRequests,
    RequestConflict,
)
from inventory.cache.store import canonical_json, content_hash
from inventory.web import params
from inventory.web.base import AuthenticatedHandler

READ_MODEL = Partition(POLICY_REQUEST, ALL_ACCOUNTS, GLOBAL)
ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:[^\s\x00-\x1f\x7f]+", re.ASCII)
ACCOUNT_ID = re.compile(r"\d{12}", re.ASCII)
REQUEST_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MAX_ARN, MAX_TEXT, MAX_NAME = 2048, 2000, 256
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000

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


def parse_arn(value: Any, cache: RedisCache) -> tuple[str, str]:
    """(ARN, account id) of a request's resource; 400 naming 'arn' when it is not one."""
    match = ARN.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None or len(match.group(0)) > MAX_ARN:
        raise tornado.web.HTTPError(
            400, f"field 'arn' must be an ARN (arn:aws...) of at most {MAX_ARN} characters"
        )
    arn = match.group(0)
    if match.group(1):
        return arn, match.group(1)
    # S3 bucket ARNs carry no account: the cached record knows it.
    cached = cache.get(arn)
    account_id = str(cached.get("account_id") or "") if cached else ""
    if not ACCOUNT_ID.fullmatch(account_id):
        raise tornado.web.HTTPError(
            400, "field 'arn' has no account id and is not a cached resource"
        )
    return arn, account_id


def same_person(a: str, b: str) -> bool:
    """Names as a proxy or a token gives them: the same user in any letter case."""
    return a.casefold() == b.casefold()


def parse_text(body: dict[str, Any], field: str, required: bool) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not (1 <= len(value.strip()) <= MAX_TEXT):
        raise tornado.web.HTTPError(400, f"field '{field}' must be 1 to {MAX_TEXT} characters")
    return value.strip()


def parse_policy_document(value: Any) -> dict[str, Any]:
    """A policy document: a JSON object (or a string holding one) with a ``Statement``."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise tornado.web.HTTPError(
                400, "field 'policy_document' is a string but not valid JSON"
            ) from None
    if not isinstance(value, dict):
        raise tornado.web.HTTPError(400, "field 'policy_document' must be a JSON object")
    statement = value.get("Statement")
    if not isinstance(statement, list | dict) or not statement:
        raise tornado.web.HTTPError(400, "field 'policy_document' must have a Statement")
    return value


#: IAM's own limits, in characters other than whitespace, for the inline policies of a role, user
#: or group (all of them together) and for a managed policy:
#: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
IAM_POLICY_LIMITS = {"role": 10_240, "user": 2_048, "group": 5_120, "policy": 6_144}
#: Any other resource's document: the largest IAM allows (a role's).
POLICY_LIMIT = 10_240


def policy_limit(arn: str) -> tuple[int, str]:
    """(characters, what for) a policy document for this resource may have."""
    parts = arn.split(":", 5)
    if len(parts) == 6 and parts[2] == "iam":
        kind = parts[5].split("/", 1)[0]
        if kind in IAM_POLICY_LIMITS:
            return IAM_POLICY_LIMITS[kind], f"an IAM {kind}"
    return POLICY_LIMIT, "any policy"


def check_policy_size(document: dict[str, Any], arn: str) -> None:
    """400 when the document is larger than IAM would accept (whitespace is not counted)."""
    limit, what = policy_limit(arn)
    size = len("".join(json.dumps(document, separators=(",", ":"), ensure_ascii=False).split()))
    if size > limit:
        raise tornado.web.HTTPError(
            400,
            f"field 'policy_document' has {size:,} characters other than whitespace; "
            f"IAM allows {limit:,} for {what}",
        )


@dataclass(frozen=True)
class ListQuery:
    status: str
    account: str | None
    arn: str | None
    requester: str | None
    limit: int
    offset: int

    def matches(self, r: dict[str, Any]) -> bool:
        return (
            (not self.status or r.get("status") == self.status)
            and (not self.account or r.get("account_id") == self.account)
            and (not self.arn or r.get("resource_arn") == self.arn)
            and (not self.requester or same_person(str(r.get("requester", "")), self.requester))
        )


def list_page(cache: RedisCache, q: ListQuery) -> dict[str, Any]:
    """One page, newest first: filtered, sorted and counted on the summaries; then only the
    page's own requests are read (documents can be large)."""
    found = [(key, s) for key, s in cache.summaries(READ_MODEL).items() if q.matches(s)]
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

    def json_request(self, required: bool = True) -> dict[str, Any]:
        """The JSON object body; 415 for a body of another media type (what a form sends)."""
        if self.request.body.strip():
            media = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                raise tornado.web.HTTPError(415, "request body must be application/json")
        return self.json_body(required)

    async def stored(self, record: dict[str, Any]) -> None:
        """The changed record into the read model, so the list shows it at once."""
        await self.blocking(
            store_in_read_model, self.readers.cache, self.table(), record, time.time()
        )


class RequestsHandler(RequestsBase):
    """``GET /api/v1/requests``: filtered, newest first; ``POST``: create a request."""

    async def get(self) -> None:
        query = ListQuery(
            status=params.choice(self, "status", STATUSES, "", fold_case=True),
            account=params.account(self),
            arn=params.text(self, "arn", MAX_ARN),
            requester=params.text(self, "requester", MAX_NAME),
            limit=params.integer(self, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=params.integer(self, "offset", 0, 0, 10**9),
        )
        self.write_json(await self.blocking(list_page, self.readers.cache, query))

    async def post(self) -> None:
        table = self.table()
        web = self.inventory_settings.web
        requester = self.identity.name
        self.rate_limit("policy requests", f"identity {requester}", web.request_rate)
        body = self.json_request()
        arn, account_id = parse_arn(body.get("arn"), self.readers.cache)
        justification = parse_text(body, "justification", required=True)
        assert justification is not None
        document = parse_policy_document(body.get("policy_document"))
        check_policy_size(document, arn)
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
                arn=arn,
                account_id=account_id,
                requester=requester,
                justification=justification,
                policy_document=document,
                now=time.time(),
            )
        )
        await self.stored(record)
        self.set_header("Location", f"/api/v1/requests/{record['id']}")
        self.write_json(record, 201)


class RequestHandler(RequestsBase):
    """``GET /api/v1/requests/<id>``: one request from the read model."""

    def get(self, request_id: str) -> None:
        found = self.readers.cache.get_items(READ_MODEL, [request_id])
        if not found:
            raise tornado.web.HTTPError(404, "no request with that id")
        self.write_json(json.loads(found[request_id]))


class ReviewHandler(RequestsBase):
    """``POST /api/v1/requests/<id>/(approve|reject|cancel)``: move a pending request on."""

    async def post(self, request_id: str, action: str) -> None:
        table = self.table()
        if action in ("approve", "reject"):
            identity = self.require_groups(*self.inventory_settings.web.admin_groups)
        else:
            identity = self.identity
        comment = parse_text(self.json_request(required=False), "comment", required=False)
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
        self.write_json(record)


ROUTES = [
    (r"/api/v1/requests", RequestsHandler),
    (rf"/api/v1/requests/({REQUEST_ID})", RequestHandler),
    (rf"/api/v1/requests/({REQUEST_ID})/(approve|reject|cancel)", ReviewHandler),
]
