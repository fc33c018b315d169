"""`exchange demo`: the whole exchange on generated departments, from exports to signed proofs.

Generates the four departments' exports (`exchange synth`), starts every process — a connector per
department following its source, the processor, the sink, the API, approvals and the lag exporter —
shows progress until the views are complete, applies the registry's later changes, checks the views
against the generator's expected facts, then asks the API for verifications, proofs and 秒批
decisions. Ctrl-C (or the end of an unattended run) stops every process cleanly.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from kafka.errors import KafkaError
from psycopg import sql
from pydantic import SecretStr
from rich.console import Console

from connectors.positions import PositionStore
from consumers.sink.consumer import SINK_TOPICS, sink_group
from exchange import admin, database, facts
from exchange.api.storage.profiles import load_profile
from exchange.lag import KafkaOffsets, stored_offsets
from exchange.settings import REGISTRY_DATABASE, ExchangeSettings, child_environment
from exchange.subjects import subject_key
from exchange.supervisor import Supervisor
from exchange.topics import DATASET_TOPICS

_console = Console()
PREFIX = "demo."
DATABASE = "exchange_demo"
# The demo's topics and database are its own: `exchange top` shows their lag when told so.
TOP_COMMAND = f"EXCHANGE_KAFKA__TOPIC_PREFIX={PREFIX} EXCHANGE_POSTGRES__DATABASE={DATABASE} exchange top"
EXPORTS = (("identity", "identity.csv"), ("tax", "tax.csv"), ("social", "social.jsonl"))


@dataclass(frozen=True)
class DemoOptions:
    """What the demo generates and whether it waits for Ctrl-C at the end."""

    people: int
    seed: int
    wait: bool
    timeout_seconds: float = 1800.0


def demo_settings(settings: ExchangeSettings) -> ExchangeSettings:
    """The demo's own topics, database and state, so it never touches anything else."""
    home = settings.stack.home / "demo"
    registry = settings.postgres.model_copy(update={"database": REGISTRY_DATABASE})
    return settings.model_copy(
        update={
            "kafka": settings.kafka.model_copy(update={"topic_prefix": PREFIX}),
            "postgres": settings.postgres.model_copy(update={"database": DATABASE}),
            "connectors": settings.connectors.model_copy(
                update={"state_dir": home / "connectors", "registry_dsn": SecretStr(registry.conninfo())}
            ),
            "processor": settings.processor.model_copy(update={"datadir": home / "processor"}),
        }
    )


def reset(settings: ExchangeSettings) -> None:
    """Start from nothing: the demo's topics, database, registry table and local state go."""
    admin.remove_prefixed(settings.kafka, wait_seconds=60.0)
    shutil.rmtree(settings.stack.home / "demo", ignore_errors=True)
    with psycopg.connect(settings.postgres.conninfo("postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    with psycopg.connect(settings.connectors.registry_dsn.get_secret_value(), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bdc_djb")


def _load_sql(dsn: str, path: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(path.read_text(encoding="utf-8").encode())


class Progress:
    """How far the pipeline is: end offsets of the topics, and what the processor and the sink consumed."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self.settings = settings
        self.offsets = KafkaOffsets(settings.kafka, timeout_seconds=10.0)

    def snapshot(self) -> dict[str, int]:
        """Records published, folded by the processor, and not yet written by the sink."""
        kafka = self.settings.kafka
        datasets = {topic.full_name(kafka) for topic in DATASET_TOPICS}
        sink_topics = {topic.full_name(kafka) for topic in SINK_TOPICS}
        ends = self.offsets.ends()
        folded = self.offsets.committed().get(f"{kafka.topic_prefix}{self.settings.processor.app_id}", {})
        sunk = stored_offsets(self.settings.postgres, kafka.topic_prefix, 10.0).get(sink_group(kafka), {})
        return {
            "published": sum(end for tp, end in ends.items() if tp.topic in datasets),
            "folded": sum(offset for tp, offset in folded.items() if tp.topic in datasets),
            "sink_behind": sum(end - sunk.get(tp, 0) for tp, end in ends.items() if tp.topic in sink_topics),
        }

    def close(self) -> None:
        self.offsets.reset()


def sources_read(settings: ExchangeSettings, exports: Path, registry_dsn: str) -> bool:
    """Whether every connector has read its export to the end and polled the registry's latest change."""
    positions = PositionStore(settings.connectors.state_dir)
    for department, name in EXPORTS:
        path = exports / name
        if positions.load(department, str(path.resolve())).get("offset", 0) < path.stat().st_size:
            return False
    with psycopg.connect(registry_dsn) as conn:
        row = conn.execute("SELECT max(gxsj) FROM bdc_djb").fetchone()
    latest = row[0] if row else None
    watermark = positions.load("property", "bdc_djb").get("gxsj")
    return latest is None or (watermark is not None and dt.datetime.fromisoformat(watermark) >= latest)


def wait_until_complete(
    progress: Progress, supervisor: Supervisor, sources_done: Callable[[], bool], timeout: float, what: str
) -> dict[str, int]:
    """Show progress until every source is read and every record published is folded and in PostgreSQL."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    with _console.status(what) as status:
        while True:
            supervisor.check()
            done = sources_done()
            try:
                now = progress.snapshot()
            except KafkaError as exc:
                # A broker that just started answers CoordinatorLoadInProgress for a while: ask again.
                progress.offsets.reset()
                status.update(f"{what}: waiting for Kafka ({exc.__class__.__name__})")
                time.sleep(1.0)
                continue
            elapsed = time.monotonic() - started
            status.update(
                f"{what}: published {now['published']:,}, folded {now['folded']:,}, sink behind by "
                f"{now['sink_behind']:,} ({now['published'] / max(elapsed, 1e-9):,.0f} records/s)"
            )
            if done and now["folded"] >= now["published"] and now["sink_behind"] == 0:
                return now
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not complete after {timeout:.0f} s: {now}")
            time.sleep(1.0)


async def check_views(settings: ExchangeSettings, expected: dict[str, Any]) -> tuple[int, list[str]]:
    """Compare every subject's facts in the views with the generator's expected facts."""
    secret = settings.subject_secret.get_secret_value().encode()
    reference = dt.date.fromisoformat(expected["reference_date"])
    mismatched = []
    async with await psycopg.AsyncConnection.connect(settings.postgres.conninfo()) as conn:
        for citizen_id, wanted in expected["subjects"].items():
            stored = await load_profile(conn, subject_key(citizen_id, secret), None)
            if facts.as_json(facts.compute(stored.profile, reference)) != wanted:
                mismatched.append(citizen_id)
    return len(expected["subjects"]) - len(mismatched), mismatched


def run(
    settings: ExchangeSettings,
    options: DemoOptions,
    ask_api: Callable[[ExchangeSettings, dict[str, Any]], None],
) -> int:
    """The whole demo; returns the exit status."""
    demo = demo_settings(settings)
    home = settings.stack.home / "demo"
    # kafka-python warns about its own slow loop on a busy machine, httpx logs every request: the
    # demo's screen is for progress and the API's answers.
    logging.getLogger("kafka").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with _console.status("resetting the demo's topics, database and state…"):
        reset(demo)
        admin.ensure_topics(demo.kafka)
        database.migrate(demo.postgres)
    exports = home / "exports"
    with _console.status(f"generating the departments' exports for {options.people:,} people…"):
        from connectors.synth import generate

        summary = generate(options.people, options.seed, exports, bad_rate=0.01)
    expected = json.loads((exports / "expected.json").read_text(encoding="utf-8"))
    _console.print(f"exports for {options.people:,} people in {exports} ({summary.seconds:.1f} s)")
    registry_dsn = demo.connectors.registry_dsn.get_secret_value()
    _load_sql(registry_dsn, exports / "property.sql")

    supervisor = Supervisor(child_environment(demo), home / "logs")
    try:
        ports = demo.monitoring
        supervisor.start("processor", "process")
        supervisor.start("sink", "sink", env=_metrics(ports.sink_port))
        for department, name in EXPORTS:
            supervisor.start(
                f"connect-{department}",
                *("connect", department, str(exports / name), "--follow"),
                env=_metrics(ports.connector_ports[department]),
            )
        # The registry's DSN, password and all, reaches the connector in its environment (the settings),
        # not on its command line, which `ps` shows to every user of the machine.
        supervisor.start(
            "connect-property",
            "connect",
            "property",
            "--follow",
            env=_metrics(ports.connector_ports["property"]),
        )
        supervisor.start("api", "api")
        supervisor.start("approvals", "approvals", env=_metrics(ports.approvals_port))
        supervisor.start("lag-exporter", "lag-exporter", env=_metrics(ports.lag_exporter_port))
        progress = Progress(demo)

        def read() -> bool:
            return sources_read(demo, exports, registry_dsn)

        wait_until_complete(progress, supervisor, read, options.timeout_seconds, "loading the exports")
        _load_sql(registry_dsn, exports / "property_update.sql")
        done = wait_until_complete(
            progress, supervisor, read, options.timeout_seconds, "the registry's changes"
        )
        progress.close()
        matched, mismatched = asyncio.run(check_views(demo, expected))
        colour = "green" if not mismatched else "red"
        _console.print(
            f"[{colour}]views complete: {done['published']:,} records; {matched:,} of "
            f"{len(expected['subjects']):,} subjects' facts equal the generator's expected facts[/]"
        )
        ask_api(demo, expected)
        _console.print(
            f"API documentation: http://{demo.api.host}:{demo.api.port}/docs · metrics: "
            f"http://{demo.api.host}:{demo.api.port}/metrics, processor "
            f"http://127.0.0.1:{demo.processor.web_port}/metrics and the ports of monitoring/prometheus.yml "
            f"(`{TOP_COMMAND}` shows them all) · logs: {home / 'logs'}"
        )
        if options.wait:
            _console.print("the exchange is running; Ctrl-C stops it")
            while True:
                time.sleep(1.0)
                supervisor.check()
        return 0 if not mismatched else 1
    except KeyboardInterrupt:
        return 0
    finally:
        with _console.status("stopping every process…"):
            codes = supervisor.stop_all()
        _console.print("stopped: " + ", ".join(f"{name} ({code})" for name, code in codes.items()))


def _metrics(port: int) -> dict[str, str]:
    """The variable that makes a process serve /metrics on `port`."""
    return {"EXCHANGE_METRICS_PORT": str(port)}
