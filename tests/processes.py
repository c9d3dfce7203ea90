"""Real service processes for tests, started through the `inventory` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from inventory.celery_app import InventoryCelery, create_app
from inventory.settings import load_settings
from inventory.signing import registered

#: How a worker or beat is started: our command, or Celery's own with our app.
LAUNCHERS = {
    "inventory": ["-m", "inventory.cli"],
    "celery": ["-m", "celery", "-A", "inventory.celery_app:app"],
}


class CliProcess:
    """`python -m inventory.cli ARGS` in its own process group, logging to a file."""

    def __init__(self, env: dict[str, str], log_path: Path, launcher: str = "inventory") -> None:
        self.env = env
        self.log_path = log_path
        self.launcher = launcher
        #: Standard error in a file of its own (where logging writes); None: in log_path.
        self.stderr_path: Path | None = None
        self.proc: subprocess.Popen | None = None

    def spawn(self, *args: str) -> None:
        log = self.log_path.open("wb")
        errors = self.stderr_path.open("wb") if self.stderr_path else subprocess.STDOUT
        self.proc = subprocess.Popen(
            [sys.executable, *LAUNCHERS[self.launcher], *args],
            env={**os.environ, **self.env},
            stdout=log,
            stderr=errors,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stderr(self) -> str:
        path = self.stderr_path
        return path.read_text(errors="replace") if path and path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group at once: no chance to ack, requeue or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


class Worker(CliProcess):
    """A real prefork `inventory worker` (or `celery -A ... worker`), ready once it answers."""

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        concurrency: int = 2,
        launcher: str = "inventory",
        options: tuple[str, ...] = (),
    ) -> None:
        super().__init__(env, log_path, launcher)
        self.concurrency = concurrency
        #: More worker options, given as they are (Celery's own pass through `inventory worker`).
        self.options = options
        self.name = f"test-{os.getpid()}-{time.monotonic_ns()}@localhost"
        self.app: InventoryCelery = create_app(load_settings(paths=[], environ=env))

    def start(self, timeout: float = 60.0) -> Worker:
        self.spawn(
            "worker", "--pool", "prefork", "--concurrency", str(self.concurrency),
            "--hostname", self.name, "--loglevel", "INFO", *self.options,
        )  # fmt: skip
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"worker exited {self.proc.returncode}:\n{self.log()}{self.stderr()}"
                )
            if self.ready():
                return self
        raise RuntimeError(
            f"worker did not answer ping within {timeout}s:\n{self.log()}{self.stderr()}"
        )

    def ready(self) -> bool:
        """Whether the worker answers a ping; without remote control (SQS): says so in its log."""
        if not self.app.connection_for_read().supports_exchange_type("fanout"):
            time.sleep(0.2)
            return f"{self.name} ready." in self.log() + self.stderr()
        return self.ping(0.5)

    def ping(self, timeout: float) -> bool:
        """Whether the worker answers a control ping (signed, when the worker wants that)."""
        with registered(self.app):
            return bool(self.app.control.ping(destination=[self.name], timeout=timeout))


class Beat(CliProcess):
    """A real `inventory beat` (or `celery -A ... beat`) process (RedBeat)."""

    def __init__(
        self, env: dict[str, str], log_path: Path, workdir: Path, launcher: str = "inventory"
    ) -> None:
        super().__init__(env, log_path, launcher)
        self.workdir = workdir

    def start(self) -> Beat:
        schedule = str(self.workdir / f"beat-{time.monotonic_ns()}")
        option = "--schedule-file" if self.launcher == "inventory" else "--schedule"
        self.spawn("beat", "--loglevel", "DEBUG", option, schedule)
        return self

    def stop(self, timeout: float = 20) -> None:
        super().stop(timeout)


class EventConsumer(CliProcess):
    """A real `inventory events` consumer, ready once its heartbeat is in Redis."""

    def start(
        self, consumers: Callable[[], dict[str, float]], timeout: float = 30
    ) -> EventConsumer:
        self.spawn("events")
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"consumer exited {self.proc.returncode}:\n{self.log()}")
            if any(name.endswith(f":{self.pid}") for name in consumers()):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"consumer did not poll within {timeout}s:\n{self.log()}")
