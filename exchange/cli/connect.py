"""`exchange connect <department> FILE|DSN [--follow]`, `exchange deadletters`, `exchange synth`."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from connectors.deadletters import read_deadletters
from connectors.files import run_file
from connectors.positions import PositionStore
from connectors.progress import Reporter
from connectors.publisher import Publisher
from connectors.runner import Summary
from connectors.table import run_table
from exchange import admin
from exchange.cli.signals import stop_on_signals
from exchange.settings import ExchangeSettings
from monitoring.serve import start_metrics_server

_console = Console()
_log = logging.getLogger("exchange.connect")


def register(commands: Any) -> None:
    """Add the connector commands."""
    connect = commands.add_parser("connect", help="publish a department's export to Kafka")
    connect.add_argument("department", choices=["identity", "tax", "social", "property"])
    connect.add_argument("source", nargs="?", help="the export file; for property, the registry's DSN")
    connect.add_argument("--follow", action="store_true", help="keep tailing the file or polling the table")
    connect.set_defaults(run=_connect)

    dead = commands.add_parser("deadletters", help="list and count rejected records by reason")
    dead.add_argument("--department", choices=["identity", "tax", "social", "property"])
    dead.add_argument("--limit", type=_count, default=20, help="how many of the latest to list (0: none)")
    dead.set_defaults(run=_deadletters)

    synth = commands.add_parser("synth", help="write synthetic department exports and their expected facts")
    synth.add_argument("--people", type=int, required=True)
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--bad-rate", type=float, default=0.0)
    synth.add_argument("--reference-date", type=dt.date.fromisoformat, default=dt.date(2026, 11, 15))
    synth.set_defaults(run=_synth)


def _connect(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    start_metrics_server(settings.metrics_port)
    admin.ensure_topics(settings.kafka)
    stop = stop_on_signals()
    size = None if args.department == "property" or not args.source else _size(Path(args.source))
    reporter = Reporter(args.department, _console, size)
    publisher = Publisher(settings, client_id=f"connector-{args.department}")
    positions = PositionStore(settings.connectors.state_dir)
    common: dict[str, Any] = {
        "publisher": publisher,
        "positions": positions,
        "chunk_records": settings.connectors.chunk_records,
        "follow": args.follow,
        "follow_interval": settings.connectors.follow_interval_seconds,
        "stop": stop,
        "progress": reporter,
    }
    try:
        with reporter:
            if args.department == "property":
                dsn = args.source or settings.connectors.registry_dsn.get_secret_value()
                summary = run_table(dsn, settle_seconds=settings.connectors.registry_settle_seconds, **common)
            else:
                if not args.source:
                    raise SystemExit(f"exchange connect {args.department}: give the export file")
                workers = settings.connectors.preparing_workers
                summary = run_file(args.department, Path(args.source), workers=workers, **common)
    finally:
        publisher.close()
    _print_summary(args.department, summary, time.monotonic() - reporter.started)
    return 0


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None  # run_file says what is wrong with it


def _print_summary(department: str, summary: Summary, seconds: float) -> None:
    table = Table(title=f"{department}: {summary.read / max(seconds, 1e-9):,.0f} records/s")
    table.add_column("")
    table.add_column("records", justify="right")
    table.add_row("read", f"{summary.read:,}")
    table.add_row("published", f"{summary.published:,}")
    table.add_row("rejected", f"{summary.rejected_total:,}")
    for reason, count in sorted(summary.rejected.items()):
        table.add_row(f"  {reason}", f"{count:,}")
    _console.print(table)


def _count(text: str) -> int:
    """A count given on the command line: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _deadletters(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    letters = read_deadletters(settings, department=args.department)
    counts: dict[tuple[str, str], int] = {}
    for letter in letters:
        counts[(letter["department"], letter["reason"])] = (
            counts.get((letter["department"], letter["reason"]), 0) + 1
        )
    table = Table("department", "reason", "count", title=f"{len(letters):,} dead letters")
    for (department, reason), count in sorted(counts.items()):
        table.add_row(department, reason, f"{count:,}")
    _console.print(table)
    latest = Table("department", "source", "position", "field", "message", title="latest")
    for letter in letters[max(len(letters) - args.limit, 0) :] if args.limit else ():
        latest.add_row(
            letter["department"],
            letter["source"],
            letter["position"],
            letter["field"] or "",
            letter["message"],
        )
    if letters and args.limit:
        _console.print(latest)
    return 0


def _synth(settings: ExchangeSettings, args: argparse.Namespace) -> int:
    from connectors.synth import generate

    summary = generate(
        args.people, args.seed, args.out, bad_rate=args.bad_rate, reference_date=args.reference_date
    )
    _console.print(summary)
    return 0
