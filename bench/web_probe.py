"""One measured process of ``bench web``: opens an index, runs the queries, reports as JSON.

    python -m bench.web_probe disk|numpy --redis-port P --index-dir D --queries Q --out O

``disk`` opens the index on disk as a web process does (read-only; the index must exist);
``numpy`` loads the former per-process index from Redis. Either way the same queries run
server side (the calls the handlers make), and the timings, every result and the process's
memory (VmRSS after loading and after the queries, VmHWM) are written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def memory_mb(field: str) -> float:
    """VmRSS / VmHWM of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _no_indexer(_root: Path) -> Any:
    raise RuntimeError("the benchmark's reader never starts an indexer")


def open_index(mode: str, port: int, index_dir: str) -> Any:
    import redis

    from inventory.cache.keys import Keys

    client = redis.Redis(port=port, decode_responses=True)
    keys = Keys("inv:")
    if mode == "numpy":
        from bench.numpy_index import NumpySearch

        numpy_search = NumpySearch(client, keys)
        numpy_search.load()
        return numpy_search
    from inventory.web.search import PolicySearch

    search = PolicySearch(client, keys, index_dir=index_dir, start_indexer=_no_indexer)
    search.refresh()
    assert search.loaded, f"no index at {index_dir}"
    return search


def timed(fn: Any, calls: list[Any]) -> tuple[list[float], list[Any]]:
    times, results = [], []
    for args in calls:
        start = time.perf_counter()
        result = fn(*args)
        times.append((time.perf_counter() - start) * 1000)
        results.append(result)
    return times, results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["disk", "numpy"])
    parser.add_argument("--redis-port", type=int, required=True)
    parser.add_argument("--index-dir", default="")
    parser.add_argument("--queries", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    from inventory.web.search import Query

    queries = json.loads(Path(args.queries).read_text())
    started = time.perf_counter()
    search = open_index(args.mode, args.redis_port, args.index_dir)
    load_s = time.perf_counter() - started
    rss_loaded = memory_mb("VmRSS")
    out: dict[str, Any] = {"load_s": load_s, "rss_loaded_mb": rss_loaded, "times": {}}
    results: dict[str, Any] = {}
    for shape in ("pages", "slow"):
        calls = [(Query(**q),) for q in queries[shape]]
        out["times"][shape], results[shape] = timed(search.query, calls)
    calls = [tuple(t) for t in queries["typeahead"]]
    out["times"]["typeahead"], results["typeahead"] = timed(search.typeahead_resources, calls)
    out["rss_after_mb"] = memory_mb("VmRSS")
    out["hwm_mb"] = memory_mb("VmHWM")
    out["results"] = results
    Path(args.out).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
