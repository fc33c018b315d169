"""expected.json, written incrementally in the layout of samples/expected.json.

The sample is ``json.dumps(document, indent=1, sort_keys=True)``. Subjects and decisions are
appended to two part files household by household; at the end the small header (bad_rows, counts)
is written and the parts are copied in. Subjects follow generation order rather than sorted order:
sorting a million of them would mean holding them or an external sort, and JSON objects are
unordered anyway. Keys within a subject are sorted, as in the sample.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

from connectors.synth.reference import Expected, Fact

EXPECTED_FILE = "expected.json"


class ExpectedWriter:
    """Collects subjects and decisions in part files and assembles expected.json on `finish`."""

    def __init__(self, out: Path, reference_date: dt.date) -> None:
        self._path = out / EXPECTED_FILE
        self._reference_date = reference_date
        self._parts = (out / ".expected-decisions.part", out / ".expected-subjects.part")
        self._decisions = self._parts[0].open("w", encoding="utf-8", buffering=1 << 20)
        self._subjects = self._parts[1].open("w", encoding="utf-8", buffering=1 << 20)
        self._first = True
        self.subjects = 0

    def __enter__(self) -> ExpectedWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._close_parts()
        if error is not None:  # a failed run leaves no half-written parts behind
            for part in self._parts:
                part.unlink(missing_ok=True)

    def add(self, expected: Expected) -> None:
        """Append one household's subjects and decisions."""
        for subject, facts in expected.subjects.items():
            separator = "" if self._first else ",\n"
            self._first = False
            self._subjects.write(separator + _entry(subject, facts))
            self._decisions.write(separator + _entry(subject, expected.decisions[subject]))
            self.subjects += 1

    def finish(self, bad_rows: Mapping[str, int], counts: Mapping[str, int]) -> None:
        """Write expected.json and remove the part files."""
        self._close_parts()
        with self._path.open("w", encoding="utf-8") as out:
            out.write("{\n")
            out.write(f' "bad_rows": {_block(bad_rows)},\n')
            out.write(f' "counts": {_block(counts)},\n')
            self._copy_part(out, "decisions", self._parts[0])
            out.write(f' "reference_date": "{self._reference_date.isoformat()}",\n')
            self._copy_part(out, "subjects", self._parts[1])
            out.write("\n}")
        for part in self._parts:
            part.unlink()

    def _copy_part(self, out: IO[str], name: str, part: Path) -> None:
        if self.subjects == 0:
            out.write(f' "{name}": {{}}')
        else:
            out.write(f' "{name}": {{\n')
            with part.open(encoding="utf-8") as source:
                shutil.copyfileobj(source, out, 1 << 20)
            out.write("\n }")
        if name != "subjects":
            out.write(",\n")

    def _close_parts(self) -> None:
        self._decisions.close()
        self._subjects.close()


def _entry(key: str, values: Mapping[str, Fact]) -> str:
    """A subject's object at depth 2, keys sorted, as json.dumps(indent=1) lays it out."""
    inner = ",\n".join(f'   "{name}": {_scalar(values[name])}' for name in sorted(values))
    return f'  "{key}": {{\n{inner}\n  }}'


def _block(values: Mapping[str, int]) -> str:
    inner = ",\n".join(f'  "{name}": {values[name]}' for name in sorted(values))
    return "{\n" + inner + "\n }"


def _scalar(value: Fact) -> str:
    # the facts are None, booleans, integers and strings (IDs, codes, decimals)
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is str:
        return json.dumps(value)
    if value is None:
        return "null"
    return "true" if value else "false"
