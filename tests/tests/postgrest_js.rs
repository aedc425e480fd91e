//! Client compatibility: the real `@supabase/postgrest-js` (pinned in tests/js/package.json)
//! against a real server. This test prepares the world (schema and functions before the
//! server starts, two users signed up over HTTP, their rows), then runs `node --test tests/js/`
//! and fails when node does. Node's output (each JS test, and every failed assertion with its
//! values) streams straight to the terminal.
//!
//! `scripts/test.sh` installs the JS dependencies (`npm ci --prefix tests/js`); when run on
//! its own, this test does that itself if `tests/js/node_modules` is missing.
#[path = "support/prepared.rs"]
mod prepared;

use prepared::PreparedApp;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

const FIXTURE: &str = include_str!("../sql/postgrest_js_fixture.sql");
const SEED: &str = include_str!("../sql/postgrest_js_seed.sql");
/// The whole suite normally takes a few seconds; this only stops a hung server or client.
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

async fn ensure_node_modules(dir: &Path) {
    if dir.join("node_modules/@supabase/postgrest-js").is_dir() {
        return;
    }
    eprintln!("postgrest-js suite: tests/js/node_modules is missing, running npm ci");
    let status = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .await
        .expect("npm must be installed (scripts/setup.sh installs it)");
    assert!(status.success(), "npm ci in tests/js failed: {status}");
}

#[tokio::test]
async fn supabase_postgrest_js_works_unchanged() {
    let dir = js_dir();
    ensure_node_modules(&dir).await;
    let app = PreparedApp::start(FIXTURE).await;
    let (token_a, user_a) = app.sign_up("alice@example.com", "Alice-password-1").await;
    let (token_b, user_b) = app.sign_up("bob@example.com", "Bob-password-22").await;
    // The ids are UUIDs the server produced, safe to place in SET.
    for id in [&user_a, &user_b] {
        assert!(uuid::Uuid::parse_str(id).is_ok(), "user id {id}");
    }
    app.admin
        .batch_execute(&format!(
            "SET fixture.user_a = '{user_a}'; SET fixture.user_b = '{user_b}';\n{SEED}"
        ))
        .await
        .expect("seed rows");

    let mut node = tokio::process::Command::new("node");
    node.args(["--test", "--test-reporter=spec", "tests/js/"])
        // The repository root (the tests package is its tests/ folder).
        .current_dir(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("the repository root"),
        )
        .env("BASE", &app.base)
        .env("TOKEN_A", &token_a)
        .env("TOKEN_B", &token_b)
        .env("USER_A", &user_a)
        .env("USER_B", &user_b)
        .env("NO_COLOR", "1")
        // Inherited: node's report streams to the terminal as it runs.
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = node
        .spawn()
        .expect("node must be installed (scripts/setup.sh installs it)");
    let status = match tokio::time::timeout(SUITE_TIMEOUT, child.wait()).await {
        Ok(status) => status.expect("wait for node"),
        Err(_) => {
            let _ = child.kill().await;
            panic!("the postgrest-js suite did not finish within {SUITE_TIMEOUT:?}");
        }
    };
    assert!(
        status.success(),
        "the @supabase/postgrest-js suite failed ({status}); node's report with each failed assertion is above"
    );
}
