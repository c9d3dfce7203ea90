"""``make_app(settings, readers)``: the Tornado web tier (health, and a small authenticated API)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
import tornado.web

from inventory.cache.keys import ACCOUNT, ALL_ACCOUNTS, GLOBAL, Partition
from inventory.cache.redis_cache import RedisCache
from inventory.metrics import TaskOutcomes
from inventory.settings import Settings

if TYPE_CHECKING:
    from inventory.exporter import InventoryCollector


@dataclass(frozen=True)
class Readers:
    """What handlers may read: the Redis cache and task outcomes (never AWS)."""

    cache: RedisCache
    outcomes: TaskOutcomes
    #: The Prometheus collector behind ``/metrics``; None answers 404.
    metrics: InventoryCollector | None = None


class BaseHandler(tornado.web.RequestHandler):
    """JSON errors from one place; no stack traces, ever."""

    def initialize(self, settings: Settings, readers: Readers) -> None:
        self.inventory_settings = settings
        self.readers = readers

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, redis.RedisError):
            status_code, reason = 503, "cache unavailable"
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            reason = exc.log_message
        else:
            reason = self._reason
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": reason, "status": status_code}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, redis.RedisError):
            self.set_status(503)
        super().log_exception(typ, value, tb)


class AuthenticatedHandler(BaseHandler):
    """Requires ``Authorization: Bearer <token>`` whose SHA-256 is configured."""

    def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise tornado.web.HTTPError(401, "authentication required")
        digest = hashlib.sha256(token.strip().encode()).hexdigest()
        if not any(
            hmac.compare_digest(digest, known)
            for known in self.inventory_settings.web.api_token_hashes
        ):
            raise tornado.web.HTTPError(401, "invalid token")


class HealthHandler(BaseHandler):
    def get(self) -> None:
        self.write_json({"status": "ok"})

    def head(self) -> None:
        self.set_status(200)


class ReadyHandler(BaseHandler):
    def get(self) -> None:
        try:
            self.readers.cache.client.ping()
            partitions = len(self.readers.cache.partitions())
        except redis.RedisError:
            self.write_json({"status": "unavailable", "redis": False}, 503)
            return
        status = 200 if partitions else 503
        self.write_json(
            {"status": "ready" if partitions else "empty", "partitions": partitions}, status
        )


class ResourceHandler(AuthenticatedHandler):
    """``GET /api/v1/resource?arn=``: one cached record."""

    def get(self) -> None:
        arn = self.get_query_argument("arn", "").strip()
        if not arn.startswith("arn:") or len(arn) > 2048:
            raise tornado.web.HTTPError(400, "parameter 'arn' must be an ARN")
        record = self.readers.cache.get(arn)
        if record is None:
            raise tornado.web.HTTPError(404, "no cached resource with that ARN")
        self.write_json(record)


class PartitionsHandler(AuthenticatedHandler):
    """``GET /api/v1/partitions``: every cached partition with its freshness."""

    def get(self) -> None:
        rows = []
        for p in self.readers.cache.partitions():
            meta = self.readers.cache.meta(p)
            rows.append(
                {
                    "kind": p.kind,
                    "account_id": p.account_id,
                    "region": p.region,
                    "count": meta.count if meta else 0,
                    "refreshed_at": meta.refreshed_at if meta else None,
                    "complete": meta.complete if meta else None,
                }
            )
        self.write_json({"partitions": rows})


class AccountsHandler(AuthenticatedHandler):
    """``GET /api/v1/accounts``: the account mapping."""

    def get(self) -> None:
        items = self.readers.cache.items(Partition(ACCOUNT, ALL_ACCOUNTS, GLOBAL))
        self.write_json({"accounts": sorted(items.values(), key=lambda a: a["id"])})


class MetricsHandler(AuthenticatedHandler):
    """``GET /metrics``: the Prometheus exposition, read from Redis on every scrape."""

    async def get(self) -> None:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        collector = self.readers.metrics
        if collector is None:
            raise tornado.web.HTTPError(404, "metrics are not enabled")
        # Redis reads block: off the IOLoop. A Redis failure is inventory_exporter_up 0, not 503.
        body = await asyncio.get_running_loop().run_in_executor(
            None, generate_latest, collector.registry
        )
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, "not found")


def make_app(settings: Settings, readers: Readers) -> tornado.web.Application:
    deps = {"settings": settings, "readers": readers}
    return tornado.web.Application(
        [
            (r"/healthz", HealthHandler, deps),
            (r"/readyz", ReadyHandler, deps),
            (r"/api/v1/resource", ResourceHandler, deps),
            (r"/api/v1/partitions", PartitionsHandler, deps),
            (r"/api/v1/accounts", AccountsHandler, deps),
            (r"/metrics", MetricsHandler, deps),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        serve_traceback=False,
    )
