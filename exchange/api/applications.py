"""秒批: an application decided by its service item's rules on the subject's facts, once per application id.

Shared by `POST /v1/applications` and the `exchange approvals` consumer. The API refuses with 403
what policy does not allow; the consumer, which has no one to answer, records a `refused` decision.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from exchange import rules
from exchange.api import evaluation
from exchange.api.access import check_consent, grant_for
from exchange.api.context import Services
from exchange.api.exceptions import ConflictError, RefusedError
from exchange.api.storage.decisions import get_decision, insert_decision
from exchange.api.storage.pool import Connection, Row
from exchange.local_time import today
from exchange.policy import Access
from monitoring import metrics

# Fixed forever: a decision's id is derived from its application's, so a re-sent decision is the same.
DECISION_NAMESPACE = uuid.UUID("6f1d2c0e-8b7a-4e55-9c3d-2a1b0c9d8e7f")


@dataclass(frozen=True, slots=True)
class Application:
    """An application to decide, by either channel; the subject and applicant by subject key only."""

    application_id: str
    caller: str
    purpose: str
    service_item: str
    subject_key: str
    applicant_key: str | None
    reference_date: dt.date | None
    channel: str  # api or kafka
    trace_id: str


def _decision(app: Application, outcome: str, reasons: list[dict[str, Any]], **rest: Any) -> dict[str, Any]:
    return {
        "application_id": app.application_id,
        "decision_id": str(uuid.uuid5(DECISION_NAMESPACE, app.application_id)),
        "channel": app.channel,
        "caller": app.caller,
        "purpose": app.purpose,
        "service_item": app.service_item,
        "subject_key": app.subject_key,
        "outcome": outcome,
        "reasons": reasons,
        "decided_at": dt.datetime.now(dt.UTC),
        "trace_id": app.trace_id,
        **rest,
    }


def refused(
    app: Application, reason: str, message: str, policy_version: str, *, zh: str = "不予受理：未获授权"
) -> dict[str, Any]:
    """The decision recorded for an application that policy does not allow or that names no valid
    subject (the consumer's channel)."""
    return _decision(
        app,
        "refused",
        [{"code": reason, "met": None, "zh": zh, "en": message}],
        facts_used=[],
        reference_date=app.reference_date or today(),
        profile_version=0,
        policy_version=policy_version,
    )


def check_same_application(existing: Row, app: Application) -> None:
    """Raises `ConflictError` unless the stored decision `existing` was made on the application `app`
    (same caller, purpose, service item and subject, and the same reference date if `app` names one;
    one that names none asks for the decision, whenever made): an application id names one application."""
    first = (existing["caller"], existing["purpose"], existing["service_item"], existing["subject_key"])
    if first != (app.caller, app.purpose, app.service_item, app.subject_key):
        raise ConflictError(f"application id {app.application_id} was used for another application")
    if app.reference_date is not None and app.reference_date != existing["reference_date"]:
        raise ConflictError(
            f"application id {app.application_id} was decided on reference date "
            f"{existing['reference_date']}, not {app.reference_date}: a new date is a new application"
        )


@dataclass(frozen=True)
class Decided:
    """A decision as stored, and whether this call stored it: the caller counts it (`count_decision`)
    once its transaction has committed, so a rolled-back one, made again on a replay, counts once."""

    row: Row
    new: bool


async def decide(services: Services, conn: Connection, app: Application) -> Decided:
    """The decision on `app`: the stored one if it was decided before, else a new one, stored.

    Raises `RefusedError` on the API channel when policy, consent or delegation does not allow it,
    `InvalidRequestError` there when its reference date is after today (the Kafka channel refuses
    such an application before it gets here), and `ConflictError` when the application id was used for
    a different application.

    A decision is made once, but on the API channel every request is an access of its own: asking
    again for a stored decision is allowed only as the first request was, by the grant, consent and
    delegation in force now. The Kafka channel asks again in its own way (consumers.approvals).
    """
    if app.channel == "api":
        evaluation.reported_date(app.reference_date, ("body", "reference_date"))
    existing = await get_decision(conn, app.application_id)
    if existing is not None:
        if app.channel == "api":
            # Refused by policy first: a caller with no grant learns nothing of a stored application.
            grant = grant_for(services, Access(app.caller, app.purpose, service_item=app.service_item))
            check_same_application(existing, app)
            await check_consent(conn, grant, app.subject_key, app.applicant_key)
        else:
            check_same_application(existing, app)
        return Decided(existing, new=False)
    try:
        await check_allowed(services, conn, app)
    except RefusedError as exc:
        if app.channel == "api":
            raise
        return await store_decision(
            services, conn, app, refused(app, exc.reason, exc.message, services.policy.version)
        )
    known = await evaluation.evaluate(conn, app.subject_key, app.reference_date, None, services.profiles)
    made = rules.decide(services.policy.service_items[app.service_item], known.facts)
    decision = _decision(
        app,
        made.outcome,
        [{"code": r.fact, "met": r.met, "zh": r.zh, "en": r.en} for r in made.reasons],
        facts_used=[
            {"fact": name, "lineage": evaluation.lineage(fact.lineage)}
            for name, fact in sorted(made.facts_used.items())
        ],
        reference_date=known.reference_date,
        profile_version=known.profile_version,
        policy_version=services.policy.version,
    )
    return await store_decision(services, conn, app, decision)


async def store_decision(services: Services, conn: Connection, app: Application, decision: Row) -> Decided:
    """Store the new decision on `app`, and return it as stored.

    A decision on the same application id stored meanwhile (a concurrent request, by either channel,
    got there first) is kept: it is returned (not new) if it was made on this very application, and
    otherwise `ConflictError` is raised, so that no one is sent a decision on another caller's or
    subject's application.
    """
    stored, inserted = await insert_decision(conn, decision)
    if not inserted:
        check_same_application(stored, app)
    return Decided(stored, new=inserted)


def count_decision(services: Services, app: Application, decided: Decided) -> None:
    """Count a decision stored by a transaction that has committed, if it was new there; a service item
    the policy does not name (an application on the topic can name anything) counts as "unknown", so
    the metric's labels stay few."""
    if not decided.new:
        return
    item = app.service_item if app.service_item in services.policy.service_items else "unknown"
    metrics.DECISIONS.labels(service_item=item, outcome=str(decided.row["outcome"])).inc()


async def check_allowed(services: Services, conn: Connection, app: Application) -> None:
    """Raise `RefusedError` unless policy, consent and delegation allow `app` now."""
    grant = grant_for(services, Access(app.caller, app.purpose, service_item=app.service_item))
    await check_consent(conn, grant, app.subject_key, app.applicant_key)


def avro_decision(row: Row) -> dict[str, Any]:
    """The `DecisionMade` record (schemas/decision.avsc) of a stored decision."""
    return {
        **{name: row[name] for name in ("caller", "purpose", "service_item", "subject_key", "outcome")},
        **{name: row[name] for name in ("reference_date", "profile_version", "policy_version", "decided_at")},
        "decision_id": str(row["decision_id"]),
        "application_id": str(row["application_id"]),
        "reasons": row["reasons"],
        "facts_used": [
            {"fact": used["fact"], "event_ids": [ref["event_id"] for ref in used["lineage"]]}
            for used in row["facts_used"]
        ],
        "trace_id": row["trace_id"],
    }
