"""`inventory worker` takes Celery's options: -c/--concurrency, and any other passes through."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.processes import Worker
from tests.test_cli import run_cli


def stats(worker: Worker) -> dict[str, Any]:
    """The worker's own report of its pool and prefetch (Celery's `inspect stats`)."""
    from inventory.signing import registered

    with registered(worker.app):
        replies = worker.app.control.inspect([worker.name], timeout=5).stats()
    assert replies is not None, worker.log()
    return replies[worker.name]


def test_lowercase_c_sets_the_pool_size_as_in_celery(env, clean, tmp_path: Path):
    worker = Worker(env, tmp_path / "w.log", options=("-c", "3"))
    worker.concurrency = 1  # the Worker helper's own --concurrency comes first: -c wins
    worker.start()
    try:
        report = stats(worker)
    finally:
        worker.stop()
    assert report["pool"]["max-concurrency"] == 3
    assert len(report["pool"]["processes"]) == 3


def test_other_celery_worker_options_reach_celery(env, clean, tmp_path: Path):
    options = ("--autoscale", "3,1", "--max-tasks-per-child", "7", "--prefetch-multiplier", "4")
    worker = Worker(env, tmp_path / "w.log", options=options).start()
    try:
        report = stats(worker)
    finally:
        worker.stop()
    assert report["autoscaler"]["max"] == 3
    assert report["autoscaler"]["min"] == 1
    # The pool starts at the autoscaler's minimum and grows under load.
    assert report["autoscaler"]["current"] == len(report["pool"]["processes"]) == 1
    assert report["pool"]["max-tasks-per-child"] == 7
    # Celery prefetches multiplier x the autoscaler's maximum (our default multiplier is 1).
    assert report["prefetch_count"] == 4 * 3


def test_capital_c_is_refused_with_the_celery_meaning_explained(env):
    proc, took = run_cli(["worker", "-C", "4"], env)
    assert proc.returncode == 2
    assert "-C is not an option of inventory worker: use -c/--concurrency" in proc.stderr
    assert "celery@" not in proc.stderr
    assert took < 20
