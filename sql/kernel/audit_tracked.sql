-- How a tracked table is audited, read once per audited statement by the capture trigger
-- (pg_ext/src/audit_capture.rs): the columns left out of its rows, and the columns outside its
-- primary key (NULL without one). No row: the table is not tracked (any more).
-- Prepared once per backend and run as the extension's owner, so the table and the operator
-- are schema-qualified: the caller's search_path cannot redirect them.
SELECT t.excluded_columns, t.non_key_columns
FROM audit.tracked t
WHERE t.relid OPERATOR(pg_catalog.=) $1
