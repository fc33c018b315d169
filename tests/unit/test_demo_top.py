"""The `exchange top` command the demo prints reads the demo's own topics and database."""

from __future__ import annotations

import pytest

from exchange.demo import TOP_COMMAND, demo_settings
from exchange.settings import ExchangeSettings


def test_the_printed_top_command_reads_the_demos_topics_and_database(monkeypatch: pytest.MonkeyPatch) -> None:
    *assignments, program, command = TOP_COMMAND.split()
    assert (program, command) == ("exchange", "top")
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        monkeypatch.setenv(name, value)
    told = ExchangeSettings()
    demo = demo_settings(told)
    assert told.kafka.topic_prefix == demo.kafka.topic_prefix
    assert told.postgres.database == demo.postgres.database
