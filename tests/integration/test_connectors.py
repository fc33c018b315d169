"""The four connectors on the real stack: samples in, exactly the canonical records out; dead letters;
resumable positions; the registry table polled for changes."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors.deadletters import read_deadletters
from connectors.exceptions import ResumeError
from connectors.files import run_file
from connectors.mappings import MAPPINGS, SOURCES
from connectors.messages import MAX_ORIGINAL_BYTES
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.table import run_table
from connectors.worker import in_worker
from exchange import admin
from exchange.logs import LoggedRecord, read_all
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key
from exchange.topics import BY_DATASET, DATASET_TOPICS, DEADLETTER

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"
FILES = {"identity": "identity.csv", "tax": "tax.csv", "social": "social.jsonl"}
EXPECTED_COUNTS = json.loads((SAMPLES / "expected.json").read_text())["counts"]


def _publish_file(
    settings: ExchangeSettings, department: str, path: Path, state: Path, chunk: int = 50
) -> None:
    publisher = Publisher(settings, client_id=f"test-{department}")
    try:
        run_file(department, path, publisher=publisher, positions=PositionStore(state), chunk_records=chunk)
    finally:
        publisher.close()


def _published(settings: ExchangeSettings, dataset: str) -> list[LoggedRecord]:
    return list(read_all(settings.kafka, BY_DATASET[dataset].full_name(settings.kafka)))


def _secret(settings: ExchangeSettings) -> bytes:
    return settings.subject_secret.get_secret_value().encode()


def test_an_export_replaced_by_another_is_not_resumed_in_its_middle(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # The position was a byte offset only: a new export at the same path, at least as long, was read
    # from the old offset on, its first records skipped without a word.
    admin.ensure_topics(settings.kafka)
    lines = (SAMPLES / "tax.csv").read_bytes().splitlines(keepends=True)
    export, state = tmp_path / "tax.csv", tmp_path / "state"
    export.write_bytes(b"".join(lines[:4]))
    _publish_file(settings, "tax", export, state)
    export.write_bytes(b"".join(lines[:5]))  # the same export, grown: resumed where it was
    _publish_file(settings, "tax", export, state)
    assert len(_published(settings, "tax.payment")) == 4
    export.write_bytes(b"".join([lines[0], *lines[5:11]]))  # another export in its place, longer
    with pytest.raises(ResumeError, match="replaced by another"):
        _publish_file(settings, "tax", export, state)
    assert len(_published(settings, "tax.payment")) == 4


def test_an_export_replaced_while_it_is_read_keeps_the_position_of_the_one_read(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # The position's digest was taken of whatever file was at the path when it was stored: a new export
    # put in place mid-run got the old offset with its own digest, and was then read from the middle.
    admin.ensure_topics(settings.kafka)
    lines = (SAMPLES / "tax.csv").read_bytes().splitlines(keepends=True)
    export, replacement = tmp_path / "tax.csv", tmp_path / "next.csv"
    export.write_bytes(b"".join(lines[:5]))
    replacement.write_bytes(b"".join([lines[0], *lines[5:15]]))

    class Replacing(Publisher):
        flushes = 0

        def flush(self) -> None:
            super().flush()
            self.flushes += 1
            if self.flushes == 2:  # the first chunk's position is stored; the second chunk is in flight
                os.replace(replacement, export)

    publisher = Replacing(settings, client_id="test-replacing")
    try:
        with pytest.raises(ResumeError, match="replaced while being read"):
            run_file(
                "tax",
                export,
                publisher=publisher,
                positions=PositionStore(tmp_path / "state"),
                chunk_records=2,
            )
    finally:
        publisher.close()
    with pytest.raises(ResumeError, match="replaced by another"):
        _publish_file(settings, "tax", export, tmp_path / "state")


@pytest.mark.parametrize("department", ["identity", "tax", "social"])
def test_a_file_connector_publishes_exactly_the_canonical_records(
    settings: ExchangeSettings, tmp_path: Path, department: str
) -> None:
    admin.ensure_topics(settings.kafka)
    path = SAMPLES / FILES[department]
    _publish_file(settings, department, path, tmp_path)

    mapping = MAPPINGS[department]
    published = _published(settings, mapping.dataset)
    assert len(published) == EXPECTED_COUNTS[department]
    by_event = {record.value["envelope"]["event_id"]: record for record in published}
    for source_record in SOURCES[department].read(path):
        assert source_record.fields is not None, source_record.problem
        [converted] = mapping.convert(
            source_record.fields, published_at=dt.datetime.now(dt.UTC), trace_id="x"
        )
        logged = by_event[converted.record["envelope"]["event_id"]]
        assert logged.key == subject_key(converted.subject_id, _secret(settings)).encode()
        # The publication time and trace are the run's; everything else is the record's own.
        for volatile in ("published_at", "trace_id"):
            converted.record["envelope"][volatile] = logged.value["envelope"][volatile]
        assert logged.value == converted.record
    assert read_deadletters(settings) == []


def test_spot_checks_of_converted_values(settings: ExchangeSettings, tmp_path: Path) -> None:
    admin.ensure_topics(settings.kafka)
    _publish_file(settings, "social", SAMPLES / "social.jsonl", tmp_path)
    first = next(
        r.value
        for r in _published(settings, "social.contribution")
        if r.value["envelope"]["source_record_id"] == "JF000000001"
    )
    assert first["base"] == Decimal("18175.00")  # aae180 1817500 fen
    assert first["employer_amount"] == Decimal("2544.50")
    assert first["month"] == dt.date(2026, 10, 1)
    assert first["insurance_type"] == "enterprise_pension"
    # gxsj 2026-10-20 09:00:00 in Asia/Shanghai is 01:00 UTC.
    assert first["envelope"]["occurred_at"] == dt.datetime(2026, 10, 20, 1, 0, tzinfo=dt.UTC)
    assert first["envelope"]["op"] == "upsert"


def test_rerunning_a_finished_file_publishes_nothing(settings: ExchangeSettings, tmp_path: Path) -> None:
    admin.ensure_topics(settings.kafka)
    _publish_file(settings, "tax", SAMPLES / "tax.csv", tmp_path)
    _publish_file(settings, "tax", SAMPLES / "tax.csv", tmp_path)
    assert len(_published(settings, "tax.payment")) == EXPECTED_COUNTS["tax"]


def test_a_file_whose_last_line_has_no_line_break_is_resumed_after_it(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # The position stored past the last line read did not follow a line break, and every later run
    # refused it ("not the start of a line"): rerun as it was, or once the department wrote on.
    admin.ensure_topics(settings.kafka)
    lines = (SAMPLES / "tax.csv").read_bytes().split(b"\r\n")[:-1]
    export = tmp_path / "tax.csv"
    export.write_bytes(b"\r\n".join(lines))  # no line break after the last record
    _publish_file(settings, "tax", export, tmp_path / "state")
    _publish_file(settings, "tax", export, tmp_path / "state")  # nothing new
    assert len(_published(settings, "tax.payment")) == EXPECTED_COUNTS["tax"]
    fields = lines[1].split(b",")
    fields[0] = b"9" + fields[0][1:]  # another voucher
    with export.open("ab") as file:
        file.write(b"\r\n" + b",".join(fields) + b"\r\n")
    _publish_file(settings, "tax", export, tmp_path / "state")
    published = _published(settings, "tax.payment")
    assert len(published) == EXPECTED_COUNTS["tax"] + 1
    assert published[-1].value["envelope"]["source_record_id"] == fields[0].decode()
    assert read_deadletters(settings, department="tax") == []


def test_bad_input_lands_in_the_dead_letter_topic_with_its_reason(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    good = json.loads((SAMPLES / "social.jsonl").read_text(encoding="utf-8").splitlines()[0])
    wrong_check = "1" if good["aac002"][-1] != "1" else "2"
    lines = [
        json.dumps(good, ensure_ascii=False),
        json.dumps({**good, "jfmxid": "BAD1", "aae180": "800000"}, ensure_ascii=False),
        json.dumps(
            {**good, "jfmxid": "BAD2", "aac002": good["aac002"][:-1] + wrong_check}, ensure_ascii=False
        ),
        json.dumps({**good, "jfmxid": "BAD3", "aae140": "999"}, ensure_ascii=False),
        "{not json",
    ]
    export = tmp_path / "social.jsonl"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _publish_file(settings, "social", export, tmp_path / "state")

    assert len(_published(settings, "social.contribution")) == 1
    letters = read_deadletters(settings, department="social")
    reasons = {letter["position"].split(" (")[0]: letter for letter in letters}
    assert len(letters) == 4
    assert reasons["line 2"]["field"] == "aae180"
    assert reasons["line 3"]["reason"] == "id_check_character"
    assert reasons["line 4"]["field"] == "aae140"
    assert reasons["line 5"]["reason"] == "unparseable"
    assert reasons["line 5"]["original"] == b"{not json\n"
    assert all(letter["source"] == "social.jsonl" and letter["message"] for letter in letters)


def test_a_record_over_the_limit_is_dead_lettered_cut_short_and_the_rest_is_read(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # A rejected line of 1 MiB made a dead letter over Kafka's message limit: its send failed, and the
    # connector failed there at every restart, the rest of the export unread.
    admin.ensure_topics(settings.kafka)
    good = (SAMPLES / "social.jsonl").read_text(encoding="utf-8").splitlines()[0]
    export = tmp_path / "social.jsonl"
    export.write_text('{"x": "' + "y" * (1 << 20) + '"}\n' + good + "\n", encoding="utf-8")
    _publish_file(settings, "social", export, tmp_path / "state")

    assert len(_published(settings, "social.contribution")) == 1
    (letter,) = read_deadletters(settings, department="social")
    assert letter["reason"] == "record_too_large" and letter["position"].startswith("line 1 ")
    assert letter["original"].startswith(b'{"x": "yyy') and len(letter["original"]) <= MAX_ORIGINAL_BYTES


def test_a_rejection_sent_again_is_read_once_and_one_in_another_folder_is_its_own(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # A restart re-sends its chunk's dead letters; they were read (and counted) twice. And the id was of
    # the file's name alone: the same line of a same-named export elsewhere got the same id.
    admin.ensure_topics(settings.kafka)
    exports = [tmp_path / month / "social.jsonl" for month in ("2026-10", "2026-11")]
    for export in exports:
        export.parent.mkdir()
        export.write_text("{not json\n", encoding="utf-8")
    _publish_file(settings, "social", exports[0], tmp_path / "state")
    _publish_file(settings, "social", exports[0], tmp_path / "state-lost")  # its position lost: read again
    _publish_file(settings, "social", exports[1], tmp_path / "state")

    sent = [r.value for r in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))]
    assert len(sent) == 3
    letters = read_deadletters(settings, department="social")
    assert len(letters) == 2 and letters[0]["event_id"] == sent[0]["event_id"]
    assert letters[0]["rejected_at"] == sent[0]["rejected_at"]  # the first sent is the one kept


def _registry(settings: ExchangeSettings) -> str:
    """The topics made and the registry loaded with the sample titles; the registry's DSN."""
    admin.ensure_topics(settings.kafka)
    dsn = settings.postgres.conninfo()
    _load_registry(dsn, SAMPLES / "property.sql")
    return dsn


def _load_registry(dsn: str, *files: Path) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for file in files:
            conn.execute(file.read_text(encoding="utf-8").encode())


def _poll(settings: ExchangeSettings, dsn: str, positions: PositionStore) -> None:
    """One run of the property connector over the registry, two rows a poll."""
    publisher = Publisher(settings, client_id="test-property")
    try:
        run_table(dsn, publisher=publisher, positions=positions, chunk_records=2)
    finally:
        publisher.close()


def test_the_table_connector_publishes_rows_per_owner_and_later_changes(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    dsn = _registry(settings)
    positions = PositionStore(tmp_path)

    def poll() -> None:
        _poll(settings, dsn, positions)

    poll()
    first = _published(settings, "property.title")
    assert len(first) == 2 * EXPECTED_COUNTS["property_rows_first"]  # every sample title has two owners
    poll()
    assert len(_published(settings, "property.title")) == len(first)  # nothing new, nothing re-sent

    _load_registry(dsn, SAMPLES / "property_update.sql")
    poll()
    updates = _published(settings, "property.title")[len(first) :] or [
        r for r in _published(settings, "property.title") if r.value["envelope"]["source_version"] == 2
    ]
    changed = [
        r.value for r in _published(settings, "property.title") if r.value["envelope"]["source_version"] == 2
    ]
    assert len(changed) == 2 * EXPECTED_COUNTS["property_updates"]
    assert {(r["mortgaged"], r["seized"]) for r in changed} == {(False, False)}
    assert len(updates) >= 2


def test_a_registry_time_python_cannot_hold_is_a_dead_letter_and_the_rows_after_it_are_read(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # PostgreSQL's timestamp holds 'infinity' and dates BC; psycopg's datetime cannot, and refused the
    # whole poll at such a row, every time, leaving the rows after it unread.
    dsn = _registry(settings)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE bdc_djb SET djsj = 'infinity' WHERE bdcqzh = '粤(2022)广州市不动产权第0000001号'"
        )
        conn.execute(
            "UPDATE bdc_djb SET gxsj = '0044-03-15 BC' WHERE bdcqzh = '粤(2007)广州市不动产权第0000002号'"
        )
    positions = PositionStore(tmp_path)
    for _ in range(2):  # the second poll finds nothing new: no row read or rejected twice
        _poll(settings, dsn, positions)
    letters = read_deadletters(settings, department="property")
    assert sorted((letter["reason"], letter["field"]) for letter in letters) == [
        ("bad_time", "djsj"),
        ("bad_time", "gxsj"),
    ]
    titles = {record.value["certificate_no"] for record in _published(settings, "property.title")}
    assert len(titles) == EXPECTED_COUNTS["property_rows_first"] - 2


THIRD = "粤(2010)广州市不动产权第0000003号"


def test_a_change_time_the_watermark_could_not_pass_is_a_dead_letter_and_later_changes_are_read(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # A row with gxsj 'infinity' or a mistyped year (2206) set the watermark there: no later change to
    # any title was ever read again, and nothing said so.
    dsn = _registry(settings)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE bdc_djb SET gxsj = 'infinity' WHERE bdcqzh = '粤(2022)广州市不动产权第0000001号'"
        )
        conn.execute("UPDATE bdc_djb SET gxsj = '2206-05-10 10:00:00' WHERE bdcqzh = %s", (THIRD,))
    positions = PositionStore(tmp_path)

    def poll() -> None:
        _poll(settings, dsn, positions)

    poll()
    poll()  # nothing new: no row read or rejected twice
    letters = read_deadletters(settings, department="property")
    assert sorted((letter["reason"], letter["field"], letter["position"]) for letter in letters) == [
        ("bad_time", "gxsj", "bdcqzh=粤(2010)广州市不动产权第0000003号 bbh=1"),
        ("bad_time", "gxsj", "bdcqzh=粤(2022)广州市不动产权第0000001号 bbh=1"),
    ]
    _load_registry(dsn, SAMPLES / "property_update.sql")  # a later change to another title
    with psycopg.connect(dsn, autocommit=True) as conn:  # and the mistyped year corrected, to a time
        # the watermark has passed already (the change above moved it to 2026-06-01)
        conn.execute("UPDATE bdc_djb SET gxsj = '2026-05-10 10:00:00' WHERE bdcqzh = %s", (THIRD,))
    poll()
    read = [
        (r.value["certificate_no"], r.value["envelope"]["source_version"])
        for r in _published(settings, "property.title")
    ]
    assert sorted(set(read)) == [
        ("粤(2007)广州市不动产权第0000002号", 1),
        ("粤(2007)广州市不动产权第0000002号", 2),
        ("粤(2010)广州市不动产权第0000003号", 1),
    ]
    assert len(read_deadletters(settings, department="property")) == 2

    # A change stamped a few hours ahead of the registry's clock waits for its time, and holds back
    # no change made meanwhile (the watermark went there, and the change stamped since was never read).
    with psycopg.connect(dsn, autocommit=True) as conn:
        ahead = "(now() AT TIME ZONE 'Asia/Shanghai') + interval '12 hours'"
        conn.execute(f"UPDATE bdc_djb SET gxsj = {ahead}, bbh = 2 WHERE bdcqzh = %s", (THIRD,))
        conn.execute(
            "UPDATE bdc_djb SET gxsj = now() AT TIME ZONE 'Asia/Shanghai' - interval '1 minute', bbh = 3 "
            "WHERE bdcqzh = %s",
            ("粤(2007)广州市不动产权第0000002号",),
        )
    poll()
    versions = {
        (r.value["certificate_no"], r.value["envelope"]["source_version"])
        for r in _published(settings, "property.title")
    }
    assert ("粤(2007)广州市不动产权第0000002号", 3) in versions and (THIRD, 2) not in versions
    assert len(read_deadletters(settings, department="property")) == 2


def test_a_change_committed_after_a_later_one_was_read_is_read_too(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # The registry stamps gxsj when its transaction begins, and the row shows once that commits: a poll
    # in between passed its time by a row committed sooner, and the row was never read.
    dsn = _registry(settings)
    positions = PositionStore(tmp_path)
    publisher = Publisher(settings, client_id="test-property")
    stamp = "UPDATE bdc_djb SET gxsj = now() AT TIME ZONE 'Asia/Shanghai', bbh = 2 WHERE bdcqzh = %s"
    second = "粤(2007)广州市不动产权第0000002号"

    def poll() -> None:
        run_table(dsn, publisher=publisher, positions=positions, chunk_records=100, settle_seconds=2.0)

    try:
        poll()  # the samples
        with psycopg.connect(dsn) as slow, psycopg.connect(dsn, autocommit=True) as quick:
            slow.execute(stamp, (THIRD,))  # stamped now, committed later
            time.sleep(0.1)
            quick.execute(stamp, (second,))
            poll()
            slow.commit()
        time.sleep(2.5)  # both are older than the settle time now
        poll()
    finally:
        publisher.close()
    versions = {
        (r.value["certificate_no"], r.value["envelope"]["source_version"])
        for r in _published(settings, "property.title")
    }
    assert {(THIRD, 2), (second, 2)} <= versions


def test_a_watermark_stored_past_any_real_change_is_dropped_and_the_titles_read_again(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # Stored by an earlier version at a row's 'infinity': no change was read again, ever.
    dsn = _registry(settings)
    positions = PositionStore(tmp_path)
    positions.save("property", "bdc_djb", {"gxsj": "infinity", "bdcqzh": "粤(2022)广州市不动产权第0000001号"})
    _poll(settings, dsn, positions)
    assert len(_published(settings, "property.title")) == 2 * EXPECTED_COUNTS["property_rows_first"]


def test_a_followed_registry_stamps_a_change_when_it_is_read_not_when_the_poll_before_it_ended(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # Freshness (sink commit minus published_at) was overstated by the quiet spell before each change.
    dsn = _registry(settings)
    first = 2 * EXPECTED_COUNTS["property_rows_first"]
    stop = threading.Event()
    publisher = Publisher(settings, client_id="test-property")
    follower = threading.Thread(
        target=run_table,
        args=(dsn,),
        kwargs={
            "publisher": publisher,
            "positions": PositionStore(tmp_path),
            "chunk_records": 100,
            "follow": True,
            "follow_interval": 0.2,
            "stop": stop,
        },
    )
    follower.start()
    try:
        _wait_for(lambda: len(_published(settings, "property.title")) >= first)
        changed_after = dt.datetime.now(dt.UTC)
        _load_registry(dsn, SAMPLES / "property_update.sql")
        _wait_for(lambda: len(_updates(settings)) == 2 * EXPECTED_COUNTS["property_updates"])
    finally:
        stop.set()
        follower.join(30)
        publisher.close()
    assert all(record["envelope"]["published_at"] >= changed_after for record in _updates(settings))


def _updates(settings: ExchangeSettings) -> list[dict[str, Any]]:
    published = _published(settings, "property.title")
    return [r.value for r in published if r.value["envelope"]["source_version"] > 1]


def _wait_for(condition: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the followed registry's rows were not published"
        time.sleep(0.2)


def test_an_owner_dropped_by_a_later_version_is_revoked(settings: ExchangeSettings, tmp_path: Path) -> None:
    dsn = _registry(settings)
    positions = PositionStore(tmp_path)
    for change in (
        None,
        "UPDATE bdc_djb SET qlr = '440115196406031712:100', bbh = 2, gxsj = '2026-07-01 10:00:00' "
        "WHERE bdcqzh = '粤(2022)广州市不动产权第0000001号'",
    ):
        if change:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(change)
        publisher = Publisher(settings, client_id="test-property")
        run_table(dsn, publisher=publisher, positions=positions, chunk_records=100)
        publisher.close()
    second = [
        r.value for r in _published(settings, "property.title") if r.value["envelope"]["source_version"] == 2
    ]
    by_owner = {r["owner_id"]: r for r in second}
    assert by_owner["440115196406031712"]["envelope"]["op"] == "upsert"
    assert by_owner["440115196406031712"]["share"] == Decimal("100.00")
    assert by_owner["440111200601168881"]["envelope"]["op"] == "revoke"


class _CrashingAt(PositionStore):
    """A position store whose process dies as it saves a watermark at `gxsj`: after the poll's sends."""

    def __init__(self, folder: Path, gxsj: str) -> None:
        super().__init__(folder)
        self.gxsj = gxsj

    def save(self, department: str, source: str, position: dict[str, Any]) -> None:
        if position.get("gxsj") == self.gxsj:
            raise SystemExit("killed")
        super().save(department, source, position)


def test_an_owner_published_by_a_poll_that_crashed_is_revoked_when_a_later_version_drops_it(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # The owners a poll published were saved only with its position: killed after its sends, the next
    # poll compared the title's next version with the owners before, and never revoked the new one.
    dsn, title = _registry(settings), "粤(2022)广州市不动产权第0000001号"
    first, then, last = "440111200601168881", "440115196406031712", "440102195607099506"

    def poll(positions: PositionStore, owner: str, version: int, gxsj: str) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(
                "UPDATE bdc_djb SET qlr = %s, bbh = %s, gxsj = %s WHERE bdcqzh = %s",
                (f"{owner}:100", version, gxsj, title),
            )
        publisher = Publisher(settings, client_id="test-property")
        try:
            run_table(dsn, publisher=publisher, positions=positions, chunk_records=100)
        finally:
            publisher.close()

    poll(PositionStore(tmp_path), first, 1, "2026-07-01 10:00:00")
    with pytest.raises(SystemExit):
        poll(_CrashingAt(tmp_path, "2026-07-02T10:00:00"), then, 2, "2026-07-02 10:00:00")
    poll(PositionStore(tmp_path), last, 3, "2026-07-03 10:00:00")
    third = {
        record.value["owner_id"]: record.value["envelope"]["op"]
        for record in _published(settings, "property.title")
        if record.value["certificate_no"] == title and record.value["envelope"]["source_version"] == 3
    }
    # The crashed poll's revoke of the first owner may not have been sent either: it is sent again.
    assert third == {last: "upsert", then: "revoke", first: "revoke"}


def _exchange(settings: ExchangeSettings, state: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "EXCHANGE_KAFKA__TOPIC_PREFIX": settings.kafka.topic_prefix,
        "EXCHANGE_CONNECTORS__STATE_DIR": str(state),
        "EXCHANGE_CONNECTORS__CHUNK_RECORDS": "500",
        "EXCHANGE_CONNECTORS__PREPARING_WORKERS": "3",
    }
    command = [sys.executable, "-m", "exchange", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_a_connector_killed_mid_file_and_restarted_publishes_every_record(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    template = [
        json.loads(line) for line in (SAMPLES / "social.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    export = tmp_path / "social.jsonl"
    with export.open("w", encoding="utf-8") as out:
        for copy in range(60):  # ~50,000 lines, so the kill lands mid-file
            for line in template:
                out.write(
                    json.dumps({**line, "jfmxid": f"{line['jfmxid']}-{copy}"}, ensure_ascii=False) + "\n"
                )
    expected = set()
    mapping = MAPPINGS["social"]
    for record in SOURCES["social"].read(export):
        assert record.fields is not None
        [converted] = mapping.convert(record.fields, published_at=dt.datetime.now(dt.UTC), trace_id="x")
        expected.add(converted.record["envelope"]["event_id"])

    topic = BY_DATASET["social.contribution"].full_name(settings.kafka)
    victim = _exchange(settings, tmp_path / "state", "connect", "social", str(export))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and victim.poll() is None:
        if sum(1 for _ in read_all(settings.kafka, topic)) >= 5000:
            break
        time.sleep(0.2)
    assert victim.poll() is None, (
        f"the connector ended before it could be killed: {victim.communicate()[1]!r}"
    )
    preparing = _children(victim.pid)
    assert len(preparing) == 3, "the connector prepares its records in as many processes as configured"
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    # Its preparing processes notice and end too: a killed connector leaves nothing running.
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() for pid in preparing) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in preparing if Path(f"/proc/{pid}").exists()]

    finisher = _exchange(settings, tmp_path / "state", "connect", "social", str(export))
    _, stderr = finisher.communicate(timeout=300)
    assert finisher.returncode == 0, stderr.decode()

    published = [record.value["envelope"]["event_id"] for record in read_all(settings.kafka, topic)]
    assert set(published) == expected
    # Re-sent at most one unacknowledged chunk, never more.
    assert len(published) - len(expected) <= 2 * 500


@pytest.mark.parametrize(("worker_min_bytes", "expect_worker"), [(0, True), (1 << 40, False)])
def test_a_file_is_prepared_in_a_worker_only_when_enough_is_left_to_read(
    settings: ExchangeSettings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    worker_min_bytes: int,
    expect_worker: bool,
) -> None:
    started: list[str] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        started.append(kwargs["name"])
        return in_worker(*args, **kwargs)

    monkeypatch.setattr("connectors.files.in_worker", spy)
    admin.ensure_topics(settings.kafka)
    publisher = Publisher(settings, client_id="test-worker-threshold")
    try:
        summary = run_file(
            "tax",
            SAMPLES / "tax.csv",
            publisher=publisher,
            positions=PositionStore(tmp_path),
            chunk_records=7,
            worker_min_bytes=worker_min_bytes,
        )
    finally:
        publisher.close()
    assert bool(started) is expect_worker
    assert summary.published == len(_published(settings, "tax.payment")) == EXPECTED_COUNTS["tax"]


def test_a_publisher_learns_its_topics_partitions_when_built(settings: ExchangeSettings) -> None:
    # kafka-python fetches one topic's metadata at a time (~0.5 s for all of them). Learnt lazily at the
    # first record, that landed inside the first chunk, after its published_at: its freshness.
    admin.ensure_topics(settings.kafka)
    publisher = Publisher(settings, client_id="test-topics")
    try:
        known = publisher._producer._metadata.partitions_for_topic
        for topic in (*DATASET_TOPICS, DEADLETTER):
            assert known(topic.full_name(settings.kafka)), f"{topic.name}: partitions not learnt yet"
    finally:
        publisher.close()


@pytest.mark.parametrize("order", ["correction last", "correction first"])
def test_a_voucher_corrected_to_another_person_is_revoked_for_the_first_whatever_the_order(
    settings: ExchangeSettings, tmp_path: Path, order: str
) -> None:
    # A correction naming another 纳税人识别号 reached only the new person: the first one's profile
    # kept counting the voucher, and a proof drawn from it was never superseded.
    admin.ensure_topics(settings.kafka)
    header, first, *_ = (SAMPLES / "tax.csv").read_bytes().decode("gb18030").splitlines(keepends=True)
    columns = first.split(",")
    voucher, named = columns[0], columns[1]
    other = "440102195607099506" if named != "440102195607099506" else "440103198403037020"
    corrected = ",".join([voucher, other, *columns[2:11], "2", *columns[12:]])
    exports = [("v1.csv", first), ("v2.csv", corrected)]
    if order == "correction first":
        exports.reverse()
    for name, row in exports:
        (tmp_path / name).write_bytes((header + row).encode("gb18030"))
        _publish_file(settings, "tax", tmp_path / name, tmp_path / "state")
    secret = _secret(settings)

    def sent() -> list[tuple[bytes, int, str, str]]:
        return [
            (
                r.key,
                r.value["envelope"]["source_version"],
                r.value["envelope"]["op"],
                r.value["envelope"]["event_id"],
            )
            for r in _published(settings, "tax.payment")
            if r.value["envelope"]["source_record_id"] == voucher
        ]

    was, now = subject_key(named.upper(), secret).encode(), subject_key(other, secret).encode()
    assert sorted(s[:3] for s in sent()) == sorted(
        [(was, 1, "upsert"), (now, 2, "upsert"), (was, 2, "revoke")]
    )
    # Read again (as after a restart before its position was saved, what was sent kept): the same
    # events, no new one.
    events = {s[3] for s in sent()}
    PositionStore(tmp_path / "state")._file("tax", str((tmp_path / exports[1][0]).resolve())).unlink()
    _publish_file(settings, "tax", tmp_path / exports[1][0], tmp_path / "state")
    assert {s[3] for s in sent()} == events and len(sent()) == 4
