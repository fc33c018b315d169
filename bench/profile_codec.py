"""The profile codec: what one subject's profile costs the processor per batch, and its size.

    python bench/profile_codec.py

The processor decodes a subject's stored profile (`AvroCodec.decode`, then `from_avro`) and encodes
the folded one (`to_avro`, then `AvroCodec.encode`) once per subject per batch. This times the four
steps on a working life of 0, 3 and 30 years (6 contribution lines and one tax payment a month, two
employers, a few revoked records), with pickle measured in the same run as the reference point.
As in `connectors/synth/social.py`, 人社 changes a month's lines together (one gxsj for the six); the
3-year profile is measured once more with every line changed at an instant of its own, the worst case.
Times are CPU time per call (best of five), so that other load on the machine does not inflate them.
"""

from __future__ import annotations

import datetime as dt
import pickle
import time
import timeit
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from exchange.profile import (
    IDENTITY,
    PROPERTY,
    SOCIAL,
    TAX,
    Contribution,
    Entry,
    Payment,
    Person,
    Profile,
    RecordRef,
    Title,
    from_avro,
    to_avro,
)
from exchange.serialization import AvroCodec

INSURANCE_TYPES = ("enterprise_pension", "unemployment", "medical", "injury", "maternity", "medical")
EMPLOYERS = (("9144011470K239T3E2", "广州餐饮有限公司"), ("91440117HDRJHTPQQ3", "广州市从化区物流有限公司"))


def _ref(dataset: str, record_id: str, offset: int, version: int = 1) -> RecordRef:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{dataset}/{record_id}/{version}"))
    return RecordRef(event_id, dataset, record_id, version, f"{dataset}.v1", 3, offset)


def _months(years: int) -> list[dt.date]:
    return [dt.date(2026 - years + index // 12, index % 12 + 1, 1) for index in range(years * 12)]


def _contributions(months: list[dt.date], apart: bool) -> dict[str, Entry[Contribution]]:
    entries: dict[str, Entry[Contribution]] = {}
    for number, month in enumerate(months):
        employer_id, employer_name = EMPLOYERS[number * 2 // len(months)]
        for line, insurance in enumerate(INSURANCE_TYPES):
            record_id = f"JF{month:%Y%m}{line:02d}{number:06d}"
            at = dt.datetime(month.year, month.month, 20, 9, tzinfo=dt.UTC)
            if apart:
                at += dt.timedelta(minutes=line, seconds=number % 60, milliseconds=123)
            status = "arrears" if number % 17 == 0 else "paid"
            data = Contribution(insurance, month, employer_id, employer_name, status, at)
            entries[record_id] = Entry(_ref(SOCIAL, record_id, 1000 + len(entries)), data)
    for record_id in list(entries)[5::97]:  # a few lines voided by 人社 (yxbz=0)
        entries[record_id] = Entry(_ref(SOCIAL, record_id, 9000, version=2), None)
    return entries


def _payments(months: list[dt.date]) -> dict[str, Entry[Payment]]:
    entries: dict[str, Entry[Payment]] = {}
    for number, month in enumerate(months):
        voucher = f"3442026{number:09d}"
        end = (month + dt.timedelta(days=31)).replace(day=1) - dt.timedelta(days=1)
        agent = None if number % 12 == 11 else EMPLOYERS[number * 2 // len(months)][0]
        tax = Decimal("-120.50") if number % 12 == 11 else Decimal(f"{300 + number}.25")
        data = Payment("wages", month, end, Decimal("12000.00"), tax, agent, end + dt.timedelta(days=15))
        entries[voucher] = Entry(_ref(TAX, voucher, 500 + number), data)
    return entries


def build_profile(years: int, apart: bool = False) -> Profile:
    """A subject's profile after `years` of work: contributions (each line changed at an instant of
    its own when `apart`), tax payments, a home, a household."""
    months = _months(years)
    person = Person(
        "440102195607099506",
        "刘秀英",
        "female",
        "01",
        dt.date(1956, 7, 9),
        "广州市江南大道145号",
        "440104",
        "normal",
    )
    title = Title(
        "粤(2020)广州市不动产权第0123456号",
        "440106042724487172GB06681913",
        Decimal("50.00"),
        "广州市某路157号102房",
        "440106",
        "residential",
        Decimal("89.37"),
        "current",
        True,
        False,
    )
    return Profile(
        subject_key="c2e8f0a6d1b94c7e8a3f5d2b1c0e9f87a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1",
        version=years * 12 * 7 + 3,
        persons={person.citizen_id: Entry(_ref(IDENTITY, person.citizen_id, 7), person)},
        payments=_payments(months),
        contributions=_contributions(months, apart),
        titles={"T1": Entry(_ref(PROPERTY, "T1", 11), title), "T0": Entry(_ref(PROPERTY, "T0", 12, 2), None)},
    )


def _seconds(function: Callable[[], Any]) -> float:
    """CPU seconds per call: best of five runs of as many calls as fill ~0.2 s."""
    timer = timeit.Timer(function, timer=time.process_time)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=5, number=number)) / number


def _row(label: str, seconds: float, size: int | None = None) -> str:
    bytes_column = f"{size:>9,d} B" if size is not None else ""
    return f"  {label:<28}{seconds * 1000:>9.3f} ms{bytes_column}"


def measure(codec: AvroCodec, years: int, apart: bool = False) -> None:
    """Print the four steps for one profile, their total, and pickle's round trip."""
    profile = build_profile(years, apart)
    now = dt.datetime.now(dt.UTC)

    def to_record() -> dict[str, Any]:
        return {**to_avro(profile), "updated_at": now, "latest_published_at": now}

    record = to_record()
    encoded = codec.encode("profile", record)
    decoded = codec.decode(encoded)[1]
    assert from_avro(decoded) == profile, "the profile does not survive the round trip"
    pickled = pickle.dumps(profile, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(pickled) == profile

    times = {
        "to_avro": _seconds(to_record),
        "AvroCodec.encode": _seconds(lambda: codec.encode("profile", record)),
        "AvroCodec.decode": _seconds(lambda: codec.decode(encoded)),
        "from_avro": _seconds(lambda: from_avro(decoded)),
    }
    sections = (profile.persons, profile.payments, profile.contributions, profile.titles)
    print(
        f"{years}-year profile{', lines changed apart' if apart else ''}: "
        f"{' + '.join(str(len(section)) for section in sections)} entries "
        "(persons + payments + contributions + titles)"
    )
    for label, seconds in times.items():
        print(_row(label, seconds, len(encoded) if label == "AvroCodec.encode" else None))
    print(_row("total (the processor's cost)", sum(times.values()), len(encoded)))
    dumps = _seconds(lambda: pickle.dumps(profile, protocol=pickle.HIGHEST_PROTOCOL))
    loads = _seconds(lambda: pickle.loads(pickled))
    print(_row("pickle dumps + loads (ref.)", dumps + loads, len(pickled)))


def main() -> None:
    """Measure a newcomer's profile (a household, a home), then the 3-year and the 30-year one."""
    codec = AvroCodec()
    measure(codec, 0)
    measure(codec, 3)
    measure(codec, 3, apart=True)
    measure(codec, 30)


if __name__ == "__main__":
    main()
