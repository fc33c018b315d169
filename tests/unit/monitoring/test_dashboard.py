"""The Grafana dashboard: valid JSON, every query on a metric that exists, provisioned as compose expects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.metrics import MetricWrapperBase
from series import known_series, metric_names, sample_names

from exchange import lag, relay_lag
from monitoring import metrics

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "monitoring" / "dashboards" / "exchange.json"
PROVISIONING = ROOT / "docker" / "grafana" / "provisioning"


def _panels() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_the_extraction_finds_metrics_only() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, route) (rate(exchange_api_request_seconds_bucket{status=~"5.."}'
        "[$__rate_interval]))) / sum(rate(x_total[5m] offset 1h)) and on (job) up"
    )
    assert metric_names(expr) == {"exchange_api_request_seconds_bucket", "x_total", "up"}


def test_every_query_selects_metrics_the_exchange_exports() -> None:
    known = known_series()
    panels = _panels()
    assert panels
    for panel in panels:
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, f"panel {panel['title']!r}: {target['expr']!r} selects no metric"
            assert names <= known, f"panel {panel['title']!r} uses unknown metrics {sorted(names - known)}"


def test_the_dashboard_shows_what_operators_watch() -> None:
    used = {
        name for panel in _panels() for target in panel["targets"] for name in metric_names(target["expr"])
    }
    for wanted in (
        "exchange_connector_records_published_total",
        "exchange_connector_records_read_total",
        "exchange_connector_records_rejected_total",
        "kafka_consumergroup_lag_sum",
        "exchange_sink_freshness_seconds_bucket",
        "exchange_api_request_seconds_bucket",
        "exchange_api_refusals_total",
        "exchange_proofs_issued_total",
        "exchange_decisions_total",
        "exchange_processor_fold_seconds_bucket",
        "exchange_processor_batch_events_bucket",
        "exchange_sink_commit_seconds_bucket",
        "exchange_audit_relay_behind_rows",
    ):
        assert wanted in used, f"no panel shows {wanted}"


def test_every_metric_in_monitoring_metrics_is_on_the_dashboard_or_in_an_alert() -> None:
    # A metric nobody can see answers no operator's question: the processor's full collections (the
    # pauses in its folding) were measured and shown nowhere.
    rules = yaml.safe_load((ROOT / "monitoring" / "alerts.yml").read_text(encoding="utf-8"))
    exprs = [target["expr"] for panel in _panels() for target in panel["targets"]]
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in exprs for name in metric_names(expr)}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            assert sample_names(value) & used, f"{value._name} is on no panel and in no alert"
    # and the two exporters': the broker's end offsets and the groups' committed ones were on no panel.
    for name in lag.EXPORTED_NAMES + relay_lag.EXPORTED_NAMES:
        assert name in used, f"{name} is on no panel and in no alert"


def test_panels_use_the_provisioned_datasource_and_do_not_overlap() -> None:
    datasource = (PROVISIONING / "datasources" / "prometheus.yml").read_text(encoding="utf-8")
    uid = re.search(r"^\s+uid: (\S+)$", datasource, re.M)
    assert uid is not None
    taken: set[tuple[int, int]] = set()
    for panel in _panels():
        assert panel["datasource"]["uid"] == uid.group(1), panel["title"]
        grid = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert not cells & taken, f"panel {panel['title']!r} overlaps another"
        taken |= cells


def test_compose_mounts_the_dashboards_where_grafana_is_told_to_look() -> None:
    provider = (PROVISIONING / "dashboards" / "exchange.yml").read_text(encoding="utf-8")
    path = re.search(r"^\s+path: (\S+)$", provider, re.M)
    assert path is not None
    compose = (ROOT / "docker" / "compose.yml").read_text(encoding="utf-8")
    assert f'"../monitoring/dashboards:{path.group(1)}:ro"' in compose
    assert '"./grafana/provisioning:/etc/grafana/provisioning:ro"' in compose
