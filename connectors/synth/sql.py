"""The registry's SQL, in the exact shape of samples/property.sql and property_update.sql.

Writing: the CREATE TABLE statement, one INSERT per new row and one UPDATE (every column set) per
change. Reading: a small tokenizer for those three statement shapes — quoted strings with '' as
the escaped quote, bare integers, NULL — enough to read the samples and our own output back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from connectors.synth.exceptions import ExportFormatError
from connectors.synth.native import PROPERTY_COLUMNS

TABLE = "bdc_djb"
CREATE_TABLE = (
    "CREATE TABLE IF NOT EXISTS bdc_djb (bdcqzh text PRIMARY KEY, bdcdyh char(28) NOT NULL, "
    "qlr text NOT NULL, zl text, xzqdm char(6) NOT NULL, yt text NOT NULL, mj numeric(12,2) NOT NULL, "
    "djsj timestamp NOT NULL, qszt char(1) NOT NULL, dyzt char(1) NOT NULL, cfzt char(1) NOT NULL, "
    "bbh integer NOT NULL, gxsj timestamp NOT NULL);\n"
)
_INTEGER_COLUMNS = frozenset({"bbh"})
_COLUMN_LIST = ", ".join(PROPERTY_COLUMNS)

# a quoted string, a word, a number, or one punctuation character
_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_]*)|(-?[0-9]+(?:\.[0-9]+)?)|(\S))")


@dataclass(frozen=True)
class Statement:
    """An INSERT (all columns) or an UPDATE (the columns it sets, plus bdcqzh from its WHERE)."""

    kind: str
    values: dict[str, str | None]


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def insert_statement(row: Mapping[str, str]) -> str:
    """One line: the INSERT of a new row, as the sample writes it."""
    values = ", ".join(_literal(column, row[column]) for column in PROPERTY_COLUMNS)
    return f"INSERT INTO {TABLE} ({_COLUMN_LIST}) VALUES ({values});\n"


def update_statement(row: Mapping[str, str]) -> str:
    """One line: the UPDATE that sets every column of a row to its new state, as the sample writes it."""
    sets = ", ".join(f"{column} = {_literal(column, row[column])}" for column in PROPERTY_COLUMNS[1:])
    return f"UPDATE {TABLE} SET {sets} WHERE bdcqzh = {quote(row['bdcqzh'])};\n"


def parse_statements(text: str) -> Iterator[Statement]:
    """The INSERT and UPDATE statements of a SQL text; CREATE TABLE is skipped, anything else refused."""
    tokens = _Tokens(text)
    for first in tokens:
        word = first.upper()
        if word == "CREATE":
            _skip_statement(tokens)
        elif word == "INSERT":
            yield _insert(tokens)
        elif word == "UPDATE":
            yield _update(tokens)
        else:
            raise ExportFormatError(f"property SQL: unexpected {first!r}, expected CREATE, INSERT or UPDATE")


class _Tokens:
    """Tokens of a SQL text; a quoted string comes back with its quotes so it stays distinguishable."""

    def __init__(self, text: str) -> None:
        self._items = [_token(match) for match in _TOKEN.finditer(text) if match.group(0).strip()]
        self._next = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._next >= len(self._items):
            raise StopIteration
        self._next += 1
        return self._items[self._next - 1]

    def expect(self, *words: str) -> None:
        """Consume these words (case-insensitive); raise `ExportFormatError` on anything else."""
        for word in words:
            found = next(self, None)
            if found is None or found.upper() != word.upper():
                raise ExportFormatError(f"property SQL: expected {word!r}, found {found!r}")

    def value(self) -> str | None:
        """Consume a literal: a string's text, a number's digits, or None for NULL."""
        token = next(self, None)
        if token is None:
            raise ExportFormatError("property SQL: statement ends before its values")
        if token.startswith("'") and len(token) >= 2:
            return token[1:-1].replace("''", "'")
        if token.upper() == "NULL":
            return None
        if token[0].isdigit() or token[0] == "-":
            return token
        raise ExportFormatError(f"property SQL: expected a value, found {token!r}")


def _token(match: re.Match[str]) -> str:
    quoted = match.group(1)
    return f"'{quoted}'" if quoted is not None else match.group(0).strip()


def _insert(tokens: _Tokens) -> Statement:
    tokens.expect("INTO", TABLE, "(")
    columns = []
    for token in tokens:
        if token == ")":
            break
        if token != ",":
            columns.append(token)
    tokens.expect("VALUES", "(")
    values = []
    while True:
        values.append(tokens.value())
        separator = next(tokens, None)
        if separator == ")":
            break
        if separator != ",":
            raise ExportFormatError(f"property SQL: expected ',' or ')' in VALUES, found {separator!r}")
    tokens.expect(";")
    if len(columns) != len(values):
        raise ExportFormatError(f"property SQL: {len(columns)} columns but {len(values)} values")
    return Statement("insert", dict(zip(columns, values, strict=True)))


def _update(tokens: _Tokens) -> Statement:
    tokens.expect(TABLE, "SET")
    values: dict[str, str | None] = {}
    while True:
        column = next(tokens, "")
        tokens.expect("=")
        values[column] = tokens.value()
        separator = next(tokens, None)
        if separator and separator.upper() == "WHERE":
            break
        if separator != ",":
            raise ExportFormatError(f"property SQL: expected ',' or WHERE in SET, found {separator!r}")
    tokens.expect("bdcqzh", "=")
    values["bdcqzh"] = tokens.value()
    tokens.expect(";")
    return Statement("update", values)


def _skip_statement(tokens: _Tokens) -> None:
    for token in tokens:
        if token == ";":
            return


def _literal(column: str, value: str) -> str:
    return value if column in _INTEGER_COLUMNS else quote(value)
