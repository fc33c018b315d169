"""docker/compose.yml runs every process monitoring/prometheus.yml scrapes, on the port it scrapes, and
keeps Kafka's log where a recreated container finds it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from exchange.settings import ApiSettings, MonitoringSettings, ProcessorSettings

ROOT = Path(__file__).resolve().parents[3]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker" / "compose.yml").read_text(encoding="utf-8"))
    return loaded


def _scraped() -> set[int]:
    prometheus = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text(encoding="utf-8"))
    return {
        int(target.rsplit(":", 1)[1])
        for job in prometheus["scrape_configs"]
        if job["job_name"].startswith("exchange-")
        for group in job["static_configs"]
        for target in group["targets"]
    }


# The defaults compose runs with (the settings' own; this process's EXCHANGE_* environment aside).
MONITORING = MonitoringSettings()


def _served(service: dict[str, Any]) -> int | None:
    """The port a compose service serves /metrics on: its EXCHANGE_METRICS_PORT, or its command's own."""
    port = (service.get("environment") or {}).get("EXCHANGE_METRICS_PORT")
    if port is not None:
        return int(port)
    own = {
        "process": ProcessorSettings().web_port,
        "api": ApiSettings().port,
        "lag-exporter": MONITORING.lag_exporter_port,
    }
    command = service.get("command") or []
    return own.get(command[1]) if command[:1] == ["exchange"] and len(command) > 1 else None


def test_every_process_prometheus_scrapes_runs_in_compose_on_that_port() -> None:
    # Only a one-off tax connector was there: ExchangeProcessDown fired for every connector, always.
    services = _compose()["services"]
    served = {_served(service) for service in services.values()}
    assert _scraped() - served == set()
    connectors = [service for service in services.values() if service.get("command", [])[1:2] == ["connect"]]
    assert sorted(service["environment"]["EXCHANGE_METRICS_PORT"] for service in connectors) == [
        str(port) for port in sorted(MONITORING.connector_ports.values())
    ]
    # They keep running: tailing their export or polling the registry, and restarted if they stop.
    assert all("--follow" in service["command"] and service.get("restart") for service in connectors)
    assert all("profiles" not in service for service in connectors)


def test_kafka_keeps_its_log_on_a_named_volume() -> None:
    # Left in the container's /tmp, a recreated Kafka came back empty while PostgreSQL's data and the
    # processes' positions (named volumes) pointed past its end.
    compose = _compose()
    kafka = compose["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = dict(volume.split(":")[:2][::-1] for volume in kafka["volumes"])
    assert mounts[log_dirs] in compose["volumes"]
