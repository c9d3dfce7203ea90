"""Settings of the Tornado web tier: listening, identities, tokens, limits."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator

from inventory.settings.base import _Section


class ApiToken(_Section):
    """A bearer token, stored as its SHA-256 digest, and who it stands for."""

    name: str = Field(min_length=1, max_length=128, description="Identity the token stands for")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex digest of the token")
    groups: list[str] = Field(default_factory=list, description="Groups of that identity")


#: ``10/m``: at most 10 a minute (as Celery writes rate limits).
RATE = r"^[1-9]\d{0,6}/[smh]$"
_RATE_SECONDS = {"s": 1, "m": 60, "h": 3600}


def parse_rate(value: str) -> tuple[int, int]:
    """``"10/m"`` -> ``(10, 60)``: requests allowed in one window of that many seconds."""
    count, _, unit = value.partition("/")
    return int(count), _RATE_SECONDS[unit]


class WebSettings(_Section):
    """The Tornado web tier."""

    host: str = Field("127.0.0.1", description="Address to listen on")
    port: int = Field(8080, ge=1, le=65535, description="Port to listen on")
    api_token_hashes: list[str] = Field(
        default_factory=list,
        description="Deprecated: unnamed SHA-256 digests of bearer tokens, each acting as "
        "'token-<first 8 hex digits>'; use api_tokens",
    )
    api_tokens: list[ApiToken] = Field(
        default_factory=list, description="Named bearer tokens with groups: {name, sha256, groups}"
    )
    user_header: str = Field(
        "X-Forwarded-User", description="Header with the user an authenticating proxy verified"
    )
    groups_header: str = Field(
        "X-Forwarded-Groups", description="Header with that user's groups (comma-separated)"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses/CIDRs whose identity headers are believed; [] disables headers",
    )
    admin_groups: list[str] = Field(
        default_factory=lambda: ["inventory-admins"],
        description="Groups that may approve or reject policy requests",
    )
    cookie_secret: SecretStr | None = Field(
        None,
        description="Signs login cookies; random per process when null. Several web processes "
        "behind one address need the same value",
    )
    https: bool = Field(
        True,
        description="Browsers reach the web tier over HTTPS (here or at a TLS-terminating "
        "proxy): the login cookie is Secure and HSTS is sent. Off only for plain-HTTP setups "
        "such as the demo",
    )
    login_rate: str = Field(
        "10/m",
        pattern=RATE,
        description="Login attempts per client address, and logins per user name; e.g. '10/m' "
        "(s, m or h); more get a 429",
    )
    refresh_rate: str = Field(
        "30/m", pattern=RATE, description="POST /api/v1/refresh calls per identity (429)"
    )
    request_rate: str = Field(
        "30/h", pattern=RATE, description="Policy requests created per identity (429)"
    )
    max_open_requests: int = Field(
        20, ge=1, le=10_000, description="Pending policy requests one requester may have (409)"
    )
    max_body_bytes: int = Field(
        262_144, ge=1024, le=10_485_760, description="Larger request bodies are refused (413)"
    )
    max_url_bytes: int = Field(
        8192, ge=1024, le=65_536, description="Longer request targets (path and query) get a 414"
    )
    max_header_bytes: int = Field(
        16_384, ge=4096, le=262_144, description="Larger request header blocks get a 431"
    )
    search_sync_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the search index applies cache changes (web processes look "
        "for its commits four times a second)",
    )
    search_rebuild_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Least time between commits of cache changes to the search index "
        "(a change is searchable within this)",
    )
    search_index_dir: str = Field(
        "state/search-index",
        min_length=1,
        description="Directory of the search indexes (one per cache), shared by the web "
        "processes of a host (one of them builds and updates it)",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not an IP address or CIDR") from exc
        return value

    @field_validator("api_token_hashes")
    @classmethod
    def _hashes(cls, value: list[str]) -> list[str]:
        for digest in value:
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ValueError("expected SHA-256 hex digests (64 lowercase hex characters)")
        return value

    def deprecations(self) -> list[str]:
        """What the operator should change (the settings still work); each names the key."""
        if not self.api_token_hashes:
            return []
        return [
            "web.api_token_hashes is deprecated: move each digest to web.api_tokens as "
            "{name, sha256, groups} so that requests and approvals say who acted; until then "
            "each acts as 'token-' and the first 8 hex digits of its digest"
        ]
