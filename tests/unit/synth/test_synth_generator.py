"""`generate`: deterministic bytes, the departments' formats, expected.json in the samples' shape,
decisions of every kind, and bad rows that are all caught and change no fact."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.synth import Summary, generate
from connectors.synth.exceptions import SynthError
from connectors.synth.exports import read_exports
from connectors.synth.reference import ITEMS, compute

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"
PEOPLE = 200
SEED = 20261115
BAD_RATE = 0.05
FILES = ("identity.csv", "tax.csv", "social.jsonl", "property.sql", "property_update.sql", "expected.json")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Summary]:
    out = tmp_path_factory.mktemp("synth")
    return out, generate(PEOPLE, SEED, out, bad_rate=BAD_RATE)


@pytest.fixture(scope="module")
def expected(generated: tuple[Path, Summary]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((generated[0] / "expected.json").read_text(encoding="utf-8"))
    return loaded


@pytest.fixture(scope="module")
def sample_expected() -> dict[str, object]:
    loaded: dict[str, object] = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
    return loaded


def test_the_same_seed_gives_the_same_bytes(generated: tuple[Path, Summary], tmp_path: Path) -> None:
    # another process with another hash seed: no output may depend on set or dict hashing
    code = (
        "import sys; from pathlib import Path; from connectors.synth import generate; "
        f"generate({PEOPLE}, {SEED}, Path(sys.argv[1]), bad_rate={BAD_RATE})"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, env=env)
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (generated[0] / name).read_bytes(), name


def test_another_seed_gives_other_people(generated: tuple[Path, Summary], tmp_path: Path) -> None:
    generate(20, SEED + 1, tmp_path)
    assert (tmp_path / "identity.csv").read_bytes() != (generated[0] / "identity.csv").read_bytes()


def test_every_person_is_a_subject(generated: tuple[Path, Summary], expected: dict[str, object]) -> None:
    summary = generated[1]
    assert summary.people == summary.subjects == PEOPLE
    assert isinstance(expected["subjects"], dict)
    assert len(expected["subjects"]) == PEOPLE


def test_identity_is_utf8_with_bom_crlf_and_the_sample_header(generated: tuple[Path, Summary]) -> None:
    data = (generated[0] / "identity.csv").read_bytes()
    sample = (SAMPLES / "identity.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.split(b"\r\n", 1)[0] == sample.split(b"\r\n", 1)[0]
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")
    assert b'""' in data  # an address with quotes, RFC 4180 escaped


def test_tax_is_gb18030_with_four_byte_characters(generated: tuple[Path, Summary]) -> None:
    data = (generated[0] / "tax.csv").read_bytes()
    sample = (SAMPLES / "tax.csv").read_bytes()
    text = data.decode("gb18030")
    assert not data.startswith(b"\xef\xbb\xbf")
    assert data.split(b"\r\n", 1)[0] == sample.split(b"\r\n", 1)[0]
    assert any(len(char.encode("gb18030")) == 4 for char in text)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")


def test_social_lines_are_json_except_the_deliberately_broken(generated: tuple[Path, Summary]) -> None:
    out, summary = generated
    broken = 0
    for line in (out / "social.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            assert isinstance(json.loads(line), dict)
        except json.JSONDecodeError:
            broken += 1
    assert broken == summary.bad_row_kinds["social.unparseable_json"] > 0


def test_property_sql_has_the_sample_shape(generated: tuple[Path, Summary]) -> None:
    out = generated[0]
    lines = (out / "property.sql").read_text(encoding="utf-8").splitlines()
    sample = (SAMPLES / "property.sql").read_text(encoding="utf-8").splitlines()
    assert lines[0] == sample[0]
    assert all(line.startswith(sample[1][: sample[1].index("VALUES")]) for line in lines[1:])
    updates = (out / "property_update.sql").read_text(encoding="utf-8").splitlines()
    assert updates and all(line.startswith("UPDATE bdc_djb SET bdcdyh = ") for line in updates)


def test_expected_json_has_the_shape_of_the_samples(
    expected: dict[str, object], sample_expected: dict[str, object]
) -> None:
    assert expected.keys() == sample_expected.keys()
    for part in ("bad_rows", "counts"):
        assert _dict(expected[part]).keys() == _dict(sample_expected[part]).keys()
    sample_facts = next(iter(_dict(sample_expected["subjects"]).values()))
    for facts in _dict(expected["subjects"]).values():
        assert _dict(facts).keys() == _dict(sample_facts).keys()
    assert _dict(expected["decisions"]).keys() == _dict(expected["subjects"]).keys()
    for decision in _dict(expected["decisions"]).values():
        assert sorted(_dict(decision)) == sorted(ITEMS)


def test_expected_json_is_laid_out_like_the_samples(generated: tuple[Path, Summary]) -> None:
    # the sample is json.dumps(indent=1) with sorted keys; subjects here keep generation order
    text = (generated[0] / "expected.json").read_text(encoding="utf-8")
    assert json.dumps(json.loads(text), indent=1) == text


def test_decisions_approve_reject_and_refer_every_item(expected: dict[str, object]) -> None:
    verdicts: dict[str, set[object]] = {item: set() for item in ITEMS}
    for decision in _dict(expected["decisions"]).values():
        for item, verdict in _dict(decision).items():
            verdicts[item].add(verdict)
    assert all(found == {"approved", "rejected", "manual_review"} for found in verdicts.values()), verdicts


def test_people_without_identity_go_to_manual_review(expected: dict[str, object]) -> None:
    subjects, decisions = _dict(expected["subjects"]), _dict(expected["decisions"])
    unknown = [subject for subject, facts in subjects.items() if _dict(facts)["identity.status"] == "unknown"]
    assert unknown
    for subject in unknown:
        assert set(_dict(decisions[subject]).values()) == {"manual_review"}
        assert _dict(subjects[subject])["identity.district"] is None


def test_bad_rows_are_counted_caught_and_change_no_fact(
    generated: tuple[Path, Summary], expected: dict[str, object]
) -> None:
    out, summary = generated
    contents = read_exports(out)
    rejected = {department: len(reasons) for department, reasons in contents.rejected.items()}
    assert rejected == expected["bad_rows"] == summary.bad_rows
    assert all(count > 0 for count in rejected.values())
    again = compute(contents.rows, dt.date.fromisoformat(str(expected["reference_date"])))
    assert again.subjects == expected["subjects"]
    assert again.decisions == expected["decisions"]


def test_counts_are_the_rows_written(generated: tuple[Path, Summary], expected: dict[str, object]) -> None:
    out = generated[0]
    lines = {name: (out / name).read_bytes().count(b"\n") for name in FILES}
    assert expected["counts"] == {
        "identity": lines["identity.csv"] - 1,
        "tax": lines["tax.csv"] - 1,
        "social": lines["social.jsonl"],
        "property_rows_first": lines["property.sql"] - 1,
        "property_updates": lines["property_update.sql"],
    }


def test_every_bad_row_kind_is_written(generated: tuple[Path, Summary]) -> None:
    kinds = generated[1].bad_row_kinds
    assert len(kinds) >= 30
    assert all(count > 0 for count in kinds.values())


def test_no_bad_rows_without_a_rate(tmp_path: Path) -> None:
    summary = generate(30, SEED, tmp_path)
    assert summary.bad_rows == {"identity": 0, "tax": 0, "social": 0, "property": 0}
    assert all(not reasons for reasons in read_exports(tmp_path).rejected.values())


@pytest.mark.parametrize(("people", "rate"), [(0, 0.0), (10, -0.1), (10, 1.5)])
def test_arguments_out_of_range_are_refused(tmp_path: Path, people: int, rate: float) -> None:
    with pytest.raises(SynthError):
        generate(people, SEED, tmp_path, bad_rate=rate)


def _dict(value: object) -> dict[str, object]:
    assert isinstance(value, dict)
    return value
