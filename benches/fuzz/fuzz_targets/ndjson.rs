//! Any bytes as an NDJSON stream through the line decoder and Ollama's assembly: a reply or a
//! one-line failure, never a panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use reprise::providers::http::ndjson::LineDecoder;
use reprise::providers::http::Assemble;
use reprise::providers::ollama;

fuzz_target!(|data: &[u8]| {
    let mut decoder = LineDecoder::new();
    let Ok(mut lines) = decoder.push(data) else {
        return;
    };
    lines.extend(decoder.finish());
    let mut assembly = ollama::wire::Assembly::new("fuzz", true);
    for line in &lines {
        if let Err(f) = assembly.event(line, &|| Duration::ZERO) {
            assert!(!f.message.contains('\n'), "{}", f.message);
            return;
        }
        if assembly.done() {
            break;
        }
    }
    if let Err(f) = assembly.end_of_stream(None) {
        assert!(!f.message.contains('\n'), "{}", f.message);
    }
});
