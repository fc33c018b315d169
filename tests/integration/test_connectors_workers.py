"""A large export prepared by two processes taking chunks in turn publishes exactly what one process
publishes: the same records in the same order on every partition, the same event ids, the same dead
letters, the same stored position."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from connectors.exceptions import ConnectorError, ResumeError
from connectors.files import run_file
from connectors.mappings import MAPPINGS
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.runner import Summary
from connectors.synth.generator import generate
from exchange import admin
from exchange.logs import read_all
from exchange.settings import ExchangeSettings
from exchange.topics import DEADLETTER, Topic

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
FILES = {"identity": "identity.csv", "tax": "tax.csv", "social": "social.jsonl"}
# What differs between two runs over the same records: when they ran, and their traces.
VOLATILE = frozenset({"published_at", "rejected_at", "trace_id"})


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if key not in VOLATILE}
    return value


def _by_partition(settings: ExchangeSettings, topic: Topic) -> dict[int, list[tuple[bytes, Any]]]:
    partitions: dict[int, list[tuple[bytes, Any]]] = {}
    for record in read_all(settings.kafka, topic.full_name(settings.kafka)):
        partitions.setdefault(record.partition, []).append((record.key, _stable(record.value)))
    return partitions


def _run(
    settings: ExchangeSettings, department: str, path: Path, state: Path, workers: int
) -> tuple[Summary, dict[str, Any]]:
    admin.ensure_topics(settings.kafka)
    publisher = Publisher(settings, client_id=f"test-{department}-{workers}")
    positions = PositionStore(state)
    try:
        summary = run_file(
            department,
            path,
            publisher=publisher,
            positions=positions,
            chunk_records=7,
            worker_min_bytes=0,
            workers=workers,
        )
    finally:
        publisher.close()
    return summary, positions.load(department, str(path.resolve()))


def _prefixed(settings: ExchangeSettings, suffix: str) -> ExchangeSettings:
    kafka = settings.kafka.model_copy(update={"topic_prefix": f"{settings.kafka.topic_prefix}{suffix}."})
    return settings.model_copy(update={"kafka": kafka})


@pytest.fixture(scope="module")
def synth_exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic exports of every department with one bad row per five good ones."""
    folder = tmp_path_factory.mktemp("synth")
    generate(60, 11, folder, bad_rate=0.2)
    return folder


@pytest.mark.parametrize("department", ["identity", "tax", "social"])
@pytest.mark.parametrize("export", ["samples", "synth"])
def test_two_preparing_processes_publish_exactly_what_one_publishes(
    settings: ExchangeSettings, tmp_path: Path, synth_exports: Path, export: str, department: str
) -> None:
    path = (SAMPLES if export == "samples" else synth_exports) / FILES[department]
    one, two = _prefixed(settings, "one"), _prefixed(settings, "two")
    summary_one, position_one = _run(one, department, path, tmp_path / "one", workers=1)
    summary_two, position_two = _run(two, department, path, tmp_path / "two", workers=2)

    assert position_two == position_one
    assert position_one["offset"] == path.stat().st_size
    assert (summary_two.read, summary_two.published, summary_two.rejected) == (
        summary_one.read,
        summary_one.published,
        summary_one.rejected,
    )
    topic = MAPPINGS[department].topic
    records = _by_partition(two, topic)
    assert records == _by_partition(one, topic)
    assert sum(len(partition) for partition in records.values()) == summary_one.published > 0
    letters = _by_partition(two, DEADLETTER)
    assert letters == _by_partition(one, DEADLETTER)
    assert sum(len(partition) for partition in letters.values()) == summary_one.rejected_total
    if export == "synth":
        assert summary_one.rejected_total > 0


@dataclass
class _Following:
    """What a `run_file(follow=True)` in a thread of its own reports: each position it stored, and how
    it ended (its summary, or what it raised)."""

    progress: list[int | None] = field(default_factory=list)
    summaries: list[Summary] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)


@contextlib.contextmanager
def _following(settings: ExchangeSettings, export: Path, state: Path, **options: Any) -> Iterator[_Following]:
    """Follow `export` (social) in a thread while the block runs; stopped and joined when it ends."""
    seen = _Following()
    stop = threading.Event()
    publisher = Publisher(settings, client_id=f"test-follow-{export.stem}")

    def follow() -> None:
        try:
            seen.summaries.append(
                run_file(
                    "social",
                    export,
                    publisher=publisher,
                    positions=PositionStore(state),
                    chunk_records=40,
                    follow=True,
                    follow_interval=0.1,
                    stop=stop,
                    progress=lambda summary: seen.progress.append(summary.position),
                    **options,
                )
            )
        except BaseException as exc:
            seen.failures.append(exc)

    thread = threading.Thread(target=follow)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=60)
        publisher.close()
    assert not thread.is_alive()


def test_following_a_growing_export_with_two_preparing_processes_publishes_each_record_once(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    lines = (SAMPLES / "social.jsonl").read_bytes().splitlines(keepends=True)
    export = tmp_path / "social.jsonl"
    export.write_bytes(b"".join(lines[:300]))
    with _following(settings, export, tmp_path / "state", worker_min_bytes=0, workers=2) as seen:
        for start, end in ((300, 600), (600, len(lines))):
            _wait_for(_stored(seen.progress, export.stat().st_size))
            with export.open("ab") as out:
                out.write(b"".join(lines[start:end]))
        _wait_for(_stored(seen.progress, export.stat().st_size))
    assert seen.failures == []
    [summary] = seen.summaries
    assert summary.read == len(lines)
    published = [
        record.value["envelope"]["event_id"]
        for record in read_all(settings.kafka, MAPPINGS["social"].topic.full_name(settings.kafka))
    ]
    assert len(published) == len(set(published)) == summary.published == len(lines)


def _stored(progress: list[int | None], position: int) -> Callable[[], bool]:
    return lambda: position in progress


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_following_a_line_still_being_written_waits_for_its_end_and_a_replaced_file_stops_the_run(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    first, second, third = (SAMPLES / "social.jsonl").read_bytes().splitlines(keepends=True)[:3]
    export = tmp_path / "social.jsonl"
    export.write_bytes(first + second[:60])  # the writer has flushed half of the second line
    with _following(settings, export, tmp_path / "state") as seen:
        _wait_for(_stored(seen.progress, len(first)))
        time.sleep(0.5)  # passes go by: the half line is not read
        assert seen.progress[-1] == len(first) and not seen.failures
        with export.open("ab") as out:
            out.write(second[60:])
        _wait_for(_stored(seen.progress, len(first) + len(second)))
        # Rotated: the old export moved away, a new one in its place.
        export.rename(tmp_path / "social.jsonl.1")
        export.write_bytes(third)
        _wait_for(lambda: bool(seen.failures))
    [failure] = seen.failures
    assert isinstance(failure, ResumeError) and "replaced or cut" in str(failure)
    published = [
        record.value["envelope"]["source_record_id"]
        for record in read_all(settings.kafka, MAPPINGS["social"].topic.full_name(settings.kafka))
    ]
    assert len(published) == 2  # both lines of the old export, the second once it was whole
    assert list(read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))) == []


def test_following_an_export_rewritten_in_place_stops_the_run(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # `cp` over a followed export keeps the file (its inode) and may keep its length: the run read on
    # from the old position, and the new export's head, before that position, went unread.
    admin.ensure_topics(settings.kafka)
    first, second, third = (SAMPLES / "social.jsonl").read_bytes().splitlines(keepends=True)[:3]
    export = tmp_path / "social.jsonl"
    export.write_bytes(first + second)
    with _following(settings, export, tmp_path / "state") as seen:
        _wait_for(_stored(seen.progress, len(first) + len(second)))
        inode = export.stat().st_ino
        export.write_bytes(second + first + third)  # rewritten in place, longer than was read
        assert export.stat().st_ino == inode
        _wait_for(lambda: bool(seen.failures))
    [failure] = seen.failures
    assert isinstance(failure, ResumeError) and "rewritten" in str(failure)
    published = list(read_all(settings.kafka, MAPPINGS["social"].topic.full_name(settings.kafka)))
    assert len(published) == 2  # the export read before; nothing of the rewritten one


def test_a_second_connector_of_a_followed_export_is_refused(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # Both read on from the one position, overwrote each other's, and sent every record twice.
    admin.ensure_topics(settings.kafka)
    first = (SAMPLES / "social.jsonl").read_bytes().splitlines(keepends=True)[0]
    export = tmp_path / "social.jsonl"
    export.write_bytes(first)
    with _following(settings, export, tmp_path / "state") as seen:
        _wait_for(_stored(seen.progress, len(first)))
        publisher = Publisher(settings, client_id="test-second-connector")
        try:
            with pytest.raises(ConnectorError, match="another social connector is reading"):
                run_file(
                    "social",
                    export,
                    publisher=publisher,
                    positions=PositionStore(tmp_path / "state"),
                    chunk_records=40,
                )
        finally:
            publisher.close()
    assert seen.failures == []
    assert len(list(read_all(settings.kafka, MAPPINGS["social"].topic.full_name(settings.kafka)))) == 1
