"""`exchange synth`: synthetic departments, their four exports, and the facts they must yield.

One household at a time: make its people, produce each department's native rows, write them, add
the due bad rows, compute the expected facts and decisions with the reference implementation, and
append those to expected.json. Nothing about a household is kept once it is written, so a million
people stream to disk in memory that does not grow with the population.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

from connectors.synth.bad_rows import BadRows
from connectors.synth.context import Context
from connectors.synth.exceptions import SynthError
from connectors.synth.expected import ExpectedWriter
from connectors.synth.identity import identity_rows
from connectors.synth.native import NativeRows
from connectors.synth.people import Household, make_household
from connectors.synth.property import property_rows
from connectors.synth.reference import ITEMS, compute
from connectors.synth.social import social_rows
from connectors.synth.tax import tax_rows
from connectors.synth.writers import ExportWriter

DEFAULT_REFERENCE_DATE = dt.date(2026, 11, 15)


@dataclass(frozen=True)
class Summary:
    """What `generate` wrote.

    `counts` are the rows written per file, bad rows included (as in expected.json);
    `bad_rows` the bad ones per department; `decisions` the number of subjects per item and verdict.
    """

    out: Path
    people: int
    households: int
    subjects: int
    counts: dict[str, int]
    bad_rows: dict[str, int]
    bad_row_kinds: dict[str, int]
    decisions: dict[str, dict[str, int]]
    seconds: float

    @property
    def people_per_second(self) -> float:
        """Generation throughput."""
        return self.people / self.seconds if self.seconds > 0 else float("inf")


def generate(
    people: int,
    seed: int,
    out: Path,
    bad_rate: float = 0.0,
    reference_date: dt.date = DEFAULT_REFERENCE_DATE,
) -> Summary:
    """Write identity.csv, tax.csv, social.jsonl, property.sql, property_update.sql and expected.json.

    The same arguments give the same bytes. `bad_rate` is the number of extra bad rows per good row,
    per department (0.01 adds one bad row per hundred good ones). Raises `SynthError` for a
    population below 1, a rate outside 0–1 or a folder that cannot be made.
    """
    if people < 1:
        raise SynthError(f"--people must be at least 1, got {people}")
    if not 0.0 <= bad_rate <= 1.0:
        raise SynthError(f"--bad-rate must be between 0 and 1, got {bad_rate}")
    started = time.perf_counter()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SynthError(f"cannot write the exports to {out}: {exc.strerror or exc}") from exc
    context = Context.create(seed, people, reference_date)
    bad = BadRows(context, bad_rate)
    decisions = {item: {"approved": 0, "manual_review": 0, "rejected": 0} for item in ITEMS}
    made = households = 0
    with ExportWriter(out) as exports, ExpectedWriter(out, reference_date) as expected:
        while made < people:
            household = make_household(context, people - made)
            rows = _write_household(context, household, exports, bad)
            result = compute(rows, reference_date)
            expected.add(result)
            for verdicts in result.decisions.values():
                for item, verdict in verdicts.items():
                    decisions[item][verdict] += 1
            made += len(household.members)
            households += 1
        expected.finish(bad.written, exports.counts)
    return Summary(
        out=out,
        people=made,
        households=households,
        subjects=expected.subjects,
        counts=dict(exports.counts),
        bad_rows=dict(bad.written),
        bad_row_kinds=dict(sorted(bad.kinds.items())),
        decisions=decisions,
        seconds=time.perf_counter() - started,
    )


def _write_household(
    context: Context, household: Household, exports: ExportWriter, bad: BadRows
) -> NativeRows:
    """Write one household's good rows and its due bad rows; return the good rows for the reference."""
    rows = NativeRows()
    for person in household.members:
        rows.identity += identity_rows(context, person)
        rows.tax += tax_rows(context, person)
        rows.social += social_rows(context, person)
    inserts, updates = property_rows(context, household)
    rows.property += inserts
    rows.property += updates
    exports.identity(rows.identity)
    exports.identity_cells(bad.identity(household, bad.due("identity", len(rows.identity))))
    exports.tax(rows.tax)
    exports.tax_cells(bad.tax(household, bad.due("tax", len(rows.tax))))
    exports.social(rows.social)
    exports.social_text(bad.social(household, bad.due("social", len(rows.social))))
    exports.property(inserts, updates)
    exports.property_text(bad.property(household, bad.due("property", len(inserts))))
    return rows
