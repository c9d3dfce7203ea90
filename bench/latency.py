"""A latency proxy in its own process: tests/faultproxy.py holding every AWS answer N ms.

    python -m bench.latency --upstream http://127.0.0.1:PORT --delay-ms 30 --ready FILE

Real AWS answers a detail read in tens of milliseconds; moto on loopback in about one. The
proxy runs in a process of its own so its threads do not share the measured process's GIL.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.common import ROOT, stop
from tests.servers import wait_started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.latency")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-ms", type=float, default=30.0)
    parser.add_argument("--ready", required=True)
    args = parser.parse_args(argv)
    from tests.faultproxy import EVERY, FaultProxy

    proxy = FaultProxy(args.upstream)
    proxy.slow(EVERY, args.delay_ms / 1000)
    proxy.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    Path(args.ready).write_text(json.dumps({"url": proxy.url}))
    done.wait()
    proxy.stop()
    return 0


@contextmanager
def latency_proxy(upstream: str, delay_ms: float) -> Iterator[str]:
    """The URL of a proxy in front of ``upstream`` delaying every answer; stopped by PID."""
    ready = Path(tempfile.mkdtemp(prefix="inventory-latency-")) / "ready.json"
    argv = [sys.executable, "-m", "bench.latency", "--upstream", upstream]
    argv += ["--delay-ms", str(delay_ms), "--ready", str(ready)]
    proc = subprocess.Popen(argv, cwd=ROOT)
    try:
        wait_started(ready.exists, "latency proxy", proc, 60)
        yield str(json.loads(ready.read_text())["url"])
    finally:
        stop(proc)


if __name__ == "__main__":
    raise SystemExit(main())
