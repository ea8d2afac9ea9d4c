//! Any bytes as a session archive: read and verified, or refused in one line; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reprise::archive;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.jsonl");
    if let Err(e) = archive::read_bytes(data, path) {
        assert!(!e.to_string().contains('\n'), "{e}");
    }
    if let Err(e) = archive::verify_bytes(data, path) {
        assert!(!e.to_string().contains('\n'), "{e}");
    }
});
