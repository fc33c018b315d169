"""Decoded profiles kept between requests: a stored profile version never changes, so a subject's
`Profile` rebuilt from its jsonb document can be reused until the sink writes a newer version, and so
can the facts computed from it on a given day (`facts.compute` is a pure function of the two), their
month spans resolved to lines once (`resolved`)."""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Mapping
from types import MappingProxyType

from exchange.facts import Fact, compute, spans
from exchange.profile import Profile


class ProfileCache:
    """The latest decoded profile of up to `entries` subjects, least recently used dropped first.

    Keyed by subject key, holding one version each: a reader passes the cached version to the query,
    which then sends the document only when the stored version differs (see exchange.api.storage.profiles).
    """

    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._profiles: OrderedDict[str, Profile] = OrderedDict()
        # The facts per subject, version and day, and whether some of their lineage is still unresolved.
        self._facts: OrderedDict[tuple[str, int, dt.date], tuple[Mapping[str, Fact], bool]] = OrderedDict()

    def version(self, subject_key: str) -> int | None:
        """The version cached for the subject, or None."""
        profile = self._profiles.get(subject_key)
        return None if profile is None else profile.version

    def get(self, subject_key: str, version: int) -> Profile | None:
        """The cached profile of the subject if it is `version`, else None."""
        profile = self._profiles.get(subject_key)
        if profile is None or profile.version != version:
            return None
        self._profiles.move_to_end(subject_key)
        return profile

    def put(self, profile: Profile) -> None:
        """Keep `profile` unless a newer version of the subject is cached (an as-of read loads old ones)."""
        if self._entries <= 0:
            return
        cached = self._profiles.get(profile.subject_key)
        if cached is not None and cached.version > profile.version:
            return
        self._profiles[profile.subject_key] = profile
        self._profiles.move_to_end(profile.subject_key)
        while len(self._profiles) > self._entries:
            self._profiles.popitem(last=False)

    def facts(self, profile: Profile, reference_date: dt.date) -> Mapping[str, Fact]:
        """`facts.compute(profile, reference_date)`, computed once per subject, version and day (read-only:
        the mapping is shared by every request that asks)."""
        return self.facts_to_resolve(profile, reference_date)[0]

    def facts_to_resolve(self, profile: Profile, reference_date: dt.date) -> tuple[Mapping[str, Fact], bool]:
        """`facts`, and whether their lineage has spans to resolve (`facts.spans`, worked out once too)."""
        key = (profile.subject_key, profile.version, reference_date)
        found = self._facts.get(key)
        if found is not None:
            self._facts.move_to_end(key)
            return found
        return self._keep(key, compute(profile, reference_date))

    def resolved(
        self, profile: Profile, reference_date: dt.date, facts: Mapping[str, Fact]
    ) -> Mapping[str, Fact]:
        """Keep `facts`, the facts of `profile` on `reference_date` with their lineage resolved, in place
        of those `facts` gave; return them as every later request will get them."""
        return self._keep((profile.subject_key, profile.version, reference_date), facts)[0]

    def _keep(
        self, key: tuple[str, int, dt.date], facts: Mapping[str, Fact]
    ) -> tuple[Mapping[str, Fact], bool]:
        found = (MappingProxyType(dict(facts)), bool(spans(facts)))
        if self._entries > 0:
            self._facts[key] = found
            self._facts.move_to_end(key)
            while len(self._facts) > self._entries:
                self._facts.popitem(last=False)
        return found
