"""Shared AWS managed documents on a real redis-server: one lead per sweep, one read per version."""

from __future__ import annotations

import uuid

import pytest
import redis

from inventory.cache.keys import Keys
from inventory.cache.shared_documents import DocumentClaims, SharedDocuments

ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
EVERY = 45 * 60.0


@pytest.fixture
def documents(redis_server) -> SharedDocuments:
    client = redis.Redis(port=redis_server.port, db=5, decode_responses=True)
    return SharedDocuments(client, Keys(prefix=f"t{uuid.uuid4().hex[:8]}:"))


def stored(documents: SharedDocuments, version: str, updated: str) -> None:
    claims = DocumentClaims(documents, EVERY)
    assert claims.need(ARN, version, updated)
    claims.stored([{"arn": ARN, "version_id": version, "updated": updated}])


def test_one_sync_per_sweep_leads_until_the_next_sweep_begins(documents):
    first, second, third = (DocumentClaims(documents, EVERY) for _ in range(3))
    assert (first.lead(), second.lead()) == (True, False)
    documents.new_sweep()
    assert third.lead() is True
    ttl = documents.client.ttl(documents.keys.shared_catalogue_claim())
    assert 0.8 * EVERY - 5 <= ttl <= 0.8 * EVERY  # gone before the next sweep is due


def test_a_document_is_read_again_only_when_its_version_or_update_date_changed(documents):
    stored(documents, "v112", "2024-05-01T17:12:03Z")
    claims = DocumentClaims(documents, EVERY)
    assert claims.need(ARN, "v112", "2024-05-01T17:12:03Z") is False
    assert claims.need(ARN, "v113", "2024-05-01T17:12:03Z") is True
    assert DocumentClaims(documents, EVERY).need(ARN, "v113", "2024-05-01T17:12:03Z") is False
    assert DocumentClaims(documents, EVERY).need(ARN, "v112", "2024-06-02T08:00:00Z") is True


def test_a_failed_lead_gives_the_catalogue_and_its_claims_back(documents):
    failed = DocumentClaims(documents, EVERY)
    assert failed.lead() and failed.need(ARN, "v112", None)
    failed.release()
    retry = DocumentClaims(documents, EVERY)
    assert (retry.lead(), retry.need(ARN, "v112", None)) == (True, True)
