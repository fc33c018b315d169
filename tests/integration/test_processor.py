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
from exchange.streams import create_app
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


async def test_the_processors_fetches_wait_for_data_at_most_the_configured_time(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # faust has aiokafka wait 1.5 s: a fetch held for quiet partitions kept a busy partition's next
    # records back that long, and the profiles were 1.5 s late at half load.
    settings = settings.model_copy(
        update={
            "processor": settings.processor.model_copy(
                update={"datadir": tmp_path, "store": "memory://", "fetch_max_wait_seconds": 0.08}
            )
        }
    )
    app = create_app(settings)
    consumer = app.consumer._new_consumer_thread()._create_worker_consumer(app.transport)
    await consumer.start()  # the fetcher is made here, from what the consumer was given
    try:
        assert consumer._fetcher._fetch_max_wait_ms == 80
    finally:
        await consumer.stop()
