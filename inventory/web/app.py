"""``make_app(settings, readers)``: the Tornado web tier; each handler module adds its routes."""

from __future__ import annotations

from pathlib import Path

import tornado.web

from inventory.settings import Settings
from inventory.web.base import NotFoundHandler, Readers
from inventory.web.handlers import core

__all__ = ["Readers", "make_app"]

HERE = Path(__file__).resolve().parent
MODULES = [core]


def make_app(settings: Settings, readers: Readers) -> tornado.web.Application:
    deps = {"settings": settings, "readers": readers}
    routes = [(pattern, handler, deps) for module in MODULES for pattern, handler in module.ROUTES]
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        serve_traceback=False,
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        xsrf_cookies=False,
    )
