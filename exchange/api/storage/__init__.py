"""PostgreSQL at the API's edge: one module per table group; psycopg errors are translated here."""
