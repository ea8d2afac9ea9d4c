//! Any text as a protocol file: parsed or refused in one line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprise::protocol::Protocol;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Protocol::parse(std::path::Path::new("fuzz.toml"), text) {
        assert!(!e.to_string().contains('\n'), "{e}");
    }
});
