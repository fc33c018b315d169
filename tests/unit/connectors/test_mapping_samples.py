"""Every row of the shared samples converts without rejection, and the counts match expected.json."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.mappings import MAPPINGS, SOURCES, Converted
from exchange import topics

Convert = Callable[..., list[Converted]]

_VALUE = re.compile(r"'(?P<quoted>(?:[^']|'')*)'|(?P<bare>-?[0-9]+(?:\.[0-9]+)?)")
_INSERT = re.compile(r"INSERT INTO bdc_djb \(([^)]*)\) VALUES \((.*)\);")
_ASSIGNMENT = re.compile(r"(?P<column>\w+) = (?:" + _VALUE.pattern + ")")
_UPDATE = re.compile(r"UPDATE bdc_djb SET (.*) WHERE bdcqzh = '((?:[^']|'')*)';")
_TYPES: dict[str, Callable[[str], Any]] = {
    "mj": Decimal,
    "bbh": int,
    "djsj": dt.datetime.fromisoformat,
    "gxsj": dt.datetime.fromisoformat,
}


def _typed(column: str, literal: re.Match[str]) -> Any:
    """A SQL literal (quoted text or a bare number) as psycopg would return the column's value."""
    quoted, bare = literal.group("quoted"), literal.group("bare")
    text = quoted.replace("''", "'") if quoted is not None else bare
    return _TYPES.get(column, str)(text)


def insert_rows(sql: str) -> list[dict[str, Any]]:
    """The rows of the INSERT statements, typed as the table's columns."""
    rows = []
    for columns, values in _INSERT.findall(sql):
        names = [name.strip() for name in columns.split(",")]
        rows.append(
            {name: _typed(name, match) for name, match in zip(names, _VALUE.finditer(values), strict=True)}
        )
    return rows


def apply_updates(sql: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows the UPDATE statements change, as they are afterwards."""
    by_key = {row["bdcqzh"]: row for row in rows}
    changed = []
    for assignments, key in _UPDATE.findall(sql):
        pairs = {
            match["column"]: _typed(match["column"], match) for match in _ASSIGNMENT.finditer(assignments)
        }
        changed.append({**by_key[key], **pairs})
    return changed


@pytest.fixture(scope="module")
def expected(samples: Path) -> dict[str, Any]:
    counts: dict[str, Any] = json.loads((samples / "expected.json").read_text(encoding="utf-8"))["counts"]
    return counts


@pytest.mark.parametrize(
    ("department", "file"), [("identity", "identity.csv"), ("tax", "tax.csv"), ("social", "social.jsonl")]
)
def test_file_samples_convert_without_rejection(
    convert: Convert, samples: Path, expected: dict[str, Any], department: str, file: str
) -> None:
    mapping, converted = MAPPINGS[department], []
    for record in SOURCES[department].read(samples / file):
        assert record.problem is None and record.fields is not None
        converted += convert(mapping, record.fields)
    assert len(converted) == expected[department]
    assert len({item.record["envelope"]["event_id"] for item in converted}) == len(converted)


def test_property_samples_convert_without_rejection(
    convert: Convert, samples: Path, expected: dict[str, Any]
) -> None:
    rows = insert_rows((samples / "property.sql").read_text(encoding="utf-8"))
    updates = apply_updates((samples / "property_update.sql").read_text(encoding="utf-8"), rows)
    assert (len(rows), len(updates)) == (expected["property_rows_first"], expected["property_updates"])
    converted = [item for row in rows + updates for item in convert(MAPPINGS["property"], row)]
    assert len(converted) == 2 * (len(rows) + len(updates))  # every sample title has two owners
    assert updates[0]["bbh"] == 2 and converted[-1].record["mortgaged"] is False


def test_registry_names_a_mapping_per_department_and_a_source_per_file_department() -> None:
    assert set(MAPPINGS) == {"identity", "tax", "social", "property"}
    assert set(SOURCES) == {"identity", "tax", "social"}
    for name, mapping in MAPPINGS.items():
        assert mapping.department == name
        assert mapping.topic is topics.BY_DATASET[mapping.dataset]
    for name in ("identity", "tax"):
        assert SOURCES[name].columns == MAPPINGS[name].columns  # type: ignore[attr-defined]
