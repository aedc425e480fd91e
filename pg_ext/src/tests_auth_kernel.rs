//! In-database tests of the auth kernel (issue 3): password policy, lockout, sessions,
//! refresh rotation, revocation, key rotation, settings validation, admin functions.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
pub(crate) mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::Value;

    const PASSWORD: &str = "Correct-horse-battery-1";

    fn json(sql: &str) -> Value {
        Spi::get_one::<JsonB>(sql)
            .unwrap()
            .expect("a jsonb result")
            .0
    }

    fn sign_up(email: &str) -> Value {
        json(&format!("SELECT auth.sign_up('{email}', '{PASSWORD}')"))
    }

    fn sign_in(email: &str, password: &str, ip: &str) -> Value {
        json(&format!(
            "SELECT auth.sign_in('{email}', '{password}', '{ip}')"
        ))
    }

    /// Runs `auth.authenticate(token)` inside a subtransaction and reports whether it passed,
    /// restoring the superuser role afterwards.
    pub(crate) fn authenticates(token: &str) -> bool {
        Spi::get_one::<bool>(&format!(
            "DO $$ BEGIN PERFORM auth.authenticate('{token}'); \
               PERFORM set_config('fluxbase_test.ok', 'yes', true); \
             EXCEPTION WHEN invalid_authorization_specification THEN \
               PERFORM set_config('fluxbase_test.ok', 'no', true); END $$; \
             RESET ROLE; SELECT current_setting('fluxbase_test.ok') = 'yes'"
        ))
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn every_broken_password_rule_is_listed() {
        let problems = Spi::get_one::<Vec<String>>("SELECT auth.password_problems('abc')")
            .unwrap()
            .unwrap();
        assert_eq!(problems.len(), 4, "{problems:?}"); // length, upper, digit, special
        assert!(problems.iter().any(|p| p.contains("at least 12")));
        assert!(problems.iter().any(|p| p.contains("upper-case")));
        assert!(problems.iter().any(|p| p.contains("digit")));
        assert!(problems.iter().any(|p| p.contains("special")));
        let none =
            Spi::get_one::<Vec<String>>(&format!("SELECT auth.password_problems('{PASSWORD}')"))
                .unwrap()
                .unwrap();
        assert!(none.is_empty());
        let long =
            Spi::get_one::<Vec<String>>("SELECT auth.password_problems(repeat('Aa1-', 300))")
                .unwrap()
                .unwrap();
        assert!(long.iter().any(|p| p.contains("1024 bytes")), "{long:?}");
    }

    #[pg_test(
        error = "the password does not meet the policy: must be at least 12 characters long; must contain a special character (neither letter nor digit)"
    )]
    fn sign_up_applies_the_policy() {
        Spi::run("SELECT auth.sign_up('weak@example.com', 'Short1abc')").unwrap();
    }

    #[pg_test]
    fn policy_follows_the_settings() {
        Spi::run("SELECT auth.set_setting('password_require_special', 'false')").unwrap();
        Spi::run("SELECT auth.set_setting('password_min_length', '6')").unwrap();
        let none = Spi::get_one::<Vec<String>>("SELECT auth.password_problems('Abcde1')")
            .unwrap()
            .unwrap();
        assert!(none.is_empty(), "{none:?}");
    }

    #[pg_test(
        error = "setting \"lockout_type\" must be one of ip, email, ip_and_email, not \"sometimes\""
    )]
    fn bad_lockout_type_is_refused_naming_the_key() {
        Spi::run("SELECT auth.set_setting('lockout_type', 'sometimes')").unwrap();
    }

    #[pg_test(
        error = "setting \"access_token_expiry\" must be a positive duration like 30s, 15m, 1h or 7d, not \"-5m\""
    )]
    fn bad_duration_is_refused_naming_the_key() {
        Spi::run("SELECT auth.set_setting('access_token_expiry', '-5m')").unwrap();
    }

    #[pg_test(error = "setting \"max_login_attempts\" must be at most 100, not \"1000000\"")]
    fn a_lockout_too_loose_to_lock_is_refused() {
        Spi::run("SELECT auth.apply_settings('{\"max_login_attempts\": 1000000}')").unwrap();
    }

    #[pg_test(error = "setting \"access_token_expiry\" must be at most 1d (24h), not \"3650d\"")]
    fn an_access_token_lifetime_over_a_day_is_refused() {
        Spi::run("SELECT auth.set_setting('access_token_expiry', '3650d')").unwrap();
    }

    #[pg_test(error = "setting \"refresh_token_expiry\" must be at most 365d, not \"999999999d\"")]
    fn a_duration_that_would_overflow_a_timestamp_is_refused() {
        // It was accepted, and then every sign-in and sign-up failed (found by a review).
        Spi::run("SELECT auth.apply_settings('{\"refresh_token_expiry\": \"999999999d\"}')")
            .unwrap();
    }

    #[pg_test(error = "setting \"lockout_duration\" must be at least 1m, not \"1s\"")]
    fn a_lockout_shorter_than_a_minute_is_refused() {
        Spi::run("SELECT auth.set_setting('lockout_duration', '1s')").unwrap();
    }

    /// Every change of a setting is an admin.settings_changed event (found by a red-team
    /// review: the server's login role could weaken every rule without a trace); setting a
    /// value it already has records nothing; the ceilings themselves are allowed.
    #[pg_test]
    fn every_settings_change_is_a_security_event() {
        let events = "SELECT count(*) FROM auth.events WHERE event = 'admin.settings_changed'";
        let before = Spi::get_one::<i64>(events).unwrap().unwrap();
        Spi::run("SELECT auth.apply_settings('{\"max_login_attempts\": 100, \"access_token_expiry\": \"24h\", \"lockout_type\": \"ip_and_email\"}')").unwrap();
        assert_eq!(
            Spi::get_one::<i64>(events).unwrap().unwrap(),
            before + 2,
            "two values changed (lockout_type kept its value)"
        );
        let details = Spi::get_one::<pgrx::JsonB>(
            "SELECT details FROM auth.events WHERE event = 'admin.settings_changed' AND details->>'key' = 'max_login_attempts' ORDER BY id DESC LIMIT 1",
        )
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(details["old"], "5");
        assert_eq!(details["new"], "100");
        assert!(details["by"].is_string(), "{details}");
        // It reaches the audit log too, as a SECURITY row.
        assert_eq!(
            Spi::get_one::<i64>(
                "SELECT count(*) FROM audit.log WHERE op = 'SECURITY' AND details->>'event' = 'admin.settings_changed'"
            )
            .unwrap()
            .unwrap(),
            before + 2
        );
    }

    #[pg_test(error = "unknown Fluxbase setting \"max_login_attempt\"")]
    fn unknown_setting_is_refused() {
        Spi::run("SELECT auth.apply_settings('{\"max_login_attempt\": 3}')").unwrap();
    }

    #[pg_test]
    fn apply_settings_takes_yaml_values() {
        Spi::run("SELECT auth.apply_settings('{\"max_login_attempts\": 3, \"refresh_token_rotation\": false, \"lockout_duration\": \"1h\"}')").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.setting('max_login_attempts')")
                .unwrap()
                .unwrap(),
            "3"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.setting('refresh_token_rotation')")
                .unwrap()
                .unwrap(),
            "false"
        );
    }

    #[pg_test]
    fn lockout_by_email_after_max_attempts_even_with_the_right_password() {
        sign_up("lock@example.com");
        Spi::run("SELECT auth.set_setting('lockout_type', 'email')").unwrap();
        for i in 0..5 {
            let r = sign_in(
                "lock@example.com",
                "Wrong-password-99",
                &format!("10.0.0.{i}"),
            );
            assert_eq!(r["error"]["code"], "INVALID_CREDENTIALS");
        }
        let r = sign_in("LOCK@example.com", PASSWORD, "10.0.0.99");
        assert_eq!(
            r["error"]["code"], "INVALID_CREDENTIALS",
            "a locked e-mail must refuse the right password"
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM auth.lockouts").unwrap(),
            Some(1)
        );
        Spi::run("SELECT auth.unlock(email => 'lock@example.com')").unwrap();
        let r = sign_in("lock@example.com", PASSWORD, "10.0.0.99");
        assert!(r.get("access_token").is_some(), "{r}");
    }

    #[pg_test]
    fn lockout_by_ip_spans_accounts() {
        Spi::run("SELECT auth.set_setting('lockout_type', 'ip')").unwrap();
        sign_up("victim@example.com");
        for i in 0..5 {
            sign_in(
                &format!("guess{i}@example.com"),
                "Wrong-password-99",
                "192.0.2.7",
            );
        }
        let r = sign_in("victim@example.com", PASSWORD, "192.0.2.7");
        assert_eq!(r["error"]["code"], "INVALID_CREDENTIALS");
        let r = sign_in("victim@example.com", PASSWORD, "192.0.2.8");
        assert!(
            r.get("access_token").is_some(),
            "another IP is not locked: {r}"
        );
    }

    /// An IPv6 client counts by its /64: rotating addresses inside it does not reset the
    /// count (found by a red-team review), another /64 is another key, and an IPv4-mapped
    /// address is the IPv4 address.
    #[pg_test]
    fn an_ipv6_client_is_counted_by_its_64() {
        Spi::run("SELECT auth.set_setting('lockout_type', 'ip')").unwrap();
        sign_up("victim6@example.com");
        for i in 1..=5 {
            sign_in(
                &format!("guess{i}@example.com"),
                "Wrong-password-99",
                &format!("2001:db8:0:7::{i:x}"),
            );
        }
        let r = sign_in("victim6@example.com", PASSWORD, "2001:db8:0:7:ffff::99");
        assert_eq!(r["error"]["code"], "INVALID_CREDENTIALS", "{r}");
        let r = sign_in("victim6@example.com", PASSWORD, "2001:db8:0:8::1");
        assert!(
            r.get("access_token").is_some(),
            "another /64 is not locked: {r}"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.lockout_ip_key('::ffff:192.0.2.7')")
                .unwrap()
                .as_deref(),
            Some("ip:192.0.2.7")
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.lockout_ip_key('2001:db8:0:7:1:2:3:4')")
                .unwrap()
                .as_deref(),
            Some("ip:2001:db8:0:7::/64")
        );
        Spi::run("SELECT auth.unlock(ip => '2001:db8:0:7::abcd')").unwrap();
        let r = sign_in("victim6@example.com", PASSWORD, "2001:db8:0:7::1");
        assert!(
            r.get("access_token").is_some(),
            "unlocked by any address of the /64: {r}"
        );
    }

    #[pg_test]
    fn ip_and_email_locks_on_either_key() {
        sign_up("both@example.com");
        for i in 0..5 {
            sign_in(
                "both@example.com",
                "Wrong-password-99",
                &format!("198.51.100.{i}"),
            );
        }
        let r = sign_in("both@example.com", PASSWORD, "198.51.100.200");
        assert_eq!(
            r["error"]["code"], "INVALID_CREDENTIALS",
            "the e-mail key is locked"
        );
        let keys =
            Spi::get_one::<i64>("SELECT count(*) FROM auth.login_attempts WHERE key LIKE 'ip:%'")
                .unwrap()
                .unwrap();
        assert_eq!(keys, 6, "each IP was counted too");
    }

    #[pg_test]
    fn sign_in_creates_a_session_that_the_token_names() {
        sign_up("sess@example.com");
        let r = sign_in("sess@example.com", PASSWORD, "127.0.0.1");
        let token = r["access_token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims = Spi::get_one::<JsonB>(&format!(
            "SELECT convert_from(decode(translate('{payload}', '-_', '+/') || repeat('=', (4 - length('{payload}') % 4) % 4), 'base64'), 'UTF8')::jsonb"
        ))
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(claims["aal"], "aal1");
        assert_eq!(claims["amr"], serde_json::json!(["password"]));
        assert_eq!(claims["token_type"], "access");
        let sid = claims["session_id"].as_str().unwrap();
        let exists = Spi::get_one::<bool>(&format!(
            "SELECT EXISTS (SELECT FROM auth.sessions WHERE id = '{sid}')"
        ))
        .unwrap();
        assert_eq!(exists, Some(true));
        assert!(r["refresh_token"].as_str().is_some_and(|t| t.len() == 64));
        let stored_plain = Spi::get_one::<bool>(&format!(
            "SELECT EXISTS (SELECT FROM auth.refresh_tokens WHERE encode(token_hash, 'hex') = '{}')",
            r["refresh_token"].as_str().unwrap()
        ))
        .unwrap();
        assert_eq!(
            stored_plain,
            Some(false),
            "the refresh token must be stored hashed"
        );
    }

    #[pg_test]
    fn refresh_rotates_and_reuse_revokes_the_session() {
        let first = sign_up("rot@example.com");
        let r1 = first["refresh_token"].as_str().unwrap();
        let second = json(&format!("SELECT auth.refresh('{r1}')"));
        let r2 = second["refresh_token"]
            .as_str()
            .expect("a new refresh token");
        assert_ne!(r1, r2);
        let access2 = second["access_token"].as_str().unwrap().to_owned();
        assert!(authenticates(&access2));
        // The old token again: reuse. The whole session dies, the new pair with it.
        let reuse = json(&format!("SELECT auth.refresh('{r1}')"));
        assert_eq!(reuse["error"]["code"], "INVALID_REFRESH_TOKEN");
        let after = json(&format!("SELECT auth.refresh('{r2}')"));
        assert_eq!(after["error"]["code"], "INVALID_REFRESH_TOKEN");
        assert!(
            !authenticates(&access2),
            "the access token of a revoked session still works"
        );
        assert!(!authenticates(first["access_token"].as_str().unwrap()));
    }

    #[pg_test]
    fn sign_out_blacklists_the_token_at_once() {
        let r = sign_up("out@example.com");
        let access = r["access_token"].as_str().unwrap();
        Spi::run(&format!("SELECT auth.authenticate('{access}')")).unwrap();
        Spi::run("SELECT auth.sign_out()").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert!(!authenticates(access));
        let jti_listed = Spi::get_one::<i64>("SELECT count(*) FROM auth.revoked_tokens").unwrap();
        assert_eq!(jti_listed, Some(1));
        let refresh = json(&format!(
            "SELECT auth.refresh('{}')",
            r["refresh_token"].as_str().unwrap()
        ));
        assert_eq!(refresh["error"]["code"], "INVALID_REFRESH_TOKEN");
    }

    #[pg_test]
    fn global_sign_out_revokes_every_session() {
        sign_up("glob@example.com");
        let a = sign_in("glob@example.com", PASSWORD, "127.0.0.1");
        let b = sign_in("glob@example.com", PASSWORD, "127.0.0.2");
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            a["access_token"].as_str().unwrap()
        ))
        .unwrap();
        Spi::run("SELECT auth.sign_out('global')").unwrap();
        Spi::run("RESET ROLE").unwrap();
        assert!(!authenticates(b["access_token"].as_str().unwrap()));
    }

    #[pg_test]
    fn banned_and_deleted_users_lose_their_tokens() {
        let r = sign_up("ban@example.com");
        let token = r["access_token"].as_str().unwrap().to_owned();
        assert!(authenticates(&token));
        Spi::run("SELECT auth.ban_user((SELECT id FROM auth.users WHERE email = 'ban@example.com'), '1 day')").unwrap();
        assert!(!authenticates(&token));
        let again = sign_in("ban@example.com", PASSWORD, "127.0.0.1");
        assert_eq!(again["error"]["code"], "INVALID_CREDENTIALS");
        let r = sign_up("del@example.com");
        let token = r["access_token"].as_str().unwrap().to_owned();
        Spi::run(
            "SELECT auth.delete_user((SELECT id FROM auth.users WHERE email = 'del@example.com'))",
        )
        .unwrap();
        assert!(!authenticates(&token));
    }

    #[pg_test]
    fn key_rotation_keeps_old_tokens_valid_until_removed() {
        let r = sign_up("kid@example.com");
        let old = r["access_token"].as_str().unwrap().to_owned();
        let old_secret = "pg-test-secret-that-is-at-least-32-bytes-long";
        Spi::run(&format!(
            "SET fluxbase.jwt_previous_keys = 'k1:{old_secret}'"
        ))
        .unwrap();
        Spi::run("SET fluxbase.jwt_secret = 'a-brand-new-secret-that-is-also-long-enough'")
            .unwrap();
        Spi::run("SET fluxbase.jwt_key_id = 'k2'").unwrap();
        assert!(
            authenticates(&old),
            "a token of the retired key must still verify"
        );
        let fresh = sign_in("kid@example.com", PASSWORD, "127.0.0.1");
        let header = fresh["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .next()
            .unwrap()
            .to_owned();
        let kid = Spi::get_one::<String>(&format!(
            "SELECT convert_from(decode('{header}' || repeat('=', (4 - length('{header}') % 4) % 4), 'base64'), 'UTF8')::jsonb->>'kid'"
        ))
        .unwrap();
        assert_eq!(kid.as_deref(), Some("k2"));
        Spi::run("SET fluxbase.jwt_previous_keys = ''").unwrap();
        assert!(
            !authenticates(&old),
            "once retired, the old key verifies nothing"
        );
    }

    #[pg_test]
    fn old_hash_parameters_are_upgraded_on_sign_in() {
        use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
        sign_up("rehash@example.com");
        // The same password hashed with weaker parameters, as an older release would have.
        let weak_params = argon2::Params::new(4096, 1, 1, None).unwrap();
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            weak_params,
        )
        .hash_password(PASSWORD.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string();
        Spi::run(&format!("UPDATE auth.users SET encrypted_password = '{weak}' WHERE email = 'rehash@example.com'")).unwrap();
        let r = sign_in("rehash@example.com", PASSWORD, "127.0.0.1");
        assert!(
            r.get("access_token").is_some(),
            "the old hash still verifies: {r}"
        );
        let stored = Spi::get_one::<String>(
            "SELECT encrypted_password FROM auth.users WHERE email = 'rehash@example.com'",
        )
        .unwrap()
        .unwrap();
        assert_ne!(stored, weak);
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
    }

    #[pg_test]
    fn expired_password_only_allows_a_change() {
        sign_up("old@example.com");
        Spi::run("UPDATE auth.users SET password_changed_at = now() - interval '91 days' WHERE email = 'old@example.com'").unwrap();
        let r = sign_in("old@example.com", PASSWORD, "127.0.0.1");
        assert_eq!(r["requires_password_change"], true, "{r}");
        assert!(r.get("access_token").is_none());
        let change_token = r["password_change_token"].as_str().unwrap();
        let done = json(&format!(
            "SELECT auth.change_expired_password('{change_token}', 'Brand-new-password-2')"
        ));
        assert!(done.get("access_token").is_some(), "{done}");
        let twice = json(&format!(
            "SELECT auth.change_expired_password('{change_token}', 'Another-password-3')"
        ));
        assert_eq!(twice["error"]["code"], "INVALID_TOKEN");
    }

    #[pg_test]
    fn reset_tokens_work_once_and_revoke_sessions() {
        let r = sign_up("reset@example.com");
        let token =
            Spi::get_one::<String>("SELECT auth.create_password_reset('Reset@Example.com')")
                .unwrap()
                .unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT auth.create_password_reset('ghost@example.com') IS NULL")
                .unwrap(),
            Some(true)
        );
        let ok = json(&format!(
            "SELECT auth.reset_password('{token}', 'Reset-password-42')"
        ));
        assert_eq!(ok["success"], true);
        let again = json(&format!(
            "SELECT auth.reset_password('{token}', 'Reset-password-43')"
        ));
        assert_eq!(again["error"]["code"], "INVALID_RESET_TOKEN");
        assert!(!authenticates(r["access_token"].as_str().unwrap()));
        let signed = sign_in("reset@example.com", "Reset-password-42", "127.0.0.1");
        assert!(signed.get("access_token").is_some(), "{signed}");
    }

    #[pg_test(error = "the field \"role\" cannot be changed here")]
    fn users_cannot_set_their_own_role() {
        let r = sign_up("esc@example.com");
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            r["access_token"].as_str().unwrap()
        ))
        .unwrap();
        Spi::run("SELECT auth.update_user('{\"role\": \"service_role\"}')").unwrap();
    }

    #[pg_test(error = "changing the email or password needs the current password")]
    fn password_change_needs_the_current_password() {
        let r = sign_up("chg@example.com");
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            r["access_token"].as_str().unwrap()
        ))
        .unwrap();
        Spi::run("SELECT auth.update_user('{\"password\": \"Another-password-7\"}')").unwrap();
    }

    #[pg_test]
    fn admin_functions_record_events() {
        let id = Spi::get_one::<pgrx::Uuid>(&format!(
            "SELECT auth.create_user('adm@example.com', '{PASSWORD}', 'editor')"
        ))
        .unwrap()
        .unwrap();
        Spi::run(&format!("SELECT auth.set_role('{id}', 'moderator')")).unwrap();
        Spi::run(&format!("SELECT auth.revoke_sessions('{id}')")).unwrap();
        Spi::run(&format!("SELECT auth.delete_user('{id}')")).unwrap();
        let events =
            Spi::get_one::<Vec<String>>("SELECT array_agg(event ORDER BY id) FROM auth.events")
                .unwrap()
                .unwrap();
        assert_eq!(
            events,
            [
                "admin.user_create",
                "admin.role_change",
                "admin.user_delete"
            ]
        );
    }

    #[pg_test]
    fn api_keys_authenticate_and_can_be_revoked() {
        let key = Spi::get_one::<String>("SELECT auth.issue_api_key('service_role', 'ci')")
            .unwrap()
            .unwrap();
        assert!(authenticates(&key));
        Spi::run("SELECT auth.revoke_api_key((SELECT jti FROM auth.api_keys WHERE name = 'ci'))")
            .unwrap();
        assert!(!authenticates(&key));
    }

    #[pg_test]
    fn an_expired_session_refuses_refresh_and_access() {
        let r = sign_up("exp@example.com");
        Spi::run("UPDATE auth.sessions SET expires_at = now() - interval '1 second'").unwrap();
        let refresh = json(&format!(
            "SELECT auth.refresh('{}')",
            r["refresh_token"].as_str().unwrap()
        ));
        assert_eq!(refresh["error"]["code"], "INVALID_REFRESH_TOKEN");
        assert!(!authenticates(r["access_token"].as_str().unwrap()));
    }

    #[pg_test]
    fn purge_drops_only_blacklist_rows_past_their_expiry() {
        Spi::run("INSERT INTO auth.revoked_tokens (jti, expires_at) VALUES ('old', now() - interval '1 minute'), ('live', now() + interval '1 minute')").unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT auth.purge_expired()").unwrap(),
            Some(1)
        );
        let left =
            Spi::get_one::<String>("SELECT string_agg(jti, ',') FROM auth.revoked_tokens").unwrap();
        assert_eq!(left.as_deref(), Some("live"));
    }

    #[pg_test]
    fn a_reset_clears_the_lockout() {
        sign_up("unlockme@example.com");
        Spi::run("SELECT auth.set_setting('lockout_type', 'email')").unwrap();
        for _ in 0..5 {
            sign_in("unlockme@example.com", "Wrong-password-99", "10.1.1.1");
        }
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM auth.lockouts").unwrap(),
            Some(1)
        );
        let token =
            Spi::get_one::<String>("SELECT auth.create_password_reset('unlockme@example.com')")
                .unwrap()
                .unwrap();
        json(&format!(
            "SELECT auth.reset_password('{token}', 'Unlocked-password-5')"
        ));
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM auth.lockouts").unwrap(),
            Some(0)
        );
        let r = sign_in("unlockme@example.com", "Unlocked-password-5", "10.1.1.1");
        assert!(r.get("access_token").is_some(), "{r}");
    }

    #[pg_test]
    fn wrong_current_passwords_are_counted_and_lock() {
        let r = sign_up("cur@example.com");
        let token = r["access_token"].as_str().unwrap().to_owned();
        Spi::run("SELECT auth.set_setting('lockout_type', 'email')").unwrap();
        for i in 0..5 {
            Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
            let r = json(&format!(
                "SELECT auth.update_user('{{\"password\": \"New-password-77\", \"current_password\": \"Guess-{i}-password\"}}')"
            ));
            assert_eq!(r["error"]["code"], "INVALID_CREDENTIALS", "{r}");
            Spi::run("RESET ROLE").unwrap();
        }
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM auth.lockouts").unwrap(),
            Some(1)
        );
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
        let r = json(&format!(
            "SELECT auth.update_user('{{\"password\": \"New-password-77\", \"current_password\": \"{PASSWORD}\"}}')"
        ));
        assert_eq!(
            r["error"]["code"], "INVALID_CREDENTIALS",
            "locked, even with the right password: {r}"
        );
    }

    #[pg_test]
    fn a_challenge_dies_after_max_attempts() {
        sign_up("cap@example.com");
        Spi::run("SELECT auth.set_setting('lockout_type', 'ip')").unwrap();
        let uid =
            Spi::get_one::<pgrx::Uuid>("SELECT id FROM auth.users WHERE email = 'cap@example.com'")
                .unwrap()
                .unwrap();
        Spi::run(&format!(
            "INSERT INTO auth.mfa_factors (user_id, secret_encrypted, status) VALUES ('{uid}', fluxbase.encrypt_secret(fluxbase.totp_new_secret()), 'verified')"
        ))
        .unwrap();
        let challenge = sign_in("cap@example.com", PASSWORD, "10.9.9.1");
        let token = challenge["mfa_token"].as_str().unwrap().to_owned();
        for i in 0..5 {
            // A different IP each time, so only the per-challenge cap can stop this.
            json(&format!(
                "SELECT auth.mfa_verify('{token}', '000000', '10.9.8.{i}')"
            ));
        }
        let r = json(&format!(
            "SELECT auth.mfa_verify('{token}', '000000', '10.9.7.1')"
        ));
        assert_eq!(r["error"]["code"], "INVALID_MFA_TOKEN", "{r}");
    }

    #[pg_test(error = "user_metadata must be nested at most 8 levels deep")]
    fn deep_metadata_is_refused() {
        Spi::run(&format!(
            "SELECT auth.sign_up('deep@example.com', '{PASSWORD}', '{{\"a\":{{\"a\":{{\"a\":{{\"a\":{{\"a\":{{\"a\":{{\"a\":{{\"a\":{{\"a\":1}}}}}}}}}}}}}}}}}}')"
        ))
        .unwrap();
    }

    #[pg_test]
    fn a_ban_kills_existing_tokens_for_good() {
        let r = sign_up("unban@example.com");
        let token = r["access_token"].as_str().unwrap().to_owned();
        Spi::run("SELECT auth.ban_user((SELECT id FROM auth.users WHERE email = 'unban@example.com'), '1 day')").unwrap();
        Spi::run("SELECT auth.ban_user((SELECT id FROM auth.users WHERE email = 'unban@example.com'), NULL)").unwrap();
        assert!(!authenticates(&token), "lifting a ban revived an old token");
    }

    #[pg_test]
    fn every_definer_function_pins_search_path_with_pg_temp_last() {
        // Without pg_temp listed last, a caller's temporary domain named `text` would be found
        // first and its check would run as the function's owner (the superuser).
        let unsafe_functions = Spi::get_one::<Vec<String>>(
            "SELECT coalesce(array_agg(p.oid::regprocedure::text), '{}') FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname IN ('auth', 'fluxbase') AND p.prosecdef \
               AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)",
        )
        .unwrap()
        .unwrap();
        assert!(unsafe_functions.is_empty(), "{unsafe_functions:?}");
        let definers = Spi::get_one::<i64>(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'auth' AND p.prosecdef",
        )
        .unwrap()
        .unwrap();
        assert!(definers > 20, "{definers}");
    }
}
