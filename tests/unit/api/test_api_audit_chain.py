"""The audit hash chain: intact chains verify; altered, inserted and deleted rows are found, first named."""

from __future__ import annotations

import datetime as dt
from typing import Any

from exchange.audit import (
    GENESIS,
    AuditEntry,
    PublishedChain,
    chained,
    published_chain,
    row_hash,
    verify,
)

AT = dt.datetime(2026, 11, 15, 9, 30, tzinfo=dt.UTC)


def chain(length: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number in range(length):
        entry = AuditEntry(
            caller="housing-bureau",
            action="verification",
            outcome="allowed" if number % 3 else "refused",
            policy_version="v" * 64,
            purpose="public-rental-housing",
            subject_key=f"{number:064x}",
            reason=None if number % 3 else "fact_not_granted",
            request={"claims": [{"fact": "identity.status", "operator": "eq"}], "n": number},
            response={"results": [{"fact": "identity.status", "holds": True}]},
            at=AT + dt.timedelta(seconds=number),
        )
        rows.append(chained(entry, number + 1, rows[-1]["hash"] if rows else GENESIS))
    return rows


def head(rows: list[dict[str, Any]]) -> tuple[int, str]:
    return (rows[-1]["seq"], rows[-1]["hash"]) if rows else (0, GENESIS)


def test_an_intact_chain_verifies_and_so_does_an_empty_one() -> None:
    rows = chain(10)
    assert verify(rows, head(rows)) is None
    assert verify([], None) is None


def test_an_altered_field_is_found_at_its_row() -> None:
    for field, value in [("caller", "bank"), ("outcome", "failed"), ("request", {"n": 99}), ("at", AT)]:
        rows = chain(10)
        rows[4] = {**rows[4], field: value}
        problem = verify(rows, head(rows))
        assert problem is not None and (problem.seq, problem.kind) == (5, "altered"), field


def test_an_altered_row_with_a_recomputed_hash_breaks_the_next_link() -> None:
    rows = chain(10)
    forged = {**rows[4], "outcome": "failed"}
    rows[4] = {**forged, "hash": row_hash(forged)}
    problem = verify(rows, head(rows))
    assert problem is not None and (problem.seq, problem.kind) == (6, "broken_link")


def test_an_inserted_row_is_found() -> None:
    rows = chain(10)
    intruder = chained(
        AuditEntry(caller="bank", action="verification", outcome="allowed", policy_version="v", at=AT),
        5,
        rows[3]["hash"],
    )
    tampered = [*rows[:4], intruder, *({**row, "seq": row["seq"] + 1} for row in rows[4:])]
    problem = verify(tampered, (11, tampered[-1]["hash"]))
    assert problem is not None and problem.seq == 6


def test_a_deleted_row_is_found_in_the_middle_and_at_the_end() -> None:
    rows = chain(10)
    problem = verify([*rows[:3], *rows[4:]], head(rows))
    assert problem is not None and (problem.seq, problem.kind) == (5, "sequence_gap")
    problem = verify(rows[:-1], head(rows))
    assert problem is not None and (problem.seq, problem.kind) == (10, "truncated")


def test_the_hash_does_not_depend_on_the_key_order_of_json_columns() -> None:
    rows = chain(2)
    reordered = {**rows[1], "request": dict(reversed(list(rows[1]["request"].items())))}
    assert row_hash(reordered) == rows[1]["hash"]


# Against the copy the relay published (exchange.audit.v1): the database alone can be rewritten
# consistently, rows, hashes and head together, by whoever can write it.
TOPIC = "exchange.audit.v1"


def published(rows: list[dict[str, Any]], *extra: tuple[int, str]) -> PublishedChain:
    return published_chain([*((row["seq"], row["hash"]) for row in rows), *extra], TOPIC)


def test_a_tail_removed_after_it_was_published_is_found_though_the_head_was_moved_back() -> None:
    rows = chain(10)
    kept = rows[:7]
    problem = verify(kept, head(kept), published(rows))
    assert problem is not None and (problem.seq, problem.kind) == (8, "truncated")
    assert "row 8" in problem.message and TOPIC in problem.message
    # Everything deleted, the head row included: the topic still holds the rows.
    problem = verify([], None, published(rows))
    assert problem is not None and (problem.seq, problem.kind) == (1, "truncated")


def test_a_tail_the_relay_has_published_is_missed_by_its_position_too() -> None:
    rows = chain(10)
    kept = rows[:7]
    problem = verify(kept, head(kept), published([]), relay_next_seq=11)
    assert problem is not None and (problem.seq, problem.kind) == (8, "truncated")
    assert "row 10" in problem.message
    assert verify(kept, head(kept), published([]), relay_next_seq=8) is None


def test_a_row_rewritten_after_it_was_published_is_found_though_its_hashes_were_recomputed() -> None:
    rows = chain(10)
    forged = [*rows[:4]]
    for row in rows[4:]:
        changed = {**row, "prev_hash": forged[-1]["hash"]}
        if row["seq"] == 5:
            changed["outcome"] = "failed"
        forged.append({**changed, "hash": row_hash(changed)})
    assert verify(forged, head(forged)) is None  # consistent in itself
    problem = verify(forged, head(forged), published(rows))
    assert problem is not None and (problem.seq, problem.kind) == (5, "altered")
    assert "row 5" in problem.message and TOPIC in problem.message


def test_rows_published_more_than_once_and_rows_not_yet_published_are_fine() -> None:
    rows = chain(10)
    # At least once: a relay that crashed before moving its position sends a few rows again.
    again = published(rows[:6], *((row["seq"], row["hash"]) for row in rows[3:6]))
    assert verify(rows, head(rows), again, relay_next_seq=7) is None
    assert verify(rows, head(rows), published([]), relay_next_seq=1) is None


def test_one_row_published_with_two_different_hashes_is_a_problem() -> None:
    rows = chain(10)
    twice = published(rows, (3, "f" * 64))
    problem = verify(rows, head(rows), twice)
    assert problem is not None and (problem.seq, problem.kind) == (3, "altered")
    assert "row 3" in problem.message and TOPIC in problem.message
    # Whichever of the two copies the database holds.
    twice = published_chain([(3, "f" * 64), *((row["seq"], row["hash"]) for row in rows)], TOPIC)
    problem = verify(rows, head(rows), twice)
    assert problem is not None and (problem.seq, problem.kind) == (3, "altered")


def test_rows_no_relay_publishes_are_named_and_kept_aside() -> None:
    # Something other than the relay wrote to the topic: a row 0, a row far past the log's end. The
    # published hashes are kept compact (8 bytes a row, by seq), not in an array that long.
    rows = chain(5)
    far = published(rows, (10**12, "a" * 64))
    problem = verify(rows, head(rows), far)
    assert problem is not None and (problem.seq, problem.kind) == (6, "truncated")
    assert f"up to row {10**12}" in problem.message
    problem = verify(rows, head(rows), published(rows, (0, "b" * 64)))
    assert problem is not None and (problem.seq, problem.kind) == (0, "sequence_gap")
    assert verify(rows, head(rows), published(rows)) is None
