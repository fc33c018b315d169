"""`exchange bench pipeline`: the whole pipeline on synthetic exports, each figure against a baseline
measured in the same run, on the same broker and PostgreSQL.

1. End to end: records/s from the exports (`exchange synth`, 1% bad rows) published by the connectors
   in this process to rows in PostgreSQL, with `exchange process` and `exchange sink` running as
   subprocesses; against the connectors alone, nothing downstream, on a sample of the same exports.
2. Freshness p50 and p99 of fresh tax vouchers published at half the end-to-end rate, against the same
   kind of vouchers published at a trickle: of the record rows (published_at → the sink's transaction,
   the sink alone on the path) and of the profiles verifications read (a voucher's published_at → the
   sink's transaction writing the profile that folds it: processor and sink). The goal is held to the
   profiles' p99, and only when the paced publisher reached the half load it was asked for.
   `--processors K` runs K processor workers in one group for these two (scale-out), one by default.
3. The processor's fold rate over the backlog, started once it is all on the topics; against a bare
   aiokafka consume → `exchange.profile.apply` → produce loop over the same topics.
4. The sink's rows/s over everything on the topics, run again into emptied tables; against a raw COPY
   of the very same rows, 5000 per transaction.
5. Where the time goes: the CPU each process used, `BatchFolder.fold` under cProfile, the processor's
   fold share from its /metrics, the sink's share in PostgreSQL transactions and its decode cost per row.

The processor's and the sink's runs over the backlog stop measuring after `RERUN_LIMIT_SECONDS` (the
rate is over what they did by then, and the line says so), so that a slow pipeline cannot make the
benchmark run for long. Everything lives under a topic prefix and a database of its own, both removed
at the end.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from rich.console import Console
from rich.table import Table

from bench.cpu_usage import CpuClock, Usage, stack_servers
from bench.isolation import free_port, isolated, run_settings
from bench.pipeline_fold import bare_loop, faust_floor, hot_spots, profile_fold
from bench.pipeline_publish import (
    fresh_vouchers,
    load_registry,
    publish_exports,
    publish_paced,
    sample_exports,
)
from bench.pipeline_sink import empty_sink_tables, raw_copy, read_rows, run_sink, stored
from bench.pipeline_watch import (
    POLL_SECONDS,
    Freshness,
    Watch,
    await_groups,
    freshness,
    processor_group,
    profile_freshness,
    scrape,
)
from consumers.sink.consumer import sink_group
from exchange import admin, database
from exchange.settings import ExchangeSettings, child_environment
from exchange.supervisor import Supervisor

_console = Console(log_path=False)
SEED = 20260415
BASELINE_RECORDS = 30_000  # the connectors-alone baseline runs on a sample of about this many
TRICKLE_PER_SECOND = 40.0
TRICKLE_SECONDS = 5.0
HALF_LOAD_SECONDS = 10.0
RERUN_LIMIT_SECONDS = 45.0
PROFILE_EVENTS = 20_000
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
    goal: str = "—"
    met: bool | None = None

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def run(settings: ExchangeSettings, people: int, seed: int = SEED, processors: int = 1) -> list[Figure]:
    """Run the benchmark on exports for `people` people; print and return the figures."""
    # kafka-python's IO thread warns whenever a busy process makes it wait; here that is expected.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="exchange-bench-pipeline-", ignore_cleanup_errors=True) as folder:
        home = Path(folder)
        bench = run_settings(settings, "pipeline", home)
        with isolated(bench):
            admin.ensure_topics(bench.kafka)
            database.migrate(bench.postgres)
            with _console.status(f"generating the exports for {people:,} people…"):
                from connectors.synth import generate

                summary = generate(people, seed, home / "exports", bad_rate=0.01)
            rows = sum(summary.counts[name] for name in ("identity", "tax", "social"))
            figures = _measure(bench, home, min(1.0, BASELINE_RECORDS / rows), processors)
    _print_summary(figures, people, time.perf_counter() - started)
    return figures


def _with(settings: ExchangeSettings, *, prefix: str | None = None, **processor: object) -> ExchangeSettings:
    update: dict[str, object] = {"processor": settings.processor.model_copy(update=processor)}
    if prefix is not None:
        update["kafka"] = settings.kafka.model_copy(update={"topic_prefix": prefix})
    return settings.model_copy(update=update)


def _measure(bench: ExchangeSettings, home: Path, sample: float, processors: int) -> list[Figure]:
    exports = home / "exports"
    registry = bench.connectors.registry_dsn.get_secret_value()
    alone = _connectors_alone(bench, home, sample, registry)
    supervisor = Supervisor(child_environment(bench), home / "logs")
    try:
        workers = {"processor": supervisor.start("processor", "process").process.pid}
        for number in range(2, processors + 1):
            own = {
                "EXCHANGE_PROCESSOR__DATADIR": str(home / f"processor-{number}"),
                "EXCHANGE_PROCESSOR__WEB_PORT": str(free_port()),
            }
            workers[f"processor {number}"] = supervisor.start(
                f"processor-{number}", "process", env=own
            ).process.pid
        sink = supervisor.start("sink", "sink").process.pid
        clock = CpuClock(
            {"connectors (this process)": os.getpid(), **workers, "sink": sink},
            stack_servers(bench),
        )
        end_to_end = _end_to_end(bench, supervisor, clock, exports, registry)
        (trickle, trickle_profiles), (half, half_profiles, half_rate) = _freshness(
            bench, supervisor, clock, exports, end_to_end
        )
    finally:
        with _console.status("stopping the processor and the sink…"):
            supervisor.stop_all()
    sink_rate, raw = _sink(bench)
    fold, bare, floor = _fold(bench, home)
    _profile(bench)
    half_p50, half_p99 = half.p50_seconds * 1000, half.p99_seconds * 1000
    trickle_p50, trickle_p99 = trickle.p50_seconds * 1000, trickle.p99_seconds * 1000
    profile_p50, profile_p99 = half_profiles.p50_seconds * 1000, half_profiles.p99_seconds * 1000
    trickle_profile_p50 = trickle_profiles.p50_seconds * 1000
    trickle_profile_p99 = trickle_profiles.p99_seconds * 1000
    # Half load is held to its goal only if the paced publisher reached it (within 10%).
    half_reached = half_rate >= 0.9 * end_to_end / 2
    return [
        Figure(
            "end to end",
            end_to_end,
            "connectors alone",
            alone,
            "records/s",
            "≥ 20,000/s",
            end_to_end >= 20_000,
        ),
        Figure("½ load reached by the paced publisher", half_rate, "asked", end_to_end / 2, "records/s"),
        Figure("freshness p50, record rows (½ load)", half_p50, "at a trickle", trickle_p50, "ms"),
        Figure("freshness p99, record rows (½ load)", half_p99, "at a trickle", trickle_p99, "ms"),
        Figure("freshness p50, profiles (½ load)", profile_p50, "at a trickle", trickle_profile_p50, "ms"),
        Figure(
            "freshness p99, profiles (½ load)",
            profile_p99,
            "at a trickle",
            trickle_profile_p99,
            "ms",
            "≤ 500 ms",
            half_reached and profile_p99 <= 500,
        ),
        Figure(
            "processor fold", fold, "bare aiokafka loop", bare, "events/s", "ratio ≥ 0.6", fold >= 0.6 * bare
        ),
        Figure("faust alone (no-op agent)", floor, "bare aiokafka loop", bare, "events/s"),
        Figure("sink", sink_rate, "raw COPY", raw, "rows/s", "ratio ≥ 0.7", sink_rate >= 0.7 * raw),
    ]


def _connectors_alone(bench: ExchangeSettings, home: Path, sample: float, registry: str) -> float:
    """The first `sample` of each export through the same connectors to topics of their own."""
    base = _with(bench, prefix=f"{bench.kafka.topic_prefix}baseline.")
    admin.ensure_topics(base.kafka)
    exports = home / "exports"
    if sample < 1.0:
        exports = home / "sample"
        sample_exports(home / "exports", exports, sample)
    load_registry(registry, exports / "property.sql", fresh=True)
    with _console.status("baseline: the connectors alone…"):
        started = time.perf_counter()
        published = publish_exports(base, exports, home / "baseline-connectors", registry)
        seconds = time.perf_counter() - started
    _console.log(
        f"connectors alone: {published:,} records ({sample:.0%} of the exports) in {seconds:.1f} s "
        f"= {published / seconds:,.0f} records/s"
    )
    return published / seconds


def _end_to_end(
    bench: ExchangeSettings, supervisor: Supervisor, clock: CpuClock, exports: Path, registry: str
) -> float:
    """From the first record published until every record and profile is in PostgreSQL."""
    load_registry(registry, exports / "property.sql", fresh=True)
    with _console.status("waiting for the processor and the sink to join their groups…"):
        await_groups(bench, [processor_group(bench), sink_group(bench.kafka)], supervisor)
    watch = Watch(bench, processor_group(bench))
    try:
        before = clock.sample()
        started = time.perf_counter()
        with _console.status("end to end: publishing the exports…"):
            published = publish_exports(bench, exports, bench.connectors.state_dir, registry)
        publishing = time.perf_counter() - started
        done = watch.wait_complete(supervisor, "end to end: draining") - started
        usage = clock.since(before)
        records = watch.read().published
    finally:
        watch.close()
    _console.log(
        f"end to end: {records:,} records ({published:,} published by the connectors in {publishing:.1f} s) "
        f"in PostgreSQL after {done:.1f} s = {records / done:,.0f} records/s; CPU: {_cores(usage)}"
    )
    return records / done


def _cores(usage: Usage) -> str:
    each = ", ".join(f"{name} {cores:.2f}" for name, cores in usage.processes.items())
    return f"{each}; the machine {usage.machine_cores:.2f} of {os.cpu_count()} cores"


def _freshness(
    bench: ExchangeSettings, supervisor: Supervisor, clock: CpuClock, exports: Path, end_to_end: float
) -> tuple[tuple[Freshness, Freshness], tuple[Freshness, Freshness, float]]:
    """Fresh vouchers at a trickle, then at half the end-to-end rate, each window read on its own: the
    record rows' freshness and the profiles', for each; and the rate the half load reached. The CPU of
    each window, publishing to drained, is logged with it: whether a late window was short of CPU (the
    machine near its 2 cores) or waiting on something else (the processor idle while behind)."""
    trickle_count = int(TRICKLE_PER_SECOND * TRICKLE_SECONDS)
    half_count = max(int(end_to_end / 2 * HALF_LOAD_SECONDS), 1)
    vouchers = fresh_vouchers(exports / "tax.csv", trickle_count + half_count)
    watch = Watch(bench, processor_group(bench))
    results = []
    try:
        for label, batch, rate in (
            ("trickle", vouchers[:trickle_count], TRICKLE_PER_SECOND),
            ("half load", vouchers[trickle_count:], end_to_end / 2),
        ):
            since, before = dt.datetime.now(dt.UTC), clock.sample()
            with _console.status(f"freshness: {len(batch):,} vouchers at {rate:,.0f}/s ({label})…"):
                paced = publish_paced(bench, batch, rate)
            drained = time.perf_counter()
            watch.wait_complete(supervisor, f"freshness ({label}): draining")
            until, usage = dt.datetime.now(dt.UTC), clock.since(before)
            fresh = freshness(bench.postgres, since, until)
            profiles = profile_freshness(bench.postgres, since, until)
            results.append((fresh, profiles, paced.per_second))
            _console.log(
                f"freshness, {label}: {paced.records:,} vouchers at {paced.per_second:,.0f}/s (asked "
                f"{rate:,.0f}/s), all in PostgreSQL {time.perf_counter() - drained:.1f} s after the last; "
                f"record rows p50 {fresh.p50_seconds * 1000:,.0f} ms, "
                f"p99 {fresh.p99_seconds * 1000:,.0f} ms, "
                f"max {fresh.max_seconds * 1000:,.0f} ms over {fresh.rows:,} rows; profiles p50 "
                f"{profiles.p50_seconds * 1000:,.0f} ms, p99 {profiles.p99_seconds * 1000:,.0f} ms, max "
                f"{profiles.max_seconds * 1000:,.0f} ms over {profiles.rows:,} subjects, of which up to the "
                f"processor emitting the profile p50 {profiles.emitted_p50_seconds * 1000:,.0f} ms, p99 "
                f"{profiles.emitted_p99_seconds * 1000:,.0f} ms; CPU: {_cores(usage)}"
            )
    finally:
        watch.close()
    (trickle, trickle_profiles, _), half = results
    return (trickle, trickle_profiles), half


def _sink(bench: ExchangeSettings) -> tuple[float, float]:
    """The sink over everything on the topics into emptied tables, then a raw COPY of the rows it wrote."""
    empty_sink_tables(bench.postgres)
    clock = CpuClock({"sink (this process)": os.getpid()}, stack_servers(bench))
    before = clock.sample()
    with _console.status("sink: everything on the topics, until idle…"):
        sunk = run_sink(bench, RERUN_LIMIT_SECONDS)
    usage = clock.since(before)
    with _console.status("raw COPY: reading and mapping the same rows…"):
        rows = read_rows(bench, stored(bench))
    with _console.status(f"raw COPY: {rows.total:,} rows…"):
        raw_seconds = raw_copy(bench.postgres, rows)
    records = rows.total - len(rows.profiles)
    end = f"stopped after {RERUN_LIMIT_SECONDS:.0f} s of writing" if sunk.stopped else "idle"
    _console.log(
        f"sink: {sunk.total_rows:,} rows in {sunk.batches} batches, {sunk.wall_seconds:.1f} s from start to "
        f"{end}; {sunk.rows:,} rows from its first to its last commit in {sunk.seconds:.1f} s "
        f"= {sunk.per_second:,.0f} rows/s, a PostgreSQL transaction in flight "
        f"{sunk.transaction_seconds / sunk.seconds:.0%} of that time (polling Kafka, decoding and mapping "
        f"the next batch go on beside it); CPU: {_cores(usage)}"
    )
    _console.log(
        f"raw COPY: the same {rows.total:,} rows ({records:,} records, {len(rows.profiles):,} profiles) in "
        f"{raw_seconds:.1f} s = {rows.total / raw_seconds:,.0f} rows/s; decoding and mapping them beforehand "
        f"took {rows.record_seconds / max(records, 1) * 1e6:,.0f} µs a record row, "
        f"{rows.profile_seconds / max(len(rows.profiles), 1) * 1e6:,.0f} µs a profile row"
    )
    decoding = rows.record_seconds + rows.profile_seconds
    _console.log(
        f"decoding and mapping alone, the sink's one Python thread doing nothing else, would write at most "
        f"{rows.total / decoding:,.0f} rows/s = {raw_seconds / decoding:.2f} of raw COPY"
    )
    if rows.total != sunk.total_rows:
        _console.log(f"[yellow]the sink wrote {sunk.total_rows:,} rows, its offsets cover {rows.total:,}[/]")
    return sunk.per_second, rows.total / raw_seconds


def _fold(bench: ExchangeSettings, home: Path) -> tuple[float, float, float]:
    """The bare loop over the backlog, then a processor of its own (new group, state and changelog), then
    faust alone with a no-op agent (its group and state its own too): events/s of each."""
    scratch = f"{bench.kafka.topic_prefix}bench.bare-loop.profiles"
    _create_topic(bench, scratch)
    with _console.status("fold: the bare aiokafka loop…"):
        bare = bare_loop(bench, scratch)
    _console.log(
        f"bare aiokafka loop: {bare.events:,} events, {bare.profiles:,} profiles in {bare.seconds:.1f} s "
        f"= {bare.per_second:,.0f} events/s"
    )
    folder = _with(
        bench, app_id=f"{bench.processor.app_id}-fold", datadir=home / "fold", web_port=free_port()
    )
    processor = _processor_fold(folder, home)
    floor_settings = _with(
        bench, app_id=f"{bench.processor.app_id}-floor", datadir=home / "floor", web_port=free_port()
    )
    with _console.status("fold: faust alone, a no-op agent over the backlog…"):
        floor = faust_floor(floor_settings, bare.events)
    _console.log(
        f"faust alone: the processor's app with an agent that takes the same batches and does nothing: "
        f"{floor.taken - floor.first_batch:,} events after its first batch in {floor.seconds:.1f} s "
        f"= {floor.per_second:,.0f} events/s, {floor.per_second / bare.per_second:.2f} of the bare loop; "
        f"the most a fold costing nothing would reach"
    )
    return processor, bare.per_second, floor.per_second


def _processor_fold(folder: ExchangeSettings, home: Path) -> float:
    """Events/s from the processor's first folded batch until its commits reach the end offsets (or
    `RERUN_LIMIT_SECONDS` later: then over what it committed by then)."""
    supervisor = Supervisor(child_environment(folder), home / "logs")
    watch = Watch(folder, processor_group(folder))
    port = folder.processor.web_port
    try:
        spawned = time.perf_counter()
        clock = CpuClock(
            {"processor": supervisor.start("processor-fold", "process").process.pid}, stack_servers(folder)
        )
        with _console.status("fold: the processor over the backlog…"):
            first, before = _first_fold(supervisor, watch, port), clock.sample()
            while not (reading := watch.read()).folded_all:
                supervisor.check()
                if time.perf_counter() - first[0] > RERUN_LIMIT_SECONDS:
                    break
                time.sleep(POLL_SECONDS)
            done, usage = time.perf_counter(), clock.since(before)
        samples = scrape(port)
    finally:
        watch.close()
        supervisor.stop_all()
    seconds = done - first[0]
    rate = (reading.folded - first[1]) / seconds
    end = "all committed" if reading.folded_all else f"stopped with {reading.folded:,} committed"
    fold_seconds = samples.get(_FOLD_SECONDS, 0.0)
    batches = samples.get("exchange_processor_batch_events_count", 0.0)
    profiles = samples.get("exchange_processor_profiles_emitted_total", 0.0)
    _console.log(
        f"processor: {reading.published:,} events; first commit ({first[1]:,} events) seen "
        f"{first[0] - spawned:.1f} s after it was started, {end} {seconds:.1f} s later = {rate:,.0f} "
        f"events/s; {batches:,.0f} batches emitting "
        f"{profiles:,.0f} profiles; BatchFolder.fold took {fold_seconds:.1f} s of it "
        f"({fold_seconds / seconds:.0%}), the rest is faust (consuming, the table and its changelog, "
        f"producing, committing) or waiting; CPU: {_cores(usage)}"
    )
    return rate


def _first_fold(supervisor: Supervisor, watch: Watch, port: int) -> tuple[float, int]:
    """Wait for the processor's first commit; when it was seen, and what it covered.

    The rate is timed from a commit seen to a commit seen, so that both ends are read the same way (a
    poll after a commit) and the count covers exactly the interval: timed from the first folded batch,
    what was folded before the first commit was counted in an interval that started after it.
    """
    deadline = time.monotonic() + 120
    while (reading := watch.read()).folded == 0:
        supervisor.check()
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the processor committed nothing in 120 s ({scrape(port).get(_EVENTS, 0):,.0f} folded)"
            )
        time.sleep(POLL_SECONDS)
    return time.perf_counter(), reading.folded


def _profile(bench: ExchangeSettings) -> None:
    with _console.status("profile: BatchFolder.fold under cProfile…"):
        events, stats = profile_fold(bench, PROFILE_EVENTS)
    total = stats.total_tt  # type: ignore[attr-defined]
    for title, by_own in (("cumulative", False), ("own", True)):
        table = Table(
            "function",
            "calls",
            "own s",
            "cumulative s",
            "% of fold",
            title=f"BatchFolder.fold under cProfile: {events:,} events, {total:.1f} s; top by {title} time",
        )
        for spot in hot_spots(stats, 10, by_own=by_own):
            share = (spot.own_seconds if by_own else spot.cumulative_seconds) / total
            table.add_row(
                spot.function,
                f"{spot.calls:,}",
                f"{spot.own_seconds:.2f}",
                f"{spot.cumulative_seconds:.2f}",
                f"{share:.0%}",
            )
        _console.print(table)


def _print_summary(figures: list[Figure], people: int, seconds: float) -> None:
    table = Table(
        "figure",
        "value",
        "baseline, same run",
        "baseline value",
        "ratio",
        "goal",
        "met",
        title=f"exchange bench pipeline --people {people:,} ({seconds / 60:.1f} min)",
    )
    for figure in figures:
        met = "—" if figure.met is None else ("[green]yes[/]" if figure.met else "[red]no[/]")
        table.add_row(
            figure.name,
            f"{figure.value:,.0f} {figure.unit}",
            figure.baseline_name,
            f"{figure.baseline:,.0f} {figure.unit}",
            f"{figure.ratio:.2f}",
            figure.goal,
            met,
        )
    _console.print(table)


def _create_topic(bench: ExchangeSettings, name: str) -> None:
    client = KafkaAdminClient(bootstrap_servers=bench.kafka.bootstrap_servers)
    try:
        client.create_topics([NewTopic(name, bench.kafka.subject_partitions, bench.kafka.replication_factor)])
    finally:
        client.close()
