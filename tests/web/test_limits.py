"""Oversized request heads and regex work over request data, against the real app on a real port:
a 414/431 at once, never a dropped connection or a stalled event loop."""

from __future__ import annotations

import importlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import tornado.routing

from inventory.observability import RedactingFilter
from inventory.runtime import Runtime
from inventory.settings import Settings, load_settings
from inventory.web.app import make_app, server_options
from inventory.web.base import CONTENT_SECURITY_POLICY, Readers
from inventory.web.limits import HEAD_READ_LIMIT, LOGGED_URI_CHARS
from tests.processes import CliProcess
from tests.servers import free_port
from tests.web.conftest import LiveServer
from tests.web.test_app import TOKEN, TOKEN_HASH

KIB = 1024
#: Generous: on a loaded 2-core machine a request answered from memory takes milliseconds.
PROMPT = 1.0


@pytest.fixture
def limit_settings(env: dict[str, str]) -> Settings:
    return load_settings(
        paths=[], environ=env | {"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
    )


@pytest.fixture
def server(limit_settings: Settings) -> Iterator[LiveServer]:
    """``make_app`` listening with the options ``inventory web`` uses."""
    runtime = Runtime(limit_settings)
    app = make_app(limit_settings, Readers(runtime.redis_cache, runtime.outcomes))
    live = LiveServer(app, **server_options(limit_settings.web)).start()
    yield live
    live.stop()


def exchange(port: int, head: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send a request head as it is; (status, headers, body), status 0 when the server hung up."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
            chunks = []
            while data := sock.recv(65536):
                chunks.append(data)
        except (ConnectionResetError, BrokenPipeError):
            return 0, {}, b""
    answer = b"".join(chunks)
    if not answer.startswith(b"HTTP/"):
        return 0, {}, answer
    top, _, body = answer.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


def head(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def healthz_seconds(port: int) -> float:
    started = time.perf_counter()
    status, _, body = exchange(port, head("/healthz"))
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    return time.perf_counter() - started


# --- heads over the limits ----------------------------------------------------------------------


def test_a_64_kib_url_is_414_at_once_while_healthz_keeps_answering(server):
    target = "/api/v1/policies?q=" + "a" * (64 * KIB)
    answers: list[tuple[int, float, Any]] = []

    def send() -> None:
        started = time.perf_counter()
        status, _, body = exchange(server.port, head(target, f"Authorization: Bearer {TOKEN}"))
        answers.append((status, time.perf_counter() - started, json.loads(body)))

    senders = [threading.Thread(target=send) for _ in range(8)]
    for sender in senders:
        sender.start()
    health = [healthz_seconds(server.port)]
    while any(s.is_alive() for s in senders):
        health.append(healthz_seconds(server.port))
    for sender in senders:
        sender.join()

    error = {"error": "request target is longer than 8192 bytes", "status": 414}
    assert [(status, body) for status, _, body in answers] == [(414, error)] * 8
    assert max(took for _, took, _ in answers) < PROMPT
    assert max(health) < PROMPT, health


def test_a_url_at_the_limit_is_served_and_one_byte_more_is_414(server):
    base = "/nope?x="
    at_limit = base + "a" * (8192 - len(base))
    assert exchange(server.port, head(at_limit))[0] == 404
    status, headers, body = exchange(server.port, head(at_limit + "a"))
    assert status == 414
    assert json.loads(body) == {"error": "request target is longer than 8192 bytes", "status": 414}
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Connection"] == "close"


@pytest.mark.parametrize(
    "headers",
    [[f"X-Big: {'b' * 17_000}"], [f"X-Many-{n}: {'m' * 200}" for n in range(100)]],
    ids=["one-big-header", "many-headers"],
)
def test_a_header_block_over_the_limit_is_431(server, headers):
    status, _, body = exchange(server.port, head("/healthz", *headers))
    assert status == 431
    assert json.loads(body) == {
        "error": "request headers are larger than 16384 bytes",
        "status": 431,
    }


def test_a_body_after_a_refused_head_is_dropped_and_never_reaches_a_handler(server):
    body = json.dumps({"token": TOKEN}).encode()
    request = (
        f"POST /login?{'x' * 9000} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    status, headers, answer = exchange(server.port, request)
    assert status == 414
    assert "Set-Cookie" not in headers
    assert json.loads(answer)["status"] == 414


def test_the_limits_are_settings(env):
    settings = load_settings(
        paths=[],
        environ=env
        | {"INVENTORY_WEB__MAX_URL_BYTES": "2048", "INVENTORY_WEB__MAX_HEADER_BYTES": "4096"},
    )
    runtime = Runtime(settings)
    live = LiveServer(
        make_app(settings, Readers(runtime.redis_cache, runtime.outcomes)),
        **server_options(settings.web),
    ).start()
    try:
        url = exchange(live.port, head("/healthz?" + "a" * 2048))
        headers = exchange(live.port, head("/healthz", f"X-Big: {'b' * 4100}"))
    finally:
        live.stop()
    assert (url[0], json.loads(url[2])["error"]) == (
        414,
        "request target is longer than 2048 bytes",
    )
    assert headers[0] == 431


def test_a_head_beyond_what_the_server_reads_is_dropped_at_once(server):
    """Past ``HEAD_READ_LIMIT`` Tornado hangs up without an answer; nothing waits for it."""
    started = time.perf_counter()
    status, _, _ = exchange(server.port, head("/" + "a" * HEAD_READ_LIMIT))
    assert status == 0
    assert time.perf_counter() - started < 5
    assert healthz_seconds(server.port) < PROMPT


# --- log lines ----------------------------------------------------------------------------------


def test_log_lines_carry_the_request_target_cut_short(server, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    long_404 = "/nope?" + "x" * 5000
    exchange(server.port, head(long_404))
    long_414 = "/healthz?" + "y" * 9000
    exchange(server.port, head(long_414))
    time.sleep(0.2)  # the server logs from its own thread
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("tornado.")]
    cut_404 = (
        long_404[:LOGGED_URI_CHARS] + f"...[{len(long_404) - LOGGED_URI_CHARS} more characters]"
    )
    assert any(line.startswith(f"404 GET {cut_404} (127.0.0.1) ") for line in lines), lines
    assert any(
        line.startswith(
            f"414 GET {long_414[:LOGGED_URI_CHARS]}...[{len(long_414) - LOGGED_URI_CHARS} "
        )
        for line in lines
    ), lines
    assert max(len(line) for line in lines) < LOGGED_URI_CHARS + 200


# --- regular expressions over request data ------------------------------------------------------

MODULES = [
    "inventory.observability",
    "inventory.redaction",
    "inventory.web.auth",
    "inventory.web.params",
    "inventory.web.openapi",
    "inventory.web.models.access",
    "inventory.web.models.requests",
    "inventory.web.handlers.access",
    "inventory.web.handlers.requests",
    "inventory.web.handlers.changes",
    "inventory.web.handlers.core",
    "inventory.web.handlers.pages",
    "inventory.web.handlers.search",
    "inventory.web.handlers.history",
]
PIECES = ["a", "a:", "a://", "://", "0", "0-", "-", ":", "/", "@", "a@", "arn:aws", " ", ".", "é"]
PREFIXES = ["", "arn:aws:", "arn:aws:iam::123456789012:role/", "redis://", "/resource/"]
LENGTH = 50_000


def patterns(limit_settings: Settings) -> dict[str, re.Pattern[str]]:
    """Every compiled pattern of the web modules and the log redaction, and every route."""
    found: dict[str, re.Pattern[str]] = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found[f"{name}.{attr}"] = value
    runtime = Runtime(limit_settings)
    app = make_app(limit_settings, Readers(runtime.redis_cache, runtime.outcomes))
    for rule in app.wildcard_router.rules:
        if isinstance(rule.matcher, tornado.routing.PathMatches):
            found[f"route {rule.matcher.regex.pattern}"] = rule.matcher.regex
    return found


def test_every_regex_over_request_data_takes_linear_time(limit_settings):
    found = patterns(limit_settings)
    assert len(found) > 20
    slow = {}
    # The log redaction (string scans, no pattern of its own to backtrack) on the same texts.
    redact = RedactingFilter([]).redact
    for prefix in PREFIXES:
        for piece in PIECES:
            text = prefix + piece * (LENGTH // len(piece))
            started = time.perf_counter()
            redact(text)
            if time.perf_counter() - started > 1.0:
                slow[f"redact {prefix!r} + {piece!r} * n"] = round(time.perf_counter() - started, 2)
    for label, pattern in found.items():
        worst = 0.0
        for prefix in PREFIXES:
            for piece in PIECES:
                text = prefix + piece * (LENGTH // len(piece))
                started = time.perf_counter()
                pattern.search(text)
                pattern.fullmatch(text)
                worst = max(worst, time.perf_counter() - started)
        # Linear: milliseconds. Quadratic: seconds (the old redaction pattern: 2.1 s at 30,000
        # characters); 1 s keeps a loaded machine from failing a linear one.
        if worst > 1.0:
            slow[label] = round(worst, 2)
    assert slow == {}


def test_redacting_a_60k_url_takes_milliseconds_and_still_masks_passwords():
    redactor = RedactingFilter([])
    url = "/api/v1/policies?q=" + "a" * 60_000
    started = time.perf_counter()
    assert redactor.redact(url) == url
    took = time.perf_counter() - started
    line = "x" * 30_000 + " redis://user:hunter2@cache:6379/0 " + "y://" * 5000
    assert redactor.redact(line) == "x" * 30_000 + " redis://user:***@cache:6379/0 " + "y://" * 5000
    assert took < 0.1


# --- the real `inventory web` ------------------------------------------------------------------


@pytest.mark.slow
def test_inventory_web_answers_a_64_kib_url_with_414_and_stays_responsive(env, tmp_path):
    """The CLI listens with these limits, logs through the redaction filter and warns of
    deprecated settings."""
    port = free_port()
    environ = env | {
        "INVENTORY_WEB__PORT": str(port),
        "INVENTORY_WEB__API_TOKEN_HASHES": "[" + "ab" * 32 + "]",
    }
    web = CliProcess(environ, tmp_path / "web.log")
    web.spawn("web")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                healthz_seconds(port)
                break
            except OSError:
                assert time.monotonic() < deadline, web.log()
                time.sleep(0.2)
        answers: list[tuple[int, float]] = []

        def send() -> None:
            started = time.perf_counter()
            status = exchange(port, head("/api/v1/policies?q=" + "a" * (64 * KIB)))[0]
            answers.append((status, time.perf_counter() - started))

        senders = [threading.Thread(target=send) for _ in range(4)]
        for sender in senders:
            sender.start()
        health = [healthz_seconds(port)]
        while any(s.is_alive() for s in senders):
            health.append(healthz_seconds(port))
        for sender in senders:
            sender.join()
    finally:
        web.stop()
    assert [status for status, _ in answers] == [414] * 4
    assert max(took for _, took in answers) < PROMPT
    assert max(health) < PROMPT, health
    assert "a" * (LOGGED_URI_CHARS + 1) not in web.log()
    assert "web.api_token_hashes is deprecated" in web.log()
