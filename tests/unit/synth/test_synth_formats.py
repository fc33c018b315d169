"""The small pieces the generator and the reference reader stand on: IDs, the registry's SQL, the
social line writer, the format rules."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.synth.codes import BIRTH_PLACES
from connectors.synth.exceptions import ExportFormatError
from connectors.synth.identifiers import CitizenIds, wrong_check_character, wrong_uscc
from connectors.synth.sql import insert_statement, parse_statements, update_statement
from connectors.synth.validation import citizen_id_problem, property_problem, uscc_problem
from connectors.synth.writers import social_line

ROW = {
    "bdcqzh": "粤(2021)广州市不动产权第0000001号",
    "bdcdyh": "440106042724487172GB06681913",
    "qlr": "440111199905129974:50;440305195801127355:50",
    "zl": "广州市某路1号'东'座, 2302房",
    "xzqdm": "440106",
    "yt": "住宅",
    "mj": "134.70",
    "djsj": "2007-05-04 10:00:00",
    "qszt": "1",
    "dyzt": "0",
    "cfzt": "0",
    "bbh": "1",
    "gxsj": "2007-05-10 10:00:00",
}


@given(st.lists(st.tuples(st.sampled_from(BIRTH_PLACES), st.integers(0, 40), st.booleans()), max_size=300))
def test_citizen_ids_are_valid_and_never_repeat(draws: list[tuple[str, int, bool]]) -> None:
    ids = CitizenIds(dt.date(2000, 1, 1), dt.date(2000, 2, 10))
    made = [
        ids.allocate(place, dt.date(2000, 1, 1) + dt.timedelta(days=day), male) for place, day, male in draws
    ]
    assert len(set(made)) == len(made)
    for citizen_id, (_, _, male) in zip(made, draws, strict=True):
        assert citizen_id_problem(citizen_id) is None
        assert int(citizen_id[16]) % 2 == male
        assert citizen_id_problem(wrong_check_character(citizen_id)) == "id_check_character"


def test_a_full_day_spills_to_the_next() -> None:
    ids = CitizenIds(dt.date(2000, 1, 1), dt.date(2000, 1, 2))
    made = {ids.allocate("440103", dt.date(2000, 1, 1), True) for _ in range(501)}
    assert len(made) == 501
    assert sum(citizen_id[6:14] == "20000102" for citizen_id in made) == 1


def test_a_wrong_uscc_check_character_is_caught() -> None:
    assert uscc_problem("9144011470K239T3E2") is None
    assert uscc_problem(wrong_uscc("9144011470K239T3E2")) == "uscc_check_character"


def test_sql_round_trips_quotes_and_commas() -> None:
    text = insert_statement(ROW) + update_statement({**ROW, "dyzt": "1", "bbh": "2"})
    insert, update = parse_statements(text)
    assert (insert.kind, insert.values) == ("insert", ROW)
    assert update.kind == "update"
    assert update.values == {**ROW, "dyzt": "1", "bbh": "2"}
    assert property_problem(insert.values) is None


def test_sql_of_another_shape_is_refused() -> None:
    with pytest.raises(ExportFormatError):
        list(parse_statements("DELETE FROM bdc_djb;"))


def test_the_fast_social_line_is_what_json_dumps_writes() -> None:
    line: dict[str, str | int] = {
        "jfmxid": "JF000000001",
        "aac002": "44010220011028323x",
        "aac003": "何䶮𠮷",
        "aae140": "110",
        "aae002": "202610",
        "aab998": "9144011470K239T3E2",
        "aab004": "广州餐饮有限公司",
        "aae180": 1817500,
        "dwjfje": 254450,
        "grjfje": 145400,
        "aae078": "1",
        "yxbz": "1",
        "bbh": 1,
        "gxsj": "2026-10-20 09:00:00",
    }
    assert social_line(line) == json.dumps(line, ensure_ascii=False)
