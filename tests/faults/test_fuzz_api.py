"""Every JSON API operation fuzzed over real HTTP: only 2xx/4xx answers, each as documented.

Schemathesis generates valid and invalid requests from the OpenAPI description the app serves
(generated from its routes and their pydantic models, ``inventory/web/openapi.py``) and sends
them, with a valid token, to the real app (``make_app`` with every reader: Redis cache, search
index, DynamoDB requests table, Celery task queue) on a real port, over caches the real sync
code filled from a seeded moto organisation.
"""

from __future__ import annotations

import collections
import json
import re
import urllib.parse
from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis
import tornado.web
from openapi_spec_validator import validate as validate_openapi
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from inventory.celery_app import create_app
from inventory.settings import Settings, load_settings
from inventory.web.app import make_app, openapi_spec
from inventory.web.base import CeleryQueue, Readers
from tests.conftest import inventory_env
from tests.web.conftest import Client, LiveServer
from tests.web.test_app import TOKEN, TOKEN_HASH, WRONG_TOKEN
from tests.web.test_search import search, world  # noqa: F401 - fixtures: the seeded caches

MAX_BODY = 65_536
#: Examples per operation and mode: 20 operations x 2 modes x this stays under ~60 s on 2 cores.
EXAMPLES = 25
SPEC = openapi_spec()
SCHEMA = schemathesis.openapi.from_dict(SPEC)
OPERATIONS = [(path, method) for path, item in SPEC["paths"].items() for method in item]
BODY_OPERATIONS = [(p, m) for p, m in OPERATIONS if "requestBody" in SPEC["paths"][p][m]]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SAMPLE_ID = "0b6f0f4e-3c1e-4d8a-9f00-2a1b3c4d5e6f"
POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*"}]}


@pytest.fixture(scope="module")
def settings(redis_server, moto_server) -> Settings:
    """The seeded world's settings (``tests.web.test_search``) with a 64 KiB body limit."""
    env = inventory_env(redis_server, moto_server)
    return load_settings(
        paths=[],
        environ=env
        | {
            "INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]",
            "INVENTORY_WEB__MAX_BODY_BYTES": str(MAX_BODY),
            # One token makes every fuzzed request: its limits would make later tests depend
            # on how many the fuzzing created (the limits have their own tests).
            "INVENTORY_WEB__REQUEST_RATE": "1000000/s",
            "INVENTORY_WEB__REFRESH_RATE": "1000000/s",
            "INVENTORY_WEB__MAX_OPEN_REQUESTS": "10000",
        },
    )


@pytest.fixture(scope="module")
def app_server(settings, world, search) -> Iterator[LiveServer]:  # noqa: F811
    """``make_app`` with every reader, listening as ``inventory web`` does (its body limit)."""
    rt = world[0]
    readers = Readers(
        rt.redis_cache,
        rt.outcomes,
        search=search,
        requests=rt.requests,
        tasks=CeleryQueue(create_app(settings)),
    )
    server = LiveServer(make_app(settings, readers), max_body_size=MAX_BODY).start()
    yield server
    server.stop()
    for body in server.bodies:
        assert TOKEN.encode() not in body


@pytest.fixture(scope="module")
def tally() -> Iterator[collections.Counter[str]]:
    """Statuses of every fuzzed request of the module, printed at the end (``-s`` shows it)."""
    counts: collections.Counter[str] = collections.Counter()
    yield counts
    print(f"\nfuzz: {sum(counts.values())} requests, statuses {dict(sorted(counts.items()))}")
    assert not any(status.startswith("5") for status in counts)


@pytest.fixture
def client(app_server: LiveServer) -> Client:
    return Client(app_server)


def base_url(server: LiveServer) -> str:
    return f"http://127.0.0.1:{server.port}"


# --- the description ----------------------------------------------------------------------------


def test_spec_is_a_valid_openapi_document():
    validate_openapi(openapi_spec())
    assert len(OPERATIONS) >= 20


def concrete(path: str) -> str:
    """A spec path with a sample value for each path parameter."""
    return path.replace("{request_id}", SAMPLE_ID)


def test_every_registered_api_route_is_described_and_nothing_else(settings, world, search):  # noqa: F811
    """The routes ``make_app`` registers and the spec's paths are the same set: no drift."""
    app = make_app(settings, Readers(world[0].redis_cache, world[0].outcomes))
    patterns = [
        rule.matcher.regex.pattern
        for rule in app.wildcard_router.rules
        if isinstance(rule.matcher, tornado.routing.PathMatches)
        and rule.matcher.regex.pattern.startswith("/api/")
    ]
    assert len(patterns) >= 18
    undescribed = [
        p for p in patterns if not any(re.fullmatch(p, concrete(path)) for path in SPEC["paths"])
    ]
    unrouted = [
        path for path in SPEC["paths"] if not any(re.fullmatch(p, concrete(path)) for p in patterns)
    ]
    assert undescribed == []
    assert unrouted == []
    # Each described method is one the handler of that route implements.
    for path, item in SPEC["paths"].items():
        handler = next(
            rule.target
            for rule in app.wildcard_router.rules
            if re.fullmatch(rule.matcher.regex.pattern, concrete(path))
        )
        for method in item:
            assert method in vars(handler) or any(
                method in vars(base)
                for base in handler.__mro__[1:]
                if base.__module__ != "tornado.web"
            ), (path, method)


def test_spec_is_served_to_an_identified_caller_only(client):
    anonymous = client.get("/api/v1/openapi.json")
    wrong = client.get("/api/v1/openapi.json", token=WRONG_TOKEN)
    served = client.get("/api/v1/openapi.json", token=TOKEN)
    assert (anonymous.status, wrong.status, served.status) == (401, 401, 200)
    assert served.json() == SPEC


# --- fuzzing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"]
)
@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_fuzzed_operation_answers_only_documented_2xx_or_4xx(app_server, tally, path, method, mode):
    operation = SCHEMA[path][method.upper()]
    # Invalid data must be refused or ignored, never crash: schemathesis's stricter
    # negative_data_rejection is left out because the API deliberately reads a blank optional
    # parameter as absent, takes the last of repeated ones and strips blanks (as Tornado does).
    checks = CHECKS
    url = base_url(app_server)
    statuses: collections.Counter[int] = collections.Counter()

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    )
    def fuzz(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        statuses[response.status_code] += 1
        tally[str(response.status_code)] += 1
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
        assert b"Traceback" not in response.content
        case.validate_response(response, checks=checks)

    fuzz()
    assert sum(statuses.values()) >= 1
    assert all(200 <= s < 500 for s in statuses), statuses


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "method"), BODY_OPERATIONS, ids=[p for p, _ in BODY_OPERATIONS])
def test_oversized_body_is_413_json_on_every_body_operation(client, world, path, method):  # noqa: F811
    before = len(world[0].requests.all())
    body = json.dumps({"arn": "arn:aws:iam::111122223333:role/x", "pad": "x" * MAX_BODY})
    r = client.request(
        method.upper(),
        concrete(path),
        token=TOKEN,
        body=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 413
    assert r.json() == {"error": f"request body is larger than {MAX_BODY} bytes", "status": 413}
    assert len(world[0].requests.all()) == before


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", "request body is not valid JSON: Expecting property name enclosed in double "
         "quotes (line 1, column 2)"),
        (b"null", "request body must be a JSON object"),
        (b"\x00", "request body is not valid JSON: Expecting value (line 1, column 1)"),
        (b'{"arn": Infinity}', "request body is not valid JSON: Infinity is not allowed"),
        ({"justification": "x", "policy_document": POLICY},
         "field 'arn' must be an ARN (arn:aws...) of at most 2048 characters"),
        ({"arn": "arn:aws:iam::111122223333:role/app\x00x", "justification": "x",
          "policy_document": POLICY},
         "field 'arn' must be an ARN (arn:aws...) of at most 2048 characters"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "   ",
          "policy_document": POLICY},
         "field 'justification' must be 1 to 2000 characters"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": ["x"],
          "policy_document": POLICY},
         "field 'justification' must be 1 to 2000 characters"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x" * 2001,
          "policy_document": POLICY},
         "field 'justification' must be 1 to 2000 characters"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": "{\"Statement\": [}"},
         "field 'policy_document' is a string but not valid JSON"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": "Statement: Allow"},
         "field 'policy_document' is a string but not valid JSON"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": "[1, 2]"},
         "field 'policy_document' must be a JSON object"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": 42},
         "field 'policy_document' must be a JSON object"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": None},
         "field 'policy_document' must be a JSON object"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": {"Version": "2012-10-17"}},
         "field 'policy_document' must have a Statement"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": {"Statement": []}},
         "field 'policy_document' must have a Statement"),
        ({"arn": "arn:aws:iam::111122223333:role/app", "justification": "x",
          "policy_document": "{\"Statement\": \"Allow\"}"},
         "field 'policy_document' must have a Statement"),
    ],
    ids=[
        "truncated", "null", "nul-byte", "infinity", "no-arn", "arn-with-nul",
        "blank-justification", "list-justification", "long-justification",
        "policy-string-truncated", "policy-string-yaml", "policy-string-array", "policy-number",
        "policy-null", "policy-without-statement", "policy-empty-statement",
        "policy-string-statement",
    ],
)  # fmt: skip
def test_invalid_json_or_policy_is_400_naming_the_problem_and_stores_nothing(
    client,
    world,  # noqa: F811
    body,
    error,
):
    before = world[0].requests.all()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = client.post(
        "/api/v1/requests", token=TOKEN, body=raw, headers={"Content-Type": "application/json"}
    )
    assert r.status == 400
    assert r.json() == {"error": error, "status": 400}
    assert world[0].requests.all() == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        None,
    ],
)
def test_policy_request_in_another_content_type_is_415_and_stores_nothing(
    client,
    world,  # noqa: F811
    content_type,
):
    """A JSON body sent as text/plain (what a cross-site form can send) is refused."""
    before = world[0].requests.all()
    body = {
        "arn": "arn:aws:iam::111122223333:role/app",
        "justification": "x",
        "policy_document": POLICY,
    }
    headers = {} if content_type is None else {"Content-Type": content_type}
    r = client.post(
        "/api/v1/requests", token=TOKEN, body=json.dumps(body).encode(), headers=headers
    )
    assert r.status == 415
    assert r.json() == {"error": "request body must be application/json", "status": 415}
    assert world[0].requests.all() == before


def test_policy_request_with_unicode_is_stored_exactly(client, world):  # noqa: F811
    justification = "Zugriff für ünïcødé 🚀 \u202eRTL\u202c 中文"
    document = POLICY | {"Statement": [{"Sid": "Ünï", "Effect": "Allow", "Action": "s3:*"}]}
    r = client.post(
        "/api/v1/requests",
        token=TOKEN,
        json_body={
            "arn": "arn:aws:iam::111122223333:role/app",
            "justification": justification,
            "policy_document": document,
        },
    )
    assert r.status == 201
    created = r.json()
    assert created["justification"] == justification
    assert created["policy_document"] == document
    assert world[0].requests.get(created["id"]) == created


# --- every query parameter with hostile values ----------------------------------------------------

HOSTILE = {
    "nul": "a\x00b",
    "control": "\x01\x1b[31m\x7f",
    "invalid-utf8": b"\xff\xfe",
    "overlong-utf8": b"\xc0\xae\xc0\xae",
    "lone-surrogate": b"\xed\xa0\x80",
    "emoji": "🚀🔥" * 10,
    "rtl-override": "\u202eelor\u202c",
    "long": "x" * 20_000,
    "traversal": "../../../../etc/passwd",
    "html": '"><img src=x onerror=alert(1)><script>alert(1)</script>',
    "sql": "' OR 1=1 --",
    "percent": "%",
    "json": '{"$ne": null}',
    "negative": "-1",
    "huge-number": "9" * 400,
    "float": "1e309",
    "nan": "NaN",
}


def encode(value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode()
    return urllib.parse.quote(raw, safe="")


QUERY_CASES = [
    (path, method, parameter["name"])
    for path, method in OPERATIONS
    for parameter in SPEC["paths"][path][method].get("parameters", [])
    if parameter["in"] == "query"
]


@pytest.mark.parametrize(
    ("path", "method", "name"),
    QUERY_CASES,
    ids=[f"{m} {p} {n}" for p, m, n in QUERY_CASES],
)
def test_hostile_value_in_any_query_parameter_is_2xx_or_4xx_json(client, tally, path, method, name):
    """Every hostile value in one parameter; a failure names each value that broke it."""
    failures = []
    for hostile, value in HOSTILE.items():
        r = client.request(method.upper(), f"{concrete(path)}?{name}={encode(value)}", token=TOKEN)
        tally[str(r.status)] += 1
        problems = []
        if not 200 <= r.status < 500:
            problems.append(f"status {r.status}")
        try:
            body = r.json()
        except ValueError:
            problems.append("not JSON")
            body = {}
        if b"Traceback" in r.body:
            problems.append("traceback")
        if r.status >= 400 and not (
            set(body) == {"error", "status"} and body["status"] == r.status
        ):
            problems.append(f"error body {body!r:.100}")
        # An echoed value is JSON that no browser will sniff as a page.
        if r.headers.get_all("X-Content-Type-Options") != ["nosniff"]:
            problems.append("no nosniff")
        if problems:
            failures.append(f"{hostile}: {', '.join(problems)}: {r.body[:200]!r}")
    assert not failures, failures
