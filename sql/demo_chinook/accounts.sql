-- The Chinook demo, part 3: a Fluxbase account for every customer and employee.
-- Every customer is the user customerN@example.com and every employee employeeN@example.com
-- (the e-mails in the CSVs), all with the one demo password
--     Chinook-Demo-2024
-- (it passes the default password policy). They are created with auth.create_user, so the
-- passwords are argon2id-hashed by the extension like any other, and linked to their rows
-- by customer.user_id / employee.user_id, which the policies (policies.sql) follow.
-- Separate from policies.sql so that a database can have the demo's data and rules without
-- its accounts (the black-box tests' shared template does: other tests count users).
DO $accounts$
DECLARE
  demo_password constant text := 'Chinook-Demo-2024';
  r record;
BEGIN
  FOR r IN SELECT e.id, e.email, e.firstname, e.lastname, e.title FROM public.employee e ORDER BY e.id LOOP
    UPDATE public.employee SET user_id = auth.create_user(
      r.email, demo_password, 'authenticated',
      jsonb_build_object('name', r.firstname || ' ' || r.lastname, 'title', r.title),
      jsonb_build_object('chinook_employee_id', r.id))
    WHERE id = r.id;
  END LOOP;
  FOR r IN SELECT c.id, c.email, c.firstname, c.lastname FROM public.customer c ORDER BY c.id LOOP
    UPDATE public.customer SET user_id = auth.create_user(
      r.email, demo_password, 'authenticated',
      jsonb_build_object('name', r.firstname || ' ' || r.lastname),
      jsonb_build_object('chinook_customer_id', r.id))
    WHERE id = r.id;
  END LOOP;
END
$accounts$;

ANALYZE public.employee, public.customer;
