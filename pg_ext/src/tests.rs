//! In-database tests (`cargo pgrx test pg15`): each runs inside a transaction of a real
//! PostgreSQL 15 with the extension preloaded, as a superuser.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn sign_up(email: &str) -> String {
        Spi::get_one::<String>(&format!(
            "SELECT auth.sign_up('{email}', 'Correct-horse-battery-1', '{{}}')->>'access_token'"
        ))
        .unwrap()
        .unwrap()
    }

    /// Signs a token with the cluster's real secret but claims chosen by the test.
    fn sign(claims_sql: &str) -> String {
        Spi::get_one::<String>(&format!("SELECT fluxbase.sign_token({claims_sql})"))
            .unwrap()
            .unwrap()
    }

    fn valid_claims(overrides: &str) -> String {
        format!(
            "jsonb_build_object('sub', gen_random_uuid(), 'role', 'authenticated', \
             'iat', extract(epoch from now())::bigint, 'exp', extract(epoch from now())::bigint + 600, \
             'iss', 'fluxbase', 'aud', 'authenticated', 'jti', gen_random_uuid(), 'token_type', 'access') || {overrides}"
        )
    }

    #[pg_test]
    fn sign_up_token_authenticates_as_that_user() {
        let token = sign_up("Alice@Example.COM");
        let stored = Spi::get_one::<String>(
            "SELECT id::text FROM auth.users WHERE email = 'alice@example.com'",
        )
        .unwrap()
        .unwrap();
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
        let uid = Spi::get_one::<String>("SELECT auth.uid()::text")
            .unwrap()
            .unwrap();
        assert_eq!(uid, stored);
        assert_eq!(
            Spi::get_one::<String>("SELECT current_user::text")
                .unwrap()
                .unwrap(),
            "authenticated"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.email()")
                .unwrap()
                .unwrap(),
            "alice@example.com"
        );
    }

    #[pg_test]
    fn no_token_means_anon_and_no_uid() {
        assert_eq!(
            Spi::get_one::<bool>("SELECT auth.uid() IS NULL").unwrap(),
            Some(true)
        );
        Spi::run("SELECT auth.authenticate(NULL)").unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT current_user::text")
                .unwrap()
                .unwrap(),
            "anon"
        );
        assert_eq!(
            Spi::get_one::<bool>("SELECT auth.uid() IS NULL").unwrap(),
            Some(true)
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.role()")
                .unwrap()
                .unwrap(),
            "anon"
        );
    }

    #[pg_test]
    fn hand_set_claims_do_not_change_uid() {
        sign_up("bob@example.com");
        Spi::run("SELECT set_config('request.jwt.claims', json_build_object('sub', (SELECT id FROM auth.users LIMIT 1), 'role', 'authenticated')::text, true)").unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT auth.uid() IS NULL").unwrap(),
            Some(true)
        );
    }

    #[pg_test]
    fn service_role_claim_maps_to_service_role() {
        let token = sign(&format!(
            "({}) - 'sub'",
            valid_claims("jsonb_build_object('role', 'service_role')")
        ));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT current_user::text")
                .unwrap()
                .unwrap(),
            "service_role"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.role()")
                .unwrap()
                .unwrap(),
            "service_role"
        );
    }

    #[pg_test]
    fn custom_role_claim_maps_to_authenticated_and_is_kept() {
        let token = sign(&format!(
            "({}) - 'sub'",
            valid_claims("jsonb_build_object('role', 'editor')")
        ));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
        assert_eq!(
            Spi::get_one::<String>("SELECT current_user::text")
                .unwrap()
                .unwrap(),
            "authenticated"
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT auth.role()")
                .unwrap()
                .unwrap(),
            "editor"
        );
    }

    #[pg_test(error = "invalid token: the token's signature does not match")]
    fn tampered_signature_is_refused() {
        let token = sign(&valid_claims("'{}'"));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let sig = parts[2].clone();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        parts[2] = format!("{flipped}{}", &sig[1..]);
        Spi::run(&format!("SELECT auth.authenticate('{}')", parts.join("."))).unwrap();
    }

    #[pg_test(error = "invalid token: the token has expired")]
    fn expired_token_is_refused() {
        let token = sign(&valid_claims(
            "jsonb_build_object('exp', extract(epoch from now())::bigint - 10)",
        ));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
    }

    #[pg_test(error = "invalid token: the token is not valid yet (nbf is in the future)")]
    fn not_yet_valid_token_is_refused() {
        let token = sign(&valid_claims(
            "jsonb_build_object('nbf', extract(epoch from now())::bigint + 300)",
        ));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
    }

    #[pg_test(error = "invalid token: the token is meant for another audience")]
    fn wrong_audience_is_refused() {
        let token = sign(&valid_claims("jsonb_build_object('aud', 'somebody-else')"));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
    }

    #[pg_test(error = "invalid token: the token was issued by another issuer")]
    fn wrong_issuer_is_refused() {
        let token = sign(&valid_claims("jsonb_build_object('iss', 'evil')"));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
    }

    #[pg_test(error = "invalid token: only an access token can authenticate a request")]
    fn refresh_typed_token_is_refused() {
        let token = sign(&valid_claims("jsonb_build_object('token_type', 'refresh')"));
        Spi::run(&format!("SELECT auth.authenticate('{token}')")).unwrap();
    }

    #[pg_test(error = "invalid token: the token is malformed")]
    fn alg_none_is_refused() {
        // header {"alg":"none","typ":"JWT"}, a valid-looking payload, no signature
        let token = sign(&valid_claims("'{}'"));
        let payload = token.split('.').nth(1).unwrap();
        Spi::run(&format!(
            "SELECT auth.authenticate('eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.')"
        ))
        .unwrap();
    }

    #[pg_test(error = "invalid token: the token is signed with an algorithm that is not accepted")]
    fn hs512_is_refused() {
        // header {"alg":"HS512","typ":"JWT"}: the server, not the token, picks the algorithm
        let token = sign(&valid_claims("'{}'"));
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[0] = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9";
        Spi::run(&format!("SELECT auth.authenticate('{}')", parts.join("."))).unwrap();
    }

    #[pg_test]
    fn token_errors_carry_sqlstate_28000() {
        let state = Spi::get_one::<String>(
            "DO $$ BEGIN PERFORM auth.authenticate('not.a.token'); \
             EXCEPTION WHEN invalid_authorization_specification THEN \
               PERFORM set_config('fluxbase_test.state', 'caught-28000', true); END $$; \
             SELECT current_setting('fluxbase_test.state')",
        );
        // SPI runs the two statements; get_one returns the last one's value.
        assert_eq!(state.unwrap().as_deref(), Some("caught-28000"));
    }

    #[pg_test]
    fn passwords_are_argon2id_with_owasp_parameters() {
        sign_up("carol@example.com");
        let hash = Spi::get_one::<String>(
            "SELECT encrypted_password FROM auth.users WHERE email = 'carol@example.com'",
        )
        .unwrap()
        .unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(!hash.contains("Correct-horse"));
    }

    #[pg_test]
    fn wrong_password_and_unknown_email_get_the_same_failure() {
        sign_up("dave@example.com");
        let wrong = Spi::get_one::<pgrx::JsonB>(
            "SELECT auth.sign_in('dave@example.com', 'Not-the-password-1')",
        )
        .unwrap()
        .unwrap()
        .0;
        let unknown = Spi::get_one::<pgrx::JsonB>(
            "SELECT auth.sign_in('nobody@example.com', 'Not-the-password-1')",
        )
        .unwrap()
        .unwrap()
        .0;
        assert_eq!(wrong["error"]["code"], "INVALID_CREDENTIALS");
        assert_eq!(wrong, unknown);
    }

    #[pg_test]
    fn two_spellings_are_one_account() {
        sign_up("Erin@Example.com");
        let token = Spi::get_one::<String>("SELECT auth.sign_in('  ERIN@example.COM ', 'Correct-horse-battery-1')->>'access_token'")
            .unwrap();
        assert!(token.is_some());
    }

    #[pg_test(error = "unable to sign up with this email and password")]
    fn duplicate_sign_up_is_refused_without_saying_why() {
        sign_up("frank@example.com");
        sign_up("FRANK@example.com");
    }

    #[pg_test]
    fn token_response_never_contains_the_hash() {
        let body = Spi::get_one::<pgrx::JsonB>(
            "SELECT auth.sign_up('gina@example.com', 'Correct-horse-battery-1', '{}')",
        )
        .unwrap()
        .unwrap()
        .0;
        let text = body.to_string();
        assert!(!text.contains("argon2"), "{text}");
        assert!(!text.contains("encrypted_password"), "{text}");
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 900);
        assert_eq!(body["user"]["email"], "gina@example.com");
    }
}
