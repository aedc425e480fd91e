-- Functions for tests/tests/rpc.rs, created as superuser in the test's database (cloned from
-- the template, so public.notes of sql/demo.sql is there) before the server starts.
-- PostgreSQL grants EXECUTE on new functions to PUBLIC; the ones that must not be public
-- revoke it.

-- A scalar with a default, immutable (so GET may call it).
CREATE FUNCTION public.add_them(a integer, b integer DEFAULT 10) RETURNS integer
  LANGUAGE sql IMMUTABLE AS $$ SELECT a + b $$;

-- Exact numbers: the server must not pass them through a float.
CREATE FUNCTION public.plus_one(n numeric) RETURNS numeric
  LANGUAGE sql IMMUTABLE AS $$ SELECT n + 1 $$;

-- Echoes a text argument (for values that look like SQL).
CREATE FUNCTION public.echo_text(t text) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$ SELECT t $$;

-- Who the function runs for: the verified claims of the request.
CREATE FUNCTION public.whoami() RETURNS jsonb
  LANGUAGE sql STABLE AS $$ SELECT jsonb_build_object('uid', auth.uid(), 'role', auth.role(), 'db_role', current_user) $$;

-- A set of rows under the caller's RLS (SECURITY INVOKER, the default).
CREATE FUNCTION public.visible_notes(min_id bigint DEFAULT 0) RETURNS SETOF public.notes
  LANGUAGE sql STABLE AS $$ SELECT * FROM public.notes WHERE id >= min_id ORDER BY id $$;

-- RETURNS TABLE, also under the caller's RLS.
CREATE FUNCTION public.note_titles() RETURNS TABLE (id bigint, title text, is_public boolean)
  LANGUAGE sql STABLE AS $$ SELECT n.id, n.title, n.is_public FROM public.notes n ORDER BY n.id $$;

-- One composite row (an object in the answer, not an array).
CREATE FUNCTION public.one_note(note_id bigint) RETURNS public.notes
  LANGUAGE sql STABLE AS $$ SELECT * FROM public.notes WHERE id = note_id $$;

-- A set of scalars.
CREATE FUNCTION public.count_up(upto integer) RETURNS SETOF integer
  LANGUAGE sql IMMUTABLE AS $$ SELECT generate_series(1, upto) $$;

-- What the volatile functions write.
CREATE TABLE public.rpc_log (id bigserial PRIMARY KEY, what text NOT NULL, who uuid DEFAULT auth.uid());
GRANT INSERT, SELECT ON public.rpc_log TO anon, authenticated;
GRANT USAGE ON SEQUENCE public.rpc_log_id_seq TO anon, authenticated;

-- Volatile, returns void: 204, and only by POST.
CREATE FUNCTION public.touch(what text DEFAULT 'touched') RETURNS void
  LANGUAGE plpgsql VOLATILE AS $$ BEGIN INSERT INTO public.rpc_log (what) VALUES (what); END $$;

-- Volatile, returns the new row count.
CREATE FUNCTION public.log_and_count(what text) RETURNS bigint
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO public.rpc_log (what) VALUES (what);
  RETURN (SELECT count(*) FROM public.rpc_log);
END $$;

-- Volatile, a set: writes n rows and returns their ids.
CREATE FUNCTION public.log_many(n integer) RETURNS SETOF bigint
  LANGUAGE sql VOLATILE AS $$
  INSERT INTO public.rpc_log (what) SELECT 'many' FROM generate_series(1, n) RETURNING id
$$;

-- Declared STABLE but writes through a volatile helper: the READ ONLY transaction of a
-- STABLE call must stop it.
CREATE FUNCTION public.sneaky_write() RETURNS bigint
  LANGUAGE sql STABLE AS $$ SELECT public.log_and_count('sneaky') $$;

-- Raises: the message reaches the client (P0001 is the application's own words).
CREATE FUNCTION public.fail_loudly(reason text) RETURNS integer
  LANGUAGE plpgsql VOLATILE AS $$ BEGIN RAISE EXCEPTION '%', reason; END $$;

-- Writes, then raises: nothing of it may stay.
CREATE FUNCTION public.write_then_fail() RETURNS integer
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  INSERT INTO public.rpc_log (what) VALUES ('half-done');
  RAISE EXCEPTION 'changed my mind';
END $$;

-- Only for signed-in users.
CREATE FUNCTION public.members_only() RETURNS text
  LANGUAGE sql STABLE AS $$ SELECT 'welcome' $$;
REVOKE EXECUTE ON FUNCTION public.members_only() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.members_only() TO authenticated;

-- Only for the service role.
CREATE FUNCTION public.service_only() RETURNS text
  LANGUAGE sql STABLE AS $$ SELECT 'service' $$;
REVOKE EXECUTE ON FUNCTION public.service_only() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.service_only() TO service_role;

-- SECURITY DEFINER (owner: the superuser, so RLS does not apply inside): counts every note,
-- including others' private ones. Signed-in users only.
CREATE FUNCTION public.count_all_notes() RETURNS bigint
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$ SELECT count(*) FROM public.notes $$;
COMMENT ON FUNCTION public.count_all_notes() IS 'Test fixture: a SECURITY DEFINER function that bypasses RLS.';
REVOKE EXECUTE ON FUNCTION public.count_all_notes() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.count_all_notes() TO authenticated;

-- Takes the whole body (a single unnamed jsonb argument).
CREATE FUNCTION public.echo_json(jsonb) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;

-- Overloads chosen by argument names.
CREATE FUNCTION public.pick(a integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'one int' $$;
CREATE FUNCTION public.pick(a integer, b integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'two ints' $$;
CREATE FUNCTION public.pick(s text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'text' $$;

-- Overloads that {"a": ...} cannot tell apart.
CREATE FUNCTION public.amb(a integer) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'one' $$;
CREATE FUNCTION public.amb(a integer, b integer DEFAULT 0) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'two' $$;

-- VARIADIC.
CREATE FUNCTION public.var_sum(VARIADIC xs integer[]) RETURNS integer
  LANGUAGE sql IMMUTABLE AS $$ SELECT sum(x)::integer FROM unnest(xs) x $$;

-- Array and json arguments arrive as themselves.
CREATE FUNCTION public.describe(tags text[], meta jsonb) RETURNS jsonb
  LANGUAGE sql IMMUTABLE AS $$ SELECT jsonb_build_object('n_tags', cardinality(tags), 'first', tags[1], 'meta', meta) $$;

-- A schema that is not exposed: its functions do not exist for the API.
CREATE SCHEMA private;
GRANT USAGE ON SCHEMA private TO anon, authenticated;
CREATE FUNCTION private.secret() RETURNS text LANGUAGE sql STABLE AS $$ SELECT 'secret' $$;

-- Rows of auth.users through a SECURITY DEFINER function in an exposed schema: the server
-- must not serve them (its function cache leaves out functions returning internal row types).
CREATE FUNCTION public.all_users() RETURNS SETOF auth.users
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$ SELECT * FROM auth.users $$;
COMMENT ON FUNCTION public.all_users() IS 'Test fixture: must never be reachable over /rpc.';

-- DDL inside a function that fails on what it is given or finds: a table definition PostgreSQL
-- refuses (42P16, two primary keys) and an object that already exists (42P07). Errors of the
-- function's own making, not the server's: a 4xx, never a 500.
CREATE FUNCTION public.scratch_table(twice boolean) RETURNS integer
  LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF twice THEN
    CREATE TEMP TABLE rpc_scratch (id integer);
    CREATE TEMP TABLE rpc_scratch (id integer);
  ELSE
    CREATE TEMP TABLE rpc_scratch (id integer PRIMARY KEY, PRIMARY KEY (id));
  END IF;
  RETURN 1;
END $$;
