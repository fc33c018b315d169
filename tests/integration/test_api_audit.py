"""The audit log on the real PostgreSQL (and Kafka): every request chained, serialised under concurrency,
`exchange audit verify` passing and then naming a tampered row, the relay's copy on exchange.audit.v1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import murmur2
from api_support import api_env, client, key_of, run, with_key
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from support import free_port

from exchange import admin, database
from exchange.api import create_api, relay, relay_process
from exchange.api.storage import audit as audit_table
from exchange.api.storage.pool import create_pool, transaction
from exchange.audit import AuditEntry, chained_canonical, row_hash, verify
from exchange.logs import read_all
from exchange.policy import load_policy
from exchange.settings import ExchangeSettings
from exchange.topics import AUDIT

SUBJECT = "440103198403037020"
CLAIM = {"fact": "identity.status", "operator": "eq", "value": "normal"}


async def _requests(settings: ExchangeSettings, count: int) -> None:
    """`count` requests at once: allowed verifications, refused ones, unauthenticated ones."""
    body = {"subject": SUBJECT, "purpose": "public-rental-housing", "claims": [CLAIM]}
    async with (
        client(settings, "housing-bureau") as housing,
        client(settings, "bank") as bank,
        client(settings) as anonymous,
    ):
        sent = [(housing, bank, anonymous)[n % 3].post("/v1/verifications", json=body) for n in range(count)]
        statuses = [response.status_code for response in await asyncio.gather(*sent)]
    assert sorted(set(statuses)) == [200, 401, 403]


def _prepared(settings: ExchangeSettings, tmp_path: Path) -> ExchangeSettings:
    """`settings` with the test's own signing key, its database migrated."""
    settings = with_key(settings, tmp_path)
    database.migrate(settings.postgres)
    return settings


async def test_audit_verify_passes_then_names_the_first_tampered_row(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = _prepared(settings, tmp_path)
    await _requests(settings, 30)
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        outcomes = conn.execute("SELECT outcome, count(*) FROM audit_log GROUP BY 1 ORDER BY 1").fetchall()
        texts = conn.execute("SELECT request::text || response::text FROM audit_log").fetchall()
    assert outcomes == [("allowed", 10), ("refused", 20)]
    assert not any(SUBJECT in text for (text,) in texts)
    assert "intact: 30 rows" in run(settings, tmp_path, "audit", "verify").stdout

    with psycopg.connect(settings.postgres.conninfo()) as conn:
        # The table refuses it; a tamperer with the owner's rights disables the trigger first.
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("UPDATE audit_log SET outcome = 'allowed' WHERE seq = 7")
        conn.rollback()
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("UPDATE audit_log SET outcome = 'allowed', reason = NULL WHERE seq = 7 OR seq = 12")
        conn.commit()
    done = run(settings, tmp_path, "audit", "verify", check=False)
    assert done.returncode != 0 and "row 7" in done.stdout and "altered" in done.stdout

    with psycopg.connect(settings.postgres.conninfo()) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq >= 7")
    done = run(settings, tmp_path, "audit", "verify", check=False)
    assert done.returncode != 0 and "row 7" in done.stdout and "truncated" in done.stdout


async def _relayed(settings: ExchangeSettings, count: int) -> None:
    """`count` requests with the API's relay running, until it has put every row on exchange.audit.v1."""
    admin.ensure_topics(settings.kafka)
    app = create_api(settings)  # with the relay
    async with app.router.lifespan_context(app):
        await _requests(settings, count)
        await _wait_for(lambda: _relay_position(settings) == count + 1)


def _verify(settings: ExchangeSettings, tmp_path: Path) -> tuple[int, str]:
    """`exchange audit verify`'s exit code and output, its lines joined (the console wraps them)."""
    done = run(settings, tmp_path, "audit", "verify", check=False)
    return done.returncode, " ".join((done.stdout + done.stderr).split())


async def test_audit_verify_finds_a_published_tail_removed_with_the_head_moved_back(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # The database alone was the reference: rows 10-12 deleted and the head moved back to row 9 by
    # whoever can write it, `audit verify` said "intact: 9 rows", though the topic held rows 10-12.
    settings = _prepared(settings, tmp_path)
    await _relayed(settings, 12)
    code, said = _verify(settings, tmp_path)
    assert code == 0 and "intact: 12 rows" in said and "12 of them as published" in said

    with psycopg.connect(settings.postgres.conninfo()) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute("DELETE FROM audit_log WHERE seq > 9")
        conn.execute(
            "UPDATE audit_chain_head SET last_seq = 9, last_hash = (SELECT hash FROM audit_log WHERE seq = 9)"
        )
    code, said = _verify(settings, tmp_path)
    assert code == 2 and "row 10" in said and "truncated" in said
    assert AUDIT.full_name(settings.kafka) in said

    # The relay's position put back as well: the topic still holds the rows.
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        conn.execute("UPDATE audit_relay SET next_seq = 10")
    code, said = _verify(settings, tmp_path)
    assert code == 2 and "row 10" in said and "truncated" in said

    # Everything deleted, the head and the relay's position included.
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        for table in ("audit_log", "audit_chain_head", "audit_relay"):
            conn.execute(f"DELETE FROM {table}")
    code, said = _verify(settings, tmp_path)
    assert code == 2 and "row 1 " in said and "truncated" in said


async def test_audit_verify_finds_a_published_row_rewritten_with_its_hashes_recomputed(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # Row 5 altered and the hashes of rows 5-8 and the head recomputed: consistent in the database.
    settings = _prepared(settings, tmp_path)
    await _relayed(settings, 8)
    with psycopg.connect(settings.postgres.conninfo(), row_factory=dict_row) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        rows = conn.execute("SELECT * FROM audit_log WHERE seq >= 4 ORDER BY seq").fetchall()
        prev_hash = rows[0]["hash"]
        for row in rows[1:]:
            row["prev_hash"] = prev_hash
            if row["seq"] == 5:
                row["outcome"], row["reason"] = "allowed", None
            prev_hash = row["hash"] = row_hash(row)
            conn.execute(
                "UPDATE audit_log SET outcome = %(outcome)s, reason = %(reason)s, prev_hash = %(prev_hash)s,"
                " hash = %(hash)s WHERE seq = %(seq)s",
                row,
            )
        conn.execute("UPDATE audit_chain_head SET last_hash = %s", (prev_hash,))
        conn.commit()
        stored = conn.execute("SELECT * FROM audit_log ORDER BY seq").fetchall()
    assert verify(stored, (8, prev_hash)) is None  # the database alone no longer shows it
    code, said = _verify(settings, tmp_path)
    assert code == 2 and "row 5" in said and "altered" in said
    assert AUDIT.full_name(settings.kafka) in said


def test_audit_verify_fails_when_kafka_cannot_be_reached(settings: ExchangeSettings, tmp_path: Path) -> None:
    # The published copy is the reference: without it the chain is not verified, and not said to be.
    settings = _prepared(settings, tmp_path)
    env = {**api_env(settings, tmp_path), "EXCHANGE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    done = subprocess.run(
        [sys.executable, "-m", "exchange", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "intact" not in done.stdout
    assert "cannot reach Kafka" in done.stderr and "make stack" in done.stderr


async def test_the_policy_files_are_kept_under_their_version_and_checked_by_verify(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    """An audit row names its policy version only; the files of that version are kept, so its grants and
    legal bases can be read once `policy/` has changed, and an altered copy is named."""
    settings = _prepared(settings, tmp_path)
    await _requests(settings, 3)
    policy = load_policy()
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        kept = conn.execute("SELECT version, files FROM policy_versions").fetchall()
        used = conn.execute("SELECT DISTINCT policy_version FROM audit_log").fetchall()
    assert kept == [(policy.version, {name: raw.decode() for name, raw in policy.files.items()})]
    assert used == [(policy.version,)]
    assert "intact: 3 rows" in run(settings, tmp_path, "audit", "verify").stdout

    with psycopg.connect(settings.postgres.conninfo()) as conn:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute("DELETE FROM policy_versions")
        conn.rollback()
        conn.execute("ALTER TABLE policy_versions DISABLE TRIGGER policy_versions_append_only")
        # A legal basis rewritten after the fact.
        conn.execute(
            "UPDATE policy_versions SET files = jsonb_set(files, '{grants.json}', "
            "to_jsonb(replace(files->>'grants.json', '第', '笫')))"
        )
        conn.commit()
    done = run(settings, tmp_path, "audit", "verify", check=False)
    assert done.returncode != 0 and "altered" in done.stdout and policy.version in done.stdout


async def test_a_request_refused_before_any_handler_read_it_is_audited_too(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = _prepared(settings, tmp_path)
    async with client(settings, "housing-bureau") as housing:
        answers = [
            # A body that is no JSON; a field no request model has.
            await housing.post("/v1/verifications", content=b'{"subject": "' + SUBJECT.encode()),
            await housing.post(
                "/v1/proofs",
                json={
                    "subject": SUBJECT,
                    "purpose": "public-rental-housing",
                    "proof_type": "household",
                    "x": 1,
                },
            ),
            # A body that is not UTF-8; no such method; no such route (its path holds the ID).
            await housing.post(
                "/v1/verifications",
                content=b'{"subject": "\xff"}',
                headers={"content-type": "application/json"},
            ),
            await housing.get("/v1/verifications"),
            await housing.get(f"/v1/subject/{SUBJECT}/profile"),
        ]
    assert [answer.status_code for answer in answers] == [422, 422, 400, 405, 404]
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute(
            "SELECT caller, action, outcome, reason, request, response, request::text || response::text"
            " FROM audit_log ORDER BY seq"
        ).fetchall()
    assert [row[:4] for row in rows] == [
        ("housing-bureau", "verification", "refused", "invalid_request"),
        ("housing-bureau", "proof.issue", "refused", "invalid_request"),
        ("housing-bureau", "verification", "refused", "invalid_request"),
        ("housing-bureau", "verification", "refused", "method_not_allowed"),
        ("housing-bureau", "unrouted", "refused", "no_such_route"),
    ]
    assert rows[1][4] == {
        "method": "POST",
        "route": "/v1/proofs",
        "errors": [{"loc": ["body", "x"], "type": "extra_forbidden"}],
    }
    assert [row[5] for row in rows] == [{"status": status} for status in (422, 422, 400, 405, 404)]
    assert not any(SUBJECT in text for *_, text in rows)  # what was wrong, never what was sent
    assert "intact: 5 rows" in run(settings, tmp_path, "audit", "verify").stdout


async def test_prometheus_scrapes_metrics_at_the_path_it_asks_unaudited_and_keys_are_audited(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = _prepared(settings, tmp_path)
    async with client(settings, "housing-bureau") as housing:
        await housing.post("/v1/verifications", json={"subject": SUBJECT})  # a 422, measured
        scraped = await housing.get("/metrics")
        keys = await housing.get("/v1/keys")  # public, and audited as every endpoint is (it was not)
    assert scraped.status_code == 200 and keys.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "exchange_api_request_seconds_count{" in scraped.text
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        rows = conn.execute("SELECT caller, action, reason FROM audit_log ORDER BY seq").fetchall()
    assert rows == [("housing-bureau", "verification", "invalid_request"), ("public", "keys", None)]


async def test_a_row_put_below_the_chain_s_start_is_refused_and_named(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # A forged row with seq 0 and a hash of its own showed in the subject's data-use history, while
    # `audit verify`, reading from seq 1, said the chain was intact.
    settings = _prepared(settings, tmp_path)
    await _requests(settings, 3)
    entry = AuditEntry(
        "housing-bureau", "verification", "allowed", "v1", subject_key=key_of(settings, SUBJECT)
    )
    forged, _ = chained_canonical(entry, 0, "0" * 64)
    insert = (
        "INSERT INTO audit_log (seq, event_id, at, caller, purpose, subject_key, action, outcome, reason, "
        "request, response, policy_version, prev_hash, hash) VALUES (%(seq)s, %(event_id)s, %(at)s, "
        "%(caller)s, %(purpose)s, %(subject_key)s, %(action)s, %(outcome)s, %(reason)s, %(request)s, "
        "%(response)s, %(policy_version)s, %(prev_hash)s, %(hash)s)"
    )
    values = {**forged, "request": Jsonb(forged["request"]), "response": Jsonb(forged["response"])}
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(insert, values)
        conn.rollback()
        conn.execute("ALTER TABLE audit_log DROP CONSTRAINT audit_log_seq_positive")  # the owner can
        conn.execute(insert, values)
        conn.commit()
    done = run(settings, tmp_path, "audit", "verify", check=False)
    assert done.returncode == 2 and "row 0" in done.stdout and "sequence_gap" in done.stdout


async def test_a_subject_sees_who_used_their_data(settings: ExchangeSettings, tmp_path: Path) -> None:
    settings = _prepared(settings, tmp_path)
    await _requests(settings, 3)
    async with client(settings, "citizen-portal") as portal:
        mine = await portal.get(f"/v1/subjects/{SUBJECT}/audit", params={"purpose": "data-use-history"})
    async with client(settings, "housing-bureau") as housing:
        refused = await housing.get(
            f"/v1/subjects/{SUBJECT}/audit", params={"purpose": "public-rental-housing"}
        )
    assert mine.status_code == 200
    uses = [(entry["caller"], entry["purpose"], entry["outcome"]) for entry in mine.json()["entries"]]
    assert ("housing-bureau", "public-rental-housing", "allowed") in uses
    assert ("bank", "public-rental-housing", "refused") in uses
    assert (refused.status_code, refused.json()["reason"]) == (403, "subject_audit_not_granted")
    assert mine.json()["next_before"] is None

    # A page at a time, newest first: each read of the history is a use of the data too (the newest).
    async with client(settings, "citizen-portal") as portal:
        history_url, asked = f"/v1/subjects/{SUBJECT}/audit", {"purpose": "data-use-history"}
        mine_first = (await portal.get(history_url, params={**asked, "limit": 500})).json()["entries"]
        first = (await portal.get(history_url, params={**asked, "limit": 2})).json()
        rest = (await portal.get(history_url, params={**asked, "before": first["next_before"]})).json()
        too_long = await portal.get(history_url, params={**asked, "limit": 501})
        past_bigint = await portal.get(history_url, params={**asked, "before": 2**63})
    assert [entry["action"] for entry in first["entries"]] == ["subject_audit.read", mine_first[0]["action"]]
    assert first["entries"][1] == mine_first[0] and first["next_before"] is not None
    assert (rest["entries"], rest["next_before"]) == (mine_first[1:], None)
    assert too_long.status_code == past_bigint.status_code == 422

    history = run(settings, tmp_path, "audit", "history", SUBJECT).stdout
    assert "housing-bureau" in history and "bank" in history and "purpose_not_granted" in history
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM audit_log WHERE subject_key = %s", (key_of(settings, SUBJECT),)
        ).fetchone() or (0,)
    assert count >= 3

    # A grant of the history that requires the subject's consent is held to it, as every other grant.
    policy = tmp_path / "policy"
    shutil.copytree(Path(str(resources.files("policy"))), policy)  # the bundled policy files
    grants = json.loads((policy / "grants.json").read_text(encoding="utf-8"))
    for grant in grants["grants"]["citizen-portal"]:
        grant["consent_required"] = True
    (policy / "grants.json").write_text(json.dumps(grants, ensure_ascii=False), encoding="utf-8")
    consenting = settings.model_copy(update={"api": settings.api.model_copy(update={"policy_dir": policy})})
    async with client(consenting, "citizen-portal") as portal:
        unconsented = await portal.get(
            f"/v1/subjects/{SUBJECT}/audit", params={"purpose": "data-use-history"}
        )
    assert (unconsented.status_code, unconsented.json()["reason"]) == (403, "consent_missing")


async def test_the_relay_puts_the_chain_on_the_audit_topic(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = _prepared(settings, tmp_path)
    admin.ensure_topics(settings.kafka)
    app = create_api(settings)  # with the relay
    async with app.router.lifespan_context(app):
        await _requests(settings, 9)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with psycopg.connect(settings.postgres.conninfo()) as conn:
                (next_seq,) = conn.execute("SELECT next_seq FROM audit_relay").fetchone() or (0,)
            if next_seq == 10:
                break
            await asyncio.sleep(0.2)
    records = [record.value for record in read_all(settings.kafka, AUDIT.full_name(settings.kafka))]
    rows = [
        {**value, "request": json.loads(value["request"]), "response": json.loads(value["response"])}
        for value in records
    ]
    assert [row["seq"] for row in rows] == list(range(1, 10))
    assert verify(rows, (9, rows[-1]["hash"])) is None


async def test_a_relay_pass_goes_out_in_produce_batches_in_chain_order_on_the_keys_partition(
    settings: ExchangeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    database.migrate(settings.postgres)
    admin.ensure_topics(settings.kafka)
    monkeypatch.setattr(relay, "MAX_BATCH_BYTES", 4096)  # a few rows a batch: one pass spans several
    calls = {"send": 0, "send_batch": 0}

    def counting(name: str) -> Callable[..., Any]:
        original = getattr(AIOKafkaProducer, name)

        async def counted(self: AIOKafkaProducer, *args: object, **kwargs: object) -> object:
            calls[name] += 1
            return await original(self, *args, **kwargs)

        return counted

    for name in calls:
        monkeypatch.setattr(AIOKafkaProducer, name, counting(name))
    entries = [
        AuditEntry(
            caller="housing-bureau",
            action="verification",
            outcome="allowed",
            policy_version="test",
            # Row 20 is bigger than a whole batch: it goes alone in one, in its place in the chain.
            request={"n": n, "pad": "x" * (10_000 if n == 20 else 10)},
        )
        for n in range(1, 41)
    ]
    pool = create_pool(settings)
    await pool.open(wait=True)
    audit_relay = relay.AuditRelay(settings, pool)
    try:
        async with transaction(pool) as conn:
            await audit_table.append_batch(conn, entries)
        assert await audit_relay.publish_pending() == 40
        assert await audit_relay.publish_pending() == 0
    finally:
        await audit_relay.close()
        await pool.close()
    # Produce batches of a few rows each (the oversized one alone), not a send per row.
    assert calls["send"] == 0 and 3 <= calls["send_batch"] < 40
    records = list(read_all(settings.kafka, AUDIT.full_name(settings.kafka)))
    # The partition `send(key=KEY)` picks (the default partitioner: murmur2 of the key).
    partition = (murmur2(relay.KEY) & 0x7FFFFFFF) % settings.kafka.subject_partitions
    assert {(record.partition, record.key) for record in records} == {(partition, relay.KEY)}
    rows = [
        {**r.value, "request": json.loads(r.value["request"]), "response": json.loads(r.value["response"])}
        for r in records
    ]
    assert [row["seq"] for row in rows] == list(range(1, 41))
    assert [row["request"]["n"] for row in rows] == list(range(1, 41))
    assert verify(rows, (40, rows[-1]["hash"])) is None


async def test_a_proxys_verified_certificate_subject_identifies_the_caller(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    settings = with_key(settings, tmp_path)
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"tls_subject_header": "X-Client-Subject"})}
    )
    database.migrate(settings.postgres)
    body = {"subject": SUBJECT, "purpose": "public-rental-housing", "claims": [CLAIM]}
    async with client(settings) as http:
        known = await http.post(
            "/v1/verifications",
            json=body,
            headers={"X-Client-Subject": "CN=housing-bureau,OU=approval-services,O=Guangzhou"},
        )
        unknown = await http.post("/v1/verifications", json=body, headers={"X-Client-Subject": "CN=someone"})
    assert known.status_code == 200 and unknown.status_code == 401


def _relay_children() -> list[int]:
    """This process's children running the audit relay."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            with contextlib.suppress(FileNotFoundError):
                if relay_process.MODULE.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    found.append(int(pid))
    return found


async def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_the_relay_runs_in_its_own_process_restarted_until_the_api_stops(
    settings: ExchangeSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Off the API's event loop: a child process, started again when it dies, gone when the API stops.
    monkeypatch.setattr(relay_process, "_RESTART_SECONDS", (0.1, 0.1))
    settings = _prepared(settings, tmp_path)
    app = create_api(settings)
    async with app.router.lifespan_context(app):
        await _wait_for(lambda: len(_relay_children()) == 1)
        (first,) = _relay_children()
        os.kill(first, signal.SIGKILL)
        await _wait_for(lambda: len(_relay_children()) == 1 and _relay_children() != [first])
        await _requests(settings, 3)
        await _wait_for(lambda: _relay_position(settings) == 4)  # relayed by the restarted process
    assert _relay_children() == []


async def test_the_relay_process_runs_nicer_than_the_api_by_its_setting(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    # No request waits for the relay: it takes the CPU the requests leave, not turns with them.
    settings = _prepared(settings, tmp_path)
    settings = settings.model_copy(
        update={"api": settings.api.model_copy(update={"audit_relay_niceness": 7})}
    )
    app = create_api(settings)
    async with app.router.lifespan_context(app):
        await _wait_for(lambda: len(_relay_children()) == 1)
        (child,) = _relay_children()
        own = os.getpriority(os.PRIO_PROCESS, 0)
        await _wait_for(lambda: os.getpriority(os.PRIO_PROCESS, child) == min(own + 7, 19))


def _relay_position(settings: ExchangeSettings) -> int:
    with psycopg.connect(settings.postgres.conninfo()) as conn:
        (next_seq,) = conn.execute("SELECT next_seq FROM audit_relay").fetchone() or (0,)
    return int(next_seq)
