"""Shared web plumbing: what handlers read, the base handlers, JSON errors, parameters."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis
import tornado.web

from inventory.cache.redis_cache import RedisCache
from inventory.metrics import TaskOutcomes
from inventory.settings import Settings

if TYPE_CHECKING:
    from inventory.cache.requests import PolicyRequests
    from inventory.exporter import InventoryCollector
    from inventory.web.search import PolicySearch


@dataclass(frozen=True)
class Readers:
    """What handlers may read: the Redis cache and task outcomes (never AWS)."""

    cache: RedisCache
    outcomes: TaskOutcomes
    #: The Prometheus collector behind ``/metrics``; None answers 404.
    metrics: InventoryCollector | None = None
    #: The local search index (policies table, typeahead); None answers 503.
    search: PolicySearch | None = None
    #: Policy requests (DynamoDB) for the requests API; None answers 503.
    requests: PolicyRequests | None = None
    #: ``send(task_name, args) -> task id``: enqueue a refresh; None answers 503.
    send_task: Callable[[str, list[Any]], str] | None = None


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


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, "not found")
