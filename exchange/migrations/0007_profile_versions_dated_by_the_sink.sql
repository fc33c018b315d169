-- From this migration on, the sink dates a profile version from the transaction that writes it (its
-- now()), not from when the processor emitted it: an as-of query for an instant then answers what the
-- exchange could answer at that instant, whatever the sink's lag. Rows written before keep the
-- processor's time. The processor's time stays in each document (profile->>'updated_at').
COMMENT ON COLUMN profile_history.valid_from IS
    'when the sink wrote this version (its transaction''s now()): from then on the exchange answered with it';
COMMENT ON COLUMN profiles.updated_at IS
    'when the sink wrote this version (its transaction''s now()), as profile_history.valid_from';
