//! Any query string: the parser and builder never panic, and a refusal is a 4xx (300 for an
//! ambiguous embed).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(query) = std::str::from_utf8(data) {
        if let Err(e) = fluxbase_server::rest::parse_request_for_fuzzing(query) {
            let status = e.status.as_u16();
            assert!((400..500).contains(&status) || status == 300, "{status}");
        }
    }
});
