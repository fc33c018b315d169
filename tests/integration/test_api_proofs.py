"""Electronic proofs on the real stack: the samples through the connectors and the sink, proofs signed,
verified offline and by the public endpoint, a forged one refused, a corrected one superseded."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import psycopg
from api_support import client, key_of, run, with_key
from joserfc import jws
from joserfc.jwk import OKPKey
from support import SAMPLES, publish_folder

from connectors.files import run_file
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from exchange import admin, consent, database
from exchange.api.signing import load_signer
from exchange.settings import ExchangeSettings
from exchange.topics import PROPERTY_TITLE

SUBJECT = "440103198403037020"
UNREGISTERED = "110101199001011237"  # valid, and in no department's records
PERIOD = {"period_start": "2025-11-01", "period_end": "2026-10-31"}
CORRECTED = "0003244010600000838"
VOIDED = "0003244010600000839"
MOVED = "0003244010600000840"  # corrected to another person's 纳税人识别号


def _tax_rows(*vouchers: str) -> dict[str, list[str]]:
    lines = (SAMPLES / "tax.csv").read_text(encoding="gb18030").splitlines()
    return {line.split(",")[0]: line.split(",") for line in lines[1:] if line.split(",")[0] in vouchers}


def _publish_tax(settings: ExchangeSettings, state: Path, rows: list[list[str]]) -> None:
    path = state / "correction.csv"
    header = (SAMPLES / "tax.csv").read_text(encoding="gb18030").splitlines()[0]
    path.write_text("\n".join([header, *(",".join(row) for row in rows)]) + "\n", encoding="gb18030")
    publisher = Publisher(settings, client_id="test-correction")
    try:
        # The positions (and what was sent per voucher) of the samples' own run: one tax connector.
        run_file("tax", path, publisher=publisher, positions=PositionStore(state), chunk_records=100)
    finally:
        publisher.close()


def _publish_social(settings: ExchangeSettings, state: Path, line: dict[str, Any]) -> None:
    path = state / f"social-{line['jfmxid']}-{line['bbh']}.jsonl"
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    publisher = Publisher(settings, client_id="test-correction")
    try:
        run_file(
            "social", path, publisher=publisher, positions=PositionStore(state / "p3"), chunk_records=100
        )
    finally:
        publisher.close()


async def _verify(settings: ExchangeSettings, token: str) -> dict[str, Any]:
    async with client(settings) as public:
        response = await public.post("/v1/proofs/verify", json={"jws": token})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_proofs_are_signed_verifiable_and_superseded_by_a_later_correction(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = with_key(settings, tmp_path)
    admin.ensure_topics(settings.kafka)
    database.migrate(settings.postgres)
    publish_folder(settings, SAMPLES, tmp_path, registry_dsn=settings.postgres.conninfo())
    run(settings, tmp_path, "sink", "--until-idle")
    grant = consent.consent_event(key_of(settings, SUBJECT), "talent-office", "talent-green-card", "grant")
    consent.publish(settings, [grant])
    run(settings, tmp_path, "approvals", "--until-idle")

    async with client(settings, "talent-office") as talent:
        body = {"proof_type": "tax-payment", "subject": SUBJECT, "purpose": "talent-green-card", **PERIOD}
        tax = (await talent.post("/v1/proofs", json=body)).json()
        social = (await talent.post("/v1/proofs", json={**body, "proof_type": "social-insurance"})).json()
        again = await talent.get(f"/v1/proofs/{tax['proof_id']}")
        keys = (await talent.get("/v1/keys")).json()
    async with client(settings, "housing-bureau") as housing:
        body = {"subject": SUBJECT, "purpose": "public-rental-housing"}
        household = (await housing.post("/v1/proofs", json={**body, "proof_type": "household"})).json()
        holdings = (await housing.post("/v1/proofs", json={**body, "proof_type": "property-holdings"})).json()
        not_theirs = await housing.get(f"/v1/proofs/{tax['proof_id']}")
        # A valid ID the 公安 has no record of: nothing to certify, said as such, never a 500.
        unregistered = await housing.post(
            "/v1/proofs", json={**body, "subject": UNREGISTERED, "proof_type": "household"}
        )

    # A caller granted no proof type is refused any proof id alike, one that exists or not: a 404 for the
    # one and a 403 for the other told it which ids exist.
    for outsider in ("bank", "citizen-portal"):
        async with client(settings, outsider) as reader:
            existing = await reader.get(f"/v1/proofs/{tax['proof_id']}")
            unknown = await reader.get(f"/v1/proofs/{uuid.uuid4()}")
        for refused in (existing, unknown):
            assert refused.status_code == 403, (outsider, refused.text)
            assert refused.json()["reason"] == "proof_type_not_granted"
    assert unregistered.status_code == 404, unregistered.text
    assert "户籍" in unregistered.json()["message"]
    document = tax["document"]
    payments = document["content"]["payments"]
    assert document["subject"] == {"citizen_id": SUBJECT} and document["legal_basis"]
    assert document["content"]["totals"]["tax_paid"] == "2528.28" and len(payments) == 12
    assert {entry["source_record_id"] for entry in document["lineage"]} == {p["voucher"] for p in payments}
    assert document["offsets"] and all(offset["offset"] >= 0 for offset in document["offsets"])
    assert social["document"]["content"]["insurance"][0]["month_count"] == 12
    assert (
        household["document"]["content"]["name"] == "李明明"
        and household["document"]["content"]["status"] == "normal"
    )
    assert holdings["document"]["content"]["titles"] == [] and "statement" in holdings["document"]["content"]
    # A "none" is of the registry's records as far as they were loaded: the proof says how far, where the
    # subject's own last records (offsets) are none to name.
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        loaded = conn.execute(
            "SELECT topic, kafka_partition, next_offset FROM consumer_offsets WHERE topic = %s "
            "ORDER BY kafka_partition",
            (PROPERTY_TITLE.full_name(settings.kafka),),
        ).fetchall()
    assert holdings["document"]["offsets"] == [] and loaded
    assert [tuple(row.values()) for row in holdings["document"]["loaded_to"]] == loaded
    assert holdings["document"]["data_used"]["datasets"] == ["property.title"]
    assert holdings["document"]["data_used"]["description"]
    assert again.status_code == 200 and again.json()["jws"] == tax["jws"]
    assert (again.json()["status"], again.json()["superseded_by"]) == ("valid", [])
    assert (not_theirs.status_code, not_theirs.json()["reason"]) == (403, "purpose_not_granted")

    # Offline, with nothing but the published key.
    public_key = OKPKey.import_key(keys["keys"][0])
    assert (
        json.loads(jws.deserialize_compact(tax["jws"], public_key, algorithms=["Ed25519"]).payload)
        == document
    )
    for proof in (tax, social, household, holdings):
        assert (await _verify(settings, proof["jws"]))["status"] == "valid"

    # A forged payload breaks the signature; a payload our key signed but we never issued is not intact.
    header, _, signature = tax["jws"].split(".")
    forged_payload = json.dumps({**document, "content": {"totals": {"tax_paid": "99999.00"}}}).encode()
    forged = f"{header}.{base64.urlsafe_b64encode(forged_payload).rstrip(b'=').decode()}.{signature}"
    answer = await _verify(settings, forged)
    assert (answer["status"], answer["signature_valid"]) == ("invalid", False)
    resigned, _ = load_signer(settings.api).sign({**document, "content": {}})
    answer = await _verify(settings, resigned)
    assert (answer["status"], answer["signature_valid"], answer["intact"]) == ("invalid", True, False)
    # Checking a proof is a use of its subject's data: it is in their history (the forged one names none).
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        checked = conn.execute(
            "SELECT subject_key FROM audit_log WHERE action = 'proof.verify' ORDER BY seq"
        ).fetchall()
    assert [key for (key,) in checked] == [key_of(settings, SUBJECT)] * 4 + [None, key_of(settings, SUBJECT)]

    # 税务 corrects one voucher, voids another the proof used, and corrects a third to another person
    # (the connector sends the subject a revoke of it: that supersedes the proof too).
    rows = _tax_rows(CORRECTED, VOIDED, MOVED)
    rows[CORRECTED][7], rows[CORRECTED][11] = "220.00", "2"
    rows[VOIDED][11], rows[VOIDED][12] = "2", "1"
    rows[MOVED][1], rows[MOVED][11] = UNREGISTERED, "2"
    _publish_tax(settings, tmp_path, list(rows.values()))
    run(settings, tmp_path, "sink", "--until-idle")
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        newer = {
            str(event_id)
            for (event_id,) in conn.execute(
                "SELECT event_id FROM tax_payment_records "
                "WHERE source_version = 2 AND source_record_id = ANY(%s) AND subject_key = %s",
                ([CORRECTED, VOIDED, MOVED], key_of(settings, SUBJECT)),
            )
        }
    assert len(newer) == 3
    answer = await _verify(settings, tax["jws"])
    assert (answer["status"], set(answer["superseded_by"])) == ("superseded", newer)
    async with client(settings, "talent-office") as talent:  # read again, it says so too (it did not)
        read = (await talent.get(f"/v1/proofs/{tax['proof_id']}")).json()
        unchanged = (await talent.get(f"/v1/proofs/{social['proof_id']}")).json()
    assert (read["status"], set(read["superseded_by"]), read["jws"]) == ("superseded", newer, tax["jws"])
    assert (unchanged["status"], unchanged["superseded_by"]) == ("valid", [])
    for proof in (social, household, holdings):
        assert (await _verify(settings, proof["jws"]))["status"] == "valid"
    # A proof issued now leaves the voided voucher out, and reflects the log up to its void all the same:
    # replayed only as far as the last voucher it lists, the voided one would read as valid.
    async with client(settings, "talent-office") as talent:
        body = {"proof_type": "tax-payment", "subject": SUBJECT, "purpose": "talent-green-card", **PERIOD}
        now = (await talent.post("/v1/proofs", json=body)).json()["document"]
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        void = conn.execute(
            "SELECT topic, kafka_partition, kafka_offset FROM tax_payment_records "
            "WHERE source_record_id = ANY(%s) AND op = 'revoke' ORDER BY kafka_offset DESC",
            ([VOIDED, MOVED],),
        ).fetchone()
    assert void is not None and {VOIDED, MOVED}.isdisjoint(
        entry["source_record_id"] for entry in now["lineage"]
    )
    assert now["offsets"] == [{"topic": void[0], "partition": void[1], "offset": void[2]}]

    # 人社 reports a line in arrears; a proof leaves it out; the line is later received. Neither proof
    # listed it, yet both would now read otherwise (the subject had no institution-pension month): both
    # are superseded by the received version.
    arrears = {
        "jfmxid": "JF-ARREARS-1",
        "aac002": SUBJECT,
        "aac003": "李明明",
        "aae140": "120",
        "aae002": "202609",
        "aab998": "91440117HDRJHTPQQ3",
        "aab004": "穗建设有限公司",
        "aae180": 1845000,
        "dwjfje": 15000,
        "grjfje": 0,
        "aae078": "0",
        "yxbz": "1",
        "bbh": 1,
        "gxsj": "2026-10-20 09:00:00",
    }
    _publish_social(settings, tmp_path, arrears)
    run(settings, tmp_path, "sink", "--until-idle")
    async with client(settings, "talent-office") as talent:
        body = {
            "proof_type": "social-insurance",
            "subject": SUBJECT,
            "purpose": "talent-green-card",
            **PERIOD,
        }
        before = (await talent.post("/v1/proofs", json=body)).json()
    assert before["document"]["content"] == social["document"]["content"]
    assert (await _verify(settings, social["jws"]))["status"] == "valid"
    _publish_social(settings, tmp_path, {**arrears, "aae078": "1", "bbh": 2})
    run(settings, tmp_path, "sink", "--until-idle")
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (received,) = conn.execute(
            "SELECT event_id::text FROM social_contribution_records "
            "WHERE source_record_id = 'JF-ARREARS-1' AND source_version = 2"
        ).fetchone() or ("",)
    for proof in (before, social):
        answer = await _verify(settings, proof["jws"])
        assert (answer["status"], answer["superseded_by"]) == ("superseded", [received])

    # The subject withdraws consent: the proofs issued under it can no longer be read through the
    # exchange (the documents already handed out still verify: they were true when issued).
    revoke = consent.consent_event(key_of(settings, SUBJECT), "talent-office", "talent-green-card", "revoke")
    consent.publish(settings, [revoke])
    run(settings, tmp_path, "approvals", "--until-idle")
    async with client(settings, "talent-office") as talent:
        withdrawn = await talent.get(f"/v1/proofs/{social['proof_id']}")
    assert (withdrawn.status_code, withdrawn.json()["reason"]) == (403, "consent_missing")
    assert (await _verify(settings, social["jws"]))["status"] == "superseded"
