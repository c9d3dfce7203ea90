"""Request heads within limits: a 414 or 431 before any handler runs, and short log lines.

Tornado reads a request head up to its ``max_header_size`` and, past that, closes the
connection without a word (a client sees a reset, not a status). So the server reads heads up
to the generous ``HEAD_READ_LIMIT`` and the application answers anything over
``web.max_url_bytes`` / ``web.max_header_bytes`` with a JSON 414 / 431 at once.
"""

from __future__ import annotations

import json
from typing import Any

import tornado.web
from tornado import httputil
from tornado.log import access_log

from inventory.settings import WebSettings
from inventory.web.headers import security_headers

#: What the server reads of one request head; past it Tornado drops the connection.
HEAD_READ_LIMIT = 1_048_576
#: Request targets in log lines are cut to this many characters.
LOGGED_URI_CHARS = 512
_REASONS = {414: "URI Too Long", 431: "Request Header Fields Too Large"}


def server_options(web: WebSettings) -> dict[str, Any]:
    """``HTTPServer`` keyword arguments: body and head limits as ``inventory web`` listens."""
    return {"max_body_size": web.max_body_bytes, "max_header_size": HEAD_READ_LIMIT}


def short_uri(uri: str | None) -> str:
    """A request target fit for a log line: cut, with the number of characters left out."""
    uri = uri or ""
    if len(uri) <= LOGGED_URI_CHARS:
        return uri
    return f"{uri[:LOGGED_URI_CHARS]}...[{len(uri) - LOGGED_URI_CHARS} more characters]"


def request_summary(request: httputil.HTTPServerRequest) -> str:
    return f"{request.method} {short_uri(request.uri)} ({request.remote_ip})"


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, with the request target cut to ``LOGGED_URI_CHARS``."""
    status = handler.get_status()
    log = access_log.error if status >= 500 else access_log.warning
    if status < 400:
        log = access_log.info
    took = 1000.0 * handler.request.request_time()
    log("%d %s %.2fms", status, request_summary(handler.request), took)


def head_problem(
    start_line: httputil.RequestStartLine, headers: httputil.HTTPHeaders, web: WebSettings
) -> tuple[int, str] | None:
    """(status, reason) when the request line or the header block is over its limit."""
    if len(start_line.path) > web.max_url_bytes:
        return 414, f"request target is longer than {web.max_url_bytes} bytes"
    size = sum(len(name) + len(value) + 4 for name, value in headers.get_all())
    if size > web.max_header_bytes:
        return 431, f"request headers are larger than {web.max_header_bytes} bytes"
    return None


class HeadLimits(httputil.HTTPMessageDelegate):
    """Passes a request on to the application, or answers 414/431 itself and drops its body."""

    def __init__(
        self,
        inner: httputil.HTTPMessageDelegate,
        connection: httputil.HTTPConnection,
        web: WebSettings,
        headers: dict[str, str],
    ) -> None:
        self.inner = inner
        self.connection = connection
        self.web = web
        self.headers = headers
        self.refused = False

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        assert isinstance(start_line, httputil.RequestStartLine)
        problem = head_problem(start_line, headers, self.web)
        if problem is None:
            return self.inner.headers_received(start_line, headers)
        self.refused = True
        status, reason = problem
        body = json.dumps({"error": reason, "status": status}).encode()
        sent = httputil.HTTPHeaders(self.headers)
        sent["Content-Type"] = "application/json; charset=utf-8"
        sent["Content-Length"] = str(len(body))
        sent["Connection"] = "close"
        self.connection.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", status, _REASONS[status]), sent, body
        )
        self.connection.finish()
        address = getattr(getattr(self.connection, "context", None), "remote_ip", "")
        access_log.warning(
            "%d %s %s (%s): %s", status, start_line.method, short_uri(start_line.path), address,
            reason,
        )  # fmt: skip
        return None

    def data_received(self, chunk: bytes) -> Any:
        return None if self.refused else self.inner.data_received(chunk)

    def finish(self) -> None:
        if not self.refused:
            self.inner.finish()

    def on_connection_close(self) -> None:
        if not self.refused:
            self.inner.on_connection_close()


class Application(tornado.web.Application):
    """``tornado.web.Application`` whose requests pass ``HeadLimits`` first."""

    def __init__(self, *args: Any, web: WebSettings, **kwargs: Any):
        super().__init__(*args, log_function=log_request, **kwargs)
        self.web = web
        self.refusal_headers = security_headers(web.https)

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        inner = super().start_request(server_conn, request_conn)
        return HeadLimits(inner, request_conn, self.web, self.refusal_headers)
