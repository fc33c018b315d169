"""The per-dataset record tables of migration 0002 and the pure mapping of a record to its COPY row.

Every table holds every version of every source record, append-only. A row is the Kafka lineage,
the envelope, then the dataset's own fields in schema order, values as fastavro decodes them (str,
int, Decimal, date, timezone-aware datetime, bool) — COPY adapts them, so the mapping is a few
C-level tuple operations per record rather than Python code per field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from psycopg import sql

from consumers.sink.documents import to_json
from exchange import topics
from exchange.topics import Topic

Record = Mapping[str, Any]
Row = tuple[Any, ...]
# (subject key, topic, partition, offset): where the record was read, prepended to its row.
Lineage = tuple[str, str, int, int]

LINEAGE_COLUMNS: tuple[str, ...] = ("subject_key", "topic", "kafka_partition", "kafka_offset")
ENVELOPE_COLUMNS: tuple[str, ...] = (
    "event_id",
    "department",
    "source_record_id",
    "source_version",
    "op",
    "occurred_at",
    "published_at",
    "trace_id",
)
# Where published_at sits in every record row, for the freshness metric.
PUBLISHED_AT = len(LINEAGE_COLUMNS) + ENVELOPE_COLUMNS.index("published_at")


def _values(names: Sequence[str]) -> Callable[[Record], Row]:
    """A C-level getter of `names` from a record, always returning a tuple."""
    if len(names) == 1:
        name = names[0]
        return lambda record: (record[name],)
    return itemgetter(*names)


_envelope_values = _values(ENVELOPE_COLUMNS)


class RecordTable:
    """A dataset's table of record versions: its name, its columns, and how a record becomes a row."""

    __slots__ = ("_field_values", "_json_fields", "columns", "copy", "dataset", "name", "topic")

    def __init__(
        self, topic: Topic, name: str, fields: Sequence[str], json_fields: Sequence[str] = ()
    ) -> None:
        if topic.schema is None:
            raise ValueError(f"topic {topic.name} has no schema")
        self.topic = topic
        self.dataset = topic.schema
        self.name = name
        self.columns = (*LINEAGE_COLUMNS, *ENVELOPE_COLUMNS, *fields, *json_fields)
        self.copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, self.columns))
        )
        self._field_values = _values(fields)
        self._json_fields = tuple(json_fields)

    def row(self, record: Record, lineage: Lineage) -> Row:
        """The COPY row of a decoded record of this dataset, in `columns` order."""
        row = lineage + _envelope_values(record["envelope"]) + self._field_values(record)
        if self._json_fields:
            row += tuple(to_json(record[name]) for name in self._json_fields)
        return row


IDENTITY_PERSON = RecordTable(
    topics.IDENTITY_PERSON,
    "identity_person_records",
    (
        "citizen_id",
        "name",
        "sex",
        "ethnicity",
        "birth_date",
        "address",
        "district",
        "household_type",
        "status",
    ),
)
TAX_PAYMENT = RecordTable(
    topics.TAX_PAYMENT,
    "tax_payment_records",
    (
        "citizen_id",
        "name",
        "income_item",
        "period_start",
        "period_end",
        "income",
        "tax_paid",
        "withholding_agent",
        "credited_on",
        "tax_office",
    ),
)
SOCIAL_CONTRIBUTION = RecordTable(
    topics.SOCIAL_CONTRIBUTION,
    "social_contribution_records",
    (
        "citizen_id",
        "name",
        "insurance_type",
        "month",
        "employer_id",
        "employer_name",
        "base",
        "employer_amount",
        "personal_amount",
        "status",
    ),
)
PROPERTY_TITLE = RecordTable(
    topics.PROPERTY_TITLE,
    "property_title_records",
    (
        "certificate_no",
        "unit_no",
        "owner_id",
        "share",
        "location",
        "district",
        "use",
        "area",
        "registered_at",
        "status",
        "mortgaged",
        "seized",
    ),
    json_fields=("co_owners",),
)

RECORD_TABLES: tuple[RecordTable, ...] = (IDENTITY_PERSON, TAX_PAYMENT, SOCIAL_CONTRIBUTION, PROPERTY_TITLE)
