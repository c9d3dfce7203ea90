"""Getting in where one does not belong, over real HTTP to the real app: forged identity headers,
bad tokens, path and method tricks; and markup in names, tags and justifications never served
as markup.

The app is ``make_app`` with every reader over the seeded caches of ``tests.web.test_search``
(see ``tests/faults/test_fuzz_api.py``); requests are sent on raw sockets where an HTTP client
library would normalise the path.
"""

# ruff: noqa: F811 - fixtures imported from other test modules are used as arguments

from __future__ import annotations

import json
import re
import socket
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import tornado.escape

from inventory.settings import load_settings
from inventory.web.app import make_app
from inventory.web.base import Readers
from tests.conftest import inventory_env
from tests.faults.test_fuzz_api import (  # noqa: F401 - fixtures
    MAX_BODY,
    app_server,
    client,
    settings,
)
from tests.web.conftest import Client, LiveServer
from tests.web.test_app import TOKEN, TOKEN_HASH, WRONG_TOKEN
from tests.web.test_search import search, world  # noqa: F401 - fixtures

STATIC = Path(__file__).resolve().parents[2] / "inventory" / "web" / "static"
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
FORGED = {
    "X-Forwarded-User": "admin@example.com",
    "X-Forwarded-Groups": "inventory-admins",
    "X-Forwarded-For": "127.0.0.1",
    "X-Real-Ip": "127.0.0.1",
    "Forwarded": "for=127.0.0.1",
    "X-Auth-Email": "admin@example.com",
    "Remote-User": "admin@example.com",
}
REFUSED = {401, 403, 404, 405}


def raw(server: LiveServer, request: bytes) -> tuple[int, bytes, bytes]:
    """Send bytes as they are; (status, head, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    answer = b"".join(chunks)
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    server.bodies.append(body)
    return status, head, body


def get(
    server: LiveServer, target: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return raw(server, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def leaks(body: bytes, world_rows: dict) -> list[str]:  # noqa: F811
    """ARNs of cached resources that a refused answer carried."""
    return [arn for arn in world_rows if arn.encode() in body]


@pytest.fixture(scope="module")
def rows(world) -> dict:  # noqa: F811
    everything = world[0].policies_table.rows()
    assert len(everything) > 20
    return everything


# --- identity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/whoami",
        "/api/v1/policies",
        "/api/v1/requests",
        "/api/v1/openapi.json",
        "/api/v1/accounts",
    ],
)
def test_forged_identity_headers_from_an_untrusted_address_get_nothing(app_server, rows, path):
    """No trusted proxy is configured: X-Forwarded-User and friends are only text."""
    status, _, body = get(app_server, path, headers=FORGED)
    assert status == 401
    assert json.loads(body) == {"error": "authentication required", "status": 401}
    assert leaks(body, rows) == []


def test_forged_admin_headers_cannot_approve_and_a_token_gains_no_groups_from_them(
    app_server,
    world,  # noqa: F811
):
    c = Client(app_server)
    created = c.post(
        "/api/v1/requests",
        token=TOKEN,
        json_body={
            "arn": "arn:aws:iam::111122223333:role/app",
            "justification": "forgery check",
            "policy_document": {"Statement": [{"Effect": "Allow", "Action": "s3:*"}]},
        },
    ).json()
    path = f"/api/v1/requests/{created['id']}/approve"

    anonymous = c.post(path, headers=FORGED, json_body={})
    with_token = c.post(path, token=TOKEN, headers=FORGED, json_body={})

    assert anonymous.status == 401
    assert with_token.status == 403
    assert with_token.json() == {"error": "group 'inventory-admins' required", "status": 403}
    assert world[0].requests.get(created["id"])["status"] == "pending"


@pytest.fixture
def spoof_server(redis_server, moto_server, world) -> Iterator[LiveServer]:  # noqa: F811
    """Trusts only 10.0.0.0/8 as a proxy; the test connects from 127.0.0.1."""
    env = inventory_env(redis_server, moto_server) | {
        "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
        "INVENTORY_WEB__TRUSTED_PROXIES": "[10.0.0.0/8]",
    }
    s = load_settings(paths=[], environ=env)
    server = LiveServer(make_app(s, Readers(world[0].redis_cache, world[0].outcomes))).start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "spoof",
    [
        {"X-Forwarded-For": "10.1.2.3"},
        {"X-Real-Ip": "10.1.2.3"},
        {"Forwarded": "for=10.1.2.3"},
        {"X-Forwarded-For": "10.1.2.3, 127.0.0.1"},
    ],
    ids=["x-forwarded-for", "x-real-ip", "forwarded", "chain"],
)
def test_a_claimed_proxy_address_does_not_make_headers_trusted(spoof_server, spoof):
    headers = spoof | {"X-Forwarded-User": "eve", "X-Forwarded-Groups": "inventory-admins"}
    status, _, body = get(spoof_server, "/api/v1/whoami", headers=headers)
    assert status == 401
    assert b"eve" not in body


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {WRONG_TOKEN}",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN.upper()}",
        "Bearer " + "A" * 8000,
        f"Bearer {TOKEN_HASH}",
        "Bearer \u00e9\u00e9",
        f"Bearer {TOKEN} {TOKEN}",
    ],
    ids=[
        "wrong",
        "suffix",
        "prefix",
        "case",
        "8k-long",
        "the-hash-itself",
        "latin1",
        "twice",
    ],
)
def test_wrong_or_mangled_tokens_are_401_on_every_api_path(app_server, rows, authorization):
    for path in ("/api/v1/policies", "/api/v1/whoami", "/api/v1/openapi.json"):
        status, _, body = get(app_server, path, headers={"Authorization": authorization})
        assert status == 401, (path, body)
        assert json.loads(body) == {"error": "invalid token", "status": 401}
        assert leaks(body, rows) == []


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer    ", f"Token {TOKEN}", f"Basic {TOKEN}", "Digest x", "\u00a0"],
    ids=["empty", "scheme-only", "blank", "token-scheme", "basic", "digest", "nbsp"],
)
def test_empty_or_foreign_scheme_authorization_is_401(app_server, authorization):
    status, _, body = get(app_server, "/api/v1/policies", headers={"Authorization": authorization})
    assert status == 401
    assert json.loads(body) == {"error": "authentication required", "status": 401}


def test_a_token_in_the_query_or_a_cookie_is_not_an_identity(app_server):
    for target, headers in [
        (f"/api/v1/whoami?token={TOKEN}", {}),
        (f"/api/v1/whoami?access_token={TOKEN}", {}),
        ("/api/v1/whoami", {"Cookie": f"inventory_session={TOKEN}"}),
        ("/api/v1/whoami", {"Cookie": f"token={TOKEN}"}),
        ("/api/v1/whoami", {"X-Api-Key": TOKEN}),
    ]:
        status, _, _ = get(app_server, target, headers=headers)
        assert status == 401, target


# --- paths and methods ------------------------------------------------------------------------

TRICKS = [
    "/api/v1/../api/v1/policies",
    "//api/v1/policies",
    "/api/v1//policies",
    "/api/v1/%2e%2e/api/v1/policies",
    "/api/v1/%2E%2E/v1/policies",
    "/api/v1/policies/..;/",
    "/api/v1/policies;/",
    "/api/v1/policies/",
    "/api/v1/policies%00",
    "/api/v1/policies%2f",
    "/API/V1/POLICIES",
    "/api/v1/./policies",
    "/api/v1/policies/.",
    "/./api/v1/policies",
    "/api%2fv1%2fpolicies",
    "/api/v1/policies%20",
    "/%61pi/v1/policies",
    "/static/../api/v1/policies",
    "/static/..%2f..%2fsettings.py",
    "/static/%2e%2e/%2e%2e/settings.py",
    "http://evil.example/api/v1/policies",
    "*",
]


@pytest.mark.parametrize("target", TRICKS)
@pytest.mark.parametrize("token", [None, WRONG_TOKEN], ids=["anonymous", "wrong-token"])
def test_path_tricks_are_refused_without_data(app_server, rows, target, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, body = get(app_server, target, headers=headers)
    assert status in REFUSED | {400}, (target, status, body[:200])
    assert leaks(body, rows) == []
    assert b"Traceback" not in body
    assert b"import " not in body  # no source file served


@pytest.mark.parametrize("target", TRICKS)
def test_path_tricks_with_a_valid_token_reach_no_other_handler(app_server, rows, target):
    """Only the exact path is the policies API; a trick either is it or is nothing."""
    status, _, body = get(app_server, target, headers={"Authorization": f"Bearer {TOKEN}"})
    assert status in REFUSED | {400}, (target, status, body[:200])
    assert leaks(body, rows) == []


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/api/v1/policies", "/api/v1/requests", "/api/v1/whoami"])
@pytest.mark.parametrize("token", [None, TOKEN], ids=["anonymous", "token"])
def test_other_methods_are_refused_and_trace_echoes_nothing(app_server, rows, method, path, token):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers["X-Probe"] = "echo-me-not"
    status, head, body = get(app_server, path, method, headers)
    assert status in REFUSED, (method, path, status)
    if token is None and method not in ("TRACE",):
        assert status == 401
    assert b"echo-me-not" not in head + body
    assert TOKEN.encode() not in head + body
    assert leaks(body, rows) == []


# --- markup ---------------------------------------------------------------------------------------


@pytest.fixture
def proxy_server(redis_server, moto_server, world, search) -> Iterator[LiveServer]:  # noqa: F811
    """The app behind a trusted proxy (127.0.0.1), so the proxy names the user."""
    env = inventory_env(redis_server, moto_server) | {
        "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
        "INVENTORY_WEB__TRUSTED_PROXIES": "[127.0.0.1/32]",
        "INVENTORY_WEB__MAX_BODY_BYTES": str(MAX_BODY),
    }
    s = load_settings(paths=[], environ=env)
    rt = world[0]
    readers = Readers(rt.redis_cache, rt.outcomes, search=search, requests=rt.requests)
    server = LiveServer(make_app(s, readers), max_body_size=MAX_BODY).start()
    yield server
    server.stop()


def assert_escaped(html: bytes, payload: str) -> None:
    text = html.decode()
    assert payload not in text
    assert "<script>alert" not in text and "<img src=x" not in text
    assert tornado.escape.xhtml_escape(payload) in text


@pytest.mark.parametrize("payload", [SCRIPT, IMG], ids=["script", "img-onerror"])
def test_markup_in_the_proxy_user_name_is_escaped_on_every_page(proxy_server, rows, payload):
    arn = next(iter(rows))
    headers = {"X-Forwarded-User": f"eve{payload}", "X-Forwarded-Groups": "inventory-admins"}
    pages = [
        "/policies",
        "/requests",
        "/accounts",
        "/resource/" + urllib.parse.quote(arn, safe=""),
        "/resource/not-an-arn",  # the error page shows the identity too
    ]
    for page in pages:
        status, head, body = get(proxy_server, page, headers=headers)
        assert status in (200, 404), page
        assert b"text/html" in head
        assert_escaped(body, f"eve{payload}")


@pytest.mark.parametrize("payload", [SCRIPT, IMG], ids=["script", "img-onerror"])
def test_markup_in_a_resource_arn_or_name_is_escaped_in_the_resource_page(proxy_server, payload):
    arn = f"arn:aws:iam::111122223333:role/x{payload}"
    headers = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": ""}
    status, _, body = get(
        proxy_server, "/resource/" + urllib.parse.quote(arn, safe=""), headers=headers
    )
    assert status == 200
    assert_escaped(body, arn)
    # The ARN also goes into a link's query string: URL-encoded there.
    assert (
        f'href="/requests?arn={urllib.parse.quote_plus(arn)}"'.encode()
        in body.replace(b"&amp;", b"&")
        or urllib.parse.quote_plus(arn).encode() in body
    )


def test_markup_in_a_justification_is_json_data_and_never_in_a_page(proxy_server):
    """Cached and stored values reach pages only as JSON read by scripts that set text."""
    c = Client(proxy_server)
    headers = {"X-Forwarded-User": "alice", "X-Forwarded-Groups": ""}
    created = c.post(
        "/api/v1/requests",
        headers=headers,
        json_body={
            "arn": "arn:aws:iam::111122223333:role/app",
            "justification": f"please {SCRIPT}{IMG}",
            "policy_document": {"Statement": [{"Effect": "Allow", "Action": "s3:*"}]},
        },
    )
    assert created.status == 201
    listed = c.get("/api/v1/requests", headers=headers)
    assert listed.headers.get_all("X-Content-Type-Options") == ["nosniff"]
    assert f"please {SCRIPT}{IMG}" in {r["justification"] for r in listed.json()["requests"]}
    _, head, page = get(proxy_server, "/requests", headers=headers)
    assert b"text/html" in head
    assert b"please" not in page and b"onerror" not in page and b"alert(" not in page


HTML_SINKS = re.compile(
    r"\.innerHTML|\.outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function\("
    r"|setAttribute\(\s*['\"]on|\.srcdoc"
)


def test_no_page_script_writes_markup_from_data():
    """Every value a page shows is set as text: no script uses an HTML sink."""
    scripts = sorted(STATIC.glob("*.js"))
    assert len(scripts) >= 5
    found = {
        f"{path.name}:{n}": line.strip()
        for path in scripts
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if HTML_SINKS.search(line) and not line.strip().startswith("//")
    }
    assert found == {}
