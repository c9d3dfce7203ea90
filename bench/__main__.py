"""``python -m bench iam|sweep|kind|events|web [options]``: run one benchmark.

Each writes its Markdown table to bench/results/.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _iam(argv: list[str]) -> int:
    from bench.iam import main

    return main(argv)


def _sweep(argv: list[str]) -> int:
    from bench.sweep import main

    return main(argv)


def _kind(argv: list[str]) -> int:
    from bench.kind import main

    return main(argv)


def _events(argv: list[str]) -> int:
    from bench.events import main

    return main(argv)


def _web(argv: list[str]) -> int:
    from bench.web import main

    sys.argv = ["bench web", *argv]
    return main()


def _redis_memory(argv: list[str]) -> int:
    from bench.redis_memory import main

    return main(argv)


def _findings(argv: list[str]) -> int:
    from bench.findings import main

    return main(argv)


BENCHMARKS: dict[str, Callable[[list[str]], int]] = {
    "redis-memory": _redis_memory,
    "iam": _iam,
    "sweep": _sweep,
    "kind": _kind,
    "events": _events,
    "web": _web,
    "findings": _findings,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in BENCHMARKS:
        names = "|".join(BENCHMARKS)
        print(f"usage: python -m bench {{{names}}} [--help | options]", file=sys.stderr)
        return 2
    return BENCHMARKS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
