"""Query parameters parsed once, by one rule, with a 400 naming the parameter when one is wrong.

Text is UTF-8 without control characters (Tornado would quietly turn them into spaces, so
``q=%00`` read as no filter at all); numbers are ASCII digits only (``int()`` and ``float()``
also accept other scripts' digits, underscores and padding).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import tornado.web

_ACCOUNT = re.compile(r"\d{12}", re.ASCII)
_TOKEN = re.compile(r"[\w.:/-]{1,128}", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+")
_NUMBER = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
#: C0 controls, DEL and C1 controls: never part of a value anyone types.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: The latest time a parameter may name: 9999-12-31T23:59:59Z.
MAX_TIME = 253_402_300_799.0


def bad(name: str, problem: str) -> tornado.web.HTTPError:
    return tornado.web.HTTPError(400, f"parameter '{name}' {problem}")


def raw(handler: tornado.web.RequestHandler, name: str) -> str | None:
    """The last value of a query parameter, stripped; None when absent or blank.

    Read from the undecoded query, because Tornado's own accessors replace control characters
    with spaces and strip them, so a NUL would silently become an absent parameter.
    """
    values = handler.request.query_arguments.get(name)
    if not values:
        return None
    try:
        value = values[-1].decode("utf-8")
    except UnicodeDecodeError:
        raise bad(name, "is not valid UTF-8") from None
    if _CONTROL.search(value):
        raise bad(name, "must not contain control characters")
    return value.strip() or None


def text(
    handler: tornado.web.RequestHandler, name: str, max_length: int = 256, required: bool = False
) -> str | None:
    value = raw(handler, name)
    if value is None:
        if required:
            raise bad(name, "is required")
        return None
    if len(value) > max_length:
        raise bad(name, f"must be at most {max_length} characters")
    return value


def account(
    handler: tornado.web.RequestHandler, name: str = "account", required: bool = False
) -> str | None:
    value = text(handler, name, 12, required)
    if value is not None and not _ACCOUNT.fullmatch(value):
        raise bad(name, "must be a 12-digit account id")
    return value


def token(handler: tornado.web.RequestHandler, name: str) -> str | None:
    """A short identifier such as a kind or a region."""
    value = text(handler, name, 128)
    if value is not None and not _TOKEN.fullmatch(value):
        raise bad(name, "has characters that no value of it uses")
    return value


def integer(
    handler: tornado.web.RequestHandler, name: str, default: int, low: int, high: int
) -> int:
    """An integer in ``[low, high]`` written in ASCII digits; absent or blank is ``default``."""
    value = raw(handler, name)
    if value is None:
        return default
    if not _INTEGER.fullmatch(value) or not low <= int(value) <= high:
        raise bad(name, f"must be an integer from {low} to {high}")
    return int(value)


def boolean(handler: tornado.web.RequestHandler, name: str) -> bool | None:
    value = raw(handler, name)
    if value is None:
        return None
    lowered = value.lower()
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
    fold_case: bool = False,
) -> str:
    value = raw(handler, name)
    if value is None:
        return default
    if fold_case:
        value = value.lower()
    if value not in choices:
        raise bad(name, f"must be one of {', '.join(choices)}")
    return value


def arn(handler: tornado.web.RequestHandler, name: str = "arn") -> str:
    """A required ARN of at most 2048 characters (one message, whatever is wrong with it)."""
    value = raw(handler, name)
    if value is None or not value.startswith("arn:") or len(value) > 2048:
        raise bad(name, "must be an ARN")
    return value


def unix_time(handler: tornado.web.RequestHandler, name: str) -> float:
    """Required unix seconds (ASCII digits, an optional fraction)."""
    value = raw(handler, name)
    if value is None or not _NUMBER.fullmatch(value):
        raise bad(name, "must be a unix time")
    return float(value)


def timestamp(handler: tornado.web.RequestHandler, name: str) -> float | None:
    """A time as unix seconds or ISO-8601 (a time without an offset is UTC)."""
    value = text(handler, name, 64)
    if value is None:
        return None
    problem = "must be unix seconds or an ISO-8601 time (e.g. 2024-05-01T12:00:00Z)"
    if _NUMBER.fullmatch(value):
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
    """A Redis stream entry id (``<ms>-<seq>``), as a page's ``next_cursor`` gives it.

    ``0-0`` is refused: no entry has it (Redis refuses to add one), so no page ever returns it,
    and Redis rejects a range that ends before it. The id is given back in Redis's own form.
    """
    value = text(handler, name, 41)
    if value is None:
        return None
    found = _STREAM_ID.fullmatch(value)
    parts = [int(part) for part in found.groups()] if found else []
    if not parts or any(part >= 2**64 for part in parts) or parts == [0, 0]:
        raise bad(name, "must be a next_cursor value from an earlier page")
    return f"{parts[0]}-{parts[1]}"
