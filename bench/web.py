"""Web tier search at scale: the index on disk beside the former numpy index, in one run.

    .venv/bin/python -m bench web --rows 200000 --arns 1000000 [--no-baseline]

Starts its own redis-server, writes the rows through the real PoliciesTable and the ARNs as real
partitions, then, in order:

1. a real ``inventory web`` process on an empty index directory: how soon it listens, what
   /readyz says while the host's indexer builds, the cold build's time and the indexer's peak
   memory, the index's size on disk;
2. a second web process on the same directory (it shares the index; one indexer), their memory
   after load and after a burst of HTTP queries, and HTTP latency;
3. 10,000 changed rows through the change stream: how soon a query sees them, how long the
   indexer took to apply them, and that no full build happened;
4. both stopped, a third web process on the index already on disk: time to ready;
5. the same server-side queries in two fresh processes, one reading the index on disk, one
   loading the numpy index from Redis (``bench/numpy_index.py``): latency, memory, and whether
   every result is equal.

Writes a Markdown report to bench/results/web.md (or ``--output``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from inventory.cache.keys import Keys, Partition  # noqa: E402
from inventory.cache.policies_table import PoliciesTable  # noqa: E402
from inventory.demo.runner import free_port, redis_binary  # noqa: E402

KINDS = ["iam_role", "iam_user", "iam_group", "iam_policy", "s3_bucket", "sqs_queue", "sns_topic"]
REGIONS = ["global", "us-east-1", "us-west-2", "eu-west-1"]
WORDS = [
    "api",
    "batch",
    "billing",
    "data",
    "deploy",
    "etl",
    "ingest",
    "jobs",
    "ml",
    "ops",
    "payments",
    "reports",
    "search",
    "sync",
    "web",
    "worker",
]
ACCOUNTS = [f"{100000000000 + n}" for n in range(100)]
COLUMNS = ["name", "kind", "account_id", "region", "errors", "last_updated", "findings"]
SEVERITIES = ["critical", "high", "medium", "low"]
TOKEN = "bench-token"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def synthetic_row(i: int, accounts: list[str], rng: random.Random) -> dict:
    kind = KINDS[i % len(KINDS)]
    account = accounts[i % len(accounts)]
    name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{i}"
    region = "global" if kind.startswith("iam") or kind == "s3_bucket" else rng.choice(REGIONS[1:])
    arn = f"arn:aws:{kind.split('_')[0]}::{account}:{kind}/{name}"
    return {
        "arn": arn,
        "name": name,
        "kind": kind,
        "account_id": account,
        "account_name": f"account-{account[-3:]}",
        "region": region,
        "tags": {"owner": f"team-{rng.choice(WORDS)}", "env": rng.choice(["prod", "dev"])},
        "errors": rng.choice([0] * 9 + [rng.randint(1, 50)]),
        "owner": None,
        "template": None,
        "last_updated": 1.7e9 + rng.random() * 1e7,
        **synthetic_findings(rng),
    }


def synthetic_findings(rng: random.Random) -> dict:
    """A row's findings count and worst severity: most rows have none."""
    count = rng.choice([0] * 4 + [rng.randint(1, 12)])
    return {"findings": count, "severity": rng.choice(SEVERITIES) if count else None}


def populate(client: redis.Redis, keys: Keys, rows: int, arns: int, rng: random.Random) -> None:
    table = PoliciesTable(client, keys)
    batch = []
    for i in range(rows):
        batch.append(synthetic_row(i, ACCOUNTS, rng))
        if len(batch) == 5000:
            table.upsert(batch)
            batch = []
    table.upsert(batch)
    # Every cached ARN: real partitions (items hashes) the search index reads.
    per_partition = max(1, arns // (len(ACCOUNTS) * 4))
    written = 0
    for account in ACCOUNTS:
        pipe = client.pipeline(transaction=False)
        for kind in ("iam_role", "s3_bucket", "sqs_queue", "sns_topic"):
            p = Partition(kind, account, "global")
            mapping = {}
            for _ in range(per_partition):
                name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{written}"
                mapping[f"arn:aws:{kind.split('_')[0]}::{account}:{kind}/{name}"] = "{}"
                written += 1
            pipe.hset(keys.items(p), mapping=mapping)
            pipe.hset(keys.meta(p), mapping={"refreshed_at": time.time(), "count": len(mapping)})
            pipe.sadd(keys.partitions(), p.id)
        pipe.execute()


def make_queries(count: int, rng: random.Random) -> dict[str, list[Any]]:
    """Random pages, typeahead fragments and the known slow shape, as JSON-safe arguments."""
    pages = []
    for _ in range(count):
        text = rng.choice([None, rng.choice(WORDS), f"{rng.choice(WORDS)}-{rng.choice(WORDS)}"])
        pages.append(
            {
                "text": text,
                "account": rng.choice([None, rng.choice(ACCOUNTS)]),
                "kind": rng.choice([None, rng.choice(KINDS)]),
                "region": rng.choice([None, None, rng.choice(REGIONS)]),
                "has_errors": rng.choice([None, None, True]),
                "severity": rng.choice([None, None, None, rng.choice(SEVERITIES)]),
                "sort": rng.choice(COLUMNS),
                "descending": rng.random() < 0.5,
                "offset": rng.choice([0, 0, 50, 500]),
                "limit": 50,
            }
        )
    typeahead = []
    for _ in range(count):
        word = rng.choice(WORDS)
        start = rng.randint(0, max(0, len(word) - 3))
        text = rng.choice(
            [
                word[start : start + rng.randint(3, 6)],
                word[start : start + rng.randint(3, 6)],
                word[:2],
                f"arn:aws:iam::{rng.choice(ACCOUNTS)}:iam_role/{word[:3]}",
            ]
        )
        typeahead.append([text, rng.choice([None, "iam_role"]), 20])
    # A needle of very common trigrams that occurs in nearly every row (account ids' zeros).
    slow = []
    for needle in ("000000", "0000000", "00000000", "1000000000", ":1000000"):
        for sort in ("name", "last_updated"):
            for descending in (False, True):
                slow.append({"text": needle, "sort": sort, "descending": descending, "limit": 50})
    return {"pages": pages, "typeahead": typeahead, "slow": slow}


def start_redis(workdir: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    server = subprocess.Popen(
        [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        + ["--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.1)
    return server, port


class WebProcess:
    """A real ``inventory web`` process (its own session, stopped by PID), logging to a file."""

    def __init__(self, redis_port: int, index_dir: Path, log: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "INVENTORY_REDIS__URL": f"redis://127.0.0.1:{redis_port}/0",
            "INVENTORY_WEB__SEARCH_INDEX_DIR": str(index_dir),
            "INVENTORY_WEB__SEARCH_REBUILD_SECONDS": "1",
            "INVENTORY_WEB__API_TOKEN_HASHES": f"[{hashlib.sha256(TOKEN.encode()).hexdigest()}]",
        }
        self.log = log
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inventory.cli", "web", "--port", str(self.port)],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def wait_ready(self, timeout: float, on_poll: Any = None) -> dict[str, Any]:
        """Poll /readyz: when it first answered, what it said on the way, when it was ready."""
        listening, seen = None, []
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if on_poll is not None:
                on_poll()
            try:
                status, body = self.get("/readyz", auth=False)
            except OSError:
                time.sleep(0.05)
                continue
            now = time.perf_counter() - self.started
            listening = listening if listening is not None else now
            search = body.get("search", {})
            seen.append((round(now, 2), body.get("status"), search.get("progress")))
            if status == 200:
                return {"listening_s": listening, "ready_s": now, "seen": seen}
            time.sleep(0.1)
        raise RuntimeError(f"web process not ready in {timeout} s; log: {self.log}")

    def memory_mb(self, field: str = "VmRSS") -> float:
        return _proc_memory(self.proc.pid, field)

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()


def _proc_memory(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        children = [int(p) for p in path.read_text().split()]
    except OSError:
        return []
    return children + [d for child in children for d in descendants(child)]


def indexer_pids(webs: list[WebProcess]) -> list[int]:
    """Live indexer processes among the web processes' children (multiprocessing spawn)."""
    found = []
    for web in webs:
        for pid in web.children():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                found.append(pid)
    return found


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def http_sample(web: WebProcess, rng: random.Random, count: int = 200) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"pages": [], "typeahead": []}
    for _ in range(count):
        query = {"q": rng.choice(WORDS), "sort": rng.choice(["name", "last_updated"]), "limit": 50}
        for shape, path in (
            ("pages", f"/api/v1/policies?{urllib.parse.urlencode(query)}"),
            ("typeahead", f"/api/v1/typeahead/resources?q={rng.choice(WORDS)[:4]}"),
        ):
            start = time.perf_counter()
            status, _ = web.get(path)
            times[shape].append((time.perf_counter() - start) * 1000)
            assert status == 200, (path, status)
    return times


def change_rows(client: redis.Redis, keys: Keys, count: int, marker: str) -> float:
    """Change ``count`` rows through the change stream as partition writes do; when done."""
    table = PoliciesTable(client, keys)
    arns = []
    cursor = 0
    while len(arns) < count:
        cursor, found = client.hscan(table.rows_key(), cursor, count=5_000)
        arns += list(found)
        if not cursor:
            break
    changed = []
    for row in table._rows(arns[:count]).values():
        row["tags"] = {**row["tags"], "bench": marker}
        row["last_updated"] = time.time()
        changed.append(row)
    for start in range(0, len(changed), 500):
        batch = changed[start : start + 500]
        table.upsert(batch)
        p = Partition(batch[0]["kind"], batch[0]["account_id"], batch[0]["region"])
        table.publish(p, {}, [], batch, [])
    return time.perf_counter()


def run_probe(mode: str, port: int, index_dir: Path, queries: Path, workdir: Path) -> dict:
    out = workdir / f"probe-{mode}.json"
    subprocess.run(
        [sys.executable, "-m", "bench.web_probe", mode, "--redis-port", str(port)]
        + ["--index-dir", str(index_dir), "--queries", str(queries), "--out", str(out)],
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.read_text())


def _without_matched(result: Any) -> Any:
    """A page without the rows' ``matched`` note (what the text matched), which only today's
    index gives: every other field is compared."""
    if isinstance(result, dict) and "rows" in result:
        rows = [{k: v for k, v in row.items() if k != "matched"} for row in result["rows"]]
        return {**result, "rows": rows}
    return result


def compare(a: dict, b: dict) -> dict[str, int]:
    """How many results of each shape differ between two probes."""
    return {
        shape: sum(
            _without_matched(x) != _without_matched(y)
            for x, y in zip(a["results"][shape], b["results"][shape], strict=True)
        )
        for shape in a["results"]
    }


def stats(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} | {percentile(values, 99):.2f} | {max(values):.2f}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--arns", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the numpy index")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "web.md"))
    args = parser.parse_args()
    rng = random.Random(7)
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    server, port = start_redis(str(workdir))
    webs: list[WebProcess] = []
    report: dict[str, Any] = {"load_before": os.getloadavg()}
    try:
        client = redis.Redis(port=port, decode_responses=True)
        keys = Keys("inv:")
        started = time.perf_counter()
        populate(client, keys, args.rows, args.arns, rng)
        report["populate_s"] = time.perf_counter() - started
        report["redis_mb"] = client.info("memory")["used_memory"] / 1e6
        queries = workdir / "queries.json"
        queries.write_text(json.dumps(make_queries(args.queries, rng)))
        index_dir = workdir / "index"
        report.update(measure_web(port, index_dir, workdir, client, keys, args.changes, rng, webs))
        report["disk"] = run_probe("disk", port, report["root"], queries, workdir)
        if not args.no_baseline:
            report["numpy"] = run_probe("numpy", port, report["root"], queries, workdir)
            report["differences"] = compare(report["disk"], report["numpy"])
        report["load_after"] = os.getloadavg()
        text = render(args, report)
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)
        print(text)
        return 0
    finally:
        for web in webs:
            web.stop()
        server.terminate()
        server.wait(10)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


def measure_web(
    port: int,
    index_dir: Path,
    workdir: Path,
    client: redis.Redis,
    keys: Keys,
    changes: int,
    rng: random.Random,
    webs: list[WebProcess],
) -> dict[str, Any]:
    """Steps 1-4 of the module docstring, through real web processes."""
    out: dict[str, Any] = {}
    first = WebProcess(port, index_dir, workdir / "web1.log")
    webs.append(first)
    peaks: dict[int, float] = {}

    def watch() -> None:
        # The indexer and the two processes of its build, while they live.
        for pid in descendants(first.proc.pid):
            peaks[pid] = max(peaks.get(pid, 0.0), _proc_memory(pid, "VmHWM"))

    cold = first.wait_ready(900, on_poll=watch)
    # The web tier keeps one index per cache under web.search_index_dir.
    root = next(p for p in index_dir.iterdir() if p.is_dir())
    out["root"] = root
    out["cold"] = cold
    out["indexer_hwm_mb"] = sorted(peaks.values(), reverse=True)
    out["index_mb"] = du_mb(root)
    out["cold_build_log"] = _log_lines(first.log, r"built from Redis in ([\d.]+) s")
    second = WebProcess(port, index_dir, workdir / "web2.log")
    webs.append(second)
    out["second"] = second.wait_ready(60)
    out["indexers_with_two_web"] = len(indexer_pids(webs))
    out["rss_after_ready_mb"] = [w.memory_mb() for w in webs]
    out["http"] = http_sample(first, rng)
    http_sample(second, rng, 50)
    out["rss_after_queries_mb"] = [w.memory_mb() for w in webs]
    state_before = json.loads((root / "state.json").read_text())
    marker = f"changed{int(time.time())}"
    published = change_rows(client, keys, changes, marker)
    while True:
        _, page = first.get(f"/api/v1/policies?q={marker}&limit=1")
        if page["total"] >= changes:
            break
        time.sleep(0.05)
    out["changes_visible_s"] = time.perf_counter() - published
    out["changes_total"] = page["total"]
    state_after = json.loads((root / "state.json").read_text())
    out["builds"] = (state_before["builds"], state_after["builds"])
    out["generations"] = (state_before["generation"], state_after["generation"])
    out["apply_log"] = _log_lines(
        first.log, r"changes applied in ([\d.]+) s.*in ([\d.]+) s \(CPU ([\d.]+) s"
    )
    for web in list(webs):
        web.stop()
        webs.remove(web)
    third = WebProcess(port, index_dir, workdir / "web3.log")
    webs.append(third)
    out["from_disk"] = third.wait_ready(60)
    out["rss_from_disk_mb"] = third.memory_mb()
    third.stop()
    webs.remove(third)
    return out


def _log_lines(path: Path, pattern: str) -> list[list[str]]:
    return [list(m.groups()) for m in re.finditer(pattern, path.read_text(errors="replace"))]


def render(args: argparse.Namespace, r: dict[str, Any]) -> str:
    disk, numpy_ = r["disk"], r.get("numpy")
    lines = [
        "# Web tier search",
        "",
        f"{args.rows:,} policies-table rows, {args.arns:,} ARNs; {args.queries} random queries of "
        "each shape; this machine (2 cores). Load average (1, 5, 15 min) before: "
        f"{', '.join(f'{x:.2f}' for x in r['load_before'])}; after: "
        f"{', '.join(f'{x:.2f}' for x in r['load_after'])}.",
        "",
        f"Populate Redis: {r['populate_s']:.1f} s; Redis used memory {r['redis_mb']:.0f} MB.",
        "",
        "## Start-up and sharing (real `inventory web` processes)",
        "",
        f"- empty index directory: listening after {r['cold']['listening_s']:.2f} s, ready "
        f"after {r['cold']['ready_s']:.1f} s (cold build by the indexer: "
        f"{', '.join(x[0] for x in r['cold_build_log'])} s; peak RSS of the indexer and its "
        f"build processes: {_mbs(r['indexer_hwm_mb'])}); index on disk {r['index_mb']:.0f} MB",
        f"- /readyz on the way: {_readyz_summary(r['cold']['seen'])}",
        f"- second web process on the same directory: ready after {r['second']['ready_s']:.2f} s;"
        f" live indexers: {r['indexers_with_two_web']}",
        f"- web process RSS after ready: {_mbs(r['rss_after_ready_mb'])}; after "
        f"{len(r['http']['pages']) * 2 + 100} HTTP queries: {_mbs(r['rss_after_queries_mb'])}",
        "- index already on disk, no indexer running: ready after "
        f"{r['from_disk']['ready_s']:.2f} s (listening after "
        f"{r['from_disk']['listening_s']:.2f} s); RSS {r['rss_from_disk_mb']:.0f} MB",
        "",
        "## Incremental",
        "",
        f"{args.changes:,} changed rows written through the change stream "
        "(`web.search_rebuild_seconds` = 1): all visible to a query after "
        f"{r['changes_visible_s']:.2f} s; indexer: {_apply_summary(r['apply_log'])}; full builds "
        f"before/after: {r['builds'][0]}/{r['builds'][1]}, generation {r['generations'][0]} -> "
        f"{r['generations'][1]}.",
        "",
        "## Server-side latency (the call the handler makes), same queries",
        "",
        "| index | query | p50 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    probes = [("on disk", disk)] + ([("numpy (before)", numpy_)] if numpy_ else [])
    labels = {
        "pages": "policies page (filter + sort + page + total)",
        "typeahead": "typeahead over every ARN",
        "slow": "known slow shape (needle of common trigrams)",
    }
    for shape, label in labels.items():
        for name, probe in probes:
            lines.append(f"| {name} | {label} | {stats(probe['times'][shape])} |")
    for shape, label in (("pages", "policies page"), ("typeahead", "typeahead")):
        http = stats(r["http"][shape])
        lines.append(f"| on disk | {label} over HTTP (JSON, loopback) | {http} |")
    lines += ["", "| index | open/load s | RSS after load MB | RSS after queries MB | peak MB |"]
    lines.append("|---|---|---|---|---|")
    for name, probe in probes:
        lines.append(
            f"| {name} | {probe['load_s']:.2f} | {probe['rss_loaded_mb']:.0f} | "
            f"{probe['rss_after_mb']:.0f} | {probe['hwm_mb']:.0f} |"
        )
    if "differences" in r:
        diff = r["differences"]
        lines += [
            "",
            "Same results on the same queries (pages: total and every row; typeahead: every "
            f"entry in order): differences {diff} "
            f"({'all equal' if not any(diff.values()) else 'NOT EQUAL'}).",
        ]
    return "\n".join(lines) + "\n"


def _mbs(values: list[float]) -> str:
    return ", ".join(f"{v:.0f} MB" for v in values)


def _readyz_summary(seen: list) -> str:
    picked = seen[:1] + seen[1 : -1 : max(1, len(seen) // 4)] + seen[-1:]
    return "; ".join(f"{t} s {status} {progress or ''}".strip() for t, status, progress in picked)


def _apply_summary(found: list[list[str]]) -> str:
    if not found:
        return "no commit logged"
    return "; ".join(f"applied in {a} s, committed in {c} s (CPU {u} s)" for a, c, u in found)


if __name__ == "__main__":
    raise SystemExit(main())
