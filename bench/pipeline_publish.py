"""The departments' side of `exchange bench pipeline`: the synthetic exports through the real connectors,
in-process, and later batches of fresh tax vouchers published at a fixed rate."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from connectors.files import run_file
from connectors.mappings import MAPPINGS, SOURCES, RecordRejected
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.runner import ChunkPublisher, Summary
from connectors.table import run_table
from exchange.settings import ExchangeSettings

FILES = (("identity", "identity.csv"), ("tax", "tax.csv"), ("social", "social.jsonl"))
VOUCHER = "电子税票号码"
VOID_FLAG = "作废标志"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def load_registry(dsn: str, file: Path, *, fresh: bool = False) -> None:
    """Run one of the registry's SQL files against `dsn`; with `fresh`, drop `bdc_djb` first."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        if fresh:
            conn.execute("DROP TABLE IF EXISTS bdc_djb")
        conn.execute(file.read_text(encoding="utf-8").encode())


def publish_exports(settings: ExchangeSettings, folder: Path, state: Path, registry_dsn: str) -> int:
    """Publish the three files, then the registry table, its later changes and the table again, as
    `exchange demo`'s connectors would (`bdc_djb` must hold property.sql). Returns records published."""
    positions = PositionStore(state)
    publisher = Publisher(settings, client_id="bench-connectors")
    chunk = settings.connectors.chunk_records
    summaries = []
    try:
        for department, name in FILES:
            path = folder / name
            summaries.append(
                run_file(department, path, publisher=publisher, positions=positions, chunk_records=chunk)
            )
        summaries.append(
            run_table(registry_dsn, publisher=publisher, positions=positions, chunk_records=chunk)
        )
        load_registry(registry_dsn, folder / "property_update.sql")
        summaries.append(
            run_table(registry_dsn, publisher=publisher, positions=positions, chunk_records=chunk)
        )
    finally:
        publisher.close()
    return sum(summary.published for summary in summaries)


def sample_exports(folder: Path, out: Path, fraction: float) -> None:
    """The first `fraction` of each file's records (header kept), and the registry's SQL as it is, so a
    baseline can run on fewer records with the same mix of departments."""
    out.mkdir(parents=True, exist_ok=True)
    for department, name in FILES:
        lines = (folder / name).read_bytes().splitlines(keepends=True)
        header = 0 if department == "social" else 1
        keep = header + round((len(lines) - header) * fraction)
        (out / name).write_bytes(b"".join(lines[:keep]))
    for name in ("property.sql", "property_update.sql"):
        shutil.copyfile(folder / name, out / name)


def fresh_vouchers(tax_export: Path, count: int) -> list[dict[str, Any]]:
    """`count` new tax vouchers for the export's taxpayers: the export's valid, live rows over and over,
    each under a voucher number of its own (19 digits starting with 9, unlike any the generator writes)."""
    mapping = MAPPINGS["tax"]
    templates: list[dict[str, Any]] = []
    for record in SOURCES["tax"].read(tax_export):
        fields = record.fields
        if fields is None or fields[VOID_FLAG] != "0":
            continue
        try:
            mapping.convert(fields, published_at=_EPOCH, trace_id="check")
        except RecordRejected:  # one of the generator's bad rows
            continue
        templates.append(fields)
    if not templates:
        raise ValueError(f"{tax_export} has no valid live voucher to copy")
    return [{**templates[n % len(templates)], VOUCHER: f"9{n:018d}"} for n in range(count)]


# How often the paced publisher publishes what is due.
STEP_SECONDS = 0.01


@dataclass(frozen=True)
class Paced:
    """What a paced publication did."""

    records: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


def publish_paced(settings: ExchangeSettings, vouchers: list[dict[str, Any]], per_second: float) -> Paced:
    """Publish `vouchers` through the tax connector's converter and publisher at `per_second`.

    Every `STEP_SECONDS` a step publishes what is due, stamped with one published_at taken just before
    it converts, and waits for the broker's acknowledgement — a connector's chunk, made small, so that
    published_at is when the record really left. A step per record instead (a flush each) cost the
    publisher half a core at 1,300 records/s, taken from the pipeline it measures. The clock starts
    after the publisher is built, as a connector's first chunk does: a `Publisher` learns its topics'
    partitions when it is built (about half a second).
    """
    publisher = Publisher(settings, client_id="bench-paced")
    chunk = ChunkPublisher(MAPPINGS["tax"], publisher, "bench-paced", Summary())
    sent = 0
    started = step = time.perf_counter()
    try:
        while sent < len(vouchers):
            time.sleep(max(step - time.perf_counter(), 0.0))
            step = max(step + STEP_SECONDS, time.perf_counter())
            due = min(len(vouchers), int(per_second * (time.perf_counter() - started)) + 1)
            if due <= sent:
                continue
            chunk.new_chunk()
            for n in range(sent, due):
                chunk.publish(chunk.convert(vouchers[n], f"voucher {n}", b""))
            publisher.flush()
            sent = due
    finally:
        publisher.close()
    return Paced(sent, time.perf_counter() - started)
