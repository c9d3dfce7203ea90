"""Query parameters parsed once, with a 400 naming the parameter when one is wrong."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import tornado.web

_ACCOUNT = re.compile(r"^\d{12}$", re.ASCII)  # not other scripts' digits
_TOKEN = re.compile(r"^[\w.:/-]{1,128}$", re.ASCII)
_NUMBER = re.compile(r"^\d{1,12}(\.\d{1,9})?$", re.ASCII)
_STREAM_ID = re.compile(r"^(\d{1,20})-(\d{1,20})$", re.ASCII)
#: The latest time a parameter may name: 9999-12-31T23:59:59Z.
MAX_TIME = 253_402_300_799.0


def bad(name: str, problem: str) -> tornado.web.HTTPError:
    return tornado.web.HTTPError(400, f"parameter '{name}' {problem}")


def text(
    handler: tornado.web.RequestHandler, name: str, max_length: int = 256, required: bool = False
) -> str | None:
    value = handler.get_query_argument(name, None)
    if value is None or value == "":
        if required:
            raise bad(name, "is required")
        return None
    if len(value) > max_length:
        raise bad(name, f"must be at most {max_length} characters")
    if "\x00" in value:
        raise bad(name, "must not contain NUL")
    return value


def account(
    handler: tornado.web.RequestHandler, name: str = "account", required: bool = False
) -> str | None:
    value = text(handler, name, 12, required)
    if value is not None and not _ACCOUNT.match(value):
        raise bad(name, "must be a 12-digit account id")
    return value


def token(handler: tornado.web.RequestHandler, name: str) -> str | None:
    """A short identifier such as a kind or a region."""
    value = text(handler, name, 128)
    if value is not None and not _TOKEN.match(value):
        raise bad(name, "has characters that no value of it uses")
    return value


def integer(
    handler: tornado.web.RequestHandler, name: str, default: int, low: int, high: int
) -> int:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise bad(name, "must be an integer") from None
    if not low <= value <= high:
        raise bad(name, f"must be between {low} and {high}")
    return value


def boolean(handler: tornado.web.RequestHandler, name: str) -> bool | None:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return None
    lowered = raw.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise bad(name, "must be true or false")


def choice(
    handler: tornado.web.RequestHandler,
    name: str,
    choices: tuple[str, ...] | list[str],
    default: str,
) -> str:
    raw = handler.get_query_argument(name, None)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise bad(name, f"must be one of {', '.join(choices)}")
    return raw


def arn(handler: tornado.web.RequestHandler, name: str = "arn") -> str:
    value = text(handler, name, 2048, required=True)
    assert value is not None
    if not value.startswith("arn:"):
        raise bad(name, "must be an ARN")
    return value


def timestamp(handler: tornado.web.RequestHandler, name: str) -> float | None:
    """A time as unix seconds or ISO-8601 (a time without an offset is UTC)."""
    value = text(handler, name, 64)
    if value is None:
        return None
    problem = "must be unix seconds or an ISO-8601 time (e.g. 2024-05-01T12:00:00Z)"
    if _NUMBER.match(value):
        seconds = float(value)
    else:
        if not value.isascii():
            raise bad(name, problem)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise bad(name, problem) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_TIME:
        raise bad(name, "must be between 1970 and 9999")
    return seconds


def time_range(
    handler: tornado.web.RequestHandler, low: str = "since", high: str = "until"
) -> tuple[float | None, float | None]:
    """Two optional times; 400 when the first is after the second."""
    since, until = timestamp(handler, low), timestamp(handler, high)
    if since is not None and until is not None and since > until:
        raise bad(low, f"must not be after '{high}'")
    return since, until


def stream_cursor(handler: tornado.web.RequestHandler, name: str = "cursor") -> str | None:
    """A Redis stream entry id (``<ms>-<seq>``), as a page's ``next_cursor`` gives it."""
    value = text(handler, name, 41)
    if value is None:
        return None
    found = _STREAM_ID.match(value)
    if found is None or any(int(part) >= 2**64 for part in found.groups()):
        raise bad(name, "must be a next_cursor value from an earlier page")
    return value
