-- Profile documents (10-50 KB of jsonb each, one per version) are compressed with lz4 where the server
-- was built with it: pglz, the default, made compressing them the largest part of the sink's writes
-- (COPY of a profile batch about twice as long). Rows written before keep their pglz values; both read.
-- The sink's staging table takes the method of profile_history.profile (consumers/sink/history.py),
-- and PostgreSQL moves an already compressed value from it into both tables as it is.
DO $$
BEGIN
    IF EXISTS (
        SELECT FROM pg_settings WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)
    ) THEN
        ALTER TABLE profiles ALTER COLUMN profile SET COMPRESSION lz4;
        ALTER TABLE profile_history ALTER COLUMN profile SET COMPRESSION lz4;
    END IF;
END
$$;
