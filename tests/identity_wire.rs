//! What served a call, as the wire carries it, recorded through each kind against loopback
//! servers shaped like the real ones: Azure OpenAI's stream that names nothing in its first
//! chunk.

#[path = "support/scripted.rs"]
mod scripted;

use reprise::protocol::Params;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, ChatRequest, Reply};
use scripted::{Canned, Options, Scripted};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-1d3n71";

fn request() -> ChatRequest {
    ChatRequest {
        system: None,
        user: "Say hi.".into(),
        params: Params {
            temperature: Some(0.0),
            seed: Some(7),
            ..Params::default()
        },
    }
}

/// A server answering every request with `canned`, its streams as `stream_type`, every answer
/// carrying `headers`.
async fn server(
    canned: Canned,
    stream_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
) -> Scripted {
    let options = Options {
        stream_type,
        headers,
        outside: None,
    };
    Scripted::start(vec![], Some(canned), options).await
}

/// Server-sent events, one `data:` line per JSON text.
fn events(chunks: &[String]) -> Vec<String> {
    chunks.iter().map(|c| format!("data: {c}\n\n")).collect()
}

fn openai(base_url: &str, stream: bool) -> OpenAiBackend {
    let mut s = Settings::new("gw", base_url, "m");
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    OpenAiBackend::new(s).unwrap()
}

fn served(reply: &Reply) -> Vec<(&str, &str)> {
    reply
        .served
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn safe_filters() -> Value {
    let safe = json!({"filtered": false, "severity": "safe"});
    json!({"hate": safe, "self_harm": safe, "sexual": safe, "violence": safe})
}

/// Azure OpenAI's stream with content filtering on, as its documentation and recordings show
/// it: the prompt's filter results first, in a chunk whose `id`, `model` and `object` are empty,
/// `created` 0 and `choices` empty; filter results beside each choice; a usage chunk; and an
/// annotation chunk after the finish whose identity fields are empty again.
fn azure_stream() -> Vec<String> {
    let chunk = |delta: Value, finish: Value, filters: Value| {
        json!({"choices": [{"content_filter_results": filters, "delta": delta,
                "finish_reason": finish, "index": 0, "logprobs": null}],
               "created": 1736407895, "id": "chatcmpl-AnhIt2rw8vL8", "model": "gpt-4o-2024-11-20",
               "object": "chat.completion.chunk", "system_fingerprint": "fp_ee1d74bde0"})
        .to_string()
    };
    let mut chunks = vec![
        json!({"choices": [], "created": 0, "id": "", "model": "", "object": "",
               "prompt_filter_results": [{"prompt_index": 0,
                   "content_filter_results": safe_filters()}]})
        .to_string(),
        chunk(
            json!({"content": "", "refusal": null, "role": "assistant"}),
            Value::Null,
            json!({}),
        ),
        chunk(json!({"content": "Hi"}), Value::Null, safe_filters()),
        chunk(json!({"content": " there."}), Value::Null, safe_filters()),
        chunk(json!({}), json!("stop"), json!({})),
        json!({"choices": [], "created": 1736407895, "id": "chatcmpl-AnhIt2rw8vL8",
               "model": "gpt-4o-2024-11-20", "object": "chat.completion.chunk",
               "system_fingerprint": "fp_ee1d74bde0", "usage": {"prompt_tokens": 11,
               "completion_tokens": 3, "total_tokens": 14}})
        .to_string(),
        json!({"choices": [{"content_filter_offsets": {"check_offset": 35, "start_offset": 35,
                   "end_offset": 44}, "content_filter_results": safe_filters(),
                   "finish_reason": null, "index": 0}],
               "created": 0, "id": "", "model": "", "object": ""})
        .to_string(),
    ];
    chunks = events(&chunks);
    chunks.push("data: [DONE]\n\n".into());
    chunks
}

#[tokio::test]
async fn azure_openai_streams_record_the_model_of_the_chunks_that_name_it() {
    let chunks = azure_stream();
    let server = server(
        Canned::Stream { chunks, cut: false },
        "text/event-stream",
        vec![
            ("x-request-id", "7b4e-azure"),
            ("apim-request-id", "7b4e-azure"),
        ],
    )
    .await;
    let base = format!("http://{}/openai/deployments/gpt-4o", server.addr);
    let reply = openai(&base, true).call(&request()).await.unwrap();
    assert_eq!(reply.text, "Hi there.");
    assert_eq!(
        served(&reply),
        [
            ("model", "gpt-4o-2024-11-20"),
            ("request_id", "7b4e-azure"),
            ("response_id", "chatcmpl-AnhIt2rw8vL8"),
            ("system_fingerprint", "fp_ee1d74bde0"),
        ]
    );
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(3));
    assert_eq!(
        server.received()[0].path,
        "/openai/deployments/gpt-4o/chat/completions"
    );
}
