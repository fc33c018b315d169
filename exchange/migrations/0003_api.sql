-- The API's tables: issued proofs, 秒批 decisions, the hash-chained audit log (电子监察) with its chain
-- head and its relay position, and the materialised consents (授权, 代办).

-- Every proof issued, with the exact signed payload; the public verification endpoint compares a
-- presented proof against this row and the records it used against the record tables.
CREATE TABLE proofs (
    proof_id       uuid        PRIMARY KEY,
    proof_type     text        NOT NULL,
    caller         text        NOT NULL,
    purpose        text        NOT NULL,
    subject_key    text        NOT NULL,
    issued_at      timestamptz NOT NULL,
    payload_sha256 text        NOT NULL,   -- hex SHA-256 of the JWS payload bytes
    jws            text        NOT NULL,   -- compact serialisation
    document       jsonb       NOT NULL,   -- the signed payload, parsed
    sources        jsonb       NOT NULL,   -- [{dataset, source_record_id, source_version, event_id, topic, partition, offset}]
    policy_version text        NOT NULL
);
CREATE INDEX proofs_subject ON proofs (subject_key, issued_at);

-- Every decision, from the API (channel 'api') or the applications topic ('kafka'): one per application.
CREATE TABLE decisions (
    application_id  uuid        PRIMARY KEY,
    decision_id     uuid        NOT NULL UNIQUE,
    channel         text        NOT NULL CHECK (channel IN ('api', 'kafka')),
    caller          text        NOT NULL,
    purpose         text        NOT NULL,
    service_item    text        NOT NULL,
    subject_key     text        NOT NULL,
    outcome         text        NOT NULL CHECK (outcome IN ('approved', 'rejected', 'manual_review', 'refused')),
    reasons         jsonb       NOT NULL,
    facts_used      jsonb       NOT NULL,
    reference_date  date        NOT NULL,
    profile_version bigint      NOT NULL,
    policy_version  text        NOT NULL,
    decided_at      timestamptz NOT NULL,
    trace_id        text        NOT NULL
);
CREATE INDEX decisions_subject ON decisions (subject_key, decided_at);

-- The audit log: append-only, gapless seq, each row carrying the previous row's hash (exchange/audit.py).
CREATE TABLE audit_log (
    seq            bigint      PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    at             timestamptz NOT NULL,
    caller         text        NOT NULL,
    purpose        text,
    subject_key    text,                   -- HMAC subject key; identifiers never appear here
    action         text        NOT NULL,
    outcome        text        NOT NULL,
    reason         text,
    request        jsonb       NOT NULL,
    response       jsonb       NOT NULL,
    policy_version text        NOT NULL,
    prev_hash      text        NOT NULL,
    hash           text        NOT NULL
);
CREATE INDEX audit_log_subject ON audit_log (subject_key, seq) WHERE subject_key IS NOT NULL;

-- One row: the last seq and hash. Appends lock it (SELECT … FOR UPDATE), which serialises them, and
-- move it in the same transaction, so rows removed from the end of the log are detected.
CREATE TABLE audit_chain_head (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq  bigint  NOT NULL,
    last_hash text    NOT NULL
);
INSERT INTO audit_chain_head (last_seq, last_hash) VALUES (0, repeat('0', 64));

-- The last seq the relay published to exchange.audit.v1 (a transactional outbox: the log is the source).
CREATE TABLE audit_relay (
    id        boolean PRIMARY KEY DEFAULT true CHECK (id),
    next_seq  bigint  NOT NULL
);
INSERT INTO audit_relay (next_seq) VALUES (1);

-- Append-only: the exchange never updates or deletes audit rows; this refuses it to anyone who tries
-- without first disabling the trigger (which needs the table owner, and the chain still shows it).
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Consent and delegation in force, materialised from exchange.consent.v1 by `exchange approvals`.
-- delegate_key '' is the subject's own consent; otherwise the delegate allowed to apply for them.
CREATE TABLE consents (
    subject_key     text        NOT NULL,
    caller          text        NOT NULL,
    purpose         text        NOT NULL,
    delegate_key    text        NOT NULL,
    granted         boolean     NOT NULL,
    event_id        uuid        NOT NULL,
    occurred_at     timestamptz NOT NULL,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    PRIMARY KEY (subject_key, caller, purpose, delegate_key)
);
