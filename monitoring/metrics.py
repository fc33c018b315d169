"""Every metric of the exchange, defined once (Prometheus naming: base units, `_total` on counters).

Labels never carry identifiers: departments, datasets, reasons, topics, partitions, routes only.
Histogram buckets are explicit and in seconds.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Latency from milliseconds to tens of seconds, in seconds.
# 0.02 and 0.5: the API's p99 objective and the freshness one (issues 4 and 5) are bucket bounds, so a
# p99 read from the histogram says on which side of its objective it is, not a guess between bounds.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0
)  # fmt: skip

CONNECTOR_RECORDS_READ = Counter(
    "exchange_connector_records_read_total",
    "Native records a connector read from its department's export",
    ["department"],
)
CONNECTOR_RECORDS_PUBLISHED = Counter(
    "exchange_connector_records_published_total",
    "Canonical records a connector published and the broker acknowledged",
    ["department", "dataset"],
)
CONNECTOR_RECORDS_REJECTED = Counter(
    "exchange_connector_records_rejected_total",
    "Native records a connector dead-lettered, by reason code",
    ["department", "reason"],
)
CONNECTOR_PUBLISH_SECONDS = Histogram(
    "exchange_connector_publish_latency_seconds",
    "Time from handing a batch to the producer to the broker acknowledging all of it",
    ["department"],
    buckets=LATENCY_BUCKETS,
)

PROCESSOR_EVENTS = Counter(
    "exchange_processor_events_total",
    "Events the processor folded into profiles",
    ["dataset"],
)
PROCESSOR_PROFILES_EMITTED = Counter(
    "exchange_processor_profiles_emitted_total",
    "Profile versions the processor published to exchange.profile.v1",
)
PROCESSOR_BATCH_EVENTS = Histogram(
    "exchange_processor_batch_events",
    "Events per folded batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000),
)
PROCESSOR_FOLD_SECONDS = Histogram(
    "exchange_processor_fold_seconds",
    "Time to fold one batch into its subjects' profiles, encoding included",
    buckets=LATENCY_BUCKETS,
)
PROCESSOR_FULL_COLLECTION_SECONDS = Histogram(
    "exchange_processor_full_collection_seconds",
    "Time of one of Python's full garbage collections, run between batches (exchange.gc_pacing)",
    buckets=LATENCY_BUCKETS,
)
PROCESSOR_REBALANCES = Counter(
    "exchange_processor_rebalances_total",
    "Consumer group rebalances the processor went through (its partitions moved, or a worker came or went)",
)
PROCESSOR_REBALANCE_SECONDS = Histogram(
    "exchange_processor_rebalance_seconds",
    "Time from a rebalance starting to the processor folding again, its table's recovery included",
    buckets=(*LATENCY_BUCKETS, 60.0, 120.0, 300.0),
)

# Freshness spans a sink that keeps up (seconds) and one replaying history (days), in seconds.
FRESHNESS_BUCKETS = (*LATENCY_BUCKETS, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0, 604800.0)

SINK_FRESHNESS_SECONDS = Histogram(
    "exchange_sink_freshness_seconds",
    "Time from a record's published_at (a profile's latest_published_at) to the sink committing it",
    ["table"],
    buckets=FRESHNESS_BUCKETS,
)
SINK_COMMIT_SECONDS = Histogram(
    "exchange_sink_commit_seconds",
    "Time to write one batch to PostgreSQL and commit it with its offsets, retries included",
    buckets=LATENCY_BUCKETS,
)
SINK_ROWS_WRITTEN = Counter(
    "exchange_sink_rows_written_total",
    "Rows the PostgreSQL sink committed, per table",
    ["table"],
)


def observe_repeated(histogram: Histogram, value: float, count: int) -> None:
    """Record `count` observations of one `value` at the cost of one (a labelled child, not the parent).

    prometheus_client has no weighted observe, and calling `observe` once per row cost the sink
    about as much as COPYing the row; many rows share one value (a connector stamps a whole chunk
    with one published_at), so the sink observes each distinct value once with its count. Relies on
    prometheus_client's Histogram internals (pinned); tests/unit/consumers checks it against `observe`.
    """
    if histogram._labelnames and not histogram._labelvalues:
        raise ValueError(f"{histogram._name}: observe a labelled child, e.g. .labels(table=...)")
    histogram._sum.inc(value * count)
    for index, bound in enumerate(histogram._upper_bounds):
        if value <= bound:
            histogram._buckets[index].inc(count)
            break


# Operators: the lag exporter's own health (issue "Operators").
LAG_SCRAPE_ERRORS = Counter(
    "exchange_lag_scrape_errors_total",
    "Scrapes of consumer lag that failed to read offsets, by where they are kept (kafka, postgres)",
    ["source"],
)

# --- the API and the approvals consumer ---------------------------------------------------------
# `route` is the path template (e.g. /v1/subjects/{subject_id}/profile), never the path itself.

API_REQUEST_SECONDS = Histogram(
    "exchange_api_request_seconds",
    "Time to answer one API request, audit append included",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
)
# Every response waits for its audit entry's batch to commit (exchange.api.appender).
API_AUDIT_BATCH_ROWS = Histogram(
    "exchange_api_audit_batch_rows",
    "Audit rows appended per batch: the entries of concurrent requests are committed together",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
API_AUDIT_COMMIT_SECONDS = Histogram(
    "exchange_api_audit_commit_seconds",
    "Time to append one batch of audit rows to the chain and commit it, by outcome (committed, failed)",
    ["outcome"],
    buckets=LATENCY_BUCKETS,
)
API_REFUSALS = Counter(
    "exchange_api_refusals_total",
    "Requests refused by policy, consent or delegation, by reason code",
    ["route", "reason"],
)
PROOFS_ISSUED = Counter(
    "exchange_proofs_issued_total",
    "Electronic proofs signed and stored, per proof type",
    ["proof_type"],
)
DECISIONS = Counter(
    "exchange_decisions_total",
    "秒批 decisions made (API and applications topic), per service item and outcome",
    ["service_item", "outcome"],
)
