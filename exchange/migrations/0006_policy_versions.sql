-- Every policy version the API or approvals served under, with its files as they were. An audit row, a
-- decision and a proof name only the version (a SHA-256 of the files); with the files kept here, that
-- version still says which grants, purposes and legal bases (设定依据) were in force once the files in
-- `policy/` have changed. `exchange audit verify` checks that each row's files hash to its version.
CREATE TABLE policy_versions (
    version       text        PRIMARY KEY,
    files         jsonb       NOT NULL,  -- file name -> the file's text, byte for byte (UTF-8)
    first_used_at timestamptz NOT NULL DEFAULT now()
);

-- Kept as the audit log is: the exchange only ever adds a version.
CREATE FUNCTION policy_versions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'policy_versions is append-only: % refused', TG_OP;
END
$$;
CREATE TRIGGER policy_versions_append_only BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION policy_versions_append_only();
