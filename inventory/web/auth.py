"""Who is asking: a trusted proxy's headers, a bearer token, or a signed login cookie."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import tornado.escape
import tornado.web
from tornado.httputil import HTTPHeaders

from inventory.cache.web_state import LoginSessions
from inventory.settings import WebSettings

SESSION_COOKIE = "inventory_session"
#: A login lasts this long (the session in Redis, the cookie and the time in its signature).
SESSION_DAYS = 0.5
SESSION_SECONDS = int(SESSION_DAYS * 24 * 3600)
DEFAULT_AFTER_LOGIN = "/policies"
_PROCESS_SECRET = secrets.token_urlsafe(48)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NAME_MAX = 256

Via = Literal["proxy", "token", "cookie"]


@dataclass(frozen=True)
class Identity:
    """The caller of one request: a name, its groups, and how we know."""

    name: str
    groups: tuple[str, ...] = ()
    via: Via = "token"

    def in_any(self, groups: Iterable[str]) -> bool:
        """Whether this identity belongs to one of ``groups`` (case-insensitive)."""
        mine = {g.casefold() for g in self.groups}
        return any(g.casefold() in mine for g in groups)

    def public(self) -> dict[str, object]:
        return {"name": self.name, "groups": list(self.groups), "via": self.via}


class InvalidToken(Exception):
    """A bearer token was sent and matches no configured token."""


class AmbiguousIdentity(Exception):
    """A trusted proxy sent an identity header twice, or a user name that could be two."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()


def identity_for_digest(digest: str, web: WebSettings, via: Via) -> Identity | None:
    """The configured identity whose SHA-256 is ``digest``; every entry is compared in full."""
    found: Identity | None = None
    for entry in web.api_tokens:
        if hmac.compare_digest(digest, entry.sha256) and found is None:
            found = Identity(entry.name, tuple(entry.groups), via)
    for known in web.api_token_hashes:
        if hmac.compare_digest(digest, known) and found is None:
            found = Identity(unnamed_token_name(known), (), via)
    return found


def unnamed_token_name(digest: str) -> str:
    """Who a token of ``web.api_token_hashes`` (deprecated) acts as: one name per token."""
    return f"token-{digest[:8]}"


def bearer_token(header: str) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None for any other scheme or no token."""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


@lru_cache(maxsize=16)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def is_trusted_proxy(remote_ip: str | None, trusted: Iterable[str]) -> bool:
    """Whether the socket peer is inside one of the trusted CIDRs (never a forwarded address)."""
    if not remote_ip:
        return False
    try:
        address = ipaddress.ip_address(remote_ip)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _networks(tuple(trusted)))


def _one_value(headers: HTTPHeaders, name: str) -> str:
    """The header's only value ('' when absent); Tornado would join repeated ones with commas."""
    values = headers.get_list(name)
    if len(values) > 1:
        raise AmbiguousIdentity(f"header {name} must be sent once")
    return values[0].strip() if values else ""


def proxy_identity(
    remote_ip: str | None, headers: HTTPHeaders, web: WebSettings
) -> Identity | None:
    """The user a trusted authenticating proxy names; headers from anyone else are ignored.

    Each identity header must come once: a proxy that appends rather than replaces would
    otherwise let a client add ``X-Forwarded-Groups: inventory-admins`` of its own.
    """
    if not web.trusted_proxies or not is_trusted_proxy(remote_ip, web.trusted_proxies):
        return None
    name = _one_value(headers, web.user_header)
    raw_groups = _one_value(headers, web.groups_header)
    if "," in name:
        raise AmbiguousIdentity(f"header {web.user_header} must name one user (no commas)")
    if not name or len(name) > _NAME_MAX or _CONTROL.search(name):
        return None
    return Identity(name, _groups(raw_groups), "proxy")


def _groups(raw: str) -> tuple[str, ...]:
    """The groups a comma-separated header lists (blank and control-character ones dropped)."""
    parts = (part.strip() for part in raw.split(","))
    return tuple(g for g in parts if g and not _CONTROL.search(g))


def client_address(remote_ip: str | None, headers: HTTPHeaders, web: WebSettings) -> str:
    """Who is at the other end: the address a trusted proxy saw (the last ``X-Forwarded-For``
    entry, the one it added), else the socket peer."""
    if web.trusted_proxies and is_trusted_proxy(remote_ip, web.trusted_proxies):
        forwarded = [a.strip() for a in ",".join(headers.get_list("X-Forwarded-For")).split(",")]
        if forwarded[-1]:
            return forwarded[-1][:64]
    return remote_ip or ""


def cookie_secret(web: WebSettings) -> str:
    """``web.cookie_secret``, else a random secret of this process (logins end on restart)."""
    if web.cookie_secret is not None:
        return web.cookie_secret.get_secret_value()
    return _PROCESS_SECRET


def session_value(session_id: str, web: WebSettings) -> bytes:
    """The signed cookie value for a login session: its id, which only Redis can resolve."""
    return tornado.web.create_signed_value(cookie_secret(web), SESSION_COOKIE, session_id)


def session_id(value: str | None, web: WebSettings) -> str | None:
    """The session id a login cookie carries, if its signature and age are good."""
    if not value:
        return None
    decoded = tornado.web.decode_signed_value(
        cookie_secret(web), SESSION_COOKIE, value, max_age_days=SESSION_DAYS
    )
    return None if decoded is None else decoded.decode(errors="replace")


def session_identity(
    value: str | None, web: WebSettings, sessions: LoginSessions
) -> Identity | None:
    """The identity of a login cookie whose session is live and whose token is still configured."""
    found = session_id(value, web)
    digest = None if found is None else sessions.token_digest(found)
    return None if digest is None else identity_for_digest(digest, web, "cookie")


def safe_next(value: str | None) -> str:
    """A local path to go to after login; anything that could leave this site is refused."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return DEFAULT_AFTER_LOGIN
    if "\\" in value or _CONTROL.search(value) or len(value) > 2048:
        return DEFAULT_AFTER_LOGIN
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc:
        return DEFAULT_AFTER_LOGIN
    return value


def login_url(next_path: str) -> str:
    return "/login?" + urllib.parse.urlencode({"next": next_path})


def login_page(next_path: str) -> str:
    """The login form: plain HTML, every value escaped, no script and no inline style."""
    escaped = tornado.escape.xhtml_escape(safe_next(next_path))
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        "<title>Sign in - inventory</title>\n</head>\n<body>\n"
        "<main>\n<h1>Sign in</h1>\n"
        '<form method="post" action="/login">\n'
        f'<input type="hidden" name="next" value="{escaped}">\n'
        '<label for="token">API token</label>\n'
        '<input id="token" name="token" type="password" autocomplete="off" required>\n'
        '<button type="submit">Sign in</button>\n'
        "</form>\n</main>\n</body>\n</html>\n"
    )
