"""The pure mapping of a profile record (schemas/profile.avsc) to its row in the profile tables."""

from __future__ import annotations

import datetime as dt
from typing import Any

from consumers.sink.documents import to_json
from consumers.sink.tables import Record, Row
from exchange.profile import from_avro

# Columns of a profile row, in order; the writer stages them, then fills both profile tables.
PROFILE_COLUMNS: tuple[str, ...] = (
    "subject_key",
    "version",
    "profile",
    "updated_at",
    "topic",
    "kafka_partition",
    "kafka_offset",
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
SECTIONS: tuple[str, ...] = ("persons", "payments", "contributions", "titles")


def valid_from(record: Record, timestamp_ms: int) -> dt.datetime:
    """From when the exchange knew this profile version: the `updated_at` the processor stamped on it.

    A record that does not carry it reads with the schema default, the epoch; its Kafka timestamp —
    when the processor produced it — is the best stand-in, where the epoch would make the version
    look known since 1970 to as-of queries.
    """
    updated_at: dt.datetime = record["updated_at"]
    if updated_at == EPOCH:
        return EPOCH + dt.timedelta(milliseconds=timestamp_ms)
    return updated_at


def latest_published_at(record: Record) -> dt.datetime | None:
    """The latest published_at folded into the profile, for freshness; None when it was not recorded."""
    published: dt.datetime | None = record.get("latest_published_at")
    return None if published is None or published == EPOCH else published


def profile_document(record: Record) -> dict[str, Any]:
    """The profile as a document for jsonb: per dataset its live records, each with its data and its
    lineage (`ref`), then the revoked records' lineage — what the packed Avro columns hold, in a form
    SQL and the API can read. Records are in source record id order, as in the Avro form.

    Raises `exchange.profile.ProfileFormError` when the record's columns do not fit together.
    """
    profile = from_avro(record)
    document: dict[str, Any] = {
        "subject_key": profile.subject_key,
        "version": profile.version,
        "updated_at": record["updated_at"],
        "latest_published_at": latest_published_at(record),
    }
    revoked: list[dict[str, Any]] = []
    for name in SECTIONS:
        section = getattr(profile, name)
        live: list[dict[str, Any]] = []
        for record_id in sorted(section):
            ref, data = section[record_id]
            if data is None:
                revoked.append(ref._asdict())
            else:
                live.append({"ref": ref._asdict(), "data": data._asdict()})
        document[name] = live
    document["revoked"] = revoked
    return document


def profile_row(record: Record, topic: str, partition: int, offset: int, timestamp_ms: int) -> Row:
    """The row of one profile version, in `PROFILE_COLUMNS` order, the profile as `profile_document`."""
    return (
        record["subject_key"],
        record["version"],
        to_json(profile_document(record)),
        valid_from(record, timestamp_ms),
        topic,
        partition,
        offset,
    )
