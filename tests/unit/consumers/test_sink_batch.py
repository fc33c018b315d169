"""Decoding polled records into a batch: rows per partition, next offsets, and poison records stopping it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from sink_records import PUBLISHED, contribution, payment, profile

from consumers.exceptions import UndecodableRecordError
from consumers.sink import tables
from consumers.sink.batch import Batch, Decoder
from exchange.profile import ProfileFormError
from exchange.serialization import AvroCodec
from exchange.settings import KafkaSettings

KAFKA = KafkaSettings(topic_prefix="t.")
SOCIAL = TopicPartition("t.social.contribution.v1", 1)
TAX = TopicPartition("t.tax.payment.v1", 0)
PROFILES = TopicPartition("t.exchange.profile.v1", 1)
KEY = "b" * 64
codec = AvroCodec()


def message(
    partition: TopicPartition, offset: int, value: bytes | None, key: bytes | None = KEY.encode()
) -> Any:
    return ConsumerRecord(
        partition.topic, partition.partition, -1, offset, 1_780_000_000_000, 0, key, value, [], None, 64, 0, 0
    )


def test_records_become_rows_per_partition_with_their_lineage() -> None:
    batch = Batch()
    decoder = Decoder(KAFKA, codec)
    lines = [contribution(f"L-{n}") for n in range(3)]
    decoder.add(
        batch,
        SOCIAL,
        [message(SOCIAL, 10 + n, codec.encode("social.contribution", r)) for n, r in enumerate(lines)],
    )
    decoder.add(batch, TAX, [message(TAX, 0, codec.encode("tax.payment", payment()))])
    assert batch.size == 4 and batch.next_offsets == {SOCIAL: 13, TAX: 1}
    table, rows = batch.records[SOCIAL]
    assert table is tables.SOCIAL_CONTRIBUTION
    assert [row[:4] for row in rows] == [(KEY, SOCIAL.topic, 1, 10 + n) for n in range(3)]
    assert rows == [
        tables.SOCIAL_CONTRIBUTION.row(r, (KEY, SOCIAL.topic, 1, 10 + n)) for n, r in enumerate(lines)
    ]
    assert dict(batch.published_at()) == {
        "social_contribution_records": {PUBLISHED: 3},
        "tax_payment_records": {PUBLISHED: 1},
    }


def test_profiles_are_staged_with_their_position() -> None:
    batch = Batch()
    updated = dt.datetime(2026, 3, 5, tzinfo=dt.UTC)
    record = profile(KEY, [contribution()], updated)
    Decoder(KAFKA, codec).add(batch, PROFILES, [message(PROFILES, 5, codec.encode("profile", record))])
    [row] = batch.profile_rows()
    assert (row[0], row[1], row[3:]) == (KEY, 1, (PROFILES.topic, 1, 5))
    assert f'"updated_at":"{updated.isoformat()}"' in row[2]  # the processor's time, in the document
    assert dict(batch.published_at()) == {"profiles": {PUBLISHED: 1}}


def test_dropping_a_partition_forgets_its_rows() -> None:
    batch = Batch()
    decoder = Decoder(KAFKA, codec)
    decoder.add(batch, SOCIAL, [message(SOCIAL, 0, codec.encode("social.contribution", contribution()))])
    decoder.add(batch, TAX, [message(TAX, 7, codec.encode("tax.payment", payment()))])
    batch.drop({SOCIAL, TopicPartition("t.tax.payment.v1", 3)})
    assert batch.size == 1 and batch.next_offsets == {TAX: 8}
    assert [table.name for table, _ in batch.tables()] == ["tax_payment_records"]
    batch.drop({TAX})
    assert not batch and batch.size == 0


@pytest.mark.parametrize(
    ("value", "key", "reason"),
    [
        (b"\x00\x01garbage", KEY.encode(), "the C3 01 marker is missing"),
        (
            codec.encode("tax.payment", payment()),
            KEY.encode(),
            "a tax.payment record, where social.contribution",
        ),
        (
            codec.encode("social.contribution", contribution())[:-3],
            KEY.encode(),
            "corrupt social.contribution",
        ),
        (codec.encode("social.contribution", contribution()), None, "no key"),
        (None, KEY.encode(), "no value"),
    ],
)
def test_a_poison_record_stops_the_batch_naming_its_position(
    value: bytes | None, key: bytes | None, reason: str
) -> None:
    good = message(SOCIAL, 41, codec.encode("social.contribution", contribution()))
    with pytest.raises(UndecodableRecordError, match=reason) as raised:
        Decoder(KAFKA, codec).add(Batch(), SOCIAL, [good, message(SOCIAL, 42, value, key)])
    assert (raised.value.topic, raised.value.partition, raised.value.offset) == (SOCIAL.topic, 1, 42)
    assert "t.social.contribution.v1 partition 1 offset 42" in str(raised.value)
    assert "next_offset" in str(raised.value) and "43" in str(raised.value)


def test_a_profile_under_another_subjects_key_is_poison() -> None:
    record = profile("c" * 64, [contribution()], dt.datetime(2026, 3, 5, tzinfo=dt.UTC))
    with pytest.raises(UndecodableRecordError, match="subject_key is not its Kafka key"):
        Decoder(KAFKA, codec).add(Batch(), PROFILES, [message(PROFILES, 0, codec.encode("profile", record))])


def test_a_profile_whose_columns_do_not_fit_together_is_poison(monkeypatch: pytest.MonkeyPatch) -> None:
    def inconsistent(*args: Any) -> None:
        raise ProfileFormError("profile record k is inconsistent: unpack requires a buffer of 4 bytes")

    monkeypatch.setattr("consumers.sink.batch.profile_row", inconsistent)
    record = profile(KEY, [contribution()], dt.datetime(2026, 3, 5, tzinfo=dt.UTC))
    with pytest.raises(UndecodableRecordError, match="inconsistent") as raised:
        Decoder(KAFKA, codec).add(Batch(), PROFILES, [message(PROFILES, 9, codec.encode("profile", record))])
    assert raised.value.offset == 9
