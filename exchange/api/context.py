"""What every request handler and the approvals consumer share: settings, policy, pool, signer, secret."""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg_pool import AsyncConnectionPool

from exchange.api.appender import AuditAppender
from exchange.api.exceptions import InvalidRequestError
from exchange.api.profile_cache import ProfileCache
from exchange.api.signing import Signer
from exchange.api.storage.pool import Connection, create_audit_pool
from exchange.exceptions import InvalidIdentifierError
from exchange.policy import Access, Policy, Verdict
from exchange.settings import ExchangeSettings
from exchange.subjects import normalise_citizen_id, subject_key

# Subjects whose key each process remembers (`Services.subject`): validating a 公民身份号码 and taking its
# HMAC cost more per request than the dict lookup. Bounded, as the IDs are whatever callers send.
_SUBJECTS = 8192


@dataclass(frozen=True)
class Services:
    """The process-wide collaborators, built once at start (`create_api`, `exchange approvals`)."""

    settings: ExchangeSettings
    policy: Policy
    pool: AsyncConnectionPool[Connection]
    signer: Signer
    # The process's one audit appender (group commit), over a connection of its own (`audit_pool`), so
    # that a batch never waits behind the requests' reads for one of `pool`'s.
    audit: AuditAppender = field(init=False)
    audit_pool: AsyncConnectionPool[Connection] = field(init=False)
    # Decoded profiles, by subject (exchange.api.storage.profiles).
    profiles: ProfileCache = field(init=False)
    # The policy's verdict per access asked (exchange.api.access.grant_for): `policy` never changes.
    verdicts: dict[Access, Verdict] = field(init=False)
    # The normalised ID and subject key per valid 公民身份号码 as sent (`subject`); the secret never changes.
    subjects: dict[str, tuple[str, str]] = field(init=False)

    def __post_init__(self) -> None:
        audit_pool = create_audit_pool(self.settings)
        appender = AuditAppender(audit_pool, min_interval=self.settings.api.audit_batch_interval_seconds)
        object.__setattr__(self, "audit_pool", audit_pool)
        object.__setattr__(self, "audit", appender)
        object.__setattr__(self, "verdicts", {})
        object.__setattr__(self, "subjects", {})
        object.__setattr__(self, "profiles", ProfileCache(self.settings.api.profile_cache_entries))

    async def open(self) -> None:
        """Open both pools, waiting (up to the pool timeout) for their first connections; if the second
        cannot open, the first is closed again."""
        timeout = self.settings.api.pool_timeout_seconds
        await self.pool.open(wait=True, timeout=timeout)
        try:
            await self.audit_pool.open(wait=True, timeout=timeout)
        except BaseException:
            await self.pool.close()
            raise

    async def close(self) -> None:
        """Write the audit entries already handed over, then close both pools."""
        try:
            await self.audit.close()
        finally:
            await self.audit_pool.close()
            await self.pool.close()

    def subject(self, citizen_id: str, location: tuple[str, ...] = ("body", "subject")) -> tuple[str, str]:
        """The normalised 公民身份号码 and its subject key; `InvalidRequestError` naming the broken rule."""
        known = self.subjects.get(citizen_id)
        if known is not None:
            return known
        try:
            normalised = normalise_citizen_id(citizen_id)
        except InvalidIdentifierError as exc:
            raise InvalidRequestError(
                f"{location[-1]} is not a valid 公民身份号码: {exc.message} ({exc.reason})", location
            ) from exc
        known = normalised, subject_key(normalised, self.settings.subject_secret.get_secret_value().encode())
        if len(self.subjects) >= _SUBJECTS:
            self.subjects.clear()
        self.subjects[citizen_id] = known
        return known

    def subject_key(self, citizen_id: str, location: tuple[str, ...] = ("body", "subject")) -> str:
        """The subject key of a 公民身份号码 (see `subject`)."""
        return self.subject(citizen_id, location)[1]
