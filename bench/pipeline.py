"""`exchange bench pipeline`: the whole pipeline on synthetic exports, each figure against a baseline
measured in the same run, on the same broker and PostgreSQL.

1. End to end: records/s from the exports (`exchange synth`, 1% bad rows) published by the connectors
   in this process to rows in PostgreSQL, with `exchange process` and `exchange sink` running as
   subprocesses; against the connectors alone publishing the same exports with nothing downstream.
2. Freshness (published_at → the sink's transaction) p50 and p99 of fresh tax vouchers published at
   half the end-to-end rate; against the same vouchers published at a trickle.
3. The processor's fold rate over the backlog, started once it is all on the topics; against a bare
   aiokafka consume → `exchange.profile.apply` → produce loop over the same topics.
4. The sink's rows/s over everything on the topics, run again into emptied tables; against a raw COPY
   of the very same rows, 5000 per transaction.
5. Where the time goes: `BatchFolder.fold` under cProfile, the processor's fold share from its
   /metrics, the sink's time in PostgreSQL transactions and its decode cost per row.

Everything lives under a topic prefix and a database of its own, both removed at the end.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from psycopg import sql
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from bench.pipeline_fold import bare_loop, hot_spots, profile_fold
from bench.pipeline_publish import fresh_vouchers, load_registry, publish_exports, publish_paced
from bench.pipeline_sink import empty_sink_tables, raw_copy, read_rows, run_sink
from bench.pipeline_watch import (
    POLL_SECONDS,
    Freshness,
    Watch,
    await_groups,
    free_port,
    freshness,
    processor_group,
    scrape,
)
from consumers.sink.consumer import sink_group
from exchange import admin, database
from exchange.settings import ExchangeSettings, as_environment
from exchange.supervisor import Supervisor

_console = Console()
SEED = 20260415
HALF_LOAD_SECONDS = 15.0
TRICKLE_PER_SECOND = 40.0
TRICKLE_SECONDS = 6.0
_EVENTS = "exchange_processor_events_total"
_FOLD_SECONDS = "exchange_processor_fold_seconds_sum"


@dataclass(frozen=True)
class Figure:
    """One line of the summary: a figure, its baseline from the same run, and the goal it is held to."""

    name: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    goal: str
    met: bool | None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def run(settings: ExchangeSettings, people: int, seed: int = SEED) -> list[Figure]:
    """Run the benchmark on exports for `people` people; print and return the figures."""
    run_id = uuid.uuid4().hex[:10]
    home = Path(tempfile.mkdtemp(prefix="exchange-bench-pipeline-"))
    bench = _bench_settings(settings, run_id, home)
    _create_database(bench)
    try:
        admin.ensure_topics(bench.kafka)
        database.migrate(bench.postgres)
        with _console.status(f"generating the exports for {people:,} people…"):
            from connectors.synth import generate

            generate(people, seed, home / "exports", bad_rate=0.01)
        figures = _measure(bench, home)
    finally:
        with _console.status("removing the benchmark's topics, groups and database…"):
            _remove(bench)
            shutil.rmtree(home, ignore_errors=True)
    _print_summary(figures, people)
    return figures


def _bench_settings(settings: ExchangeSettings, run_id: str, home: Path) -> ExchangeSettings:
    postgres = settings.postgres.model_copy(update={"database": f"bench_{run_id}"})
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topic_prefix": f"bench-pipeline-{run_id}."}),
            "postgres": postgres,
            # The registry table lives in the benchmark's database too, so it goes with it.
            "connectors": settings.connectors.model_copy(
                update={"state_dir": home / "connectors", "registry_dsn": SecretStr(postgres.conninfo())}
            ),
            "processor": settings.processor.model_copy(
                update={"datadir": home / "processor", "web_port": free_port()}
            ),
            "metrics_port": 0,
        }
    )


def _with(settings: ExchangeSettings, *, prefix: str | None = None, **processor: object) -> ExchangeSettings:
    update: dict[str, object] = {"processor": settings.processor.model_copy(update=processor)}
    if prefix is not None:
        update["kafka"] = settings.kafka.model_copy(update={"topic_prefix": prefix})
    return settings.model_copy(update=update)


def _measure(bench: ExchangeSettings, home: Path) -> list[Figure]:
    exports = home / "exports"
    registry = bench.connectors.registry_dsn.get_secret_value()
    alone = _connectors_alone(bench, home, exports, registry)
    supervisor = Supervisor({**os.environ, **as_environment(bench)}, home / "logs")
    try:
        supervisor.start("processor", "process")
        supervisor.start("sink", "sink")
        end_to_end = _end_to_end(bench, supervisor, home, exports, registry)
        trickle, half = _freshness(bench, supervisor, exports, end_to_end)
    finally:
        with _console.status("stopping the processor and the sink…"):
            supervisor.stop_all()
    sink, raw = _sink(bench)
    processor, bare = _fold(bench, home)
    _profile(bench)
    return [
        Figure(
            "end to end",
            end_to_end,
            "connectors alone",
            alone,
            "records/s",
            "≥ 20,000 records/s",
            end_to_end >= 20_000,
        ),
        Figure(
            "freshness p50, half load",
            half.p50_seconds * 1000,
            "at a trickle",
            trickle.p50_seconds * 1000,
            "ms",
            "",
            None,
        ),
        Figure(
            "freshness p99, half load",
            half.p99_seconds * 1000,
            "at a trickle",
            trickle.p99_seconds * 1000,
            "ms",
            "≤ 500 ms",
            half.p99_seconds <= 0.5,
        ),
        Figure(
            "processor fold",
            processor,
            "bare aiokafka loop",
            bare,
            "events/s",
            "ratio ≥ 0.6",
            processor >= 0.6 * bare,
        ),
        Figure("sink", sink, "raw COPY, 5000/transaction", raw, "rows/s", "ratio ≥ 0.7", sink >= 0.7 * raw),
    ]


def _connectors_alone(bench: ExchangeSettings, home: Path, exports: Path, registry: str) -> float:
    """The same exports through the same connectors to topics of their own, nothing downstream."""
    base = _with(bench, prefix=f"{bench.kafka.topic_prefix}baseline.")
    admin.ensure_topics(base.kafka)
    load_registry(registry, exports / "property.sql", fresh=True)
    with _console.status("baseline: the connectors alone…"):
        started = time.perf_counter()
        published = publish_exports(base, exports, home / "baseline-connectors", registry)
        seconds = time.perf_counter() - started
    _console.print(
        f"connectors alone: {published:,} records in {seconds:.1f} s = {published / seconds:,.0f}/s"
    )
    return published / seconds


def _end_to_end(
    bench: ExchangeSettings, supervisor: Supervisor, home: Path, exports: Path, registry: str
) -> float:
    """From the first record published until every record and profile is in PostgreSQL."""
    load_registry(registry, exports / "property.sql", fresh=True)
    with _console.status("waiting for the processor and the sink to join their groups…"):
        await_groups(bench, [processor_group(bench), sink_group(bench.kafka)], supervisor)
    watch = Watch(bench, processor_group(bench))
    try:
        started = time.perf_counter()
        with _console.status("end to end: publishing the exports…"):
            published = publish_exports(bench, exports, home / "connectors", registry)
        publishing = time.perf_counter() - started
        done = watch.wait_complete(supervisor, "end to end: draining") - started
        records = watch.read().published
    finally:
        watch.close()
    _console.print(
        f"end to end: {records:,} records ({published:,} published by the connectors in {publishing:.1f} s) "
        f"in PostgreSQL after {done:.1f} s = {records / done:,.0f} records/s"
    )
    return records / done


def _freshness(
    bench: ExchangeSettings, supervisor: Supervisor, exports: Path, end_to_end: float
) -> tuple[Freshness, Freshness]:
    """Fresh vouchers at a trickle, then at half the end-to-end rate, each window read separately."""
    trickle_count = int(TRICKLE_PER_SECOND * TRICKLE_SECONDS)
    half_count = max(int(end_to_end / 2 * HALF_LOAD_SECONDS), 1)
    vouchers = fresh_vouchers(exports / "tax.csv", trickle_count + half_count, first=0)
    watch = Watch(bench, processor_group(bench))
    results = []
    try:
        for label, batch, rate in (
            ("trickle", vouchers[:trickle_count], TRICKLE_PER_SECOND),
            ("half load", vouchers[trickle_count:], end_to_end / 2),
        ):
            since = dt.datetime.now(dt.UTC)
            with _console.status(f"freshness: {len(batch):,} vouchers at {rate:,.0f}/s ({label})…"):
                paced = publish_paced(bench, batch, rate)
            watch.wait_complete(supervisor, f"freshness ({label}): draining")
            fresh = freshness(bench.postgres, since, dt.datetime.now(dt.UTC))
            results.append(fresh)
            _console.print(
                f"freshness, {label}: {paced.records:,} vouchers at {paced.per_second:,.0f}/s (asked "
                f"{rate:,.0f}/s); {fresh.rows:,} rows: p50 {fresh.p50_seconds * 1000:,.0f} ms, "
                f"p99 {fresh.p99_seconds * 1000:,.0f} ms, max {fresh.max_seconds * 1000:,.0f} ms"
            )
    finally:
        watch.close()
    return results[0], results[1]


def _sink(bench: ExchangeSettings) -> tuple[float, float]:
    """The sink over everything on the topics into emptied tables, then a raw COPY of the same rows."""
    empty_sink_tables(bench.postgres)
    with _console.status("sink: everything on the topics, until idle…"):
        sunk = run_sink(bench)
    with _console.status("raw COPY: reading and mapping the same rows…"):
        rows = read_rows(bench)
    with _console.status(f"raw COPY: {rows.total:,} rows…"):
        raw_seconds = raw_copy(bench.postgres, rows)
    records = rows.total - len(rows.profiles)
    _console.print(
        f"sink: {sunk.total_rows:,} rows in {sunk.batches} batches, {sunk.wall_seconds:.1f} s in all; "
        f"{sunk.rows:,} rows from its first to its last commit in {sunk.seconds:.1f} s = "
        f"{sunk.per_second:,.0f} rows/s, {sunk.transaction_seconds / sunk.seconds:.0%} of it in PostgreSQL "
        f"transactions, the rest polling Kafka, decoding and mapping\n"
        f"raw COPY: {rows.total:,} rows ({records:,} records, {len(rows.profiles):,} profiles) in "
        f"{raw_seconds:.1f} s = {rows.total / raw_seconds:,.0f} rows/s; decoding + mapping them costs "
        f"{rows.record_seconds / max(records, 1) * 1e6:,.0f} µs a record row, "
        f"{rows.profile_seconds / max(len(rows.profiles), 1) * 1e6:,.0f} µs a profile row"
    )
    if rows.total != sunk.total_rows:
        _console.print(f"[yellow]the sink wrote {sunk.total_rows:,} rows, the topics hold {rows.total:,}[/]")
    return sunk.per_second, rows.total / raw_seconds


def _fold(bench: ExchangeSettings, home: Path) -> tuple[float, float]:
    """The bare loop over the backlog, then a processor of its own (new group, state and changelog)."""
    scratch = f"{bench.kafka.topic_prefix}bench.bare-loop.profiles"
    _create_topic(bench, scratch)
    with _console.status("fold: the bare aiokafka loop…"):
        bare = bare_loop(bench, scratch)
    _console.print(
        f"bare aiokafka loop: {bare.events:,} events, {bare.profiles:,} profiles in {bare.seconds:.1f} s "
        f"= {bare.per_second:,.0f} events/s"
    )
    folder = _with(
        bench, app_id=f"{bench.processor.app_id}-fold", datadir=home / "fold", web_port=free_port()
    )
    return _processor_fold(folder, home), bare.per_second


def _processor_fold(folder: ExchangeSettings, home: Path) -> float:
    """Events/s from the processor's first folded batch until its commits reach the end offsets."""
    supervisor = Supervisor({**os.environ, **as_environment(folder)}, home / "logs")
    watch = Watch(folder, processor_group(folder))
    port = folder.processor.web_port
    first: tuple[float, float] | None = None
    try:
        spawned = time.perf_counter()
        supervisor.start("processor-fold", "process")
        deadline = time.monotonic() + 300
        with _console.status("fold: the processor over the backlog…"):
            while True:
                supervisor.check()
                if first is None and (events := scrape(port).get(_EVENTS, 0.0)) > 0:
                    first = (time.perf_counter(), events)
                reading = watch.read()
                if first is not None and reading.folded_all:
                    done = time.perf_counter()
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the processor has not folded the backlog after 300 s: {reading}")
                time.sleep(POLL_SECONDS)
        fold_seconds = scrape(port).get(_FOLD_SECONDS, 0.0)
    finally:
        watch.close()
        supervisor.stop_all()
    rate = (reading.published - first[1]) / (done - first[0])
    _console.print(
        f"processor: {reading.published:,} events; first batch folded {first[0] - spawned:.1f} s after it "
        f"was started, all committed {done - first[0]:.1f} s later = {rate:,.0f} events/s; "
        f"BatchFolder.fold took {fold_seconds:.1f} s of it ({fold_seconds / (done - first[0]):.0%}), the "
        "rest is faust: consuming, the table and its changelog, producing, committing"
    )
    return rate


def _profile(bench: ExchangeSettings) -> None:
    with _console.status("profile: BatchFolder.fold under cProfile…"):
        events, stats = profile_fold(bench)
    total = stats.total_tt  # type: ignore[attr-defined]
    for title, by_own in (("cumulative", False), ("own", True)):
        table = Table(
            "function",
            "calls",
            "own s",
            "cumulative s",
            f"{title} % of fold",
            title=f"BatchFolder.fold under cProfile: {events:,} events, {total:.1f} s (top by {title} time)",
        )
        for spot in hot_spots(stats, 12 if not by_own else 10, by_own=by_own):
            share = (spot.own_seconds if by_own else spot.cumulative_seconds) / total
            table.add_row(
                spot.function,
                f"{spot.calls:,}",
                f"{spot.own_seconds:.2f}",
                f"{spot.cumulative_seconds:.2f}",
                f"{share:.0%}",
            )
        _console.print(table)


def _print_summary(figures: list[Figure], people: int) -> None:
    table = Table(
        "figure",
        "value",
        "baseline (same run)",
        "baseline value",
        "ratio",
        "goal",
        "met",
        title=f"exchange bench pipeline --people {people:,}",
    )
    for figure in figures:
        met = "—" if figure.met is None else ("[green]yes[/]" if figure.met else "[red]no[/]")
        table.add_row(
            figure.name,
            f"{figure.value:,.0f} {figure.unit}",
            figure.baseline_name,
            f"{figure.baseline:,.0f} {figure.unit}",
            f"{figure.ratio:.2f}",
            figure.goal or "—",
            met,
        )
    _console.print(table)


def _create_database(bench: ExchangeSettings) -> None:
    with psycopg.connect(bench.postgres.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(bench.postgres.database)))


def _create_topic(bench: ExchangeSettings, name: str) -> None:
    client = KafkaAdminClient(bootstrap_servers=bench.kafka.bootstrap_servers)
    try:
        client.create_topics([NewTopic(name, bench.kafka.subject_partitions, bench.kafka.replication_factor)])
    finally:
        client.close()


def _remove(bench: ExchangeSettings) -> None:
    """The benchmark's topics, consumer groups and database: everything under its prefix and name."""
    prefix = bench.kafka.topic_prefix
    try:
        client = KafkaAdminClient(bootstrap_servers=bench.kafka.bootstrap_servers, request_timeout_ms=30000)
        try:
            topics = [name for name in client.list_topics() if name.startswith(prefix)]
            if topics:
                client.delete_topics(topics)
            groups = [
                group["group_id"] for group in client.list_groups() if group["group_id"].startswith(prefix)
            ]
            if groups:
                client.delete_groups(groups)
        finally:
            client.close()
    finally:
        with psycopg.connect(bench.postgres.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(bench.postgres.database)
                )
            )
