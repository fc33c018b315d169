-- The PostgreSQL views the sink (consumers/sink) keeps: every version of every source record per
-- dataset, the current version of each through a view, and the profile with its full history.
--
-- The record tables are append-only and filled by COPY. There is deliberately no unique constraint
-- on event_id: a connector that crashed before saving its position re-sends a chunk, so one event id
-- can sit in the log twice, and both copies land here. The *_current views pick one winner per
-- source record with the same total order as the profile fold (exchange/profile.py): the highest
-- source_version; at the same version a revoke over an upsert; then the earliest log position.
-- A winner that is a revoke hides the record.

CREATE TABLE identity_person_records (
    event_id         uuid        NOT NULL,
    subject_key      text        NOT NULL,
    department       text        NOT NULL,
    source_record_id text        NOT NULL,
    source_version   bigint      NOT NULL,
    op               text        NOT NULL CHECK (op IN ('upsert', 'revoke')),
    occurred_at      timestamptz NOT NULL,
    published_at     timestamptz NOT NULL,
    trace_id         text        NOT NULL,
    topic            text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    sunk_at          timestamptz NOT NULL DEFAULT now(),
    citizen_id       text        NOT NULL,
    name             text        NOT NULL,
    sex              text        NOT NULL,
    ethnicity        text        NOT NULL,
    birth_date       date        NOT NULL,
    address          text        NOT NULL,
    district         text        NOT NULL,
    household_type   text        NOT NULL,
    status           text        NOT NULL
);

CREATE TABLE tax_payment_records (
    event_id          uuid        NOT NULL,
    subject_key       text        NOT NULL,
    department        text        NOT NULL,
    source_record_id  text        NOT NULL,
    source_version    bigint      NOT NULL,
    op                text        NOT NULL CHECK (op IN ('upsert', 'revoke')),
    occurred_at       timestamptz NOT NULL,
    published_at      timestamptz NOT NULL,
    trace_id          text        NOT NULL,
    topic             text        NOT NULL,
    kafka_partition   integer     NOT NULL,
    kafka_offset      bigint      NOT NULL,
    sunk_at           timestamptz NOT NULL DEFAULT now(),
    citizen_id        text        NOT NULL,
    name              text        NOT NULL,
    income_item       text        NOT NULL,
    period_start      date        NOT NULL,
    period_end        date        NOT NULL,
    income            numeric(18, 2) NOT NULL,
    tax_paid          numeric(18, 2) NOT NULL,
    withholding_agent text,  -- null when self-declared
    credited_on       date        NOT NULL,
    tax_office        text        NOT NULL
);

CREATE TABLE social_contribution_records (
    event_id         uuid        NOT NULL,
    subject_key      text        NOT NULL,
    department       text        NOT NULL,
    source_record_id text        NOT NULL,
    source_version   bigint      NOT NULL,
    op               text        NOT NULL CHECK (op IN ('upsert', 'revoke')),
    occurred_at      timestamptz NOT NULL,
    published_at     timestamptz NOT NULL,
    trace_id         text        NOT NULL,
    topic            text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    sunk_at          timestamptz NOT NULL DEFAULT now(),
    citizen_id       text        NOT NULL,
    name             text        NOT NULL,
    insurance_type   text        NOT NULL,
    month            date        NOT NULL,
    employer_id      text        NOT NULL,
    employer_name    text        NOT NULL,
    base             numeric(18, 2) NOT NULL,
    employer_amount  numeric(18, 2) NOT NULL,
    personal_amount  numeric(18, 2) NOT NULL,
    status           text        NOT NULL
);

-- A title with n owners is n records, one per owner (each under its owner's subject key).
CREATE TABLE property_title_records (
    event_id         uuid        NOT NULL,
    subject_key      text        NOT NULL,
    department       text        NOT NULL,
    source_record_id text        NOT NULL,
    source_version   bigint      NOT NULL,
    op               text        NOT NULL CHECK (op IN ('upsert', 'revoke')),
    occurred_at      timestamptz NOT NULL,
    published_at     timestamptz NOT NULL,
    trace_id         text        NOT NULL,
    topic            text        NOT NULL,
    kafka_partition  integer     NOT NULL,
    kafka_offset     bigint      NOT NULL,
    sunk_at          timestamptz NOT NULL DEFAULT now(),
    certificate_no   text        NOT NULL,
    unit_no          text        NOT NULL,
    owner_id         text        NOT NULL,
    share            numeric(5, 2) NOT NULL,   -- percent
    co_owners        jsonb       NOT NULL,     -- [{"owner_id": "...", "share": "50.00"}], shares as strings
    location         text        NOT NULL,
    district         text        NOT NULL,
    use              text        NOT NULL,
    area             numeric(12, 2) NOT NULL,  -- m²
    registered_at    timestamptz NOT NULL,
    status           text        NOT NULL,
    mortgaged        boolean     NOT NULL,
    seized           boolean     NOT NULL
);

-- One index per table, the one the views and per-subject queries need: every further index is paid
-- for on each COPY.
CREATE INDEX identity_person_records_version
    ON identity_person_records (subject_key, source_record_id, source_version);
CREATE INDEX tax_payment_records_version
    ON tax_payment_records (subject_key, source_record_id, source_version);
CREATE INDEX social_contribution_records_version
    ON social_contribution_records (subject_key, source_record_id, source_version);
CREATE INDEX property_title_records_version
    ON property_title_records (subject_key, source_record_id, owner_id, source_version);

-- (op = 'revoke') DESC puts a revoke before an upsert of the same version, as the profile fold does.
CREATE VIEW identity_person_current AS
SELECT * FROM (
    SELECT DISTINCT ON (subject_key, source_record_id) *
    FROM identity_person_records
    ORDER BY subject_key, source_record_id, source_version DESC, (op = 'revoke') DESC,
             kafka_partition, kafka_offset
) AS latest
WHERE op = 'upsert';

CREATE VIEW tax_payment_current AS
SELECT * FROM (
    SELECT DISTINCT ON (subject_key, source_record_id) *
    FROM tax_payment_records
    ORDER BY subject_key, source_record_id, source_version DESC, (op = 'revoke') DESC,
             kafka_partition, kafka_offset
) AS latest
WHERE op = 'upsert';

CREATE VIEW social_contribution_current AS
SELECT * FROM (
    SELECT DISTINCT ON (subject_key, source_record_id) *
    FROM social_contribution_records
    ORDER BY subject_key, source_record_id, source_version DESC, (op = 'revoke') DESC,
             kafka_partition, kafka_offset
) AS latest
WHERE op = 'upsert';

CREATE VIEW property_title_current AS
SELECT * FROM (
    SELECT DISTINCT ON (subject_key, source_record_id, owner_id) *
    FROM property_title_records
    ORDER BY subject_key, source_record_id, owner_id, source_version DESC, (op = 'revoke') DESC,
             kafka_partition, kafka_offset
) AS latest
WHERE op = 'upsert';

-- The current profile per subject: the highest version the sink has seen. `profile` is a document
-- (consumers/sink/profiles.py): subject_key, version, updated_at, latest_published_at, then per
-- dataset (persons, payments, contributions, titles) the live records as {"ref": lineage, "data":
-- fields}, and "revoked": the lineage of revoked records. Decimals are strings, dates ISO 8601.
CREATE TABLE profiles (
    subject_key     text        PRIMARY KEY,
    version         bigint      NOT NULL,
    profile         jsonb       NOT NULL,
    updated_at      timestamptz NOT NULL,  -- when the processor emitted this version
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    sunk_at         timestamptz NOT NULL DEFAULT now()
);

-- Every version of every profile, for as-of queries: the version the exchange knew at instant T is
-- the row with valid_from <= T < coalesce(valid_to, 'infinity'); valid_to is null while current.
-- valid_from is the profile record's updated_at, the instant the processor emitted that version.
CREATE TABLE profile_history (
    subject_key     text        NOT NULL,
    version         bigint      NOT NULL,
    profile         jsonb       NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_to        timestamptz,
    topic           text        NOT NULL,
    kafka_partition integer     NOT NULL,
    kafka_offset    bigint      NOT NULL,
    PRIMARY KEY (subject_key, version)
);
