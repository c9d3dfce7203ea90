"""An HTTP proxy in front of the moto server that answers chosen AWS actions with errors.

Fault injection over the wire: the worker under test talks to this proxy exactly as it would
to AWS, and the proxy returns a real AWS error response (query-protocol XML, JSON, or S3's
REST XML) for the actions a test names: optionally only for the first N matching calls, after
letting ``skip`` through, for a seeded random share (``rate``) of them, or only for requests
whose body contains ``match`` (e.g. one account's role ARN in an AssumeRole call).
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

#: A fault's action matching every call (e.g. a delay on every AWS answer).
EVERY = "*"
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "proxy-connection"}


@dataclass
class Fault:
    action: str
    code: str
    status: int = 400
    remaining: int | None = None  # None: every matching call
    hits: int = 0
    region: str | None = None  # None: every region
    delay: float = 0.0  # > 0: hold the request this long, then forward it (no error)
    skip: int = 0  # let this many matching calls through first
    rate: float | None = None  # None: every matching call; else this share of them
    match: str | None = None  # None: any request; else only bodies containing this text
    rng: random.Random | None = None  # seeded, so a run injects the same sequence of faults
    seen: int = 0  # matching calls, faulted or not

    def applies(self, action: str, region: str | None, body: str) -> bool:
        if self.action not in (EVERY, action):
            return False
        if self.region is not None and self.region != region:
            return False
        if self.match is not None and self.match not in body:
            return False
        return self.remaining is None or self.remaining > 0

    def fires(self) -> bool:
        """Count one matching call; True when this one gets the fault."""
        self.seen += 1
        if self.seen <= self.skip:
            return False
        if self.rate is not None and self.rng is not None and self.rng.random() >= self.rate:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        self.hits += 1
        return True


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog (5) drops connections a pool of clients opens at once,
    # and a dropped SYN is retried only after a second.
    request_queue_size = 128


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 80
        self.faults: list[Fault] = []
        self.calls: list[str] = []
        #: (access key id, service, action) of every signed call, in order.
        self.signed: list[tuple[str, str, str]] = []
        #: Requests being answered now, and the most there ever were at once.
        self.in_flight = 0
        self.max_in_flight = 0
        #: Requests of an action a delay is holding now, and the most it ever held at once.
        self.held: dict[str, int] = {}
        self.max_held: dict[str, int] = {}
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(
        self,
        action: str,
        code: str,
        status: int = 400,
        times: int | None = None,
        region: str | None = None,
        skip: int = 0,
        rate: float | None = None,
        seed: int = 0,
        match: str | None = None,
    ) -> Fault:
        """Answer matching calls with ``code``; ``rate`` picks that share of them (seeded)."""
        fault = Fault(
            action,
            code,
            status,
            times,
            region=region,
            skip=skip,
            rate=rate,
            match=match,
            rng=random.Random(seed) if rate is not None else None,
        )
        with self.lock:
            self.faults.append(fault)
        return fault

    def slow(self, action: str, seconds: float, times: int | None = None, skip: int = 0) -> Fault:
        """Hold matching requests (``EVERY``: all of them) for ``seconds``, then forward them."""
        fault = Fault(action, "", 0, times, delay=seconds, skip=skip)
        with self.lock:
            self.faults.append(fault)
        return fault

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def count(self, action: str) -> int:
        with self.lock:
            return sum(1 for c in self.calls if c == action)

    def _match(self, action: str, region: str | None, body: str = "") -> Fault | None:
        with self.lock:
            self.calls.append(action)
            for fault in self.faults:
                if fault.applies(action, region, body) and fault.fires():
                    return fault
        return None

    def _hold(self, action: str, seconds: float) -> None:
        with self.lock:
            self.held[action] = self.held.get(action, 0) + 1
            self.max_held[action] = max(self.max_held.get(action, 0), self.held[action])
        try:
            time.sleep(seconds)
        finally:
            with self.lock:
                self.held[action] -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out as two writes: without TCP_NODELAY the body waits for the
            # client's delayed ACK (about 40 ms on every answer).
            disable_nagle_algorithm = True

            def log_message(self, *args: object) -> None:
                pass

            def _proxy(self) -> None:
                with proxy.lock:
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    self._answer()
                finally:
                    with proxy.lock:
                        proxy.in_flight -= 1

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                authorization = self.headers.get("Authorization", "")
                service = _scope(authorization, 3)
                target = self.headers.get("X-Amz-Target")
                if service == "s3":
                    action = _s3_action(self.command, self.path)
                elif service == "lambda":
                    action = _lambda_action(self.command, self.path)
                else:
                    action = _action(target, body, self.path)
                with proxy.lock:
                    proxy.signed.append((_scope(authorization, 0) or "", service or "", action))
                fault = proxy._match(
                    action, _scope(authorization, 2), body.decode(errors="replace")
                )
                if fault is not None and fault.delay:
                    proxy._hold(action, fault.delay)
                    fault = None
                if fault is not None:
                    json_errors = target or service == "lambda"
                    self._error(
                        fault, "s3" if service == "s3" else "json" if json_errors else "query"
                    )
                    return
                conn = http.client.HTTPConnection(
                    proxy.upstream_host, proxy.upstream_port, timeout=60
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def _error(self, fault: Fault, protocol: str) -> None:
                if protocol == "s3":
                    data = (
                        f"<Error><Code>{fault.code}</Code><Message>injected {fault.code}"
                        "</Message><RequestId>fault-proxy</RequestId></Error>"
                    ).encode()
                    ctype = "application/xml"
                elif protocol == "json":
                    data = (
                        f'{{"__type":"{fault.code}","message":"injected {fault.code}"}}'
                    ).encode()
                    ctype = "application/x-amz-json-1.0"
                else:
                    data = (
                        "<ErrorResponse><Error><Type>Sender</Type>"
                        f"<Code>{fault.code}</Code><Message>injected {fault.code}</Message>"
                        "</Error><RequestId>fault-proxy</RequestId></ErrorResponse>"
                    ).encode()
                    ctype = "text/xml"
                self.send_response(fault.status)
                self.send_header("Content-Type", ctype)
                self.send_header("x-amzn-RequestId", "fault-proxy")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _proxy

        return Handler


def _scope(authorization: str, index: int) -> str | None:
    """A part of a SigV4 scope, ``Credential=KEY/DATE/REGION/SERVICE/aws4_request``."""
    marker = "Credential="
    if marker not in authorization:
        return None
    scope = authorization.split(marker, 1)[1].split(",", 1)[0].split("/")
    return scope[index] if len(scope) > index else None


def _region(authorization: str) -> str | None:
    return _scope(authorization, 2)


#: Bucket configuration read and written as ``?location``, ``?tagging``... (path style).
BUCKET_SUBRESOURCES = ("Location", "Tagging", "Policy", "Versioning", "Acl", "Encryption")


def _s3_action(method: str, path: str) -> str:
    """S3's REST operations by method and path (path-style: /bucket or /bucket/key)."""
    parts = urlsplit(path)
    has_key = "/" in parts.path.strip("/")
    query = parse_qs(parts.query, keep_blank_values=True)
    if has_key:
        return {
            "PUT": "PutObject",
            "GET": "GetObject",
            "HEAD": "HeadObject",
            "DELETE": "DeleteObject",
        }.get(method, method)
    if not parts.path.strip("/"):
        return "ListBuckets" if method == "GET" else method
    verb = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}.get(method)
    for sub in BUCKET_SUBRESOURCES:
        if sub.lower() in query and verb is not None:
            return f"{verb}Bucket{sub}"
    if method == "GET" and "versions" in query:
        return "ListObjectVersions"
    if method == "GET":
        return "ListObjectsV2" if query.get("list-type") == ["2"] else "ListObjects"
    return {"PUT": "CreateBucket", "HEAD": "HeadBucket", "DELETE": "DeleteBucket"}.get(
        method, method
    )


#: Lambda's REST read operations: (method, path without its version and function name).
LAMBDA_ACTIONS = {
    ("GET", "functions"): "ListFunctions",
    ("GET", "functions/configuration"): "GetFunctionConfiguration",
    ("GET", "functions/policy"): "GetPolicy",
    ("GET", "tags"): "ListTags",
}


def _lambda_action(method: str, path: str) -> str:
    """Lambda's REST operations: /2015-03-31/functions/<name>/policy, /2017-03-31/tags/<arn>."""
    parts = urlsplit(path).path.strip("/").split("/")[1:]
    if not parts:
        return method
    shape = parts[0] if len(parts) < 3 else f"{parts[0]}/{parts[2]}"
    return LAMBDA_ACTIONS.get((method, shape), f"{method} {shape}")


def _action(target: str | None, body: bytes, path: str) -> str:
    """The AWS action: JSON protocols name it in X-Amz-Target, query protocols in the body."""
    if target:
        return target.rsplit(".", 1)[-1]
    params = parse_qs(body.decode(errors="replace")) if body else {}
    if "Action" in params:
        return params["Action"][0]
    query = parse_qs(urlsplit(path).query)
    return query.get("Action", [""])[0]
