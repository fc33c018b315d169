"""Watching the pipeline from outside, for `exchange bench pipeline`: end offsets, what the processor's
group committed in Kafka, what the sink stored in PostgreSQL, the processor's own /metrics, and how
fresh the rows in PostgreSQL are."""

from __future__ import annotations

import datetime as dt
import time
import urllib.request
from dataclasses import dataclass

import psycopg
from kafka import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql
from rich.console import Console

from consumers.sink.consumer import SINK_TOPICS, sink_group
from consumers.sink.tables import RECORD_TABLES
from exchange.lag import KafkaOffsets, stored_offsets
from exchange.settings import ExchangeSettings, PostgresSettings
from exchange.supervisor import Supervisor
from exchange.topics import DATASET_TOPICS

_console = Console()
POLL_SECONDS = 0.2


def processor_group(settings: ExchangeSettings) -> str:
    """The processor's consumer group: faust uses the app id, which carries the topic prefix."""
    return f"{settings.kafka.topic_prefix}{settings.processor.app_id}"


@dataclass(frozen=True)
class Reading:
    """One look at the pipeline."""

    published: int  # records on the dataset topics
    folded: int  # of those, committed by the processor's group
    sink_behind: int  # records and profiles on the sink's topics not yet stored in PostgreSQL

    @property
    def folded_all(self) -> bool:
        return self.folded >= self.published

    @property
    def complete(self) -> bool:
        return self.folded_all and self.sink_behind == 0


class Watch:
    """Reads how far the processor (`group`) and the sink are; like `exchange.demo.Progress`, but the
    processor's offsets are read before the end offsets: faust flushes the profiles it produced before
    it commits, so once the commit covers ends read afterwards, every profile is in those ends."""

    def __init__(self, settings: ExchangeSettings, group: str) -> None:
        self.settings = settings
        self.group = group
        self.offsets = KafkaOffsets(settings.kafka, timeout_seconds=10.0)
        kafka = settings.kafka
        self._datasets = {topic.full_name(kafka) for topic in DATASET_TOPICS}
        self._sink_topics = {topic.full_name(kafka) for topic in SINK_TOPICS}

    def read(self) -> Reading:
        """Processor offsets, then end offsets, then the sink's stored offsets."""
        kafka = self.settings.kafka
        folded = self.offsets.committed().get(self.group, {})
        ends = self.offsets.ends()
        sunk = stored_offsets(self.settings.postgres, kafka.topic_prefix, 10.0).get(sink_group(kafka), {})
        return Reading(
            published=sum(end for tp, end in ends.items() if tp.topic in self._datasets),
            folded=sum(offset for tp, offset in folded.items() if tp.topic in self._datasets),
            sink_behind=sum(
                end - sunk.get(tp, 0) for tp, end in ends.items() if tp.topic in self._sink_topics
            ),
        )

    def wait_complete(self, supervisor: Supervisor, what: str, timeout_seconds: float = 300.0) -> float:
        """Poll until everything published is folded and stored; return the perf_counter of that reading."""
        deadline = time.monotonic() + timeout_seconds
        with _console.status(what) as status:
            while True:
                supervisor.check()
                now = self.read()
                seen = time.perf_counter()
                if now.complete:
                    return seen
                status.update(
                    f"{what}: published {now.published:,}, folded {now.folded:,}, "
                    f"sink behind by {now.sink_behind:,}"
                )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what}: not complete after {timeout_seconds:.0f} s: {now}")
                time.sleep(POLL_SECONDS)

    def close(self) -> None:
        self.offsets.reset()


def await_groups(settings: ExchangeSettings, groups: list[str], supervisor: Supervisor) -> None:
    """Wait until every group has a stable membership, so that timing starts with consumers assigned."""
    client = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    deadline = time.monotonic() + 120.0
    try:
        while True:
            supervisor.check()
            states = {group["group_id"]: group["group_state"] for group in client.list_groups()}
            if all(states.get(group) == "Stable" for group in groups):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"consumer groups not stable after 120 s: {states}")
            time.sleep(POLL_SECONDS)
    finally:
        client.close()


def scrape(port: int) -> dict[str, float]:
    """The processor's /metrics samples summed over labels, by sample name; empty while it starts."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2.0) as response:
            text = response.read().decode()
    except OSError:
        return {}
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    return samples


@dataclass(frozen=True)
class Freshness:
    """published_at → the sink's transaction, over the record rows published in a window."""

    rows: int
    p50_seconds: float
    p99_seconds: float
    max_seconds: float


def freshness(postgres: PostgresSettings, since: dt.datetime, until: dt.datetime) -> Freshness:
    """Freshness of the record rows with `since <= published_at < until`, every record table together.

    `sunk_at` defaults to now(), the start of the sink's transaction: the rows became visible at its
    commit, a few milliseconds later, which this leaves out.
    """
    lags = sql.SQL(" UNION ALL ").join(
        sql.SQL(
            "SELECT extract(epoch FROM sunk_at - published_at) AS lag FROM {} "
            "WHERE published_at >= %(since)s AND published_at < %(until)s"
        ).format(sql.Identifier(table.name))
        for table in RECORD_TABLES
    )
    query = sql.SQL(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lag), "
        "percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag) FROM ({}) AS fresh"
    ).format(lags)
    with psycopg.connect(postgres.conninfo()) as conn:
        row = conn.execute(query, {"since": since, "until": until}).fetchone()
    if row is None or not row[0]:
        raise RuntimeError(f"no record rows were published between {since} and {until}")
    count, p50, p99, worst = row
    return Freshness(int(count), float(p50), float(p99), float(worst))


_PROFILE_LAGS = """
SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), max(lag),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY folded),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY folded)
FROM (
    SELECT extract(epoch FROM sunk_at - published) AS lag,
           extract(epoch FROM emitted - published) AS folded
    FROM (
        -- The processor's emitting time is in the document: the table dates a version from the sink's
        -- transaction (consumers.sink.history).
        SELECT sunk_at, (profile->>'updated_at')::timestamptz AS emitted,
               (profile->>'latest_published_at')::timestamptz AS published
        FROM profiles
    ) AS current
    WHERE published >= %(since)s AND published < %(until)s
) AS fresh
"""


@dataclass(frozen=True)
class ProfileFreshness(Freshness):
    """`Freshness` of profiles, and the part of it up to the processor emitting the profile."""

    emitted_p50_seconds: float
    emitted_p99_seconds: float


def profile_freshness(postgres: PostgresSettings, since: dt.datetime, until: dt.datetime) -> ProfileFreshness:
    """Freshness of what verifications read: for each subject whose current profile folds a record
    published in the window, that record's published_at → the sink's transaction writing the profile
    (processor and sink both on the path). One row per subject: its last profile of the window."""
    with psycopg.connect(postgres.conninfo()) as conn:
        row = conn.execute(_PROFILE_LAGS, {"since": since, "until": until}).fetchone()
    if row is None or not row[0]:
        raise RuntimeError(f"no profile folds a record published between {since} and {until}")
    count, p50, p99, worst, emitted_p50, emitted_p99 = row
    return ProfileFreshness(
        int(count), float(p50), float(p99), float(worst), float(emitted_p50), float(emitted_p99)
    )
