"""The OpenAPI 3.1 description of the JSON API (``/api/v1/...``), served at
``GET /api/v1/openapi.json``.

Built from the same constants the handlers validate with, so a limit changed in a handler
changes here too; a test checks that every registered ``/api/v1`` route is described.
"""

from __future__ import annotations

import copy
from typing import Any

from inventory.cache.requests import STATUSES
from inventory.web import params
from inventory.web.base import AuthenticatedHandler
from inventory.web.handlers import access, requests
from inventory.web.handlers.history import FEED_MAX_LIMIT, HISTORY_KINDS, RESOURCE_MAX_LIMIT
from inventory.web.search import MAX_LIMIT, SORT_COLUMNS

JSON = "application/json"
ACCOUNT_PATTERN = r"^\d{12}$"
OPTIONAL_ACCOUNT = r"^(\d{12})?$"
OPTIONAL_TOKEN = r"^([\w.:/-]{1,128})?$"
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_NUMBER = {"type": ["number", "null"]}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
    "additionalProperties": False,
}

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


def _error(status: int) -> dict[str, Any]:
    return {
        "description": ERRORS[status],
        "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {JSON: {"schema": schema}}}}


def _query(
    name: str, schema: dict[str, Any], description: str, required: bool = False
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def _operation(
    summary: str,
    ok: dict[str, Any],
    errors: tuple[int, ...],
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    # Every authenticated operation can answer 400 (a parameter or the identity headers), 401,
    # 414 and 431 (an oversized request head) and 503 (Redis down).
    statuses = sorted({400, 401, 414, 431, 503, *errors})
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": ok | {str(s): _error(s) for s in statuses},
    }
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {JSON: {"schema": body}},
        }
    return operation


ARN_PARAM = _query(
    "arn",
    {"type": "string", "pattern": "^arn:", "minLength": 5, "maxLength": 2048},
    "The resource's ARN",
    required=True,
)
ROLE_ARN_PARAM = _query(
    "arn",
    {
        "type": "string",
        "pattern": r"^arn:aws[\w-]*:iam::\d{12}:role/\S+$",
        "maxLength": access.MAX_ARN,
    },
    "An IAM role ARN",
    required=True,
)
LIMIT = {"type": "integer"}
RECORD = {
    "type": "object",
    "required": ["arn"],
    "properties": {"arn": {"type": "string"}, "kind": {"type": "string"}},
}
REQUEST = {
    "type": "object",
    "required": [
        "arn",
        "kind",
        "id",
        "resource_arn",
        "account_id",
        "requester",
        "justification",
        "status",
        "policy_document",
        "reviewer",
        "created_at",
        "updated_at",
    ],
    "properties": {
        "arn": {"type": "string"},
        "kind": {"type": "string"},
        "id": {"type": "string"},
        "resource_arn": {"type": "string"},
        "account_id": {"type": "string", "pattern": ACCOUNT_PATTERN},
        "requester": {"type": "string"},
        "justification": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "policy_document": {"type": "object"},
        "policy_diff": {"type": ["object", "array", "null"]},
        "reviewer": NULLABLE_STRING,
        "review_comment": NULLABLE_STRING,
        "created_at": {"type": "number"},
        "updated_at": {"type": "number"},
    },
}
REQUEST_ID = {"type": "string", "pattern": f"^{requests.REQUEST_ID}$"}
REVIEW_BODY = {
    "type": "object",
    "properties": {
        "comment": {"type": "string", "minLength": 1, "maxLength": requests.MAX_TEXT},
    },
}
PAGE_ROW = {
    "type": "object",
    "required": ["arn", "name", "kind", "account_id", "region", "tags", "errors"],
    "properties": {
        "arn": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"type": "string"},
        "account_id": NULLABLE_STRING,
        "account_name": NULLABLE_STRING,
        "region": {"type": "string"},
        "tags": {"type": "object"},
        "errors": {"type": "integer"},
        "owner": NULLABLE_STRING,
        "template": NULLABLE_STRING,
        "last_updated": {"type": "number"},
    },
}
CHANGE = {
    "type": "object",
    "required": ["id", "arn", "kind", "account_id", "region", "at", "change", "diff"],
    "properties": {
        "id": {"type": "string"},
        "arn": {"type": "string"},
        "kind": {"type": "string"},
        "account_id": {"type": "string"},
        "region": {"type": "string"},
        "at": {"type": "number"},
        "change": {"type": "string", "enum": ["created", "updated", "deleted"]},
        "diff": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["op", "path"],
                "properties": {
                    "op": {"type": "string", "enum": ["add", "remove", "replace"]},
                    "path": {"type": "string"},
                    "old": {},
                    "new": {},
                },
            },
        },
        "actor": NULLABLE_STRING,
        "event_name": NULLABLE_STRING,
        "event_time": NULLABLE_NUMBER,
        "event_id": NULLABLE_STRING,
    },
}
HISTORY_KIND = {"type": "string", "enum": ["", *HISTORY_KINDS]}
TIME = {
    "anyOf": [
        {"type": "number", "minimum": 0, "maximum": params.MAX_TIME},
        {"type": "string", "format": "date-time"},
    ]
}
TYPEAHEAD_RESULT = {
    "type": "object",
    "required": ["arn"],
    "properties": {"arn": {"type": "string"}, "name": {"type": "string"}},
}


def _paths() -> dict[str, Any]:
    # An optional filter given empty is the same as not given (what a form with a blank field
    # sends); a required one is never empty.
    text = {"type": "string", "maxLength": 256}
    kind = {"type": "string", "pattern": OPTIONAL_TOKEN}
    account = {"type": "string", "pattern": OPTIONAL_ACCOUNT}
    required_account = {"type": "string", "pattern": ACCOUNT_PATTERN}
    paths: dict[str, Any] = {
        "/api/v1/openapi.json": {
            "get": _operation(
                "This description of the API",
                _ok("OpenAPI 3.1 document", {"type": "object", "required": ["openapi", "paths"]}),
                (),
            )
        },
        "/api/v1/whoami": {
            "get": _operation(
                "The caller's name, groups, how it was identified and whether it is an admin",
                _ok(
                    "The identity",
                    {
                        "type": "object",
                        "required": ["name", "groups", "via", "admin"],
                        "properties": {
                            "name": {"type": "string"},
                            "groups": {"type": "array", "items": {"type": "string"}},
                            "via": {"type": "string", "enum": ["proxy", "token", "cookie"]},
                            "admin": {"type": "boolean"},
                        },
                    },
                ),
                (),
            )
        },
        "/api/v1/resource": {
            "get": _operation(
                "One cached record by ARN",
                _ok("The record as cached", RECORD),
                (404,),
                [ARN_PARAM],
            )
        },
        "/api/v1/resource/details": {
            "get": _operation(
                "A cached record with its partition, account, documents, errors and principals",
                _ok(
                    "The record and what the resource page shows with it",
                    {
                        "type": "object",
                        "required": [
                            "record",
                            "kind",
                            "account_id",
                            "account_name",
                            "region",
                            "refreshed_at",
                            "attached_documents",
                            "cloudtrail_errors",
                            "principals",
                        ],
                        "properties": {
                            "record": RECORD,
                            "kind": {"type": "string"},
                            "account_id": {"type": "string"},
                            "account_name": NULLABLE_STRING,
                            "region": {"type": "string"},
                            "refreshed_at": NULLABLE_NUMBER,
                            "attached_documents": {"type": "object"},
                            "cloudtrail_errors": {"type": ["object", "null"]},
                            "principals": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                (404,),
                [ARN_PARAM],
            )
        },
        "/api/v1/resource/history": {
            "get": _operation(
                "A resource's recorded changes (created, updated, deleted), newest first",
                _ok(
                    "The changes with their diffs",
                    {
                        "type": "object",
                        "required": ["arn", "kind", "changes", "retention_days"],
                        "properties": {
                            "arn": {"type": "string"},
                            "kind": {"type": "string"},
                            "changes": {"type": "array", "items": CHANGE},
                            "retention_days": {"type": "integer"},
                        },
                    },
                ),
                (404,),
                [
                    ARN_PARAM,
                    _query(
                        "kind",
                        HISTORY_KIND,
                        "The resource's kind; needed only when it is no longer cached",
                    ),
                    _query(
                        "limit",
                        LIMIT | {"minimum": 1, "maximum": RESOURCE_MAX_LIMIT},
                        "How many changes (default 100)",
                    ),
                ],
            )
        },
        "/api/v1/changes": {
            "get": _operation(
                "Recent changes of every resource, newest first, filtered and paged by cursor",
                _ok(
                    "One page of the feed",
                    {
                        "type": "object",
                        "required": ["changes", "next_cursor", "feed_span"],
                        "properties": {
                            "changes": {"type": "array", "items": CHANGE},
                            "next_cursor": NULLABLE_STRING,
                            "feed_span": {
                                "type": "object",
                                "required": ["oldest", "newest"],
                                "properties": {
                                    "oldest": NULLABLE_NUMBER,
                                    "newest": NULLABLE_NUMBER,
                                },
                            },
                        },
                    },
                ),
                (),
                [
                    _query("account", account, "Only this account's changes"),
                    _query("kind", HISTORY_KIND, "Only changes of this kind"),
                    _query(
                        "since",
                        TIME,
                        "Changes at or after this time: unix seconds or ISO-8601 (UTC unless "
                        "it has an offset)",
                    ),
                    _query("until", TIME, "Changes at or before this time; not before 'since'"),
                    _query(
                        "limit",
                        LIMIT | {"minimum": 1, "maximum": FEED_MAX_LIMIT},
                        "Page size (default 100)",
                    ),
                    _query(
                        "cursor",
                        {"type": "string", "pattern": r"^(\d{1,20}-\d{1,20})?$"},
                        "The next_cursor of the previous page: the page of older changes",
                    ),
                ],
            )
        },
        "/api/v1/partitions": {
            "get": _operation(
                "Every cached partition with its item count and freshness",
                _ok(
                    "The partitions",
                    {
                        "type": "object",
                        "required": ["partitions"],
                        "properties": {
                            "partitions": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["kind", "account_id", "region", "count"],
                                    "properties": {
                                        "kind": {"type": "string"},
                                        "account_id": {"type": "string"},
                                        "region": {"type": "string"},
                                        "count": {"type": "integer", "minimum": 0},
                                        "refreshed_at": NULLABLE_NUMBER,
                                        "complete": {"type": ["boolean", "null"]},
                                    },
                                },
                            }
                        },
                    },
                ),
                (),
            )
        },
        "/api/v1/accounts": {
            "get": _operation(
                "The account mapping, sorted by id",
                _ok(
                    "The accounts",
                    {
                        "type": "object",
                        "required": ["accounts"],
                        "properties": {
                            "accounts": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["id"],
                                    "properties": {"id": {"type": "string"}},
                                },
                            }
                        },
                    },
                ),
                (),
            )
        },
        "/api/v1/accounts/freshness": {
            "get": _operation(
                "Per account and kind: age of the cached data and whether it is stale",
                _ok(
                    "Freshness",
                    {
                        "type": "object",
                        "required": ["checked_at", "accounts"],
                        "properties": {
                            "checked_at": {"type": "number"},
                            "accounts": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["id", "stale", "kinds"],
                                    "properties": {
                                        "id": {"type": "string"},
                                        "name": NULLABLE_STRING,
                                        "status": NULLABLE_STRING,
                                        "stale": {"type": "boolean"},
                                        "kinds": {"type": "object"},
                                    },
                                },
                            },
                        },
                    },
                ),
                (),
            )
        },
        "/api/v1/policies": {
            "get": _operation(
                "Filter, sort and page every cached resource (the policies table)",
                _ok(
                    "One page of rows and the total that match",
                    {
                        "type": "object",
                        "required": ["total", "rows", "offset", "limit"],
                        "properties": {
                            "total": {"type": "integer", "minimum": 0},
                            "rows": {"type": "array", "items": PAGE_ROW},
                            "offset": {"type": "integer"},
                            "limit": {"type": "integer"},
                        },
                    },
                ),
                (),
                [
                    _query("q", text, "Free text: substrings of ARN, name and tags"),
                    _query("account", account, "12-digit account id"),
                    _query("kind", kind, "Resource kind, e.g. iam_role"),
                    _query("region", kind, "Region, or 'global'"),
                    _query(
                        "has_errors",
                        {"type": "string", "enum": ["", "true", "false", "1", "0", "yes", "no"]},
                        "Only resources with (or without) CloudTrail errors",
                    ),
                    _query("sort", {"type": "string", "enum": ["", *SORT_COLUMNS]}, "Sort column"),
                    _query("order", {"type": "string", "enum": ["", "asc", "desc"]}, "Sort order"),
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": 10_000_000},
                        "Rows to skip",
                    ),
                    _query(
                        "limit",
                        LIMIT | {"minimum": 1, "maximum": MAX_LIMIT},
                        "Rows per page",
                    ),
                ],
            )
        },
        "/api/v1/policies/facets": {
            "get": _operation(
                "Distinct kinds, accounts and regions for the filter menus",
                _ok(
                    "The facet values",
                    {
                        "type": "object",
                        "required": ["kind", "account_id", "region"],
                        "properties": {
                            f: {"type": "array", "items": {"type": "string"}}
                            for f in ("kind", "account_id", "region")
                        },
                    },
                ),
                (),
            )
        },
        "/api/v1/typeahead/resources": {
            "get": _operation(
                "ARNs whose name starts with, then contains, the text",
                _ok(
                    "Matches",
                    {
                        "type": "object",
                        "required": ["results"],
                        "properties": {"results": {"type": "array", "items": TYPEAHEAD_RESULT}},
                    },
                ),
                (),
                [
                    _query("q", text | {"minLength": 1}, "Text typed so far", required=True),
                    _query("kind", kind, "Only this kind"),
                    _query("limit", LIMIT | {"minimum": 1, "maximum": 100}, "Most results"),
                ],
            )
        },
        "/api/v1/typeahead/managed_policies": {
            "get": _operation(
                "Managed policies attached in an account whose name matches the text",
                _ok(
                    "Matches",
                    {
                        "type": "object",
                        "required": ["results"],
                        "properties": {
                            "results": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["arn", "name", "aws_managed"],
                                    "properties": {
                                        "arn": {"type": "string"},
                                        "name": {"type": "string"},
                                        "aws_managed": {"type": "boolean"},
                                    },
                                },
                            }
                        },
                    },
                ),
                (),
                [
                    _query("account", required_account, "12-digit account id", required=True),
                    _query("q", {"type": "string", "maxLength": 128}, "Text typed so far"),
                    _query("limit", LIMIT | {"minimum": 1, "maximum": 100}, "Most results"),
                ],
            )
        },
        "/api/v1/roles/eligible": {
            "get": _operation(
                "Role ARNs a group or user may use",
                _ok(
                    "The roles",
                    {
                        "type": "object",
                        "required": ["principal", "roles"],
                        "properties": {
                            "principal": {"type": "string"},
                            "roles": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                (),
                [
                    _query(
                        "principal",
                        {
                            "type": "string",
                            "pattern": r"\S",
                            "maxLength": access.MAX_PRINCIPAL,
                        },
                        "A group name or an email",
                        required=True,
                    )
                ],
            )
        },
        "/api/v1/roles/principals": {
            "get": _operation(
                "The groups and users who may use a role",
                _ok(
                    "The principals",
                    {
                        "type": "object",
                        "required": ["arn", "principals"],
                        "properties": {
                            "arn": {"type": "string"},
                            "principals": {"type": "array", "items": {"type": "string"}},
                        },
                    },
                ),
                (),
                [ROLE_ARN_PARAM],
            )
        },
        "/api/v1/refresh": {
            "post": _operation(
                "Enqueue a re-sync of the account and kind of a cached resource",
                _ok(
                    "The task was queued, now or by an earlier request (one per task and account "
                    "is queued or running at a time; its id is given to every asker)",
                    {
                        "type": "object",
                        "required": [
                            "task_id",
                            "task",
                            "account_id",
                            "requested_at",
                            "already_queued",
                        ],
                        "properties": {
                            "task_id": {"type": "string"},
                            "task": {"type": "string"},
                            "account_id": {"type": "string"},
                            "requested_at": {"type": "number"},
                            "already_queued": {"type": "boolean"},
                        },
                    },
                    202,
                ),
                (403, 404, 411, 413, 429),
                [ARN_PARAM],
            )
        },
        "/api/v1/refresh/status": {
            "get": _operation(
                "Whether the resource's partition was stored again since a time",
                _ok(
                    "The partition's freshness",
                    {
                        "type": "object",
                        "required": ["arn", "since", "refreshed", "refreshed_at"],
                        "properties": {
                            "arn": {"type": "string"},
                            "since": {"type": "number"},
                            "refreshed": {"type": "boolean"},
                            "refreshed_at": NULLABLE_NUMBER,
                        },
                    },
                ),
                (404,),
                [
                    ARN_PARAM,
                    _query(
                        "since",
                        {"type": "number", "minimum": 0, "maximum": 1e12},
                        "Unix time of the refresh request",
                        required=True,
                    ),
                ],
            )
        },
        "/api/v1/requests": {
            "get": _operation(
                "Policy requests, newest first",
                _ok(
                    "One page of requests",
                    {
                        "type": "object",
                        "required": ["requests", "total", "limit", "offset"],
                        "properties": {
                            "requests": {"type": "array", "items": REQUEST},
                            "total": {"type": "integer", "minimum": 0},
                            "limit": {"type": "integer"},
                            "offset": {"type": "integer"},
                        },
                    },
                ),
                (),
                [
                    _query("status", {"type": "string", "enum": ["", *STATUSES]}, "Status"),
                    _query("account", account, "12-digit account id"),
                    _query("arn", {"type": "string"}, "The resource a request is for"),
                    _query("requester", {"type": "string"}, "Who asked"),
                    _query(
                        "limit",
                        LIMIT | {"minimum": 1, "maximum": requests.MAX_LIMIT},
                        "Requests per page",
                    ),
                    _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**9}, "Skip"),
                ],
            ),
            "post": _operation(
                "Ask for a policy change on a resource",
                _ok("The stored request (pending)", REQUEST, 201),
                (403, 409, 411, 413, 415, 429),
                body={
                    "type": "object",
                    "required": ["arn", "justification", "policy_document"],
                    "properties": {
                        "arn": {
                            "type": "string",
                            "pattern": r"^\s*arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:(\d{12})?:\S+",
                            "maxLength": requests.MAX_ARN,
                        },
                        "justification": {
                            "type": "string",
                            "pattern": r"\S",
                            "maxLength": requests.MAX_TEXT,
                        },
                        "policy_document": {
                            "oneOf": [
                                {"type": "object", "required": ["Statement"]},
                                {"type": "string", "contentMediaType": JSON},
                            ]
                        },
                    },
                },
            ),
        },
        "/api/v1/requests/{request_id}": {
            "get": _operation(
                "One policy request",
                _ok("The request", REQUEST),
                (404,),
                [
                    {
                        "name": "request_id",
                        "in": "path",
                        "required": True,
                        "schema": REQUEST_ID,
                    }
                ],
            )
        },
    }
    for action, who in (
        ("approve", "an admin"),
        ("reject", "an admin"),
        ("cancel", "the requester"),
    ):
        paths[f"/api/v1/requests/{{request_id}}/{action}"] = {
            "post": _operation(
                f"{action.capitalize()} a pending request ({who} only)",
                _ok("The request with its new status", REQUEST),
                (403, 404, 409, 411, 413, 415),
                [{"name": "request_id", "in": "path", "required": True, "schema": REQUEST_ID}],
                body=REVIEW_BODY,
                body_required=False,
            )
        }
    return paths


def build_spec() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the JSON API."""
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
        "paths": _paths(),
        "components": {
            "schemas": {"Error": ERROR_SCHEMA},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token whose SHA-256 is in web.api_tokens or "
                    "web.api_token_hashes",
                },
                "cookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "inventory_session",
                    "description": "The signed login cookie set by POST /login",
                },
            },
        },
    }


_SPEC = build_spec()


def spec() -> dict[str, Any]:
    """A copy of the document (callers may change theirs)."""
    return copy.deepcopy(_SPEC)


class OpenApiHandler(AuthenticatedHandler):
    """``GET /api/v1/openapi.json``: this API's OpenAPI description."""

    def get(self) -> None:
        self.write_json(_SPEC)


ROUTES = [(r"/api/v1/openapi.json", OpenApiHandler)]
