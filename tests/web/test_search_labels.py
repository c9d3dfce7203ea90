"""Order-preserving labels: inserts keep label order equal to key order, spreads included."""

from __future__ import annotations

import random
import sqlite3

from inventory.web.search_labels import SPACE, Labels


def labelled(labels: Labels) -> list[tuple[bytes, int]]:
    return [(bytes(k), v) for k, v in labels.db.execute("SELECT key, label FROM t ORDER BY key")]


def test_labels_follow_key_order_through_runs_of_inserts_in_one_gap():
    labels = Labels(sqlite3.connect(":memory:"), "t")
    labels.create()
    labels.fill([b"a", b"c", b"e"])
    moved: set[bytes] = set()
    # Each new key lands right after the previous one, before "c": the gap halves each time
    # until the labels around it must be spread out again.
    for i in range(300):
        _, relabelled = labels.insert(b"b" + f"{i:04d}".encode())
        moved.update(relabelled)
    # Keys past either end take bounded steps.
    for i in range(300):
        labels.insert(b"z" + f"{i:04d}".encode())
        labels.insert(b"0" + f"{999 - i:04d}".encode())

    rows = labelled(labels)
    values = [v for _, v in rows]
    assert len(rows) == 903
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert 0 < values[0] and values[-1] < SPACE
    assert moved and moved <= {k for k, _ in rows}


def test_random_inserts_and_removals_keep_labels_in_key_order():
    rng = random.Random(18)
    labels = Labels(sqlite3.connect(":memory:"), "t")
    labels.create()
    keys = {rng.randbytes(3) for _ in range(200)}
    labels.fill(sorted(keys))
    for _ in range(2_000):
        key = rng.randbytes(rng.randint(1, 3))
        if key in keys:
            labels.remove(key)
            keys.discard(key)
        else:
            labels.insert(key)
            keys.add(key)

    rows = labelled(labels)
    assert [k for k, _ in rows] == sorted(keys)
    values = [v for _, v in rows]
    assert values == sorted(values) and len(set(values)) == len(values)
