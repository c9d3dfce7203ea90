"""``make_app(settings, readers)``: the Tornado web tier; each handler module adds its routes."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

import tornado.web

from inventory.settings import Settings
from inventory.web import limits
from inventory.web.auth import cookie_secret
from inventory.web.base import CeleryQueue, NotFoundHandler, Readers
from inventory.web.handlers import access, changes, core, pages, risk, search
from inventory.web.handlers import requests as policy_requests
from inventory.web.handlers.history import history_reader
from inventory.web.openapi import ROUTES as OPENAPI_ROUTES
from inventory.web.openapi import build_spec, spec_of

__all__ = ["ROUTES", "Readers", "make_app", "openapi_spec", "server_options"]
server_options = limits.server_options

HERE = Path(__file__).resolve().parent
MODULES = [core, search, policy_requests, access, pages, changes, risk]
#: Every route: each handler module's, then the API's own description.
ROUTES = [route for module in MODULES for route in module.ROUTES] + OPENAPI_ROUTES


def make_app(settings: Settings, readers: Readers) -> tornado.web.Application:
    if readers.history is None and settings.history.enabled:
        # The history reads the cache's own Redis (the feed) and the configured DynamoDB.
        readers = dataclasses.replace(readers, history=history_reader(settings, readers.cache))
    deps = {"settings": settings, "readers": readers}
    app = limits.Application(
        [(pattern, handler, deps) for pattern, handler in ROUTES],
        web=settings.web,
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        serve_traceback=False,
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        # Cross-site writes are refused in BaseHandler.check_same_origin (Fetch Metadata/Origin).
        xsrf_cookies=False,
        cookie_secret=cookie_secret(settings.web),
    )
    # Built here (once per route table, ~0.1 s) so that no request waits on the IOLoop for it.
    spec_of(app)
    return app


def openapi_spec() -> dict[str, Any]:
    """The OpenAPI document ``GET /api/v1/openapi.json`` serves (of ``ROUTES``)."""
    return build_spec(ROUTES)


def make_readers(settings: Settings) -> Readers:
    """Everything the handlers read, built from settings (the shared search index opened)."""
    from inventory.celery_app import create_app
    from inventory.exporter import build_collector
    from inventory.runtime import Runtime
    from inventory.web.access_reader import AccessReader
    from inventory.web.search import PolicySearch, index_directory
    from inventory.web.search_process import start_indexer

    runtime = Runtime(settings)
    search = PolicySearch(
        runtime.redis,
        runtime.keys,
        settings.web.search_rebuild_seconds,
        index_dir=index_directory(settings),
        start_indexer=functools.partial(start_indexer, settings),
    )
    # Opens an index already on disk and starts the host's indexer if none runs; never waits
    # for a build (the web tier listens at once, /readyz says "indexing" meanwhile).
    search.sync_safely()
    celery = create_app(settings)  # one app for the refresh queue and the broker's metrics
    return Readers(
        runtime.redis_cache,
        runtime.outcomes,
        metrics=build_collector(runtime, settings, celery),
        search=search,
        requests=runtime.requests,
        tasks=CeleryQueue(celery),
        access=AccessReader(runtime.redis_cache).start(),
    )
