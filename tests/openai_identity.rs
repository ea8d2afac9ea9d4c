//! Server identity of `openai`-kind targets against loopback servers shaped like llama.cpp
//! (`/props`), vLLM (`/version`) and a plain Chat Completions server (neither), and OpenRouter's
//! serving provider read per call over HTTP, whole and streamed.

#[path = "support/chat_server.rs"]
mod chat_server;

use std::collections::BTreeMap;

use chat_server::{transcript, Canned, Server};
use reprise::protocol::Params;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, ChatRequest};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-7f3a9c";
const TEMPLATE: &str = "{% for m in messages %}{{ m.content }}{% endfor %}";

fn backend(server: &Server, model: &str, stream: bool) -> OpenAiBackend {
    let mut s = Settings::new("local", &server.base_url(), model);
    s.key = ApiKey::new(KEY);
    s.stream = stream;
    OpenAiBackend::new(s).unwrap()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `/v1/models` and `/props` as llama-server answers them (one model, meta nested).
fn llama_cpp_documents() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/models",
            json!({"object": "list", "data": [{
                "id": "qwen2.5-0.5b", "object": "model", "created": 1752000000,
                "owned_by": "llamacpp",
                "meta": {"vocab_type": 2, "n_vocab": 151936, "n_params": 494032768,
                         "size": 491400032}}]}),
        ),
        (
            "/props",
            json!({
                "default_generation_settings": {"n_ctx": 4096,
                    "params": {"seed": 4294967295u64, "temperature": 0.8, "top_k": 40}},
                "total_slots": 1,
                "model_path": "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf",
                "chat_template": TEMPLATE,
                "chat_template_caps": {"supports_tools": false},
                "modalities": {"vision": false, "audio": false},
                "build_info": "b5890-0d922267",
                "is_sleeping": false
            }),
        ),
    ]
}

#[tokio::test]
async fn a_llama_cpp_server_names_its_build_model_file_slots_seed_and_template() {
    let server = Server::start_with(llama_cpp_documents(), vec![], None).await;
    let identity = backend(&server, "qwen2.5-0.5b", false)
        .server_identity()
        .await;
    assert_eq!(
        identity,
        Some(map(&[
            ("build_info", "b5890-0d922267"),
            ("chat_template_sha256", "2f3f666573313d2b"),
            ("created", "1752000000"),
            ("default_seed", "4294967295"),
            ("id", "qwen2.5-0.5b"),
            ("model_path", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf"),
            ("n_params", "494032768"),
            ("n_vocab", "151936"),
            ("owned_by", "llamacpp"),
            ("quantization", "Q4_K_M"),
            ("size", "491400032"),
            ("total_slots", "1"),
            ("vocab_type", "2"),
        ]))
    );
    // Identity reads are not calls: the script saw nothing.
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_vllm_server_names_its_version_and_model_root() {
    let documents = vec![
        (
            "/v1/models",
            json!({"object": "list", "data": [{
                "id": "Qwen/Qwen2.5-7B-Instruct", "object": "model", "created": 1752000001,
                "owned_by": "vllm", "root": "/data/qwen2.5-7b", "parent": null,
                "max_model_len": 32768, "permission": [{"id": "modelperm-1"}]}]}),
        ),
        ("/version", json!({"version": "0.8.5"})),
    ];
    let server = Server::start_with(documents, vec![], None).await;
    let identity = backend(&server, "Qwen/Qwen2.5-7B-Instruct", true)
        .server_identity()
        .await;
    assert_eq!(
        identity,
        Some(map(&[
            ("created", "1752000001"),
            ("id", "Qwen/Qwen2.5-7B-Instruct"),
            ("max_model_len", "32768"),
            ("owned_by", "vllm"),
            ("root", "/data/qwen2.5-7b"),
            ("server_version", "0.8.5"),
        ]))
    );
}

#[tokio::test]
async fn a_server_without_props_or_version_is_known_by_its_model_entry_alone() {
    let documents = vec![(
        "/v1/models",
        json!({"object": "list", "data": [
            {"id": "other", "object": "model", "owned_by": "x"},
            {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"}]}),
    )];
    let server = Server::start_with(documents, vec![], None).await;
    let identity = backend(&server, "gpt-4o-mini", false)
        .server_identity()
        .await;
    assert_eq!(
        identity,
        Some(map(&[
            ("created", "1721172741"),
            ("id", "gpt-4o-mini"),
            ("owned_by", "system"),
        ]))
    );
    // Nothing listed, nothing documented: nothing to say.
    let bare = Server::start(vec![], None).await;
    assert_eq!(
        backend(&bare, "gpt-4o-mini", false).server_identity().await,
        None
    );
}

#[tokio::test]
async fn an_unreachable_server_has_no_identity_and_no_error() {
    let mut s = Settings::new("local", "http://127.0.0.1:9/v1", "m");
    s.key = ApiKey::new(KEY);
    let backend = OpenAiBackend::new(s).unwrap();
    assert_eq!(backend.server_identity().await, None);
}

fn request() -> ChatRequest {
    ChatRequest {
        system: None,
        user: "Capital of France?".into(),
        params: Params::default(),
    }
}

#[tokio::test]
async fn openrouters_serving_provider_is_recorded_per_call_whole_and_streamed() {
    let whole = json!({
        "id": "gen-1741-abc", "provider": "DeepInfra", "model": "meta-llama/llama-3.1-8b-instruct",
        "object": "chat.completion", "created": 1741570283, "system_fingerprint": null,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                     "finish_reason": "stop", "native_finish_reason": "stop"}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14, "cost": 0.0}
    });
    let server = Server::start(
        vec![Canned::Whole {
            status: 200,
            headers: vec![("x-generation-id", "gen-1741-abc")],
            body: whole.to_string(),
        }],
        None,
    )
    .await;
    let reply = backend(&server, "meta-llama/llama-3.1-8b-instruct", false)
        .call(&request())
        .await
        .unwrap();
    assert_eq!(
        reply.served,
        map(&[
            ("model", "meta-llama/llama-3.1-8b-instruct"),
            ("provider", "DeepInfra"),
            ("response_id", "gen-1741-abc"),
        ])
    );

    // The streamed transcript (with its `: OPENROUTER PROCESSING` comment) with `provider` in
    // every chunk, as OpenRouter sends it.
    let chunks: Vec<String> = transcript()
        .into_iter()
        .map(|c| c.replace(r#""object":"#, r#""provider":"Together","object":"#))
        .collect();
    assert!(chunks[0].starts_with(": OPENROUTER PROCESSING"));
    assert!(
        chunks[1].contains(r#""provider":"Together""#),
        "{}",
        chunks[1]
    );
    let server = Server::start(vec![Canned::Events { chunks, cut: false }], None).await;
    let reply = backend(&server, "meta-llama/llama-3.1-8b-instruct", true)
        .call(&request())
        .await
        .unwrap();
    assert_eq!(reply.text, "Paris.");
    assert_eq!(
        reply.served,
        map(&[
            ("model", "reprise-local-1-rev2"),
            ("provider", "Together"),
            ("request_id", "req-stream-1"),
            ("response_id", "chatcmpl-s1"),
            ("system_fingerprint", "fp_s"),
        ])
    );
}

#[tokio::test]
async fn reprise_serve_reads_as_its_model_revision_build_and_version() {
    use reprise::serve::{ServeConfig, Server as Serve};
    let serve = Serve::bind("127.0.0.1:0".parse().unwrap(), ServeConfig::default())
        .await
        .unwrap();
    let addr = serve.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(serve.run(async {
        let _ = stopped.await;
    }));
    let mut s = Settings::new(
        "serve",
        &format!("http://{addr}/v1"),
        reprise::serve::model_id(),
    );
    s.key = ApiKey::new(KEY);
    let identity = OpenAiBackend::new(s)
        .unwrap()
        .server_identity()
        .await
        .unwrap();
    let _ = stop.send(());
    let _ = running.await;
    // Its /models entry as before, plus /version's; /props is not found there and adds nothing.
    let keys: Vec<&str> = identity.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "build",
            "created",
            "id",
            "mode",
            "owned_by",
            "revision",
            "server_version"
        ]
    );
    assert_eq!(identity["server_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(identity["build"], reprise::serve::build());
    assert_eq!(identity["id"], reprise::serve::model_id());
}
