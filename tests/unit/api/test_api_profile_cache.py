"""The decoded-profile cache: a subject's version is reused only while it is the one asked for, newer
versions replace older ones, and the least recently used subject goes first."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from exchange.api import profile_cache
from exchange.api.profile_cache import ProfileCache
from exchange.facts import compute
from exchange.profile import Profile, empty_profile


def _profile(subject: str, version: int) -> Profile:
    return dataclasses.replace(empty_profile(subject), version=version)


def test_a_cached_profile_is_reused_only_for_its_version() -> None:
    cache = ProfileCache(4)
    cache.put(_profile("a", 3))
    assert cache.version("a") == 3 and cache.get("a", 3) == _profile("a", 3)
    assert cache.get("a", 4) is None and cache.version("b") is None and cache.get("b", 3) is None


def test_an_older_version_never_replaces_a_newer_one() -> None:
    cache = ProfileCache(4)
    cache.put(_profile("a", 5))
    cache.put(_profile("a", 2))  # an as-of read
    assert cache.version("a") == 5
    cache.put(_profile("a", 6))
    assert cache.version("a") == 6


def test_the_least_recently_used_subject_is_dropped_first() -> None:
    cache = ProfileCache(2)
    cache.put(_profile("a", 1))
    cache.put(_profile("b", 1))
    assert cache.get("a", 1) is not None  # a is now the most recently used
    cache.put(_profile("c", 1))
    assert cache.version("b") is None and cache.version("a") == 1 and cache.version("c") == 1


def test_a_cache_of_no_entries_keeps_nothing() -> None:
    cache = ProfileCache(0)
    cache.put(_profile("a", 1))
    assert cache.version("a") is None


def test_facts_are_computed_once_per_subject_version_and_day() -> None:
    cache = ProfileCache(4)
    day = dt.date(2026, 11, 15)
    first = cache.facts(_profile("a", 1), day)
    assert first == compute(_profile("a", 1), day)
    assert cache.facts(_profile("a", 1), day) is first  # reused, not recomputed
    assert cache.facts(_profile("a", 2), day) is not first  # a newer version
    assert cache.facts(_profile("a", 1), day + dt.timedelta(days=1)) is not first  # another day
    with pytest.raises(TypeError):
        first["identity.status"] = first["identity.status"]  # type: ignore[index]


def test_whether_facts_have_spans_to_resolve_is_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    found: list[int] = []

    def counted(facts: Any) -> Any:
        found.append(len(facts))
        return {"tax": ((0, 1),)} if len(found) == 1 else {}  # spans at first, none once resolved

    monkeypatch.setattr(profile_cache, "spans", counted)
    cache = ProfileCache(4)
    day = dt.date(2026, 11, 15)
    facts, unresolved = cache.facts_to_resolve(_profile("a", 1), day)
    assert unresolved and cache.facts_to_resolve(_profile("a", 1), day) == (facts, True)
    resolved = cache.resolved(_profile("a", 1), day, dict(facts))
    assert cache.facts_to_resolve(_profile("a", 1), day) == (resolved, False)
    assert cache.facts(_profile("a", 1), day) is resolved
    assert len(found) == 2  # once when computed, once when resolved: never per request
