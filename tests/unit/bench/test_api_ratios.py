"""`exchange bench api`'s ratio: each verification phase against the bare route's phase of its own round."""

from __future__ import annotations

from bench import http_load
from bench.api import Phase, ratios
from bench.cpu_usage import Usage


def _phase(kind: str, load: str, round_: int | None, per_second: float) -> Phase:
    outcome = http_load.Outcome(latencies=[0.01] * int(per_second), seconds=1.0)
    return Phase(kind, load, outcome, Usage(0.0, {}), round=round_)


def test_each_round_is_the_ratio_of_its_own_pair_in_round_order() -> None:
    phases = [
        _phase("verifications", "idle", 2, 900),
        _phase("bare route", "idle", 1, 2000),
        _phase("verifications", "idle", 1, 1000),
        _phase("bare route", "idle", 2, 1000),
        _phase("verifications", "pipeline", None, 300),
        _phase("bare route", "pipeline", None, 600),
        _phase("proofs (household)", "idle", None, 500),
    ]
    assert ratios(phases, "verifications", "idle") == [0.5, 0.9]
    assert ratios(phases, "verifications", "pipeline") == [0.5]
