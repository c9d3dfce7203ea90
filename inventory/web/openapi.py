"""The OpenAPI 3.1 description of the JSON API, served at ``GET /api/v1/openapi.json``.

Generated from the route table and the models each handler method declares with
``api.operation``: its query model gives the parameters, its body and response models (and
``ErrorBody``) the schemas, its docstring the summary. Nothing here is written per endpoint, so
the description cannot drift from what the handlers validate and answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

import tornado.routing
import tornado.web
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

from inventory.web.api import ErrorBody, Item, Operation, QueryModel, operation, operations
from inventory.web.base import AuthenticatedHandler

JSON = "application/json"
REF = "#/components/schemas/{model}"
Routes = Iterable[tuple[str, type[tornado.web.RequestHandler]]]

ERRORS = {
    400: "A parameter or the body is invalid; the message names it",
    401: "No identity, or a bearer token that matches no configured token",
    403: "The caller lacks a required group, or a cross-site write was refused",
    404: "Nothing cached or stored under that key",
    409: "The request is no longer pending, or the caller already has web.max_open_requests "
    "pending requests",
    411: "A body sent without a Content-Length",
    413: "The body is larger than web.max_body_bytes",
    414: "The request target is longer than web.max_url_bytes",
    415: "A request body that is not application/json",
    429: "The caller is over its rate limit; Retry-After says how many seconds to wait",
    431: "The request headers are larger than web.max_header_bytes",
    503: "Redis, the search index, the requests table, the change history or the task queue "
    "is unavailable",
}
#: What any authenticated operation can answer: a bad parameter or identity header (400), no
#: identity (401), an oversized request head (414, 431), Redis away (503).
COMMON_ERRORS = (400, 401, 414, 431, 503)
#: What a write can answer besides: a cross-site request (403), a body without a length (411)
#: or too large (413).
WRITE_ERRORS = (403, 411, 413)
SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token whose SHA-256 is in web.api_tokens or web.api_token_hashes",
    },
    "cookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "inventory_session",
        "description": "The signed login cookie set by POST /login",
    },
}


class Schemas(GenerateJsonSchema):
    """Pydantic's JSON schemas, without ``default: null``: an optional field or parameter that
    is not given is absent (and its schema need not admit null)."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> dict[str, Any]:
        found = super().default_schema(schema)
        if "default" in found and found["default"] is None:
            del found["default"]
        return found


# --- paths from route patterns -------------------------------------------------------------------

_GROUP = re.compile(r"\(\?P<(\w+)>([^()]*)\)")
_WORDS = re.compile(r"\w+(\|\w+)*")
_REGEX_SYNTAX = re.compile(r"[\\()\[\]{}*+?|^$]")


def _literal(text: str, pattern: str) -> str:
    if _REGEX_SYNTAX.search(text):
        raise ValueError(f"route {pattern!r}: only named groups can be described, not {text!r}")
    return text


def route_paths(pattern: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """(OpenAPI path, its path parameters) for each path a route pattern matches.

    A named group of plain words (``(?P<action>approve|reject)``) is one path per word; any
    other named group is a path parameter whose schema is the group's pattern.
    """
    body = pattern.removesuffix("$")
    paths: list[tuple[str, list[dict[str, Any]]]] = [("", [])]
    end = 0
    for group in _GROUP.finditer(body):
        literal = _literal(body[end : group.start()], pattern)
        name, regex = group.groups()
        if _WORDS.fullmatch(regex):
            words = regex.split("|")
            paths = [(p + literal + word, ps) for p, ps in paths for word in words]
        else:
            schema = {"type": "string", "pattern": f"^{regex}$"}
            param = {"name": name, "in": "path", "required": True, "schema": schema}
            paths = [(p + literal + f"{{{name}}}", [*ps, param]) for p, ps in paths]
        end = group.end()
    tail = _literal(body[end:], pattern)
    return [(p + tail, ps) for p, ps in paths]


def described(routes: Routes) -> Iterator[tuple[str, list[dict[str, Any]], str, Operation]]:
    """(path, path parameters, method, operation) of every declared operation of the routes."""
    for pattern, handler in routes:
        declared = operations(handler)
        if not declared:
            continue
        for path, path_params in route_paths(pattern):
            for method, op in declared.items():
                yield path, path_params, method, op


# --- operations ----------------------------------------------------------------------------------


def query_parameters(model: type[QueryModel]) -> list[dict[str, Any]]:
    """The query model's fields as OpenAPI parameters, in order."""
    schema = model.model_json_schema(schema_generator=Schemas)
    required = set(schema.get("required", ()))
    found = []
    for name, prop in schema["properties"].items():
        parameter = {"name": name, "in": "query", "required": name in required}
        if "description" in prop:
            parameter["description"] = prop["description"]
        prop = {k: v for k, v in prop.items() if k not in ("title", "description")}
        if name in required and prop.get("type") == "string":
            # Blank is absent, so a required parameter is never empty.
            prop["minLength"] = max(1, prop.get("minLength", 0))
        found.append(parameter | {"schema": prop})
    return found


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def operation_object(
    op: Operation,
    method: str,
    path_params: list[dict[str, Any]],
    refs: dict[tuple[Any, JsonSchemaMode], dict[str, Any]],
) -> dict[str, Any]:
    """The OpenAPI operation object of one declared handler method."""
    errors = {*COMMON_ERRORS, *op.errors}
    if method != "get":
        errors.update(WRITE_ERRORS)
    if op.body is not None:
        errors.add(415)
    error = refs[(ErrorBody, "serialization")]
    responses = {
        str(op.status): {
            "description": _first_line(op.response.__doc__) or "OK",
            "content": _content(refs[(op.response, "serialization")]),
        }
    }
    responses |= {
        str(s): {"description": ERRORS[s], "content": _content(error)} for s in sorted(errors)
    }
    found: dict[str, Any] = {
        "summary": op.summary,
        "parameters": path_params + (query_parameters(op.query) if op.query else []),
        "responses": responses,
    }
    if op.body is not None:
        required = any(f.is_required() for f in op.body.model_fields.values())
        content = _content(refs[(op.body, "validation")])
        found["requestBody"] = {"required": required, "content": content}
    return found


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ").strip()


# --- the document --------------------------------------------------------------------------------


def build_spec(routes: Routes) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every declared operation of ``routes``."""
    found = list(described(routes))
    models: list[tuple[type[BaseModel], JsonSchemaMode]] = [(ErrorBody, "serialization")]
    for _, _, _, op in found:
        models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    refs, definitions = models_json_schema(
        list(dict.fromkeys(models)), ref_template=REF, schema_generator=Schemas
    )
    paths: dict[str, dict[str, Any]] = {}
    for path, path_params, method, op in found:
        paths.setdefault(path, {})[method] = operation_object(op, method, path_params, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "inventory",
            "version": "1",
            "description": "Read the AWS inventory cache; ask for and review policy changes. "
            "Every error is JSON: {error, status}; never a stack trace.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@functools.cache
def _cached(routes: tuple[tuple[str, type[tornado.web.RequestHandler]], ...]) -> dict[str, Any]:
    return build_spec(routes)


def spec_of(application: tornado.web.Application) -> dict[str, Any]:
    """The document of an application's own routes (built once per route table)."""
    routes = tuple(
        (rule.matcher.regex.pattern, rule.target)
        for rule in application.wildcard_router.rules
        if isinstance(rule.matcher, tornado.routing.PathMatches) and isinstance(rule.target, type)
    )
    return _cached(routes)


class OpenApiDocument(Item):
    """OpenAPI 3.1 document"""

    openapi: str
    paths: dict[str, Any]


class OpenApiHandler(AuthenticatedHandler):
    """``GET /api/v1/openapi.json``: this API's OpenAPI description."""

    @operation(OpenApiDocument)
    def get(self) -> None:
        """This description of the API."""
        self.write_model(OpenApiDocument.model_validate(spec_of(self.application)))


ROUTES = [(r"/api/v1/openapi.json", OpenApiHandler)]
