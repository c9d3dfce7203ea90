"""The ``inventory`` command: worker, beat, events, web, sync, accounts, tables, check, data out.

Every command takes ``--json``: machine-readable output, or JSON logs for the long-running ones.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from inventory.settings import ConfigError, Settings, load_settings

EXIT_CONFIG = 2
EXIT_FAILED = 1


def _settings(ctx: click.Context) -> Settings:
    """Settings loaded once per invocation; a bad config exits 2 with the message."""
    if ctx.obj is None:
        try:
            ctx.obj = load_settings(list(ctx.find_root().params.get("config") or ()) or None)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_CONFIG)
    return ctx.obj


def _app(settings: Settings) -> Any:
    """The Celery app; unsafe settings exit 2."""
    from inventory.celery_app import create_app

    try:
        return create_app(settings)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)


def _celery_service(settings: Settings) -> Any:
    """The app for a worker or beat: logs and Sentry come from Celery's signals.

    They are the same receivers ``celery -A inventory.celery_app`` connects, so both ways of
    starting a worker or beat end up configured alike.
    """
    from inventory import celery_signals

    app = _app(settings)
    app.set_current()  # this process runs this app: the receivers find it as current_app
    celery_signals.connect()
    return app


def with_settings(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    @click.pass_context
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        return fn(_settings(ctx), *args, **kwargs)

    return wrapper


def json_logs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on a long-running command: its logs are JSON lines (logging.format=json)."""
    return click.option(
        "--json", "json_logs", is_flag=True, help="Log JSON lines (as logging.format: json)."
    )(fn)


def _logging_as(settings: Settings, as_json: bool) -> Settings:
    if not as_json:
        return settings
    logging = settings.logging.model_copy(update={"format": "json"})
    return settings.model_copy(update={"logging": logging})


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="YAML settings file (repeatable; later wins). Default: $INVENTORY_CONFIG.",
)
@click.version_option(package_name="inventory")
def main(config: tuple[str, ...]) -> None:
    """Cache AWS inventory (IAM, S3, SQS, SNS, Config) in Redis, DynamoDB and S3."""


#: Celery's --no-color; it was this command's process count once, so it is refused.
CELERY_NO_COLOR = "-C"


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    epilog="Any other option is Celery's and goes to `celery worker` as given, e.g. "
    "--autoscale 8,2, --max-tasks-per-child 100, --prefetch-multiplier 1.",
)
@click.option("--queues", "-Q", default=None, help="Comma-separated queues (default: all).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 1024),
    default=None,
    help="Worker processes (default: celery.worker_concurrency), as in Celery.",
)
@click.option("--pool", "-P", default="prefork", show_default=True)
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option("--hostname", "-n", default=None, help="Worker node name.")
@click.argument("celery_options", nargs=-1, type=click.UNPROCESSED)
@json_logs
@with_settings
def worker(
    settings: Settings,
    queues: str | None,
    concurrency: int | None,
    pool: str,
    loglevel: str,
    hostname: str | None,
    celery_options: tuple[str, ...],
    json_logs: bool,
) -> None:
    """Run a Celery worker consuming the inventory queues."""
    from inventory.celery_app import QUEUES

    settings = _logging_as(settings, json_logs)

    extra = list(celery_options)
    if CELERY_NO_COLOR in extra:
        # Until 0.1 `-C n` was the process count here; in Celery it is --no-color.
        raise click.UsageError("-C is not an option of inventory worker: use -c/--concurrency")
    app = _celery_service(settings)
    argv = ["worker", f"--loglevel={loglevel}", f"--pool={pool}"]
    argv += ["--queues", queues or ",".join(QUEUES)]
    if not any(o == "--autoscale" or o.startswith("--autoscale=") for o in extra):
        # With --autoscale, Celery sizes the pool from its maximum instead.
        argv += ["--concurrency", str(concurrency or settings.celery.worker_concurrency)]
    if hostname:
        argv += ["--hostname", hostname]
    # Mingle asks the other workers for the tasks they revoked and waits a second for answers
    # before consuming. Nothing here revokes tasks (each is idempotent and has time limits), so
    # a worker starts that second sooner without it.
    argv += ["--without-mingle"]
    app.worker_main([*argv, *extra])


@main.command()
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option(
    "--schedule-file",
    default="celerybeat-schedule",
    show_default=True,
    help="Where beat keeps its last-run times.",
)
@json_logs
@with_settings
def beat(settings: Settings, loglevel: str, schedule_file: str, json_logs: bool) -> None:
    """Run Celery beat (RedBeat: one active scheduler, leader lock in Redis)."""
    app = _celery_service(_logging_as(settings, json_logs))
    app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule_file}"])


@main.command()
@click.option("--host", default=None, help="Listen address (default: web.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: web.port).")
@json_logs
@with_settings
def web(settings: Settings, host: str | None, port: int | None, json_logs: bool) -> None:
    """Serve the web tier: pages, the JSON API, health checks and /metrics."""
    import tornado.ioloop

    from inventory.observability import init_sentry, setup_logging
    from inventory.web.app import make_app, make_readers, server_options

    settings = _logging_as(settings, json_logs)
    setup_logging(settings)
    init_sentry(settings, "web")
    for note in settings.web.deprecations():
        logging.getLogger("inventory.web").warning("%s", note)
    readers = make_readers(settings)
    app = make_app(settings, readers)
    address, listen_port = host or settings.web.host, port or settings.web.port
    app.listen(listen_port, address, **server_options(settings.web))
    if readers.search is not None:
        from inventory.web.search import LOOK_SECONDS

        # Looking for the indexer's commits is a read of a small file: often, so a commit is
        # searchable at once.
        every = min(settings.web.search_sync_seconds, LOOK_SECONDS)
        tornado.ioloop.PeriodicCallback(readers.search.sync_safely, every * 1000).start()
    if settings.health.heartbeat_path:
        from inventory.liveness import touch

        heartbeat_file = settings.health.heartbeat_path
        touch(heartbeat_file)
        # On the IOLoop: a stalled loop stops touching and the health check fails.
        tornado.ioloop.PeriodicCallback(
            lambda: touch(heartbeat_file), settings.health.interval_seconds * 1000
        ).start()
    click.echo(f"web tier listening on http://{address}:{listen_port}", err=True)
    tornado.ioloop.IOLoop.current().start()


@main.command()
@click.option(
    "--accounts",
    "-n",
    "member_accounts",
    type=int,
    default=5,
    show_default=True,
    help="Member accounts in the demo organisation.",
)
@click.option(
    "--state-dir",
    default="state/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo keeps its data and logs.",
)
@click.option("--reset", is_flag=True, help="Clear the state directory first.")
@click.option("--port", type=int, default=8080, show_default=True, help="Web tier port.")
@json_logs
def demo(member_accounts: int, state_dir: str, reset: bool, port: int, json_logs: bool) -> None:
    """Run everything locally: Redis, a seeded moto AWS, worker, beat and web. Ctrl-C stops all."""
    from inventory.demo.runner import run_demo

    log_format = "json" if json_logs else "text"
    sys.exit(run_demo(member_accounts, state_dir, reset, port, log_format=log_format))


@main.command()
@click.option("--host", default=None, help="Listen address (default: metrics.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: metrics.port).")
@json_logs
@with_settings
def metrics(settings: Settings, host: str | None, port: int | None, json_logs: bool) -> None:
    """Serve the Prometheus exporter (reads Redis on every scrape). SIGTERM or Ctrl-C stops it."""
    import signal

    from inventory.exporter import build_collector, serve_metrics
    from inventory.observability import init_sentry, setup_logging
    from inventory.runtime import Runtime

    settings = _logging_as(settings, json_logs)

    setup_logging(settings)
    init_sentry(settings, "metrics")
    collector = build_collector(Runtime(settings), settings)
    address = host or settings.metrics.host
    server = serve_metrics(address, settings.metrics.port if port is None else port, collector)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    click.echo(f"metrics exporter listening on http://{address}:{server.port}/metrics", err=True)
    try:
        server.wait(settings.health.heartbeat_path, settings.health.interval_seconds)
    except KeyboardInterrupt:
        server.stop()


@main.command()
@json_logs
@with_settings
def events(settings: Settings, json_logs: bool) -> None:
    """Long-poll the change-event queue and send refreshes as events arrive (SIGTERM stops).

    While it runs, the drain_change_events beat entry skips; stopped, the drain takes over.
    """
    import os
    import signal
    import socket

    from inventory.observability import init_sentry, setup_logging
    from inventory.runtime import Runtime
    from inventory.tasks.events_consumer import Consumer

    settings = _logging_as(settings, json_logs)
    runtime = Runtime(settings)
    queue = runtime.event_queue()
    if queue is None:
        click.echo("error: events.enabled is false (INVENTORY_EVENTS__ENABLED)", err=True)
        sys.exit(EXIT_CONFIG)
    setup_logging(settings)
    init_sentry(settings, "events")
    name = f"{socket.gethostname()}:{os.getpid()}"
    consumer = Consumer(runtime, _app(settings).send_task, name, settings.health.heartbeat_path)
    signal.signal(signal.SIGTERM, consumer.stop)
    signal.signal(signal.SIGINT, consumer.stop)
    click.echo(f"events consumer {name} polling {settings.events.queue_url}", err=True)
    totals = consumer.run(queue)
    click.echo(json.dumps({"consumer": name, **totals}))


def _summary(
    sync_one: Callable[[str], dict[str, Any]], account_id: str, done: Callable[[], None]
) -> dict[str, Any]:
    """One account's sync summary, or its error (the exit code reports it)."""
    try:
        return sync_one(account_id)
    except Exception as exc:  # noqa: BLE001 - reported per account, exit code says it
        return {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        done()


def _sync_table(summaries: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table("account", "kind", "listed", "created", "updated", "removed", "error")
    for account_id, s in summaries.items():
        if "error" in s:
            table.add_row(account_id, "-", "", "", "", "", s["error"])
            continue
        for k, p in s["partitions"].items():
            counts = (str(p[f]) for f in ("listed", "created", "updated", "removed"))
            table.add_row(account_id, k, *counts, "")
    return table


def _sync_choices() -> list[str]:
    from inventory.registry import SYNCS

    return [*(s.name for s in SYNCS), "accounts"]


@main.command()
@click.argument("kind", type=click.Choice(_sync_choices()))
@click.option("--account", "-a", "account_ids", multiple=True, help="Account id (default: all).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@with_settings
def sync(settings: Settings, kind: str, account_ids: tuple[str, ...], as_json: bool) -> None:
    """Run one sync (a name from the registry, or accounts) in this process, per account."""
    from rich.console import Console
    from rich.progress import Progress

    from inventory.registry import BY_NAME
    from inventory.runtime import Runtime
    from inventory.tasks.accounts import active_accounts, store_account_mapping
    from inventory.tasks.resources import sync_kind

    def sync_one(account_id: str) -> dict[str, Any]:
        return sync_kind(runtime, BY_NAME[kind], account_id)

    runtime = Runtime(settings)
    console = Console(stderr=as_json)
    if kind == "accounts":
        summary = store_account_mapping(runtime)
        click.echo(json.dumps(summary, indent=2) if as_json else _kv(summary))
        return
    accounts = list(account_ids) or [a["id"] for a in active_accounts(runtime)]
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(kind, total=len(accounts))
        summaries = {a: _summary(sync_one, a, lambda: progress.advance(bar)) for a in accounts}
    failures = sum("error" in s for s in summaries.values())
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
    else:
        console.print(_sync_table(summaries))
    if failures:
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@with_settings
def check(settings: Settings, as_json: bool) -> None:
    """Validate the config, then reach Redis, the broker, DynamoDB and AWS; 1 if any fails."""
    from inventory.celery_app import create_app
    from inventory.observability import RedactingFilter, secret_values
    from inventory.runtime import Runtime

    redactor = RedactingFilter(secret_values(settings))
    try:
        create_app(settings)  # refuses unsafe Celery timing, as `worker` and `beat` do
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_CONFIG)
    runtime = Runtime(settings)
    results: list[tuple[str, bool, str]] = [("configuration", True, "valid")]
    for note in settings.web.deprecations():
        click.echo(f"warning: {note}", err=True)

    def probe(name: str, fn: Callable[[], str]) -> None:
        try:
            results.append((name, True, fn()))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            # A client's error may quote the URL it was given, password and all.
            detail = redactor.redact(f"{type(exc).__name__}: {text}")
            results.append((name, False, detail[:200]))

    def cache() -> str:
        runtime.redis.ping()
        return f"{len(runtime.redis_cache.partitions())} partitions cached"

    def broker() -> str:
        from inventory.celery_app import create_app

        app = create_app(settings)
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
        return "reachable"

    def dynamodb() -> str:
        missing = runtime.missing_tables()
        if missing:
            raise RuntimeError(f"missing tables: {', '.join(missing)} (inventory tables create)")
        return "tables present"

    def aws() -> str:
        sts = runtime.aws.hub_client("sts", settings.deployment_region)
        return f"hub identity {sts.get_caller_identity()['Arn']}"

    probe("redis cache", cache)
    probe("celery broker", broker)
    probe("dynamodb", dynamodb)
    probe("aws", aws)
    _print_checks(results, as_json)
    if not all(ok for _, ok, _ in results):
        sys.exit(EXIT_FAILED)


def _print_checks(results: list[tuple[str, bool, str]], as_json: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    if as_json:
        rows = [{"check": n, "ok": ok, "detail": d} for n, ok, d in results]
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table("check", "ok", "detail")
    for name, ok, detail in results:
        table.add_row(name, "yes" if ok else "NO", detail)
    Console().print(table)


def _kv(summary: dict[str, Any]) -> str:
    return "\n".join(f"{k}: {v}" for k, v in summary.items())


@main.command()
@click.option("--json", "as_json", is_flag=True)
@with_settings
def accounts(settings: Settings, as_json: bool) -> None:
    """List the cached account mapping (building it if it was never cached)."""
    from rich.console import Console
    from rich.table import Table

    from inventory.runtime import Runtime
    from inventory.tasks.accounts import account_mapping

    mapping = account_mapping(Runtime(settings))
    if as_json:
        click.echo(json.dumps(mapping, indent=2))
        return
    table = Table("id", "name", "status", "email", "source")
    for a in mapping:
        table.add_row(a["id"], a["name"], a["status"], a.get("email") or "", a["source"])
    Console().print(table)


@main.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="JSON Lines (one record a line) or CSV (nested values as JSON).",
)
@click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable).")
@click.option("--account", "-a", "accounts_", multiple=True, help="Only this account.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), default="-", help="File (default: stdout)."
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@with_settings
def export(
    settings: Settings,
    fmt: str,
    kinds: tuple[str, ...],
    accounts_: tuple[str, ...],
    output: str,
    as_json: bool,
) -> None:
    """Write every cached record (of these kinds and accounts) as JSON Lines or CSV."""
    from inventory.export import records, selected, write_csv, write_jsonl
    from inventory.runtime import Runtime

    cache = Runtime(settings).redis_cache
    partitions = selected(cache, kinds, accounts_)
    with click.open_file(output, "w", encoding="utf-8") as out:
        if fmt == "csv" and not as_json:
            count = write_csv(lambda: records(cache, partitions), out)
        else:
            count = write_jsonl(records(cache, partitions), out)
    click.echo(f"{count} records from {len(partitions)} partitions", err=True)


@main.command()
@click.argument("arn")
@click.option("--json", "as_json", is_flag=True, help="The record as JSON.")
@with_settings
def get(settings: Settings, arn: str, as_json: bool) -> None:
    """Print one cached resource by ARN; exit 1 when it is not cached."""
    from inventory.runtime import Runtime

    record = Runtime(settings).redis_cache.get(arn)
    if record is None:
        click.echo(f"not cached: {arn}", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        click.echo(json.dumps(record, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("field", "value", show_header=False)
    for key, value in sorted(record.items()):
        shown = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else value
        table.add_row(key, "" if shown is None else str(shown))
    Console().print(table)


@main.command()
@click.argument("text")
@click.option("--kind", "kinds", multiple=True, help="Only this kind (repeatable).")
@click.option("--account", "-a", "accounts_", multiple=True, help="Only this account.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="The matches as JSON.")
@with_settings
def search(
    settings: Settings,
    text: str,
    kinds: tuple[str, ...],
    accounts_: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Find cached resources whose ARN contains TEXT (any case); exit 1 when none does."""
    from inventory.export import search as find
    from inventory.runtime import Runtime

    if not text.strip():
        raise click.BadParameter("give some text to look for", param_hint="TEXT")
    matches = find(Runtime(settings).redis_cache, text, kinds, accounts_, limit)
    if as_json:
        click.echo(json.dumps(matches, indent=2))
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table("kind", "account", "region", "name", "arn")
        for m in matches:
            table.add_row(m["kind"], m["account_id"], m["region"], m["name"] or "", m["arn"])
        Console().print(table)
    if not matches:
        sys.exit(EXIT_FAILED)


@main.group()
def tables() -> None:
    """DynamoDB tables."""


@tables.command("create")
@click.option("--json", "as_json", is_flag=True, help="Print the tables created as JSON.")
@with_settings
def tables_create(settings: Settings, as_json: bool) -> None:
    """Create the DynamoDB tables that are missing."""
    from inventory.runtime import Runtime

    created = Runtime(settings).create_tables()
    if as_json:
        click.echo(json.dumps({"created": created}))
        return
    click.echo("created: " + ", ".join(created) if created else "all tables exist")


@tables.command("migrate")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@with_settings
def tables_migrate(settings: Settings, as_json: bool) -> None:
    """Move DynamoDB items written under old keys to their partition's key (once; resumable)."""
    from inventory.cache.key_migration import SCHEMA_VERSION
    from inventory.runtime import Runtime

    if as_json:
        done = Runtime(settings).ensure_schema() if settings.is_active_region else None
        click.echo(json.dumps({
            "schema": SCHEMA_VERSION,
            "active_region": settings.is_active_region,
            "migrated": done is not None,
            "scanned": done.scanned if done else 0,
            "moved": done.moved if done else 0,
            "superseded": done.superseded if done else 0,
            "partitions_repaired": len(done.partitions) if done else 0,
        }))  # fmt: skip
        return
    if not settings.is_active_region:
        click.echo(f"{settings.deployment_region} is a secondary region: the active region "
                   f"({settings.active_region}) migrates the global tables")  # fmt: skip
        return
    done = Runtime(settings).ensure_schema()
    if done is None:
        click.echo(f"the tables are at schema {SCHEMA_VERSION}: nothing to move")
        return
    click.echo(
        f"schema {SCHEMA_VERSION}: {done.scanned} items scanned, {done.moved} moved, "
        f"{done.superseded} superseded, {len(done.partitions)} partitions repaired from Redis"
    )


def durable_kinds() -> set[str]:
    """Every kind with a durable copy (DynamoDB, S3)."""
    from inventory.registry import KINDS

    return {k.kind for k in KINDS if k.durable}


@main.command()
@click.option("--kind", "kinds", multiple=True, help="Only these kinds (repeatable).")
@click.option("--account", "-a", "accounts_", multiple=True, help="Only these accounts.")
@click.option("--repair", is_flag=True, help="Write what DynamoDB and S3 lack from Redis.")
@click.option("--json", "as_json", is_flag=True)
@with_settings
def verify(
    settings: Settings,
    kinds: tuple[str, ...],
    accounts_: tuple[str, ...],
    repair: bool,
    as_json: bool,
) -> None:
    """Compare every partition in Redis with DynamoDB (and S3); exit 1 on any difference."""
    import time

    from inventory.runtime import Runtime

    runtime = Runtime(settings)
    repairing = repair and settings.is_active_region
    wanted = set(kinds) or durable_kinds()
    checked, differences = runtime.verifier.report(wanted, set(accounts_), repairing, time.time())
    unresolved = sum(not d["resolved"] for d in differences)
    if as_json:
        click.echo(json.dumps({"checked": checked, "differences": differences}, indent=2))
    else:
        for d in differences:
            for c in d["copies"]:
                for what in ("missing", "extra", "changed"):
                    click.echo("".join(f"{d['partition']}\t{c['copy']}\t{what}\t{a}\n"
                                       for a in c[what]), nl=False)  # fmt: skip
        click.echo(
            f"{checked} partitions checked, {len(differences)} differ, {unresolved} unresolved",
            err=True,
        )
    if unresolved:
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("-o", "--output", default="docs/aws-permissions.md", show_default=True)
@click.option("--check", is_flag=True, help="Exit 1 when the file's block is out of date.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def permissions(output: str, check: bool, as_json: bool) -> None:
    """Write the spoke role's policy (from the registry) into the permissions document."""
    from pathlib import Path

    from inventory.permissions import render, update

    path = Path(output)
    if check:
        current = render(path.read_text()) == path.read_text()
        if as_json:
            click.echo(json.dumps({"file": output, "current": current}))
        elif not current:
            click.echo(f"{output} is out of date: run inventory permissions -o {output}", err=True)
        if not current:
            sys.exit(EXIT_FAILED)
        return
    updated = update(path)
    if as_json:
        click.echo(json.dumps({"file": output, "updated": updated}))
        return
    click.echo(f"{output}: {'updated' if updated else 'already current'}")


@main.group()
def schedule() -> None:
    """The beat schedule."""


@schedule.command("docs")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write to this file instead of standard output.",
)
@click.option("--check", is_flag=True, help="Exit 1 when the file differs from the rendering.")
@click.option("--json", "as_json", is_flag=True, help="The entries as JSON instead of Markdown.")
@with_settings
def schedule_docs(settings: Settings, output: str | None, check: bool, as_json: bool) -> None:
    """Render every beat entry as a Markdown table (docs/schedule.md)."""
    if as_json:
        _echo_schedule_json(settings)
        return
    from inventory.schedule import UnregisteredTask, render_schedule_docs

    app = _app(settings)  # renders a table: no logging or Sentry set-up in this process
    try:
        text = render_schedule_docs(app, settings)
    except UnregisteredTask as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    if output is None:
        click.echo(text, nl=False)
        return
    from pathlib import Path

    path = Path(output)
    if check:
        if not path.exists() or path.read_text() != text:
            click.echo(
                f"{output} is out of date: run inventory schedule docs -o {output}", err=True
            )
            sys.exit(EXIT_FAILED)
        return
    path.write_text(text)


def _echo_schedule_json(settings: Settings) -> None:
    import dataclasses

    from inventory.schedule import effective_schedule

    tasks = _app(settings).tasks
    entries = [
        dataclasses.asdict(e) | {"queue": tasks[e.task].routing_queue}
        for e in effective_schedule(settings)
    ]
    click.echo(json.dumps(entries, indent=2, default=str))


@schedule.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print the entries as JSON.")
@with_settings
def schedule_show(settings: Settings, as_json: bool) -> None:
    """Print the effective schedule (after settings overrides)."""
    from inventory.schedule import effective_schedule

    if as_json:
        _echo_schedule_json(settings)
        return
    tasks = _app(settings).tasks
    for e in effective_schedule(settings):
        state = "enabled " if e.enabled else "disabled"
        click.echo(f"{state}  every {e.every:>8.0f}s  {tasks[e.task].routing_queue:<12} {e.name}")


@main.command()
@click.option("--max-age", type=float, default=None, help="Seconds; health.max_age_seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@with_settings
def health(settings: Settings, max_age: float | None, as_json: bool) -> None:
    """Exit 0 if this container's process touched its heartbeat file recently, else 1.

    The container health check (Dockerfile, compose, Kubernetes exec probes): it asks no
    broker, so it works for every broker, SQS included.
    """
    from inventory.liveness import age

    path = settings.health.heartbeat_path
    if path is None:
        click.echo(
            "error: health.heartbeat_path is not set (INVENTORY_HEALTH__HEARTBEAT_PATH)", err=True
        )
        sys.exit(EXIT_CONFIG)
    limit = settings.health.max_age_seconds if max_age is None else max_age
    seconds = age(path)
    ok = seconds is not None and seconds <= limit
    if as_json:
        click.echo(json.dumps({"ok": ok, "file": path, "age_seconds": seconds, "max_age": limit}))
    elif seconds is None:
        click.echo(f"unhealthy: no heartbeat at {path}", err=True)
    else:
        state = "healthy" if ok else "unhealthy"
        click.echo(f"{state}: heartbeat {seconds:.0f}s old (limit {limit:g}s)", err=not ok)
    if not ok:
        sys.exit(EXIT_FAILED)


@main.command()
@click.option("--reference", is_flag=True, help="Print the Markdown reference of every setting.")
@click.option("--json", "as_json", is_flag=True, help="JSON (the default output already is).")
@click.pass_context
def config(ctx: click.Context, reference: bool, as_json: bool) -> None:
    """Validate the configuration and print it as JSON (secrets masked)."""
    if reference:
        from inventory.settings import reference_markdown

        click.echo(reference_markdown(), nl=False)
        return
    from inventory.redaction import mask_urls_in

    settings = _settings(ctx)
    # SecretStr fields dump as ********; URLs carry their password in plain text otherwise.
    click.echo(json.dumps(mask_urls_in(settings.model_dump(mode="json")), indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
