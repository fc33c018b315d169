"""The pure mapping of a profile record (schemas/profile.avsc) to its row in the profile tables.

The row's document is built straight from the record's packed columns: each section's numbers are
unpacked in one call and its text split in one, then every record becomes two small dicts (its
lineage and its data) that orjson serialises in C. Going through `Profile` objects first (their
NamedTuples, `_asdict`, the json module) cost about a millisecond a profile; this is a third of it.
"""

from __future__ import annotations

import datetime as dt
import struct
from typing import Any

from consumers.sink.documents import to_json
from consumers.sink.tables import Record, Row
from exchange.profile import ProfileFormError
from exchange.profile_avro import (
    DOCUMENT_FORM,
    SECTIONS,
    section_columns,
    social_from_avro,
    social_record,
    tax_from_avro,
    tax_record,
)

# Columns of a profile row, in order; the writer stages them, then fills both profile tables.
PROFILE_COLUMNS: tuple[str, ...] = (
    "subject_key",
    "version",
    "profile",
    "topic",
    "kafka_partition",
    "kafka_offset",
)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def latest_published_at(record: Record) -> dt.datetime | None:
    """The latest published_at folded into the profile, for freshness; None when it was not recorded."""
    published: dt.datetime | None = record.get("latest_published_at")
    return None if published is None or published == EPOCH else published


def profile_document(record: Record) -> dict[str, Any]:
    """The profile as a document for jsonb: per section of records its records as columns
    (`section_columns`): a list per lineage field and "live" over every record, in source record id
    order as in the Avro form, and under "data" a list per field over the live records; and the tax and
    social sections as its Avro record has them (`tax_record`, `social_record`: months as flattened
    ranges, amounts in hundredths). `form` names this
    shape; the API reads it back (exchange/api/storage/documents.py). Values are as `from_avro` gives
    them (Decimal, date, datetime). A dict per record, as documents once were, cost three times as
    much to build and store.

    Raises `exchange.profile.ProfileFormError` when the record's columns do not fit together.
    """
    document: dict[str, Any] = {
        "form": DOCUMENT_FORM,
        "subject_key": record["subject_key"],
        "version": record["version"],
        "updated_at": record["updated_at"],
        "latest_published_at": latest_published_at(record),
    }
    try:
        for name in SECTIONS:
            document[name] = section_columns(name, record[name])
        document["tax"] = tax_record(record)
        document["social"] = social_record(record)
        # Sections the API could not read back are refused here.
        tax_from_avro(document["tax"])
        social_from_avro(document["social"])
    except (ValueError, IndexError, KeyError, TypeError, ArithmeticError, struct.error) as exc:
        raise ProfileFormError(f"profile record {record['subject_key']} is inconsistent: {exc}") from exc
    return document


def profile_row(record: Record, topic: str, partition: int, offset: int) -> Row:
    """The row of one profile version, in `PROFILE_COLUMNS` order, the profile as `profile_document`.

    The tables date a version from the transaction that writes it (consumers.sink.history), not from
    the `updated_at` the processor stamped on it, which the document keeps.
    """
    return (
        record["subject_key"],
        record["version"],
        to_json(profile_document(record)),
        topic,
        partition,
        offset,
    )
