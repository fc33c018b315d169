"""JsonlSource: one JSON object per line, exact offsets, unparseable lines rejected alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.exceptions import ResumeError
from connectors.mappings import SOURCES
from connectors.records import SourceRecord
from connectors.sources import JsonlSource


def read(path: Path, start: int = 0, limit: int = 1 << 20) -> list[SourceRecord]:
    return list(JsonlSource(max_record_bytes=limit).read(path, start))


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "export.jsonl"
    path.write_bytes(data)
    return path


def test_social_sample_reads_842_objects(samples: Path) -> None:
    records = list(SOURCES["social"].read(samples / "social.jsonl"))
    assert len(records) == 842 and all(record.problem is None for record in records)
    assert records[0].fields is not None and records[0].fields["aae180"] == 1817500


def test_objects_keep_their_json_types_and_offsets(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"a": 1, "b": "x"}\r\n\n   \n{"c": [1]}')
    first, second = read(path)
    assert first.fields == {"a": 1, "b": "x"} and second.fields == {"c": [1]}
    assert (first.position, second.position) == ("line 1 (byte 0)", f"line 4 (byte {second.start})")
    assert path.read_bytes()[second.start : second.end] == second.original == b'{"c": [1]}'


def test_a_surrogate_pair_written_as_escapes_is_one_character(tmp_path: Path) -> None:
    (record,) = read(write(tmp_path, b'{"a": "\\ud83d\\ude00"}\n'))
    assert record.problem is None and record.fields == {"a": "\U0001f600"}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b'{"a": "\xff"}', "not valid UTF-8"),
        (b'{"a": 1', "not a JSON object"),
        (b"[1, 2]", "it is an array"),
        (b'"text"', "it is a string"),
        (b"3", "it is a number"),
        (b"null", "it is null"),
        (b'{"a": 1, "a": 2}', "key a appears more than once"),
        (b'{"a": NaN}', "NaN is not a JSON number"),
        ('\ufeff{"a": 1}'.encode(), "not a JSON object"),
        ('{"a": 1}'.encode("utf-16"), "not valid UTF-8"),
        (b'{"a": "\\ud800"}', "half of a character"),
        (b'{"a": {"b": "x\\udc00y"}}', "half of a character"),
        (b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    ],
)
def test_a_line_that_is_not_a_json_object_is_unparseable(tmp_path: Path, line: bytes, says: str) -> None:
    path = write(tmp_path, line + b'\n{"ok": true}\n')
    bad, good = read(path)
    # Bytes that are not UTF-8 are bad_encoding, as in a CSV export: one reason for one fault.
    reason = "bad_encoding" if says == "not valid UTF-8" else "unparseable"
    assert bad.problem is not None and bad.problem.reason == reason and says in bad.problem.message
    assert bad.fields is None and bad.original == line + b"\n"
    assert good.fields == {"ok": True}


def test_over_long_line_is_rejected_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"a": "' + b"x" * 300 + b'"}\n{"b": 1}\n')
    big, good = read(path, limit=50)
    assert big.problem is not None and big.problem.reason == "record_too_large"
    assert big.end == good.start and good.fields == {"b": 1}


def test_resume_offset_must_start_a_line(tmp_path: Path) -> None:
    path = write(tmp_path, b'{"a": 1}\n{"b": 2}\n')
    assert [record.fields for record in read(path, 9)] == [{"b": 2}]
    assert read(path, 18) == []
    with pytest.raises(ResumeError):
        read(path, 4)
    with pytest.raises(ResumeError):
        read(path, 19)


def test_resuming_the_sample_from_every_end_yields_exactly_the_rest(samples: Path) -> None:
    records = list(SOURCES["social"].read(samples / "social.jsonl"))
    for index in range(0, len(records), 37):
        assert (
            list(SOURCES["social"].read(samples / "social.jsonl", records[index].end)) == records[index + 1 :]
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(objects=st.lists(st.dictionaries(st.text(max_size=4), json_values, max_size=4), max_size=6))
def test_any_objects_round_trip(tmp_path: Path, objects: list[dict[str, object]]) -> None:
    path = write(tmp_path, b"".join(json.dumps(obj, ensure_ascii=False).encode() + b"\n" for obj in objects))
    records = read(path)
    assert [record.fields for record in records] == objects
    for index, record in enumerate(records):
        assert read(path, record.end) == records[index + 1 :]
