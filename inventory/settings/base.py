"""What every settings section shares: the frozen base model, the error type, value checks."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any
from urllib.parse import SplitResult, urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, StringConstraints

AWS_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
ROLE_NAME = re.compile(r"^[\w+=,.@/-]{1,64}$")


class ConfigError(Exception):
    """Settings could not be loaded; the message is meant for the operator, one line per problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _redis_url(value: str) -> str:
    if not re.match(r"^(redis|rediss|unix)://", value):
        raise ValueError("expected a redis://, rediss:// or unix:// URL")
    return _check_url(value)


def _check_url(value: str) -> str:
    """A URL's host, port and (Redis) database parse; the message never repeats the value."""
    parts = urlsplit(value)
    if not _needs_host(parts):
        return value
    _check_port(parts)
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.scheme in ("redis", "rediss") and not re.fullmatch(r"/?(\d{1,5})?", parts.path):
        raise ValueError("the path of a Redis URL is its database number, e.g. /0")
    return value


def _needs_host(parts: SplitResult) -> bool:
    """Whether the URL addresses a host: unix sockets, memory and a bare sqs:// do not."""
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("a unix:// URL needs the socket's path")
        return False
    if parts.scheme == "memory":
        return False
    # A bare sqs:// is SQS in the region, credentials from the usual AWS chain.
    return not (parts.scheme == "sqs" and not parts.netloc)


def _check_port(parts: SplitResult) -> None:
    """The port, when one is given, is a number from 1 to 65535."""
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://", value):
        raise ValueError("expected an http:// or https:// URL")
    return _check_url(value)


def _check_region(value: str) -> str:
    if not AWS_REGION.match(value):
        raise ValueError("expected an AWS region name such as us-east-1")
    return value


def _did_you_mean(name: str, choices: set[str] | list[str]) -> str:
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _account_id(value: Any) -> Any:
    """Accept an unquoted 12-digit YAML number as an account id.

    Numbers with a leading zero never get here as ints: the YAML loader keeps them as text.
    """
    if isinstance(value, int) and not isinstance(value, bool) and len(str(value)) == 12:
        return str(value)
    return value


AccountId = Annotated[str, BeforeValidator(_account_id), StringConstraints(pattern=r"^\d{12}$")]
