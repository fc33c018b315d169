"""A current answer's as_of: when PostgreSQL was asked, on the clock that dates the profile versions."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from exchange.api import evaluation
from exchange.api.storage.profiles import StoredProfile
from exchange.profile import empty_profile

ASKED = dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC)  # PostgreSQL's clock: hours behind the API host's, say


@pytest.mark.parametrize(
    ("dated", "label"),
    [
        (ASKED - dt.timedelta(seconds=1), ASKED),  # the version read was dated before the read
        (ASKED + dt.timedelta(milliseconds=3), ASKED + dt.timedelta(milliseconds=3)),  # dated meanwhile
        (None, ASKED),  # no profile
    ],
)
async def test_a_current_answer_is_labelled_on_the_clock_that_dated_the_versions(
    monkeypatch: pytest.MonkeyPatch, dated: dt.datetime | None, label: dt.datetime
) -> None:
    # Labelled on the API host's clock, a skew from PostgreSQL's widened the window in which the label
    # and a later as-of query for it disagree, and a label ahead of the API's clock was refused when
    # sent back (after now).
    async def stored(conn: Any, subject_key: str, as_of: Any, cache: Any = None) -> StoredProfile:
        return StoredProfile(empty_profile(subject_key), dated, ASKED)

    monkeypatch.setattr(evaluation, "load_profile", stored)
    known = await evaluation.evaluate(None, "subject", dt.date(2025, 12, 31), None)  # type: ignore[arg-type]
    assert known.as_of == label
