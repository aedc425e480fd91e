//! In-database tests of TOTP 2FA (issue 3): enrolment, encryption at rest, the two-step
//! sign-in, replay refusal, backup codes, lockout on wrong codes, admin enrolment.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use pgrx::JsonB;
    use serde_json::Value;

    use crate::tests_auth_kernel::tests::authenticates;

    const PASSWORD: &str = "Correct-horse-battery-1";

    fn json(sql: &str) -> Value {
        Spi::get_one::<JsonB>(sql)
            .unwrap()
            .expect("a jsonb result")
            .0
    }

    fn code_for(secret: &str) -> String {
        Spi::get_one::<String>(&format!("SELECT fluxbase.totp_current_code('{secret}')"))
            .unwrap()
            .unwrap()
    }

    /// Signs up `email`, enrols and enables TOTP as that user; returns (secret, backup codes).
    fn enrol(email: &str) -> (String, Vec<String>) {
        let (secret, codes, _) = enrol_with_code(email);
        (secret, codes)
    }

    /// As enrol, and also the code that enabled 2FA.
    fn enrol_with_code(email: &str) -> (String, Vec<String>, String) {
        let r = json(&format!("SELECT auth.sign_up('{email}', '{PASSWORD}')"));
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            r["access_token"].as_str().unwrap()
        ))
        .unwrap();
        let setup = json("SELECT auth.mfa_setup()");
        assert_eq!(setup["type"], "totp");
        let secret = setup["totp"]["secret"].as_str().unwrap().to_owned();
        assert!(setup["totp"]["uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/"));
        Spi::run("RESET ROLE").unwrap();
        let code = code_for(&secret);
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            r["access_token"].as_str().unwrap()
        ))
        .unwrap();
        let enabled = json(&format!("SELECT auth.mfa_enable('{code}', '{PASSWORD}')"));
        Spi::run("RESET ROLE").unwrap();
        let codes: Vec<String> = enabled["backup_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(codes.len(), 10);
        (secret, codes, code)
    }

    /// Enabling 2FA ends the account's other sessions, which the password alone opened (a
    /// red-team review kept one refreshing for days); the enabling session stays.
    #[pg_test]
    fn enabling_2fa_ends_the_other_password_only_sessions() {
        let other = json(&format!(
            "SELECT auth.sign_up('twofa@example.com', '{PASSWORD}')"
        ));
        let other = other["access_token"].as_str().unwrap().to_owned();
        let this = json(&format!(
            "SELECT auth.sign_in('twofa@example.com', '{PASSWORD}', '127.0.0.1')"
        ));
        let this = this["access_token"].as_str().unwrap().to_owned();
        assert!(authenticates(&other) && authenticates(&this));
        Spi::run(&format!("SELECT auth.authenticate('{this}')")).unwrap();
        let setup = json("SELECT auth.mfa_setup()");
        let secret = setup["totp"]["secret"].as_str().unwrap().to_owned();
        Spi::run("RESET ROLE").unwrap();
        let code = code_for(&secret);
        Spi::run(&format!("SELECT auth.authenticate('{this}')")).unwrap();
        json(&format!("SELECT auth.mfa_enable('{code}', '{PASSWORD}')"));
        Spi::run("RESET ROLE").unwrap();
        assert!(!authenticates(&other), "the other session still works");
        assert!(authenticates(&this), "the enabling session ended");
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT revoked_reason FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id \
                 WHERE u.email = 'twofa@example.com' AND s.revoked_at IS NOT NULL"
            )
            .unwrap()
            .as_deref(),
            Some("2fa_enabled")
        );
    }

    fn challenge(email: &str) -> String {
        let r = json(&format!(
            "SELECT auth.sign_in('{email}', '{PASSWORD}', '127.0.0.1')"
        ));
        assert_eq!(r["requires_2fa"], true, "{r}");
        assert!(
            r.get("access_token").is_none(),
            "no token before the second step: {r}"
        );
        r["mfa_token"].as_str().unwrap().to_owned()
    }

    fn forget_last_step(email: &str) {
        // Simulates the next 30-second window without sleeping.
        Spi::run(&format!(
            "UPDATE auth.mfa_factors SET last_used_step = last_used_step - 10 \
             WHERE user_id = (SELECT id FROM auth.users WHERE email = '{email}')"
        ))
        .unwrap();
    }

    #[pg_test]
    fn secrets_are_encrypted_at_rest() {
        let (secret, _) = enrol("enc@example.com");
        let stored = Spi::get_one::<String>("SELECT secret_encrypted FROM auth.mfa_factors")
            .unwrap()
            .unwrap();
        assert!(!stored.contains(&secret));
        let decrypted =
            Spi::get_one::<String>(&format!("SELECT fluxbase.decrypt_secret('{stored}')"))
                .unwrap()
                .unwrap();
        assert_eq!(decrypted, secret);
        let status = Spi::get_one::<JsonB>("SELECT auth.mfa_status()").unwrap();
        assert!(status.is_some());
    }

    #[pg_test]
    fn a_code_works_once_even_inside_its_window() {
        // Each replay sends the very code used before (a fresh code_for() could belong to the
        // next time step, if one began meanwhile, and rightly pass).
        let (secret, _, enabling_code) = enrol_with_code("replay@example.com");
        let token = challenge("replay@example.com");
        // The code just used to enable 2FA: refused.
        let r = json(&format!(
            "SELECT auth.mfa_verify('{token}', '{enabling_code}')"
        ));
        assert_eq!(r["error"]["code"], "INVALID_MFA_CODE", "{r}");
        forget_last_step("replay@example.com");
        let used = code_for(&secret);
        let ok = json(&format!("SELECT auth.mfa_verify('{token}', '{used}')"));
        assert!(ok.get("access_token").is_some(), "{ok}");
        let token2 = challenge("replay@example.com");
        let again = json(&format!("SELECT auth.mfa_verify('{token2}', '{used}')"));
        assert_eq!(
            again["error"]["code"], "INVALID_MFA_CODE",
            "a replayed code passed: {again}"
        );
        // And the challenge itself is single-use.
        forget_last_step("replay@example.com");
        let reused = json(&format!(
            "SELECT auth.mfa_verify('{token}', '{}')",
            code_for(&secret)
        ));
        assert_eq!(reused["error"]["code"], "INVALID_MFA_TOKEN");
    }

    #[pg_test]
    fn the_second_step_gives_aal2() {
        let (secret, _) = enrol("aal@example.com");
        let token = challenge("aal@example.com");
        forget_last_step("aal@example.com");
        let ok = json(&format!(
            "SELECT auth.mfa_verify('{token}', '{}')",
            code_for(&secret)
        ));
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            ok["access_token"].as_str().unwrap()
        ))
        .unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.aal()")
                .unwrap()
                .as_deref(),
            Some("aal2")
        );
        let amr = Spi::get_one::<JsonB>("SELECT auth.jwt()->'amr'")
            .unwrap()
            .unwrap()
            .0;
        assert_eq!(amr, serde_json::json!(["password", "totp"]));
    }

    #[pg_test]
    fn no_second_step_without_the_password_step() {
        let (secret, _) = enrol("skip@example.com");
        forget_last_step("skip@example.com");
        for fake in [
            "",
            "not-a-token",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let r = json(&format!(
                "SELECT auth.mfa_verify('{fake}', '{}')",
                code_for(&secret)
            ));
            assert_eq!(r["error"]["code"], "INVALID_MFA_TOKEN", "{fake}: {r}");
        }
    }

    #[pg_test]
    fn backup_codes_work_once() {
        let (_, codes) = enrol("backup@example.com");
        let token = challenge("backup@example.com");
        let ok = json(&format!(
            "SELECT auth.mfa_verify('{token}', '{}')",
            codes[0].to_lowercase()
        ));
        assert!(ok.get("access_token").is_some(), "{ok}");
        let token = challenge("backup@example.com");
        let again = json(&format!(
            "SELECT auth.mfa_verify('{token}', '{}')",
            codes[0]
        ));
        assert_eq!(again["error"]["code"], "INVALID_MFA_CODE");
        let stored = Spi::get_one::<i64>(&format!(
            "SELECT count(*) FROM auth.mfa_backup_codes WHERE encode(code_hash, 'escape') LIKE '%{}%'",
            codes[1]
        ))
        .unwrap();
        assert_eq!(stored, Some(0), "backup codes must be stored hashed");
    }

    #[pg_test]
    fn wrong_codes_count_toward_the_lockout() {
        let (secret, _) = enrol("guess@example.com");
        let token = challenge("guess@example.com");
        for _ in 0..5 {
            let r = json(&format!(
                "SELECT auth.mfa_verify('{token}', '000000', '203.0.113.9')"
            ));
            assert_eq!(r["error"]["code"], "INVALID_MFA_CODE");
        }
        forget_last_step("guess@example.com");
        let r = json(&format!(
            "SELECT auth.mfa_verify('{token}', '{}', '203.0.113.9')",
            code_for(&secret)
        ));
        assert!(
            r.get("error").is_some(),
            "the right code after 5 wrong ones passed: {r}"
        );
        // The e-mail's key is locked by the wrong codes: the password step is refused too.
        let again = json(&format!(
            "SELECT auth.sign_in('guess@example.com', '{PASSWORD}', '127.0.0.1')"
        ));
        assert_eq!(again["error"]["code"], "INVALID_CREDENTIALS", "{again}");
    }

    #[pg_test]
    fn admins_without_2fa_can_only_enrol() {
        // Only the extension's own functions read whom an enrolment-only session enrols.
        for internal in [
            "fluxbase.enrolment_claims()",
            "auth.mfa_user()",
            "auth.mfa_email()",
        ] {
            for role in ["anon", "authenticated", "service_role"] {
                assert_eq!(
                    Spi::get_one::<bool>(&format!(
                        "SELECT has_function_privilege('{role}', '{internal}', 'EXECUTE')"
                    ))
                    .unwrap(),
                    Some(false),
                    "{role} may call {internal}"
                );
            }
        }
        Spi::run(&format!(
            "SELECT auth.create_user('boss@example.com', '{PASSWORD}', 'admin')"
        ))
        .unwrap();
        let r = json(&format!(
            "SELECT auth.sign_in('boss@example.com', '{PASSWORD}')"
        ));
        assert_eq!(r["mfa_enrollment_required"], true, "{r}");
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            r["access_token"].as_str().unwrap()
        ))
        .unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT current_user::text")
                .unwrap()
                .as_deref(),
            Some("anon")
        );
        // It must not be the admin to any policy: no uid, the role it runs as, no claims.
        assert!(Spi::get_one::<pgrx::Uuid>("SELECT auth.uid()")
            .unwrap()
            .is_none());
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.role()")
                .unwrap()
                .as_deref(),
            Some("anon")
        );
        assert!(Spi::get_one::<pgrx::JsonB>("SELECT auth.jwt()")
            .unwrap()
            .is_none());
        // Only the extension's own enrolment functions see whom it enrols.
        let setup = json("SELECT auth.mfa_setup()");
        assert_eq!(setup["type"], "totp");
        assert!(
            setup["totp"]["uri"].as_str().unwrap().contains("boss"),
            "{setup}"
        );
        let pending = json("SELECT auth.mfa_status()");
        assert_eq!(pending["pending"], true, "{pending}");
    }

    /// An aal2 session of `email`, made directly (as after a completed second step).
    fn aal2_token(email: &str) -> String {
        Spi::get_one::<String>(&format!(
            "SELECT (auth.start_session(u, 'aal2', '[\"password\",\"totp\"]'::jsonb, NULL))->>'access_token' \
             FROM auth.users u WHERE email = '{email}'"
        ))
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn disabling_needs_a_current_code() {
        enrol("dis@example.com");
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            aal2_token("dis@example.com")
        ))
        .unwrap();
        let r = json(&format!("SELECT auth.mfa_disable('{PASSWORD}', '000000')"));
        assert_eq!(r["error"]["code"], "INVALID_CREDENTIALS", "{r}");
        Spi::run("RESET ROLE").unwrap();
        let still = Spi::get_one::<bool>(
            "SELECT auth.has_mfa(id) FROM auth.users WHERE email = 'dis@example.com'",
        )
        .unwrap();
        assert_eq!(still, Some(true));
        // Wrong codes count toward the lockout, as wrong passwords do (found by a review).
        assert_eq!(
            Spi::get_one::<i32>(
                "SELECT failures FROM auth.login_attempts WHERE key = 'email:dis@example.com'"
            )
            .unwrap(),
            Some(1)
        );
    }

    #[pg_test]
    fn disabling_with_password_and_code_turns_2fa_off() {
        let (_, codes) = enrol("off@example.com");
        Spi::run(&format!(
            "SELECT auth.authenticate('{}')",
            aal2_token("off@example.com")
        ))
        .unwrap();
        let r = json(&format!(
            "SELECT auth.mfa_disable('{PASSWORD}', '{}')",
            codes[3]
        ));
        assert_eq!(r["success"], true);
        Spi::run("RESET ROLE").unwrap();
        let signed = json(&format!(
            "SELECT auth.sign_in('off@example.com', '{PASSWORD}')"
        ));
        assert!(signed.get("access_token").is_some(), "{signed}");
    }

    #[pg_test(error = "this operation needs a session verified with 2FA (aal2)")]
    fn sensitive_operations_need_aal2_once_2fa_is_on() {
        enrol("sens@example.com");
        let aal1 = Spi::get_one::<String>(
            "SELECT (auth.start_session(u, 'aal1', '[\"password\"]'::jsonb, NULL))->>'access_token' \
             FROM auth.users u WHERE email = 'sens@example.com'",
        )
        .unwrap()
        .unwrap();
        Spi::run(&format!("SELECT auth.authenticate('{aal1}')")).unwrap();
        Spi::run(&format!(
            "SELECT auth.update_user('{{\"password\": \"Another-password-9\", \"current_password\": \"{PASSWORD}\"}}')"
        ))
        .unwrap();
    }
}
