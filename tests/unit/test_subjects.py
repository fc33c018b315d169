"""Citizen ID and 统一社会信用代码 rules exactly as DEPARTMENTS.md defines validity."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.exceptions import InvalidIdentifierError
from exchange.local_time import today
from exchange.subjects import (
    USCC_ALPHABET,
    citizen_id_check_character,
    normalise_citizen_id,
    normalise_uscc,
    subject_key,
    uscc_check_character,
)

places = st.text(alphabet="0123456789", min_size=6, max_size=6)
# Up to today (Asia/Shanghai, as the rules read it): an ID born later is invalid for its birth date, and
# a fixed bound of 2026-12-31 drew such births once the calendar reached it.
births = st.dates(min_value=dt.date(1900, 1, 1), max_value=today())
sequences = st.text(alphabet="0123456789", min_size=3, max_size=3)


def make_id(place: str, born: dt.date, sequence: str) -> str:
    body = f"{place}{born:%Y%m%d}{sequence}"
    return body + citizen_id_check_character(body)


@given(places, births, sequences)
def test_any_place_code_with_a_right_check_character_is_valid(place: str, born: dt.date, seq: str) -> None:
    citizen_id = make_id(place, born, seq)
    assert normalise_citizen_id(citizen_id) == citizen_id
    assert normalise_citizen_id(citizen_id.lower()) == citizen_id


@given(places, births, sequences, st.sampled_from("0123456789X"))
def test_any_other_check_character_is_rejected(place: str, born: dt.date, seq: str, check: str) -> None:
    citizen_id = make_id(place, born, seq)
    if check == citizen_id[-1]:
        return
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_citizen_id(citizen_id[:17] + check)
    assert raised.value.reason == "id_check_character"


@pytest.mark.parametrize("place", ["440102", "440107", "440181", "440184", "440113", "440118", "445102"])
def test_abolished_and_new_guangzhou_codes_are_valid(place: str) -> None:
    citizen_id = make_id(place, dt.date(1970, 1, 1), "123")
    assert normalise_citizen_id(citizen_id) == citizen_id


def test_lower_case_x_is_accepted_and_normalised() -> None:
    assert normalise_citizen_id("44010220011028323x") == "44010220011028323X"


@pytest.mark.parametrize(
    "written", ["44010220011028323X ", " 44010220011028323X", "44010220011028323X\u3000"]
)
def test_an_id_with_a_space_around_it_is_19_characters_not_trimmed(written: str) -> None:
    # "18 characters": a space around them was trimmed away, so a padded ID passed unnoticed.
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_citizen_id(written)
    assert raised.value.reason == "id_length"


def test_a_uscc_is_counted_as_written_not_as_upper_cased() -> None:
    # The 17 characters "9135010000000ﬀ003" upper-case to the valid 18 of "9135010000000FF003".
    assert normalise_uscc("9135010000000FF003") == "9135010000000FF003"
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_uscc("9135010000000\ufb00003")
    assert raised.value.reason == "uscc_length"
    # 18 as written, 19 upper-cased: it came out 19 characters long.
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_uscc("\ufb001440101MA59XXXXF0")
    assert raised.value.reason == "uscc_characters"


def test_an_id_born_after_today_is_refused() -> None:
    tomorrow = today() + dt.timedelta(days=1)
    body = f"440106{tomorrow:%Y%m%d}123"
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_citizen_id(body + citizen_id_check_character(body))
    assert raised.value.reason == "id_birth_date"
    born_today = f"440106{today():%Y%m%d}123"
    assert normalise_citizen_id(born_today + citizen_id_check_character(born_today))


def test_a_uscc_with_a_space_around_it_is_refused() -> None:
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_uscc("91440101MA59TEST0X ")
    assert raised.value.reason == "uscc_length"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("4401022001102832", "id_length"),
        ("4401022001102832300", "id_length"),
        ("44010220011028323Y", "id_characters"),
        ("44010220011O28323X", "id_characters"),
        ("44010220011328323X", "id_birth_date"),
        ("440102200102303236", "id_birth_date"),
        ("440102200110283231", "id_check_character"),
    ],
)
def test_invalid_ids_name_their_reason(value: str, reason: str) -> None:
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_citizen_id(value)
    assert raised.value.reason == reason


usccs = st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17)


@given(usccs)
def test_uscc_with_its_check_character_is_valid(body: str) -> None:
    code = body + uscc_check_character(body)
    assert normalise_uscc(code.lower()) == code


@given(usccs, st.sampled_from(USCC_ALPHABET))
def test_uscc_with_another_check_character_is_rejected(body: str, check: str) -> None:
    if check == uscc_check_character(body):
        return
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_uscc(body + check)
    assert raised.value.reason == "uscc_check_character"


@pytest.mark.parametrize("code", ["91440104AGYGLUY3WM", "91440117HDRJHTPQQ3", "9144011470K239T3E2"])
def test_sample_employers_are_valid(code: str) -> None:
    assert normalise_uscc(code) == code


def test_uscc_letters_outside_the_alphabet_are_rejected() -> None:
    with pytest.raises(InvalidIdentifierError) as raised:
        normalise_uscc("91440104AGYGLUI3WM")
    assert raised.value.reason == "uscc_characters"


def test_subject_key_is_keyed_hmac_and_hides_the_id() -> None:
    key = subject_key("44010220011028323X", b"secret-a")
    assert len(key) == 64 and "44010220011028323X" not in key
    assert key == subject_key("44010220011028323X", b"secret-a")
    assert key != subject_key("44010220011028323X", b"secret-b")
