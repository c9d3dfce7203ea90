"""Assume-role sessions per account, cached until shortly before expiry, and tuned clients."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.session
from botocore.config import Config


@dataclass(frozen=True)
class ClientOptions:
    """How every client is built: retries, timeouts, endpoint."""

    endpoint_url: str | None = None
    retry_mode: str = "adaptive"
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_pool_connections: int = 20

    def botocore_config(self) -> Config:
        return Config(
            retries={"mode": self.retry_mode, "max_attempts": self.max_attempts},
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            max_pool_connections=self.max_pool_connections,
            user_agent_extra="inventory",
        )


@dataclass(frozen=True)
class _Credentials:
    access_key: str
    secret_key: str
    token: str
    expires_at: float


class AwsSessions:
    """Clients for the hub account and, through AssumeRole, for every spoke account.

    Credentials are cached per role ARN until ``margin`` seconds before they expire; clients are
    cached per (role, service, region) for as long as their credentials are.

    Every session shares the hub session's botocore data loader: a session of its own loads
    and keeps its own copy of each service model and the endpoint rules (~10 MB and ~50 ms
    each), which a worker visiting many accounts would otherwise pay per account and client.
    """

    def __init__(
        self,
        options: ClientOptions,
        role_name: str,
        assume_role: bool = True,
        session_name: str = "inventory",
        external_id: str | None = None,
        duration_seconds: int = 3600,
        margin_seconds: int = 300,
        base_session: boto3.Session | None = None,
        clock: Any = time.time,
    ) -> None:
        self.options = options
        self.role_name = role_name
        self.assume_role = assume_role
        self.session_name = session_name
        self.external_id = external_id
        self.duration_seconds = duration_seconds
        self.margin_seconds = margin_seconds
        self.base_session = base_session or boto3.Session()
        self.clock = clock
        self._config = options.botocore_config()
        self._lock = threading.Lock()
        self._credentials: dict[str, _Credentials] = {}
        self._sessions: dict[str, tuple[boto3.Session, float]] = {}
        self._loader = self.base_session._session.get_component("data_loader")
        self._clients: dict[tuple[str, str, str], tuple[Any, float]] = {}
        self.assume_role_calls = 0

    def role_arn(self, account_id: str, role_name: str | None = None) -> str:
        return f"arn:aws:iam::{account_id}:role/{role_name or self.role_name}"

    def hub_client(self, service: str, region: str) -> Any:
        """A client with the process's own credentials (for DynamoDB, S3, STS)."""
        key = ("hub", service, region)
        with self._lock:
            cached = self._clients.get(key)
            if cached is None:
                cached = (self._new_client(self.base_session, service, region), float("inf"))
                self._clients[key] = cached
            return cached[0]

    def client(
        self, service: str, account_id: str, region: str, role_name: str | None = None
    ) -> Any:
        """A client acting in ``account_id`` through its role (or hub credentials if disabled)."""
        if not self.assume_role:
            return self.hub_client(service, region)
        role_arn = self.role_arn(account_id, role_name)
        with self._lock:
            creds = self._fresh_credentials(role_arn, region)
            key = (role_arn, service, region)
            cached = self._clients.get(key)
            if cached is None or cached[1] != creds.expires_at:
                session = self._session_for(role_arn, creds)
                cached = (self._new_client(session, service, region), creds.expires_at)
                self._clients[key] = cached
            return cached[0]

    def _session_for(self, role_arn: str, creds: _Credentials) -> boto3.Session:
        """One session per role and credentials, on the shared data loader (lock held)."""
        cached = self._sessions.get(role_arn)
        if cached is not None and cached[1] == creds.expires_at:
            return cached[0]
        core = botocore.session.Session()
        core.register_component("data_loader", self._loader)
        core.set_credentials(creds.access_key, creds.secret_key, creds.token)
        session = boto3.Session(botocore_session=core)
        # boto3 appends its own data path to the (shared) loader for every new session.
        paths = self._loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
        self._sessions[role_arn] = (session, creds.expires_at)
        return session

    def _fresh_credentials(self, role_arn: str, region: str) -> _Credentials:
        creds = self._credentials.get(role_arn)
        if creds is not None and creds.expires_at - self.margin_seconds > self.clock():
            return creds
        sts = self._new_client(self.base_session, "sts", region)
        params: dict[str, Any] = {
            "RoleArn": role_arn,
            "RoleSessionName": self.session_name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.external_id:
            params["ExternalId"] = self.external_id
        raw = sts.assume_role(**params)["Credentials"]
        self.assume_role_calls += 1
        creds = _Credentials(
            access_key=raw["AccessKeyId"],
            secret_key=raw["SecretAccessKey"],
            token=raw["SessionToken"],
            expires_at=raw["Expiration"].timestamp(),
        )
        self._credentials[role_arn] = creds
        return creds

    def _new_client(self, session: boto3.Session, service: str, region: str) -> Any:
        return session.client(
            service,
            region_name=region,
            endpoint_url=self.options.endpoint_url,
            config=self._config,
        )
