"""A moto server process that seeds itself with a synthetic organisation, then serves HTTP.

    python -m bench.motohost --port 5000 --sizes '{"accounts": 2, ...}' --ready ready.json

moto's werkzeug server (threaded, as ``python -m moto.server`` runs it) starts first; the
organisation and accounts are created through it, the accounts' contents go straight into the
backends of this process (see bench/synthetic.py). When done, the account ids are written to
``--ready`` and the server keeps serving until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sizes", required=True, help="JSON of bench.synthetic.Sizes")
    parser.add_argument("--roles", default="", help="comma-separated roles per account")
    parser.add_argument("--ready", required=True)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    from bench.synthetic import Sizes, organisation_spec, seed_into_moto

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    started = time.perf_counter()
    sizes = Sizes(**json.loads(args.sizes))
    roles = [int(r) for r in args.roles.split(",")] if args.roles else None
    specs = organisation_spec(sizes, roles)
    seed_into_moto(f"http://127.0.0.1:{args.port}", specs)
    ready = {
        "accounts": [{"id": s.id, "name": s.name, "roles": len(s.roles)} for s in specs],
        "seconds": round(time.perf_counter() - started, 2),
        "pid": os.getpid(),
    }
    tmp = Path(args.ready + ".tmp")
    tmp.write_text(json.dumps(ready))
    tmp.rename(args.ready)
    stop.wait()
    # werkzeug's shutdown waits for open connections; nothing here needs a clean stop.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
