-- The chain starts at seq 1 (exchange/audit.py). A row below it is none the API wrote; `exchange audit
-- verify` reads from the lowest seq there is and names such a row, and this refuses it to begin with
-- (to anyone who does not first drop the constraint, which needs the table owner, and the verify still
-- names the row).
ALTER TABLE audit_log ADD CONSTRAINT audit_log_seq_positive CHECK (seq > 0);
