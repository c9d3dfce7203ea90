"""openapi.json is generated from make_app's routes and the models each handler method declares:
the description and the routes cannot drift apart, and a handler cannot validate or answer with
a model other than the one it declares."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Annotated

import pytest
import redis
import schemathesis
import tornado.routing
import tornado.web
from openapi_spec_validator import validate as validate_openapi

from inventory.cache.keys import Keys
from inventory.cache.redis_cache import RedisCache
from inventory.metrics import TaskOutcomes
from inventory.settings import load_settings
from inventory.web import limits
from inventory.web.api import QueryModel, ResponseModel, operation
from inventory.web.app import Readers, make_app, openapi_spec
from inventory.web.base import AuthenticatedHandler, NotFoundHandler
from inventory.web.openapi import build_spec, route_paths
from inventory.web.params import Integer
from tests.web.conftest import Server
from tests.web.test_app import TOKEN, TOKEN_HASH

#: A value for each path parameter, to turn a described path into one a request would use.
SAMPLES = {"request_id": str(uuid.UUID(int=7))}
METHODS = ("get", "post", "put", "patch", "delete")
SPEC = openapi_spec()


@pytest.fixture(scope="module")
def app() -> tornado.web.Application:
    """``make_app`` as ``inventory web`` builds it (nothing here connects to Redis)."""
    client = redis.Redis(port=1)
    keys = Keys()
    settings = load_settings(paths=[], environ={})
    return make_app(settings, Readers(RedisCache(client, keys), TaskOutcomes(client, keys)))


def rules(app: tornado.web.Application) -> list[tuple[str, type]]:
    return [
        (rule.matcher.regex.pattern, rule.target)
        for rule in app.wildcard_router.rules
        if isinstance(rule.matcher, tornado.routing.PathMatches)
    ]


def implemented(handler: type) -> set[str]:
    """The HTTP methods a handler class answers itself (not Tornado's 405 defaults)."""
    return {
        method
        for method in METHODS
        for cls in handler.__mro__
        if cls is not tornado.web.RequestHandler and method in vars(cls)
    }


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLES[m.group(1)], path)


def test_every_method_of_every_api_route_is_described(app):
    missing = []
    for pattern, handler in rules(app):
        if not pattern.startswith("/api/"):
            continue
        paths = [path for path, _ in route_paths(pattern)]
        for method in implemented(handler):
            missing += [f"{method} {p}" for p in paths if method not in SPEC["paths"].get(p, {})]
    assert missing == []


def test_every_described_operation_is_a_route_that_answers_it(app):
    routes = rules(app)
    unrouted = []
    for path, item in SPEC["paths"].items():
        handlers = [h for pattern, h in routes if re.fullmatch(pattern, concrete(path))]
        for method in item:
            if len(handlers) != 1 or method not in implemented(handlers[0]):
                unrouted.append(f"{method} {path}")
    assert unrouted == []


def test_only_the_json_api_is_described(app):
    """Pages, probes, /metrics and the login form are not part of it."""
    outside = {pattern for pattern, _ in rules(app) if not pattern.startswith("/api/")}
    assert all(path.startswith("/api/v1/") for path in SPEC["paths"])
    assert build_spec([(p, h) for p, h in rules(app) if p in outside])["paths"] == {}


def test_served_description_is_generated_from_the_app_routes(app):
    assert build_spec(rules(app)) == SPEC


def test_spec_is_a_valid_openapi_3_1_document_schemathesis_loads():
    validate_openapi(SPEC)
    schema = schemathesis.openapi.from_dict(SPEC)
    operations = [result.ok() for result in schema.get_all_operations()]
    loaded = {(op.path, op.method.lower()) for op in operations}
    described = {(path, method) for path, item in SPEC["paths"].items() for method in item}
    assert loaded == described


def test_query_parameters_come_from_the_query_model_in_order():
    parameters = SPEC["paths"]["/api/v1/policies"]["get"]["parameters"]
    assert [p["name"] for p in parameters] == [
        "q",
        "account",
        "kind",
        "region",
        "has_errors",
        "sort",
        "order",
        "offset",
        "limit",
    ]
    limit = parameters[-1]
    assert limit == {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Rows per page",
        "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
    }
    account = SPEC["paths"]["/api/v1/typeahead/managed_policies"]["get"]["parameters"][0]
    # Blank is absent, so a required parameter is never empty.
    assert account["required"] is True
    assert account["schema"] == {"type": "string", "pattern": r"^(\d{12})?$", "minLength": 1}


def test_path_parameters_and_word_groups_come_from_the_route_pattern():
    review = [p for p in SPEC["paths"] if p.startswith("/api/v1/requests/{request_id}/")]
    assert sorted(review) == [
        "/api/v1/requests/{request_id}/approve",
        "/api/v1/requests/{request_id}/cancel",
        "/api/v1/requests/{request_id}/reject",
    ]
    (request_id,) = SPEC["paths"]["/api/v1/requests/{request_id}"]["get"]["parameters"]
    assert request_id["in"] == "path"
    assert request_id["schema"]["pattern"] == (
        "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )


def test_a_route_pattern_with_unnamed_regex_cannot_be_described():
    with pytest.raises(ValueError, match="only named groups"):
        route_paths(r"/api/v1/things/([0-9]+)")


def test_every_operation_documents_its_errors_as_the_error_body():
    error = {"$ref": "#/components/schemas/ErrorBody"}
    assert SPEC["components"]["schemas"]["ErrorBody"]["additionalProperties"] is False
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            errors = {int(s) for s in op["responses"] if int(s) >= 400}
            expected = {400, 401, 414, 431, 503}
            if method == "post":
                expected |= {403, 411, 413}
            if "requestBody" in op:
                expected |= {415}
            assert expected <= errors, (path, method)
            for status in errors:
                assert op["responses"][str(status)]["content"]["application/json"] == {
                    "schema": error
                }


def test_request_bodies_come_from_the_body_models():
    created = SPEC["paths"]["/api/v1/requests"]["post"]
    review = SPEC["paths"]["/api/v1/requests/{request_id}/cancel"]["post"]
    schemas = SPEC["components"]["schemas"]
    assert created["requestBody"]["required"] is True
    assert review["requestBody"]["required"] is False
    assert schemas["NewRequest"]["required"] == ["arn", "justification", "policy_document"]
    assert "required" not in schemas["Review"]
    assert created["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PolicyRequest"
    }


# --- a handler held to what it declares ----------------------------------------------------------


class Limit(QueryModel):
    limit: Annotated[int, Integer(1, 10)] = 5
    """How many"""


class Other(QueryModel):
    limit: Annotated[int, Integer(1, 10)] = 5
    """How many"""


class Count(ResponseModel):
    """The count"""

    count: int


class Total(ResponseModel):
    """The total"""

    total: int


class Declared(AuthenticatedHandler):
    @operation(Count, query=Limit, status=202)
    def get(self) -> None:
        """As declared."""
        self.write_model(Count(count=self.query(Limit).limit))


class WrongQuery(AuthenticatedHandler):
    @operation(Count, query=Limit)
    def get(self) -> None:
        """Validates with another model."""
        self.write_model(Count(count=self.query(Other).limit))


class WrongResponse(AuthenticatedHandler):
    @operation(Count, query=Limit)
    def get(self) -> None:
        """Answers with another model."""
        self.write_model(Total(total=self.query(Limit).limit))


@pytest.fixture(scope="module")
def declared_server() -> Iterator[Server]:
    client = redis.Redis(port=1)
    keys = Keys()
    settings = load_settings(
        paths=[], environ={"INVENTORY_WEB__API_TOKEN_HASHES": f"[{TOKEN_HASH}]"}
    )
    deps = {
        "settings": settings,
        "readers": Readers(RedisCache(client, keys), TaskOutcomes(client, keys)),
    }
    routes = [
        ("/declared", Declared),
        ("/wrong-query", WrongQuery),
        ("/wrong-response", WrongResponse),
    ]
    app = limits.Application(
        [(pattern, handler, deps) for pattern, handler in routes],
        web=settings.web,
        default_handler_class=NotFoundHandler,
        default_handler_args=deps,
        serve_traceback=False,
    )
    server = Server(app).start()
    yield server
    server.stop()


def test_a_declared_operation_validates_and_answers_with_its_models(declared_server):
    ok = declared_server.get("/declared?limit=3", token=TOKEN)
    bad = declared_server.get("/declared?limit=11", token=TOKEN)
    assert (ok.status, ok.json()) == (202, {"count": 3})
    assert (bad.status, bad.json()) == (
        400,
        {"error": "parameter 'limit' must be an integer from 1 to 10", "status": 400},
    )


@pytest.mark.parametrize("path", ["/wrong-query", "/wrong-response"])
def test_a_handler_using_a_model_it_did_not_declare_fails_loudly(declared_server, path):
    r = declared_server.get(f"{path}?limit=3", token=TOKEN)
    assert (r.status, r.json()) == (500, {"error": "Internal Server Error", "status": 500})
