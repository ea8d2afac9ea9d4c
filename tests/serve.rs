//! `reprise serve` on loopback: the wire format pinned by golden files (a JSON completion and
//! an SSE transcript), `/v1/models`, OpenAI-shaped errors, and every injected fault — seen raw
//! on the socket and through reprise's own OpenAI client.
//!
//! Golden files: set `REPRISE_UPDATE_GOLDEN=1` to rewrite them after a deliberate change.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use reprise::local::LocalModel;
use reprise::protocol::DecodeMode;
use reprise::providers::http::{Settings, Timeouts};
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, ChatRequest};
use reprise::record::ErrorClass;
use reprise::serve::{ServeConfig, Server};
use serde_json::{json, Value};

/// A server on a free loopback port, on its own runtime; stops when dropped.
struct Running {
    addr: SocketAddr,
    stats: std::sync::Arc<reprise::serve::Stats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(config: ServeConfig) -> Running {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
                    .await
                    .unwrap();
                addr_tx
                    .send((server.local_addr().unwrap(), server.stats()))
                    .unwrap();
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        let (addr, stats) = addr_rx.recv().unwrap();
        Running {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn with_faults(spec: &str) -> ServeConfig {
    ServeConfig {
        faults: spec.parse().unwrap(),
        seed: Some(1),
        ..ServeConfig::default()
    }
}

/// One HTTP/1.1 exchange on a fresh connection, read until the server closes it.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    /// The body, de-chunked; `complete` is false when the connection ended early.
    body: Vec<u8>,
    complete: bool,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }
}

fn exchange(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    // A cut connection may end in an error: keep what arrived.
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v == "chunked");
    let (body, complete) = if chunked {
        dechunk(rest)
    } else {
        let length: Option<usize> = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok());
        (rest.to_vec(), length.is_none_or(|n| n == rest.len()))
    };
    Reply {
        status,
        headers,
        body,
        complete,
    }
}

/// Chunked transfer coding; incomplete when the terminating zero-size chunk never came.
fn dechunk(mut rest: &[u8]) -> (Vec<u8>, bool) {
    let mut body = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return (body, false);
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            return (body, true);
        }
        if rest.len() < size + 2 {
            body.extend_from_slice(&rest[..rest.len().min(size)]);
            return (body, false);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn chat(addr: SocketAddr, request: &Value) -> Reply {
    exchange(addr, "POST", "/v1/chat/completions", Some(request))
}

fn request(stream: bool) -> Value {
    let mut r = json!({
        "model": "reprise-local-1",
        "messages": [
            {"role": "system", "content": "Answer with a letter."},
            {"role": "user", "content": "Which element did Marie Curie discover?\nA) helium\nB) radium\nC) iron\nD) neon"}
        ],
        "temperature": 0,
        "seed": 7,
        "max_tokens": 10,
        "logprobs": true,
        "top_logprobs": 2
    });
    if stream {
        r["stream"] = json!(true);
        r["stream_options"] = json!({"include_usage": true});
    }
    r
}

/// Ids and times differ per response; everything else is pinned.
fn normalize(text: &str) -> String {
    let ids = regex::Regex::new(r#""id":"chatcmpl-[0-9a-f]{24}""#).unwrap();
    let created = regex::Regex::new(r#""created":\d+"#).unwrap();
    let fp = regex::Regex::new(r#"fp_[0-9a-f]{12}_"#).unwrap();
    let text = ids.replace_all(text, r#""id":"chatcmpl-ID""#);
    let text = created.replace_all(&text, r#""created":0"#);
    fp.replace_all(&text, "fp_REVISION_").into_owned()
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/serve")
        .join(name);
    if std::env::var_os("REPRISE_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (REPRISE_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(actual, expected, "{} differs", path.display());
}

#[test]
fn a_json_completion_matches_the_golden_transcript() {
    let server = Running::start(ServeConfig::default());
    let reply = chat(server.addr, &request(false));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert!(reply
        .header("x-request-id")
        .is_some_and(|id| id.starts_with("req_")));
    let body = reply.json();
    golden(
        "completion.request.json",
        &format!("{:#}\n", request(false)),
    );
    let pinned: Value = serde_json::from_str(&normalize(&body.to_string())).unwrap();
    golden("completion.response.json", &format!("{pinned:#}\n"));
    // The fingerprint names what served: revision, mode and build.
    let rev = LocalModel::builtin()
        .revision()
        .trim_start_matches("sha256:");
    assert_eq!(
        body["system_fingerprint"],
        format!(
            "fp_{}_batch-invariant_reprise-{}",
            &rev[..12],
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn a_stream_matches_the_golden_sse_transcript() {
    let server = Running::start(ServeConfig::default());
    let reply = chat(server.addr, &request(true));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert!(reply.complete);
    let text = reply.text();
    golden("stream.request.json", &format!("{:#}\n", request(true)));
    golden("stream.sse", &normalize(&text));
    // The stream says what the JSON response says.
    let whole = chat(server.addr, &request(false)).json();
    let events: Vec<Value> = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, whole["choices"][0]["message"]["content"]);
    assert_eq!(events.last().unwrap()["usage"], whole["usage"]);
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn models_lists_the_model_with_its_revision_and_mode() {
    let server = Running::start(ServeConfig {
        mode: DecodeMode::Batched,
        ..ServeConfig::default()
    });
    let list = exchange(server.addr, "GET", "/v1/models", None);
    assert_eq!(list.status, 200);
    assert_eq!(
        list.json(),
        json!({"object": "list", "data": [{
            "id": "reprise-local-1",
            "object": "model",
            "created": 1_767_225_600,
            "owned_by": "reprise",
            "revision": LocalModel::builtin().revision(),
            "mode": "batched",
            "build": format!("reprise-{}", env!("CARGO_PKG_VERSION")),
        }]})
    );
    let one = exchange(server.addr, "GET", "/v1/models/reprise-local-1", None);
    assert_eq!(one.json()["id"], "reprise-local-1");
    let missing = exchange(server.addr, "GET", "/v1/models/gpt-4o", None);
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "model_not_found");
}

#[test]
fn errors_come_in_openais_shape() {
    let server = Running::start(ServeConfig::default());
    let mut bad = request(false);
    bad["n"] = json!(3);
    let reply = chat(server.addr, &bad);
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": {
            "message": "reprise serve generates one choice per request; n must be 1, got 3.",
            "type": "invalid_request_error",
            "param": "n",
            "code": null,
        }})
    );
    let mut other = request(false);
    other["model"] = json!("gpt-4o");
    let reply = chat(server.addr, &other);
    assert_eq!(
        (reply.status, reply.json()["error"]["param"].clone()),
        (404, json!("model"))
    );
    let reply = exchange(server.addr, "GET", "/v1/chat/completions", None);
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"]["code"], "unknown_url");
    let reply = exchange(
        server.addr,
        "POST",
        "/v1/completions",
        Some(&request(false)),
    );
    assert_eq!(
        reply.json()["error"]["message"],
        "Unknown request URL: POST /v1/completions."
    );
}

#[test]
fn a_429_carries_retry_after_and_a_500_a_server_error() {
    let server = Running::start(ServeConfig {
        retry_after: 3,
        ..with_faults("429=1")
    });
    let reply = chat(server.addr, &request(false));
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("3"));
    assert_eq!(reply.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(reply.json()["error"]["type"], "requests");

    let server = Running::start(with_faults("500=1"));
    let reply = chat(server.addr, &request(true));
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"]["type"], "server_error");
}

#[test]
fn a_cut_ends_the_body_early() {
    let server = Running::start(with_faults("cut=1"));
    let reply = chat(server.addr, &request(false));
    assert_eq!(reply.status, 200);
    assert!(
        !reply.complete,
        "the body should stop short of its Content-Length"
    );
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());

    let reply = chat(server.addr, &request(true));
    assert!(!reply.complete);
    let text = reply.text();
    assert!(text.starts_with("data: {"), "{text}");
    assert!(
        !text.contains("[DONE]") && !text.contains("finish_reason\":\""),
        "{text}"
    );
}

#[test]
fn malformed_bodies_are_not_json() {
    let server = Running::start(with_faults("malformed=1"));
    let reply = chat(server.addr, &request(false));
    assert_eq!(reply.status, 200);
    assert!(reply.complete);
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());

    let reply = chat(server.addr, &request(true));
    let text = reply.text();
    let bad = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]" && serde_json::from_str::<Value>(d).is_err())
        .count();
    assert_eq!(bad, 1, "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[test]
fn a_stall_holds_the_response_back() {
    let server = Running::start(ServeConfig {
        stall: Duration::from_millis(300),
        ..with_faults("stall=1")
    });
    let started = Instant::now();
    let reply = chat(server.addr, &request(false));
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(reply.status, 200);
    reply.json();
}

#[test]
fn fault_rates_hold_and_replay_with_a_seed() {
    let statuses = |seed| {
        let server = Running::start(ServeConfig {
            seed: Some(seed),
            ..with_faults("429=0.2,500=0.1")
        });
        let mut r = request(false);
        r["max_tokens"] = json!(1);
        (0..300)
            .map(|_| chat(server.addr, &r).status)
            .collect::<Vec<u16>>()
    };
    let a = statuses(5);
    let count = |s| a.iter().filter(|&&x| x == s).count();
    // Binomial(300, 0.2): mean 60, sd 7; (300, 0.1): mean 30, sd 5.
    assert!((35..=85).contains(&count(429)), "{}", count(429));
    assert!((12..=48).contains(&count(500)), "{}", count(500));
    assert_eq!(count(200) + count(429) + count(500), 300);
    assert_eq!(
        a,
        statuses(5),
        "the same seed gives the same fault sequence"
    );
}

// --- reprise's own OpenAI client against the server ---

fn client(server: &Running, timeouts: Option<Timeouts>) -> OpenAiBackend {
    let mut s = Settings::new("serve", &server.base_url(), "reprise-local-1");
    if let Some(t) = timeouts {
        s.timeouts = t;
    }
    OpenAiBackend::new(s).unwrap()
}

fn ask() -> ChatRequest {
    ChatRequest {
        system: None,
        user: "Tell me about Richard Feynman.".into(),
        params: reprise::protocol::Params {
            temperature: Some(0.0),
            max_tokens: Some(40),
            ..Default::default()
        },
    }
}

fn call(
    backend: &OpenAiBackend,
) -> Result<reprise::providers::Reply, reprise::providers::CallFailure> {
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(backend.call(&ask()))
}

#[test]
fn the_openai_client_reads_what_serve_sends() {
    let server = Running::start(ServeConfig::default());
    let reply = call(&client(&server, None)).unwrap();
    let local = LocalModel::builtin().generate(&reprise::local::GenRequest {
        user: "Tell me about Richard Feynman.".into(),
        max_tokens: 40,
        ..Default::default()
    });
    assert_eq!(reply.text, local.text);
    assert_eq!(reply.tokens.as_ref(), Some(&local.tokens));
    assert_eq!(reply.logprobs.as_ref(), Some(&local.logprobs));
    assert_eq!(reply.finish_reason.as_deref(), Some("length"));
    assert_eq!(reply.usage.map(|u| u.completion_tokens), Some(40));
    assert!(reply.ttft.is_some());
    assert_eq!(reply.served["model"], "reprise-local-1");
    assert!(reply.served["system_fingerprint"].contains("_batch-invariant_"));
    assert!(reply.served["response_id"].starts_with("chatcmpl-"));
    assert!(reply.served["request_id"].starts_with("req_"));
}

#[test]
fn each_fault_reaches_the_client_as_its_error_class() {
    let cases = [
        ("429=1", ErrorClass::RateLimit),
        ("500=1", ErrorClass::Server),
        ("cut=1", ErrorClass::TruncatedStream),
        ("malformed=1", ErrorClass::MalformedResponse),
    ];
    for (spec, class) in cases {
        let server = Running::start(with_faults(spec));
        let failure = call(&client(&server, None)).unwrap_err();
        assert_eq!(failure.class, class, "{spec}: {failure:?}");
        if class == ErrorClass::RateLimit {
            assert!(
                failure.message.contains("Retry-After 1 s"),
                "{}",
                failure.message
            );
        }
    }
    let server = Running::start(ServeConfig {
        stall: Duration::from_secs(5),
        ..with_faults("stall=1")
    });
    let timeouts = Timeouts {
        first_byte: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let failure = call(&client(&server, Some(timeouts))).unwrap_err();
    assert_eq!(failure.class, ErrorClass::Timeout, "{failure:?}");
}

// --- `reprise run` with an openai-kind target pointed at `reprise serve` ---

const BIN: &str = env!("CARGO_BIN_EXE_reprise");

/// Runs `reprise run PROTOCOL --json` with a config naming `server` as provider `serve`.
fn run_against(server: &Running, dir: &Path, protocol: &str, args: &[&str]) -> Value {
    run_configured(server, dir, protocol, args, "")
}

/// As `run_against`, with `more` added to the provider's table.
fn run_configured(
    server: &Running,
    dir: &Path,
    protocol: &str,
    args: &[&str],
    more: &str,
) -> Value {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[providers.serve]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"reprise-local-1\"\n{more}",
            server.base_url()
        ),
    )
    .unwrap();
    let path = dir.join("p.toml");
    std::fs::write(&path, protocol).unwrap();
    let out = std::process::Command::new(BIN)
        .arg("run")
        .arg(&path)
        .args(args)
        .arg("--json")
        .env("REPRISE_CONFIG_DIR", &config)
        .env("REPRISE_DATA_DIR", dir.join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn archived(summary: &Value) -> Vec<Value> {
    std::fs::read_to_string(summary["archive"].as_str().unwrap())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "call")
        .collect()
}

fn item<'a>(summary: &'a Value, target: &str) -> &'a Value {
    let t = summary["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"] == target)
        .unwrap();
    &t["items"][0]
}

const FLOATS: &str = "Explain in one paragraph why floating-point addition is not associative.";

#[test]
fn an_openai_target_on_serve_gives_the_local_models_text_byte_for_byte() {
    let server = Running::start(ServeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let protocol = format!(
        "[protocol]\nname = \"over-http\"\n[prompt]\nuser = \"{FLOATS}\"\n[params]\ntemperature = 0.0\nmax_tokens = 120\n[campaign]\nrepeats = 64\nconcurrency = 16\n[[targets]]\nprovider = \"local\"\n[[targets]]\nprovider = \"serve\"\n"
    );
    let summary = run_against(&server, dir.path(), &protocol, &[]);
    assert_eq!(item(&summary, "serve")["distinct_outputs"], 1, "{summary}");
    assert_eq!(item(&summary, "serve")["ok"], 64);
    let calls = archived(&summary);
    let text = |target: &str| {
        calls
            .iter()
            .find(|c| c["target"] == target)
            .map(|c| c["output"].clone())
            .unwrap()
    };
    assert_eq!(text("serve"), text("local"));
    let over_http = calls.iter().find(|c| c["target"] == "serve").unwrap();
    assert_eq!(over_http["served"]["model"], "reprise-local-1");
    assert!(over_http["timing"]["ttft_ms"].is_number(), "{over_http}");
    assert!(over_http["usage"]["completion_tokens"].as_u64() > Some(0));
    assert_eq!(
        over_http["tokens"].as_array().map(Vec::len),
        over_http["logprobs"].as_array().map(Vec::len)
    );
    let verify = std::process::Command::new(BIN)
        .args(["verify", summary["archive"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn batched_serve_splits_at_temperature_zero_only_under_concurrency() {
    let server = Running::start(ServeConfig {
        mode: DecodeMode::Batched,
        ..ServeConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let protocol = format!(
        "[protocol]\nname = \"batched-over-http\"\n[prompt]\nuser = \"{FLOATS}\"\n[params]\ntemperature = 0.0\nmax_tokens = 160\n[[targets]]\nprovider = \"serve\"\n"
    );
    let crowded = run_against(
        &server,
        dir.path(),
        &protocol,
        &["--repeats", "200", "--concurrency", "32"],
    );
    let it = item(&crowded, "serve");
    assert!(it["distinct_outputs"].as_u64() > Some(1), "{crowded}");
    assert!(it["first_divergence"]["index"].as_u64() >= Some(5), "{it}");
    let fingerprints: std::collections::BTreeSet<String> = archived(&crowded)
        .iter()
        .map(|c| {
            c["served"]["system_fingerprint"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        fingerprints.len(),
        1,
        "one server, one identity: {fingerprints:?}"
    );
    assert!(fingerprints.iter().all(|f| f.contains("_batched_")));
    let alone = run_against(
        &server,
        dir.path(),
        &protocol,
        &["--repeats", "30", "--concurrency", "1"],
    );
    assert_eq!(item(&alone, "serve")["distinct_outputs"], 1, "{alone}");
}

#[test]
fn a_silent_update_on_serve_shows_as_a_second_served_identity() {
    let server = Running::start(ServeConfig {
        drift_after: Some(20),
        ..ServeConfig::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let protocol = "[protocol]\nname = \"drift-over-http\"\n[prompt]\nuser = \"Write a short poem about the sea.\"\n[params]\ntemperature = 0.0\nmax_tokens = 40\n[[targets]]\nprovider = \"serve\"\n";
    let summary = run_against(
        &server,
        dir.path(),
        protocol,
        &["--repeats", "40", "--concurrency", "1"],
    );
    let served = summary["targets"][0]["served"].as_array().unwrap();
    assert_eq!(served.len(), 2, "{summary}");
    assert_eq!(served[1]["first"]["call"], 20);
    assert_eq!(served[0]["fields"]["model"], served[1]["fields"]["model"]);
    assert_ne!(
        served[0]["fields"]["system_fingerprint"],
        served[1]["fields"]["system_fingerprint"]
    );
    assert_eq!(item(&summary, "serve")["distinct_outputs"], 2);
    // The server's own account, read at the start and at the end, shows the update too.
    let lines: Vec<Value> = std::fs::read_to_string(summary["archive"].as_str().unwrap())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at_start = &lines[0]["servers"]["serve"];
    let at_end = &lines.last().unwrap()["servers"]["serve"];
    assert_eq!(
        at_start["revision"],
        LocalModel::builtin().revision(),
        "{at_start}"
    );
    assert_eq!(
        at_end["revision"],
        LocalModel::updated().revision(),
        "{at_end}"
    );
    assert_eq!(
        at_end["build"],
        format!("reprise-{}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_serve_command_prints_where_it_listens_answers_and_stops_on_ctrl_c() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--mode", "batched"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches("/v1")
        .parse()
        .unwrap();
    assert!(addr.ip().is_loopback());
    let mut rest = String::new();
    stdout.read_line(&mut rest).unwrap();
    assert!(
        rest.contains("mode batched") && rest.contains(LocalModel::builtin().revision()),
        "{rest}"
    );
    assert_eq!(chat(addr, &request(false)).status, 200);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 requests: 1 completions"), "{stderr}");
}

#[test]
fn bad_serve_options_are_one_line_and_exit_2() {
    for (args, expected) in [
        (vec!["--faults", "404=0.1"], "unknown fault `404`"),
        (vec!["--faults", "429=0.7,500=0.7"], "more than 1"),
        (
            vec!["--mode", "fast"],
            "expected batch-invariant or batched",
        ),
    ] {
        let out = std::process::Command::new(BIN)
            .arg("serve")
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_campaign_through_transient_faults_ends_with_every_call_once_and_the_retries_archived() {
    let server = Running::start(ServeConfig {
        retry_after: 0,
        seed: Some(3),
        ..with_faults("429=0.05,500=0.05")
    });
    let dir = tempfile::tempdir().unwrap();
    let protocol = "[protocol]\nname = \"faulty\"\n[prompt]\nuser = \"Tell me about Richard Feynman.\"\n[params]\ntemperature = 0.0\nmax_tokens = 20\n[[targets]]\nprovider = \"serve\"\n";
    let summary = run_against(
        &server,
        dir.path(),
        protocol,
        &["--repeats", "200", "--concurrency", "16"],
    );
    let it = item(&summary, "serve");
    assert_eq!(it["calls"], 200, "{it}");
    let retries: u64 = it["retries_by_class"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert!(retries >= 5, "about 10% of 200 attempts fail: {it}");
    // Three failures in a row is a 1-in-1000 event per call.
    assert!(it["ok"].as_u64() >= Some(198), "{it}");
    let calls = archived(&summary);
    assert_eq!(calls.len() as u64, 200 + retries);
    let mut outcomes: Vec<u64> = calls
        .iter()
        .filter(|c| c["retried"] != true)
        .map(|c| c["call"].as_u64().unwrap())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        (0..200).collect::<Vec<u64>>(),
        "each call exactly once"
    );
    for r in calls.iter().filter(|c| c["retried"] == true) {
        assert!(
            matches!(r["error"]["class"].as_str(), Some("rate_limit" | "server")),
            "{r}"
        );
        if r["error"]["class"] == "rate_limit" {
            // The response's rate-limit headers are archived with the attempt.
            assert_eq!(r["rate_limit"]["retry-after"], "0", "{r}");
        }
        assert!(
            calls
                .iter()
                .any(|n| n["call"] == r["call"]
                    && n["attempt"] == r["attempt"].as_u64().unwrap() + 1),
            "{r}"
        );
    }
}

/// Issue 7's fault campaign, quick: 10% of requests fail, 2% of each kind. Every planned call
/// ends with exactly one outcome; what failed before the first byte (429, 500, a stall past
/// the first-byte timeout) is retried, what failed after it (a cut, a malformed reply) is the
/// call's outcome; every Retry-After is waited out; the archive verifies.
/// The full 1,000-call version: benches/fault-campaign.sh.
#[test]
fn a_campaign_through_every_kind_of_fault_loses_and_doubles_nothing() {
    let server = Running::start(ServeConfig {
        retry_after: 1,
        seed: Some(5),
        stall: Duration::from_secs(5),
        ..with_faults("429=0.02,500=0.02,stall=0.02,cut=0.02,malformed=0.02")
    });
    let dir = tempfile::tempdir().unwrap();
    let protocol = "[protocol]\nname = \"faults\"\n[prompt]\nuser = \"Tell me about Richard Feynman.\"\n[params]\ntemperature = 0.0\nmax_tokens = 20\n[[targets]]\nprovider = \"serve\"\n";
    let summary = run_configured(
        &server,
        dir.path(),
        protocol,
        &["--repeats", "200", "--concurrency", "16"],
        "first_byte_timeout_ms = 400\nmax_retries = 4\n",
    );
    let calls = archived(&summary);
    let mut outcomes: Vec<u64> = calls
        .iter()
        .filter(|c| c["retried"] != true)
        .map(|c| c["call"].as_u64().unwrap())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        (0..200).collect::<Vec<u64>>(),
        "each call exactly once"
    );
    let class = |c: &Value| c["error"]["class"].as_str().unwrap_or("").to_string();
    let retried: Vec<&Value> = calls.iter().filter(|c| c["retried"] == true).collect();
    assert!(
        retried.len() >= 6,
        "about 6% of attempts fail before a reply: {}",
        retried.len()
    );
    for r in &retried {
        assert!(
            matches!(class(r).as_str(), "rate_limit" | "server" | "timeout"),
            "{r}"
        );
        let next = calls
            .iter()
            .find(|n| n["call"] == r["call"] && n["attempt"] == r["attempt"].as_u64().unwrap() + 1)
            .unwrap_or_else(|| panic!("no attempt after {r}"));
        if class(r) == "rate_limit" {
            // Retry-After: 1 is waited out before the next attempt starts.
            let ended = r["timing"]["start_ms"].as_f64().unwrap()
                + r["timing"]["latency_ms"].as_f64().unwrap();
            let next_start = next["timing"]["start_ms"].as_f64().unwrap();
            assert!(next_start >= ended + 999.0, "{r} then {next}");
        }
    }
    // Failures after the first byte are outcomes, never sent twice.
    let after_first_byte: Vec<String> = calls
        .iter()
        .filter(|c| c["status"] == "error" && c["retried"] != true)
        .map(class)
        .collect();
    assert!(!after_first_byte.is_empty());
    assert!(
        after_first_byte
            .iter()
            .all(|c| matches!(c.as_str(), "truncated_stream" | "malformed_response")),
        "{after_first_byte:?}"
    );
    let verified = std::process::Command::new(BIN)
        .arg("verify")
        .arg(summary["archive"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn providers_checks_key_endpoint_and_model_without_a_billable_call() {
    let server = Running::start(ServeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let base = server.base_url();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[providers.serve]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"reprise-local-1\"\napi_key_env = \"REPRISE_TEST_SERVE_KEY\"\n\n\
             [providers.wrong]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"gpt-9\"\n\n\
             [providers.keyless]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"m\"\napi_key_env = \"REPRISE_TEST_UNSET_KEY\"\n"
        ),
    )
    .unwrap();
    const KEY: &str = "sk-test-PROVIDERS-91c2";
    let providers = |extra: &[&str]| {
        std::process::Command::new(BIN)
            .arg("providers")
            .args(extra)
            .env("REPRISE_CONFIG_DIR", dir.path())
            .env("REPRISE_TEST_SERVE_KEY", KEY)
            .env_remove("REPRISE_TEST_UNSET_KEY")
            .output()
            .unwrap()
    };
    let out = providers(&[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("✓ model    reprise-local-1 is listed"),
        "{text}"
    );
    assert!(
        text.contains("✗ model    gpt-9 is not among the 1 model listed"),
        "{text}"
    );
    assert!(
        text.contains("$REPRISE_TEST_UNSET_KEY, which is not set"),
        "{text}"
    );
    assert!(
        text.contains("✓ key      from $REPRISE_TEST_SERVE_KEY"),
        "{text}"
    );
    assert_eq!(
        server
            .stats
            .completions
            .load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing billable without --probe"
    );
    let probed = providers(&["--probe"]);
    let text = String::from_utf8_lossy(&probed.stdout).to_string();
    assert!(text.contains("✓ probe    answered in"), "{text}");
    assert!(
        text.contains("✗ probe    other: provider `wrong` answered HTTP 404"),
        "{text}"
    );
    for o in [&out, &probed] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!all.contains(KEY), "the key leaked: {all}");
    }
}

#[test]
fn an_unknown_model_or_an_unreachable_host_stops_before_the_campaign() {
    let server = Running::start(ServeConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[providers.wrong]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-9\"\n\n[providers.down]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n",
            server.base_url()
        ),
    )
    .unwrap();
    for (provider, expected) in [
        (
            "wrong",
            "target `wrong`: gpt-9 is not among the 1 model listed (model); nothing was run",
        ),
        (
            "down",
            "target `down`: http://127.0.0.1:1/v1/models unreachable",
        ),
    ] {
        let path = dir.path().join(format!("{provider}.toml"));
        std::fs::write(
            &path,
            format!("[protocol]\nname = \"p\"\n[prompt]\nuser = \"hi\"\n[[targets]]\nprovider = \"{provider}\"\n"),
        )
        .unwrap();
        let out = std::process::Command::new(BIN)
            .arg("run")
            .arg(&path)
            .env("REPRISE_CONFIG_DIR", &config)
            .env("REPRISE_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            !dir.path().join("data").exists(),
            "no archive for a campaign that never ran"
        );
    }
    assert_eq!(
        server
            .stats
            .completions
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}
