"""授权 and 代办: a subject's consent to a caller for a purpose, and delegations to act for them, as events.

Consent is given and withdrawn by events on `exchange.consent.v1` (keyed by subject key, so one
subject's events stay in order); `exchange approvals` materialises them into the `consents` table,
where the API reads them at request time. An event names the subject and any delegate by subject
key only. A row with no delegate is the subject's own consent; a row with a delegate says that
person may apply on the subject's behalf (代办) for that caller and purpose.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from exchange import admin
from exchange.exceptions import StackError
from exchange.policy.decide import CONSENT_MISSING, DELEGATION_MISSING
from exchange.policy.model import Grant
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.topics import CONSENT

SCHEMA = "consent"
NO_DELEGATE = ""  # the delegate_key of the subject's own consent in the consents table


def consent_event(
    subject_key: str,
    caller: str,
    purpose: str,
    op: str,
    *,
    delegate_key: str | None = None,
    at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A `ConsentChanged` record (schemas/consent.avsc): `op` is grant or revoke."""
    if op not in ("grant", "revoke"):
        raise ValueError(f"op must be grant or revoke, not {op!r}")
    # To the millisecond the record keeps (timestamp-millis): a grant and its withdrawal within one
    # second are ordered by when they happened, not by which reached the topic last.
    occurred = at or dt.datetime.now(dt.UTC)
    occurred = occurred.replace(microsecond=occurred.microsecond // 1000 * 1000)
    return {
        "event_id": str(uuid.uuid4()),
        "subject_key": subject_key,
        "caller": caller,
        "purpose": purpose,
        "delegate_key": delegate_key,
        "op": op,
        "occurred_at": occurred,
        "trace_id": uuid.uuid4().hex,
    }


@dataclass(frozen=True, slots=True)
class ConsentRefusal:
    """Why consent or delegation does not allow a request: a reason code and what the subject must do."""

    reason: str
    message: str


def check(
    grant: Grant, in_force: Mapping[str, bool], *, subject_key: str, applicant_key: str | None
) -> ConsentRefusal | None:
    """None when consent and delegation allow the request under `grant`.

    `in_force` maps delegate key (NO_DELEGATE for the subject's own consent) to whether it is granted.
    """
    where = f"caller {grant.caller}, purpose {grant.purpose}"
    if grant.consent_required and not in_force.get(NO_DELEGATE, False):
        return ConsentRefusal(
            CONSENT_MISSING,
            f"the grant for {where} requires the subject's consent (授权), and none is in force; "
            "the subject gives it with `exchange consent grant`",
        )
    if applicant_key is not None and applicant_key != subject_key and not in_force.get(applicant_key, False):
        return ConsentRefusal(
            DELEGATION_MISSING,
            f"the applicant is not the subject and holds no delegation (代办) from them for {where}",
        )
    return None


def publish(settings: ExchangeSettings, events: Iterable[Mapping[str, Any]]) -> int:
    """Publish consent events, keyed by subject key, and wait for the broker; return how many."""
    admin.ensure_topics(settings.kafka, (CONSENT,))
    codec = AvroCodec()
    topic = CONSENT.full_name(settings.kafka)
    try:
        producer = KafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers, acks="all", enable_idempotence=True
        )
    except KafkaError as exc:
        raise StackError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}") from exc
    try:
        sent = [
            producer.send(topic, key=event["subject_key"].encode(), value=codec.encode(SCHEMA, dict(event)))
            for event in events
        ]
        for future in sent:
            future.get(timeout=30)
    except KafkaError as exc:
        raise StackError(f"publishing consent events failed: {exc}") from exc
    finally:
        producer.close()
    return len(sent)
