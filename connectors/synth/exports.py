"""Reading the four department exports of a directory into native rows, bad rows left out.

Holds every good row in memory: it is for tests and for checking generated directories of modest
size, not for a million people (the generator computes its expected facts per household instead).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, cast

from connectors.synth.exceptions import ExportFormatError
from connectors.synth.native import (
    IDENTITY_COLUMNS,
    PROPERTY_COLUMNS,
    TAX_COLUMNS,
    IdentityRow,
    NativeRows,
    PropertyRow,
    SocialRow,
    TaxRow,
)
from connectors.synth.sql import parse_statements
from connectors.synth.validation import identity_problem, property_problem, social_problem, tax_problem

IDENTITY_FILE = "identity.csv"
TAX_FILE = "tax.csv"
SOCIAL_FILE = "social.jsonl"
PROPERTY_FILE = "property.sql"
PROPERTY_UPDATE_FILE = "property_update.sql"

_Row = TypeVar("_Row")


@dataclass
class ExportContents:
    """The good rows of a directory, and per department the reasons of the rows left out."""

    rows: NativeRows = field(default_factory=NativeRows)
    rejected: dict[str, list[str]] = field(
        default_factory=lambda: {"identity": [], "tax": [], "social": [], "property": []}
    )


def read_exports(directory: Path) -> ExportContents:
    """Read identity.csv, tax.csv, social.jsonl, property.sql and property_update.sql of a directory."""
    contents = ExportContents()
    rows, rejected = contents.rows, contents.rejected
    _sort(
        _csv_rows(directory / IDENTITY_FILE, "utf-8-sig", IDENTITY_COLUMNS, identity_problem),
        rows.identity,
        rejected["identity"],
    )
    _sort(_csv_rows(directory / TAX_FILE, "gb18030", TAX_COLUMNS, tax_problem), rows.tax, rejected["tax"])
    _sort(_social_lines(directory / SOCIAL_FILE), rows.social, rejected["social"])
    _sort(_property_states(directory), rows.property, rejected["property"])
    return contents


def _sort(items: Iterable[tuple[_Row, str | None]], good: list[_Row], reasons: list[str]) -> None:
    for row, problem in items:
        if problem is None:
            good.append(row)
        else:
            reasons.append(problem)


def _csv_rows(
    path: Path,
    encoding: str,
    columns: tuple[str, ...],
    problem_of: Callable[[Mapping[str, str]], str | None],
) -> Iterator[tuple[IdentityRow | TaxRow, str | None]]:
    with path.open(encoding=encoding, newline="") as file:
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None or tuple(header) != columns:
            raise ExportFormatError(f"{path.name}: header is {header}, expected {list(columns)}")
        for cells in reader:
            if len(cells) != len(columns):
                yield {}, "column_count"
                continue
            row = dict(zip(columns, cells, strict=True))
            yield row, problem_of(row)


def _social_lines(path: Path) -> Iterator[tuple[SocialRow, str | None]]:
    with path.open(encoding="utf-8", newline="\n") as file:
        for text in file:
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                yield {}, "json"
                continue
            if not isinstance(line, dict):
                yield {}, "json_object"
                continue
            # a line without a problem has exactly the 人社 keys and value types
            yield cast(SocialRow, line), social_problem(line)


def _property_states(directory: Path) -> Iterator[tuple[PropertyRow, str | None]]:
    """Every row state the registry's table goes through: each INSERT, then each row after an UPDATE."""
    table: dict[str, dict[str, str | None]] = {}
    for name in (PROPERTY_FILE, PROPERTY_UPDATE_FILE):
        for statement in parse_statements((directory / name).read_text(encoding="utf-8")):
            key = statement.values.get("bdcqzh") or ""
            if statement.kind == "insert":
                state = dict(statement.values)
            elif key in table:
                state = {**table[key], **statement.values}
            else:
                raise ExportFormatError(f"{name}: UPDATE of {key!r}, a row that was never inserted")
            table[key] = state
            row = {column: state.get(column) for column in PROPERTY_COLUMNS}
            problem = "columns" if set(state) != set(PROPERTY_COLUMNS) else property_problem(row)
            # zl is the one nullable column; the facts never read it
            yield {column: value or "" for column, value in row.items()}, problem
