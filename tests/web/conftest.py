"""HTTP helpers of the web tests: an app served on a free port, and clients that keep what a
browser keeps. Test modules (and tests/browser, tests/faults) import them from here."""

from __future__ import annotations

import asyncio
import datetime
import http.client
import http.cookies
import json
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"] == "application/json; charset=utf-8", self.headers
        return json.loads(self.body)


@dataclass
class Server:
    """One app on a free port, its IOLoop in a background thread; every body it sent is kept."""

    app: tornado.web.Application
    port: int = 0
    bodies: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = self._sockets[0].getsockname()[1]
        self._ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        server = tornado.httpserver.HTTPServer(self.app, **self.options())
        server.add_sockets(self._sockets)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await server.close_all_connections()

    def options(self) -> dict[str, Any]:
        """``HTTPServer`` keyword arguments."""
        return {}

    def start(self) -> Server:
        self._thread.start()
        assert self._ready.wait(10), "web server thread did not start"
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive()

    def get(
        self, path: str, token: str | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", path, headers=sent)
            raw = conn.getresponse()
            response = Response(raw.status, raw.headers, raw.read())
        finally:
            conn.close()
        self.bodies.append(response.body)
        return response


@dataclass
class LiveServer(Server):
    """``Server`` as ``inventory web`` listens: its body and head limits, and TLS when given."""

    max_body_size: int | None = None
    ssl_options: ssl.SSLContext | None = None
    max_header_size: int | None = None

    def options(self) -> dict[str, Any]:
        return {
            "max_body_size": self.max_body_size,
            "ssl_options": self.ssl_options,
            "max_header_size": self.max_header_size,
        }


@dataclass
class Client:
    """HTTP against one server with a small cookie jar (what a browser keeps between calls)."""

    server: Server
    cookies: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/json")
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            sent.setdefault("Content-Type", "application/x-www-form-urlencoded")
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if self.tls is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "localhost", self.server.port, timeout=30, context=self.tls
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            response = Response(raw.status, raw.headers, raw.read())
        finally:
            conn.close()
        self.server.bodies.append(response.body)
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in http.cookies.SimpleCookie(header).items():
                if morsel["max-age"] == "0" or _expired(morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        return response

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)


def _expired(expires: str) -> bool:
    if not expires:
        return False
    when = datetime.datetime.strptime(expires, "%a, %d %b %Y %H:%M:%S GMT")
    return when.replace(tzinfo=datetime.UTC) < datetime.datetime.now(datetime.UTC)
