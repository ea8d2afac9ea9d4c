//! What served a call, as the wire carries it, recorded through each kind against loopback
//! servers shaped like the real ones: Azure OpenAI's stream that names nothing in its first
//! chunk; a LiteLLM proxy's deployment headers, on every HTTP kind; Groq's `x_groq` block;
//! vLLM's structured `system_fingerprint`; a llama.cpp server's model size and quantization;
//! Ollama's log-probabilities. And the reasoning tokens xAI and Gemini count apart.

#[path = "support/scripted.rs"]
mod scripted;

use reprise::protocol::Params;
use reprise::providers::anthropic::AnthropicBackend;
use reprise::providers::gemini::GeminiBackend;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::ollama::{self, OllamaBackend};
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

/// The headers LiteLLM's proxy adds to a chat answer (its documented response headers, with
/// values as a proxy in front of a vLLM deployment sends them).
const LITELLM: [(&str, &str); 9] = [
    ("x-litellm-call-id", "4c1f6c3e-8d7a-4f0e-b1a2-0e9d5c7b3a21"),
    ("x-litellm-model-id", "1b8e7c2f9d3a"),
    ("x-litellm-model-name", "hosted_vllm/Qwen/Qwen3-8B"),
    ("x-litellm-model-group", "qwen3"),
    ("x-litellm-model-api-base", "http://gpu-7.lab:8000/v1"),
    ("x-litellm-version", "1.77.7"),
    ("x-litellm-response-cost", "0.0"),
    ("x-litellm-key-spend", "0.0"),
    ("x-litellm-response-duration-ms", "412.5"),
];

/// What LiteLLM's headers become in `served`.
const LITELLM_SERVED: [(&str, &str); 6] = [
    ("litellm_api_base", "http://gpu-7.lab:8000/v1"),
    ("litellm_call_id", "4c1f6c3e-8d7a-4f0e-b1a2-0e9d5c7b3a21"),
    ("litellm_model", "hosted_vllm/Qwen/Qwen3-8B"),
    ("litellm_model_group", "qwen3"),
    ("litellm_model_id", "1b8e7c2f9d3a"),
    ("litellm_version", "1.77.7"),
];

fn whole(body: Value) -> Canned {
    Canned::Whole {
        status: 200,
        headers: vec![],
        body: body.to_string(),
    }
}

/// The fields of `reply.served` that came from LiteLLM's headers.
fn from_litellm(reply: &Reply) -> Vec<(&str, &str)> {
    served(reply)
        .into_iter()
        .filter(|(k, _)| k.starts_with("litellm_"))
        .collect()
}

#[tokio::test]
async fn a_litellm_proxy_names_its_deployment_through_every_kind() {
    let chat = whole(json!({"id": "chatcmpl-9", "object": "chat.completion",
        "created": 1752000000, "model": "qwen3",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi."},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}}));
    let proxy = server(chat.clone(), "text/event-stream", LITELLM.to_vec()).await;
    let base = format!("http://{}/v1", proxy.addr);
    let reply = openai(&base, false).call(&request()).await.unwrap();
    assert_eq!(from_litellm(&reply), LITELLM_SERVED);
    // Streamed, the headers come once, before the first event.
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1752000000,
               "model": "qwen3", "choices": [{"index": 0, "delta": delta,
               "finish_reason": finish}]})
        .to_string()
    };
    let mut chunks = events(&[
        chunk(json!({"role": "assistant", "content": "Hi."}), Value::Null),
        chunk(json!({}), json!("stop")),
    ]);
    chunks.push("data: [DONE]\n\n".into());
    let proxy = server(
        Canned::Stream { chunks, cut: false },
        "text/event-stream",
        LITELLM.to_vec(),
    )
    .await;
    let base = format!("http://{}/v1", proxy.addr);
    let reply = openai(&base, true).call(&request()).await.unwrap();
    assert_eq!(reply.text, "Hi.");
    assert_eq!(from_litellm(&reply), LITELLM_SERVED);

    // LiteLLM's Anthropic-format endpoint.
    let message = whole(
        json!({"id": "msg_01Gw", "type": "message", "role": "assistant",
        "model": "claude-sonnet-4-5-20250929", "content": [{"type": "text", "text": "Hi."}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 9, "output_tokens": 2}}),
    );
    let proxy = server(message, "text/event-stream", LITELLM.to_vec()).await;
    let mut s = Settings::new(
        "gw",
        &format!("http://{}/v1", proxy.addr),
        "claude-sonnet-4-5",
    );
    s.key = ApiKey::new(KEY);
    s.stream = false;
    let reply = AnthropicBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert_eq!(from_litellm(&reply), LITELLM_SERVED);
    assert_eq!(proxy.received()[0].path, "/v1/messages");

    // Pass-through endpoints (Gemini's, Ollama's) carry only the call id and the api base.
    let pass_through = vec![
        ("x-litellm-call-id", "0d4b2a9e-5c61"),
        (
            "x-litellm-model-api-base",
            "https://generativelanguage.googleapis.com",
        ),
    ];
    let generated = whole(json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "Hi."}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 2,
            "totalTokenCount": 11},
        "modelVersion": "gemini-2.5-flash", "responseId": "r-1"}));
    let proxy = server(generated, "text/event-stream", pass_through.clone()).await;
    let mut s = Settings::new(
        "gw",
        &format!("http://{}/gemini/v1beta", proxy.addr),
        "gemini-2.5-flash",
    );
    s.key = ApiKey::new(KEY);
    s.stream = false;
    s.logprobs = false;
    let reply = GeminiBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert_eq!(
        from_litellm(&reply),
        [
            (
                "litellm_api_base",
                "https://generativelanguage.googleapis.com/"
            ),
            ("litellm_call_id", "0d4b2a9e-5c61"),
        ]
    );

    let chatted = whole(
        json!({"model": "llama3.2", "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": "Hi."}, "done": true,
        "done_reason": "stop", "prompt_eval_count": 9, "eval_count": 2}),
    );
    let pass_through = vec![
        ("x-litellm-call-id", "6a0f3d1c-77b2"),
        ("x-litellm-model-api-base", "http://ollama.lab:11434"),
    ];
    let proxy = server(chatted, "application/x-ndjson", pass_through).await;
    let mut s = ollama::settings("gw", &format!("http://{}/ollama", proxy.addr), "llama3.2");
    s.stream = false;
    let reply = OllamaBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert_eq!(
        from_litellm(&reply),
        [
            ("litellm_api_base", "http://ollama.lab:11434/"),
            ("litellm_call_id", "6a0f3d1c-77b2"),
        ]
    );
}

#[tokio::test]
async fn groq_says_which_request_and_seed_served_a_streamed_call() {
    let chunk = |delta: Value, finish: Value, groq: Value| {
        json!({"id": "chatcmpl-7d1", "object": "chat.completion.chunk", "created": 1752000000,
               "model": "llama-3.1-8b-instant", "system_fingerprint": "fp_c523237e5d",
               "choices": [{"index": 0, "delta": delta, "logprobs": null,
                            "finish_reason": finish}],
               "x_groq": groq})
        .to_string()
    };
    let mut chunks = events(&[
        chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
            json!({"id": "req_01k0f9t2a3e8b7c6d5"}),
        ),
        chunk(json!({"content": "Hi."}), Value::Null, Value::Null),
        chunk(
            json!({}),
            json!("stop"),
            json!({"id": "req_01k0f9t2a3e8b7c6d5", "seed": 7,
                   "usage": {"queue_time": 0.05, "prompt_tokens": 12, "prompt_time": 0.001,
                             "completion_tokens": 3, "completion_time": 0.002,
                             "total_tokens": 15, "total_time": 0.003}}),
        ),
    ]);
    chunks.push("data: [DONE]\n\n".into());
    let groq = server(
        Canned::Stream { chunks, cut: false },
        "text/event-stream",
        vec![("x-request-id", "req_01k0f9t2a3e8b7c6d5")],
    )
    .await;
    let base = format!("http://{}/openai/v1", groq.addr);
    let reply = openai(&base, true).call(&request()).await.unwrap();
    assert_eq!(
        served(&reply),
        [
            ("groq_id", "req_01k0f9t2a3e8b7c6d5"),
            ("groq_seed", "7"),
            ("model", "llama-3.1-8b-instant"),
            ("request_id", "req_01k0f9t2a3e8b7c6d5"),
            ("response_id", "chatcmpl-7d1"),
            ("system_fingerprint", "fp_c523237e5d"),
        ]
    );
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(3));
}

#[tokio::test]
async fn a_vllm_fingerprint_is_recorded_whole_and_in_parts() {
    let vllm = server(
        whole(
            json!({"id": "chatcmpl-0f9e8d7c6b5a", "object": "chat.completion",
            "created": 1752000000, "model": "Qwen/Qwen3-8B",
            "system_fingerprint": "vllm-0.11.0-H100-tp8-bf16-a3b21f94",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi.",
                "refusal": null, "annotations": null, "audio": null, "function_call": null,
                "tool_calls": [], "reasoning_content": null},
                "logprobs": null, "finish_reason": "stop", "stop_reason": null}],
            "service_tier": null,
            "usage": {"prompt_tokens": 9, "total_tokens": 11, "completion_tokens": 2,
                      "prompt_tokens_details": null},
            "prompt_logprobs": null, "kv_transfer_params": null}),
        ),
        "text/event-stream",
        vec![],
    )
    .await;
    let base = format!("http://{}/v1", vllm.addr);
    let reply = openai(&base, false).call(&request()).await.unwrap();
    assert_eq!(
        served(&reply),
        [
            ("config_hash", "a3b21f94"),
            ("dtype", "bf16"),
            ("hardware", "H100"),
            ("model", "Qwen/Qwen3-8B"),
            ("response_id", "chatcmpl-0f9e8d7c6b5a"),
            ("system_fingerprint", "vllm-0.11.0-H100-tp8-bf16-a3b21f94"),
            ("tensor_parallel", "8"),
            ("vllm_version", "0.11.0"),
        ]
    );
}

/// What a current llama-server answers outside any call: `/v1/models` with the model's `meta`
/// and `/props` with the server's own name for the quantization.
fn llama_server_documents(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("GET", "/v1/models") => Some(json!({"object": "list", "data": [{
            "id": "Qwen3-8B-Q4_K_M.gguf", "object": "model", "created": 1765432100,
            "owned_by": "llamacpp", "meta": {"vocab_type": 2, "n_vocab": 151936,
            "n_ctx_train": 40960, "n_embd": 4096, "n_params": 8190735360u64,
            "size": 5027783488u64}}]})),
        ("GET", "/props") => Some(json!({
            "default_generation_settings": {"n_ctx": 4096, "params": {"seed": 4294967295u64}},
            "total_slots": 1, "model_alias": "Qwen3-8B-Q4_K_M.gguf",
            "model_ftype": "Q4_K - Medium", "model_path": "/models/Qwen3-8B-Q4_K_M.gguf",
            "modalities": {"vision": false, "video": false, "audio": false},
            "chat_template": "{{ messages }}", "build_info": "b6700-a1b2c3d4",
            "is_sleeping": false})),
        _ => None,
    }
}

#[tokio::test]
async fn a_llama_server_names_its_model_size_and_quantization() {
    let options = Options {
        stream_type: "text/event-stream",
        headers: vec![],
        outside: Some(llama_server_documents),
    };
    let not_found = Canned::Whole {
        status: 404,
        headers: vec![],
        body: json!({"error": {"code": 404, "message": "File Not Found",
            "type": "not_found_error"}})
        .to_string(),
    };
    let llama = Scripted::start(vec![], Some(not_found), options).await;
    let settings = Settings::new(
        "llama",
        &format!("http://{}/v1", llama.addr),
        "Qwen3-8B-Q4_K_M.gguf",
    );
    let identity = OpenAiBackend::new(settings)
        .unwrap()
        .server_identity()
        .await
        .unwrap();
    let fields: Vec<(&str, &str)> = identity
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("build_info", "b6700-a1b2c3d4"),
            ("chat_template_sha256", "f24189f08c85a1eb"),
            ("created", "1765432100"),
            ("default_seed", "4294967295"),
            ("id", "Qwen3-8B-Q4_K_M.gguf"),
            ("model_path", "/models/Qwen3-8B-Q4_K_M.gguf"),
            ("n_ctx_train", "40960"),
            ("n_embd", "4096"),
            ("n_params", "8190735360"),
            ("n_vocab", "151936"),
            ("owned_by", "llamacpp"),
            ("quantization", "Q4_K - Medium"),
            ("size", "5027783488"),
            ("total_slots", "1"),
            ("vocab_type", "2"),
        ]
    );
    // llama-server has no /version: that read went to the script and was refused.
    let asked: Vec<String> = llama.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(asked, ["/version"]);
}

/// Ollama's `/api/tags`, listing the model the test calls.
fn ollama_tags(method: &str, path: &str) -> Option<Value> {
    (method == "GET" && path == "/api/tags").then(|| {
        json!({"models": [{"name": "llama3.2:latest", "model": "llama3.2:latest",
            "modified_at": "2026-01-01T00:00:00Z", "size": 2019393189u64,
            "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
            "details": {"format": "gguf", "family": "llama", "parameter_size": "3.2B",
                        "quantization_level": "Q4_K_M"}}]})
    })
}

#[tokio::test]
async fn ollama_is_asked_for_log_probabilities_and_its_tokens_are_kept() {
    let token = |t: &str, lp: f64| {
        json!({"token": t, "logprob": lp, "bytes": t.bytes().collect::<Vec<_>>(),
               "top_logprobs": []})
    };
    let line = |content: &str, logprobs: Value, done: bool| {
        let mut object = json!({"model": "llama3.2", "created_at": "2026-01-01T00:00:00.1Z",
            "message": {"role": "assistant", "content": content}, "done": done});
        if done {
            object["done_reason"] = json!("stop");
            object["prompt_eval_count"] = json!(26);
            object["eval_count"] = json!(3);
        } else {
            object["logprobs"] = logprobs;
        }
        format!("{object}\n")
    };
    let chunks = vec![
        line("Hi", json!([token("Hi", -0.03125)]), false),
        line(
            " there.",
            json!([token(" there", -0.5), token(".", -0.25)]),
            false,
        ),
        line("", Value::Null, true),
    ];
    let options = Options {
        stream_type: "application/x-ndjson",
        headers: vec![],
        outside: Some(ollama_tags),
    };
    let ollama_server =
        Scripted::start(vec![], Some(Canned::Stream { chunks, cut: false }), options).await;
    let settings = ollama::settings("ol", &format!("http://{}", ollama_server.addr), "llama3.2");
    let reply = OllamaBackend::new(settings)
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    assert_eq!(reply.text, "Hi there.");
    assert_eq!(
        reply.tokens,
        Some(vec!["Hi".into(), " there".into(), ".".into()])
    );
    assert_eq!(reply.logprobs, Some(vec![-0.03125, -0.5, -0.25]));
    let sent = &ollama_server.received()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.body["logprobs"], true);
    assert!(sent.body.get("top_logprobs").is_none());
}

#[tokio::test]
async fn reasoning_tokens_are_recorded_as_xai_and_gemini_count_them() {
    // xAI: 290 tokens of reasoning, outside the one it calls the completion.
    let xai = server(
        whole(
            json!({"id": "3f0c9a1e", "object": "chat.completion", "created": 1752000000,
            "model": "grok-4-0709",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "4",
                "refusal": null}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 303,
                "prompt_tokens_details": {"text_tokens": 12, "audio_tokens": 0,
                    "image_tokens": 0, "cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 290, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
                "num_sources_used": 0},
            "system_fingerprint": "fp_3a40c4b4b0"}),
        ),
        "text/event-stream",
        vec![],
    )
    .await;
    let reply = openai(&format!("http://{}/v1", xai.addr), false)
        .call(&request())
        .await
        .unwrap();
    let usage = reply.usage.unwrap();
    assert_eq!(
        (usage.completion_tokens, usage.reasoning_tokens),
        (1, Some(290))
    );

    // Gemini: thoughts counted apart, and added into the completion by reprise.
    let gemini = server(
        whole(json!({"candidates": [{"content": {"role": "model",
                "parts": [{"text": "4"}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 9, "candidatesTokenCount": 1,
                "totalTokenCount": 305, "thoughtsTokenCount": 295,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 9}]},
            "modelVersion": "gemini-2.5-pro", "responseId": "r-2"})),
        "text/event-stream",
        vec![],
    )
    .await;
    let mut s = Settings::new(
        "g",
        &format!("http://{}/v1beta", gemini.addr),
        "gemini-2.5-pro",
    );
    s.key = ApiKey::new(KEY);
    s.stream = false;
    s.logprobs = false;
    let reply = GeminiBackend::new(s)
        .unwrap()
        .call(&request())
        .await
        .unwrap();
    let usage = reply.usage.unwrap();
    assert_eq!(
        (usage.completion_tokens, usage.reasoning_tokens),
        (296, Some(295))
    );
}
