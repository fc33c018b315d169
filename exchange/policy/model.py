"""The policy's plain data: callers, their grants, the 证明事项 catalogue, and the loaded whole."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from exchange.rules import ServiceItem


@dataclass(frozen=True, slots=True)
class Caller:
    """An approval service allowed to call the exchange; its API key is kept only as a SHA-256 hash."""

    code: str
    name_zh: str
    name_en: str
    api_key_sha256: str
    # The certificate subject that identifies it under mutual TLS (deployment); None where unused.
    tls_subject: str | None


@dataclass(frozen=True, slots=True)
class Grant:
    """What one caller may do for one purpose (事项), on which legal basis, and whether consent is needed.

    `facts` are the facts it may ask yes/no claims about; `profile_fields` the facts whose values it
    may read; a fact in `facts` only is never disclosed, only verified (minimal disclosure).
    """

    caller: str
    purpose: str
    legal_basis: str
    consent_required: bool
    facts: frozenset[str]
    profile_fields: frozenset[str]
    proof_types: frozenset[str]
    service_items: frozenset[str]
    subject_audit: bool


@dataclass(frozen=True, slots=True)
class Department:
    """The department that issues a proof type."""

    code: str
    name_zh: str
    name_en: str


@dataclass(frozen=True, slots=True)
class ProofType:
    """证明事项: an electronic proof the exchange issues instead of a paper one."""

    code: str
    name_zh: str
    name_en: str
    legal_basis: str
    issuing_department: Department
    datasets: tuple[str, ...]
    data_used: str
    # Whether the proof covers a requested period (tax, social) or the state now (property, household).
    period: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """Every policy file, loaded and cross-checked; `version` is the SHA-256 of the files' bytes."""

    version: str
    callers: Mapping[str, Caller]
    grants: Mapping[str, Mapping[str, Grant]]  # caller -> purpose -> grant
    proof_types: Mapping[str, ProofType]
    service_items: Mapping[str, ServiceItem]
    # The files' bytes (file name → bytes), kept with the version in `policy_versions`.
    files: Mapping[str, bytes] = field(default_factory=dict, repr=False, compare=False)

    # The callers by API key hash and by certificate subject (`parse` refuses two callers sharing one).
    _by_key_hash: Mapping[str, Caller] = field(init=False, repr=False, compare=False)
    _by_tls_subject: Mapping[str, Caller] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        callers = self.callers.values()
        object.__setattr__(self, "_by_key_hash", {caller.api_key_sha256: caller for caller in callers})
        by_subject = {caller.tls_subject: caller for caller in callers if caller.tls_subject is not None}
        object.__setattr__(self, "_by_tls_subject", by_subject)

    def caller_by_tls_subject(self, subject: str) -> Caller | None:
        """The caller a verified client certificate subject belongs to, if any."""
        return self._by_tls_subject.get(subject)

    def caller_by_key_hash(self, key_sha256: str) -> Caller | None:
        """The caller whose API key hashes to `key_sha256`, if any."""
        return self._by_key_hash.get(key_sha256)
