"""The five export files, written the way the departments write them (see samples/).

identity.csv: UTF-8 with a byte-order mark, CRLF, RFC 4180 quoting. tax.csv: GB18030, CRLF.
social.jsonl: UTF-8, LF, ``json.dumps`` spacing with the characters unescaped. property.sql and
property_update.sql: UTF-8, LF, one statement a line.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import IO

from connectors.synth.exports import (
    IDENTITY_FILE,
    PROPERTY_FILE,
    PROPERTY_UPDATE_FILE,
    SOCIAL_FILE,
    TAX_FILE,
)
from connectors.synth.native import IDENTITY_COLUMNS, TAX_COLUMNS, SocialRow
from connectors.synth.sql import CREATE_TABLE, insert_statement, update_statement

_BUFFER = 1 << 20


class ExportWriter:
    """Appends rows to the five files of an output directory and counts what it wrote."""

    def __init__(self, out: Path) -> None:
        self._identity = _open(out / IDENTITY_FILE, "utf-8-sig", "")
        self._tax = _open(out / TAX_FILE, "gb18030", "")
        self._social = _open(out / SOCIAL_FILE, "utf-8", "\n")
        self._property = _open(out / PROPERTY_FILE, "utf-8", "\n")
        self._updates = _open(out / PROPERTY_UPDATE_FILE, "utf-8", "\n")
        self._identity.write(_csv_text([IDENTITY_COLUMNS]))
        self._tax.write(_csv_text([TAX_COLUMNS]))
        self._property.write(CREATE_TABLE)
        self.counts = {"identity": 0, "property_rows_first": 0, "property_updates": 0, "social": 0, "tax": 0}

    def __enter__(self) -> ExportWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def identity(self, rows: Iterable[Mapping[str, str]]) -> None:
        """Good 公安 rows."""
        self.identity_cells([_identity_cells(row) for row in rows])

    def identity_cells(self, rows: Sequence[Sequence[str]]) -> None:
        """公安 rows as cells, any number of them (bad rows included)."""
        self._identity.write(_csv_text(rows))
        self.counts["identity"] += len(rows)

    def tax(self, rows: Iterable[Mapping[str, str]]) -> None:
        """Good 税务 rows."""
        self.tax_cells([_tax_cells(row) for row in rows])

    def tax_cells(self, rows: Sequence[Sequence[str]]) -> None:
        """税务 rows as cells, any number of them (bad rows included)."""
        self._tax.write(_csv_text(rows))
        self.counts["tax"] += len(rows)

    def social(self, lines: Sequence[SocialRow]) -> None:
        """Good 人社 lines."""
        if lines:
            # one write per household: the lines are most of the output
            self._social.write("\n".join([social_line(line) for line in lines]) + "\n")
            self.counts["social"] += len(lines)

    def social_text(self, lines: Iterable[str]) -> None:
        """人社 lines as text, without the newline (bad lines included)."""
        for text in lines:
            self._social.write(text)
            self._social.write("\n")
            self.counts["social"] += 1

    def property(self, inserts: Iterable[Mapping[str, str]], updates: Iterable[Mapping[str, str]]) -> None:
        """New titles as INSERTs into property.sql, their later states as UPDATEs into property_update.sql."""
        self.property_text(insert_statement(row) for row in inserts)
        for row in updates:
            self._updates.write(update_statement(row))
            self.counts["property_updates"] += 1

    def property_text(self, statements: Iterable[str]) -> None:
        """INSERT statements, each a line with its newline (bad rows included)."""
        for statement in statements:
            self._property.write(statement)
            self.counts["property_rows_first"] += 1

    def close(self) -> None:
        """Flush and close every file."""
        for file in (self._identity, self._tax, self._social, self._property, self._updates):
            file.close()


def social_line(line: SocialRow) -> str:
    """A good 人社 line exactly as ``json.dumps(line, ensure_ascii=False)`` writes it, several times faster.

    Good lines carry no character JSON must escape (the name pools are checked when built); bad
    lines, which may, go through json.dumps.
    """
    return (
        f'{{"jfmxid": "{line["jfmxid"]}", "aac002": "{line["aac002"]}", "aac003": "{line["aac003"]}", '
        f'"aae140": "{line["aae140"]}", "aae002": "{line["aae002"]}", "aab998": "{line["aab998"]}", '
        f'"aab004": "{line["aab004"]}", "aae180": {line["aae180"]}, "dwjfje": {line["dwjfje"]}, '
        f'"grjfje": {line["grjfje"]}, "aae078": "{line["aae078"]}", "yxbz": "{line["yxbz"]}", '
        f'"bbh": {line["bbh"]}, "gxsj": "{line["gxsj"]}"}}'
    )


_identity_cells = itemgetter(*IDENTITY_COLUMNS)
_tax_cells = itemgetter(*TAX_COLUMNS)


def _csv_text(rows: Iterable[Sequence[str]]) -> str:
    # one write per household instead of one per row: the file's encoder is called per write
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def _open(path: Path, encoding: str, newline: str) -> IO[str]:
    return path.open("w", encoding=encoding, newline=newline, buffering=_BUFFER)
