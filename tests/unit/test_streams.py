"""The processor's batch fold, in-process: coalescing per subject, idempotence, the profile cache."""

from __future__ import annotations

import dataclasses
from typing import Any

import canonical

from exchange import profile as aggregate
from exchange.serialization import AvroCodec
from exchange.streams import BatchFolder, ProfileCache

CODEC = AvroCodec()


@dataclasses.dataclass
class _Message:
    topic: str
    partition: int
    offset: int


@dataclasses.dataclass
class _Event:
    """What faust hands the agent: key, value and the message's position."""

    key: bytes
    value: bytes
    message: _Message


def _events(key: bytes, records: list[dict[str, Any]], start: int = 0) -> list[_Event]:
    return [
        _Event(key, CODEC.encode(record["envelope"]["dataset"], record), _Message("t", 0, start + i))
        for i, record in enumerate(records)
    ]


def _stored(table: dict[bytes, bytes], key: bytes) -> aggregate.Profile:
    return aggregate.from_avro(CODEC.decode(table[key])[1])


def test_a_batch_emits_one_profile_per_changed_subject() -> None:
    table: dict[bytes, bytes] = {}
    batch = [
        *_events(b"a", [canonical.person("440102195607099506"), canonical.contribution("L1", "2026-01")]),
        *_events(b"b", [canonical.contribution("L2", "2026-02")], start=10),
        *_events(b"a", [canonical.contribution("L3", "2026-02")], start=20),
    ]
    emitted = BatchFolder(CODEC).fold(batch, table)  # type: ignore[arg-type]
    assert [key for key, _ in emitted] == [b"a", b"b"]
    assert dict(emitted) == table
    assert len(_stored(table, b"a").contributions) == 2
    assert _stored(table, b"b").version == 1


def test_replaying_a_batch_changes_nothing_and_emits_nothing() -> None:
    table: dict[bytes, bytes] = {}
    folder = BatchFolder(CODEC)
    batch = _events(b"a", [canonical.contribution("L1", "2026-01"), canonical.contribution("L2", "2026-02")])
    folder.fold(batch, table)  # type: ignore[arg-type]
    before = dict(table)
    # A fresh folder has no cache: the replay decodes the stored profile, as after a restart.
    assert BatchFolder(CODEC).fold(batch, table) == []  # type: ignore[arg-type]
    assert table == before


def test_the_fold_across_batches_equals_the_fold_of_all_events_at_once() -> None:
    records = [canonical.contribution(f"L{i}", f"2025-{i:02d}") for i in range(1, 13)]
    events = _events(b"a", records)
    split: dict[bytes, bytes] = {}
    folder = BatchFolder(CODEC)
    for start in range(0, 12, 5):
        folder.fold(events[start : start + 5], split)  # type: ignore[arg-type]
    whole: dict[bytes, bytes] = {}
    BatchFolder(CODEC).fold(events, whole)  # type: ignore[arg-type]
    assert _stored(split, b"a").contributions == _stored(whole, b"a").contributions


def test_the_cache_is_used_only_for_the_bytes_it_was_decoded_from() -> None:
    cache = ProfileCache(capacity=1)
    profile = aggregate.empty_profile("a")
    cache.put(b"a", b"v1", profile)
    assert cache.get(b"a", b"v1") is profile
    assert cache.get(b"a", b"v2") is None
    cache.put(b"b", b"v1", profile)
    assert cache.get(b"a", b"v1") is None  # evicted: capacity 1
