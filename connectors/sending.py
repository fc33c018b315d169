"""What only the sending process of a connector does with a chunk: wait for its acknowledgement and
count it into the metrics. Kept apart from `connectors.runner` so a preparing process imports
neither kafka-python nor the metrics."""

from __future__ import annotations

from connectors.mappings import Mapping
from connectors.publisher import Publisher
from connectors.runner import Summary
from monitoring import metrics


def account(mapping: Mapping, chunk: Summary) -> None:
    """Count a sent and acknowledged chunk into the connector metrics."""
    metrics.CONNECTOR_RECORDS_READ.labels(mapping.department).inc(chunk.read)
    metrics.CONNECTOR_RECORDS_PUBLISHED.labels(mapping.department, mapping.dataset).inc(chunk.published)
    for reason, count in chunk.rejected.items():
        metrics.CONNECTOR_RECORDS_REJECTED.labels(mapping.department, reason).inc(count)


def flush(mapping: Mapping, publisher: Publisher) -> None:
    """Wait for the broker to acknowledge everything queued, timing it."""
    with metrics.CONNECTOR_PUBLISH_SECONDS.labels(mapping.department).time():
        publisher.flush()
