//! In-database tests of `fluxbase.security_report` and the schema-change event triggers.
//! Each test builds its bad (and good) cases in a schema of its own, so the findings of
//! other objects in the test database do not matter.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// "kind object" for every finding in `schema`, in the report's order.
    fn findings(schema: &str) -> Vec<String> {
        Spi::get_one::<Vec<String>>(&format!(
            "SELECT coalesce(array_agg(kind || ' ' || object ORDER BY n), '{{}}') \
             FROM fluxbase.security_report(ARRAY['{schema}']) WITH ORDINALITY AS r(severity, kind, object, detail, n) \
             WHERE kind <> 'security_definer_function' OR object LIKE '{schema}.%'"
        ))
        .unwrap()
        .unwrap()
    }

    fn detail(schema: &str, kind: &str, object: &str) -> Vec<String> {
        Spi::get_one::<Vec<String>>(&format!(
            "SELECT coalesce(array_agg(severity || ': ' || detail ORDER BY detail), '{{}}') \
             FROM fluxbase.security_report(ARRAY['{schema}']) WHERE kind = '{kind}' AND object = '{object}'"
        ))
        .unwrap()
        .unwrap()
    }

    /// A table that is as it should be: RLS on and forced, a policy for every granted command.
    const CLEAN: &str = "
        CREATE TABLE sr.clean (id int PRIMARY KEY, owner uuid);
        ALTER TABLE sr.clean ENABLE ROW LEVEL SECURITY;
        ALTER TABLE sr.clean FORCE ROW LEVEL SECURITY;
        GRANT SELECT ON sr.clean TO anon;
        GRANT SELECT, INSERT, UPDATE, DELETE ON sr.clean TO authenticated;
        CREATE POLICY clean_read ON sr.clean FOR SELECT USING (true);
        CREATE POLICY clean_write ON sr.clean FOR ALL TO authenticated USING (owner = auth.uid());";

    #[pg_test]
    fn a_clean_schema_reports_nothing() {
        Spi::run("CREATE SCHEMA sr").unwrap();
        Spi::run(CLEAN).unwrap();
        Spi::run(
            "CREATE VIEW sr.clean_view WITH (security_invoker = true) AS SELECT id FROM sr.clean;
             GRANT SELECT ON sr.clean_view TO anon;
             CREATE VIEW sr.clean_view_on WITH (security_invoker = on) AS SELECT id FROM sr.clean;
             CREATE MATERIALIZED VIEW sr.private_summary AS SELECT count(*) FROM sr.clean;
             CREATE FUNCTION sr.closed_definer() RETURNS int LANGUAGE sql SECURITY DEFINER
               SET search_path = pg_catalog, pg_temp AS 'SELECT 1';
             REVOKE ALL ON FUNCTION sr.closed_definer() FROM PUBLIC;",
        )
        .unwrap();
        assert_eq!(findings("sr"), Vec::<String>::new());
    }

    #[pg_test]
    fn every_bad_case_is_reported() {
        Spi::run("CREATE SCHEMA sr").unwrap();
        Spi::run(CLEAN).unwrap();
        Spi::run(
            "CREATE TABLE sr.open (id int);
             GRANT SELECT ON sr.open TO anon;
             CREATE TABLE sr.unforced (id int);
             ALTER TABLE sr.unforced ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON sr.unforced FOR SELECT USING (true);
             CREATE TABLE sr.nopolicy (id int);
             ALTER TABLE sr.nopolicy ENABLE ROW LEVEL SECURITY;
             ALTER TABLE sr.nopolicy FORCE ROW LEVEL SECURITY;
             CREATE VIEW sr.owner_view AS SELECT id FROM sr.clean;
             CREATE VIEW sr.off_view WITH (security_invoker = false) AS SELECT id FROM sr.clean;
             CREATE MATERIALIZED VIEW sr.summary AS SELECT count(*) FROM sr.clean;
             GRANT SELECT ON sr.summary TO authenticated;
             CREATE FUNCTION sr.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';",
        )
        .unwrap();
        assert_eq!(
            findings("sr"),
            vec![
                // errors first, then by object name
                "view_not_security_invoker sr.off_view",
                "rls_disabled sr.open",
                "view_not_security_invoker sr.owner_view",
                "materialized_view_exposed sr.summary",
                "security_definer_function sr.definer()",
                "no_policy sr.nopolicy",
                "rls_not_forced sr.unforced",
            ]
        );
        assert_eq!(
            detail("sr", "materialized_view_exposed", "sr.summary"),
            vec!["error: readable by authenticated: a materialized view has no row-level security"]
        );
        // Executable through the default PUBLIC grant, and its search_path is not pinned.
        let definer = detail("sr", "security_definer_function", "sr.definer()");
        assert_eq!(definer.len(), 1);
        assert!(
            definer[0].starts_with("warning: SECURITY DEFINER (runs as "),
            "{definer:?}"
        );
        assert!(
            definer[0].contains("executable by anon, authenticated; search_path is not pinned"),
            "{definer:?}"
        );
    }

    #[pg_test]
    fn grants_no_policy_covers_are_reported_per_role_and_command() {
        Spi::run("CREATE SCHEMA sr").unwrap();
        Spi::run(
            "CREATE TABLE sr.partial (id int, owner uuid);
             ALTER TABLE sr.partial ENABLE ROW LEVEL SECURITY;
             ALTER TABLE sr.partial FORCE ROW LEVEL SECURITY;
             GRANT SELECT, DELETE ON sr.partial TO anon;
             GRANT SELECT, INSERT ON sr.partial TO authenticated;
             GRANT UPDATE (owner) ON sr.partial TO authenticated;
             -- covers SELECT for both roles
             CREATE POLICY read ON sr.partial FOR SELECT TO anon, authenticated USING (true);
             -- a restrictive policy grants nothing
             CREATE POLICY narrow ON sr.partial AS RESTRICTIVE FOR INSERT TO authenticated WITH CHECK (owner = auth.uid());
             -- a policy for another role covers nothing for these
             CREATE POLICY svc ON sr.partial FOR ALL TO service_role USING (true);",
        )
        .unwrap();
        assert_eq!(
            detail("sr", "grant_not_covered", "sr.partial"),
            vec![
                "warning: anon may DELETE but no permissive policy for DELETE applies to anon",
                "warning: authenticated may INSERT but no permissive policy for INSERT applies to authenticated",
                "warning: authenticated may UPDATE but no permissive policy for UPDATE applies to authenticated",
            ]
        );
        // A PUBLIC policy for ALL covers every command of every role.
        Spi::run("CREATE POLICY everyone ON sr.partial USING (owner = auth.uid())").unwrap();
        assert_eq!(findings("sr"), Vec::<String>::new());
    }

    #[pg_test]
    fn the_kernels_own_definer_functions_are_left_out() {
        // auth.sign_in is SECURITY DEFINER and executable by anon: a deliberate door.
        assert_eq!(
            Spi::get_one::<bool>(
                "SELECT p.prosecdef AND has_function_privilege('anon', p.oid, 'EXECUTE') \
                 FROM pg_proc p WHERE p.oid = 'auth.sign_in(text, text, inet)'::regprocedure"
            )
            .unwrap(),
            Some(true)
        );
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM fluxbase.security_report(ARRAY['auth', 'fluxbase']) \
                 WHERE kind = 'security_definer_function'"
            )
            .unwrap(),
            Some(0)
        );
    }

    #[pg_test]
    fn only_the_server_and_service_role_may_run_the_report() {
        for (role, allowed) in [
            ("fluxbase_authenticator", true),
            ("service_role", true),
            ("anon", false),
            ("authenticated", false),
        ] {
            assert_eq!(
                Spi::get_one::<bool>(&format!(
                    "SELECT has_function_privilege('{role}', 'fluxbase.security_report(text[])', 'EXECUTE')"
                ))
                .unwrap(),
                Some(allowed),
                "{role}"
            );
        }
        // USAGE on the fluxbase schema opens no other function in it; the server's
        // rate-limit counters and security-event feed are for the server's role alone.
        let open = Spi::get_one::<Vec<String>>(
            "SELECT coalesce(array_agg(p.oid::regprocedure::text), '{}') FROM pg_proc p \
             WHERE p.pronamespace = 'fluxbase'::regnamespace \
               AND p.oid <> 'fluxbase.security_report(text[])'::regprocedure \
               AND p.oid <> 'fluxbase.reset_session()'::regprocedure \
               AND ((has_function_privilege('fluxbase_authenticator', p.oid, 'EXECUTE') \
                     AND p.proname NOT IN ('rate_limit_hit', 'rate_limit_purge', \
                                           'security_events_head', 'security_events_after')) \
                    OR has_function_privilege('service_role', p.oid, 'EXECUTE') \
                    OR has_function_privilege('anon', p.oid, 'EXECUTE') \
                    OR has_function_privilege('authenticated', p.oid, 'EXECUTE'))",
        )
        .unwrap()
        .unwrap();
        assert!(open.is_empty(), "{open:?}");
        // The pooled-connection reset is the server's alone.
        for (role, allowed) in [
            ("fluxbase_authenticator", true),
            ("service_role", false),
            ("anon", false),
            ("authenticated", false),
        ] {
            assert_eq!(
                Spi::get_one::<bool>(&format!(
                    "SELECT has_function_privilege('{role}', 'fluxbase.reset_session()', 'EXECUTE')"
                ))
                .unwrap(),
                Some(allowed),
                "{role}"
            );
        }
    }

    #[pg_test]
    fn the_schema_event_triggers_belong_to_the_extension_and_always_fire() {
        let triggers = Spi::get_one::<Vec<String>>(
            "SELECT array_agg(t.evtname || ' ' || t.evtevent || ' ' || t.evtenabled::text ORDER BY t.evtname) \
             FROM pg_event_trigger t \
             JOIN pg_depend d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = t.oid AND d.deptype = 'e' \
             JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'fluxbase' \
             WHERE t.evtname LIKE 'fluxbase\\_schema\\_%'",
        )
        .unwrap()
        .unwrap();
        // (The audit log's own DDL triggers are the audit tests' business.)
        assert_eq!(
            triggers,
            vec![
                "fluxbase_schema_ddl ddl_command_end A",
                "fluxbase_schema_drop sql_drop A"
            ]
        );
    }

    #[pg_test]
    fn ddl_by_an_ordinary_role_still_works() {
        // The trigger function's EXECUTE is revoked from PUBLIC; event triggers do not check
        // it, so an ordinary owner's DDL must go through (and notify).
        Spi::run(
            "CREATE ROLE sr_owner NOLOGIN;
             CREATE SCHEMA sr AUTHORIZATION sr_owner;
             SET LOCAL ROLE sr_owner;
             CREATE TABLE sr.t (id int);
             ALTER TABLE sr.t ENABLE ROW LEVEL SECURITY;
             CREATE POLICY p ON sr.t USING (true);
             COMMENT ON TABLE sr.t IS 'x';
             DROP TABLE sr.t;
             RESET ROLE;",
        )
        .unwrap();
    }
}
