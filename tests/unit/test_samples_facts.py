"""The acceptance test of the core: the shared samples, converted, folded and decided, give exactly
samples/expected.json.

The exports go through the connectors' own sources and mappings, and every canonical record through
the Avro codec, so what is folded is what the processor will read from Kafka. Only the registry's
SQL is read here, by a small test-side parser that plays the poller (typed columns as psycopg gives
them; one row state per INSERT, then per UPDATE).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.mappings import MAPPINGS, SOURCES, Converted
from connectors.mappings.property import PropertyMapping
from exchange.facts import as_json, compute
from exchange.profile import (
    Event,
    Ledger,
    Profile,
    apply,
    empty_ledger,
    from_avro,
    ledger_from_avro,
    ledger_to_avro,
    profile_of,
    to_avro,
)
from exchange.rules import bundled_service_items, decide
from exchange.serialization import AvroCodec

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples"
FILES = {"identity": "identity.csv", "tax": "tax.csv", "social": "social.jsonl"}
PUBLISHED_AT = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)

EXPECTED = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
REFERENCE_DATE = dt.date.fromisoformat(EXPECTED["reference_date"])


def _file_records(department: str) -> Iterator[Converted]:
    for read in SOURCES[department].read(SAMPLES / FILES[department]):
        assert read.fields is not None, f"{department} {read.position}: {read.problem}"
        yield from MAPPINGS[department].convert(read.fields, published_at=PUBLISHED_AT, trace_id="samples")


# --- the registry's table, as a poller reads it ------------------------------------------------------

_SQL_TOKEN = re.compile(r"'(?:[^']|'')*'|-?\d+(?:\.\d+)?|\w+|[(),=;]")


def _typed(column: str, token: str) -> Any:
    """A literal as psycopg returns the column: numeric → Decimal, timestamp → naive datetime, integer."""
    text = token[1:-1].replace("''", "'") if token.startswith("'") else token
    if column == "mj":
        return Decimal(text)
    if column in ("djsj", "gxsj"):
        return dt.datetime.fromisoformat(text)
    return int(text) if column == "bbh" else text


def _statements(path: Path) -> Iterator[list[str]]:
    """The INSERT and UPDATE statements of a dump, as token lists (CREATE TABLE is skipped)."""
    statement: list[str] = []
    for token in _SQL_TOKEN.findall(path.read_text(encoding="utf-8")):
        if token != ";":
            statement.append(token)
            continue
        if statement[0].upper() in ("INSERT", "UPDATE"):
            yield statement
        statement = []


def _row_states() -> Iterator[dict[str, Any]]:
    """Every state of table bdc_djb a poller would read: each inserted row, then each updated one."""
    table: dict[str, dict[str, Any]] = {}
    for path in (SAMPLES / "property.sql", SAMPLES / "property_update.sql"):
        for tokens in _statements(path):
            words = [token.upper() for token in tokens]
            if words[0] == "INSERT":
                at = words.index("VALUES")
                columns = [token for token in tokens[:at] if token not in "(),"][3:]  # INSERT INTO bdc_djb
                values = [token for token in tokens[at + 1 :] if token not in "(),"]
                row = {column: _typed(column, value) for column, value in zip(columns, values, strict=True)}
            else:
                at = words.index("WHERE")  # ... WHERE bdcqzh = '<id>'
                row = dict(table[_typed("bdcqzh", tokens[at + 3])])
                sets = [token for token in tokens[3:at] if token != ","]  # UPDATE bdc_djb SET c = v, ...
                row.update({sets[i]: _typed(sets[i], sets[i + 2]) for i in range(0, len(sets), 3)})
            table[row["bdcqzh"]] = row
            yield row


def _property_records() -> Iterator[Converted]:
    """What the table connector publishes: each row's owners, and revokes for owners it dropped."""
    mapping = MAPPINGS["property"]
    assert isinstance(mapping, PropertyMapping)
    published: dict[str, list[str]] = {}
    for row in _row_states():
        converted = mapping.convert(row, published_at=PUBLISHED_AT, trace_id="samples")
        previous = published.get(row["bdcqzh"], [])
        yield from converted
        yield from mapping.revoke_dropped_owners(row, previous, published_at=PUBLISHED_AT, trace_id="samples")
        published[row["bdcqzh"]] = [record.subject_id for record in converted]


# --- fold ---------------------------------------------------------------------------------------------


def _converted() -> Iterator[Converted]:
    for department in FILES:
        yield from _file_records(department)
    yield from _property_records()


def _ledgers() -> dict[str, Ledger]:
    """Each subject's ledger, every record encoded and decoded as on its topic (one partition here)."""
    codec = AvroCodec()
    ledgers: dict[str, Ledger] = {}
    for offset, converted in enumerate(_converted()):
        dataset = converted.record["envelope"]["dataset"]
        _, record = codec.decode(codec.encode(dataset, converted.record))
        ledger = ledgers.get(converted.subject_id) or empty_ledger(converted.subject_id)
        event = Event(dataset, record, MAPPINGS[record["envelope"]["department"]].topic.name, 0, offset)
        ledgers[converted.subject_id] = apply(ledger, event)
    return ledgers


LEDGERS = _ledgers()
PROFILES: dict[str, Profile] = {key: profile_of(ledger) for key, ledger in LEDGERS.items()}
ITEMS = bundled_service_items()


def test_every_sample_row_was_read() -> None:
    counts = EXPECTED["counts"]
    for department in FILES:
        assert sum(1 for _ in SOURCES[department].read(SAMPLES / FILES[department])) == counts[department]
    assert sum(1 for _ in _row_states()) == counts["property_rows_first"] + counts["property_updates"]


def test_every_subject_of_the_samples_has_a_profile() -> None:
    assert set(PROFILES) == set(EXPECTED["subjects"])


@pytest.mark.parametrize("citizen_id", sorted(EXPECTED["subjects"]))
def test_facts_match_expected(citizen_id: str) -> None:
    assert as_json(compute(PROFILES[citizen_id], REFERENCE_DATE)) == EXPECTED["subjects"][citizen_id]


@pytest.mark.parametrize("citizen_id", sorted(EXPECTED["decisions"]))
def test_decisions_match_expected(citizen_id: str) -> None:
    facts = compute(PROFILES[citizen_id], REFERENCE_DATE)
    outcomes = {code: decide(item, facts).outcome for code, item in ITEMS.items()}
    assert outcomes == EXPECTED["decisions"][citizen_id]


def test_the_folded_samples_encode_and_decode_exactly() -> None:
    codec = AvroCodec()
    for profile in PROFILES.values():
        name, record = codec.decode(codec.encode("profile", to_avro(profile)))
        assert name == "profile"
        assert from_avro(record) == profile
    for ledger in LEDGERS.values():
        name, record = codec.decode(codec.encode("ledger", ledger_to_avro(ledger)))
        assert name == "ledger"
        assert ledger_from_avro(record) == ledger
