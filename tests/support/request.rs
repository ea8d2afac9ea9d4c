//! The request the provider suites send: one short question, with the sampling parameters
//! every wire format has to place (a greedy temperature, a seed, a length limit, top-k).
#![allow(dead_code)] // each test crate uses part of it

use reprise::protocol::Params;
use reprise::providers::ChatRequest;

pub fn request() -> ChatRequest {
    ChatRequest {
        system: Some("Answer in one word.".into()),
        user: "Capital of France?".into(),
        params: Params {
            temperature: Some(0.0),
            seed: Some(42),
            max_tokens: Some(8),
            top_k: Some(5),
            ..Params::default()
        },
    }
}
