"""A source record corrected to another person: whatever order its versions arrive in, only the person
the highest version names keeps it, and every revoke is of the right record, for the right person."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.exceptions import ConnectorError
from connectors.mappings.base import event_id
from connectors.moves import Sent, revoke_record, revokes
from connectors.records import Converted
from connectors.sent import SentStore

A, B, C = "440103198403037020", "440102195607099506", "11010519491231002X"
# (subject, version, voided) of one voucher; versions are distinct, as a department numbers them.
Version = tuple[str, int, bool]


def _folded(arrivals: list[Version]) -> dict[str, bool]:
    """Per subject, whether its profile counts the voucher once every record and revoke is folded: the
    highest version it got wins, a revoke over an upsert of the same version (exchange.profile)."""
    sent: Sent = {}
    got: dict[str, list[tuple[int, bool]]] = {}
    for subject, version, voided in arrivals:
        got.setdefault(subject, []).append((version, voided))
        for other, at in revokes(sent, subject, version):
            got.setdefault(other, []).append((at, True))
    return {subject: not max(events)[1] for subject, events in got.items()}


@given(
    st.tuples(
        st.lists(st.tuples(st.sampled_from([A, B, C]), st.booleans()), min_size=1, max_size=6),
        st.integers(-4, 1),  # the first version: 人社's bbh may be zero or negative
    ).flatmap(
        lambda drawn: st.permutations([(s, n + drawn[1], void) for n, (s, void) in enumerate(drawn[0])])
    )
)
def test_only_the_person_the_highest_version_names_keeps_the_record_whatever_the_order(
    arrivals: list[Version],
) -> None:
    subject, _, voided = max(arrivals, key=lambda arrival: arrival[1])
    counted = {who for who, keeps in _folded(arrivals).items() if keeps}
    assert counted == (set() if voided else {subject})


def test_a_correction_to_another_person_revokes_the_first_and_a_late_lower_version_is_revoked_too() -> None:
    sent: Sent = {}
    assert revokes(sent, A, 1) == []
    assert revokes(sent, A, 2) == []  # a correction of the same person's record: nothing moves
    assert revokes(sent, B, 3) == [(A, 3)]
    assert revokes(sent, C, 1) == [(C, 3)]  # arrives late, names a third person: revoked at once
    assert revokes(sent, B, 3) == []  # sent again (a restart): nothing new
    assert sent == {A: 3, B: 3, C: 3}


def test_a_late_lower_negative_version_for_another_person_is_revoked_and_the_first_kept() -> None:
    # A subject new to the id was taken to be at version 0: A's -1 was revoked at 0, B's -3 kept.
    sent: Sent = {}
    assert revokes(sent, A, -1) == []
    assert revokes(sent, B, -3) == [(B, -1)]
    assert sent == {A: -1, B: -1}


def test_the_revoke_is_the_record_for_the_other_person_without_the_name() -> None:
    envelope = {
        "event_id": event_id("tax", "330012345678901234", 2),
        "department": "tax",
        "dataset": "tax.payment",
        "source_record_id": "330012345678901234",
        "source_version": 2,
        "op": "upsert",
        "occurred_at": dt.datetime(2026, 10, 1, tzinfo=dt.UTC),
        "published_at": dt.datetime(2026, 11, 1, tzinfo=dt.UTC),
        "trace_id": "t",
    }
    record = {"envelope": envelope, "citizen_id": B, "name": "何䶮", "tax_paid": "12.00"}
    revoke = revoke_record(Converted(B, record), A, 2)
    assert revoke.subject_id == A and revoke.record["citizen_id"] == A and revoke.record["name"] == ""
    assert revoke.record["envelope"]["op"] == "revoke" and revoke.record["envelope"]["source_version"] == 2
    assert (
        revoke.record["envelope"]["event_id"]
        == revoke_record(Converted(B, record), A, 2).record["envelope"]["event_id"]
    )
    assert revoke.record["envelope"]["event_id"] not in {
        envelope["event_id"],
        revoke_record(Converted(B, record), C, 2).record["envelope"]["event_id"],
    }
    assert record["citizen_id"] == B and record["envelope"]["op"] == "upsert"  # the record itself unchanged


def test_the_store_keeps_the_highest_version_sent_per_source_id_and_subject(tmp_path: Path) -> None:
    store = SentStore(tmp_path, "tax")
    store.save({"V1": {A: 2, B: 3}, "V2": {C: 1}})
    store.save({"V1": {A: 1}})  # never down
    store.close()
    again = SentStore(tmp_path, "tax")
    assert again.load(["V1", "V2", "V3"]) == {"V1": {A: 2, B: 3}, "V2": {C: 1}}
    assert again.load(f"X{n}" for n in range(2000)) == {}
    again.close()


def test_two_connectors_of_a_department_take_turns_with_the_store(tmp_path: Path) -> None:
    # Each loaded what was sent, then saved after its flush: interleaved, neither saw the other's
    # version and no revoke was ever sent. The second now waits for the first's chunk to be saved.
    first, second = SentStore(tmp_path, "tax"), SentStore(tmp_path, "tax", wait_seconds=0)
    first.begin()
    known = first.load(["V"])
    with pytest.raises(ConnectorError, match="cannot lock"):
        second.begin()  # still held: the second would wait (here it gives up at once)
    known.setdefault("V", {})[A] = 1
    first.save(known)
    second.begin()
    sent = second.load(["V"])["V"]
    assert revokes(sent, B, 2) == [(A, 2)]
    second.save({"V": sent})
    first.close()
    second.close()
