"""The API on the real stack, on the samples run through the real pipeline in two phases (identity and
tax first, then social insurance and property), so that as-of queries have a past to answer from."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hypothesis
import psycopg
import pytest
import schemathesis
from api_support import (
    KEYS,
    Facts,
    client,
    facts_by_subject,
    fold_ledgers,
    fold_topics,
    isolated_settings,
    key_of,
    run,
    served,
    wait_for_processor,
    with_key,
)
from kafka import KafkaProducer
from prometheus_client import REGISTRY
from schemathesis.checks import not_a_server_error
from support import FILES, SAMPLES, load_registry, start

from connectors.files import run_file
from connectors.positions import PositionStore
from connectors.publisher import Publisher
from connectors.table import run_table
from consumers.approvals import Approvals
from exchange import admin, consent, database
from exchange import profile as aggregate
from exchange.api import applications
from exchange.api.evaluation import lineage
from exchange.api.exceptions import StorageUnavailableError
from exchange.facts import Line, Voucher, compute, with_records
from exchange.local_time import LOCAL, today
from exchange.logs import read_all
from exchange.policy import load_policy
from exchange.serialization import AvroCodec
from exchange.settings import ExchangeSettings
from exchange.topics import (
    APPLICATIONS,
    CONSENT,
    DATASET_TOPICS,
    DEADLETTER,
    DECISIONS,
    IDENTITY_PERSON,
    TAX_PAYMENT,
)

EXPECTED = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
DAY = EXPECTED["reference_date"]
SUBJECTS = sorted(EXPECTED["subjects"])
TALENTED = "440103198403037020"  # talent green card approved; 12 tax months; registered outside Guangzhou


@dataclass(frozen=True)
class Exchange:
    """The samples as the exchange knows them, and what it knew between the two phases."""

    settings: ExchangeSettings
    state: Path
    before: dt.datetime  # before anything was known
    between: dt.datetime  # identity and tax known, nothing else
    between_facts: dict[str, Facts]


def _publish(
    settings: ExchangeSettings, state: Path, departments: tuple[str, ...], *, property_too: bool
) -> None:
    positions = PositionStore(state / "positions")
    publisher = Publisher(settings, client_id="test-api")
    try:
        for department in departments:
            run_file(
                department,
                SAMPLES / FILES[department],
                publisher=publisher,
                positions=positions,
                chunk_records=5000,
            )
        if property_too:
            dsn = settings.postgres.conninfo()
            for file in ("property.sql", "property_update.sql"):
                load_registry(dsn, SAMPLES / file)
                run_table(dsn, publisher=publisher, positions=positions, chunk_records=5000)
    finally:
        publisher.close()


@pytest.fixture(scope="module")
def exchange(
    base_settings: ExchangeSettings, kafka_available: str, postgres_available: object, tmp_path_factory: Any
) -> Iterator[Exchange]:
    state: Path = tmp_path_factory.mktemp("api")
    day = dt.date.fromisoformat(DAY)
    with isolated_settings(base_settings, state) as settings:
        admin.ensure_topics(settings.kafka)
        database.migrate(settings.postgres)
        before = dt.datetime.now(dt.UTC)
        processor = start(settings, state, "process")
        try:
            _publish(settings, state, ("identity", "tax"), property_too=False)
            between_facts = facts_by_subject(
                settings, fold_topics(settings, (IDENTITY_PERSON, TAX_PAYMENT)), SUBJECTS, day
            )
            wait_for_processor(settings, between_facts, day)
            run(settings, state, "sink", "--until-idle")
            between = dt.datetime.now(dt.UTC)
            time.sleep(0.2)
            _publish(settings, state, ("social",), property_too=True)
            wait_for_processor(settings, EXPECTED["subjects"], day)
            run(settings, state, "sink", "--until-idle")
        finally:
            processor.terminate()
            processor.wait(timeout=60)
        consent.publish(
            settings,
            [
                consent.consent_event(key_of(settings, s), "talent-office", "talent-green-card", "grant")
                for s in SUBJECTS
            ],
        )
        run(settings, state, "approvals", "--until-idle")
        yield Exchange(settings, state, before, between, between_facts)


def claims(*items: tuple[str, str, Any]) -> list[dict[str, Any]]:
    return [{"fact": fact, "operator": operator, "value": value} for fact, operator, value in items]


async def test_verifications_answer_each_claim_with_lineage_and_never_a_value(exchange: Exchange) -> None:
    facts = EXPECTED["subjects"][TALENTED]
    asked = claims(
        ("identity.status", "eq", "normal"),
        ("social.pension.continuous_months", "ge", 6),
        ("social.pension.continuous_months", "gt", facts["social.pension.continuous_months"]),
        ("tax.months_paid_12", "in", [11, 12]),
        ("tax.months_paid_12", "lt", 6),
    )
    async with client(exchange.settings, "talent-office") as http:
        body = {"subject": TALENTED, "purpose": "talent-green-card", "claims": asked, "reference_date": DAY}
        response = await http.post("/v1/verifications", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [result["holds"] for result in answer["results"]] == [True, True, False, True, False]
    assert answer["reference_date"] == DAY and answer["as_of"] and answer["profile_version"] > 0
    pension = answer["results"][1]["lineage"]
    assert len(pension) >= 6 and {"event_id", "topic", "partition", "offset"} <= set(pension[0])
    assert all(
        set(result) == {"fact", "operator", "holds", "determinable", "lineage"}
        for result in answer["results"]
    )
    assert TALENTED not in response.text and facts["tax.total_paid_12"] not in response.text


async def test_a_current_answer_is_labelled_no_earlier_than_the_version_it_used(exchange: Exchange) -> None:
    """Labelled with the time after the read, an answer could carry an instant before the date of the
    version it used (written meanwhile), and an as-of query for that instant gave the version before.
    A version dated after the request was asked (here: an hour on) labels the answer instead."""
    key = key_of(exchange.settings, TALENTED)
    moved = "UPDATE profiles SET updated_at = updated_at + %s WHERE subject_key = %s RETURNING updated_at"
    with psycopg.connect(exchange.settings.postgres.conninfo(), autocommit=True) as conn:
        (dated,) = conn.execute(moved, (dt.timedelta(hours=1), key)).fetchone() or (None,)
    try:
        async with client(exchange.settings, "talent-office") as http:
            body = {
                "subject": TALENTED,
                "purpose": "talent-green-card",
                "claims": claims(("identity.status", "eq", "normal")),
            }
            response = await http.post("/v1/verifications", json=body)
    finally:
        with psycopg.connect(exchange.settings.postgres.conninfo(), autocommit=True) as conn:
            conn.execute(moved, (dt.timedelta(hours=-1), key))
    assert response.status_code == 200, response.text
    assert dt.datetime.fromisoformat(response.json()["as_of"]) == dated


async def test_a_refusal_is_403_names_the_missing_grant_and_is_audited(exchange: Exchange) -> None:
    body = {
        "subject": TALENTED,
        "purpose": "public-rental-housing",
        "claims": claims(("tax.months_paid_12", "ge", 1)),
    }
    async with client(exchange.settings, "housing-bureau") as http:
        fact = await http.post("/v1/verifications", json=body)
    async with client(exchange.settings, "bank") as http:
        bank = await http.post("/v1/verifications", json=body)
        proof = await http.post(
            "/v1/proofs", json={"proof_type": "household", "subject": TALENTED, "purpose": "loan"}
        )
    assert (fact.status_code, fact.json()["reason"]) == (403, "fact_not_granted")
    assert (
        "tax.months_paid_12" in fact.json()["message"] and "grants.housing-bureau" in fact.json()["message"]
    )
    assert (bank.status_code, bank.json()["reason"]) == (403, "purpose_not_granted")
    assert (proof.status_code, proof.json()["reason"]) == (403, "purpose_not_granted")
    with psycopg.connect(exchange.settings.postgres.conninfo()) as conn:
        refused = conn.execute(
            "SELECT caller, reason, subject_key, request::text, response::text FROM audit_log "
            "WHERE outcome = 'refused' AND caller IN ('housing-bureau', 'bank') ORDER BY seq"
        ).fetchall()
    assert [(row[0], row[1]) for row in refused][-3:] == [
        ("housing-bureau", "fact_not_granted"),
        ("bank", "purpose_not_granted"),
        ("bank", "purpose_not_granted"),
    ]
    assert all(row[2] == key_of(exchange.settings, TALENTED) for row in refused[-3:])
    assert not any(TALENTED in row[3] + row[4] for row in refused)


async def test_profile_fields_are_the_granted_ones_and_as_of_answers_what_was_known_then(
    exchange: Exchange,
) -> None:
    granted = [
        "identity.status",
        "social.current_employer",
        "social.pension.continuous_months",
        "tax.months_paid_12",
    ]
    async with client(exchange.settings, "talent-office") as http:
        for citizen_id in SUBJECTS:
            answers = {}
            for label, as_of in (("now", None), ("between", exchange.between), ("before", exchange.before)):
                params = {"purpose": "talent-green-card", "reference_date": DAY}
                if as_of is not None:
                    params["as_of"] = as_of.isoformat()
                response = await http.get(f"/v1/subjects/{citizen_id}/profile", params=params)
                assert response.status_code == 200, response.text
                assert sorted(response.json()["fields"]) == granted
                answers[label] = response.json()["fields"]
            assert answers["now"] == {name: EXPECTED["subjects"][citizen_id][name] for name in granted}
            assert answers["between"] == {name: exchange.between_facts[citizen_id][name] for name in granted}
            assert answers["before"]["identity.status"] == "unknown"
        narrowed = await http.get(
            f"/v1/subjects/{TALENTED}/profile",
            params={"purpose": "talent-green-card", "fields": "identity.status"},
        )
        refused = await http.get(
            f"/v1/subjects/{TALENTED}/profile",
            params={"purpose": "talent-green-card", "fields": "identity.age"},
        )
        nothing = await http.get(
            f"/v1/subjects/{TALENTED}/profile", params={"purpose": "talent-green-card", "fields": ","}
        )
    async with client(exchange.settings, "citizen-portal") as portal:
        # Its grant (the subject's data-use history) lists no profile field: no read of the profile at
        # all, not even one that would say whether the exchange holds data on the subject.
        no_fields = await portal.get(
            f"/v1/subjects/{TALENTED}/profile", params={"purpose": "data-use-history"}
        )
    assert list(narrowed.json()["fields"]) == ["identity.status"]
    assert (refused.status_code, refused.json()["reason"]) == (403, "field_not_granted")
    assert nothing.status_code == 422 and nothing.json()["detail"][0]["loc"] == ["query", "fields"]
    assert (no_fields.status_code, no_fields.json()["reason"]) == (403, "field_not_granted")
    # The pension facts really changed between the phases, so the as-of answers were not trivially equal.
    assert exchange.between_facts[TALENTED]["social.pension.continuous_months"] == 0


def test_the_facts_command_prints_the_expected_facts_and_reads_a_local_as_of(exchange: Exchange) -> None:
    settings, state = exchange.settings, exchange.state
    for citizen_id in SUBJECTS:
        printed = json.loads(
            run(settings, state, "facts", citizen_id, "--reference-date", DAY, "--json").stdout
        )
        assert printed["facts"] == EXPECTED["subjects"][citizen_id]
        assert set(printed["lineage"]) == set(printed["facts"])
    # The instant between the two phases as the departments write times: Asia/Shanghai, no zone.
    local = exchange.between.astimezone(LOCAL).replace(tzinfo=None).isoformat()
    args = ("facts", TALENTED, "--reference-date", DAY, "--as-of", local, "--json")
    printed = json.loads(run(settings, state, *args).stdout)
    assert printed["facts"] == exchange.between_facts[TALENTED]
    assert dt.datetime.fromisoformat(printed["as_of"]) == exchange.between


async def test_the_lineage_of_a_fact_over_months_is_exactly_the_lines_the_fold_counted(
    exchange: Exchange,
) -> None:
    # The profile keeps months as ranges; the API reads the lines from social_contribution_records.
    ledgers = fold_ledgers(exchange.settings, DATASET_TOPICS)
    day = dt.date.fromisoformat(DAY)
    names = ["social.current_employer", "social.pension.continuous_months", "tax.months_paid_12"]
    resolved = 0
    async with client(exchange.settings, "talent-office") as http:
        for citizen_id in SUBJECTS:
            key = key_of(exchange.settings, citizen_id)
            ledger = ledgers.get(key) or aggregate.empty_ledger(key)
            lines = [
                Line(ref, line.insurance_type, line.month, line.status)
                for ref, line in aggregate.live(ledger.contributions)
            ]
            vouchers = [
                Voucher(ref, payment.period_start, payment.period_end, payment.tax_paid)
                for ref, payment in aggregate.live(ledger.payments)
            ]
            wanted = with_records(compute(aggregate.profile_of(ledger), day), lines, vouchers)
            params = {"purpose": "talent-green-card", "reference_date": DAY, "fields": ",".join(names)}
            response = await http.get(f"/v1/subjects/{citizen_id}/profile", params=params)
            assert response.status_code == 200, response.text
            for name in names:
                assert response.json()["lineage"][name] == lineage(wanted[name].lineage), (citizen_id, name)
                resolved += len(wanted[name].lineage)
            # What was known between the phases: identity and tax only, so no line at all.
            params["as_of"] = exchange.between.isoformat()
            between = await http.get(f"/v1/subjects/{citizen_id}/profile", params=params)
            assert between.json()["lineage"]["social.pension.continuous_months"] == []
            assert (
                between.json()["lineage"]["tax.months_paid_12"]
                == response.json()["lineage"]["tax.months_paid_12"]
            )
    assert resolved > len(SUBJECTS)  # the samples' pension months really have lines behind them


async def test_verifications_as_of_use_the_profile_known_then(exchange: Exchange) -> None:
    body = {
        "subject": TALENTED,
        "purpose": "talent-green-card",
        "claims": claims(("social.pension.continuous_months", "ge", 6), ("tax.months_paid_12", "ge", 6)),
        "reference_date": DAY,
        "as_of": exchange.between.isoformat(),
    }
    async with client(exchange.settings, "talent-office") as http:
        response = await http.post("/v1/verifications", json=body)
    assert [result["holds"] for result in response.json()["results"]] == [False, True]
    assert dt.datetime.fromisoformat(response.json()["as_of"]) == exchange.between


async def test_an_as_of_after_now_is_refused_not_answered(exchange: Exchange) -> None:
    # What the exchange will know tomorrow is not known yet: an answer labelled with that instant
    # would change as data arrives.
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    body = {
        "subject": TALENTED,
        "purpose": "talent-green-card",
        "claims": claims(("tax.months_paid_12", "ge", 6)),
        "as_of": tomorrow,
    }
    async with client(exchange.settings, "talent-office") as http:
        verification = await http.post("/v1/verifications", json=body)
        profile = await http.get(
            f"/v1/subjects/{TALENTED}/profile", params={"purpose": "talent-green-card", "as_of": tomorrow}
        )
        just_now = await http.post(
            "/v1/verifications", json={**body, "as_of": dt.datetime.now(dt.UTC).isoformat()}
        )
    assert verification.status_code == profile.status_code == 422
    assert verification.json()["detail"][0]["loc"] == ["body", "as_of"]
    assert profile.json()["detail"][0]["loc"] == ["query", "as_of"]
    assert "after now" in verification.json()["detail"][0]["msg"]
    assert just_now.status_code == 200


CALLER_OF = {
    "talent-green-card": "talent-office",
    "public-rental-housing": "housing-bureau",
    "longevity-allowance": "civil-affairs",
}


async def test_instant_decisions_on_the_samples_equal_the_expected_ones(exchange: Exchange) -> None:
    decided: dict[str, dict[str, str]] = {}
    for item, caller in CALLER_OF.items():
        async with client(exchange.settings, caller) as http:
            for citizen_id in SUBJECTS:
                body = {"service_item": item, "subject": citizen_id, "reference_date": DAY}
                response = await http.post("/v1/applications", json=body)
                assert response.status_code == 200, response.text
                decided.setdefault(citizen_id, {})[item] = response.json()["outcome"]
                assert response.json()["reasons"] and response.json()["facts_used"]
    assert decided == EXPECTED["decisions"]


def _application(caller: str, item: str, citizen_id: str) -> dict[str, Any]:
    return {
        "application_id": str(uuid.uuid4()),
        "caller": caller,
        "purpose": None,
        "service_item": item,
        "subject_id": citizen_id,
        "applicant_id": None,
        "reference_date": dt.date.fromisoformat(DAY),
        "submitted_at": dt.datetime.now(dt.UTC),
        "trace_id": uuid.uuid4().hex,
    }


def _produce(settings: ExchangeSettings, values: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    try:
        for value in values:
            producer.send(APPLICATIONS.full_name(settings.kafka), key=uuid.uuid4().bytes, value=value).get(30)
    finally:
        producer.close()


def test_the_approvals_consumer_decides_applications_from_kafka_exactly_as_expected(
    exchange: Exchange,
) -> None:
    settings, codec = exchange.settings, AvroCodec()
    applications = [_application(c, item, s) for item, c in CALLER_OF.items() for s in SUBJECTS]
    refused = _application("bank", "public-rental-housing", TALENTED)
    future = {
        **_application(CALLER_OF["longevity-allowance"], "longevity-allowance", SUBJECTS[0]),
        "reference_date": today() + dt.timedelta(days=1),
    }
    encoded = [codec.encode("application", value) for value in [*applications, refused, future]]
    _produce(settings, [*encoded, b"not an application"])
    run(settings, exchange.state, "approvals", "--until-idle")
    _produce(settings, encoded[:3])  # re-sent: decided once, the stored decision re-sent
    run(settings, exchange.state, "approvals", "--until-idle")

    decisions = [record.value for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka))]
    by_application = {decision["application_id"]: decision for decision in decisions}
    decided: dict[str, dict[str, str]] = {}
    for application in applications:
        decision = by_application[application["application_id"]]
        decided.setdefault(application["subject_id"], {})[application["service_item"]] = decision["outcome"]
        assert decision["subject_key"] == key_of(settings, application["subject_id"])
    assert decided == EXPECTED["decisions"]
    assert by_application[refused["application_id"]]["outcome"] == "refused"
    assert [(r["code"], r["zh"]) for r in by_application[future["application_id"]]["reasons"]] == [
        ("future_reference_date", "不予受理：基准日期晚于今日")
    ]
    assert len(decisions) == len(encoded) + 3 and len(by_application) == len(encoded)
    assert len({d["decision_id"] for d in decisions}) == len(encoded)
    dead = [record.value for record in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))]
    assert [(letter["reason"], letter["original"]) for letter in dead] == [
        ("undecodable", b"not an application")
    ]
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM decisions WHERE channel = 'kafka'").fetchone() or (0,)
    assert stored == len(encoded)


def test_a_kafka_decision_is_stored_only_with_its_audit_entry_and_never_sent_for_a_reused_id(
    exchange: Exchange,
) -> None:
    settings, codec = exchange.settings, AvroCodec()
    application = _application("housing-bureau", "public-rental-housing", SUBJECTS[0])
    reused = {
        **_application("talent-office", "talent-green-card", TALENTED),
        "application_id": application["application_id"],
    }
    with psycopg.connect(settings.postgres.conninfo(), autocommit=True) as conn:
        head = conn.execute("DELETE FROM audit_chain_head RETURNING last_seq, last_hash").fetchone()
        try:
            _produce(settings, [codec.encode("application", application)])
            failed = run(settings, exchange.state, "approvals", "--until-idle", check=False)
            assert failed.returncode != 0 and "audit_chain_head" in failed.stderr
            # The audit append failed, so the decision is not stored either.
            assert conn.execute(
                "SELECT count(*) FROM decisions WHERE application_id = %s", (application["application_id"],)
            ).fetchone() == (0,)
        finally:
            conn.execute("INSERT INTO audit_chain_head (last_seq, last_hash) VALUES (%s, %s)", head)
        run(settings, exchange.state, "approvals", "--until-idle")  # the application is read again
        _produce(settings, [codec.encode("application", reused)])
        run(settings, exchange.state, "approvals", "--until-idle")
        audited = conn.execute(
            "SELECT caller, outcome, reason FROM audit_log WHERE request->>'application_id' = %s "
            "ORDER BY seq",
            (application["application_id"],),
        ).fetchall()
    assert audited == [("housing-bureau", "allowed", None), ("talent-office", "refused", "conflict")]
    decisions = [
        record.value
        for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka))
        if record.value["application_id"] == application["application_id"]
    ]
    assert [(d["caller"], d["subject_key"]) for d in decisions] == [
        ("housing-bureau", key_of(settings, SUBJECTS[0]))
    ]
    dead = [record.value for record in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))]
    assert [letter["original"] for letter in dead if letter["reason"] == "application_id_reused"] == [
        codec.encode("application", reused)
    ]


async def test_applications_that_cannot_be_stored_are_dead_lettered_and_refusals_keep_their_reason(
    exchange: Exchange,
) -> None:
    settings, codec = exchange.settings, AvroCodec()
    not_uuid = {
        **_application("housing-bureau", "public-rental-housing", SUBJECTS[0]),
        "application_id": "APP-1",
    }
    nul = _application("bank\x00", "public-rental-housing", SUBJECTS[0])
    bad_applicant = {**_application("talent-office", "talent-green-card", TALENTED), "applicant_id": "123"}
    not_granted = _application("bank", "public-rental-housing", TALENTED)
    unknown_item = _application("housing-bureau", "no-such-item", SUBJECTS[0])
    # A purpose of 200 characters: kept whole in the audit row, a longer one made a row Kafka refuses.
    long_purpose = {
        **_application("housing-bureau", "public-rental-housing", SUBJECTS[0]),
        "purpose": "p" * 200,
    }
    after = _application("housing-bureau", "public-rental-housing", SUBJECTS[0])
    sent = [not_uuid, nul, bad_applicant, not_granted, unknown_item, long_purpose, after]
    _produce(settings, [codec.encode("application", value) for value in sent])
    counted = {
        (item, outcome): _counted(item, outcome)
        for item in ("talent-green-card", "public-rental-housing", "unknown")
        for outcome in ("refused", "approved", "rejected", "manual_review")
    }
    await Approvals(settings).run(asyncio.Event(), until_idle=True)  # in this process, for its metrics
    new = {key: _counted(*key) - before for key, before in counted.items() if _counted(*key) > before}
    expected = EXPECTED["decisions"][SUBJECTS[0]]["public-rental-housing"]
    housing = Counter({("public-rental-housing", "refused"): 1, ("public-rental-housing", expected): 1})
    assert new == {("talent-green-card", "refused"): 1, ("unknown", "refused"): 1, **housing}

    dead = {
        letter["original"]: letter
        for letter in (
            record.value for record in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))
        )
        if letter["reason"] == "invalid_application"
    }
    assert "not a UUID" in dead[codec.encode("application", not_uuid)]["message"]
    assert dead[codec.encode("application", nul)]["message"] == "caller holds a NUL character"
    assert "purpose 'ppp" in dead[codec.encode("application", long_purpose)]["message"]
    ids = [value["application_id"] for value in (bad_applicant, not_granted, after)]
    by_id = {
        record.value["application_id"]: record.value
        for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka))
        if record.value["application_id"] in ids
    }
    applicant = by_id[bad_applicant["application_id"]]
    assert (applicant["outcome"], applicant["subject_key"]) == ("refused", key_of(settings, TALENTED))
    assert applicant["reasons"][0]["code"] == "invalid_applicant"
    assert "applicant_id" in applicant["reasons"][0]["en"]
    assert by_id[after["application_id"]]["outcome"] == expected
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        audited = dict(
            conn.execute(
                "SELECT request->>'application_id', reason FROM audit_log "
                "WHERE request->>'application_id' = ANY(%s)",
                (ids,),
            ).fetchall()
        )
    refusal = by_id[not_granted["application_id"]]["reasons"][0]["code"]
    assert audited == {ids[0]: "invalid_applicant", ids[1]: refusal, ids[2]: None}


def _counted(service_item: str, outcome: str) -> float:
    labels = {"service_item": service_item, "outcome": outcome}
    return REGISTRY.get_sample_value("exchange_decisions_total", labels) or 0.0


async def test_a_decision_rolled_back_is_counted_once_when_it_is_made_again(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted as it was stored, a decision whose transaction then failed (its audit entry could not be
    appended) was counted again when the replay made it anew."""
    settings, codec = exchange.settings, AvroCodec()
    outcome = EXPECTED["decisions"][TALENTED]["talent-green-card"]
    _produce(
        settings, [codec.encode("application", _application("talent-office", "talent-green-card", TALENTED))]
    )
    before = _counted("talent-green-card", outcome)

    async def connection_lost(*args: Any) -> None:
        raise psycopg.OperationalError("the connection was lost")

    monkeypatch.setattr("exchange.api.storage.audit.append_batch", connection_lost)
    with pytest.raises(StorageUnavailableError):
        await Approvals(settings).run(asyncio.Event(), until_idle=True)
    monkeypatch.undo()
    await Approvals(settings).run(asyncio.Event(), until_idle=True)  # the restart reads it again
    assert _counted("talent-green-card", outcome) == before + 1


async def test_an_application_on_kafka_waits_for_the_consent_withdrawn_before_it(exchange: Exchange) -> None:
    """Consent withdrawn, then an application, while the consent topic has a backlog: the application
    is decided only once the withdrawal is read (it was decided first, on the consent given before)."""
    settings = exchange.settings
    small_batches = settings.model_copy(
        update={"api": settings.api.model_copy(update={"approvals_batch_records": 50})}
    )
    who = key_of(settings, TALENTED)
    backlog = [
        consent.consent_event(uuid.uuid4().hex, "talent-office", "talent-green-card", "grant")
        for _ in range(2000)
    ]
    withdrawn = consent.consent_event(who, "talent-office", "talent-green-card", "revoke")
    consent.publish(settings, [*backlog, withdrawn])
    application = _application("talent-office", "talent-green-card", TALENTED)
    _produce(settings, [AvroCodec().encode("application", application)])
    try:
        await Approvals(small_batches).run(asyncio.Event(), until_idle=True)
        decided = [
            record.value
            for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka))
            if record.value["application_id"] == application["application_id"]
        ]
        assert [(d["outcome"], d["reasons"][0]["code"]) for d in decided] == [("refused", "consent_missing")]
    finally:  # the other tests' subject keeps its consent
        consent.publish(settings, [consent.consent_event(who, "talent-office", "talent-green-card", "grant")])
        await Approvals(settings).run(asyncio.Event(), until_idle=True)


def test_a_decision_sent_again_on_kafka_is_audited_and_sent_only_as_a_new_one_would_be(
    exchange: Exchange,
) -> None:
    """The same application sent again goes through the grant, consent and delegation in force, as on
    the API channel, and each send is audited (it was sent the stored decision, unaudited, unchecked)."""
    settings, state, codec = exchange.settings, exchange.state, AvroCodec()
    who = ["--subject", TALENTED, "--caller", "talent-office", "--purpose", "talent-green-card"]
    application = codec.encode("application", _application("talent-office", "talent-green-card", TALENTED))
    application_id = codec.decode(application)[1]["application_id"]
    _produce(settings, [application])
    run(settings, state, "approvals", "--until-idle")
    run(settings, state, "consent", "revoke", *who)
    try:
        _produce(settings, [application])
        run(settings, state, "approvals", "--until-idle")
    finally:
        run(settings, state, "consent", "grant", *who)
        run(settings, state, "approvals", "--until-idle")
    _produce(settings, [application])
    run(settings, state, "approvals", "--until-idle")

    with psycopg.connect(settings.postgres.conninfo()) as conn:
        audited = conn.execute(
            "SELECT outcome, reason, response->>'decided_before' FROM audit_log "
            "WHERE request->>'application_id' = %s ORDER BY seq",
            (application_id,),
        ).fetchall()
    assert audited == [
        ("allowed", None, None),
        ("refused", "consent_missing", None),
        ("allowed", None, "true"),
    ]
    sent = [
        (record.value["decision_id"], record.value["outcome"])
        for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka))
        if record.value["application_id"] == application_id
    ]
    assert len(sent) == 2 and sent[0] == sent[1] and sent[0][1] == "approved"
    dead = [record.value for record in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))]
    assert [
        (letter["reason"], letter["original"]) for letter in dead if letter["original"] == application
    ] == [("consent_missing", application)]


def test_a_consent_event_postgresql_cannot_store_is_dead_lettered_and_the_rest_decided(
    exchange: Exchange,
) -> None:
    """Refused by PostgreSQL, such an event stopped `exchange approvals` at it on every restart, and every
    application with it (applications wait for consent to be read)."""
    settings, codec = exchange.settings, AvroCodec()
    key = key_of(settings, TALENTED)
    good = consent.consent_event(key, "talent-office", "talent-green-card", "grant")
    bad = [
        {**good, "event_id": "not-a-uuid"},
        {**good, "event_id": f"urn:uuid:{uuid.uuid4()}"},  # a UUID to Python, not to PostgreSQL
        {**good, "event_id": str(uuid.uuid4()), "caller": "talent\x00office"},
        {**good, "event_id": str(uuid.uuid4()), "subject_key": "k" * 3000},
    ]
    consent.publish(settings, bad)
    application = _application("talent-office", "talent-green-card", TALENTED)
    _produce(settings, [codec.encode("application", application)])
    run(settings, exchange.state, "approvals", "--until-idle")

    originals = [codec.encode("consent", event) for event in bad]
    dead = [record.value for record in read_all(settings.kafka, DEADLETTER.full_name(settings.kafka))]
    assert [(d["reason"], d["original"]) for d in dead if d["original"] in originals] == [
        ("invalid_consent", original) for original in originals
    ]
    decided = [
        record.value["outcome"]
        for record in read_all(settings.kafka, DECISIONS.full_name(settings.kafka))
        if record.value["application_id"] == application["application_id"]
    ]
    assert decided == ["approved"]


async def test_the_approvals_fetches_wait_for_data_at_most_the_configured_time(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # aiokafka's 0.5 s held new applications behind a fetch for the quiet consent partitions.
    keyed = with_key(settings, tmp_path)
    api = keyed.api.model_copy(update={"approvals_fetch_max_wait_seconds": 0.07})
    approvals = Approvals(keyed.model_copy(update={"api": api}))
    admin.ensure_topics(settings.kafka, (APPLICATIONS, CONSENT))
    consumer = approvals.consumer()
    await consumer.start()  # the fetcher is made here, from what the consumer was given
    try:
        assert consumer._fetcher._fetch_max_wait_ms == 70
    finally:
        await consumer.stop()


async def test_consent_and_delegation_are_checked_when_the_grant_requires_them(exchange: Exchange) -> None:
    settings, state = exchange.settings, exchange.state
    subject, applicant = "440115196406031712", TALENTED
    who = ["--subject", subject, "--caller", "talent-office", "--purpose", "talent-green-card"]
    body = {"service_item": "talent-green-card", "subject": subject, "reference_date": DAY}

    async def outcome(**extra: str) -> tuple[int, str]:
        async with client(settings, "talent-office") as http:
            response = await http.post("/v1/applications", json={**body, **extra})
        return response.status_code, response.json().get("reason") or response.json().get("outcome")

    assert await outcome() == (200, "approved")
    run(settings, state, "consent", "revoke", *who)
    run(settings, state, "approvals", "--until-idle")
    assert await outcome() == (403, "consent_missing")
    run(settings, state, "consent", "grant", *who)
    run(settings, state, "approvals", "--until-idle")
    assert await outcome() == (200, "approved")
    assert await outcome(applicant=applicant) == (403, "delegation_missing")
    run(settings, state, "consent", "grant", *who, "--delegate", applicant)
    run(settings, state, "approvals", "--until-idle")
    assert await outcome(applicant=applicant) == (200, "approved")
    unknown = run(settings, state, "consent", "grant", *who[:4], "--purpose", "loan", check=False)
    assert unknown.returncode != 0 and "no grant for purpose loan" in unknown.stderr


TALENT_APPLICANT = "440115196406031712"


def _talent_application(settings: ExchangeSettings) -> Callable[..., Awaitable[tuple[int, dict[str, Any]]]]:
    """`ask(**changes)`: the talent office's application for TALENT_APPLICANT, one id for every ask,
    with `changes` to the body; its status and answer."""
    body = {
        "service_item": "talent-green-card",
        "subject": TALENT_APPLICANT,
        "reference_date": DAY,
        "application_id": str(uuid.uuid4()),
    }

    async def ask(**changes: str | None) -> tuple[int, dict[str, Any]]:
        async with client(settings, "talent-office") as http:
            response = await http.post("/v1/applications", json={**body, **changes})
        return response.status_code, response.json()

    return ask


async def test_a_decision_asked_for_again_is_allowed_only_as_a_new_request_would_be(
    exchange: Exchange,
) -> None:
    settings, state = exchange.settings, exchange.state
    subject = TALENT_APPLICANT
    who = ["--subject", subject, "--caller", "talent-office", "--purpose", "talent-green-card"]
    ask = _talent_application(settings)

    status, first = await ask()
    assert (status, first["outcome"]) == (200, "approved")
    run(settings, state, "consent", "revoke", *who)
    run(settings, state, "approvals", "--until-idle")
    try:
        status, refused = await ask()
        assert (status, refused["reason"]) == (403, "consent_missing")
        # The same id for a purpose the caller has no grant for: refused before anything is said of
        # the stored application (it was a 409, telling a caller with no grant that the id exists).
        status, refused = await ask(purpose="credit")
        assert (status, refused["reason"]) == (403, "purpose_not_granted")
        status, _ = await ask(subject=SUBJECTS[0])  # the same id for another subject: another application
        assert status == 409
    finally:
        run(settings, state, "consent", "grant", *who)
        run(settings, state, "approvals", "--until-idle")
    status, again = await ask()
    assert status == 200 and again["decision_id"] == first["decision_id"]
    # The same id with another reference date is another application (it was sent the first's decision,
    # made on another date); with none, it asks for the decision whenever it was made.
    status, conflict = await ask(reference_date="2026-11-01")
    assert status == 409 and f"reference date {DAY}" in conflict["message"], conflict
    status, undated = await ask(reference_date=None)
    assert status == 200 and undated["decision_id"] == first["decision_id"]


async def test_an_application_dated_after_today_is_not_decided(exchange: Exchange) -> None:
    """Decided on a date to come, the rules read months no department has reported as empty and an age
    not yet reached: a longevity allowance was approved a year before the 80th birthday."""
    settings = exchange.settings
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    status, invalid = await _talent_application(settings)(reference_date=tomorrow)
    assert status == 422 and invalid["detail"][0]["loc"] == ["body", "reference_date"], invalid
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        assert conn.execute(
            "SELECT outcome, reason FROM audit_log WHERE action = 'application' ORDER BY seq DESC LIMIT 1"
        ).fetchone() == ("failed", "invalid_request")


async def test_facts_on_a_date_after_today_are_not_answered(exchange: Exchange) -> None:
    """Verifications and profile reads on a date to come read months no department has reported as
    empty, as applications did: `continuous_months ge 6` was a confident no."""
    tomorrow = (today() + dt.timedelta(days=1)).isoformat()
    asked = {"purpose": "talent-green-card", "reference_date": tomorrow}
    async with client(exchange.settings, "talent-office") as http:
        claimed = claims(("social.pension.continuous_months", "ge", 6))
        verification = await http.post(
            "/v1/verifications", json={**asked, "subject": TALENTED, "claims": claimed}
        )
        profile = await http.get(f"/v1/subjects/{TALENTED}/profile", params=asked)
        on_today = await http.get(
            f"/v1/subjects/{TALENTED}/profile", params={**asked, "reference_date": today().isoformat()}
        )
    assert verification.status_code == 422, verification.text
    assert verification.json()["detail"][0]["loc"] == ["body", "reference_date"]
    assert profile.status_code == 422 and profile.json()["detail"][0]["loc"] == ["query", "reference_date"]
    assert on_today.status_code == 200, on_today.text


async def test_an_application_id_stored_meanwhile_by_another_application_is_a_conflict(
    exchange: Exchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two requests with one application id decided at once: the second to store finds the first's
    decision. Made on another subject, it is a 409 (that decision was sent to the second caller);
    made on the same application, it is that decision, counted once."""
    settings = exchange.settings
    subject = TALENT_APPLICANT
    ask = _talent_application(settings)

    status, first = await ask()
    assert (status, first["outcome"]) == (200, "approved")

    async def not_yet_committed(conn: Any, application_id: str) -> None:
        return None  # what a concurrent request reads before the first one commits

    monkeypatch.setattr(applications, "get_decision", not_yet_committed)
    counted = _counted("talent-green-card", "approved")
    status, refused = await ask(subject=SUBJECTS[0])
    assert status == 409, refused
    assert subject not in json.dumps(refused) and first["decision_id"] not in json.dumps(refused)
    status, same = await ask()
    assert status == 200 and same["decision_id"] == first["decision_id"]
    assert _counted("talent-green-card", "approved") == counted


POLICY = load_policy()


def _granted_only(caller: str, case: Any, response: Any) -> None:
    """A 200 answer carries only what `caller`'s grant for the request's purpose allows."""
    if response.status_code != 200 or case.operation.path in ("/v1/keys", "/v1/proofs/verify"):
        return
    body, sent = response.json(), {**(case.body if isinstance(case.body, dict) else {}), **(case.query or {})}
    purpose = sent.get("purpose") or sent.get("service_item") or body.get("document", {}).get("purpose")
    grant = POLICY.grants.get(caller, {}).get(purpose)
    assert grant is not None, f"{caller} answered for purpose {purpose!r} it has no grant for"
    path = case.operation.path
    if path.endswith("/profile"):
        assert set(body["fields"]) <= grant.profile_fields and set(body["lineage"]) <= grant.profile_fields
    elif path == "/v1/verifications":
        assert {result["fact"] for result in body["results"]} <= grant.facts
    elif path.startswith("/v1/proofs"):
        assert body["proof_type"] in grant.proof_types
    elif path == "/v1/applications":
        assert body["service_item"] in grant.service_items
    elif path.endswith("/audit"):
        assert grant.subject_audit


def _steered(caller: str, case: Any) -> Any:
    """Most generated IDs fail their check character and most generated purposes are granted to no
    one: half the cases get a sample subject and a purpose (the caller's own, or another's) instead,
    so that the run also reaches answers made from real data, where an ungranted field could leak."""
    seed = len(repr(case.body)) + len(repr(case.query))
    sent = {**(case.body if isinstance(case.body, dict) else {}), **(case.query or {})}
    if seed % 2 or sent.get("purpose") in POLICY.grants["talent-office"]:  # an explicit example: as it is
        return case
    purposes = [*POLICY.grants[caller], *(p for grants in POLICY.grants.values() for p in grants)]
    # Every other steered case keeps to the caller's first purpose (another caller's, for the bank).
    purpose = purposes[0] if (seed // 2) % 2 == 0 else purposes[seed % len(purposes)]
    subject = SUBJECTS[seed % len(SUBJECTS)]
    if isinstance(case.body, dict):
        case.body.update({"subject": subject} if "subject" in case.body else {})
        case.body.update({"purpose": purpose} if "purpose" in case.body else {})
    if case.path_parameters and "subject_id" in case.path_parameters:
        case.path_parameters["subject_id"] = subject
    if case.query and "purpose" in case.query:
        case.query["purpose"] = purpose
    return case


@pytest.mark.parametrize("caller", ["talent-office", "housing-bureau", "bank"])
def test_the_openapi_description_holds_no_5xx_and_nothing_ungranted(exchange: Exchange, caller: str) -> None:
    answered: Counter[tuple[str, int]] = Counter()
    with served(exchange.settings, exchange.state) as base:

        def call(case: Any) -> None:
            response = case.call(base_url=base, headers={"X-API-Key": KEYS[caller]})
            case.validate_response(response, checks=[not_a_server_error])
            _granted_only(caller, case, response)
            answered[case.operation.path, response.status_code] += 1

        schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            # The description's own examples, then generated cases: bounded, and the same every run.
            strategies = [
                *operation.get_strategies_from_examples(),
                operation.as_strategy().map(functools.partial(_steered, caller)),
            ]
            for strategy in strategies:
                hypothesis.settings(
                    max_examples=6,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(hypothesis.HealthCheck),
                )(hypothesis.given(case=strategy)(call))()
    # The run reached real answers, not only validation errors (the examples are the talent office's).
    answered_paths = {path for (path, status) in answered if status == 200} - {
        "/v1/keys",
        "/v1/proofs/verify",
    }
    if caller == "bank":
        assert not answered_paths and sum(n for (_, status), n in answered.items() if status == 403) > 0
    elif caller == "talent-office":
        assert {
            "/v1/verifications",
            "/v1/subjects/{subject_id}/profile",
            "/v1/applications",
        } <= answered_paths
    else:
        assert answered_paths
