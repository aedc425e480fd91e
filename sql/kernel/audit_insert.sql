-- One row change into the audit log, written by the capture trigger
-- (pg_ext/src/audit_capture.rs), which has already taken the id, the time, the chain link and
-- the hash over all of it. Prepared once per backend and run as the extension's owner.
INSERT INTO audit.log (id, ts, xact_id, statement_id, op, table_oid, table_name, pk, old_row, new_row,
                       actor_id, actor_role, session_id, db_role, login_role, client_addr,
                       chain_lane, chain_seq, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
