"""The ledger and profile codecs: what one subject costs the processor per batch, and the sizes.

    python bench/profile_codec.py

The processor decodes a subject's stored ledger (`AvroCodec.decode`, then `ledger_from_avro`) and
encodes the folded one (`ledger_to_avro`, then `AvroCodec.encode`) once per subject per batch, then
derives and encodes the profile it publishes (`tax_of`, `social_of`, `profile_record`,
`AvroCodec.encode`). This
times those steps on a working life of 0, 3 and 30 years (6 contribution lines and one tax payment a
month, two employers, a few revoked records), with pickle measured in the same run as the reference
point.
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
    Ledger,
    Payment,
    Person,
    Profile,
    RecordRef,
    Title,
    from_avro,
    ledger_from_avro,
    ledger_to_avro,
    profile_of,
    social_of,
    tax_of,
)
from exchange.profile_avro import profile_record
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
    """The profile of `build_ledger(years, apart)`."""
    return profile_of(build_ledger(years, apart))


def build_ledger(years: int, apart: bool = False) -> Ledger:
    """A subject's ledger after `years` of work: contributions (each line changed at an instant of
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
    return Ledger(
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
    """Print the steps for one subject, their total, and pickle's round trip of the ledger."""
    ledger = build_ledger(years, apart)
    now = dt.datetime.now(dt.UTC)
    record = ledger_to_avro(ledger)
    encoded = codec.encode("ledger", record)
    decoded = codec.decode(encoded)[1]
    assert ledger_from_avro(decoded) == ledger, "the ledger does not survive the round trip"
    pickled = pickle.dumps(ledger, protocol=pickle.HIGHEST_PROTOCOL)
    assert pickle.loads(pickled) == ledger

    def published() -> dict[str, Any]:
        tax, social = tax_of(ledger.payments), social_of(ledger.contributions)
        return {**profile_record(record, tax, social), "updated_at": now, "latest_published_at": now}

    profile = published()
    profile_bytes = codec.encode("profile", profile)
    assert from_avro(codec.decode(profile_bytes)[1]) == profile_of(ledger)

    times = {
        "ledger_to_avro": _seconds(lambda: ledger_to_avro(ledger)),
        "AvroCodec.encode ledger": _seconds(lambda: codec.encode("ledger", record)),
        "AvroCodec.decode ledger": _seconds(lambda: codec.decode(encoded)),
        "ledger_from_avro": _seconds(lambda: ledger_from_avro(decoded)),
        "tax_of, social_of, record": _seconds(published),
        "AvroCodec.encode profile": _seconds(lambda: codec.encode("profile", profile)),
    }
    sizes = {"AvroCodec.encode ledger": len(encoded), "AvroCodec.encode profile": len(profile_bytes)}
    sections = (ledger.persons, ledger.payments, ledger.contributions, ledger.titles)
    print(
        f"{years}-year ledger{', lines changed apart' if apart else ''}: "
        f"{' + '.join(str(len(section)) for section in sections)} entries "
        "(persons + payments + contributions + titles)"
    )
    for label, seconds in times.items():
        print(_row(label, seconds, sizes.get(label)))
    print(_row("total (the processor's cost)", sum(times.values())))
    dumps = _seconds(lambda: pickle.dumps(ledger, protocol=pickle.HIGHEST_PROTOCOL))
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
