"""Documents that are the same in every account (AWS managed policies): listed once per sweep,
each version's document fetched once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from inventory.aws.kind import SharedDocuments as SharedDocumentsInterface
from inventory.cache.keys import Keys

CLAIM_SECONDS = 300
#: The catalogue claim outlives one sweep's fan-out but not the interval to the next sweep.
LEAD_SHARE_OF_INTERVAL = 0.8


def version_tag(version: str, updated: str | None) -> str:
    """What identifies a cached document: its version id and when AWS last updated it."""
    return f"{version}@{updated or ''}"


class SharedDocuments:
    """Which AWS managed policy versions are cached, and claims so only one sync reads each."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def need(self, arn: str, tag: str) -> bool:
        """True when this version is not cached and this caller won the claim to fetch it."""
        if self.client.hget(self.keys.shared_document_versions(), arn) == tag:
            return False
        claim = self.keys.shared_document_claim(arn, tag)
        return bool(self.client.set(claim, "1", nx=True, ex=CLAIM_SECONDS))

    def lead(self, seconds: float) -> bool:
        """True for the first sync since the sweep began: it lists the shared catalogue."""
        ttl = max(1, int(seconds))
        return bool(self.client.set(self.keys.shared_catalogue_claim(), "1", nx=True, ex=ttl))

    def new_sweep(self) -> None:
        """A sweep begins: its first account's sync lists the catalogue again."""
        self.client.delete(self.keys.shared_catalogue_claim())

    def stored(self, versions: Iterable[tuple[str, str]]) -> None:
        """Mark documents as cached (after they were written)."""
        mapping = dict(versions)
        if mapping:
            self.client.hset(self.keys.shared_document_versions(), mapping=mapping)

    def release(self, claims: Iterable[tuple[str, str]], lead: bool) -> None:
        """Give up claims whose fetch failed, so the next sync tries again at once."""
        names = [self.keys.shared_document_claim(a, v) for a, v in claims]
        if lead:
            names.append(self.keys.shared_catalogue_claim())
        if names:
            self.client.delete(*names)


class DocumentClaims(SharedDocumentsInterface):
    """One sync's claims on shared documents: fetched ones are marked stored once written."""

    def __init__(self, documents: SharedDocuments, every: float) -> None:
        self.documents = documents
        self.every = every
        self.claimed: list[tuple[str, str]] = []
        self.leading = False

    def lead(self) -> bool:
        self.leading = self.documents.lead(self.every * LEAD_SHARE_OF_INTERVAL)
        return self.leading

    def need(self, arn: str, version: str, updated: str | None) -> bool:
        tag = version_tag(version, updated)
        if self.documents.need(arn, tag):
            self.claimed.append((arn, tag))
            return True
        return False

    def stored(self, records: Iterable[Mapping[str, Any]]) -> None:
        """The written documents are cached: no sync fetches these versions again."""
        self.documents.stored(
            (r["arn"], version_tag(r["version_id"], r.get("updated"))) for r in records
        )

    def release(self) -> None:
        """The sync failed: give its claims up so the next one fetches at once."""
        self.documents.release(self.claimed, self.leading)
