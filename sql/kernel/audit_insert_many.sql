-- The row changes of one statement into the audit log, written by the capture trigger
-- (pg_ext/src/audit_capture.rs) when there is more than one: what differs per row comes as
-- arrays, in order ($1 ids, $2 times, $8 keys, $9 old rows, $10 new rows, $18 chain positions,
-- $19 hashes); the rest is the statement's. Prepared once per backend, run as the extension's owner.
INSERT INTO audit.log (id, ts, xact_id, statement_id, op, table_oid, table_name, pk, old_row, new_row,
                       actor_id, actor_role, session_id, db_role, login_role, client_addr,
                       chain_lane, chain_seq, hash)
SELECT r.id, r.ts, $3, $4, $5, $6, $7, r.pk, r.old_row, r.new_row, $11, $12, $13, $14, $15, $16, $17, r.seq, r.hash
FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($8), pg_catalog.unnest($9),
               pg_catalog.unnest($10), pg_catalog.unnest($18), pg_catalog.unnest($19))
     AS r(id, ts, pk, old_row, new_row, seq, hash)
