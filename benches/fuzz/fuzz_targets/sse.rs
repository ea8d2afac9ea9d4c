//! Any bytes as a server-sent event stream, split at a fuzzed point, through the decoder and
//! each SSE wire format's assembly: a reply or a one-line failure, never a panic.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use reprise::providers::http::sse::SseDecoder;
use reprise::providers::http::Assemble;
use reprise::providers::{anthropic, gemini, openai};

fn feed(mut assembly: impl Assemble, events: &[String]) {
    let mut result = Ok(());
    for data in events {
        result = assembly.event(data, &|| Duration::ZERO);
        if result.is_err() || assembly.done() {
            break;
        }
    }
    let outcome = match result {
        Ok(()) => assembly.end_of_stream(None).map(|_| ()),
        Err(e) => Err(e),
    };
    if let Err(f) = outcome {
        assert!(!f.message.contains('\n'), "{}", f.message);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let at = (split as usize).min(bytes.len());
    let mut decoder = SseDecoder::new();
    let mut events = match decoder.push(&bytes[..at]) {
        Ok(events) => events,
        Err(_) => return,
    };
    match decoder.push(&bytes[at..]) {
        Ok(more) => events.extend(more),
        Err(_) => return,
    }
    feed(openai::wire::Assembly::new("fuzz", true), &events);
    feed(anthropic::wire::Assembly::new("fuzz", vec!["temperature"]), &events);
    feed(gemini::wire::Assembly::new("fuzz", true), &events);
});
