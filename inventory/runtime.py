"""The services a process needs, built lazily from Settings (after fork, never at import)."""

from __future__ import annotations

import threading
import time
from functools import cached_property
from typing import Any

import redis

from inventory.aws.event_queue import EventQueue
from inventory.aws.regions import EnabledRegions
from inventory.aws.session import AwsSessions, ClientOptions
from inventory.cache.dynamo import DynamoStore
from inventory.cache.event_ledger import EventLedger
from inventory.cache.findings import FindingsListener, FindingsState
from inventory.cache.history import ChangeHistory
from inventory.cache.key_migration import KeyMigration, upgrade
from inventory.cache.keys import Keys
from inventory.cache.messages import MessageLedger
from inventory.cache.policies_table import PoliciesTable
from inventory.cache.redis_cache import RedisCache, connect
from inventory.cache.replica import Replica, ReplicaState
from inventory.cache.replication import ReplicationLog
from inventory.cache.requests import PolicyRequests
from inventory.cache.s3_snapshot import S3Snapshots
from inventory.cache.shared_documents import SharedDocuments
from inventory.cache.store import Store
from inventory.cache.verify import Verifier
from inventory.cache.web_state import RefreshClaims
from inventory.metrics import TaskOutcomes
from inventory.settings import Settings


class Runtime:
    """Settings plus the clients built from them; one per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._tables_lock = threading.Lock()
        self._tables_ready = False
        self._schema_ready = False

    @cached_property
    def enabled_regions(self) -> EnabledRegions:
        return EnabledRegions()

    @cached_property
    def keys(self) -> Keys:
        return Keys(self.settings.redis.key_prefix)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings.redis.url, self.settings.redis.socket_timeout)

    @cached_property
    def redis_cache(self) -> RedisCache:
        return RedisCache(self.redis, self.keys)

    @cached_property
    def outcomes(self) -> TaskOutcomes:
        return TaskOutcomes(self.redis, self.keys)

    @cached_property
    def event_ledger(self) -> EventLedger:
        return EventLedger(self.redis, self.keys)

    def event_queue(self) -> EventQueue | None:
        """The CloudTrail change-event queue (hub credentials), or None when events are off."""
        cfg = self.settings.events
        if not cfg.enabled or not cfg.queue_url:
            return None
        region = cfg.queue_region or self.settings.active_region
        return EventQueue(self.aws.hub_client("sqs", region), cfg.queue_url)

    @cached_property
    def replica(self) -> Replica:
        """Following the active region (secondary) and publishing outcomes (active)."""
        self.ensure_tables()
        return Replica(
            self.redis_cache,
            self.dynamo,
            self.store,
            self.replication,
            ReplicaState(self.redis, self.keys),
            self.outcomes,
            self.settings.replication.overlap_seconds,
        )

    @cached_property
    def refresh_claims(self) -> RefreshClaims:
        return RefreshClaims(self.redis, self.keys)

    @cached_property
    def shared_documents(self) -> SharedDocuments:
        return SharedDocuments(self.redis, self.keys)

    @cached_property
    def messages(self) -> MessageLedger:
        return MessageLedger(self.redis, self.keys)

    @cached_property
    def aws(self) -> AwsSessions:
        a = self.settings.aws
        return AwsSessions(
            ClientOptions(
                endpoint_url=a.endpoint_url,
                retry_mode=a.retry_mode,
                max_attempts=a.max_attempts,
                connect_timeout=a.connect_timeout,
                read_timeout=a.read_timeout,
                # A connection per detail read in flight, so none waits for or drops one.
                max_pool_connections=max(ClientOptions.max_pool_connections, a.detail_reads),
            ),
            role_name=a.role_name,
            assume_role=a.assume_role,
            session_name=a.session_name,
            external_id=a.external_id.get_secret_value() if a.external_id else None,
            duration_seconds=a.session_duration_seconds,
            margin_seconds=a.credential_margin_seconds,
        )

    @cached_property
    def dynamo(self) -> DynamoStore:
        d = self.settings.dynamodb
        return DynamoStore(
            d.table_prefix,
            d.region,
            host=self.settings.dynamodb_endpoint,
            ttl_days=d.item_ttl_days,
            read_capacity=d.read_capacity,
            write_capacity=d.write_capacity,
            write_concurrency=d.write_concurrency,
        )

    @cached_property
    def s3(self) -> S3Snapshots | None:
        s = self.settings.s3
        if s.bucket is None:
            return None
        client = self.aws.hub_client("s3", self.settings.s3_region)
        return S3Snapshots(client, s.bucket, s.prefix, s.layout)

    @property
    def store(self) -> Store:
        self.ensure_tables()
        self.ensure_schema()
        return self._store

    @cached_property
    def verifier(self) -> Verifier:
        return Verifier(
            self.redis_cache,
            self.dynamo,
            self.s3,
            self.replication if self.settings.is_active_region else None,
        )

    def ensure_schema(self) -> KeyMigration | None:
        """Active region: migrate the tables' item keys once, before this process writes."""
        if self._schema_ready or not self.settings.is_active_region:
            return None
        with self._tables_lock:
            if self._schema_ready:
                return None
            lock = self.redis.lock(self.keys.schema_lock(), timeout=300, blocking_timeout=None)
            done = upgrade(
                self.dynamo,
                lock,
                lambda: self.verifier.partitions(()),
                lambda p: self.verifier.repair(p, time.time()),
            )
            self._schema_ready = True
            return done

    @cached_property
    def requests(self) -> PolicyRequests:
        d = self.settings.dynamodb
        return PolicyRequests(d.table_prefix, d.region, self.settings.dynamodb_endpoint)

    @cached_property
    def replication(self) -> ReplicationLog:
        d = self.settings.dynamodb
        return ReplicationLog(d.table_prefix, d.region, self.settings.dynamodb_endpoint)

    @cached_property
    def history(self) -> ChangeHistory:
        d, h = self.settings.dynamodb, self.settings.history
        return ChangeHistory(
            d.table_prefix,
            d.region,
            self.settings.dynamodb_endpoint,
            self.redis,
            self.keys,
            retention_days=h.retention_days,
            feed_max_entries=h.feed_max_entries,
        )

    @cached_property
    def findings(self) -> FindingsState:
        """Incremental findings bookkeeping: document analyses, subject keys, pending accounts."""
        return FindingsState(self.redis, self.keys)

    @cached_property
    def policies_table(self) -> PoliciesTable:
        return PoliciesTable(self.redis, self.keys)

    @cached_property
    def _store(self) -> Store:
        return Store(
            self.redis_cache,
            self.dynamo,
            self.s3,
            listeners=[self.policies_table, FindingsListener(self.findings)],
            log=self.replication if self.settings.is_active_region else None,
            history=self.history if self.settings.history.enabled else None,
        )

    def ensure_tables(self) -> list[str]:
        """Create missing DynamoDB tables once per process, when settings allow it."""
        if self._tables_ready or not self.settings.dynamodb.create_tables:
            return []
        with self._tables_lock:
            if self._tables_ready:
                return []
            created = self.create_tables()
            self._tables_ready = True
            return created

    def missing_tables(self) -> list[str]:
        """Tables the service uses that do not exist (``inventory tables create`` makes them)."""
        models = [*self.dynamo.models.values()]
        models += [self.requests.model, self.replication.model, self.history.model]
        return [m.Meta.table_name for m in models if not m.exists()]

    def create_tables(self) -> list[str]:
        """Create every missing table the service uses (whatever create_tables says)."""
        created = self.dynamo.ensure_tables()
        for extra in (self.requests, self.replication, self.history):
            if extra.ensure_table():
                created.append(extra.model.Meta.table_name)
        return created

    def account_client(self, service: str, account: dict[str, Any], region: str) -> Any:
        """A client in an account, through its own role name if the mapping sets one."""
        return self.aws.client(service, account["id"], region, account.get("role_name"))
