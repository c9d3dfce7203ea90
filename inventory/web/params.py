"""Query parameters parsed once, by one rule, with a 400 naming the parameter when one is wrong.

Text is UTF-8 without control characters (Tornado would quietly turn them into spaces, so
``q=%00`` read as no filter at all); numbers are ASCII digits only (``int()`` and ``float()``
also accept other scripts' digits, underscores and padding). A blank value is an absent one.

Each rule is pydantic metadata for a field of an endpoint's query model
(``limit: Annotated[int, Integer(1, 500)] = 100``): it reads the raw value, refuses it with a
reason, and gives the parameter's OpenAPI schema. Optional parameters' schemas admit the empty
string, since blank is absent.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import tornado.web
from pydantic_core import PydanticCustomError

from inventory.web.api import Wire, problem

_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
_TOKEN = re.compile(r"[\w.:/-]{1,128}", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
#: C0 controls, DEL and C1 controls: never part of a value anyone types.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The latest time a parameter may name: 9999-12-31T23:59:59Z.
MAX_TIME = 253_402_300_799.0
MAX_ARN = 2048


def bad(name: str, text: str) -> tornado.web.HTTPError:
    return tornado.web.HTTPError(400, f"parameter '{name}' {text}")


def clean(value: bytes | str) -> str | None:
    """A value as typed: UTF-8 without control characters, stripped; None when blank."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise problem("is not valid UTF-8") from None
    if _CONTROL.search(value):
        raise problem("must not contain control characters")
    return value.strip() or None


def raw(handler: tornado.web.RequestHandler, name: str) -> str | None:
    """The last value of a query parameter, stripped; None when absent or blank.

    Read from the undecoded query, because Tornado's own accessors replace control characters
    with spaces and strip them, so a NUL would silently become an absent parameter.
    """
    values = handler.request.query_arguments.get(name)
    if not values:
        return None
    try:
        return clean(values[-1])
    except PydanticCustomError as exc:
        raise bad(name, str(exc)) from None


class Param(Wire):
    """A query parameter: its last raw value, cleaned (``clean``), then this rule's ``parse``."""

    def read(self, value: Any) -> str | None:
        return None if value is None else clean(value)


@dataclass(frozen=True)
class Text(Param):
    """Text of at most ``max_length`` characters."""

    max_length: int = 256

    def parse(self, value: str) -> str:
        if len(value) > self.max_length:
            raise problem(f"must be at most {self.max_length} characters")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "maxLength": self.max_length}


class AccountId(Text):
    """A 12-digit account id."""

    def __init__(self) -> None:
        super().__init__(12)

    def parse(self, value: str) -> str:
        if not _ACCOUNT.fullmatch(super().parse(value)):
            raise problem("must be a 12-digit account id")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^(\d{12})?$"}


class Token(Text):
    """A short identifier such as a kind or a region."""

    def __init__(self) -> None:
        super().__init__(128)

    def parse(self, value: str) -> str:
        if not _TOKEN.fullmatch(super().parse(value)):
            raise problem("has characters that no value of it uses")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^([\w.:/-]{1,128})?$"}


@dataclass(frozen=True)
class Integer(Param):
    """An integer in ``[low, high]`` written in ASCII digits."""

    low: int
    high: int

    def parse(self, value: str) -> int:
        if not _INTEGER.fullmatch(value) or not self.low <= int(value) <= self.high:
            raise problem(f"must be an integer from {self.low} to {self.high}")
        return int(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class Boolean(Param):
    """true/false, 1/0 or yes/no, in any letter case."""

    def parse(self, value: str) -> bool:
        found = _BOOLEANS.get(value.lower())
        if found is None:
            raise problem("must be true or false")
        return found

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": ["", *_BOOLEANS]}


@dataclass(frozen=True)
class Choice(Param):
    """One of ``choices`` (in any letter case with ``fold_case``)."""

    choices: tuple[str, ...]
    fold_case: bool = False

    def parse(self, value: str) -> str:
        if self.fold_case:
            value = value.lower()
        if value not in self.choices:
            raise problem(f"must be one of {', '.join(self.choices)}")
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": ["", *self.choices]}


class Arn(Param):
    """A required ARN of at most 2048 characters (one message, whatever is wrong with it)."""

    missing = "must be an ARN"

    def parse(self, value: str) -> str:
        if not value.startswith("arn:") or len(value) > MAX_ARN:
            raise problem(self.missing)
        return value

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": "^arn:", "minLength": 5, "maxLength": MAX_ARN}


class Matching(Param):
    """A required value that fully matches ``pattern`` (one message, whatever is wrong)."""

    def __init__(self, pattern: re.Pattern[str], message: str, max_length: int) -> None:
        self.pattern, self.missing, self.max_length = pattern, message, max_length

    def parse(self, value: str) -> str:
        if len(value) > self.max_length or not self.pattern.fullmatch(value):
            raise problem(self.missing)
        return value

    def schema(self) -> dict[str, Any]:
        pattern = self.pattern.pattern
        return {"type": "string", "pattern": f"^{pattern}$", "maxLength": self.max_length}


class UnixTime(Param):
    """Required unix seconds (ASCII digits, an optional fraction)."""

    missing = "must be a unix time"

    def parse(self, value: str) -> float:
        if not _NUMBER.fullmatch(value):
            raise problem(self.missing)
        return float(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": 0, "maximum": 1e12}


class Timestamp(Param):
    """A time as unix seconds or ISO-8601 (a time without an offset is UTC)."""

    def parse(self, value: str) -> float:
        value = Text(64).parse(value)
        wrong = "must be unix seconds or an ISO-8601 time (e.g. 2024-05-01T12:00:00Z)"
        if _NUMBER.fullmatch(value):
            seconds = float(value)
        else:
            if not value.isascii():
                raise problem(wrong)
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise problem(wrong) from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            seconds = parsed.timestamp()
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_TIME:
            raise problem("must be between 1970 and 9999")
        return seconds

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_TIME},
                {"type": "string", "format": "date-time"},
            ]
        }


class StreamCursor(Text):
    """A Redis stream entry id (``<ms>-<seq>``), as a page's ``next_cursor`` gives it.

    ``0-0`` is refused: no entry has it (Redis refuses to add one), so no page ever returns it,
    and Redis rejects a range that ends before it. The id is given back in Redis's own form.
    """

    def __init__(self) -> None:
        super().__init__(41)

    def parse(self, value: str) -> str:
        found = _STREAM_ID.fullmatch(super().parse(value))
        parts = [int(part) for part in found.groups()] if found else []
        if not parts or any(part >= 2**64 for part in parts) or parts == [0, 0]:
            raise problem("must be a next_cursor value from an earlier page")
        return f"{parts[0]}-{parts[1]}"

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"^(\d{1,20}-\d{1,20})?$"}


def not_after(low: float | None, high: float | None, low_name: str, high_name: str) -> None:
    """Refuse (naming ``low_name``) two times in the wrong order."""
    if low is not None and high is not None and low > high:
        raise problem(f"must not be after '{high_name}'", low_name)


# The parameters most endpoints share.
ArnParam = Annotated[str, Arn()]
OptionalAccount = Annotated[str | None, AccountId()]
OptionalToken = Annotated[str | None, Token()]
OptionalTime = Annotated[float | None, Timestamp()]
