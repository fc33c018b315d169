"""`exchange bench api`'s ratio: each verification phase against the bare route's phase of its own round."""

from __future__ import annotations

from bench import http_load
from bench.api import Phase, at_rate, latency_goal_met, phase_name, ratios
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


def _at_rate(offered: float | None, latencies: list[float], failures: int = 0) -> http_load.Outcome:
    outcome = http_load.Outcome(latencies=latencies, seconds=5.0, offered=offered)
    outcome.statuses[200] = len(latencies)
    if failures:
        outcome.failures["TimeoutError"] = failures
    return outcome


def test_the_latency_goal_is_judged_on_the_open_loop_at_the_goals_rate() -> None:
    fast = [0.005] * 990 + [0.019] * 10
    assert latency_goal_met(_at_rate(2000.0, fast))
    assert not latency_goal_met(_at_rate(1900.0, fast))  # offered below the goal's rate
    assert not latency_goal_met(_at_rate(None, fast))  # a closed loop says nothing about a rate
    assert not latency_goal_met(_at_rate(2000.0, fast, failures=1))  # a request went unanswered
    assert not latency_goal_met(_at_rate(2000.0, [0.005] * 980 + [0.025] * 20))  # p99 25 ms


def test_the_latency_goal_is_judged_on_the_verifications_at_a_rate_not_on_the_bare_route() -> None:
    slow = _at_rate(2000.0, [0.005] * 980 + [0.025] * 20)
    fast = _at_rate(2000.0, [0.002] * 1000)
    phases = [
        Phase(phase_name("verifications", 2000.0), "idle", slow, Usage(0.0, {})),
        Phase(phase_name("bare route", 2000.0), "idle", fast, Usage(0.0, {}), server="bare"),
        Phase("verifications", "idle", _at_rate(None, [0.001] * 100), Usage(0.0, {}), round=1),
    ]
    assert at_rate(phases, "verifications") == [slow]
    assert at_rate(phases, "bare route") == [fast]
    assert not any(latency_goal_met(outcome) for outcome in at_rate(phases, "verifications"))
