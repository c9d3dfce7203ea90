"""``make_app(settings, readers)``: the Tornado web tier; each handler module adds its routes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tornado.web

from inventory.settings import Settings
from inventory.web import limits
from inventory.web.auth import cookie_secret
from inventory.web.base import CeleryQueue, NotFoundHandler, Readers
from inventory.web.handlers import access, changes, core, pages, search
from inventory.web.handlers import requests as policy_requests
from inventory.web.handlers.history import history_reader
from inventory.web.openapi import ROUTES as OPENAPI_ROUTES

__all__ = ["Readers", "make_app", "server_options"]
server_options = limits.server_options

HERE = Path(__file__).resolve().parent
MODULES = [core, search, policy_requests, access, pages, changes]


def make_app(settings: Settings, readers: Readers) -> tornado.web.Application:
    if readers.history is None and settings.history.enabled:
        # The history reads the cache's own Redis (the feed) and the configured DynamoDB.
        readers = dataclasses.replace(readers, history=history_reader(settings, readers.cache))
    deps = {"settings": settings, "readers": readers}
    routes = [(pattern, handler, deps) for module in MODULES for pattern, handler in module.ROUTES]
    routes += [(pattern, handler, deps) for pattern, handler in OPENAPI_ROUTES]
    return limits.Application(
        routes,
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


def make_readers(settings: Settings) -> Readers:
    """Everything the handlers read, built from settings (the search index loaded once)."""
    from inventory.celery_app import create_app
    from inventory.exporter import build_collector
    from inventory.runtime import Runtime
    from inventory.web.search import PolicySearch

    runtime = Runtime(settings)
    search = PolicySearch(runtime.redis, runtime.keys, settings.web.search_rebuild_seconds)
    search.sync_safely()
    return Readers(
        runtime.redis_cache,
        runtime.outcomes,
        metrics=build_collector(runtime, settings),
        search=search,
        requests=runtime.requests,
        tasks=CeleryQueue(create_app(settings)),
    )
