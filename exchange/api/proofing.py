"""Issuing and checking electronic proofs: content from the record views, signed, stored, verified."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from exchange import proofs
from exchange.api.context import Services
from exchange.api.exceptions import InvalidRequestError, NotFoundError
from exchange.api.signing import ProofTooLargeError, SignatureInvalidError, payload_sha256
from exchange.api.storage import records
from exchange.api.storage.pool import Connection
from exchange.api.storage.proofs import get_proof, insert_proof
from exchange.policy import Grant, ProofType
from exchange.topics import BY_DATASET, sink_group
from monitoring import metrics


async def _content(
    conn: Connection, proof_type: ProofType, subject_key: str, period: tuple[dt.date, dt.date] | None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The content of a proof of `proof_type` drawn from the current records, and their lineage.

    Raises `ProofUnavailableError` when there is nothing to certify.
    """
    used: list[dict[str, Any]] = []
    content: dict[str, Any] = {}
    for dataset in proof_type.datasets:
        rows = await records.current_rows(conn, dataset, subject_key)
        part, rows_used = proofs.CONTENT[proof_type.code](rows, period or (dt.date.min, dt.date.max))
        content.update(part)
        used.extend(proofs.lineage(dataset, rows_used))
    return content, used


@dataclass(frozen=True, slots=True)
class Issued:
    """A proof as issued: its document and its compact JWS."""

    document: dict[str, Any]
    jws: str


async def issue(
    services: Services,
    conn: Connection,
    grant: Grant,
    proof_type: ProofType,
    subject: tuple[str, str],
    period: tuple[dt.date, dt.date] | None,
) -> Issued:
    """Build, sign and store a proof of `proof_type` about `subject` (citizen ID, subject key)."""
    citizen_id, key = subject
    # The content and the offsets it reflects from one snapshot of the record tables.
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            content, used = await _content(conn, proof_type, key, period)
        except proofs.ProofUnavailableError as exc:
            # Nothing to certify (no 户籍 record for a 户籍证明): the caller's request, not the exchange,
            # is at fault, and it must learn why.
            raise NotFoundError(str(exc)) from exc
        reflected = [
            row for dataset in proof_type.datasets for row in await records.read_to(conn, dataset, key)
        ]
        kafka = services.settings.kafka
        topics = [BY_DATASET[dataset].full_name(kafka) for dataset in proof_type.datasets]
        loaded = await records.loaded_to(conn, sink_group(kafka), topics)
    issued_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    document = {
        "proof_id": str(uuid.uuid4()),
        "proof_type": proof_type.code,
        "name": {"zh": proof_type.name_zh, "en": proof_type.name_en},
        "legal_basis": proof_type.legal_basis,
        "issuing_department": {
            "code": proof_type.issuing_department.code,
            "zh": proof_type.issuing_department.name_zh,
            "en": proof_type.issuing_department.name_en,
        },
        "issuer": proofs.ISSUER,
        "issued_at": issued_at.isoformat(),
        "caller": grant.caller,
        "purpose": grant.purpose,
        "purpose_legal_basis": grant.legal_basis,
        "subject": {"citizen_id": citizen_id},
        "period": None if period is None else {"start": period[0].isoformat(), "end": period[1].isoformat()},
        "data_used": {"datasets": list(proof_type.datasets), "description": proof_type.data_used},
        "content": content,
        "offsets": proofs.offsets(reflected),
        # As of: the departments' records up to these positions were all read (a 无房证明's "none" is of
        # them), where `offsets` are the subject's own last records, and none for a subject with none.
        "loaded_to": [dict(row) for row in loaded],
        "lineage": used,
        "policy_version": services.policy.version,
    }
    try:
        token, payload = services.signer.sign(document)
    except ProofTooLargeError as exc:
        raise InvalidRequestError(f"{exc}: ask for a shorter period", ("body", "period")) from exc
    await insert_proof(
        conn,
        document=document,
        subject_key=key,
        issued_at=issued_at,
        payload_sha256=payload_sha256(payload),
        jws=token,
        sources=used,
    )
    metrics.PROOFS_ISSUED.labels(proof_type=proof_type.code).inc()
    return Issued(document, token)


@dataclass
class Check:
    """The result of checking a presented proof (the shape of `VerifyResponse`)."""

    status: str
    signature_valid: bool
    message: str
    intact: bool | None = None
    proof_id: str | None = None
    superseded_by: list[str] = field(default_factory=list)
    # The subject of the proof issued, once found: the check is a use of their data (their history).
    subject_key: str | None = None


async def check(services: Services, conn: Connection, token: str) -> Check:
    """Signature, integrity against the stored proof, and corrections or revocations since issue."""
    try:
        document, payload = services.signer.verify(token)
    except SignatureInvalidError as exc:
        return Check("invalid", False, str(exc))
    proof_id = str(document.get("proof_id", ""))
    try:
        stored = await get_proof(conn, str(uuid.UUID(proof_id)))
    except ValueError:
        stored = None
    if stored is None:
        return Check(
            "unknown", True, "the signature is ours but no such proof was issued here", proof_id=proof_id
        )
    subject_key = str(stored["subject_key"])
    if stored["payload_sha256"] != payload_sha256(payload):
        message = "the payload differs from the proof issued"
        return Check("invalid", True, message, False, proof_id, subject_key=subject_key)
    by_dataset: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for source in stored["sources"]:
        by_dataset[source["dataset"]].append(source)
    superseding: list[str] = []
    for dataset, used in by_dataset.items():
        ids = [source["source_record_id"] for source in used]
        latest = await records.latest_versions(conn, dataset, subject_key, ids)
        superseding.extend(proofs.superseded_by(used, latest))
    superseding.extend(await _added_since(services, conn, document, stored))
    if superseding:
        message = "records behind the proof were corrected, revoked or added after it was issued"
        return Check("superseded", True, message, True, proof_id, sorted(set(superseding)), subject_key)
    message = "genuine, intact, and the records behind it are as they were when it was issued"
    return Check("valid", True, message, True, proof_id, subject_key=subject_key)


async def _added_since(
    services: Services, conn: Connection, document: dict[str, Any], stored: dict[str, Any]
) -> list[str]:
    """The records that make a proof issued now differ from `document`, when it would differ.

    A proof's content depends on records it does not list too: the arrears a social-insurance proof
    left out, the titles a 无房证明 found none of, the vouchers outside a tax proof's period. When one
    of them is corrected into what the proof certifies, or one is added, the content would now read
    otherwise; the versions it would use and the proof did not are what superseded it. Content that
    differs with no such version (the builder itself changed) is not a correction of the data.
    """
    proof_type = services.policy.proof_types.get(str(document.get("proof_type")))
    if proof_type is None:
        return []
    bounds = document.get("period")
    period = None
    if bounds is not None:
        period = (dt.date.fromisoformat(bounds["start"]), dt.date.fromisoformat(bounds["end"]))
    try:
        content, used = await _content(conn, proof_type, stored["subject_key"], period)
    except proofs.ProofUnavailableError:
        return []  # nothing current: the revocations of what it used say so
    if content == document.get("content"):
        return []
    return proofs.added_since(stored["sources"], used)
