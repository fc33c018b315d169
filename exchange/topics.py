"""Every topic the exchange uses, declared once: name, partitions, retention or compaction, schema."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from exchange.settings import KafkaSettings


class Cleanup(Enum):
    """How Kafka keeps a topic's records."""

    FOREVER = "forever"  # delete policy, no time or size limit: the log is the system of record
    LONG = "long"  # delete policy, a year
    COMPACT = "compact"  # the latest record per key


@dataclass(frozen=True)
class Topic:
    """A topic of the exchange; `subject_keyed` topics share one partition count (co-partitioned)."""

    name: str
    schema: str | None
    cleanup: Cleanup
    subject_keyed: bool
    # A compacted topic keeps every record at least this long before the cleaner may drop older ones.
    compaction_lag_ms: int = 60_000

    def full_name(self, kafka: KafkaSettings) -> str:
        """The name on the broker, with the configured prefix."""
        return f"{kafka.topic_prefix}{self.name}"

    def partitions(self, kafka: KafkaSettings) -> int:
        """Subject topics are co-partitioned; the rest use the same count for simplicity of operation."""
        return kafka.subject_partitions

    def configs(self) -> dict[str, str]:
        """Topic-level configuration for creation."""
        if self.cleanup is Cleanup.COMPACT:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": str(self.compaction_lag_ms)}
        if self.cleanup is Cleanup.LONG:
            return {"cleanup.policy": "delete", "retention.ms": str(365 * 24 * 3600 * 1000)}
        return {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


IDENTITY_PERSON = Topic("identity.person.v1", "identity.person", Cleanup.FOREVER, True)
TAX_PAYMENT = Topic("tax.payment.v1", "tax.payment", Cleanup.FOREVER, True)
SOCIAL_CONTRIBUTION = Topic("social.contribution.v1", "social.contribution", Cleanup.FOREVER, True)
PROPERTY_TITLE = Topic("property.title.v1", "property.title", Cleanup.FOREVER, True)
DEADLETTER = Topic("exchange.deadletter.v1", "deadletter", Cleanup.LONG, False)
# The sink writes profile history from this topic alone: a version compacted away before the sink read
# it is gone from the history. So every version stays a week, the longest sink outage or lag the
# exchange tolerates; past that, `exchange rebuild` keeps the history that is left.
PROFILE_VERSIONS_KEPT_MS = 7 * 24 * 3600 * 1000
PROFILE = Topic(
    "exchange.profile.v1", "profile", Cleanup.COMPACT, True, compaction_lag_ms=PROFILE_VERSIONS_KEPT_MS
)
APPLICATIONS = Topic("exchange.applications.v1", "application", Cleanup.FOREVER, True)
DECISIONS = Topic("exchange.decisions.v1", "decision", Cleanup.FOREVER, True)
AUDIT = Topic("exchange.audit.v1", "audit", Cleanup.FOREVER, False)
CONSENT = Topic("exchange.consent.v1", "consent", Cleanup.FOREVER, True)
SCHEMAS = Topic("exchange.schemas.v1", None, Cleanup.COMPACT, False)

DATASET_TOPICS: tuple[Topic, ...] = (IDENTITY_PERSON, TAX_PAYMENT, SOCIAL_CONTRIBUTION, PROPERTY_TITLE)
ALL_TOPICS: tuple[Topic, ...] = (
    *DATASET_TOPICS,
    DEADLETTER,
    PROFILE,
    APPLICATIONS,
    DECISIONS,
    AUDIT,
    CONSENT,
    SCHEMAS,
)

BY_DATASET: dict[str, Topic] = {topic.schema: topic for topic in DATASET_TOPICS if topic.schema}


def sink_group(kafka: KafkaSettings) -> str:
    """The sink's consumer group; its name keys the offsets in PostgreSQL (`consumer_offsets`), so it never
    changes. Proofs read how far it has loaded each topic (exchange.api.storage.records)."""
    return f"{kafka.topic_prefix}exchange-sink"
