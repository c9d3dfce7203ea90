"""The typeahead over the index on disk against its definition, on both of its search paths.

Names starting with the text come first (name order, then ARN), then names containing it; a
common text is looked up bucket by bucket of the name order, a rare one in one ranked search.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import pytest
import redis

from inventory.cache.keys import Keys, Partition
from inventory.cache.policies_table import PoliciesTable
from inventory.web import search_index
from inventory.web.search import PolicySearch
from inventory.web.search_index import name_of

WORDS = ["api", "batch", "billing", "data", "ingest", "reports", "sync", "worker"]
KINDS = ["iam_role", "sqs_queue"]
ACCOUNT = "123456789012"


def expected(entries: dict[str, str], text: str, kind: str | None, limit: int) -> list[str]:
    """The typeahead's definition over (arn -> kind), as ARNs."""
    needle = text.lower()
    ordered = sorted(
        (a for a, k in entries.items() if kind is None or k == kind),
        key=lambda a: (name_of(a).lower(), a),
    )
    first = [a for a in ordered if name_of(a).lower().startswith(needle)][:limit]
    rest = [a for a in ordered if needle in name_of(a).lower() and a not in first]
    return (first + (rest if len(needle) >= 3 else []))[:limit]


@pytest.fixture
def cache(redis_server) -> Iterator[tuple[redis.Redis, Keys, dict[str, str]]]:
    client = redis.Redis(port=redis_server.port, db=2, decode_responses=True)
    keys = Keys(f"t{uuid.uuid4().hex[:8]}-")
    rng = random.Random(18)
    entries: dict[str, str] = {}
    for i in range(600):
        kind = KINDS[i % 2]
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
        entries[f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"] = kind
    for kind in KINDS:
        p = Partition(kind, ACCOUNT)
        client.hset(keys.items(p), mapping={a: "{}" for a, k in entries.items() if k == kind})
        client.sadd(keys.partitions(), p.id)
    yield client, keys, entries
    for key in client.scan_iter(f"{keys.prefix}*"):
        client.delete(key)


QUERIES = [
    ("rep", None),
    ("ports", None),
    ("ing", "iam_role"),
    ("illing", None),
    ("-1", None),
    ("wo", "sqs_queue"),
    ("atch-sync", None),
    ("zzz", None),
]


@pytest.mark.parametrize("direct", [0, 10**9], ids=["by buckets", "one ranked search"])
def test_typeahead_is_prefixes_then_substrings_in_name_order(cache, monkeypatch, direct):
    client, keys, entries = cache
    monkeypatch.setattr(search_index, "DIRECT", direct)
    index = PolicySearch(client, keys)
    index.load()
    for text, kind in QUERIES:
        found = [r["arn"] for r in index.typeahead_resources(text, kind, 20)]
        assert found == expected(entries, text, kind, 20), (text, kind)

    # New names (a run in one gap of the name order: labels are spread out again) and
    # removals, through the change stream.
    added = {f"arn:aws:iam::{ACCOUNT}:iam_role/reports-{i:04d}": "iam_role" for i in range(200)}
    removed = [a for a in list(entries)[::7]]
    table = PoliciesTable(client, keys)
    table.publish(Partition("iam_role", ACCOUNT), dict.fromkeys(added, "{}"), removed, [], [])
    entries.update(added)
    for arn in removed:
        del entries[arn]

    assert index.sync() == 1
    for text, kind in [*QUERIES, ("reports-01", None), ("orts-0", "iam_role")]:
        found = [r["arn"] for r in index.typeahead_resources(text, kind, 20)]
        assert found == expected(entries, text, kind, 20), (text, kind)
