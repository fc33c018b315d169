"""Facts at request time: the stored profile, current or as of an instant, through `facts.compute`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exchange.api.exceptions import InvalidRequestError
from exchange.api.models.verifications import Claim
from exchange.api.profile_cache import ProfileCache
from exchange.api.storage.lineage import resolve
from exchange.api.storage.pool import Connection
from exchange.api.storage.profiles import load_profile
from exchange.facts import Fact, compute, spans
from exchange.local_time import LOCAL, today
from exchange.profile import RecordRef
from exchange.rules import RuleValue, compare


def lineage(refs: Iterable[RecordRef]) -> list[dict[str, Any]]:
    """Record references as the API shows them: no source record id (it can be an identifier)."""
    return [
        {
            "event_id": ref.event_id,
            "dataset": ref.dataset,
            "source_version": ref.source_version,
            "topic": ref.topic,
            "partition": ref.partition,
            "offset": ref.offset,
        }
        for ref in refs
    ]


def known_instant(as_of: dt.datetime | None, location: tuple[str, ...]) -> dt.datetime | None:
    """`as_of` as the instant to answer from (a time without a zone is the departments' local time),
    or `InvalidRequestError` when it is after now: what the exchange will know then is not known yet,
    and an answer labelled with that instant would change as data arrives."""
    if as_of is None:
        return None
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=LOCAL)  # a local time without a zone, as the departments write it
    now = dt.datetime.now(dt.UTC)
    if as_of > now:
        raise InvalidRequestError(
            f"as_of {as_of.isoformat()} is after now ({now.isoformat(timespec='seconds')}): the exchange "
            "answers from what it knew at an instant that has passed; leave as_of out for now",
            location,
        )
    return as_of


def future_date(reference_date: dt.date | None) -> str | None:
    """Why facts cannot be computed on `reference_date` when it is after today (where the departments
    are), else None: months no department has reported yet would count as empty, and an age not yet
    reached as reached (an allowance approved a year early, a contribution record read as broken)."""
    now = today()
    if reference_date is None or reference_date <= now:
        return None
    return (
        f"reference_date {reference_date} is after today ({now}): facts are computed on what the "
        "departments have reported, and nothing after today is reported yet"
    )


def reported_date(reference_date: dt.date | None, location: tuple[str, ...]) -> None:
    """`InvalidRequestError` (a 422 at `location`) when `reference_date` is after today (`future_date`)."""
    if (future := future_date(reference_date)) is not None:
        raise InvalidRequestError(future, location)


@dataclass(frozen=True, slots=True)
class Evaluated:
    """The facts of a subject, the profile version they came from, and the times used."""

    facts: Mapping[str, Fact]
    profile_version: int
    reference_date: dt.date
    as_of: dt.datetime


async def evaluate(
    conn: Connection,
    subject_key: str,
    reference_date: dt.date | None,
    as_of: dt.datetime | None,
    cache: ProfileCache | None = None,
) -> Evaluated:
    """Compute every fact of a subject on `reference_date` from the profile known at `as_of` (an instant
    as `known_instant` gives it), lineage resolved (decoded profiles and resolved facts taken from and
    kept in `cache`, if given).

    A current answer (no `as_of`) is labelled with when PostgreSQL was asked, an instant before the
    read's snapshot on the clock that dates the versions (the sink dates one as it commits it,
    consumers.sink.history): a version the read found dated after that labels it instead. Either way
    an as-of query for the label, later, answers with the version this answer used. Labelled after the
    read, on the API's clock, an answer from a version was stamped past the date of a newer one
    committing meanwhile, which the as-of query then gave."""
    stored = await load_profile(conn, subject_key, as_of, cache)
    day = reference_date or today()
    facts: Mapping[str, Fact]
    if cache is None:
        facts = compute(stored.profile, day)
        unresolved = bool(spans(facts))
    else:
        facts, unresolved = cache.facts_to_resolve(stored.profile, day)
    if unresolved:
        facts = await resolve(conn, subject_key, facts)
        if cache is not None:
            facts = cache.resolved(stored.profile, day, facts)
    if as_of is None:
        asked_at = stored.asked_at or dt.datetime.now(dt.UTC)  # given by every current read
        as_of = asked_at if stored.valid_from is None else max(asked_at, stored.valid_from)
    return Evaluated(facts, stored.profile.version, day, as_of)


def rule_value(value: Any) -> RuleValue:
    """A claim's value as `exchange.rules` compares it: lists become tuples."""
    return tuple(value) if isinstance(value, list) else value


def check_claim(claim: Claim, facts: Mapping[str, Fact]) -> dict[str, Any]:
    """Whether one claim holds, and the records behind the fact; never the fact's value. A claim that
    cannot be told (on a fact with no value, say) does not hold: `holds` is a yes only when it is one."""
    fact = facts[claim.fact]
    result = compare(claim.operator, fact.value, rule_value(claim.value))
    return {
        "fact": claim.fact,
        "operator": claim.operator,
        "holds": result is True,
        "determinable": result is not None,
        "lineage": lineage(fact.lineage),
    }
