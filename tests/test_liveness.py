"""Heartbeat files for `inventory health`: two real beats (leader and standby) and the web tier."""

from __future__ import annotations

import time
from pathlib import Path

from tests.processes import Beat, CliProcess
from tests.servers import free_port
from tests.test_cli import run_cli
from tests.test_operations import beat_env as operations_beat_env
from tests.test_operations import wait_for

beat_env = operations_beat_env  # the fixture: one cheap entry, a 1 s tick, a 6 s lock
PATH = "INVENTORY_HEALTH__HEARTBEAT_PATH"
HEALTH = {"INVENTORY_HEALTH__INTERVAL_SECONDS": "1", "INVENTORY_HEALTH__MAX_AGE_SECONDS": "5"}


def moves(path: Path, timeout: float = 30) -> None:
    """The file exists, then is touched again."""
    wait_for(path.exists, timeout, f"{path.name} created")
    first = path.stat().st_mtime
    wait_for(lambda: path.stat().st_mtime > first + 1.5, timeout, f"{path.name} touched again")


def test_leader_and_standby_beats_both_keep_their_heartbeat(beat_env, runtime, tmp_path):
    files = [tmp_path / f"beat{i}.alive" for i in range(2)]
    beats = [
        Beat(beat_env | HEALTH | {PATH: str(f)}, tmp_path / f"b{i}.log", tmp_path)
        for i, f in enumerate(files)
    ]
    try:
        for b in beats:
            b.start()
        wait_for(lambda: runtime.redis.get(runtime.keys.beat_leader()), 30, "a leader")
        for path in files:
            moves(path)
        leaders = [b for b in beats if "Sending due task" in b.log()]
        for i, path in enumerate(files):
            env = beat_env | HEALTH | {PATH: str(path)}
            proc, _ = run_cli(["health"], env)
            assert proc.returncode == 0, (i, proc.stderr, [b.log()[-500:] for b in beats])
        assert len(leaders) <= 1
    finally:
        for b in beats:
            b.stop()


def test_web_tier_touches_its_heartbeat_from_the_io_loop(env, runtime, tmp_path):
    path = tmp_path / "web.alive"
    web = CliProcess(env | HEALTH | {PATH: str(path)}, tmp_path / "web.log")
    web.spawn("web", "--port", str(free_port()))
    try:
        moves(path)
    finally:
        web.stop()
    stopped = path.stat().st_mtime
    time.sleep(1.5)
    assert path.stat().st_mtime == stopped
