"""Metric definitions, Prometheus configuration, alert rules and the Grafana dashboard."""
