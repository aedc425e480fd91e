//! The transport, against a real server on a free port: TLS versions (a too-old client is
//! refused in the handshake), HTTP/2 through ALPN, HSTS only over TLS, the body and header
//! limits, slow clients cut off by the header timeout, graceful shutdown, and the security
//! headers on 404 and 500 answers.
use fluxbase_tests::tls::TestCerts;
use fluxbase_tests::{assert_error_shape, into_response, TestApp};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HSTS: &str =
    "security:\n  headers:\n    hsts: { max_age: 63072000, include_subdomains: true }\n";

fn assert_security_headers(headers: &reqwest::header::HeaderMap, what: &str) {
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ] {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: {name}"
        );
    }
}

#[tokio::test]
async fn tls_1_3_with_http2_and_tls_1_2_with_http1_both_work() {
    let certs = TestCerts::new();
    let app = TestApp::start_with(&certs.server_tls_yaml("1.2"), HSTS).await;
    assert!(app.base.starts_with("https://"), "{}", app.base);

    let h2 = certs.http_client(&[&rustls::version::TLS13], &[b"h2", b"http/1.1"]);
    let r = h2
        .get(app.url("/health"))
        .send()
        .await
        .expect("TLS 1.3 request");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let r = into_response(r).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_security_headers(&r.headers, "h2 /health");
    // Over TLS, HSTS is sent as configured.
    assert_eq!(
        r.headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=63072000; includeSubDomains")
    );

    let h1 = certs.http_client(&[&rustls::version::TLS12], &[b"http/1.1"]);
    let r = h1
        .get(app.url("/nope"))
        .send()
        .await
        .expect("TLS 1.2 request");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let r = into_response(r).await;
    assert_eq!(r.status, 404);
    assert_eq!(assert_error_shape(&r), "NOT_FOUND");
    assert!(r.headers.get("strict-transport-security").is_some());

    // The API itself over HTTP/2: a sign-up and an authenticated read.
    let r = h2
        .post(app.url("/api/v1/auth/signup"))
        .json(&json!({"email": "h2@example.com", "password": "Http2-password-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    let r = into_response(r).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["access_token"].as_str().unwrap().to_owned();
    let r = into_response(
        h2.get(app.url("/api/v1/auth/user"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.body["email"], "h2@example.com", "{}", r.text);

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/health", app.addr()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

#[tokio::test]
async fn a_1_3_only_server_refuses_a_tls_1_2_client() {
    let certs = TestCerts::new();
    let app = TestApp::start_with(&certs.server_tls_yaml("1.3"), "").await;
    let old = certs.http_client(&[&rustls::version::TLS12], &[b"http/1.1"]);
    let err = old
        .get(app.url("/health"))
        .send()
        .await
        .expect_err("a TLS 1.2 client must be refused");
    assert!(err.is_connect(), "{err:?}");
    let new = certs.http_client(&[&rustls::version::TLS13], &[b"http/1.1"]);
    assert_eq!(
        new.get(app.url("/health")).send().await.unwrap().status(),
        200
    );
}

/// A TLS 1.1 ClientHello (legacy version 3.2, no supported_versions extension), as an old
/// client sends it. rustls has no TLS 1.1 at all; the server must answer with a fatal
/// `protocol_version` alert (or close), never a ServerHello.
fn tls_1_1_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02]; // client_version TLS 1.1
    body.extend_from_slice(&[0x11; 32]); // random
    body.push(0); // no session id
    body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.1 CBC suites
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&(body.len() as u16).to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test]
async fn a_tls_1_1_client_is_refused_in_the_handshake() {
    let certs = TestCerts::new();
    let app = TestApp::start_with(&certs.server_tls_yaml("1.2"), "").await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream.write_all(&tls_1_1_client_hello()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(
        answer.first() != Some(&0x16),
        "the server answered a TLS 1.1 hello with a handshake: {answer:02x?}"
    );
    if !answer.is_empty() {
        // An alert record (type 21), fatal (2): protocol_version (70) or handshake_failure
        // (40, rustls's answer when nothing in the hello is acceptable).
        assert_eq!(answer[0], 0x15, "{answer:02x?}");
        assert_eq!(answer[5], 0x02, "{answer:02x?}");
        assert!([40, 70].contains(&answer[6]), "{answer:02x?}");
    }
    // And the tool an operator would use, when it is installed (tokio's Command: the server
    // runs on this test's runtime and must keep running while openssl waits).
    if let Ok(out) = tokio::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &app.addr(),
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await
    {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // s_client's exit status is 0 on some versions even when the handshake fails: its
        // report must show no cipher was agreed.
        // (Its session block names the version it tried, TLSv1.1, also on failure.)
        assert!(
            !out.status.success() || text.contains("Cipher is (NONE)"),
            "openssl -tls1_1 connected: {text}"
        );
    }
}

#[tokio::test]
async fn a_client_that_trickles_its_request_head_is_cut_off() {
    let app = TestApp::start_with("header_timeout_seconds: 1", "").await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"GET /hea").await.unwrap();
    // One byte every 100 ms, never finishing the head: the deadline is for the whole head.
    let trickle = async {
        for byte in b"lth HTTP/1.1\r\nHost: x\r\nX-Slow: ".iter().cycle() {
            if stream.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let mut buf = [0u8; 256];
            match tokio::time::timeout(Duration::from_millis(1), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(_)) => break, // an answer (408) followed by the close
                Err(_) => {}
            }
        }
    };
    let cut = tokio::time::timeout(Duration::from_secs(8), trickle).await;
    assert!(cut.is_ok(), "the slow client was still connected after 8 s");
    let held = started.elapsed();
    assert!(
        held < Duration::from_secs(4),
        "the connection was held {held:?} (header timeout 1 s)"
    );
    // The server still serves others.
    assert_eq!(app.get("/health", None).await.status, 200);
}

#[tokio::test]
async fn a_connection_that_never_sends_a_request_is_closed() {
    let app = TestApp::start_with("header_timeout_seconds: 1", "").await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(8), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(_)) | Ok(Err(_))),
        "still open: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_tls_handshake_that_never_comes_is_cut_off() {
    let certs = TestCerts::new();
    let app = TestApp::start_with(
        &format!(
            "header_timeout_seconds: 1\n{}",
            certs.server_tls_yaml("1.2")
        ),
        "",
    )
    .await;
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(8), stream.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "still open: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

/// One HTTP/2 frame as read off the wire: its type and stream.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

async fn read_frame<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Frame> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await?;
    Ok(Frame {
        kind: head[3],
        flags: head[4],
        stream: u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff,
        payload,
    })
}

/// A raw TLS 1.3 connection to `app` that negotiated HTTP/2 (ALPN `h2`), for frames by hand.
async fn h2_connect(
    app: &TestApp,
    certs: &TestCerts,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = certs.client_config(&[&rustls::version::TLS13], &[b"h2"]);
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(app.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls
}

/// A HEADERS frame (END_HEADERS | END_STREAM) for `GET path` on `stream`, its header block in
/// HPACK by hand: :method GET (static 2), :scheme https (static 7), :path and :authority as
/// literals with indexed names (4 and 1).
fn h2_get(stream: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x87, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend([0x01, 9]);
    block.extend_from_slice(b"localhost");
    frame(0x1, 0x4 | 0x1, stream, &block)
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_even_while_it_answers_pings() {
    // hyper's HTTP/2 has no idle deadline of its own: a client that keeps answering the
    // server's pings would hold the connection for ever. This one makes one request, then
    // stays connected doing nothing but acknowledging pings.
    let certs = TestCerts::new();
    let app = TestApp::start_with(
        &format!(
            "header_timeout_seconds: 1\n{}",
            certs.server_tls_yaml("1.2")
        ),
        "",
    )
    .await;
    let mut tls = h2_connect(&app, &certs).await;

    // The preface, empty SETTINGS, and GET /health on stream 1.
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    request.extend(frame(0x4, 0, 0, &[]));
    request.extend(h2_get(1, "/health"));
    tls.write_all(&request).await.unwrap();
    let sent = Instant::now();

    let (mut answered, mut goaway, mut answered_at) = (false, false, None);
    let watch = async {
        loop {
            let Ok(f) = read_frame(&mut tls).await else {
                break; // closed
            };
            match f.kind {
                0x1 if f.stream == 1 => {
                    answered = true;
                    answered_at = Some(Instant::now());
                }
                0x4 if f.flags & 0x1 == 0 => {
                    let _ = tls.write_all(&frame(0x4, 0x1, 0, &[])).await; // SETTINGS ACK
                }
                0x6 if f.flags & 0x1 == 0 => {
                    let _ = tls.write_all(&frame(0x6, 0x1, 0, &f.payload)).await;
                    // PING ACK
                }
                0x7 => goaway = true,
                _ => {}
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(8), watch).await;
    assert!(answered, "no answer to GET /health over HTTP/2");
    assert!(
        closed.is_ok(),
        "the idle HTTP/2 connection was still open after 8 s"
    );
    assert!(goaway, "the server closed without a GOAWAY");
    let quiet = answered_at.unwrap().elapsed();
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the 1 s idle limit",
        sent.elapsed()
    );
    assert!(quiet < Duration::from_secs(4), "held {quiet:?} idle");
}

#[tokio::test]
async fn an_http2_request_longer_than_the_idle_limit_is_not_cut() {
    let certs = TestCerts::new();
    let app = TestApp::start_with(
        &format!(
            "header_timeout_seconds: 1\n{}",
            certs.server_tls_yaml("1.2")
        ),
        "",
    )
    .await;
    let h2 = certs.http_client(&[&rustls::version::TLS13], &[b"h2"]);
    create_slow_ping(&app, &h2).await;
    let r = h2
        .post(app.url("/api/v1/rpc/slow_ping"))
        .json(&json!({"seconds": 2.5}))
        .send()
        .await
        .expect("a 2.5 s request on a connection with a 1 s idle limit");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "1");
}

/// Creates function `name` with `sql` (as the superuser) and waits until the API (through
/// `client`) knows it: the function cache follows DDL notifications. Any answer but 404
/// (a volatile function answers HEAD with 405) means it is known.
async fn create_callable(app: &TestApp, client: &reqwest::Client, name: &str, sql: &str) {
    app.admin.batch_execute(sql).await.unwrap();
    for _ in 0..50 {
        let r = client
            .head(app.url(&format!("/api/v1/rpc/{name}")))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() != 404) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never became callable");
}

/// `public.big_text()`: a 30 MB JSON string.
async fn create_big_text(app: &TestApp, client: &reqwest::Client) {
    create_callable(
        app,
        client,
        "big_text",
        "CREATE FUNCTION public.big_text() RETURNS text LANGUAGE sql STABLE
         AS $$ SELECT repeat('x', 30000000) $$;
         GRANT EXECUTE ON FUNCTION public.big_text() TO anon;",
    )
    .await;
}

/// A client that asks for a large response and never reads it: the server's writes stall,
/// and after `request_timeout_seconds` the connection is closed (it held the connection and
/// the unsent response for as long as it stayed; found by a review).
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let app = TestApp::start_with("request_timeout_seconds: 2", "").await;
    create_big_text(&app, &reqwest::Client::new()).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(app.addr().parse().unwrap()).await.unwrap();
    stream
        .write_all(b"GET /api/v1/rpc/big_text HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // Read nothing for longer than the limit, then drain what is left.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection was still open");
    assert!(
        total < 30_000_000,
        "the whole response arrived ({total} bytes): the stalled writer was never cut off"
    );
    assert_eq!(app.get("/health", None).await.status, 200);
}

/// The same over HTTP/2, where the client's flow control (an initial window of 0) keeps the
/// server from writing at all, so no write stalls, while the client keeps the connection busy
/// with a new request every half second (a review held 20 such responses, 10 MB each, for as
/// long as it liked): the body that has not moved for `request_timeout_seconds` closes it.
#[tokio::test]
async fn an_http2_client_that_grants_no_window_is_cut_off() {
    let certs = TestCerts::new();
    let app = TestApp::start_with(
        &format!(
            "header_timeout_seconds: 1\nrequest_timeout_seconds: 2\n{}",
            certs.server_tls_yaml("1.2")
        ),
        "",
    )
    .await;
    create_big_text(
        &app,
        &certs.http_client(&[&rustls::version::TLS13], &[b"h2"]),
    )
    .await;
    let mut tls = h2_connect(&app, &certs).await;
    let mut request = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE (4) = 0: the server may send no DATA on any stream.
    request.extend(frame(0x4, 0, 0, &[0x00, 0x04, 0, 0, 0, 0]));
    request.extend(h2_get(1, "/api/v1/rpc/big_text"));
    tls.write_all(&request).await.unwrap();
    let mut answered = false;
    let (mut reader, mut writer) = tokio::io::split(tls);
    let busy = async {
        // GET /health on streams 3, 5, 7, ...
        for stream in (3u32..).step_by(2) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if writer.write_all(&h2_get(stream, "/health")).await.is_err() {
                break;
            }
        }
    };
    let watch = async {
        loop {
            let Ok(f) = read_frame(&mut reader).await else {
                break;
            };
            match f.kind {
                0x1 if f.stream == 1 => answered = true,
                // (The server's SETTINGS go unacknowledged and its pings unanswered: its
                // keep-alive timeout is longer than this test.)
                _ => {}
            }
        }
    };
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            () = watch => {}
            () = busy => {}
        }
    })
    .await;
    assert!(answered, "no response head for the request");
    assert!(closed.is_ok(), "the connection was still open after 10 s");
}

/// A client that reads a large response slowly but steadily is never cut off, though the
/// download takes longer than the idle limit and the request timeout together (a review's
/// 300 KB/s download was cut when the connection counted as idle mid-body).
#[tokio::test]
async fn a_slow_but_steady_download_completes() {
    let app =
        TestApp::start_with("header_timeout_seconds: 1\nrequest_timeout_seconds: 2", "").await;
    create_callable(
        &app,
        &reqwest::Client::new(),
        "medium_text",
        "CREATE FUNCTION public.medium_text() RETURNS text LANGUAGE sql STABLE
         AS $$ SELECT repeat('y', 12000000) $$;
         GRANT EXECUTE ON FUNCTION public.medium_text() TO anon;",
    )
    .await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(64 * 1024).unwrap();
    let mut stream = socket.connect(app.addr().parse().unwrap()).await.unwrap();
    stream
        .write_all(b"GET /api/v1/rpc/medium_text HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut total = 0usize;
    // ~2 MB/s: about six seconds for the body, more than the server's socket buffers hold.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the download was not slow ({:?}): the test proves nothing",
        started.elapsed()
    );
    assert!(total > 12_000_000, "the body was cut at {total} bytes");
}

/// `public.slow_ping(seconds)`: answers 1 after sleeping.
async fn create_slow_ping(app: &TestApp, client: &reqwest::Client) {
    create_callable(
        app,
        client,
        "slow_ping",
        "CREATE FUNCTION public.slow_ping(seconds float8) RETURNS int LANGUAGE sql
         AS $$ SELECT pg_sleep(seconds); SELECT 1 $$;",
    )
    .await;
}

#[tokio::test]
async fn body_and_header_limits() {
    let app = TestApp::start_with("max_body_bytes: 1024\nmax_header_bytes: 8192", "").await;
    let big = "x".repeat(4096);
    let r = app
        .post(
            "/api/v1/auth/signin",
            None,
            &json!({"email": "a@example.com", "password": big}),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "PAYLOAD_TOO_LARGE");
    assert_security_headers(&r.headers, "413");
    // A request head beyond max_header_bytes: hyper answers 431 itself and closes.
    let r = app
        .http
        .get(app.url("/health"))
        .header("x-padding", "p".repeat(16 * 1024))
        .send()
        .await
        .expect("an answer");
    assert_eq!(r.status().as_u16(), 431);
    // A malformed request line: hyper's own 400, then the connection closes.
    let mut stream = TcpStream::connect(app.addr()).await.unwrap();
    stream.write_all(b"NOT A REQUEST\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(app.get("/health", None).await.status, 200);
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight_and_refuses_new_ones() {
    let mut app = TestApp::start().await;
    create_slow_ping(&app, &reqwest::Client::new()).await;
    let url = app.url("/api/v1/rpc/slow_ping");
    // Its own client: a new connection, not the one the readiness loop kept alive.
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"seconds": 2}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.begin_shutdown();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The listening socket is closed: a new connection is refused.
    let refused = TcpStream::connect(app.addr()).await;
    assert!(
        refused.is_err(),
        "a new connection was accepted during shutdown"
    );
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "1");
    assert!(
        app.wait_stopped(Duration::from_secs(10)).await,
        "the server did not stop after its last request"
    );
}

#[tokio::test]
async fn security_headers_on_404_and_500_and_no_hsts_without_tls() {
    let app = TestApp::start_with_yaml_extra(HSTS).await;
    let r = app.get("/definitely/not/here", None).await;
    assert_eq!(r.status, 404);
    assert_error_shape(&r);
    assert_security_headers(&r.headers, "404");
    assert!(r.headers.get("strict-transport-security").is_none());
    // HTTP/2 is offered over TLS only: an h2c (prior knowledge) client gets no HTTP/2 answer.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let attempt = h2c.get(app.url("/health")).send().await;
    assert!(
        attempt
            .as_ref()
            .map_or(true, |r| r.version() != reqwest::Version::HTTP_2),
        "{attempt:?}"
    );
    app.admin
        .batch_execute(
            "CREATE FUNCTION public.broken() RETURNS int LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'internal detail' USING ERRCODE = 'XX000'; END $$;",
        )
        .await
        .unwrap();
    let mut r = app.post("/api/v1/rpc/broken", None, &json!({})).await;
    for _ in 0..50 {
        if r.status != 404 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        r = app.post("/api/v1/rpc/broken", None, &json!({})).await;
    }
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(assert_error_shape(&r), "INTERNAL_ERROR");
    assert!(!r.text.contains("internal detail"), "{}", r.text);
    assert_security_headers(&r.headers, "500");
}
