"""Shared web plumbing: what handlers read, the base handlers, identity, JSON errors, bodies."""

from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import redis
import tornado.web
from pydantic import BaseModel
from tornado.httputil import HTTPInputError, parse_body_arguments
from tornado.log import app_log

from inventory.cache.redis_cache import RedisCache
from inventory.cache.web_state import LoginSessions, RateLimiter
from inventory.metrics import TaskOutcomes
from inventory.settings import Settings, parse_rate
from inventory.web.api import (
    BodyModel,
    ErrorBody,
    Operation,
    QueryModel,
    Refused,
    operations,
    validate,
)
from inventory.web.auth import (
    SESSION_COOKIE,
    AmbiguousIdentity,
    Identity,
    bearer_token,
    identity_for_digest,
    login_url,
    proxy_identity,
    session_identity,
    token_digest,
)
from inventory.web.headers import (  # noqa: F401 - re-exported
    CONTENT_SECURITY_POLICY,
    HSTS,
    SECURITY_HEADERS,
    security_headers,
)
from inventory.web.limits import request_summary

if TYPE_CHECKING:
    from inventory.cache.history import ChangeHistory
    from inventory.cache.requests import PolicyRequests
    from inventory.exporter import InventoryCollector
    from inventory.web.search import PolicySearch


class TaskQueue(Protocol):
    """The web tier's one way into Celery: send a task by name, know its time limit."""

    def send(self, name: str, args: list[Any], task_id: str, expires: float) -> str:
        """Enqueue ``name(*args)`` under ``task_id``, dropped if not started within ``expires``
        seconds; returns the task id."""
        ...

    def time_limit(self, name: str) -> float:
        """The task's hard time limit in seconds (settings' overrides included)."""
        ...


@dataclass(frozen=True)
class CeleryQueue:
    """``TaskQueue`` over a Celery app (the broker's client; publishing may block)."""

    app: Any

    def send(self, name: str, args: list[Any], task_id: str, expires: float) -> str:
        return str(self.app.send_task(name, args=args, task_id=task_id, expires=expires).id)

    def time_limit(self, name: str) -> float:
        return float(self.app.tasks[name].time_limit)


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
    #: Enqueues refresh tasks; None answers 503.
    tasks: TaskQueue | None = None
    #: Change history (Redis feed, DynamoDB per resource); ``make_app`` builds it when None.
    history: ChangeHistory | None = None


Q = TypeVar("Q", bound=QueryModel)
B = TypeVar("B", bound=BodyModel)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Seconds a 503 asks the client to wait (the cache is usually back within this).
RETRY_AFTER_SECONDS = 5


class TooManyRequests(tornado.web.HTTPError):
    """429: the caller is over a rate limit; ``retry_after`` seconds until its next window."""

    def __init__(self, retry_after: int, reason: str) -> None:
        super().__init__(429, "%s", reason)
        self.retry_after = retry_after


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """JSON errors from one place (no stack traces, ever), security headers, identity, bodies.

    Bodies are streamed so that ``prepare`` refuses an oversized one (413) from its
    Content-Length before reading it; a complete body is then exposed the usual way
    (``self.request.body``, ``get_body_argument``), so handlers need not know.
    """

    def initialize(self, settings: Settings, readers: Readers) -> None:
        self.inventory_settings = settings
        self.readers = readers
        self._chunks: list[bytes] = []
        self._received = 0
        self._expected: int | None = None  # the body's declared length, once it starts
        self._body_error: str | None = None
        if self.https:
            self.set_header("Strict-Transport-Security", HSTS)

    def set_default_headers(self) -> None:
        for name, value in security_headers(self.https).items():
            self.set_header(name, value)

    @property
    def https(self) -> bool:
        """Whether browsers reach us over HTTPS: directly, or (``web.https``) through a proxy."""
        # Tornado sets the default headers once before initialize() has given us the settings.
        settings: Settings | None = getattr(self, "inventory_settings", None)
        return self.request.protocol == "https" or (settings is not None and settings.web.https)

    @property
    def sessions(self) -> LoginSessions:
        return LoginSessions(self.readers.cache.client, self.readers.cache.keys)

    def rate_limit(self, scope: str, caller: str, rate: str) -> None:
        """Count this request against ``caller``'s window (``rate``: '10/m'); 429 when over."""
        requests, seconds = parse_rate(rate)
        limiter = RateLimiter(self.readers.cache.client, self.readers.cache.keys)
        wait = limiter.hit(scope, caller, requests, seconds, time.time())
        if wait is not None:
            raise TooManyRequests(
                wait,
                f"too many {scope}: at most {requests} per {seconds} s; retry in {wait} s",
            )

    # --- request bodies -------------------------------------------------------------------

    def prepare(self) -> Awaitable[None] | None:
        self.check_body_size()
        self.check_same_origin()
        return None

    def check_body_size(self) -> None:
        """413 for a Content-Length above ``web.max_body_bytes``, before any of it is read."""
        headers = self.request.headers
        if "Content-Length" not in headers:
            if "chunked" in headers.get("Transfer-Encoding", "").lower():
                raise tornado.web.HTTPError(411, "a request body needs a Content-Length")
            return
        length = self._declared_length()
        if length is None:
            raise tornado.web.HTTPError(400, "invalid Content-Length")
        limit = self.inventory_settings.web.max_body_bytes
        if length > limit:
            raise tornado.web.HTTPError(413, f"request body is larger than {limit} bytes")

    def _declared_length(self) -> int | None:
        """Content-Length parsed as Tornado will (after prepare): None when absent or invalid."""
        pieces = {p.strip() for p in self.request.headers.get("Content-Length", "").split(",")}
        value = pieces.pop()
        if pieces or not value.isascii() or not value.isdigit():
            return None
        return int(value)

    def check_same_origin(self) -> None:
        """403 for a state-changing request a browser says came from another site (CSRF)."""
        if self.request.method in SAFE_METHODS:
            return
        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None:
            # A browser that sends Fetch Metadata says where the request came from; decide on
            # that alone (with Referrer-Policy no-referrer, Chromium's same-origin form posts
            # carry "Origin: null").
            if site in ("same-origin", "none"):
                return
            raise tornado.web.HTTPError(403, "cross-site request refused")
        origin = self.request.headers.get("Origin")
        if origin is not None:
            netloc = urllib.parse.urlsplit(origin).netloc.lower()
            if netloc != self.request.headers.get("Host", "").lower():
                raise tornado.web.HTTPError(403, "cross-origin request refused")

    def data_received(self, chunk: bytes) -> None:
        if self._expected is None:
            self._expected = self._declared_length()
        self._received += len(chunk)
        limit = self.inventory_settings.web.max_body_bytes
        if self._expected is None or self._received > min(self._expected, limit):
            return  # a refused request (413, 411, 400): its data is dropped, never kept
        self._chunks.append(chunk)
        if self._received == self._expected:
            self._body_complete()

    def _body_complete(self) -> None:
        self.request.body = b"".join(self._chunks)
        self._chunks = []
        request = self.request
        try:
            parse_body_arguments(
                request.headers.get("Content-Type", ""),
                request.body,
                request.body_arguments,
                request.files,
                request.headers,
            )
        except HTTPInputError as exc:
            self._body_error = f"invalid request body: {exc}"
            return
        for name, values in request.body_arguments.items():
            request.arguments.setdefault(name, []).extend(values)

    def check_body(self) -> None:
        """400 when the body is a form that could not be parsed."""
        if self._body_error:
            raise tornado.web.HTTPError(400, "%s", self._body_error)

    def json_body(self, required: bool = True) -> dict[str, Any]:
        """The body as a JSON object; 400 naming the problem when it is not one."""
        self.check_body()
        raw = self.request.body
        if not raw.strip():
            if required:
                raise tornado.web.HTTPError(400, "request body must be a JSON object")
            return {}
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
        except UnicodeDecodeError:
            raise tornado.web.HTTPError(400, "request body is not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise tornado.web.HTTPError(
                400,
                f"request body is not valid JSON: {exc.msg} (line {exc.lineno}, "
                f"column {exc.colno})",
            ) from None
        except ValueError as exc:
            raise tornado.web.HTTPError(400, f"request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise tornado.web.HTTPError(400, "request body must be a JSON object")
        return value

    # --- the API's models ----------------------------------------------------------------

    @property
    def api_operation(self) -> Operation | None:
        """What this method declared (``api.operation``); None for pages and probes."""
        return operations(type(self)).get((self.request.method or "").lower())

    def _declared(self, part: str, model: type[BaseModel]) -> None:
        # A method that validates with one model while declaring another would describe
        # itself wrongly in openapi.json: refuse at once, loudly (every API test sees it).
        declared = self.api_operation
        if declared is not None and getattr(declared, part) is not model:
            raise TypeError(f"{type(self).__name__} declares {part} {getattr(declared, part)}")

    def query(self, model: type[Q]) -> Q:
        """The query parameters as ``model``; 400 naming the first one that is wrong."""
        self._declared("query", model)
        last = {name: values[-1] for name, values in self.request.query_arguments.items()}
        try:
            return validate(model, last)
        except Refused as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None

    def body(self, model: type[B]) -> B:
        """The JSON object body as ``model``; 415 for a body of another media type (what a
        form sends), 400 naming the problem or the first field that is wrong."""
        self._declared("body", model)
        if self.request.body.strip():
            media = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if media != "application/json" and not media.endswith("+json"):
                raise tornado.web.HTTPError(415, "request body must be application/json")
        required = any(field.is_required() for field in model.model_fields.values())
        try:
            return validate(model, self.json_body(required))
        except Refused as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None

    def write_model(self, body: BaseModel) -> None:
        """``body`` as the JSON response, with the status this method's operation declares."""
        declared = self.api_operation
        if declared is not None and not isinstance(body, declared.response):
            raise TypeError(f"{type(self).__name__} declares response {declared.response}")
        status = declared.status if declared is not None else 200
        self.write_json(body.model_dump(mode="json", exclude_unset=True), status)

    # --- identity -------------------------------------------------------------------------

    def get_current_user(self) -> Identity | None:
        """Trusted proxy headers, else a bearer token (401 when wrong), else the login cookie."""
        web = self.inventory_settings.web
        try:
            identity = proxy_identity(self.request.remote_ip, self.request.headers, web)
        except AmbiguousIdentity as exc:
            raise tornado.web.HTTPError(400, "%s", exc) from None
        if identity is not None:
            return identity
        token = bearer_token(self.request.headers.get("Authorization", ""))
        if token is not None:
            identity = identity_for_digest(token_digest(token), web, "token")
            if identity is None:
                raise tornado.web.HTTPError(401, "invalid token")
            return identity
        return session_identity(self.get_cookie(SESSION_COOKIE), web, self.sessions)

    @property
    def current_identity(self) -> Identity | None:
        return cast("Identity | None", self.current_user)

    @property
    def identity(self) -> Identity:
        """The caller; only for handlers that required one (AuthenticatedHandler)."""
        identity = self.current_identity
        if identity is None:
            raise tornado.web.HTTPError(401, "authentication required")
        return identity

    def require_groups(self, *groups: str) -> Identity:
        """403 naming the group(s) unless the caller belongs to one of ``groups``."""
        identity = self.identity
        if not identity.in_any(groups):
            names = ", ".join(repr(g) for g in groups)
            needed = f"group {names}" if len(groups) == 1 else f"one of the groups {names}"
            raise tornado.web.HTTPError(403, f"{needed} required")
        return identity

    def is_api_request(self) -> bool:
        path = self.request.path
        return path.startswith("/api/") or path == "/metrics" or path.startswith("/metrics/")

    # --- responses ------------------------------------------------------------------------

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        if status == 503:
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, redis.RedisError):
            status_code, reason = 503, "cache unavailable"
        elif isinstance(exc, tornado.web.HTTPError) and exc.log_message:
            reason = exc.log_message % exc.args if exc.args else exc.log_message
        else:
            reason = self._reason
        self.set_status(status_code)
        if status_code == 503:
            # Redis away (or a reader not configured): clients and proxies may try again.
            self.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
        if isinstance(exc, TooManyRequests):
            self.set_header("Retry-After", str(exc.retry_after))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(ErrorBody(error=reason, status=status_code).model_dump()))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, redis.RedisError):
            # An outage, not a bug: one line per request instead of a traceback each.
            self.set_status(503)
            app_log.warning("%s: cache unavailable: %s", self._request_summary(), value)
            return
        super().log_exception(typ, value, tb)

    def _request_summary(self) -> str:
        # Tornado's own log lines (errors, warnings) carry the whole target otherwise.
        return request_summary(self.request)


class AuthenticatedHandler(BaseHandler):
    """Requires an identity: 401 JSON for the API, a redirect to the login form for pages."""

    def prepare(self) -> Awaitable[None] | None:
        super().prepare()
        if self.current_identity is not None:
            return None
        if not self.is_api_request() and self.request.method in ("GET", "HEAD"):
            self.redirect(login_url(self.request.uri or "/"))
            return None
        raise tornado.web.HTTPError(401, "authentication required")


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, "not found")
