"""The JSON API's shapes as pydantic models, and the operations that join them to handlers.

An endpoint declares its models once, on the handler method (whose one-line docstring is the
operation's summary)::

    @operation(PolicyPage, query=PoliciesQuery)
    def get(self) -> None:
        query = self.query(PoliciesQuery)
        ...
        self.write_model(PolicyPage(...))

``BaseHandler.query``/``body`` validate with those models (400 naming the parameter or field),
``write_model`` builds the response body from one, and ``openapi.build_spec`` describes every
route from the same declarations. The models live in ``web/models/<handler module>.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic_core import CoreSchema, PydanticCustomError, PydanticUseDefault, core_schema

F = TypeVar("F", bound=Callable[..., Any])
PROBLEM = "problem"


def problem(text: str, name: str | None = None) -> PydanticCustomError:
    """A validation failure whose message is ``text`` (``name``: the field, when not its own)."""
    context = {"problem": text} | ({"name": name} if name else {})
    return PydanticCustomError(PROBLEM, "{problem}", context)


class Wire:
    """Pydantic metadata for one value as a client sends it: the rule that reads it and its
    JSON schema, so validation and the OpenAPI description are one thing.

    An absent value (``read`` gives None) is the field's default; a field without one is
    refused with ``missing``.
    """

    missing = "is required"

    def read(self, value: Any) -> Any:
        """The value as the rule sees it (None: absent)."""
        return value

    def parse(self, value: Any) -> Any:
        """The validated value; raises ``problem(...)`` when it is not one."""
        return value

    def schema(self) -> dict[str, Any]:
        return {}

    def _validate(self, value: Any) -> Any:
        found = self.read(value)
        if found is None:
            raise PydanticUseDefault()
        return self.parse(found)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return self.schema()


@dataclass(frozen=True)
class OneOf:
    """Metadata for a response string that is one of ``values`` (validated and described)."""

    values: tuple[str, ...]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return handler(schema) | {"enum": list(self.values)}

    def _check(self, value: str) -> str:
        if value not in self.values:
            raise ValueError(f"must be one of {', '.join(self.values)}")
        return value


class Input(BaseModel):
    """What a client sends: each field is ``Annotated[type, <Wire rule>]`` with a docstring that
    describes it; fields are checked (and refused) in order."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)
    #: How a refusal names the value (``parameter 'limit' must be ...``).
    noun: ClassVar[str] = "value"


class QueryModel(Input):
    """An endpoint's query parameters (rules from ``params``)."""

    noun = "parameter"


class BodyModel(Input):
    """An endpoint's JSON object body; unknown fields are ignored."""

    noun = "field"


class ResponseModel(BaseModel):
    """A response body the handler builds: every field given, nothing else."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Item(BaseModel):
    """A record as stored (cache, search index, tables): the documented fields are checked, any
    others are served as they are, and absent optional ones stay absent."""

    model_config = ConfigDict(extra="allow", use_attribute_docstrings=True)


class ErrorBody(ResponseModel):
    """Every error: the reason and the status; never a stack trace."""

    error: str
    status: int


M = TypeVar("M", bound=Input)


def validate(model: type[M], values: dict[str, Any]) -> M:
    """``values`` (every field of ``model``, None when absent) as ``model``.

    Raises ``Refused(name, problem)`` for the first field (in order) that is wrong.
    """
    try:
        return model.model_validate({name: values.get(name) for name in model.model_fields})
    except ValidationError as exc:
        raise refusal(model, exc) from None


class Refused(Exception):
    """A query parameter or body field is wrong: ``str(self)`` names it and says why."""

    def __init__(self, noun: str, name: str, text: str) -> None:
        super().__init__(f"{noun} '{name}' {text}")


def refusal(model: type[Input], exc: ValidationError) -> Refused:
    error = exc.errors(include_url=False)[0]
    context = error.get("ctx") or {}
    loc = error["loc"]
    name = str(context.get("name") or (loc[0] if loc else "?"))
    if error["type"] == PROBLEM:
        text = str(context["problem"])
    elif error["type"] == "missing":
        text = wire_of(model, name).missing
    else:  # a model's own type check, not one of the rules (a bug worth a plain message)
        text = "is invalid"
    return Refused(model.noun, name, text)


def wire_of(model: type[BaseModel], name: str) -> Wire:
    found = [m for m in model.model_fields[name].metadata if isinstance(m, Wire)]
    return found[0] if found else Wire()


# --- operations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """What one handler method takes and answers, as the OpenAPI description states it."""

    summary: str
    response: type[BaseModel]
    status: int
    query: type[QueryModel] | None
    body: type[BodyModel] | None
    errors: tuple[int, ...]


def operation(
    response: type[BaseModel],
    *,
    query: type[QueryModel] | None = None,
    body: type[BodyModel] | None = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
) -> Callable[[F], F]:
    """Declare a handler method an API operation; its docstring is the summary.

    ``errors``: the statuses it answers beyond those every operation can (400, 401, 414, 431,
    503; 403, 411 and 413 for a write; 415 with a body).
    """

    def declare(method: F) -> F:
        summary = inspect.getdoc(method) or ""
        method.__dict__["__operation__"] = Operation(summary, response, status, query, body, errors)
        return method

    return declare


METHODS = ("get", "post", "put", "patch", "delete")


def operations(handler: type) -> dict[str, Operation]:
    """The declared operations of a handler class, by lower-case method."""
    found = {}
    for method in METHODS:
        declared = getattr(getattr(handler, method, None), "__operation__", None)
        if isinstance(declared, Operation):
            found[method] = declared
    return found
