"""The change history's diff and its DynamoDB reads (real moto DynamoDB, real Redis)."""

from __future__ import annotations

from inventory.cache.history import Change, json_diff
from inventory.cache.keys import IAM_ROLE


def test_json_diff_paths_old_and_new_values():
    old = {"a": 1, "b": {"c/d": [1, 2]}, "gone": "x", "t": [1, 2, 3]}
    new = {"a": True, "b": {"c/d": [1, 3]}, "added": None, "t": [1, 2]}

    assert json_diff(old, new) == [
        {"op": "replace", "path": "/a", "old": 1, "new": True},  # 1 == True in Python only
        {"op": "add", "path": "/added", "new": None},
        {"op": "replace", "path": "/b/c~1d/1", "old": 2, "new": 3},
        {"op": "remove", "path": "/gone", "old": "x"},
        {"op": "replace", "path": "/t", "old": [1, 2, 3], "new": [1, 2]},
    ]
    assert json_diff(old, dict(old)) == []


def test_a_change_written_twice_by_a_retry_is_read_once(runtime):
    arn = "arn:aws:iam::111122223333:role/app"
    diff = [{"op": "replace", "path": "/description", "old": "a", "new": "b"}]

    def change(at: float, new: str = "b") -> Change:
        d = [dict(diff[0], new=new)]
        return Change(arn, IAM_ROLE, "111122223333", "global", at, "updated", d, id=f"{at:.6f}|u")

    # The same change recorded twice (a crash between the history and the Redis write), then
    # a real, different change: two entries, newest first.
    runtime.history.write([change(100.0), change(101.0), change(200.0, new="c")])

    history = runtime.history.for_resource(IAM_ROLE, arn)
    assert [(c.at, c.diff[0]["new"]) for c in history] == [(200.0, "c"), (101.0, "b")]
