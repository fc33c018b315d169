"""The Prometheus configuration and alert rules pass promtool, and each alert is tested both ways."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from series import known_series, metric_names

MONITORING = Path(__file__).resolve().parents[3] / "monitoring"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: run `make promtool` (it installs Debian's prometheus package)",
            pytrace=False,
        )
    return subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", "alerts.yml"),
        ("check", "config", "prometheus.yml"),
        ("test", "rules", "alerts_test.yml"),
    ],
    ids=["check-rules", "check-config", "test-rules"],
)
def test_promtool_accepts(args: tuple[str, ...]) -> None:
    result = _promtool(*args)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


def _alert_blocks() -> dict[str, str]:
    text = (MONITORING / "alerts.yml").read_text(encoding="utf-8")
    parts = re.split(r"^\s+- alert: ", text, flags=re.M)[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def test_every_alert_says_what_to_do() -> None:
    blocks = _alert_blocks()
    assert len(blocks) >= 6
    for name, block in blocks.items():
        assert "summary:" in block and "description:" in block, f"{name} lacks a summary or a description"
        assert re.search(r"severity: (warning|critical)", block), f"{name} lacks a severity"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = (MONITORING / "alerts_test.yml").read_text(encoding="utf-8")
    for name in _alert_blocks():
        quiet = re.search(rf"alertname: {name}\n\s+exp_alerts: \[\]", tests)
        firing = re.search(rf"alertname: {name}\n\s+exp_alerts:\n\s+- exp_labels:", tests)
        assert quiet, f"no test shows {name} staying quiet"
        assert firing, f"no test shows {name} firing"


def test_every_rule_reads_series_the_exchange_exports_or_records() -> None:
    groups = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    known = known_series() | {rule["record"] for rule in rules if "record" in rule}
    for rule in rules:
        name = rule.get("alert") or rule["record"]
        selected = metric_names(rule["expr"])
        assert selected, f"{name}: {rule['expr']!r} selects no metric"
        assert selected <= known, f"{name} reads unknown series {sorted(selected - known)}"
