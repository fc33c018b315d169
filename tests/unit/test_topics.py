"""Topic declarations that the exchange's guarantees rest on."""

from __future__ import annotations

from exchange import topics


def test_the_profile_topic_keeps_every_version_a_week_before_compaction() -> None:
    # The sink writes the profile history from this topic alone. Kept a minute, a sink down or behind
    # for longer lost every version the cleaner dropped meanwhile: as-of answers skipped them.
    configs = topics.PROFILE.configs()
    assert configs["cleanup.policy"] == "compact"
    assert int(configs["min.compaction.lag.ms"]) == 7 * 24 * 3600 * 1000
    # The schema topic holds only the latest of each schema, and needs no such lag.
    assert topics.SCHEMAS.configs()["min.compaction.lag.ms"] == "60000"
