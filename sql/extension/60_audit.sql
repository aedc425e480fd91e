-- Fluxbase extension, part 6: the audit log.
--
-- Who changed what, written by triggers in the same transaction as the change, so an audit row
-- exists exactly when the change committed. The actor comes from the verified claims
-- (auth.uid(), auth.role(), auth.session_id()), never from request.jwt.claims.
--
-- How the hash chain stays correct under concurrency and rollback (the hard part; the Rust half
-- is pg_ext/src/audit.rs):
--   The log is split into chain *lanes*, one per backend slot. Each row is hashed over the
--   previous row of its lane: hash = sha256(previous hash || '<lane>:<seq>:' || canonical text).
--   - No two live backends share a slot, so a lane has one writer at a time: concurrent writers
--     never wait for one another (a single global head, locked until commit, would serialise
--     every audited commit and its WAL flush), and a REPEATABLE READ writer never meets a lane
--     changed under its snapshot.
--   - The head of the lane (last seq and hash) is kept in the writing backend's memory, loaded
--     once from the log; writing a row costs no extra read or write. When a transaction or
--     subtransaction rolls back, its rows are gone and the head moves back with them: no hole.
--   - audit.verify() walks each lane from its anchor (genesis, or the last purged row): an
--     edited, deleted, inserted or reordered row breaks a link.
--   - A transaction that wrote audit rows cannot be prepared (two-phase commit).
--   The rows of one statement are written by one INSERT ... SELECT over the statement trigger's
--   transition table, which is what keeps a 100-row statement cheap.
--
-- Tamper evidence holds against everyone but a superuser who recomputes the chain; to catch that
-- too, copy the last row of each lane (or the log) off the machine now and then: a later verify
-- against the copy shows any rewrite. Rows cut from the very end of a lane leave no gap until
-- that lane is written again; a superuser's DELETE is itself recorded (audit.guard_log).

CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS 'Fluxbase audit: the append-only, hash-chained audit.log and the functions that manage it. Never exposed over HTTP.';
REVOKE ALL ON SCHEMA audit FROM PUBLIC;

-- ---------------------------------------------------------------------------------------
-- The log
-- ---------------------------------------------------------------------------------------

-- Ids are taken before the row is hashed (the id is part of what is hashed).
-- No CACHE: ids must follow the order rows were written across all backends (tools read the
-- log ORDER BY id); a per-backend cache would interleave them.
CREATE SEQUENCE audit.log_id_seq AS bigint;
COMMENT ON SEQUENCE audit.log_id_seq IS 'Ids of audit.log rows (increasing in commit order within a lane, not across lanes).';

-- One row per changed table row, per DDL command, per security event and per act of the audit
-- machinery itself. Partitioned by time (audit.add_partition) so old months can be dropped whole.
CREATE TABLE audit.log (
  id           bigint NOT NULL DEFAULT nextval('audit.log_id_seq'),
  ts           timestamptz NOT NULL DEFAULT clock_timestamp(),
  xact_id      bigint NOT NULL,
  statement_id bigint NOT NULL,
  op           text NOT NULL,
  table_oid    oid,
  table_name   text,
  pk           jsonb,
  old_row      jsonb,
  new_row      jsonb,
  actor_id     uuid,
  actor_role   text,
  session_id   uuid,
  db_role      text NOT NULL,
  login_role   text NOT NULL,
  client_addr  inet,
  details      jsonb,
  chain_lane   integer NOT NULL,
  chain_seq    bigint NOT NULL,
  hash         bytea NOT NULL
) PARTITION BY RANGE (ts);
COMMENT ON TABLE audit.log IS 'Append-only, hash-chained audit log. Only a superuser can change or remove rows, and that is recorded too; audit.verify() finds tampering.';
COMMENT ON COLUMN audit.log.ts IS 'When the change was made (clock time of the trigger).';
COMMENT ON COLUMN audit.log.xact_id IS 'The transaction id (txid_current()) of the change.';
COMMENT ON COLUMN audit.log.statement_id IS 'Groups the rows one statement wrote on one table: one number of audit.log_id_seq for all of them (a row change statement''s is the id of its first row).';
COMMENT ON COLUMN audit.log.op IS 'One of INSERT, UPDATE, DELETE, TRUNCATE (row changes); DDL; SECURITY (auth.events); AUDIT (the audit machinery: enable, disable, purge, superuser edits of the log).';
COMMENT ON COLUMN audit.log.table_oid IS 'The table''s oid: stable across renames (query with ''public.posts''::regclass::oid).';
COMMENT ON COLUMN audit.log.table_name IS 'The table''s schema-qualified name when the change was made (DDL: the object identity).';
COMMENT ON COLUMN audit.log.pk IS 'The primary key of the changed row as jsonb; NULL for tables without one (the row is identified by its content).';
COMMENT ON COLUMN audit.log.old_row IS 'The row before the change (UPDATE, DELETE), minus excluded columns.';
COMMENT ON COLUMN audit.log.new_row IS 'The row after the change (INSERT, UPDATE), minus excluded columns.';
COMMENT ON COLUMN audit.log.actor_id IS 'auth.uid(): the verified user of the request, NULL for direct SQL.';
COMMENT ON COLUMN audit.log.actor_role IS 'auth.role(): the verified application role claim.';
COMMENT ON COLUMN audit.log.session_id IS 'auth.session_id(): the verified session.';
COMMENT ON COLUMN audit.log.db_role IS 'The database role the statement ran as (beneath SECURITY DEFINER).';
COMMENT ON COLUMN audit.log.login_role IS 'The role that logged in (session_user), e.g. the server''s login role.';
COMMENT ON COLUMN audit.log.client_addr IS 'inet_client_addr() of the connection (NULL over a Unix socket).';
COMMENT ON COLUMN audit.log.details IS 'DDL command, security event, or audit action specifics.';
COMMENT ON COLUMN audit.log.chain_lane IS 'The hash chain this row belongs to (the writing backend''s slot).';
COMMENT ON COLUMN audit.log.chain_seq IS 'Position in its lane, from 1 without gaps.';
COMMENT ON COLUMN audit.log.hash IS 'sha256(previous hash of the lane || ''<lane>:<seq>:'' || audit.canonical(this row)).';

-- Rows of any time without a partition of their own land here.
CREATE TABLE audit.log_default PARTITION OF audit.log DEFAULT;
COMMENT ON TABLE audit.log_default IS 'Default partition of audit.log (rows outside every audit.add_partition range).';

CREATE INDEX log_chain_idx ON audit.log (chain_lane, chain_seq);
-- For audit.row_history and audit.actor_history. Partial: rows without a key (DDL, TRUNCATE) or
-- without a verified actor (direct SQL) are never looked up this way, and cost no index entry.
-- No CHECK constraints on the log: each costs every audited statement an expression set-up, and
-- only the extension's own functions write it.
CREATE INDEX log_row_idx ON audit.log (table_oid, pk) WHERE pk IS NOT NULL;
CREATE INDEX log_actor_idx ON audit.log (actor_id, ts) WHERE actor_id IS NOT NULL;

-- Where each lane starts after a purge: the seq and hash of the last purged row.
CREATE TABLE audit.chain_anchors (
  lane      integer PRIMARY KEY,
  seq       bigint NOT NULL,
  hash      bytea NOT NULL,
  purged_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE audit.chain_anchors IS 'Per lane, the seq and hash of the last row audit.purge() removed: the first kept row links to it.';

-- What one audit row says about one change, before it is chained.
CREATE TYPE audit.change AS (
  table_oid  oid,
  table_name text,
  pk         jsonb,
  old_row    jsonb,
  new_row    jsonb,
  details    jsonb
);
COMMENT ON TYPE audit.change IS 'Internal: one change to append to audit.log (audit.append chains and stores it).';

-- The hash before the first row of a lane.
CREATE FUNCTION audit.genesis() RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea $$;
COMMENT ON FUNCTION audit.genesis() IS 'The 32 zero bytes a lane''s first row links to.';

-- The text a row's hash is computed over (with its lane and seq): every other column but the
-- hash, in a form that does not depend on session settings (the time as epoch microseconds,
-- jsonb's canonical text). Not SECURITY DEFINER and without SET, so that it is inlined.
CREATE FUNCTION audit.canonical(id bigint, ts timestamptz, xact_id bigint, statement_id bigint, op text,
                                table_oid oid, table_name text, pk jsonb, old_row jsonb, new_row jsonb,
                                actor_id uuid, actor_role text, session_id uuid, db_role text, login_role text,
                                client_addr inet, details jsonb) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT pg_catalog.jsonb_build_array(
    id, (extract(epoch FROM ts) OPERATOR(pg_catalog.*) 1000000)::bigint, xact_id, statement_id, op,
    table_oid::bigint, table_name, pk, old_row, new_row, actor_id, actor_role, session_id, db_role,
    login_role, pg_catalog.host(client_addr), details)::text
$$;
COMMENT ON FUNCTION audit.canonical(bigint, timestamptz, bigint, bigint, text, oid, text, jsonb, jsonb, jsonb, uuid, text, uuid, text, text, inet, jsonb) IS
  'The canonical text of an audit row (independent of session settings) that its hash covers, with its lane and seq.';

-- Who and when, once per statement: the verified claims (never request.jwt.claims), the role
-- the statement runs as, the login role, the client address, the transaction and a statement id
-- (built by the same ROW(...) expression in audit.append, and by fluxbase.audit_capture in Rust).
CREATE TYPE audit.context AS (
  xact_id      bigint,
  statement_id bigint,
  actor_id     uuid,
  actor_role   text,
  session_id   uuid,
  db_role      text,
  login_role   text,
  client_addr  inet
);
COMMENT ON TYPE audit.context IS 'Internal: who and when for the audit rows of one statement.';

-- Appends changes to the log (DDL, security events, the audit machinery's own acts, TRUNCATE):
-- each row is chained onto this backend's lane, in this transaction. The row-change hot path in
-- fluxbase.audit_capture() writes the same rows from Rust.
CREATE FUNCTION audit.append(op text, changes audit.change[]) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ctx audit.context;
BEGIN
  IF coalesce(cardinality(changes), 0) = 0 THEN
    RETURN;
  END IF;
  -- The statement id is a number of the log's own id sequence (one draw: no second sequence
  -- to touch per statement); the capture trigger uses its first row's id the same way.
  ctx := ROW(txid_current(), nextval('audit.log_id_seq'), auth.uid(), auth.role(), auth.session_id(),
             fluxbase.audit_outer_role(), session_user::text, inet_client_addr())::audit.context;
  INSERT INTO audit.log (id, ts, xact_id, statement_id, op, table_oid, table_name, pk, old_row, new_row,
                         actor_id, actor_role, session_id, db_role, login_role, client_addr, details,
                         chain_lane, chain_seq, hash)
  SELECT r.id, r.ts, ctx.xact_id, ctx.statement_id, append.op, r.table_oid, r.table_name, r.pk, r.old_row, r.new_row,
         ctx.actor_id, ctx.actor_role, ctx.session_id, ctx.db_role, ctx.login_role, ctx.client_addr, r.details,
         l.lane, l.seq, l.hash
  FROM (SELECT nextval('audit.log_id_seq') AS id, clock_timestamp() AS ts, c.*
        FROM unnest(changes) WITH ORDINALITY AS c(table_oid, table_name, pk, old_row, new_row, details, ord)
        ORDER BY c.ord OFFSET 0) r,
       LATERAL fluxbase.audit_link('audit.log'::regclass, audit.canonical(
         r.id, r.ts, ctx.xact_id, ctx.statement_id, append.op, r.table_oid, r.table_name, r.pk, r.old_row, r.new_row,
         ctx.actor_id, ctx.actor_role, ctx.session_id, ctx.db_role, ctx.login_role, ctx.client_addr, r.details)) l;
END
$$;
COMMENT ON FUNCTION audit.append(text, audit.change[]) IS
  'Internal: chain changes onto this backend''s lane and store them in audit.log, in the current transaction.';

-- Refuses unless the role the statement runs as is a superuser.
CREATE FUNCTION audit.require_superuser(action text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT fluxbase.audit_caller_is_superuser() THEN
    RAISE EXCEPTION '% requires a superuser', action USING ERRCODE = '42501';
  END IF;
END
$$;
COMMENT ON FUNCTION audit.require_superuser(text) IS 'Internal: raise 42501 unless the caller (beneath SECURITY DEFINER) is a superuser.';

-- ---------------------------------------------------------------------------------------
-- What is tracked
-- ---------------------------------------------------------------------------------------

-- Columns whose names say they hold a secret, excluded unless an allow-list names them (a value
-- copied into the append-only log can only be removed by a superuser, so err on leaving out).
-- The name is first cut into words at camelCase humps and lower-cased (accessToken ->
-- access_token, otpSecret -> otp_secret). Then: anything containing password, passwd,
-- passphrase, passcode, secret, credential or jwt; pwd, token(s), otp, totp, pin or hash as a
-- whole word (refresh_token, otp_code, pin, token_hash); a name ending in token(s), hash or pwd
-- (apitoken, pwhash); keys (api_key, apikey, private_key, secret_key, access_key, signing_key,
-- encryption_key, session_key); and recovery or backup codes.
CREATE FUNCTION audit.is_secret_column(name text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT words ~ 'password|passwd|passphrase|passcode|secret|credential|jwt'
      OR words ~ '(^|_)(pwd|tokens?|otp|totp|pin|hash)(_|$)'
      OR words ~ '(tokens?|hash|pwd)$'
      OR words ~ '(^|_)(api|private|secret|access|signing|encryption|session)_?key(_|$)'
      OR words ~ '(^|_)(recovery|backup)_?codes?(_|$)'
  FROM (SELECT lower(regexp_replace(name, '([a-z0-9])([A-Z])', '\1_\2', 'g')) AS words) AS cut
$$;
COMMENT ON FUNCTION audit.is_secret_column(text) IS 'Whether a column name looks like a secret (after cutting camelCase into words: containing password/passwd/passphrase/passcode/secret/credential/jwt; pwd, token(s), otp, totp, pin or hash as a word; ending in token(s)/hash/pwd; api/private/secret/access/signing/encryption/session key; recovery/backup codes): excluded from audit rows by default.';

-- The tracked tables and how (the source of truth; audit.tables is the view to read).
CREATE TABLE audit.tracked (
  relid            oid PRIMARY KEY,
  operations       text[] NOT NULL,
  include_columns  text[],
  exclude_columns  text[],
  excluded_columns text[] NOT NULL,
  non_key_columns  text[],
  enabled_at       timestamptz NOT NULL DEFAULT now(),
  enabled_by       text NOT NULL
);
COMMENT ON TABLE audit.tracked IS 'Internal: tracked tables. excluded_columns and non_key_columns are recomputed after every ALTER TABLE.';

-- The capture trigger keeps what it read of audit.tracked in backend memory; every change to a
-- row makes all backends forget it for that table (a relcache invalidation, sent at commit).
CREATE FUNCTION audit.tracked_changed() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM fluxbase.audit_forget_tracking(0);
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM fluxbase.audit_forget_tracking(OLD.relid);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    PERFORM fluxbase.audit_forget_tracking(NEW.relid);
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.tracked_changed() IS 'Internal: make every backend forget its kept copy of a changed audit.tracked row.';
CREATE TRIGGER forget_tracking AFTER INSERT OR UPDATE OR DELETE ON audit.tracked
  FOR EACH ROW EXECUTE FUNCTION audit.tracked_changed();
CREATE TRIGGER forget_all_tracking AFTER TRUNCATE ON audit.tracked
  FOR EACH STATEMENT EXECUTE FUNCTION audit.tracked_changed();
-- ALWAYS: also under session_replication_role = replica.
ALTER TABLE audit.tracked ENABLE ALWAYS TRIGGER forget_tracking, ENABLE ALWAYS TRIGGER forget_all_tracking;

-- The columns left out of a table's audit rows: with an allow-list, every other column; without,
-- the secret-looking ones; and always those of the deny-list.
CREATE FUNCTION audit.effective_exclusions(relid oid, include_columns text[], exclude_columns text[]) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
  FROM pg_attribute a
  WHERE a.attrelid = relid AND a.attnum > 0 AND NOT a.attisdropped
    AND (CASE WHEN include_columns IS NOT NULL THEN a.attname::text <> ALL (include_columns)
              ELSE audit.is_secret_column(a.attname) END
         OR a.attname::text = ANY (coalesce(exclude_columns, '{}')))
$$;
COMMENT ON FUNCTION audit.effective_exclusions(oid, text[], text[]) IS 'Internal: the columns left out of a table''s audit rows.';

-- Every column outside the primary key (what to strip from a row to get its key), or NULL
-- when the table has no primary key.
CREATE FUNCTION audit.non_key_columns(relid oid) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT (SELECT coalesce(array_agg(a.attname::text), '{}') FROM pg_attribute a
          WHERE a.attrelid = relid AND a.attnum > 0 AND NOT a.attisdropped AND a.attnum <> ALL (i.indkey::int2[]))
  FROM pg_index i WHERE i.indrelid = relid AND i.indisprimary
$$;
COMMENT ON FUNCTION audit.non_key_columns(oid) IS 'Internal: the columns outside a table''s primary key; NULL without one.';

-- 'INSERT,UPDATE' -> {INSERT,UPDATE}, refusing anything else.
CREATE FUNCTION audit.parse_operations(operations text) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ops text[];
  bad text;
BEGIN
  SELECT array_agg(DISTINCT upper(btrim(o)) ORDER BY upper(btrim(o))) INTO ops
  FROM unnest(string_to_array(operations, ',')) o WHERE btrim(o) <> '';
  SELECT string_agg(o, ', ') INTO bad FROM unnest(ops) o WHERE o NOT IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE');
  IF bad IS NOT NULL OR ops IS NULL THEN
    RAISE EXCEPTION 'operations must be a comma-separated list of INSERT, UPDATE, DELETE, TRUNCATE (got %)', coalesce(quote_literal(operations), 'NULL')
      USING ERRCODE = '22023';
  END IF;
  RETURN ops;
END
$$;
COMMENT ON FUNCTION audit.parse_operations(text) IS 'Internal: parse and check the operations list of audit.enable.';

-- The trigger type bits PostgreSQL stores for each of our AFTER ... FOR EACH STATEMENT triggers.
CREATE FUNCTION audit.trigger_type(operation text) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE operation WHEN 'INSERT' THEN 4 WHEN 'DELETE' THEN 8 WHEN 'UPDATE' THEN 16 WHEN 'TRUNCATE' THEN 32 END::smallint
$$;
COMMENT ON FUNCTION audit.trigger_type(text) IS 'Internal: pg_trigger.tgtype of the audit trigger for an operation.';

-- Casts to json or jsonb that run a function a non-superuser owns. to_jsonb() calls such a
-- cast for a column of that type whenever an audited row is serialised: a type owner's code
-- would run inside every other role's writes (and, in audit.append's SECURITY DEFINER paths,
-- as the owner). While any exists, nothing can be tracked; while anything is tracked, a
-- non-superuser cannot create one.
CREATE FUNCTION audit.unsafe_json_casts() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT string_agg(format('%s -> %s (%s)', c.castsource::regtype, c.casttarget::regtype, c.castfunc::regprocedure), ', ')
  FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_roles r ON r.oid = p.proowner
  WHERE c.casttarget IN ('json'::regtype, 'jsonb'::regtype) AND c.castmethod = 'f' AND NOT r.rolsuper
$$;
COMMENT ON FUNCTION audit.unsafe_json_casts() IS 'Casts to json/jsonb whose function a non-superuser owns (they would run as a superuser inside audit triggers), or NULL.';

-- Whether a table takes part in partitioning or inheritance: partitioned itself, a partition, a
-- parent or a child. Statement triggers fire only for the table a statement names, so a write
-- straight to a partition or child would bypass the parent's audit triggers: such tables are
-- not tracked, and a tracked table cannot join a hierarchy later (audit.on_ddl_command_end).
CREATE FUNCTION audit.in_hierarchy(relid oid) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM pg_class c WHERE c.oid = relid AND (c.relkind = 'p' OR c.relispartition))
      OR EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = relid OR i.inhparent = relid)
$$;
COMMENT ON FUNCTION audit.in_hierarchy(oid) IS 'Whether a table is partitioned, a partition, or a parent or child in an inheritance hierarchy (such tables cannot be tracked).';

-- Whether every audit trigger of a tracked table is in place, unchanged and firing always.
CREATE FUNCTION audit.tracking_intact(relid oid, operations text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT count(*) = cardinality(operations)
  FROM pg_trigger g JOIN unnest(operations) o ON g.tgname = 'fluxbase_audit_' || lower(o)
  WHERE g.tgrelid = relid AND g.tgfoid = 'fluxbase.audit_capture()'::regprocedure AND g.tgenabled = 'A'
    AND g.tgtype = audit.trigger_type(o) AND g.tgqual IS NULL AND cardinality(g.tgattr::int2[]) = 0
$$;
COMMENT ON FUNCTION audit.tracking_intact(oid, text[]) IS 'Whether every audit trigger of a tracked table exists, is unchanged and fires ALWAYS.';

-- The tracked tables, as administrators read them.
CREATE VIEW audit.tables AS
  SELECT t.relid::regclass AS table_name, t.operations, t.include_columns, t.exclude_columns, t.excluded_columns,
         t.non_key_columns IS NOT NULL AS has_primary_key, audit.tracking_intact(t.relid, t.operations) AS intact,
         t.enabled_at, t.enabled_by
  FROM audit.tracked t;
COMMENT ON VIEW audit.tables IS 'Tables tracked by audit.enable: operations, column lists, whether they have a primary key, and whether their triggers are intact.';

-- ---------------------------------------------------------------------------------------
-- Capturing changes
-- ---------------------------------------------------------------------------------------

-- The statement trigger of every tracked table is fluxbase.audit_capture(), written in Rust
-- (pg_ext/src/audit_capture.rs): one audit row per changed row, from the transition tables,
-- with the same columns, canonical text and hash the SQL side (audit.append, audit.canonical)
-- uses. UPDATE pairs old and new rows by position: PostgreSQL stores them in the two
-- transition tables together, row by row, so the n-th old row is the n-th new row's former
-- self (this also works for tables without a primary key).

-- Drops the audit triggers of a table (those audit.enable made).
CREATE FUNCTION audit.drop_triggers(target regclass) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  trigger_name name;
BEGIN
  FOR trigger_name IN SELECT g.tgname FROM pg_trigger g WHERE g.tgrelid = target AND g.tgname LIKE 'fluxbase\_audit\_%' LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, target);
  END LOOP;
END
$$;
COMMENT ON FUNCTION audit.drop_triggers(regclass) IS 'Internal: drop the fluxbase_audit_* triggers of a table.';

-- Starts (or re-configures) tracking a table. Idempotent. Superuser only.
--   operations       which of INSERT, UPDATE, DELETE, TRUNCATE to record (comma-separated)
--   include_columns  allow-list: only these columns appear in old_row / new_row
--   exclude_columns  deny-list: these never appear (on top of the secret-looking ones)
-- Tables without a primary key are accepted: pk is NULL and the row is identified by its content.
CREATE FUNCTION audit.enable(target regclass, operations text DEFAULT 'INSERT,UPDATE,DELETE,TRUNCATE',
                             include_columns text[] DEFAULT NULL, exclude_columns text[] DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ops text[] := audit.parse_operations(operations);
  kind "char";
  schema_oid oid;
  unknown text;
  operation text;
  excluded text[];
BEGIN
  PERFORM audit.require_superuser('audit.enable');
  SELECT c.relkind, c.relnamespace INTO kind, schema_oid FROM pg_class c WHERE c.oid = target;
  IF kind IS NULL OR kind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '% is not a table: only tables can be audited', target USING ERRCODE = '42809';
  END IF;
  IF audit.in_hierarchy(target) THEN
    RAISE EXCEPTION '% is partitioned, a partition, or in an inheritance hierarchy: only plain tables can be audited (a write to a partition or child would not fire the parent''s triggers)', target
      USING ERRCODE = '0A000';
  END IF;
  IF schema_oid = 'audit'::regnamespace THEN
    RAISE EXCEPTION 'the audit schema''s own tables cannot be tracked' USING ERRCODE = '42809';
  END IF;
  IF audit.unsafe_json_casts() IS NOT NULL THEN
    RAISE EXCEPTION 'cannot track tables while casts to json run functions a non-superuser owns: %', audit.unsafe_json_casts()
      USING ERRCODE = '42501';
  END IF;
  SELECT string_agg(quote_ident(c), ', ') INTO unknown
  FROM unnest(coalesce(include_columns, '{}') || coalesce(exclude_columns, '{}')) c
  WHERE NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = target AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
  IF unknown IS NOT NULL THEN
    RAISE EXCEPTION 'table % has no column %', target, unknown USING ERRCODE = '42703';
  END IF;
  -- Untrack first, so the DDL check does not take our own trigger changes for tampering.
  DELETE FROM audit.tracked t WHERE t.relid = target;
  PERFORM audit.drop_triggers(target);
  FOREACH operation IN ARRAY ops LOOP
    EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION fluxbase.audit_capture()',
      'fluxbase_audit_' || lower(operation), operation, target,
      CASE operation WHEN 'INSERT' THEN 'REFERENCING NEW TABLE AS new_rows'
                     WHEN 'UPDATE' THEN 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows'
                     WHEN 'DELETE' THEN 'REFERENCING OLD TABLE AS old_rows'
                     ELSE '' END);
    -- ALWAYS: also under session_replication_role = replica (restores, replication apply).
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', target, 'fluxbase_audit_' || lower(operation));
  END LOOP;
  excluded := audit.effective_exclusions(target, include_columns, exclude_columns);
  INSERT INTO audit.tracked (relid, operations, include_columns, exclude_columns, excluded_columns, non_key_columns, enabled_by)
  VALUES (target, ops, include_columns, exclude_columns, excluded, audit.non_key_columns(target), fluxbase.audit_outer_role());
  PERFORM audit.append('AUDIT', ARRAY[ROW(target::oid, target::text, NULL, NULL, NULL,
    jsonb_build_object('action', 'enable', 'operations', ops, 'include_columns', include_columns,
                       'exclude_columns', exclude_columns, 'excluded_columns', excluded))::audit.change]);
END
$$;
COMMENT ON FUNCTION audit.enable(regclass, text, text[], text[]) IS
  'Track a table (superuser; idempotent): operations (default INSERT,UPDATE,DELETE,TRUNCATE), include_columns allow-list, exclude_columns deny-list. Secret-looking columns (audit.is_secret_column) are excluded unless allow-listed. Tables without a primary key are accepted (pk NULL, row identified by content).';

-- Stops tracking a table. Idempotent. Superuser only; the act is recorded.
CREATE FUNCTION audit.disable(target regclass) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  was_tracked boolean;
BEGIN
  PERFORM audit.require_superuser('audit.disable');
  DELETE FROM audit.tracked t WHERE t.relid = target;
  was_tracked := FOUND;
  PERFORM audit.drop_triggers(target);
  IF was_tracked THEN
    PERFORM audit.append('AUDIT', ARRAY[ROW(target::oid, target::text, NULL, NULL, NULL,
      jsonb_build_object('action', 'disable'))::audit.change]);
  END IF;
END
$$;
COMMENT ON FUNCTION audit.disable(regclass) IS 'Stop tracking a table (superuser; idempotent; recorded). The rows already logged stay.';

-- ---------------------------------------------------------------------------------------
-- Append-only
-- ---------------------------------------------------------------------------------------

-- Guards audit.log: no role but a superuser may update, delete or truncate (no API role even
-- has the privilege; this also stops roles a superuser granted it to). A superuser's change is
-- itself recorded, except the deletions of audit.purge, which records one summary row.
CREATE FUNCTION audit.guard_log() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT fluxbase.audit_caller_is_superuser() THEN
    RAISE EXCEPTION 'audit.log is append-only: only a superuser can change or remove audit rows' USING ERRCODE = '42501';
  END IF;
  IF TG_LEVEL = 'STATEMENT' THEN
    IF TG_WHEN = 'AFTER' THEN
      PERFORM audit.append('AUDIT', ARRAY[ROW('audit.log'::regclass::oid, format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME),
        NULL, NULL, NULL, jsonb_build_object('action', 'log_truncated'))::audit.change]);
    END IF;
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' AND current_setting('audit.purging', true) = 'on' THEN
    RETURN OLD;
  END IF;
  PERFORM audit.append('AUDIT', ARRAY[ROW('audit.log'::regclass::oid, 'audit.log', jsonb_build_object('id', OLD.id),
    to_jsonb(OLD), CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(NEW) END,
    jsonb_build_object('action', CASE TG_OP WHEN 'UPDATE' THEN 'log_row_updated' ELSE 'log_row_deleted' END))::audit.change]);
  RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END
$$;
COMMENT ON FUNCTION audit.guard_log() IS 'Internal: refuse changes to audit.log from anyone but a superuser, and record a superuser''s.';

-- TRUNCATE is refused on the parent and on each partition, and recorded once per truncated
-- partition (truncating the parent truncates every partition).
CREATE TRIGGER guard_changes BEFORE UPDATE OR DELETE ON audit.log
  FOR EACH ROW EXECUTE FUNCTION audit.guard_log();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON audit.log
  FOR EACH STATEMENT EXECUTE FUNCTION audit.guard_log();
CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON audit.log_default
  FOR EACH STATEMENT EXECUTE FUNCTION audit.guard_log();
CREATE TRIGGER record_truncate AFTER TRUNCATE ON audit.log_default
  FOR EACH STATEMENT EXECUTE FUNCTION audit.guard_log();
ALTER TABLE audit.log ENABLE ALWAYS TRIGGER guard_changes;
ALTER TABLE audit.log ENABLE ALWAYS TRIGGER guard_truncate;
ALTER TABLE audit.log_default ENABLE ALWAYS TRIGGER guard_truncate;
ALTER TABLE audit.log_default ENABLE ALWAYS TRIGGER record_truncate;

-- Adds a partition for [from_ts, to_ts), e.g. a month ahead (rows already in the default
-- partition for that range must be moved first; PostgreSQL refuses otherwise). Superuser only.
CREATE FUNCTION audit.add_partition(from_ts timestamptz, to_ts timestamptz) RETURNS regclass
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  part text := format('audit.%I', 'log_' || to_char(from_ts AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS'));
BEGIN
  PERFORM audit.require_superuser('audit.add_partition');
  IF from_ts IS NULL OR to_ts IS NULL OR to_ts <= from_ts THEN
    RAISE EXCEPTION 'a partition needs from_ts < to_ts' USING ERRCODE = '22023';
  END IF;
  EXECUTE format('CREATE TABLE %s PARTITION OF audit.log FOR VALUES FROM (%L) TO (%L)', part, from_ts, to_ts);
  EXECUTE format('CREATE TRIGGER guard_truncate BEFORE TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION audit.guard_log()', part);
  EXECUTE format('CREATE TRIGGER record_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION audit.guard_log()', part);
  EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER guard_truncate, ENABLE ALWAYS TRIGGER record_truncate', part);
  RETURN part::regclass;
END
$$;
COMMENT ON FUNCTION audit.add_partition(timestamptz, timestamptz) IS
  'Add a time partition [from_ts, to_ts) to audit.log (superuser). audit.purge drops partitions that become empty.';

-- ---------------------------------------------------------------------------------------
-- Verifying and purging
-- ---------------------------------------------------------------------------------------

-- The first broken link of the chain, or no row. Each row must follow the previous row of its
-- lane (seq + 1; after the anchor, or genesis, for the first) and carry
-- sha256(previous hash || '<lane>:<seq>:' || canonical text).
CREATE FUNCTION audit.verify() RETURNS TABLE (id bigint, chain_lane integer, chain_seq bigint, problem text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH links AS (
    SELECT l.id, l.chain_lane, l.chain_seq, l.hash,
           lag(l.chain_seq) OVER w AS prev_seq, lag(l.hash) OVER w AS prev_hash,
           audit.canonical(l.id, l.ts, l.xact_id, l.statement_id, l.op, l.table_oid, l.table_name, l.pk,
             l.old_row, l.new_row, l.actor_id, l.actor_role, l.session_id, l.db_role, l.login_role,
             l.client_addr, l.details) AS content
    FROM audit.log l
    -- In the order of the (chain_lane, chain_seq) index, so a big log needs no sort.
    WINDOW w AS (PARTITION BY l.chain_lane ORDER BY l.chain_seq)
  ), checked AS (
    SELECT k.id, k.chain_lane, k.chain_seq,
      CASE
        WHEN k.chain_seq > coalesce(k.prev_seq, a.seq, 0) + 1 THEN
          format('rows %s to %s of lane %s are missing before this row', coalesce(k.prev_seq, a.seq, 0) + 1, k.chain_seq - 1, k.chain_lane)
        WHEN k.chain_seq < coalesce(k.prev_seq, a.seq, 0) + 1 THEN
          format('this row repeats position %s of lane %s (a row was added or moved)', k.chain_seq, k.chain_lane)
        WHEN k.hash IS DISTINCT FROM fluxbase.audit_hash(coalesce(k.prev_hash, a.hash, audit.genesis()), k.chain_lane, k.chain_seq, k.content) THEN
          'this row does not match its hash: it, or the row before it, was changed'
      END AS problem
    FROM links k LEFT JOIN audit.chain_anchors a ON a.lane = k.chain_lane
  )
  SELECT c.id, c.chain_lane, c.chain_seq, c.problem
  FROM checked c WHERE c.problem IS NOT NULL
  ORDER BY c.id
  LIMIT 1
$$;
COMMENT ON FUNCTION audit.verify() IS
  'The first broken link of the audit hash chain (id, chain_lane, chain_seq, problem), or no row when the log is intact: finds edited, deleted, added and reordered rows.';

-- Removes rows older than older_than (superuser). Per lane, the last removed row becomes the
-- anchor the first kept row links to, so the chain still verifies; partitions left empty and
-- wholly before the cutoff are dropped. The purge itself is recorded.
CREATE FUNCTION audit.purge(older_than interval) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  -- The clock, not the transaction start: what "older than" means when it is run.
  cutoff timestamptz := clock_timestamp() - older_than;
  removed bigint;
  part record;
  empty boolean;
BEGIN
  PERFORM audit.require_superuser('audit.purge');
  IF older_than IS NULL OR older_than < interval '0' THEN
    RAISE EXCEPTION 'older_than must be a positive interval' USING ERRCODE = '22023';
  END IF;
  INSERT INTO audit.chain_anchors AS a (lane, seq, hash, purged_at)
  SELECT DISTINCT ON (l.chain_lane) l.chain_lane, l.chain_seq, l.hash, now()
  FROM audit.log l WHERE l.ts < cutoff
  ORDER BY l.chain_lane, l.chain_seq DESC
  ON CONFLICT (lane) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, purged_at = excluded.purged_at
  WHERE excluded.seq > a.seq;
  PERFORM set_config('audit.purging', 'on', true);
  DELETE FROM audit.log l USING audit.chain_anchors a WHERE l.chain_lane = a.lane AND l.chain_seq <= a.seq;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('audit.purging', '', true);
  FOR part IN
    SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit.log'::regclass AND c.oid <> 'audit.log_default'::regclass
  LOOP
    EXECUTE format('SELECT NOT EXISTS (SELECT FROM %s) AND %L::timestamptz <= %L',
      part.rel, substring(part.bound FROM 'TO \(''([^'']+)''\)'), cutoff) INTO empty;
    IF empty THEN
      EXECUTE format('DROP TABLE %s', part.rel);
    END IF;
  END LOOP;
  PERFORM audit.append('AUDIT', ARRAY[ROW('audit.log'::regclass::oid, 'audit.log', NULL, NULL, NULL,
    jsonb_build_object('action', 'purge', 'older_than', older_than::text, 'cutoff', cutoff, 'rows_removed', removed))::audit.change]);
  RETURN removed;
END
$$;
COMMENT ON FUNCTION audit.purge(interval) IS
  'Delete audit rows older than the interval (superuser; recorded). The chain stays verifiable from the first kept row of each lane (audit.chain_anchors).';

-- ---------------------------------------------------------------------------------------
-- Query helpers
-- ---------------------------------------------------------------------------------------

-- The history of one row: its key as jsonb (e.g. '{"id": 42}'), oldest first, with what
-- changed every row of the table since it appeared — a rewrite by DDL (ALTER COLUMN ... TYPE
-- ... USING: values change with no row change; see audit.on_table_rewrite) and TRUNCATE. For a
-- table without a primary key, the rows whose old or new content contains the given jsonb.
CREATE FUNCTION audit.row_history(target regclass, key jsonb) RETURNS SETOF audit.log
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN QUERY
    WITH own AS (SELECT l.* FROM audit.log l WHERE l.table_oid = target AND l.pk = key)
    SELECT * FROM own
    UNION ALL
    SELECT l.* FROM audit.log l
    WHERE l.table_oid = target AND l.pk IS NULL AND l.id > (SELECT min(own.id) FROM own)
      AND (l.op = 'TRUNCATE' OR (l.op = 'DDL' AND l.details ? 'rewrite'))
    ORDER BY id;
  IF NOT FOUND THEN
    RETURN QUERY SELECT l.* FROM audit.log l
      WHERE l.table_oid = target AND l.pk IS NULL AND l.op IN ('INSERT', 'UPDATE', 'DELETE')
        AND (l.old_row @> key OR l.new_row @> key)
      ORDER BY l.id;
  END IF;
END
$$;
COMMENT ON FUNCTION audit.row_history(regclass, jsonb) IS
  'Every audit row of one table row, oldest first: key is its primary key as jsonb (e.g. {"id": 42}); for tables without one, content it contains.';

-- Everything one user did in a time range, oldest first.
CREATE FUNCTION audit.actor_history(actor uuid, since timestamptz DEFAULT '-infinity', until timestamptz DEFAULT 'infinity')
RETURNS SETOF audit.log
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT l.* FROM audit.log l
  WHERE l.actor_id = actor AND l.ts >= since AND l.ts < until
  ORDER BY l.id
$$;
COMMENT ON FUNCTION audit.actor_history(uuid, timestamptz, timestamptz) IS
  'Every audit row whose verified actor (auth.uid()) is the given user, in [since, until), oldest first.';

-- ---------------------------------------------------------------------------------------
-- Security events and DDL
-- ---------------------------------------------------------------------------------------

-- Every auth.events row (sign-in outcomes, lockouts, role changes, revocations) is copied into
-- the log as a SECURITY row, so one place holds the whole story.
CREATE FUNCTION audit.capture_security_events() RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM audit.append('SECURITY', ARRAY(
    SELECT ROW(TG_RELID, 'auth.events', jsonb_build_object('id', e.id), NULL, to_jsonb(e.*),
               jsonb_build_object('event', e.event, 'outcome', e.outcome))::audit.change
    FROM new_events e ORDER BY e.id));
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.capture_security_events() IS 'Internal: copy new auth.events rows into audit.log (op SECURITY).';
CREATE TRIGGER audit_security_events AFTER INSERT ON auth.events
  REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION audit.capture_security_events();
ALTER TABLE auth.events ENABLE ALWAYS TRIGGER audit_security_events;

-- After every DDL command: refuse a non-superuser's change to audit triggers (a table owner
-- could otherwise DISABLE or DROP them) and their casts to json (see audit.unsafe_json_casts),
-- recompute the column lists of altered tracked tables,
-- and record the command.
CREATE FUNCTION audit.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  tampered text;
  joined text;
BEGIN
  SELECT string_agg(t.relid::regclass::text, ', ' ORDER BY t.relid) INTO tampered
  FROM audit.tracked t
  WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = t.relid) AND NOT audit.tracking_intact(t.relid, t.operations);
  IF tampered IS NOT NULL AND NOT fluxbase.audit_caller_is_superuser() THEN
    RAISE EXCEPTION 'the audit triggers of % can only be changed by a superuser (audit.disable)', tampered
      USING ERRCODE = '42501';
  END IF;
  SELECT string_agg(t.relid::regclass::text, ', ' ORDER BY t.relid) INTO joined
  FROM audit.tracked t
  WHERE EXISTS (SELECT FROM pg_class c WHERE c.oid = t.relid) AND audit.in_hierarchy(t.relid);
  IF joined IS NOT NULL THEN
    RAISE EXCEPTION 'the audited table % cannot be partitioned or take part in inheritance (writes to a partition or child would not be audited); audit.disable it first', joined
      USING ERRCODE = '0A000';
  END IF;
  IF NOT fluxbase.audit_caller_is_superuser() AND EXISTS (SELECT FROM audit.tracked)
     AND audit.unsafe_json_casts() IS NOT NULL THEN
    RAISE EXCEPTION 'while tables are audited, only a superuser can create a cast to json or jsonb with a function'
      USING ERRCODE = '42501';
  END IF;
  UPDATE audit.tracked t
  SET excluded_columns = audit.effective_exclusions(t.relid, t.include_columns, t.exclude_columns),
      non_key_columns = audit.non_key_columns(t.relid)
  WHERE t.relid IN (SELECT c.objid FROM pg_event_trigger_ddl_commands() c WHERE c.classid = 'pg_class'::regclass);
  PERFORM audit.append('DDL', ARRAY(
    SELECT ROW(CASE WHEN c.classid = 'pg_class'::regclass THEN c.objid END, c.object_identity, NULL, NULL, NULL,
               jsonb_build_object('command_tag', c.command_tag, 'object_type', c.object_type,
                                  'object_identity', c.object_identity, 'schema', c.schema_name)
               || CASE WHEN tampered IS NOT NULL THEN jsonb_build_object('audit_triggers_changed', tampered) ELSE '{}' END
               -- The statement itself: on a tracked table ADD COLUMN ... DEFAULT or DROP
               -- COLUMN change what every row holds, and DDL on what its columns depend on
               -- (ALTER TYPE ... RENAME VALUE of an enum) changes what they read (found by
               -- red-team reviews). Not for user mappings, servers and wrappers, whose
               -- options may carry passwords.
               || CASE WHEN c.object_type NOT IN ('user mapping', 'server', 'foreign-data wrapper')
                       THEN jsonb_build_object('statement', left(current_query(), 10000)) ELSE '{}' END
           )::audit.change
    FROM pg_event_trigger_ddl_commands() c WHERE NOT c.in_extension));
END
$$;
COMMENT ON FUNCTION audit.on_ddl_command_end() IS 'Internal: record DDL in audit.log; refuse non-superuser changes to audit triggers.';

-- After every DROP: forget dropped tracked tables and record what was dropped.
CREATE FUNCTION audit.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM audit.tracked t USING pg_event_trigger_dropped_objects() d
  WHERE d.classid = 'pg_class'::regclass AND d.objid = t.relid AND d.objsubid = 0;
  PERFORM audit.append('DDL', ARRAY(
    SELECT ROW(CASE WHEN d.classid = 'pg_class'::regclass AND d.objsubid = 0 THEN d.objid END, d.object_identity,
               NULL, NULL, NULL,
               jsonb_build_object('command_tag', tg_tag, 'dropped', true, 'object_type', d.object_type,
                                  'object_identity', d.object_identity, 'schema', d.schema_name))::audit.change
    FROM pg_event_trigger_dropped_objects() d WHERE d.original));
END
$$;
COMMENT ON FUNCTION audit.on_sql_drop() IS 'Internal: record dropped objects in audit.log and untrack dropped tables.';

-- Before DDL rewrites a tracked table (ALTER COLUMN ... TYPE, with or without USING; a
-- volatile default for a new column): an audit row with the statement, because the rewrite
-- changes stored values without any row change reaching the capture trigger (found by a
-- red-team review: `ALTER ... TYPE text USING 'x'` rewrote every row, leaving only a bare DDL
-- row). audit.row_history lists it among the row's changes.
CREATE FUNCTION audit.on_table_rewrite() RETURNS event_trigger
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  target oid := pg_event_trigger_table_rewrite_oid();
BEGIN
  IF EXISTS (SELECT FROM audit.tracked t WHERE t.relid = target) THEN
    PERFORM audit.append('DDL', ARRAY[ROW(target, target::regclass::text, NULL, NULL, NULL,
      jsonb_build_object('command_tag', tg_tag, 'rewrite', true,
                         'reason', pg_event_trigger_table_rewrite_reason(),
                         'statement', left(current_query(), 10000)))::audit.change]);
  END IF;
END
$$;
COMMENT ON FUNCTION audit.on_table_rewrite() IS 'Internal: record a rewrite of a tracked table by DDL, with the statement, in audit.log.';

CREATE EVENT TRIGGER fluxbase_audit_ddl ON ddl_command_end EXECUTE FUNCTION audit.on_ddl_command_end();
CREATE EVENT TRIGGER fluxbase_audit_rewrite ON table_rewrite EXECUTE FUNCTION audit.on_table_rewrite();
CREATE EVENT TRIGGER fluxbase_audit_drop ON sql_drop EXECUTE FUNCTION audit.on_sql_drop();
