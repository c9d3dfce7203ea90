"""A latency proxy in its own process: every AWS answer held N ms, as real AWS takes.

    python -m bench.latency --upstream http://127.0.0.1:PORT --delay-ms 30 --ready FILE

Real AWS answers a detail read in tens of milliseconds; moto on loopback in about one. The
proxy is asynchronous (Tornado: one thread however many connections the clients keep open;
the tests' thread-per-connection fault proxy collapsed under 8,000 of them at 100 accounts) and
runs in a process of its own, so it does not share the measured process's GIL. Each request is
forwarded on a new upstream connection, answered, and held until ``delay`` has passed since it
arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, stop
from tests.servers import wait_started

HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding")
)


def make_proxy(upstream: str, delay: float):  # type: ignore[no-untyped-def]
    """The proxy's Tornado application (for ``main``; a function so importing costs nothing)."""
    import tornado.httpclient
    import tornado.httputil
    import tornado.web

    tornado.httpclient.AsyncHTTPClient.configure(None, max_clients=1_000)
    client = tornado.httpclient.AsyncHTTPClient()

    class Forward(tornado.web.RequestHandler):
        SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH")

        async def forward(self) -> None:
            arrived = time.monotonic()
            request = self.request
            headers = tornado.httputil.HTTPHeaders(
                {k: v for k, v in request.headers.get_all() if k.lower() not in HOP_BY_HOP}
            )
            answer = await client.fetch(
                tornado.httpclient.HTTPRequest(
                    upstream + request.uri,
                    method=request.method,
                    headers=headers,
                    body=request.body if request.method in ("POST", "PUT", "PATCH") else None,
                    allow_nonstandard_methods=True,
                    follow_redirects=False,
                    decompress_response=False,
                    connect_timeout=60,
                    request_timeout=600,
                ),
                raise_error=False,
            )
            await asyncio.sleep(max(0.0, arrived + delay - time.monotonic()))
            self.clear()
            for header in ("Content-Type", "Server", "Date"):
                self.clear_header(header)
            self.set_status(answer.code, answer.reason)
            for key, value in answer.headers.get_all():
                if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                    self.add_header(key, value)
            if request.method == "HEAD":
                self.set_header("Content-Length", answer.headers.get("Content-Length", "0"))
                self.finish()
            else:
                self.finish(answer.body or b"")

        get = head = post = put = delete = patch = forward

    return tornado.web.Application([(r".*", Forward)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.latency")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-ms", type=float, default=30.0)
    parser.add_argument("--ready", required=True)
    args = parser.parse_args(argv)
    import tornado.httpserver
    import tornado.ioloop
    import tornado.netutil

    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", backlog=4096)
    port = sockets[0].getsockname()[1]
    server = tornado.httpserver.HTTPServer(
        make_proxy(args.upstream.rstrip("/"), args.delay_ms / 1000), idle_connection_timeout=600
    )
    server.add_sockets(sockets)
    loop = tornado.ioloop.IOLoop.current()
    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(loop.stop))
    Path(args.ready).write_text(json.dumps({"url": f"http://127.0.0.1:{port}"}))
    loop.start()
    server.stop()
    return 0


@contextmanager
def latency_proxy(upstream: str, delay_ms: float) -> Iterator[str]:
    """The URL of a proxy in front of ``upstream`` delaying every answer; stopped by PID."""
    ready = Path(tempfile.mkdtemp(prefix="inventory-latency-")) / "ready.json"
    argv = [sys.executable, "-m", "bench.latency", "--upstream", upstream]
    argv += ["--delay-ms", str(delay_ms), "--ready", str(ready)]
    proc = subprocess.Popen(argv, cwd=ROOT)
    try:
        wait_started(ready.exists, "latency proxy", proc, 60)
        yield str(json.loads(ready.read_text())["url"])
    finally:
        stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
