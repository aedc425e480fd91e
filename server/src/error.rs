//! The one error shape every response uses, and the mapping from PostgreSQL errors to it.
//!
//! Why one type: a client (and the black-box tests) must be able to rely on
//! `{"error", "message", "code", "details", "hint", "request_id"}` for *every* failure —
//! extractor rejections, unknown routes, database errors and panics alike. Handlers return
//! [`ApiError`]; the request middleware in [`crate::observability`] fills in the request id
//! (an `IntoResponse` impl cannot see the request) and turns any stray non-shaped error
//! response into this shape too.
//!
//! Why messages are chosen here and not passed through: a PostgreSQL message can contain SQL,
//! a constraint's row contents (`Key (email)=(a@b.c) already exists`) or a token's failure
//! reason. Only messages we wrote ourselves for users (SQLSTATE class `FB`, and `P0001` from
//! the application's own `RAISE`) reach the client verbatim.
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::borrow::Cow;

/// An error as the API reports it. `code` is a stable UPPER_SNAKE identifier clients may match
/// on; `message` is a human sentence that never contains SQL or row data; `details` is
/// structured help for the client (e.g. the broken password rules), `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    /// Mostly a literal; owned only for failure codes the database chose (see
    /// [`from_failure_object`]).
    pub code: Cow<'static, str>,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "Method not allowed",
        )
    }

    /// A request body over `server.max_body_bytes`.
    pub fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            "The request body is too large",
        )
    }

    /// No credentials where they are required.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Authentication required",
        )
    }

    /// A token was presented and refused. Deliberately generic: the reason (expired, bad
    /// signature, revoked…) is logged, never sent, so a client learns nothing to probe with.
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_TOKEN",
            "Invalid or expired token",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_ERROR",
            "Internal server error",
        )
    }

    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "Database unavailable",
        )
    }

    /// The JSON body for this error under `request_id`.
    pub fn body(&self, request_id: &str) -> Value {
        json!({
            "error": self.message,
            "message": self.message,
            "code": self.code,
            "details": self.details.clone().unwrap_or(Value::Null),
            "hint": Value::Null,
            "request_id": request_id,
        })
    }

    /// A complete response for this error under `request_id`.
    pub fn to_response(&self, request_id: &str) -> Response {
        let mut response = (self.status, axum::Json(self.body(request_id))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: tell the client which scheme is expected.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    /// Renders with an empty request id and attaches the error itself as a response
    /// extension; the request middleware re-renders it with the real id.
    fn into_response(self) -> Response {
        let mut response = self.to_response("");
        response.extensions_mut().insert(self);
        response
    }
}

/// What the database said, reduced to what the mapping needs (so it can be unit-tested
/// without a `tokio_postgres::Error`, which cannot be constructed outside that crate).
#[derive(Debug, Clone, Copy)]
pub struct DbFailure<'a> {
    pub sqlstate: &'a str,
    pub message: &'a str,
    /// The error's DETAIL; for FB422 a JSON array of the broken password rules.
    pub detail: Option<&'a str>,
    pub column: Option<&'a str>,
    pub constraint: Option<&'a str>,
}

/// Maps a PostgreSQL error to the API error. `token_given` tells a refused anonymous request
/// (401: authenticate and retry) from a refused signed-in one (403: you may not).
pub fn map_db_failure(f: DbFailure<'_>, token_given: bool) -> ApiError {
    use StatusCode as S;
    let code = f.sqlstate;
    match code {
        "28000" => ApiError::invalid_token(),
        "28P01" => ApiError::new(
            S::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
            "Invalid login credentials",
        ),
        "42501" if token_given => ApiError::new(S::FORBIDDEN, "FORBIDDEN", "Permission denied"),
        "42501" => ApiError::new(S::UNAUTHORIZED, "UNAUTHORIZED", "Permission denied"),
        "23505" => ApiError::new(
            S::CONFLICT,
            "CONFLICT",
            "A row with the same unique value already exists",
        ),
        "23503" => ApiError::new(
            S::CONFLICT,
            "FOREIGN_KEY_VIOLATION",
            "The row references a row that does not exist, or is still referenced",
        ),
        "23502" => ApiError::bad_request(
            "CONSTRAINT_VIOLATION",
            match f.column {
                // A column name is schema, not row contents.
                Some(column) => format!("A value is required for column \"{column}\""),
                None => "A required value is missing".to_owned(),
            },
        ),
        "23514" => ApiError::bad_request(
            "CONSTRAINT_VIOLATION",
            match f.constraint {
                Some(constraint) => {
                    format!("A value violates the check constraint \"{constraint}\"")
                }
                None => "A value violates a check constraint".to_owned(),
            },
        ),
        "23P01" => ApiError::new(
            S::CONFLICT,
            "CONFLICT",
            "The row conflicts with an existing row",
        ),
        "428C9" => ApiError::bad_request(
            "CONSTRAINT_VIOLATION",
            "A generated column cannot be written",
        ),
        "25006" => ApiError::new(
            S::METHOD_NOT_ALLOWED,
            "READ_ONLY_TRANSACTION",
            "This request cannot write data; use POST, PATCH or DELETE",
        ),
        "P0001" => ApiError::bad_request("RAISED", f.message),
        // Raised when the schema changed after the cache was loaded.
        "42P01" => ApiError::new(S::NOT_FOUND, "TABLE_NOT_FOUND", "Table not found"),
        "42703" => ApiError::bad_request("UNKNOWN_COLUMN", "Unknown column"),
        "42883" => ApiError::bad_request(
            "UNSUPPORTED_OPERATION",
            "An operator or function is not available for this column's type",
        ),
        "57014" => ApiError::new(
            S::GATEWAY_TIMEOUT,
            "STATEMENT_TIMEOUT",
            "The statement took too long",
        ),
        // A concurrent transaction won: the request may simply be retried.
        "40001" | "40P01" => ApiError::new(
            S::CONFLICT,
            "SERIALIZATION_FAILURE",
            "The request conflicted with a concurrent change; retry it",
        ),
        "42P10" => ApiError::bad_request(
            "INVALID_PARAMETER",
            "The on_conflict columns have no unique or primary-key constraint",
        ),
        // ON CONFLICT DO UPDATE reaching the same row twice in one request.
        "21000" => ApiError::new(
            S::CONFLICT,
            "CONFLICT",
            "The request changes the same row twice",
        ),
        "42804" | "42846" => ApiError::bad_request(
            "INVALID_VALUE",
            "A value or operator does not fit the column's type",
        ),
        "0A000" => ApiError::bad_request(
            "UNSUPPORTED_OPERATION",
            "The operation is not supported for this column or relation",
        ),
        // Class 54, program limits: 54001 stack depth, 54011 more than 1664 columns in a
        // select list (`select=id,id,…` thousands of times), 54023 too many arguments. The
        // request is too big, not the server broken.
        _ if code.starts_with("54") => {
            ApiError::bad_request("QUERY_TOO_COMPLEX", "The query is too complex")
        }
        // An object named by a value does not exist: a text search configuration
        // (`fts(nonexistent).x`), a regclass, a collation. The name is the client's own.
        "42704" => ApiError::bad_request(
            "INVALID_VALUE",
            "A value names something that does not exist (e.g. a text search configuration)",
        ),
        // DDL a function runs that PostgreSQL refuses (42P16: e.g. two primary keys; 42611:
        // a bad column definition) or that finds its object already there (42P07 table,
        // 42710 object, 42723 function, 42P06 schema): the function's own doing with what it
        // was given, like a raised error — not the server broken. 42701 (a column named twice)
        // is also a column list's mistake (`INSERT (a, a)`), so it says only that.
        "42P16" | "42611" => ApiError::bad_request(
            "INVALID_DEFINITION",
            "The function tried to define an object PostgreSQL refuses",
        ),
        "42701" => ApiError::bad_request("DUPLICATE_COLUMN", "A column is named twice"),
        "42P07" | "42710" | "42723" | "42P06" => ApiError::new(
            S::CONFLICT,
            "ALREADY_EXISTS",
            "The function tried to create an object that already exists",
        ),
        // to_tsquery refusing the query text of an `fts` filter (`fts.a &&&`): the client's
        // own text. Any other 42601 would be SQL the server built, a bug: it stays a 500.
        "42601" if f.message.contains("in tsquery") => ApiError::bad_request(
            "INVALID_VALUE",
            "The full-text search query is not valid tsquery syntax (plfts, phfts and wfts take plain text)",
        ),
        "42P18" | "42725" => ApiError::bad_request(
            "UNSUPPORTED_OPERATION",
            "An operator is not available or ambiguous for this column's type",
        ),
        // Class 53, insufficient resources (too many connections, out of memory, disk full):
        // the database cannot serve now, the request itself may be fine.
        _ if code.starts_with("53") => ApiError::database_unavailable(),
        // Our own, user-facing messages (written in sql/extension for clients).
        "FB400" => ApiError::bad_request("VALIDATION_ERROR", f.message),
        "FB409" => ApiError::bad_request("SIGNUP_FAILED", f.message),
        "FB422" => ApiError::bad_request("WEAK_PASSWORD", f.message)
            .with_details(json!({ "reasons": password_reasons(f.detail) })),
        "FB401" => ApiError::new(S::UNAUTHORIZED, "INVALID_CODE", f.message),
        "FB403" => ApiError::new(S::FORBIDDEN, "INSUFFICIENT_ASSURANCE", f.message),
        "FB404" => ApiError::new(S::NOT_FOUND, "NOT_FOUND", f.message),
        _ if code.starts_with("FB") => ApiError::bad_request("BAD_REQUEST", f.message),
        // Class 22: a value that does not fit. The DB message may quote a stored value (a
        // cast in a view), so only the kind of problem is reported.
        _ if code.starts_with("22") => {
            ApiError::bad_request("INVALID_VALUE", invalid_value_message(code))
        }
        // Class 08: the connection broke.
        _ if code.starts_with("08") => ApiError::database_unavailable(),
        _ => ApiError::internal(),
    }
}

/// The broken password rules of an FB422, from its DETAIL (a JSON array of sentences). A
/// DETAIL that is not such an array gives no reasons rather than an error: the message still
/// says what is wrong.
fn password_reasons(detail: Option<&str>) -> Vec<String> {
    let Some(Ok(Value::Array(items))) = detail.map(serde_json::from_str::<Value>) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| match item {
            Value::String(reason) => Some(reason),
            _ => None,
        })
        .collect()
}

/// Failure codes the `auth.*` functions return in `{"error": {"code", "message"}}`, with
/// the status they answer and the message used when the database gave none.
const FAILURE_CODES: [(&str, StatusCode, &str); 6] = [
    (
        "INVALID_CREDENTIALS",
        StatusCode::UNAUTHORIZED,
        "Invalid login credentials",
    ),
    (
        "INVALID_REFRESH_TOKEN",
        StatusCode::UNAUTHORIZED,
        "Invalid refresh token",
    ),
    (
        "INVALID_MFA_TOKEN",
        StatusCode::UNAUTHORIZED,
        "Invalid or expired 2FA challenge",
    ),
    (
        "INVALID_MFA_CODE",
        StatusCode::UNAUTHORIZED,
        "Invalid 2FA code",
    ),
    (
        "INVALID_RESET_TOKEN",
        StatusCode::BAD_REQUEST,
        "Invalid or expired reset token",
    ),
    (
        "INVALID_TOKEN",
        StatusCode::BAD_REQUEST,
        "Invalid or expired token",
    ),
];

/// The error a function result stands for, when it is a failure object
/// `{"error": {"code": "...", "message": "..."}}` (a top-level `error` that is an object);
/// `None` for any other result.
///
/// Why functions return these rather than raise: a failed sign-in must still commit its
/// failure counter, a reused refresh token its session revocation. The caller commits, then
/// answers with this error.
///
/// `INVALID_CREDENTIALS` always has the same message (a wrong password, an unknown e-mail and
/// a locked account must look alike). An unknown code answers 400 with that code when it is
/// UPPER_SNAKE, `BAD_REQUEST` otherwise. Messages are ours (written in sql/extension).
pub fn from_failure_object(result: &Value) -> Option<ApiError> {
    let failure = result.get("error")?.as_object()?;
    let code = failure.get("code").and_then(Value::as_str).unwrap_or("");
    let db_message = failure
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.trim().is_empty() && m.len() <= 300)
        .map(capitalize);
    if let Some((known, status, fallback)) = FAILURE_CODES.iter().find(|(c, _, _)| *c == code) {
        let message = if *known == "INVALID_CREDENTIALS" {
            (*fallback).to_owned()
        } else {
            db_message.unwrap_or_else(|| (*fallback).to_owned())
        };
        return Some(ApiError::new(*status, *known, message));
    }
    let code: Cow<'static, str> = if is_upper_snake(code) {
        Cow::Owned(code.to_owned())
    } else {
        Cow::Borrowed("BAD_REQUEST")
    };
    Some(ApiError::new(
        StatusCode::BAD_REQUEST,
        code,
        db_message.unwrap_or_else(|| "The request was refused".to_owned()),
    ))
}

fn is_upper_snake(code: &str) -> bool {
    (1..=64).contains(&code.len())
        && code.starts_with(|c: char| c.is_ascii_uppercase())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn invalid_value_message(sqlstate: &str) -> &'static str {
    match sqlstate {
        "22P02" => "A value has the wrong format for its column's type",
        "22001" => "A value is too long for its column",
        "22003" => "A numeric value is out of range",
        "22007" | "22008" => "A date or time value is invalid",
        "22P05" | "22021" => "A value contains characters that cannot be stored",
        "22012" => "Division by zero",
        "22023" => "A parameter has an invalid value",
        "22004" => "A value must not be null",
        "22030" | "22032" | "2203A" | "2203B" | "2203C" | "2203D" => "A JSON value is invalid",
        _ => "A value is invalid",
    }
}

/// Maps a `tokio_postgres` error (logged here with the request id, never sent) to the API
/// error. Errors without a SQLSTATE are broken connections.
pub fn from_db_error(err: &tokio_postgres::Error, token_given: bool, request_id: &str) -> ApiError {
    let Some(db) = err.as_db_error() else {
        tracing::error!(request_id, error = %err, "database connection error");
        return ApiError::database_unavailable();
    };
    let failure = DbFailure {
        sqlstate: db.code().code(),
        message: db.message(),
        detail: db.detail(),
        column: db.column(),
        constraint: db.constraint(),
    };
    let api = map_db_failure(failure, token_given);
    let sqlstate = failure.sqlstate;
    if api.status.is_server_error() {
        tracing::error!(
            request_id,
            sqlstate,
            db_message = failure.message,
            "database error"
        );
    } else if sqlstate.starts_with("28") || sqlstate.starts_with("FB") {
        // Messages the extension wrote (why a token was refused): no client data in them.
        tracing::info!(
            request_id,
            sqlstate,
            db_message = failure.message,
            "request refused by the database"
        );
    } else {
        // Other refusals (RLS, constraints, bad values) can quote the client's values, which
        // may be personal data: the message only at debug level.
        tracing::info!(request_id, sqlstate, "request refused by the database");
        tracing::debug!(
            request_id,
            sqlstate,
            db_message = failure.message,
            "database refusal detail"
        );
    }
    api
}

/// Maps a pool failure: a timeout or refused connection means the database is unavailable.
pub fn from_pool_error(
    err: &deadpool_postgres::PoolError,
    token_given: bool,
    request_id: &str,
) -> ApiError {
    match err {
        deadpool_postgres::PoolError::Backend(e) => from_db_error(e, token_given, request_id),
        other => {
            tracing::error!(request_id, error = %other, "could not get a database connection");
            ApiError::database_unavailable()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(code: &str, message: &str, token: bool) -> ApiError {
        map_db_failure(
            DbFailure {
                sqlstate: code,
                message,
                detail: None,
                column: None,
                constraint: None,
            },
            token,
        )
    }

    #[test]
    fn token_refusal_is_generic() {
        let e = map("28000", "invalid token: the token has expired", true);
        assert_eq!(e.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.code, "INVALID_TOKEN");
        assert_eq!(e.message, "Invalid or expired token");
        assert!(!e.message.contains("expired token:"));
    }

    #[test]
    fn bad_credentials() {
        let e = map("28P01", "invalid login credentials", false);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS")
        );
        assert_eq!(e.message, "Invalid login credentials");
    }

    #[test]
    fn fluxbase_codes_pass_their_message() {
        let e = map("FB400", "a valid email address is required", false);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR")
        );
        assert_eq!(e.message, "a valid email address is required");
        let e = map(
            "FB409",
            "unable to sign up with this email and password",
            false,
        );
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "SIGNUP_FAILED")
        );
        let e = map("FB499", "something of ours", false);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "BAD_REQUEST")
        );
        assert_eq!(e.message, "something of ours");
        let e = map("FB401", "the code is not valid", true);
        assert_eq!(
            (e.status, e.code.as_ref(), e.message.as_str()),
            (
                StatusCode::UNAUTHORIZED,
                "INVALID_CODE",
                "the code is not valid"
            )
        );
        let e = map("FB403", "this operation needs aal2", true);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::FORBIDDEN, "INSUFFICIENT_ASSURANCE")
        );
        let e = map("FB404", "no such user", true);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::NOT_FOUND, "NOT_FOUND")
        );
        assert!(e.details.is_none());
    }

    fn weak(detail: Option<&str>) -> ApiError {
        map_db_failure(
            DbFailure {
                sqlstate: "FB422",
                message: "the password does not meet the policy: at least 12 characters",
                detail,
                column: None,
                constraint: None,
            },
            false,
        )
    }

    #[test]
    fn weak_password_lists_the_reasons() {
        let e = weak(Some(
            r#"["at least 12 characters", "an upper-case letter"]"#,
        ));
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "WEAK_PASSWORD")
        );
        assert!(e.message.contains("does not meet the policy"));
        let body = e.body("rid");
        assert_eq!(
            body["details"],
            json!({"reasons": ["at least 12 characters", "an upper-case letter"]})
        );
        // A DETAIL that is not a JSON array of strings gives no (or only the string) reasons.
        assert_eq!(
            weak(None).details,
            Some(json!({"reasons": []})),
            "no DETAIL"
        );
        assert_eq!(weak(Some("not json")).details, Some(json!({"reasons": []})));
        assert_eq!(
            weak(Some(r#"{"a": 1}"#)).details,
            Some(json!({"reasons": []}))
        );
        assert_eq!(
            weak(Some(r#"["ok", 5, null]"#)).details,
            Some(json!({"reasons": ["ok"]}))
        );
    }

    #[test]
    fn failure_objects_map_to_errors() {
        let fail = |code: &str, message: &str| {
            from_failure_object(&json!({"error": {"code": code, "message": message}}))
                .expect("a failure object")
        };
        let e = fail("INVALID_CREDENTIALS", "invalid login credentials");
        assert_eq!(
            (e.status, e.code.as_ref(), e.message.as_str()),
            (
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "Invalid login credentials"
            )
        );
        // Always the same message, whatever the database wrote.
        assert_eq!(
            fail("INVALID_CREDENTIALS", "account locked").message,
            "Invalid login credentials"
        );
        for (code, status) in [
            ("INVALID_REFRESH_TOKEN", StatusCode::UNAUTHORIZED),
            ("INVALID_MFA_TOKEN", StatusCode::UNAUTHORIZED),
            ("INVALID_MFA_CODE", StatusCode::UNAUTHORIZED),
            ("INVALID_RESET_TOKEN", StatusCode::BAD_REQUEST),
            ("INVALID_TOKEN", StatusCode::BAD_REQUEST),
        ] {
            let e = fail(code, "invalid thing");
            assert_eq!((e.status, e.code.as_ref()), (status, code));
            assert_eq!(e.message, "Invalid thing");
        }
        let e = fail("SOMETHING_NEW", "new refusal");
        assert_eq!(
            (e.status, e.code.as_ref(), e.message.as_str()),
            (StatusCode::BAD_REQUEST, "SOMETHING_NEW", "New refusal")
        );
        let e = fail("not snake!", "x");
        assert_eq!(e.code, "BAD_REQUEST");
        let e = from_failure_object(&json!({"error": {}})).unwrap();
        assert_eq!(
            (e.status, e.code.as_ref(), e.message.as_str()),
            (
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "The request was refused"
            )
        );
        let e = from_failure_object(&json!({"error": {"code": "INVALID_MFA_CODE"}})).unwrap();
        assert_eq!(e.message, "Invalid 2FA code");
        // Anything else is a result, not a failure.
        for ok in [
            json!({"access_token": "t", "user": {}}),
            json!({"error": "a string is not a failure object"}),
            json!({"requires_2fa": true, "mfa_token": "m"}),
            json!([{"error": {"code": "X"}}]),
            json!(null),
        ] {
            assert!(from_failure_object(&ok).is_none(), "{ok}");
        }
    }

    #[test]
    fn privilege_depends_on_token() {
        let e = map(
            "42501",
            "new row violates row-level security policy for table \"posts\"",
            true,
        );
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::FORBIDDEN, "FORBIDDEN")
        );
        assert_eq!(e.message, "Permission denied");
        let e = map("42501", "permission denied for table posts", false);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        );
        assert!(!e.message.contains("posts"));
    }

    #[test]
    fn constraints_never_echo_row_contents() {
        let e = map(
            "23505",
            "duplicate key value violates unique constraint \"u\" Key (email)=(a@b.c)",
            true,
        );
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::CONFLICT, "CONFLICT")
        );
        assert!(!e.message.contains("a@b.c"));
        let e = map(
            "23503",
            "insert or update violates foreign key constraint",
            true,
        );
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::CONFLICT, "FOREIGN_KEY_VIOLATION")
        );
        for code in ["23502", "23514"] {
            let e = map(code, "null value in column \"x\" of relation \"t\" violates not-null constraint Failing row contains (1, secret)", true);
            assert_eq!(
                (e.status, e.code.as_ref()),
                (StatusCode::BAD_REQUEST, "CONSTRAINT_VIOLATION")
            );
            assert!(!e.message.contains("secret"));
        }
        let e = map_db_failure(
            DbFailure {
                sqlstate: "23502",
                message: "x",
                detail: None,
                column: Some("title"),
                constraint: None,
            },
            true,
        );
        assert!(e.message.contains("\"title\""));
    }

    #[test]
    fn bad_values_are_400_without_the_value() {
        let e = map(
            "22P02",
            "invalid input syntax for type uuid: \"not-a-uuid\"",
            false,
        );
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "INVALID_VALUE")
        );
        assert!(!e.message.contains("not-a-uuid"));
        let e = map("22003", "value out of range", false);
        assert_eq!(e.code, "INVALID_VALUE");
    }

    #[test]
    fn raised_and_read_only() {
        let e = map("P0001", "posts must have a title", true);
        assert_eq!(
            (e.status, e.code.as_ref(), e.message.as_str()),
            (StatusCode::BAD_REQUEST, "RAISED", "posts must have a title")
        );
        let e = map(
            "25006",
            "cannot execute INSERT in a read-only transaction",
            true,
        );
        assert_eq!(e.status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(!e.message.contains("INSERT"));
    }

    #[test]
    fn everything_else_is_internal_and_silent() {
        let e = map(
            "XX000",
            "SELECT secret FROM somewhere failed at line 3",
            true,
        );
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR")
        );
        assert_eq!(e.message, "Internal server error");
        let e = map("08006", "connection failure", true);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[test]
    fn rest_dialect_states() {
        for (code, status, api) in [
            ("57014", StatusCode::GATEWAY_TIMEOUT, "STATEMENT_TIMEOUT"),
            ("40001", StatusCode::CONFLICT, "SERIALIZATION_FAILURE"),
            ("40P01", StatusCode::CONFLICT, "SERIALIZATION_FAILURE"),
            ("42P10", StatusCode::BAD_REQUEST, "INVALID_PARAMETER"),
            ("21000", StatusCode::CONFLICT, "CONFLICT"),
            ("42846", StatusCode::BAD_REQUEST, "INVALID_VALUE"),
            ("42883", StatusCode::BAD_REQUEST, "UNSUPPORTED_OPERATION"),
            ("42P01", StatusCode::NOT_FOUND, "TABLE_NOT_FOUND"),
            ("42703", StatusCode::BAD_REQUEST, "UNKNOWN_COLUMN"),
            ("2201B", StatusCode::BAD_REQUEST, "INVALID_VALUE"),
            ("54001", StatusCode::BAD_REQUEST, "QUERY_TOO_COMPLEX"),
            ("54011", StatusCode::BAD_REQUEST, "QUERY_TOO_COMPLEX"),
            ("54023", StatusCode::BAD_REQUEST, "QUERY_TOO_COMPLEX"),
            ("42704", StatusCode::BAD_REQUEST, "INVALID_VALUE"),
            ("42P16", StatusCode::BAD_REQUEST, "INVALID_DEFINITION"),
            ("42P07", StatusCode::CONFLICT, "ALREADY_EXISTS"),
            ("42710", StatusCode::CONFLICT, "ALREADY_EXISTS"),
            ("42701", StatusCode::BAD_REQUEST, "DUPLICATE_COLUMN"),
            (
                "53200",
                StatusCode::SERVICE_UNAVAILABLE,
                "DATABASE_UNAVAILABLE",
            ),
        ] {
            let e = map(
                code,
                "column \"x\" of relation \"t\": SELECT secret FROM t",
                true,
            );
            assert_eq!((e.status, e.code.as_ref()), (status, api), "{code}");
            assert!(!e.message.contains("SELECT") && !e.message.contains("relation"));
        }
    }

    #[test]
    fn a_tsquery_syntax_error_is_the_clients_and_any_other_42601_ours() {
        let e = map("42601", "syntax error in tsquery: \"a &&&\"", true);
        assert_eq!(
            (e.status, e.code.as_ref()),
            (StatusCode::BAD_REQUEST, "INVALID_VALUE")
        );
        assert!(!e.message.contains("&&&"), "{}", e.message);
        let e = map("42601", "syntax error at or near \"FROM\"", true);
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn body_has_the_shape() {
        let body = ApiError::not_found().body("abc");
        assert_eq!(body["error"], "Not found");
        assert_eq!(body["message"], "Not found");
        assert_eq!(body["code"], "NOT_FOUND");
        assert!(body["details"].is_null());
        assert!(body["hint"].is_null());
        assert_eq!(body["request_id"], "abc");
        assert_eq!(body.as_object().map(|o| o.len()), Some(6));
    }
}
