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


def _row(name: str, updated: float, tags: dict[str, str] | None = None) -> dict:
    return {
        "arn": f"arn:aws:iam::123456789012:role/{name}",
        "name": name,
        "kind": "iam_role",
        "account_id": "123456789012",
        "account_name": "demo",
        "region": "global",
        "tags": tags or {},
        "errors": 0,
        "last_updated": updated,
        "findings": 0,
        "severity": None,
    }


def test_a_batch_of_rows_whose_inserts_spread_each_other_is_stored_and_indexed_in_order(
    tmp_path,
):
    """One ``put`` whose inserts exhaust a gap: the spread moves rows of the same batch (not yet
    in SQLite), whose labels must still reach SQLite and their documents."""
    from inventory.web.search_index import SORT_COLUMNS, Generation, sort_key
    from inventory.web.search_names import NamesPart
    from inventory.web.search_rows import LABELS, RowsPart
    from inventory.web.search_writer import GenerationWriter

    rows = {r["arn"]: r for r in (_row(n, 10.0) for n in ("a", "c", "e"))}
    for part, items in ((RowsPart, list(rows.values())), (NamesPart, [])):
        built = part(tmp_path, create=True)
        built.fill(items, lambda count: None)
        built.finish_fill()
        built.close()
    writer = GenerationWriter(tmp_path)
    # 300 names in one gap ("b..." between "a" and "c"), in ascending order, with ascending
    # timestamps past the end: every insert halves the gap left by the one before.
    batch = [_row(f"b{i:04d}", 20.0 + i) for i in range(300)]
    # And changes to existing rows in the same batch: one column changed, one value unchanged.
    batch.append(_row("c", 99.5, {"team": "x"}))  # now among the new rows, not before "e"
    batch.append(_row("e", 10.0, {"team": "y"}))
    writer.put_rows(batch)
    writer.remove_rows([_row("a", 0)["arn"]])
    writer.commit("2-0")
    rows.update({r["arn"]: r for r in batch})
    del rows[_row("a", 0)["arn"]]

    stored = {
        arn: LABELS.unpack(labels)
        for arn, labels in writer.rows.db.execute("SELECT arn, labels FROM rows")
    }
    assert set(stored) == set(rows)
    generation = Generation(tmp_path)
    for i, column in enumerate(SORT_COLUMNS):
        expected = sorted(rows, key=lambda arn: sort_key(rows[arn], column))
        # SQLite's labels order the rows as their keys do, with no ties...
        assert sorted(rows, key=lambda arn: stored[arn][i]) == expected, column
        assert len({labels[i] for labels in stored.values()}) == len(rows), column
        # ...and so do the documents (what a query sorts by), both ways.
        for descending in (False, True):
            total, page = generation.select(None, {}, None, column, descending, 0, 1_000)
            assert total == len(rows)
            want = expected[::-1] if descending else expected
            assert [r["arn"] for r in page] == want, (column, descending)
    _, page = generation.select("team=x", {}, None, "name", False, 0, 10)
    assert [r["name"] for r in page] == ["c"]
    generation.close()
    writer.close()
