"""Reading the dead-letter topic back, for `exchange deadletters` and for tests."""

from __future__ import annotations

from typing import Any

from exchange.logs import read_all
from exchange.settings import ExchangeSettings
from exchange.topics import DEADLETTER


def read_deadletters(settings: ExchangeSettings, *, department: str | None = None) -> list[dict[str, Any]]:
    """Every dead letter on the topic now, oldest first, optionally of one department; one per event id,
    the first sent (a connector restarted mid-chunk sends that chunk's rejections again)."""
    letters: dict[str, dict[str, Any]] = {}
    for record in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka)):
        if department is None or record.value["department"] == department:
            letters.setdefault(record.value["event_id"], record.value)
    return sorted(letters.values(), key=lambda letter: letter["rejected_at"])
