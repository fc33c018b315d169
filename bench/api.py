"""`exchange bench api`: requests/s and p50/p99 latency of verifications and proofs at a fixed
concurrency, idle and while a pipeline run loads data, against a bare Starlette route running the
verification's profile query, all measured in the same run on the same machine.

A population is generated and run through the real pipeline (connectors, `exchange process`,
`exchange sink`) first; then `exchange api` and the baseline are each served by one uvicorn worker.
Idle, verifications and the bare route are measured in alternating rounds, and the ratio is taken per
round (the median is the figure); then verifications in an open loop at a few rates up to the goal's,
whose p99 at the goal's rate is the latency goal's figure (a closed loop at a fixed concurrency
measures how much it can queue, not the latency at a rate), and the bare route in the same open loop
at the same rates, its baseline; proofs once; then each kind once more under a pipeline load.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import http_load
from bench.api_stack import (
    bench_settings,
    finished,
    start_bare,
    start_connectors,
    wait_answering,
    wait_relaying,
)
from bench.bare_api import ROUTE as BARE_ROUTE
from bench.cpu_usage import CpuClock, Usage, cores
from bench.isolation import free_port, isolated
from connectors.synth import generate
from exchange import admin, database
from exchange.api.relay_process import MODULE as RELAY_MODULE
from exchange.api.serving import server_options
from exchange.demo import Progress, wait_until_complete
from exchange.demo_api import KEYS
from exchange.settings import ExchangeSettings, child_environment
from exchange.subjects import subject_key
from exchange.supervisor import Supervisor

# Piped to a file or a CI log, the table keeps its columns instead of wrapping at 80.
_console = Console(width=None if sys.stdout.isatty() else 200)
CALLER = "housing-bureau"  # no consent needed for public-rental-housing: every request is answered
PURPOSE = "public-rental-housing"
PROOF_TYPE = "household"
GOAL_RATIO = 0.7
GOAL_P99_SECONDS = 0.020
GOAL_PER_SECOND = 2000.0


@dataclass(frozen=True)
class Options:
    """What the benchmark generates and how hard it pushes."""

    people: int = 500
    load_people: int = 4000
    requests: int = 3000
    concurrency: int = 32
    phase_seconds: float = 60.0
    # Idle, verifications and the bare route are measured this many times in alternation, and their
    # ratio is taken per round: the host's speed drifts over a run, and a pair measured back to back
    # meets the same host. The median round's ratio is the figure.
    rounds: int = 3
    # The open-loop phases: verifications due at each of `rates` per second for `rate_seconds`, on up to
    # `rate_connections` keep-alive connections (more than are ever busy at once while the API keeps up).
    # The goal's rate is the goal's figure; the lower ones say up to which rate the latency holds.
    rates: tuple[float, ...] = (1000.0, 1500.0, GOAL_PER_SECOND)
    rate_seconds: float = 5.0
    rate_connections: int = 64
    seed: int = 1
    timeout_seconds: float = 900.0


@dataclass(frozen=True)
class Kind:
    """One kind of request: which server answers it and how its body is made from a citizen ID."""

    name: str
    server: str
    path: str
    body: Callable[[str], dict[str, object]]
    headers: dict[str, str]


@dataclass(frozen=True)
class Phase:
    """One measured phase: a kind of request, idle or under pipeline load, and what it cost."""

    kind: str
    load: str
    outcome: http_load.Outcome
    usage: Usage
    folded: int = 0  # records the processor folded during the phase
    behind_at_end: int = 0  # records published but not yet folded or written when it ended
    round: int | None = None  # which round of the alternating idle phases (`Options.rounds`), if one
    server: str = "api"  # which server answered (`Kind.server`)


def _kinds(settings: ExchangeSettings, reference_date: str) -> list[Kind]:
    secret = settings.subject_secret.get_secret_value().encode()
    key = {"X-API-Key": KEYS[CALLER]}
    claims = [
        {"fact": "identity.status", "operator": "eq", "value": "normal"},
        {"fact": "property.owns_residential_in_city", "operator": "eq", "value": False},
    ]
    return [
        Kind(
            "verifications",
            "api",
            "/v1/verifications",
            lambda cid: {
                "subject": cid,
                "purpose": PURPOSE,
                "reference_date": reference_date,
                "claims": claims,
            },
            key,
        ),
        Kind(
            f"proofs ({PROOF_TYPE})",
            "api",
            "/v1/proofs",
            lambda cid: {"proof_type": PROOF_TYPE, "subject": cid, "purpose": PURPOSE},
            key,
        ),
        Kind("bare route", "bare", BARE_ROUTE, lambda cid: {"subject_key": subject_key(cid, secret)}, {}),
    ]


def _requests(kind: Kind, target: http_load.Target, subjects: list[str]) -> list[bytes]:
    """A request of `kind` about each of `subjects`, in order."""
    return [
        http_load.post(target, kind.path, json.dumps(kind.body(subject)).encode(), kind.headers)
        for subject in subjects
    ]


class Runner:
    """Runs the phases against the started servers, with CPU and pipeline accounting."""

    def __init__(
        self,
        options: Options,
        targets: dict[str, http_load.Target],
        subjects: list[str],
        clock: CpuClock,
        progress: Progress,
    ) -> None:
        self.options = options
        self.targets = targets
        self.subjects = subjects
        self.clock = clock
        self.progress = progress
        self.rng = random.Random(options.seed)

    def phase(self, kind: Kind, load: str, round_: int | None = None, rate: float | None = None) -> Phase:
        """Warm up on every subject, then send `options.requests` requests of `kind` about subjects drawn
        at random (bounded by `phase_seconds`); with `rate`, `rate × rate_seconds` of them in an open
        loop at that rate instead (`http_load.run_at_rate`)."""
        options = self.options
        target = self.targets[kind.server]
        # Warm up on every subject once (in a random order): the phase measures a server that has met
        # the population, as one running for a while has, not one filling its caches.
        warm_up = self.rng.sample(self.subjects, len(self.subjects))
        warm_up += self.rng.choices(self.subjects, k=max(options.concurrency * 4 - len(warm_up), 0))
        warm = _requests(kind, target, warm_up)
        count = options.requests if rate is None else round(rate * options.rate_seconds)
        measured = _requests(kind, target, self.rng.choices(self.subjects, k=count))
        http_load.drive(http_load.run(target, warm, options.concurrency, options.phase_seconds))
        before_pipeline = self.progress.snapshot()
        before = self.clock.sample()
        name = phase_name(kind.name, rate)
        with _console.status(f"{name}, {load}: {len(measured):,} requests…"):
            loop = (
                http_load.run(target, measured, options.concurrency, options.phase_seconds)
                if rate is None
                else http_load.run_at_rate(target, measured, rate, options.rate_connections)
            )
            outcome = http_load.drive(loop)
        usage = self.clock.since(before)
        after = self.progress.snapshot()
        behind = after["published"] - after["folded"] + after["sink_behind"]
        folded = after["folded"] - before_pipeline["folded"]
        return Phase(name, load, outcome, usage, folded, behind, round_, kind.server)


def run(settings: ExchangeSettings, options: Options) -> list[Phase]:
    """Set up, measure every phase, print the table; the run's topics, database and state go after."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per readiness probe
    # The progress reads' admin client complains of its own slow polls on a busy machine: not a finding.
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="exchange-bench-api-") as name:
        folder = Path(name)
        bench = bench_settings(settings, folder)
        with isolated(bench):
            phases = _measure(bench, options, folder)
    _print(settings, phases, options)
    return phases


def _measure(bench: ExchangeSettings, options: Options, folder: Path) -> list[Phase]:
    with _console.status("topics, migrations and the generated population…"):
        admin.ensure_topics(bench.kafka)
        database.migrate(bench.postgres)
        generate(options.people, options.seed, folder / "population")
    expected = json.loads((folder / "population" / "expected.json").read_text(encoding="utf-8"))
    bare = bench.model_copy(update={"api": bench.api.model_copy(update={"port": _other_port(bench)})})
    supervisor = Supervisor(child_environment(bench), folder / "logs")
    try:
        processor = supervisor.start("processor", "process")
        sink = supervisor.start("sink", "sink")
        progress = Progress(bench)
        connectors = start_connectors(bench, folder / "population", folder / "logs", registry=True)
        loaded = wait_until_complete(
            progress,
            supervisor,
            lambda: finished(connectors),
            options.timeout_seconds,
            f"{options.people:,} people through connectors, processor and sink",
        )
        _console.print(f"setup: {loaded['published']:,} records folded into profiles and written")
        api = supervisor.start("api", "api")
        baseline = start_bare(supervisor, bare)
        wait_answering(supervisor, "GET", f"http://{bench.api.host}:{bench.api.port}/v1/keys", None)
        wait_answering(
            supervisor, "POST", f"http://{bare.api.host}:{bare.api.port}{BARE_ROUTE}", {"subject_key": "-"}
        )
        clock = CpuClock(
            {
                "api": api.process.pid,
                "relay": _relay_pid(api.process.pid),
                "bare": baseline.process.pid,
                "generator": os.getpid(),
                "processor": processor.process.pid,
                "sink": sink.process.pid,
            }
        )
        targets = {
            "api": http_load.Target(bench.api.host, bench.api.port),
            "bare": http_load.Target(bare.api.host, bare.api.port),
        }
        runner = Runner(options, targets, _registered(expected), clock, progress)
        kinds = _kinds(bench, expected["reference_date"])
        # One audited request, then the relay up and caught up: the phases measure the API running.
        first = kinds[0]
        wait_answering(
            supervisor,
            "POST",
            f"http://{bench.api.host}:{bench.api.port}{first.path}",
            first.body(runner.subjects[0]),
            headers=first.headers,
        )
        wait_relaying(supervisor, bench)
        verifications, proofs, bare_route = kinds
        phases = []
        for round_ in range(1, options.rounds + 1):  # in alternation: see `Options.rounds`
            phases += [runner.phase(verifications, "idle", round_), runner.phase(bare_route, "idle", round_)]
        phases.extend(runner.phase(verifications, "idle", rate=rate) for rate in options.rates)
        # The baseline of the latency goal: the bare route in the same open loop at the same rates.
        phases.extend(runner.phase(bare_route, "idle", rate=rate) for rate in options.rates)
        phases.append(runner.phase(proofs, "idle"))
        phases.extend(_under_load(bench, options, folder, supervisor, runner, kinds))
        progress.close()
        return phases
    finally:
        with _console.status("stopping the servers and the pipeline…"):
            supervisor.stop_all(grace_seconds=30)


def _under_load(
    bench: ExchangeSettings,
    options: Options,
    folder: Path,
    supervisor: Supervisor,
    runner: Runner,
    kinds: list[Kind],
) -> list[Phase]:
    """Each phase again while a population of its own is published into the topics and folded and
    written: every phase meets a load of the same size from its start, and the pipeline is idle
    again (everything folded and in PostgreSQL) before the next one's is published."""
    phases = []
    for number, kind in enumerate(kinds):
        load = folder / f"load-{number}"
        with _console.status(f"generating {options.load_people:,} more people for {kind.name}…"):
            generate(options.load_people, options.seed + 1 + number, load)
        start = runner.progress.snapshot()
        connectors = start_connectors(bench, load, folder / "logs", registry=False)
        deadline = time.monotonic() + 60
        with _console.status(f"publishing {options.load_people:,} more people; waiting for the processor…"):
            while runner.progress.snapshot()["folded"] == start["folded"] and time.monotonic() < deadline:
                supervisor.check()
                time.sleep(0.5)
        phases.append(runner.phase(kind, "pipeline"))
        wait_until_complete(
            runner.progress,
            supervisor,
            partial(finished, connectors),
            options.timeout_seconds,
            f"the load of {kind.name} finishing",
        )
    return phases


def _relay_pid(api_pid: int, timeout: float = 30) -> int:
    """The API's audit relay process (exchange.api.relay_process): its CPU is the API's too."""
    deadline = time.monotonic() + timeout
    while True:
        for task in Path(f"/proc/{api_pid}/task").iterdir():
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(FileNotFoundError):
                    if RELAY_MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return int(pid)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the API's audit relay process did not start within {timeout:.0f} s")
        time.sleep(0.2)


def _registered(expected: dict[str, Any]) -> list[str]:
    """The subjects with a 户籍 record: every request then reads a profile row, and every household
    proof can be issued (for anyone else the API cannot issue one)."""
    return sorted(cid for cid, facts in expected["subjects"].items() if facts["identity.status"] != "unknown")


def _other_port(bench: ExchangeSettings) -> int:
    port = free_port()
    while port == bench.api.port:
        port = free_port()
    return port


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f}"


def _print(settings: ExchangeSettings, phases: list[Phase], options: Options) -> None:
    table = Table(
        "phase",
        "load",
        "round",
        "answered",
        "errors",
        "requests/s",
        "p50 ms",
        "p99 ms",
        "server cores (api + relay)",
        "generator cores",
        "pipeline cores",
        "machine cores",
        "pipeline folded / behind at end",
        title=f"exchange bench api — {options.concurrency} in flight, one uvicorn worker per server",
    )
    verification = phases[0].kind
    for phase in phases:
        usage = phase.usage.processes
        # The API's own process and its audit relay's, apart: they are not the same cost.
        server = (
            f"{usage['bare']:.2f}"
            if phase.server == "bare"
            else f"{usage['api'] + usage['relay']:.2f} ({usage['api']:.2f} + {usage['relay']:.2f})"
        )
        table.add_row(
            phase.kind,
            phase.load,
            "-" if phase.round is None else str(phase.round),
            f"{phase.outcome.answered:,}",
            f"{phase.outcome.errors:,}",
            f"{phase.outcome.per_second:,.0f}",
            _ms(phase.outcome.percentile(0.50)),
            _ms(phase.outcome.percentile(0.99)),
            server,
            f"{usage['generator']:.2f}",
            f"{usage['processor'] + usage['sink']:.2f}",
            f"{phase.usage.machine_cores:.2f} of {cores()}",
            f"{phase.folded:,} / {phase.behind_at_end:,}" if phase.load == "pipeline" else "-",
        )
    _console.print(table)
    idle_ratios = ratios(phases, verification, "idle")
    ratio = statistics.median(idle_ratios)
    _console.print(
        f"verification / bare route throughput, idle: {ratio:.3f}, the median of {len(idle_ratios)} "
        f"rounds ({', '.join(f'{r:.3f}' for r in idle_ratios)}) (goal ≥ {GOAL_RATIO}: "
        f"{'met' if ratio >= GOAL_RATIO else 'not met'})"
    )
    (under_load,) = ratios(phases, verification, "pipeline")
    _console.print(
        f"verification / bare route throughput, pipeline: {under_load:.3f} (goal ≥ {GOAL_RATIO}: "
        f"{'met' if under_load >= GOAL_RATIO else 'not met'})"
    )
    at_rates = at_rate(phases, verification)
    bare_at = {outcome.offered: outcome for outcome in at_rate(phases, "bare route")}
    measured = "; ".join(
        f"{outcome.offered or 0:,.0f}/s: p99 {_p99(outcome)} "
        f"(bare route: {_p99(bare_at.get(outcome.offered))})"
        for outcome in at_rates
    )
    met = any(latency_goal_met(outcome) for outcome in at_rates)
    _console.print(
        f"goal: verification p99 ≤ {GOAL_P99_SECONDS * 1000:.0f} ms at ≥ {GOAL_PER_SECOND:,.0f} requests/s "
        f"idle — in an open loop at {measured}: {'met' if met else 'not met'}"
    )
    _notes(settings, phases, options)


def phase_name(kind: str, rate: float | None) -> str:
    """How a phase of `kind` (a `Kind.name`) is named: with its rate when it is an open loop."""
    return kind if rate is None else f"{kind} at {rate:,.0f}/s"


def at_rate(phases: list[Phase], kind: str) -> list[http_load.Outcome]:
    """The idle open-loop outcomes of `kind` (a `Kind.name`), in the order they ran."""
    return [
        phase.outcome
        for phase in phases
        if phase.outcome.offered is not None
        and phase.load == "idle"
        and phase.kind == phase_name(kind, phase.outcome.offered)
    ]


def _p99(outcome: http_load.Outcome | None) -> str:
    if outcome is None:
        return "not measured"
    errors = f", {outcome.errors:,} errors" if outcome.errors else ""
    return f"{_ms(outcome.percentile(0.99))} ms{errors}"


def latency_goal_met(at_rate: http_load.Outcome) -> bool:
    """Whether the open-loop phase meets the latency goal: offered at least the goal's rate, every
    request answered 200, and a p99 (counted from when each request was due) within the goal."""
    return (
        (at_rate.offered or 0.0) >= GOAL_PER_SECOND
        and at_rate.errors == 0
        and at_rate.percentile(0.99) <= GOAL_P99_SECONDS
    )


def _of(phases: list[Phase], kind: str, load: str) -> list[Phase]:
    return [phase for phase in phases if phase.kind == kind and phase.load == load]


def ratios(phases: list[Phase], verification: str, load: str) -> list[float]:
    """Verifications per second over the bare route's, per round of `load` (round 1 first; one figure
    for phases outside the rounds): each verification phase against the bare-route phase of its round."""
    bare = {phase.round: phase.outcome.per_second for phase in _of(phases, "bare route", load)}
    return [
        phase.outcome.per_second / max(bare[phase.round], 1e-9)
        for phase in sorted(_of(phases, verification, load), key=lambda phase: phase.round or 0)
    ]


def _notes(settings: ExchangeSettings, phases: list[Phase], options: Options) -> None:
    served = server_options(settings)  # as both servers run
    loop, http = served["loop"], served["http"]
    caught_up = [p.kind for p in phases if p.load == "pipeline" and p.behind_at_end == 0]
    notes = [
        "verifications and the bare route at a rate: an open loop, not "
        f"{options.concurrency} in flight: requests due at that rate for {options.rate_seconds:g} s, "
        f"each sent when due on one of up to {options.rate_connections} connections, its latency "
        "counted from when it was due",
        f"each server is one uvicorn worker (event loop {loop}, HTTP parser {http}) with a pool of "
        f"{settings.api.pool_max} PostgreSQL connections, as `exchange api` runs; the API also appends "
        "an audit entry per request (committed in batches, on a connection of its own) and relays it "
        "to Kafka from its relay process "
        "(whose CPU its server cores include), the bare route only reads the profile row",
        "the load generator (raw HTTP on asyncio protocols, on uvloop as the servers; this process) shares "
        f"the machine's {cores()} cores with the servers, PostgreSQL, the pipeline and anything else "
        "running; cores are CPU time per second of the phase ('machine' is all processes, other jobs "
        "included)",
        f"load average at the end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]
    if caught_up:
        notes.append(f"the pipeline had caught up before the end of: {', '.join(caught_up)}")
    for phase in phases:
        if phase.outcome.errors:
            answers = ", ".join(
                f"{n:,} × HTTP {status}" for status, n in sorted(phase.outcome.statuses.items())
            )
            failed = ", ".join(f"{n:,} × {name}" for name, n in phase.outcome.failures.items())
            notes.append(
                f"{phase.kind}, {phase.load}: {answers}" + (f"; no answer: {failed}" if failed else "")
            )
    for note in notes:
        _console.print(f"[dim]· {note}[/]")
