-- The Chinook demo, part 2: grants and row-level security.
-- Run after the data is loaded; the accounts follow in accounts.sql (scripts/load-chinook.sh
-- does all of it).
--
-- Who sees what:
--   the catalogue (artist, album, track, genre, media_type, playlist, playlist_track):
--       everyone, anonymous visitors included; read only
--   a customer: their own customer row, their invoices and those invoices' lines
--   an employee: their own employee row and those of everyone below them in reports_to;
--       the customers any of those employees supports (support_rep), with their invoices
--       and invoice lines
--   service_role (BYPASSRLS): everything
-- Nobody but service_role writes: the API roles get SELECT only, so an insert, update or
-- delete is refused by privilege (42501) before any policy is asked.
-- The policies find the caller's rows through customer.user_id / employee.user_id, which
-- accounts.sql fills in.

-- The policies' helper functions. Why SECURITY DEFINER: the employee policy must walk the
-- reports_to tree of the employee table itself, and a policy that queries its own table
-- under RLS would recurse; run as the owner (the loading superuser, who skips RLS) the walk
-- is one indexed query. They reveal only ids of rows the caller may see anyway.
-- Why the policies call them as (SELECT chinook.f())::integer[]: an uncorrelated scalar
-- subquery is an initplan, evaluated once per statement; the policy check is then
-- `col = ANY($1)`, an index lookup, instead of a function call per row. (The cast is needed:
-- `col = ANY (SELECT ...)` alone would compare col with each row of the subquery.)
CREATE SCHEMA chinook;
COMMENT ON SCHEMA chinook IS 'Chinook demo: helper functions of the RLS policies. Not exposed over HTTP.';

-- The employee ids the caller acts for: their own and, recursively, everyone who reports
-- to them. Empty for a customer or an anonymous caller.
CREATE FUNCTION chinook.my_employee_ids() RETURNS integer[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH RECURSIVE below(id) AS (
    SELECT e.id FROM public.employee e WHERE e.user_id = auth.uid()
    UNION
    SELECT e.id FROM public.employee e JOIN below b ON e.reports_to = b.id
  )
  SELECT coalesce(array_agg(below.id), '{}') FROM below
$$;
COMMENT ON FUNCTION chinook.my_employee_ids() IS
  'Chinook RLS: the caller''s employee id and, recursively, those of everyone who reports to them (empty if none).';

-- The customer ids the caller may see: their own customer row, plus the customers that
-- any of their employee ids supports.
CREATE FUNCTION chinook.my_customer_ids() RETURNS integer[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(c.id), '{}')
  FROM public.customer c
  WHERE c.user_id = auth.uid()
     OR c.support_rep = ANY (chinook.my_employee_ids())
$$;
COMMENT ON FUNCTION chinook.my_customer_ids() IS
  'Chinook RLS: the caller''s own customer id plus the customers their employee ids support (empty if none).';

-- The invoice ids of those customers (for the invoice_line policy, so it is one index
-- lookup on invoice_line.invoice rather than a join per line).
CREATE FUNCTION chinook.my_invoice_ids() RETURNS integer[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(array_agg(i.id), '{}')
  FROM public.invoice i
  WHERE i.customer = ANY (chinook.my_customer_ids())
$$;
COMMENT ON FUNCTION chinook.my_invoice_ids() IS
  'Chinook RLS: the ids of the invoices of chinook.my_customer_ids().';

-- Only signed-in users' policies call them (anonymous requests have no grant on the private
-- tables, so no policy of theirs needs them).
REVOKE ALL ON FUNCTION chinook.my_employee_ids() FROM PUBLIC;
REVOKE ALL ON FUNCTION chinook.my_customer_ids() FROM PUBLIC;
REVOKE ALL ON FUNCTION chinook.my_invoice_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION chinook.my_employee_ids() TO authenticated;
GRANT EXECUTE ON FUNCTION chinook.my_customer_ids() TO authenticated;
GRANT EXECUTE ON FUNCTION chinook.my_invoice_ids() TO authenticated;

-- RLS on and forced on every table (forced: not even the owner's queries skip it).
DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['artist', 'album', 'track', 'genre', 'media_type', 'playlist', 'playlist_track',
                           'employee', 'customer', 'invoice', 'invoice_line'] LOOP
    EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('GRANT ALL ON public.%I TO service_role', t);
    EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE public.%I TO service_role', t || '_id_seq');
  END LOOP;
END
$rls$;

-- The catalogue: readable by everyone.
DO $catalogue$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['artist', 'album', 'track', 'genre', 'media_type', 'playlist', 'playlist_track'] LOOP
    EXECUTE format('GRANT SELECT ON public.%I TO anon, authenticated', t);
    EXECUTE format('CREATE POLICY %I ON public.%I FOR SELECT TO anon, authenticated USING (true)', t || '_read', t);
  END LOOP;
END
$catalogue$;

-- The private tables: signed-in users read what the helpers allow; nobody else has a grant.
GRANT SELECT ON public.employee, public.customer, public.invoice, public.invoice_line TO authenticated;

-- An employee reads their own row and those of everyone below them.
CREATE POLICY employee_read ON public.employee FOR SELECT TO authenticated
  USING (id = ANY ((SELECT chinook.my_employee_ids())::integer[]));
-- A customer reads their own row; an employee the customers their team supports.
CREATE POLICY customer_read ON public.customer FOR SELECT TO authenticated
  USING (id = ANY ((SELECT chinook.my_customer_ids())::integer[]));
-- The invoices of those customers.
CREATE POLICY invoice_read ON public.invoice FOR SELECT TO authenticated
  USING (customer = ANY ((SELECT chinook.my_customer_ids())::integer[]));
-- The lines of those invoices.
CREATE POLICY invoice_line_read ON public.invoice_line FOR SELECT TO authenticated
  USING (invoice = ANY ((SELECT chinook.my_invoice_ids())::integer[]));

-- Fresh statistics, so the first queries are planned on the real row counts.
ANALYZE public.artist, public.album, public.track, public.genre, public.media_type, public.playlist,
        public.playlist_track, public.employee, public.customer, public.invoice, public.invoice_line;
