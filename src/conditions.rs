//! The conditions of a session: everything the user controls, exactly as sent. The archive's
//! identity is the hash of this document, so equal identities mean equal requests.

use serde_json::{json, Value};

use crate::protocol::Protocol;
use crate::providers::{Backend, ChatRequest};

/// The request for one item, as every target receives it (before wire encoding).
pub fn chat_request(protocol: &Protocol, item: usize) -> ChatRequest {
    ChatRequest {
        system: protocol.system.clone(),
        user: protocol.items[item].user.clone(),
        params: protocol.params.clone(),
    }
}

/// The conditions document. `backends[i]` serves `protocol.targets[i]`.
pub fn conditions(protocol: &Protocol, backends: &[&dyn Backend]) -> Value {
    let targets: Vec<Value> = protocol
        .targets
        .iter()
        .zip(backends)
        .map(|(target, backend)| {
            let requests: Vec<Value> = (0..protocol.items.len())
                .map(|i| {
                    json!({
                        "item": protocol.items[i].name,
                        "body": backend.request_body(&chat_request(protocol, i)),
                    })
                })
                .collect();
            let mut t = json!({
                "name": target.name,
                "provider": target.provider,
                "model": target.model,
                "endpoint": backend.endpoint(),
                "requests": requests,
            });
            // Extra headers change what is sent; left out when there are none, so the
            // identities of sessions without them still hold.
            let headers = backend.headers();
            if !headers.is_empty() {
                t["headers"] = json!(headers);
            }
            t
        })
        .collect();
    json!({
        "tool": {"name": "reprise", "version": env!("CARGO_PKG_VERSION")},
        "protocol": {"name": protocol.meta.name, "description": protocol.meta.description},
        "campaign": protocol.campaign,
        "answer": protocol.answer,
        "items": protocol.items,
        "targets": targets,
    })
}
