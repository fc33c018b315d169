"""The demo's progress loop: a broker that is still loading its coordinators is asked again."""

from __future__ import annotations

from typing import Any

from kafka.errors import CoordinatorLoadInProgressError

from exchange.demo import wait_until_complete


class _Offsets:
    resets = 0

    def reset(self) -> None:
        self.resets += 1


class _Progress:
    """Answers CoordinatorLoadInProgress first, as a freshly started broker does, then a finished run."""

    def __init__(self) -> None:
        self.offsets = _Offsets()
        self.calls = 0

    def snapshot(self) -> dict[str, int]:
        self.calls += 1
        if self.calls == 1:
            raise CoordinatorLoadInProgressError("ListGroupsRequest failed")
        return {"published": 10, "folded": 10, "sink_behind": 0}


class _Supervisor:
    def check(self) -> None:
        pass


def test_a_broker_loading_its_coordinators_is_asked_again() -> None:
    progress = _Progress()
    done = wait_until_complete(progress, _Supervisor(), lambda: True, 30.0, "test")  # type: ignore[arg-type]
    assert done == {"published": 10, "folded": 10, "sink_behind": 0}
    assert progress.calls == 2 and progress.offsets.resets == 1


def test_incomplete_until_the_sink_has_caught_up() -> None:
    answers: list[dict[str, Any]] = [
        {"published": 10, "folded": 10, "sink_behind": 3},
        {"published": 10, "folded": 10, "sink_behind": 0},
    ]

    class Progress(_Progress):
        def snapshot(self) -> dict[str, int]:
            self.calls += 1
            return answers[min(self.calls, 2) - 1]

    progress = Progress()
    wait_until_complete(progress, _Supervisor(), lambda: True, 30.0, "test")  # type: ignore[arg-type]
    assert progress.calls == 2
