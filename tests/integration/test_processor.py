"""The faust processor on the real stack: the samples folded into exactly the expected facts."""

from __future__ import annotations

import datetime as dt
import json
import signal
import time
from pathlib import Path

from support import SAMPLES, latest_profiles, publish_folder, start

from exchange import admin
from exchange.facts import as_json, compute
from exchange.settings import ExchangeSettings
from exchange.subjects import subject_key

EXPECTED = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))


def _facts_now(settings: ExchangeSettings) -> dict[str, dict[str, object]]:
    secret = settings.subject_secret.get_secret_value().encode()
    profiles = latest_profiles(settings)
    reference = dt.date.fromisoformat(EXPECTED["reference_date"])
    found = {}
    for citizen_id in EXPECTED["subjects"]:
        profile = profiles.get(subject_key(citizen_id, secret).encode())
        if profile is not None:
            found[citizen_id] = as_json(compute(profile, reference))
    return found


def test_the_processor_folds_the_samples_into_the_expected_facts(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    admin.ensure_topics(settings.kafka)
    publish_folder(settings, SAMPLES, tmp_path, registry_dsn=settings.postgres.conninfo())
    processor = start(settings, tmp_path, "process")
    try:
        deadline = time.monotonic() + 120
        facts: dict[str, dict[str, object]] = {}
        while time.monotonic() < deadline and processor.poll() is None:
            facts = _facts_now(settings)
            if facts == EXPECTED["subjects"]:
                break
            time.sleep(1)
        assert processor.poll() is None, (tmp_path / "process.log").read_text()[-3000:]
        assert facts == EXPECTED["subjects"]
    finally:
        processor.send_signal(signal.SIGTERM)
        code = processor.wait(timeout=60)
    assert code == 0, (tmp_path / "process.log").read_text()[-3000:]
