"""Fixtures for the connector tests: the shared samples, and checks that convert or reject a record."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from connectors.exceptions import RecordRejected
from connectors.mappings import Converted, Mapping
from exchange.serialization import AvroCodec
from exchange.subjects import citizen_id_check_character

PUBLISHED_AT = dt.datetime(2026, 11, 23, 4, 0, tzinfo=dt.UTC)
TRACE_ID = "trace-test"


@pytest.fixture(scope="session")
def published_at() -> dt.datetime:
    """The `published_at` every test conversion is given."""
    return PUBLISHED_AT


@pytest.fixture(scope="session")
def trace_id() -> str:
    """The `trace_id` every test conversion is given."""
    return TRACE_ID


@pytest.fixture(scope="session")
def samples() -> Path:
    """The sample exports every checkout has at ../shared/samples from the project's root."""
    return Path(__file__).resolve().parents[3].parent / "shared" / "samples"


@pytest.fixture(scope="session")
def codec() -> AvroCodec:
    """The exchange's Avro codec, which every converted record must fit."""
    return AvroCodec()


@pytest.fixture
def convert(codec: AvroCodec) -> Callable[[Mapping, dict[str, Any]], list[Converted]]:
    """Convert a native record and check that every canonical record encodes with its dataset's schema."""

    def run(mapping: Mapping, fields: dict[str, Any]) -> list[Converted]:
        converted = mapping.convert(dict(fields), published_at=PUBLISHED_AT, trace_id=TRACE_ID)
        for item in converted:
            name, decoded = codec.decode(codec.encode(mapping.dataset, item.record))
            assert name == mapping.dataset
            assert decoded["envelope"]["event_id"] == item.record["envelope"]["event_id"]
        return converted

    return run


@pytest.fixture
def reject() -> Callable[[Mapping, dict[str, Any], str, str | None], RecordRejected]:
    """Check that a native record is rejected for `reason`, and that the message names the native field."""

    def run(mapping: Mapping, fields: dict[str, Any], reason: str, field: str | None) -> RecordRejected:
        with pytest.raises(RecordRejected) as caught:
            mapping.convert(dict(fields), published_at=PUBLISHED_AT, trace_id=TRACE_ID)
        error = caught.value
        assert (error.reason, error.field) == (reason, field), error.message
        if field is not None:
            assert field in error.message
        assert error.rejection.message == error.message
        return error

    return run


def make_citizen_id(place: str = "440106", born: str = "19900101", sequence: str = "123") -> str:
    """A valid citizen ID with the given parts."""
    body = f"{place}{born}{sequence}"
    return body + citizen_id_check_character(body)


@pytest.fixture(scope="session")
def citizen_id() -> Callable[..., str]:
    """Make a valid citizen ID: `citizen_id(place, born, sequence)`."""
    return make_citizen_id
