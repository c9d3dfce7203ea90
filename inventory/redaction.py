"""Passwords in URLs, masked whatever they contain, in time linear in the text's length.

A password may hold ``@``, ``:``, ``/``, ``#``, spaces or percent-escapes, written raw or
escaped, so it runs from the first ``:`` after ``scheme://`` to the *last* ``@`` of the URL.
When that over-reaches (an ``@`` later in a path or query) more is masked, never less.
Plain string scans, no backtracking regex: a long hostile log line costs O(n), not O(n^2).
"""

from __future__ import annotations

import re
import string
from typing import Any
from urllib.parse import unquote

MASK = "***"
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+.-")
#: Scheme names are short; a bound keeps the walk back from ``://`` constant per match.
_SCHEME_MAX = 32
_WHITESPACE = re.compile(r"\s")


def _password_span(text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where the password of the URL whose authority starts at ``start`` lies, if it has one."""
    at = text.rfind("@", start, end)
    if at < 0:
        return None
    colon = text.find(":", start, at)
    # A ``/`` before the colon means the colon is in the path: there is no user:password.
    if colon < 0 or colon + 1 == at or text.find("/", start, colon) >= 0:
        return None
    return colon + 1, at


def url_password(url: str) -> str | None:
    """The password written in one URL (as written: percent-escapes kept), or None."""
    marker = url.find("://")
    if marker < 1:
        return None
    span = _password_span(url, marker + 3, len(url))
    return url[span[0] : span[1]] if span else None


def mask_url(value: str) -> str:
    """One URL (the whole string) with its password replaced by ``***``."""
    marker = value.find("://")
    if marker < 1 or not all(c in _SCHEME_CHARS for c in value[:marker]):
        return value
    span = _password_span(value, marker + 3, len(value))
    return value if span is None else value[: span[0]] + MASK + value[span[1] :]


def _url_starts(text: str) -> list[tuple[int, int]]:
    """(scheme start, authority start) of every ``scheme://`` in free text."""
    found = []
    position = text.find("://")
    while position >= 0:
        begin = position
        while begin > 0 and position - begin < _SCHEME_MAX and text[begin - 1] in _SCHEME_CHARS:
            begin -= 1
        if begin < position:
            found.append((begin, position + 3))
        position = text.find("://", position + 3)
    return found


def mask_url_passwords(text: str) -> str:
    """Every URL password in free text (a log line, an error) replaced by ``***``.

    In free text a URL ends at whitespace or where the next URL starts; a password with a
    space in it is only caught by the configured secrets (:func:`secret_forms`).
    """
    starts = _url_starts(text)
    if not starts:
        return text
    pieces: list[str] = []
    done = 0
    blank = -1  # the next whitespace at or after the current URL (reused while ahead of it)
    for index, (_, start) in enumerate(starts):
        if blank < start:
            match = _WHITESPACE.search(text, start)
            blank = match.start() if match else len(text)
        end = blank if index + 1 == len(starts) else min(blank, starts[index + 1][0])
        span = _password_span(text, start, end)
        if span is not None:
            pieces += [text[done : span[0]], MASK]
            done = span[1]
    pieces.append(text[done:])
    return "".join(pieces)


def mask_urls_in(value: Any) -> Any:
    """A copy of a JSON-like value with every string that is a URL password-masked."""
    if isinstance(value, str):
        return mask_url(value)
    if isinstance(value, dict):
        return {key: mask_urls_in(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(mask_urls_in(item) for item in value)
    return value


def secret_forms(url: str | None) -> list[str]:
    """The password of a URL as written and decoded, for masking wherever it appears."""
    password = url_password(url or "")
    if not password:
        return []
    return list(dict.fromkeys([password, unquote(password)]))
