"""CsvSource: RFC 4180 records found on bytes, exact offsets, header and encoding rules."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.exceptions import HeaderError, ResumeError, SourceFileError
from connectors.mappings import SOURCES
from connectors.records import SourceRecord
from connectors.sources import CsvSource

COLUMNS = ("编号", "姓名", "地址")
BOM = codecs.BOM_UTF8


def write(tmp_path: Path, text: str, *, encoding: str = "utf-8", bom: bool = True) -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes((BOM if bom else b"") + text.encode(encoding))
    return path


def read(path: Path, start: int = 0, **options: object) -> list[SourceRecord]:
    source = CsvSource(COLUMNS, encoding=str(options.pop("encoding", "utf-8")), bom=True, **options)  # type: ignore[arg-type]
    return list(source.read(path, start))


def test_identity_and_tax_samples_read_without_problems(samples: Path) -> None:
    identity = list(SOURCES["identity"].read(samples / "identity.csv"))
    tax = list(SOURCES["tax"].read(samples / "tax.csv"))
    assert (len(identity), len(tax)) == (19, 80)
    assert all(record.problem is None for record in identity + tax)
    assert identity[0].position == f"line 2 (byte {identity[0].start})"
    assert tax[-1].end == (samples / "tax.csv").stat().st_size


def test_quoted_comma_doubled_quote_and_newline_make_one_record(tmp_path: Path) -> None:
    path = write(tmp_path, '编号,姓名,地址\r\n1,"何,䶮","大道""东""座\r\n二楼"\r\n2,𠮷涛,x\r\n')
    first, second = read(path)
    assert first.fields == {"编号": "1", "姓名": "何,䶮", "地址": '大道"东"座\r\n二楼'}
    assert (first.position, second.position) == (
        f"line 2 (byte {first.start})",
        f"line 4 (byte {second.start})",
    )
    assert second.fields == {"编号": "2", "姓名": "𠮷涛", "地址": "x"}


def test_lf_crlf_and_a_missing_final_line_break_are_all_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\n1,a,b\r\n2,c,d\n3,e,f")
    assert [record.fields["编号"] for record in read(path) if record.fields] == ["1", "2", "3"]


def test_blank_lines_are_skipped_but_offsets_stay_exact(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\r\n\r\n1,a,b\r\n\n")
    (record,) = read(path)
    assert record.original == b"1,a,b\r\n"
    assert path.read_bytes()[record.start : record.end] == record.original
    assert record.position == f"line 3 (byte {record.start})"


def test_wrong_number_of_fields_is_rejected_per_record(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\r\n1,a\r\n2,b,c,d\r\n3,c,d\r\n")
    short, long, good = read(path)
    assert short.problem is not None and short.problem.reason == "column_count"
    assert long.problem is not None and "4 fields" in long.problem.message
    assert short.fields is None and good.problem is None


def test_file_without_bom_has_every_record_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\r\n1,a,b\r\n2,c,d\r\n", bom=False)
    records = read(path)
    assert [record.problem.reason for record in records if record.problem] == ["missing_bom"] * 2
    assert "byte-order mark" in records[0].problem.message  # type: ignore[union-attr]


def test_gb18030_without_bom_requirement_reads_four_byte_characters(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\r\n1,𠮷涛,䶮路\r\n", encoding="gb18030", bom=False)
    assert "𠮷".encode("gb18030") != "𠮷".encode()  # four bytes in GB18030, as the test intends
    (record,) = CsvSource(COLUMNS, encoding="gb18030").read(path)
    assert record.fields == {"编号": "1", "姓名": "𠮷涛", "地址": "䶮路"}


@pytest.mark.parametrize(
    ("encoding", "bad"), [("utf-8", b"\xff\xfe"), ("utf-8", "何".encode("gb18030")), ("gb18030", b"\x80")]
)
def test_undecodable_record_is_rejected_alone(tmp_path: Path, encoding: str, bad: bytes) -> None:
    path = tmp_path / "export.csv"
    head = (BOM if encoding == "utf-8" else b"") + "编号,姓名,地址\r\n".encode(encoding)
    path.write_bytes(head + b"1," + bad + b",x\r\n" + "2,a,b\r\n".encode(encoding))
    broken, good = CsvSource(COLUMNS, encoding=encoding, bom=encoding == "utf-8").read(path)
    assert broken.problem is not None and broken.problem.reason == "bad_encoding"
    assert f"at byte {broken.start + 2}" in broken.problem.message
    assert good.fields is not None and good.fields["姓名"] == "a"


def test_unclosed_quote_is_rejected_and_cut_at_the_limit(tmp_path: Path) -> None:
    path = write(tmp_path, '编号,姓名,地址\r\n1,"a,b\r\n' + "2,c,d\r\n" * 50 + "3,e,f\r\n")
    records = read(path, max_record_bytes=100)
    assert records[0].problem is not None and records[0].problem.reason == "bad_quoting"
    assert records[0].end - records[0].start < 200
    assert records[-1].fields == {"编号": "3", "姓名": "e", "地址": "f"}


def test_a_quote_inside_an_unquoted_field_is_judged_with_its_record_alone(tmp_path: Path) -> None:
    # RFC 4180: only a quote beginning a field opens a quoted one. Counting quotes per line took this
    # one as an open field and joined every record after it into one rejected record.
    path = write(tmp_path, '编号,姓名,地址\r\n1,何,工业大道230"号\r\n' + "2,c,d\r\n" * 15 + '3,"e",f""g\r\n')
    records = read(path)
    assert [record.problem for record in records] == [None] * 17
    assert records[0].fields == {"编号": "1", "姓名": "何", "地址": '工业大道230"号'}
    assert records[-1].fields == {"编号": "3", "姓名": "e", "地址": 'f""g'}


def test_over_long_line_is_rejected_with_its_beginning(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\r\n1,a," + "x" * 500 + "\r\n2,b,c\r\n")
    big, good = read(path, max_record_bytes=64)
    assert big.problem is not None and big.problem.reason == "record_too_large"
    assert len(big.original) == 64 and big.end == good.start
    assert good.fields is not None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("编号,姓名", "missing 地址"),
        ("编号,姓名,地址,备注", "unexpected '备注'"),
        ("编号,地址,姓名", "different order"),
        ("编号,姓名,地址,地址", "repeated 地址"),
        ("编号 ,姓名,地址", "unexpected '编号 '"),
    ],
)
def test_header_must_be_exactly_the_columns(tmp_path: Path, header: str, expected: str) -> None:
    path = write(tmp_path, header + "\r\n1,a,b\r\n")
    with pytest.raises(HeaderError, match=expected):
        read(path)


def test_empty_file_and_undecodable_header_refuse_the_whole_file(tmp_path: Path) -> None:
    with pytest.raises(HeaderError, match="empty"):
        read(write(tmp_path, "", bom=False))
    with pytest.raises(HeaderError, match="not valid utf-8"):
        read(write(tmp_path, "编号,姓名,地址\r\n", encoding="gb18030"))


def test_missing_file_is_a_source_file_error(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match="cannot open"):
        read(tmp_path / "absent.csv")


def test_resume_checks_the_header_and_the_offset(tmp_path: Path) -> None:
    path = write(tmp_path, "编号,姓名,地址\r\n1,a,b\r\n")
    size = path.stat().st_size
    assert read(path, size) == []
    with pytest.raises(ResumeError, match="inside the header"):
        read(path, 5)
    with pytest.raises(ResumeError, match="not the start of a line"):
        read(path, size - 4)  # inside "1,a,b"
    # Before its line break: where a run ended when the file ended in "1,a,b" (its break came after).
    assert read(path, size - 2) == []
    with pytest.raises(ResumeError, match="past the end"):
        read(path, size + 1)
    path.write_bytes(BOM + "编号,姓名\r\n1,a,b\r\n".encode())
    with pytest.raises(HeaderError):
        read(path, size)


def test_resuming_from_every_end_yields_exactly_the_rest(samples: Path) -> None:
    for name, source in (("identity.csv", SOURCES["identity"]), ("tax.csv", SOURCES["tax"])):
        records = list(source.read(samples / name))
        for index, record in enumerate(records):
            assert list(source.read(samples / name, record.end)) == records[index + 1 :]


def rfc4180(row: tuple[str, ...]) -> str:
    """A row as RFC 4180 writes it; csv.writer of Python 3.11 leaves a lone CR unquoted."""
    return ",".join(
        '"' + field.replace('"', '""') + '"' if any(char in field for char in ',"\r\n') else field
        for field in row
    )


rows = st.lists(
    st.tuples(*[st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)] * 3),
    max_size=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, terminator=st.sampled_from(["\r\n", "\n"]), limit=st.sampled_from([64, 1 << 20]))
def test_any_rfc4180_file_round_trips_with_exact_offsets(
    tmp_path: Path, rows: list[tuple[str, str, str]], terminator: str, limit: int
) -> None:
    path = write(tmp_path, "".join(rfc4180(row) + terminator for row in [COLUMNS, *rows]))
    data = path.read_bytes()
    records = read(path, max_record_bytes=limit)
    if limit > len(data):  # no record can be too long: every row comes back as written
        assert [tuple(record.fields.values()) for record in records if record.fields] == rows
        assert all(record.problem is None for record in records)
    for index, record in enumerate(records):
        assert data[record.start : record.end] == record.original or record.problem is not None
        assert read(path, record.end, max_record_bytes=limit) == records[index + 1 :]


def test_a_file_being_written_is_read_up_to_its_last_whole_record_not_its_last_line_break(
    tmp_path: Path,
) -> None:
    # Following, reading stopped at the last line break: inside a quoted address, that cut a record in
    # two, dead-lettered as bad_quoting, the rest of it read as a record of its own.
    header = "编号,姓名,地址\r\n"
    path = write(tmp_path, header + '1,a,"广州市\r\n')
    source = CsvSource(COLUMNS, encoding="utf-8", bom=True)
    header_end = len(BOM + header.encode())
    assert source.whole_records_end(path, header_end, path.stat().st_size) == header_end
    with path.open("ab") as out:
        out.write('越秀区"\r\n2,b,c\r\n3,d'.encode())
    whole = len(BOM + (header + '1,a,"广州市\r\n越秀区"\r\n2,b,c\r\n').encode())
    assert source.whole_records_end(path, header_end, path.stat().st_size) == whole
    assert [record.fields for record in source.read(path, header_end, whole)] == [
        {"编号": "1", "姓名": "a", "地址": "广州市\r\n越秀区"},
        {"编号": "2", "姓名": "b", "地址": "c"},
    ]
    # A quote left open by mistake does not hold the rest back for ever: the record is cut at the
    # limit, as reading cuts it, and the records after it are whole.
    cut = CsvSource(COLUMNS, encoding="utf-8", bom=True, max_record_bytes=100)
    path = write(tmp_path, header + '1,"a,b\r\n' + "2,c,d\r\n" * 50)
    assert cut.whole_records_end(path, header_end, path.stat().st_size) == path.stat().st_size


def test_a_jsonl_file_being_written_is_read_up_to_its_last_line_break(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c"')
    assert SOURCES["social"].whole_records_end(path, 0, path.stat().st_size) == len(b'{"a": 1}\n{"b": 2}\n')
