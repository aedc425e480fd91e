-- A TRUNCATE of a tracked table, recorded by the capture trigger (pg_ext/src/audit_capture.rs)
-- through audit.append like the other whole-table events. Run as the extension's owner.
SELECT audit.append('TRUNCATE', ARRAY[ROW($1, $2, NULL, NULL, NULL, NULL)::audit.change])
