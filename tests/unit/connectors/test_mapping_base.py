"""The shared parts of every mapping: event ids, envelopes, field checks and their messages."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.exceptions import ConnectorError, RecordRejected
from connectors.mappings import MAPPINGS, SOURCES
from connectors.mappings.base import EVENT_NAMESPACE, event_id
from connectors.mappings.fields import Field, code, shown, text
from connectors.records import Rejection
from exchange.exceptions import ExchangeError

FIELD = Field("人社", "aae140", "insurance type")


@given(
    department=st.sampled_from(["identity", "tax", "social", "property"]),
    record_id=st.text(),
    version=st.integers(min_value=1, max_value=2**63 - 1),
    owner=st.none() | st.text(min_size=1),
)
def test_event_id_is_uuid5_of_department_record_version_and_owner(
    department: str, record_id: str, version: int, owner: str | None
) -> None:
    name = f"{department}|{record_id}|{version}" + ("" if owner is None else f"|{owner}")
    assert event_id(department, record_id, version, owner) == str(uuid.uuid5(EVENT_NAMESPACE, name))


def test_record_rejected_is_an_exchange_error_carrying_a_rejection() -> None:
    error = FIELD.rejected("unknown_code", 'must be one of 110, got "999"')
    assert isinstance(error, RecordRejected) and isinstance(error, ConnectorError)
    assert isinstance(error, ExchangeError)
    assert error.rejection == Rejection(
        "unknown_code", "aae140", '人社 aae140 (insurance type) must be one of 110, got "999"'
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8000.5", '"8000.5"'),
        (8000.5, "8000.5"),
        (True, "true"),
        (None, "null"),
        ("x" * 60, '"' + "x" * 36 + "..."),
    ],
)
def test_values_are_shown_as_in_the_export(value: object, expected: str) -> None:
    assert shown(value) == expected


def test_checks_explain_the_first_thing_wrong() -> None:
    table = {"110": "enterprise_pension"}
    assert code({"aae140": "110"}, FIELD, table) == "enterprise_pension"
    for fields, reason in [
        ({}, "missing_field"),
        ({"aae140": ""}, "missing_field"),
        ({"aae140": 110}, "bad_type"),
        ({"aae140": ["110"]}, "bad_type"),
        ({"aae140": "120"}, "unknown_code"),
    ]:
        with pytest.raises(RecordRejected) as caught:
            code(fields, FIELD, table)
        assert caught.value.reason == reason
    with pytest.raises(RecordRejected, match="is empty"):
        text({"aae140": " \t"}, FIELD)


def test_gb18030_four_byte_characters_survive_to_the_record(tmp_path: Path) -> None:
    header = ",".join(MAPPINGS["tax"].columns)
    row = (
        "0003244010600000125,445102198409268960,𠮷䶮,工资薪金所得,2026-10-01,2026-10-31,"
        "30245.00,757.35,,2026-11-15,14401060000,1,0"
    )
    path = tmp_path / "tax.csv"
    path.write_bytes(f"{header}\r\n{row}\r\n".encode("gb18030"))
    (record,) = SOURCES["tax"].read(path)
    assert record.fields is not None
    (converted,) = MAPPINGS["tax"].convert(record.fields, published_at=dt.datetime.now(dt.UTC), trace_id="t")
    assert converted.record["name"] == "𠮷䶮"


def test_identity_sample_without_its_bom_is_rejected_record_by_record(tmp_path: Path, samples: Path) -> None:
    path = tmp_path / "identity.csv"
    path.write_bytes((samples / "identity.csv").read_bytes().removeprefix(b"\xef\xbb\xbf"))
    records = list(SOURCES["identity"].read(path))
    assert len(records) == 19
    assert {record.problem.reason for record in records if record.problem} == {"missing_bom"}
