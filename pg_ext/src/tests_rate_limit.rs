//! In-database tests of the server's rate-limit counters (`fluxbase.rate_limit_hit`) and the
//! security-event feed (`fluxbase.security_events_after`).
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn hit(key: &str, limit: i32, window: i32) -> (bool, i32, f64) {
        let (allowed, remaining, reset) = Spi::get_three::<bool, i32, f64>(&format!(
            "SELECT allowed, remaining, reset_seconds FROM fluxbase.rate_limit_hit('{key}', {limit}, {window})"
        ))
        .unwrap();
        (allowed.unwrap(), remaining.unwrap(), reset.unwrap())
    }

    #[pg_test]
    fn hits_count_up_to_the_limit_per_key_and_window() {
        for expected_remaining in [2, 1, 0] {
            let (allowed, remaining, reset) = hit("ip:global:192.0.2.1", 3, 3600);
            assert!(allowed);
            assert_eq!(remaining, expected_remaining);
            assert!(reset > 0.0 && reset <= 3600.0, "{reset}");
        }
        let (allowed, remaining, _) = hit("ip:global:192.0.2.1", 3, 3600);
        assert!(!allowed);
        assert_eq!(remaining, 0);
        // Another key is untouched.
        let (allowed, remaining, _) = hit("ip:global:192.0.2.3", 3, 3600);
        assert!(allowed);
        assert_eq!(remaining, 2);
        // A window that has ended starts again from one.
        Spi::run(
            "UPDATE fluxbase.rate_limit_windows SET window_start = window_start - interval '2 hours' \
             WHERE key = 'ip:global:192.0.2.1'",
        )
        .unwrap();
        let (allowed, remaining, _) = hit("ip:global:192.0.2.1", 3, 3600);
        assert!(allowed);
        assert_eq!(remaining, 2);
        assert_eq!(
            Spi::get_one::<i64>("SELECT fluxbase.rate_limit_purge()").unwrap(),
            Some(0)
        );
        Spi::run("UPDATE fluxbase.rate_limit_windows SET window_start = window_start - interval '2 hours'")
            .unwrap();
        // Both keys' windows (192.0.2.1 and 192.0.2.3) have now ended.
        assert_eq!(
            Spi::get_one::<i64>("SELECT fluxbase.rate_limit_purge()").unwrap(),
            Some(2)
        );
    }

    #[pg_test(error = "rate_limit_hit needs a key, a limit >= 1 and a window >= 1 second")]
    fn a_zero_limit_is_refused() {
        hit("k", 0, 60);
    }

    #[pg_test]
    fn the_counters_are_unlogged_and_only_the_server_may_use_them() {
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT relpersistence::text FROM pg_class WHERE oid = 'fluxbase.rate_limit_windows'::regclass"
            )
            .unwrap()
            .as_deref(),
            Some("u")
        );
        for (role, allowed) in [
            ("fluxbase_authenticator", true),
            ("service_role", false),
            ("authenticated", false),
            ("anon", false),
        ] {
            for function in [
                "fluxbase.rate_limit_hit(text, integer, integer)",
                "fluxbase.rate_limit_purge()",
                "fluxbase.security_events_head()",
                "fluxbase.security_events_after(bigint, integer)",
            ] {
                assert_eq!(
                    Spi::get_one::<bool>(&format!(
                        "SELECT has_function_privilege('{role}', '{function}', 'EXECUTE')"
                    ))
                    .unwrap(),
                    Some(allowed),
                    "{role} {function}"
                );
            }
            assert_eq!(
                Spi::get_one::<bool>(&format!(
                    "SELECT has_table_privilege('{role}', 'fluxbase.rate_limit_windows', 'SELECT, INSERT, UPDATE, DELETE')"
                ))
                .unwrap(),
                Some(false),
                "{role}"
            );
        }
    }

    #[pg_test]
    fn the_feed_lists_admin_and_lockout_events_after_an_id() {
        let head = Spi::get_one::<i64>("SELECT fluxbase.security_events_head()")
            .unwrap()
            .unwrap();
        Spi::run(
            "SELECT auth.record_event('auth.login', 'failure');
             SELECT auth.record_event('admin.user_delete', 'success', gen_random_uuid());
             SELECT auth.record_event('auth.lockout', 'locked', NULL, '192.0.2.7'::inet);",
        )
        .unwrap();
        let events = Spi::get_one::<Vec<String>>(&format!(
            "SELECT array_agg(event || ' ' || coalesce(ip, '-') ORDER BY id) FROM fluxbase.security_events_after({head}, 10)"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(
            events,
            vec!["admin.user_delete -", "auth.lockout 192.0.2.7"]
        );
        assert!(
            Spi::get_one::<i64>("SELECT fluxbase.security_events_head()")
                .unwrap()
                .unwrap()
                >= head + 3
        );
    }
}
