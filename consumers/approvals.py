"""`exchange approvals`: applications (exchange.applications.v1) decided onto exchange.decisions.v1, and
consent events (exchange.consent.v1) materialised into the `consents` table.

At least once, with idempotent effects:
- a decision is stored once per application id, with its audit entry in the same transaction; an
  application sent or delivered again re-sends the stored decision (same decision id) if a new one
  would be allowed now (grant, consent, delegation; else it is dead-lettered with the reason), each
  send audited; an application that reuses another application's id is dead-lettered, never sent
  that decision;
- a consent event is folded by time and offset (a replay changes nothing);
- Kafka offsets are committed only after the batch's decisions were acknowledged by the broker.
A record no schema can read is dead-lettered with its bytes.

Consent is materialised here rather than in the API so that the API stays stateless and scales by
replicas with no consumer group of its own; this process is already the exchange's consumer of
approval-side events, and the API reads the table it keeps.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import uuid
from collections import Counter
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from exchange import admin, database
from exchange.api import evaluation
from exchange.api.applications import (
    Application,
    avro_decision,
    check_allowed,
    check_same_application,
    count_decision,
    decide,
    refused,
    store_decision,
)
from exchange.api.auditing import Audit, entry_of, record
from exchange.api.context import Services
from exchange.api.exceptions import ConflictError, InvalidRequestError, RefusedError
from exchange.api.models.common import CODE_PATTERN
from exchange.api.relay import AuditRelay
from exchange.api.signing import load_signer
from exchange.api.storage import audit as audit_table
from exchange.api.storage.consents import apply_event
from exchange.api.storage.decisions import get_decision
from exchange.api.storage.policies import archive_policy
from exchange.api.storage.pool import Connection, Row, create_pool, transaction
from exchange.exceptions import SerializationError
from exchange.policy import load_policy
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.topics import APPLICATIONS, AUDIT, CONSENT, DEADLETTER, DECISIONS

_log = logging.getLogger("exchange.approvals")
DEADLETTER_NAMESPACE = uuid.UUID("0b8f3e8c-5d0e-4f8e-9a57-4d4c1ad9c0de")
# What a refused decision says in Chinese, per reason an application cannot be decided.
_INVALID_ID = "不予受理：公民身份号码无效"
_FUTURE_DATE = "不予受理：基准日期晚于今日"


def approvals_group(settings: ExchangeSettings) -> str:
    """The consumer group; named explicitly, never derived from anything that could be renamed."""
    return f"{settings.kafka.topic_prefix}exchange-approvals"


class Approvals:
    """One run of the consumer: `run` until stopped, or until idle (every partition read to its end)."""

    def __init__(self, settings: ExchangeSettings) -> None:
        self._settings = settings
        self._codec = AvroCodec()
        self._topics = {t.full_name(settings.kafka): t for t in (APPLICATIONS, CONSENT)}
        self._services = Services(
            settings, load_policy(settings.api.policy_dir), create_pool(settings), load_signer(settings.api)
        )
        self.counts: Counter[str] = Counter()

    def consumer(self) -> AIOKafkaConsumer:
        """The consumer of the applications and the consent topic (made in the running loop)."""
        return AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._settings.kafka.bootstrap_servers,
            group_id=approvals_group(self._settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # aiokafka keeps one fetch in flight, for the partitions with nothing fetched left to read:
            # its default 0.5 s wait held new applications behind a fetch for quiet consent partitions.
            fetch_max_wait_ms=round(self._settings.api.approvals_fetch_max_wait_seconds * 1000),
        )

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> Counter[str]:
        """Consume until `stop` is set or, with `until_idle`, nothing is left to read."""
        kafka = self._settings.kafka
        await asyncio.to_thread(database.migrate, self._settings.postgres)
        await asyncio.to_thread(
            admin.ensure_topics, kafka, (APPLICATIONS, DECISIONS, CONSENT, AUDIT, DEADLETTER)
        )
        await self._services.open()
        async with transaction(self._services.pool) as conn:
            await archive_policy(conn, self._services.policy)
        relay = AuditRelay(self._settings, self._services.pool)
        consumer = self.consumer()
        producer = AIOKafkaProducer(
            bootstrap_servers=kafka.bootstrap_servers, acks="all", enable_idempotence=True
        )
        await consumer.start()
        await producer.start()
        consent_topic = CONSENT.full_name(kafka)
        try:
            while not stop.is_set():
                batch = await consumer.getmany(
                    timeout_ms=500, max_records=self._settings.api.approvals_batch_records
                )
                records = [message for messages in batch.values() for message in messages]
                consents = [message for message in records if message.topic == consent_topic]
                applications = [message for message in records if message.topic != consent_topic]
                sent = [await self._handle(message, producer) for message in consents]
                # Application partitions held back (paused) until consent is read; a rebalance resumes them.
                held = consumer.paused()
                if (applications or held) and not await _consent_read(consumer, consent_topic):
                    _hold(consumer, applications)
                    applications = []
                elif held:
                    consumer.resume(*held)
                sent += [await self._handle(message, producer) for message in applications]
                await asyncio.gather(*(future for future in sent if future is not None))
                if batch:
                    await consumer.commit()
                await relay.catch_up()  # trouble there is retried next time, never fatal
                if until_idle and not batch and await _at_end(consumer):
                    break
        finally:
            await consumer.stop()
            await producer.stop()
            await relay.close()
            await self._services.close()
        return self.counts

    async def _handle(self, message: ConsumerRecord[bytes, bytes], producer: AIOKafkaProducer) -> Any:
        """Handle one record; return the send future of what it produced, if anything."""
        try:
            schema, value = self._codec.decode(message.value or b"")
        except SerializationError as exc:
            return await self._dead_letter(message, "undecodable", str(exc), producer)
        if schema == "consent" and self._topics[message.topic] is CONSENT:
            refusal = _unusable_consent(value)
            if refusal is not None:
                return await self._dead_letter(message, "invalid_consent", refusal, producer)
            async with transaction(self._services.pool) as conn:
                await apply_event(conn, value, message.topic, message.partition, message.offset)
            self.counts["consents"] += 1
            return None
        if schema == "application" and self._topics[message.topic] is APPLICATIONS:
            unusable = _unusable(value)
            if unusable is not None:
                return await self._dead_letter(message, "invalid_application", unusable, producer)
            try:
                decision = await self._decide(value)
            except ConflictError as exc:
                return await self._dead_letter(message, "application_id_reused", exc.message, producer)
            except RefusedError as exc:
                return await self._dead_letter(message, exc.reason, exc.message, producer)
            self.counts[f"decisions.{decision['outcome']}"] += 1
            topic = DECISIONS.full_name(self._settings.kafka)
            key = decision["subject_key"].encode() or decision["application_id"].encode()
            return await producer.send(topic, self._codec.encode("decision", decision), key=key)
        return await self._dead_letter(
            message, "unexpected_schema", f"a {schema} record on this topic", producer
        )

    async def _decide(self, value: dict[str, Any]) -> dict[str, Any]:
        """The decision on one application: the stored one, or a new one (audited)."""
        services = self._services
        invalid: tuple[str, str, str] | None = None  # the refusal's code, message and Chinese text
        try:
            subject = services.subject_key(value["subject_id"], ("subject_id",))
        except InvalidRequestError as exc:
            subject, invalid = "", ("invalid_subject", exc.message, _INVALID_ID)
        try:
            applicant = (
                None
                if value["applicant_id"] is None
                else services.subject_key(value["applicant_id"], ("applicant_id",))
            )
        except InvalidRequestError as exc:
            applicant, invalid = None, invalid or ("invalid_applicant", exc.message, _INVALID_ID)
        app = Application(
            application_id=value["application_id"],
            caller=value["caller"],
            purpose=value["purpose"] or value["service_item"],
            service_item=value["service_item"],
            subject_key=subject,
            applicant_key=applicant,
            reference_date=value["reference_date"],
            channel="kafka",
            trace_id=value["trace_id"],
        )
        future = evaluation.future_date(app.reference_date)  # as the API refuses it (a 422)
        if future is not None:
            invalid = invalid or ("future_reference_date", future, _FUTURE_DATE)
        try:
            return await self._decided(app, invalid)
        except ConflictError as exc:
            # Another caller's or another subject's decision is not sent to whoever reused its id.
            audit = _audit(app, {"refused": exc.code, "message": exc.message})
            await record(services, audit, "refused", exc.code)
            raise
        except RefusedError as exc:  # a decision asked for again, no longer allowed (`_again`)
            audit = _audit(app, {"refused": exc.reason, "message": exc.message})
            await record(services, audit, "refused", exc.reason)
            raise

    async def _decided(self, app: Application, invalid: tuple[str, str, str] | None) -> dict[str, Any]:
        """The stored decision on `app`, or a new one stored with its audit entry in one transaction.

        Raises `ConflictError` when the application id names a stored decision on another application,
        and `RefusedError` when a decision asked for again is no longer allowed (`_again`).
        """
        services = self._services
        async with transaction(services.pool) as conn:
            existing = await get_decision(conn, app.application_id)
            if existing is not None:
                return await self._again(conn, app, existing)
            if invalid is not None:
                code, text, zh = invalid
                decided = await store_decision(
                    services,
                    conn,
                    app,
                    refused(app, code, text, services.policy.version, zh=zh),
                )
            else:
                decided = await decide(services, conn, app)
            row = decided.row
            # Audited in the decision's own transaction: a decision is never stored, and so never sent
            # again on a replay, without its audit entry.
            audit = _audit(app, {"outcome": row["outcome"]})
            if row["outcome"] == "refused":
                entry = entry_of(services, audit, "refused", row["reasons"][0]["code"])
            else:
                entry = entry_of(services, audit, "allowed")
            await audit_table.append_batch(conn, [entry])
        count_decision(services, app, decided)  # committed: a rolled-back one is made again on the replay
        return avro_decision(row)

    async def _again(self, conn: Connection, app: Application, existing: Row) -> dict[str, Any]:
        """The stored decision on an application sent again (re-sent, or read again after a crash),
        audited as every send is.

        As on the API channel, it goes out again only as a new application would be allowed now (the
        grant, consent and delegation in force): else `RefusedError`, and the application is dead-
        lettered with the reason. A refusal discloses nothing, so a refused decision goes out as it is.
        """
        services = self._services
        check_same_application(existing, app)
        outcome, reason = "allowed", None
        if existing["outcome"] == "refused":
            outcome, reason = "refused", existing["reasons"][0]["code"]
        else:
            await check_allowed(services, conn, app)
        audit = _audit(app, {"outcome": existing["outcome"], "decided_before": True})
        await audit_table.append_batch(conn, [entry_of(services, audit, outcome, reason)])
        return avro_decision(existing)

    async def _dead_letter(
        self, message: ConsumerRecord[bytes, bytes], reason: str, text: str, producer: AIOKafkaProducer
    ) -> Any:
        position = f"{message.topic}:{message.partition}:{message.offset}"
        _log.warning("dead-lettering %s: %s", position, reason)
        self.counts["dead_letters"] += 1
        rejected = {
            "event_id": str(uuid.uuid5(DEADLETTER_NAMESPACE, f"approvals|{position}")),
            "department": "exchange",
            "dataset": self._topics[message.topic].schema or "",
            "source": message.topic,
            "position": position,
            "reason": reason,
            "field": None,
            "message": text,
            "original": message.value or b"",
            "rejected_at": dt.datetime.now(dt.UTC),
            "trace_id": uuid.uuid4().hex,
        }
        topic = DEADLETTER.full_name(self._settings.kafka)
        return await producer.send(topic, self._codec.encode("deadletter", rejected), key=b"approvals")


def _audit(app: Application, response: dict[str, Any]) -> Audit:
    """The audit entry of an application on the Kafka channel, answered with `response`."""
    asked = {"service_item": app.service_item, "application_id": app.application_id, "channel": "kafka"}
    return Audit(app.caller, "application", app.purpose, asked, app.subject_key or None, response)


_CODE = re.compile(CODE_PATTERN)


_SUBJECT_KEY = re.compile(r"[0-9a-f]{64}")


def _not_a_uuid(name: str, value: str) -> str | None:
    """Why `value` is not a UUID as the exchange writes and PostgreSQL stores one, or None. Only the
    canonical lower-case form: Python also takes forms PostgreSQL refuses ('urn:uuid:…')."""
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        canonical = None
    if canonical != value:
        return f"{name} {value[:80]!r} is not a UUID written as 8-4-4-4-12 lower-case hex digits"
    return None


def _not_a_code(name: str, code: str) -> str:
    return f"{name} {code[:80]!r} is not a code: a letter or digit, then up to 99 of letters, digits, . _ -"


def _unusable_consent(value: dict[str, Any]) -> str | None:
    """Why a consent event cannot be stored, for the dead letter; None if it can. Refused by PostgreSQL
    (an event id that is no UUID, a NUL, a key over the index's limit), it stopped this consumer at that
    record on every restart, and every application with it, as they wait for consent to be read."""
    not_uuid = _not_a_uuid("event_id", value["event_id"])
    if not_uuid is not None:
        return not_uuid
    for name in ("subject_key", "delegate_key"):
        key = value[name]
        if key is not None and not _SUBJECT_KEY.fullmatch(key):
            return f"{name} is not a subject key (64 lower-case hex digits)"
    for name in ("caller", "purpose"):
        if not _CODE.fullmatch(value[name]):
            return _not_a_code(name, value[name])
    if "\x00" in value["trace_id"] or len(value["trace_id"]) > 128:
        return "trace_id holds a NUL character or is longer than 128 characters"
    return None


def _unusable(value: dict[str, Any]) -> str | None:
    """Why an application cannot even be stored as refused, for the dead letter; None if it can.

    Its id keys the decision (a UUID column, and echoed back on the decision as sent, so only the
    canonical lower-case form is taken), and PostgreSQL text cannot hold a NUL character.
    """
    not_uuid = _not_a_uuid("application_id", value["application_id"])
    if not_uuid is not None:
        return not_uuid
    for name, field in value.items():
        if isinstance(field, str) and "\x00" in field:
            return f"{name} holds a NUL character"
    # As the API takes them (exchange.api.models): codes the policy files could name. Each is stored in
    # the decision and its audit row whole; a long one made a record Kafka refuses, which stalled the
    # audit relay and this consumer for good.
    for name in ("caller", "service_item", "purpose"):
        code = value[name]
        if code is not None and not _CODE.fullmatch(code):
            return _not_a_code(name, code)
    for name, longest in (("trace_id", 128), ("subject_id", 64), ("applicant_id", 64)):
        if value[name] is not None and len(value[name]) > longest:
            return f"{name} is {len(value[name])} characters long, more than {longest}"
    return None


async def _consent_read(consumer: AIOKafkaConsumer, topic: str) -> bool:
    """Whether every consent event on `topic` now is in the `consents` table: read by this consumer
    (its own partitions) or committed by another one of the group (theirs).

    An application is decided only then, so that a consent given or withdrawn before it was submitted
    always counts, however far the consent partitions lag behind the applications'.
    """
    partitions = [
        TopicPartition(topic, number) for number in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    if not partitions:
        return False  # no metadata yet: ask again on the next poll
    ends = await consumer.end_offsets(partitions)
    assigned = consumer.assignment()
    for partition in partitions:
        if ends[partition] == 0:
            continue
        if partition in assigned:
            reached = await consumer.position(partition)
        else:
            reached = await consumer.committed(partition) or 0
        if reached < ends[partition]:
            return False
    return True


def _hold(consumer: AIOKafkaConsumer, applications: list[ConsumerRecord[bytes, bytes]]) -> None:
    """Put `applications` back (each partition rewound to its first one) and pause their partitions until
    the consent topic is read."""
    first: dict[TopicPartition, int] = {}
    for message in applications:
        partition = TopicPartition(message.topic, message.partition)
        first[partition] = min(first.get(partition, message.offset), message.offset)
    for partition, offset in first.items():
        consumer.seek(partition, offset)
    consumer.pause(*first)


async def _at_end(consumer: AIOKafkaConsumer) -> bool:
    """Whether every assigned partition has been read to its end offset (and some are assigned)."""
    assigned = consumer.assignment()
    if not assigned:
        return False
    ends = await consumer.end_offsets(list(assigned))
    for partition in assigned:
        if await consumer.position(partition) < ends[partition]:
            return False
    return True
