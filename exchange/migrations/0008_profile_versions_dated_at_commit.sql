-- From this migration on, the sink dates a profile version as its transaction is about to commit (the
-- clock once the batch's other rows are written), not from the transaction's start: a query made while
-- a batch was written answered with the version before, yet an as-of query for that instant gave the
-- new one. The API labels a current answer to match (exchange.api.evaluation).
COMMENT ON COLUMN profile_history.valid_from IS
    'when the sink wrote this version, its last writes before the commit: from then on the exchange answered with it';
COMMENT ON COLUMN profiles.updated_at IS
    'when the sink wrote this version, as profile_history.valid_from';
