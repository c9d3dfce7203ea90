"""Documents that are the same in every account (AWS managed policies): fetched once per version."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import redis

from inventory.aws.kind import SharedDocuments as SharedDocumentsInterface
from inventory.cache.keys import Keys

CLAIM_SECONDS = 300


class SharedDocuments:
    """Which AWS managed policy versions are cached, and a claim so only one sync fetches each."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def need(self, arn: str, version: str) -> bool:
        """True when this version is not cached and this caller won the claim to fetch it."""
        if self.client.hget(self.keys.shared_document_versions(), arn) == version:
            return False
        claim = self.keys.shared_document_claim(arn, version)
        return bool(self.client.set(claim, "1", nx=True, ex=CLAIM_SECONDS))

    def stored(self, versions: Iterable[tuple[str, str]]) -> None:
        """Mark documents as cached (after they were written)."""
        mapping = dict(versions)
        if mapping:
            self.client.hset(self.keys.shared_document_versions(), mapping=mapping)

    def release(self, claims: Iterable[tuple[str, str]]) -> None:
        """Give up claims whose fetch failed, so the next sync tries again at once."""
        names = [self.keys.shared_document_claim(a, v) for a, v in claims]
        if names:
            self.client.delete(*names)


class DocumentClaims(SharedDocumentsInterface):
    """One sync's claims on shared documents: fetched ones are marked stored once written."""

    def __init__(self, documents: SharedDocuments) -> None:
        self.documents = documents
        self.claimed: list[tuple[str, str]] = []

    def need(self, arn: str, version: str) -> bool:
        if self.documents.need(arn, version):
            self.claimed.append((arn, version))
            return True
        return False

    def stored(self, records: Iterable[Mapping[str, Any]]) -> None:
        """The written documents are cached: no sync fetches these versions again."""
        self.documents.stored((r["arn"], r["version_id"]) for r in records)

    def release(self) -> None:
        """The sync failed: give its claims up so the next one fetches at once."""
        self.documents.release(self.claimed)
