//! What every HTTP kind does with a reply that is not a success, checked once for all of them
//! against a loopback server: an HTTP error is one sentence without the key, a slow first
//! byte or the whole-call deadline is a timeout that may be retried, a refused connection is a
//! connection failure, a stream cut or ended short is truncated — never a success, never
//! retried — and a body or event that cannot be read is malformed. Each kind is one row of
//! [`kinds`]; a fifth kind is one more row. What is each kind's own (the exact request, its
//! replies, identity, checks) is in tests/{openai,anthropic,gemini,ollama}.rs.

#[path = "support/chat_server.rs"]
mod chat_server;
#[path = "support/gemini_server.rs"]
mod gemini_server;
#[path = "support/messages_server.rs"]
mod messages_server;
#[path = "support/ollama_server.rs"]
mod ollama_server;
#[path = "support/request.rs"]
mod request;
#[path = "support/scripted.rs"]
mod scripted;

use request::request;
use std::time::{Duration, Instant};

use reprise::providers::anthropic::AnthropicBackend;
use reprise::providers::gemini::GeminiBackend;
use reprise::providers::http::Settings;
use reprise::providers::key::ApiKey;
use reprise::providers::ollama::{self, OllamaBackend};
use reprise::providers::openai::OpenAiBackend;
use reprise::providers::{Backend, CallFailure};
use reprise::record::ErrorClass;
use scripted::{Canned, Options, Scripted};
use serde_json::{json, Value};

const KEY: &str = "sk-test-FAKEKEY-transport-4c1d";
const MODEL: &str = "test-model";

/// One kind of provider: how to reach it, and what its server sends.
struct Kind {
    /// The provider's name, as messages give it.
    name: &'static str,
    /// Settings for a server whose wire format starts at this base URL.
    settings: fn(&str) -> Settings,
    backend: fn(Settings) -> Box<dyn Backend>,
    /// Where the wire format's paths start on a server (`/v1`).
    base_path: &'static str,
    /// Where a streamed call goes, after the base path.
    stream_path: &'static str,
    /// The content types of the server's JSON bodies and of its streams.
    json_type: &'static str,
    stream_type: &'static str,
    /// Headers on every answer (a request id).
    headers: &'static [(&'static str, &'static str)],
    /// "Paris." whole, as the server sends it.
    whole: fn() -> Value,
    /// "Paris." streamed, in the chunks the server sends.
    stream: fn() -> Vec<String>,
    /// Counts of chunks after which the stream stops between two events, short of its end.
    boundaries: &'static [usize],
    /// A count of chunks after which the stream stops inside an event.
    mid_event: usize,
    /// What the failure says of a stream that ends cleanly short of its end.
    unfinished: &'static str,
    /// A chunk that is not an event of the wire format.
    bad_event: &'static str,
    /// What the wire format calls what it could not read ("a reply", "a line").
    unreadable: &'static str,
    /// How the wire format's streams are framed, as a failure names it.
    framing: &'static str,
    /// An error body saying `message`, as the server sends it with `status`; `param` is the
    /// parameter it refuses, for a wire format with a field for that.
    error: fn(u16, &str, Option<&str>) -> String,
    /// What the wire format names after the status in a message (its error type).
    label: fn(u16) -> Option<&'static str>,
    /// A 400's message refusing a parameter the request carried, and that parameter.
    refusal: (&'static str, &'static str),
    /// A 429 as the server sends it, with the wait it asks for.
    rate_limited: fn() -> HttpError,
    /// HTTP errors only this kind sends.
    corners: fn() -> Vec<HttpError>,
}

/// An HTTP error a server sends, and what it must become.
struct HttpError {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
    class: ErrorClass,
    /// The whole message; None where only the class is pinned.
    message: Option<String>,
    /// The wait the failure carries.
    retry_after: Option<Duration>,
}

fn kinds() -> [Kind; 4] {
    [
        Kind {
            name: "openai",
            settings: |base| Settings::new("openai", base, MODEL),
            backend: |s| Box::new(OpenAiBackend::new(s).unwrap()),
            base_path: "/v1",
            stream_path: "/chat/completions",
            json_type: "application/json",
            stream_type: "text/event-stream",
            headers: &[],
            whole: chat_server::whole_reply,
            stream: chat_server::transcript,
            // A comment; the role; "Paris"; "." (split in two); the finish; usage; [DONE].
            boundaries: &[1, 3, 5],
            mid_event: 4,
            unfinished: "stream ended without a finish reason or [DONE]",
            bad_event: "data: {\"choices\": [\n\n",
            unreadable: "a reply",
            framing: "an event stream",
            error: openai_error,
            label: |_| None,
            refusal: ("Unsupported parameter: 'logprobs'.", "logprobs"),
            rate_limited: || HttpError {
                status: 429,
                headers: vec![("retry-after", "2".into())],
                body: openai_error(429, "Rate limit reached.", None),
                class: ErrorClass::RateLimit,
                message: Some(
                    "provider `openai` is rate limiting (HTTP 429): Rate limit reached. \
                     (Retry-After 2 s)"
                        .into(),
                ),
                retry_after: Some(Duration::from_secs(2)),
            },
            corners: Vec::new,
        },
        Kind {
            name: "anthropic",
            settings: |base| Settings::new("anthropic", base, MODEL),
            backend: |s| Box::new(AnthropicBackend::new(s).unwrap()),
            base_path: "/v1",
            stream_path: "/messages",
            json_type: "application/json",
            stream_type: "text/event-stream; charset=utf-8",
            headers: &[("request-id", messages_server::REQUEST_ID)],
            whole: messages_server::whole_message,
            stream: messages_server::transcript,
            // message_start, content_block_start, ping, "Paris", "." (split in two),
            // content_block_stop, message_delta, message_stop.
            boundaries: &[1, 4, 8],
            mid_event: 5,
            unfinished: "stream ended without message_stop",
            bad_event: "event: message_start\ndata: {\"type\": \"message_start\", \n\n",
            unreadable: "a reply",
            framing: "an event stream",
            error: |status, message, _| {
                messages_server::error_body(anthropic_type(status), message)
            },
            label: |status| Some(anthropic_type(status)),
            refusal: (
                "`temperature` and `top_k` cannot both be specified for this model.",
                "temperature",
            ),
            rate_limited: || HttpError {
                status: 429,
                headers: vec![("retry-after", "3".into())],
                body: messages_server::error_body(
                    "rate_limit_error",
                    "Number of requests has exceeded your rate limit.",
                ),
                class: ErrorClass::RateLimit,
                message: Some(
                    "provider `anthropic` is rate limiting (HTTP 429, rate_limit_error): Number \
                     of requests has exceeded your rate limit. (Retry-After 3 s)"
                        .into(),
                ),
                retry_after: Some(Duration::from_secs(3)),
            },
            corners: anthropic_corners,
        },
        Kind {
            name: "gemini",
            settings: |base| {
                let mut s = Settings::new("gemini", base, MODEL);
                s.logprobs = false;
                s
            },
            backend: |s| Box::new(GeminiBackend::new(s).unwrap()),
            base_path: "/v1beta",
            stream_path: "/models/test-model:streamGenerateContent?alt=sse",
            json_type: "application/json; charset=UTF-8",
            stream_type: "text/event-stream",
            headers: &[],
            whole: gemini_server::whole_response,
            stream: gemini_server::transcript,
            // "Paris"; "." with the finish reason (split in two). No end marker.
            boundaries: &[1],
            mid_event: 2,
            unfinished: "stream ended without a finish reason",
            bad_event: "data: {not json}\n\n",
            unreadable: "a reply",
            framing: "an event stream",
            error: |status, message, _| {
                gemini_server::error_body(status, google_status(status), message, json!([]))
            },
            label: |status| Some(google_status(status)),
            refusal: (
                "Invalid JSON payload received. Unknown name \"seed\" at 'generation_config': \
                 Cannot find field.",
                "seed",
            ),
            // Google sends no Retry-After: the wait is a RetryInfo in the body.
            rate_limited: || HttpError {
                status: 429,
                headers: vec![],
                body: gemini_server::error_body(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for quota metric 'Generate Content API requests per minute'",
                    json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": "37s"}]),
                ),
                class: ErrorClass::RateLimit,
                message: Some(
                    "provider `gemini` is rate limiting (HTTP 429, RESOURCE_EXHAUSTED): Quota \
                     exceeded for quota metric 'Generate Content API requests per minute' \
                     (retry in 37 s)"
                        .into(),
                ),
                retry_after: Some(Duration::from_secs(37)),
            },
            corners: gemini_corners,
        },
        Kind {
            name: "ollama",
            settings: |base| ollama::settings("ollama", base, MODEL),
            backend: |s| Box::new(OllamaBackend::new(s).unwrap()),
            base_path: "",
            stream_path: "/api/chat",
            json_type: "application/json; charset=utf-8",
            stream_type: "application/x-ndjson",
            headers: &[],
            whole: ollama_server::whole_reply,
            stream: ollama_server::transcript,
            // "Par"; half of "is"; its other half and "."; the done line.
            boundaries: &[1, 3],
            mid_event: 2,
            unfinished: "stream ended without its final done: true line",
            bad_event: "data: {\"not\": \"ndjson\"}\n",
            unreadable: "a line",
            framing: "an NDJSON stream",
            error: |_, message, _| ollama_error(message),
            label: |_| None,
            refusal: ("option \"seed\" must be of type integer", "seed"),
            rate_limited: || HttpError {
                status: 429,
                headers: vec![("retry-after", "2".into())],
                body: ollama_error("too many requests"),
                class: ErrorClass::RateLimit,
                message: Some(
                    "provider `ollama` is rate limiting (HTTP 429): too many requests \
                     (Retry-After 2 s)"
                        .into(),
                ),
                retry_after: Some(Duration::from_secs(2)),
            },
            corners: ollama_corners,
        },
    ]
}

/// OpenAI's error body.
fn openai_error(status: u16, message: &str, param: Option<&str>) -> String {
    let kind = if status >= 500 {
        "server_error"
    } else {
        "invalid_request_error"
    };
    json!({"error": {"message": message, "type": kind, "param": param, "code": null}}).to_string()
}

/// Ollama's error body.
fn ollama_error(message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// The error `type` Anthropic documents for a status.
fn anthropic_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    }
}

/// The `google.rpc.Code` Google documents for a status.
fn google_status(status: u16) -> &'static str {
    match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

/// An error whose message the row pins; no wait.
fn pinned(status: u16, body: String, class: ErrorClass, message: Option<&str>) -> HttpError {
    HttpError {
        status,
        headers: vec![],
        body,
        class,
        message: message.map(str::to_string),
        retry_after: None,
    }
}

fn anthropic_corners() -> Vec<HttpError> {
    let body = messages_server::error_body;
    vec![
        pinned(
            403,
            body("permission_error", "Your key may not use this model."),
            ErrorClass::Auth,
            None,
        ),
        // Anthropic's own status for `overloaded_error`.
        pinned(
            529,
            body("overloaded_error", "Overloaded"),
            ErrorClass::Server,
            Some("provider `anthropic` failed (HTTP 529, overloaded_error): Overloaded"),
        ),
        // An invalid request naming no sampling parameter refuses none.
        pinned(
            400,
            body("invalid_request_error", "prompt is too long"),
            ErrorClass::Other,
            None,
        ),
    ]
}

fn gemini_corners() -> Vec<HttpError> {
    // A wrong key is a 400 whose ErrorInfo says API_KEY_INVALID; the server quotes the key.
    let key_invalid = gemini_server::error_body(
        400,
        "INVALID_ARGUMENT",
        &format!("API key not valid: {KEY}"),
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]),
    );
    vec![
        pinned(
            400,
            key_invalid,
            ErrorClass::Auth,
            Some("provider `gemini` refused the credentials (HTTP 400, INVALID_ARGUMENT): API key not valid: ***"),
        ),
        pinned(
            503,
            gemini_server::error_body(503, "UNAVAILABLE", "The model is overloaded.", json!([])),
            ErrorClass::Server,
            Some("provider `gemini` failed (HTTP 503, UNAVAILABLE): The model is overloaded."),
        ),
    ]
}

fn ollama_corners() -> Vec<HttpError> {
    vec![
        // The model is not pulled: the message says how to pull it.
        pinned(
            404,
            ollama_error("model 'test-model' not found, try pulling it first"),
            ErrorClass::Other,
            Some(
                "provider `ollama` does not have model `test-model` (HTTP 404): model \
                 'test-model' not found, try pulling it first; pull it with `ollama pull \
                 test-model`",
            ),
        ),
        pinned(529, ollama_error("overloaded"), ErrorClass::Server, None),
    ]
}

/// The errors every kind sends, each in its own shape: a refused key (quoted back, as
/// servers and proxies do), a server failure, a refused parameter, and a missing page.
fn common_errors(kind: &Kind) -> Vec<HttpError> {
    let who = format!("provider `{}`", kind.name);
    let http = |status: u16| match (kind.label)(status) {
        Some(label) => format!("HTTP {status}, {label}"),
        None => format!("HTTP {status}"),
    };
    let case = |status, class, message: &str, param, expected: String| HttpError {
        status,
        headers: vec![],
        body: (kind.error)(status, message, param),
        class,
        message: Some(expected),
        retry_after: None,
    };
    let (refusal, param) = kind.refusal;
    let failed = "The server had an error while processing your request.";
    let missing = "The requested resource does not exist.";
    vec![
        case(
            401,
            ErrorClass::Auth,
            &format!("Incorrect API key provided: {KEY}."),
            None,
            format!(
                "{who} refused the credentials ({}): Incorrect API key provided: ***.",
                http(401)
            ),
        ),
        case(
            500,
            ErrorClass::Server,
            failed,
            None,
            format!("{who} failed ({}): {failed}", http(500)),
        ),
        case(
            400,
            ErrorClass::RefusedParameter,
            refusal,
            Some(param),
            format!(
                "{who} refused parameter `{param}` ({}): {refusal}",
                http(400)
            ),
        ),
        case(
            404,
            ErrorClass::Other,
            missing,
            None,
            format!("{who} answered {}: {missing}", http(404)),
        ),
    ]
}

/// A loopback server of `kind` answering `queue` in order.
async fn server(kind: &Kind, queue: Vec<Canned>) -> Scripted {
    let options = Options {
        stream_type: kind.stream_type,
        headers: kind.headers.to_vec(),
        outside: None,
    };
    Scripted::start(queue, None, options).await
}

/// Settings for `kind` at `server`, with the key; streamed.
fn settings(kind: &Kind, server: &Scripted) -> Settings {
    let mut s = (kind.settings)(&format!("http://{}{}", server.addr, kind.base_path));
    s.key = ApiKey::new(KEY);
    s
}

/// A whole body of `kind` with this status and headers.
fn whole(
    kind: &Kind,
    status: u16,
    mut headers: Vec<(&'static str, String)>,
    body: String,
) -> Canned {
    if !headers.iter().any(|(name, _)| *name == "content-type") {
        headers.push(("content-type", kind.json_type.into()));
    }
    Canned::Whole {
        status,
        headers,
        body,
    }
}

/// The stream of `kind`, its first `n` chunks only; `cut` drops the connection after them.
fn stream_of(kind: &Kind, n: usize, cut: bool) -> Canned {
    let mut chunks = (kind.stream)();
    chunks.truncate(n);
    Canned::Stream { chunks, cut }
}

/// The failure of one call of `kind` to a server answering `canned`, after what holds for
/// every failure: one sentence naming the provider, without the key, from exactly one
/// request (no retry, and nothing else looked up).
async fn failure_of(kind: &Kind, canned: Canned, tweak: impl FnOnce(&mut Settings)) -> CallFailure {
    let server = server(kind, vec![canned]).await;
    let mut s = settings(kind, &server);
    tweak(&mut s);
    let f = (kind.backend)(s).call(&request()).await.unwrap_err();
    let name = kind.name;
    assert!(
        f.message.starts_with(&format!("provider `{name}` ")),
        "{name}: {}",
        f.message
    );
    assert!(!f.message.contains(KEY), "{name}: {}", f.message);
    assert!(!f.message.contains('\n'), "{name}: {}", f.message);
    let got = server.received();
    assert_eq!(got.len(), 1, "{name}: exactly one request: {got:?}");
    assert_eq!(got[0].method, "POST", "{name}");
    f
}

/// `error` as the server of `kind` sends it must become what it says.
async fn check(kind: &Kind, error: HttpError) {
    let name = kind.name;
    let retry_header = error
        .headers
        .iter()
        .find(|(h, _)| *h == "retry-after")
        .map(|(_, v)| v.clone());
    let canned = whole(kind, error.status, error.headers, error.body);
    let f = failure_of(kind, canned, |_| {}).await;
    let status = error.status;
    assert_eq!(f.class, error.class, "{name} HTTP {status}: {}", f.message);
    if let Some(message) = &error.message {
        assert_eq!(&f.message, message, "{name} HTTP {status}");
    }
    assert_eq!(f.retry_after, error.retry_after, "{name} HTTP {status}");
    assert!(
        !f.after_first_byte,
        "{name} HTTP {status}: no reply had begun"
    );
    // The rate-limit headers are archived with the attempt.
    assert_eq!(
        f.rate_limit.get("retry-after"),
        retry_header.as_ref(),
        "{name}"
    );
}

#[tokio::test]
async fn the_replies_of_the_table_are_read_whole_and_streamed() {
    // So that every cut below is a cut of a reply that would have succeeded.
    for kind in kinds() {
        let answers = [
            whole(&kind, 200, vec![], (kind.whole)().to_string()),
            stream_of(&kind, usize::MAX, false),
        ];
        for (stream, answer) in [false, true].into_iter().zip(answers) {
            let server = server(&kind, vec![answer]).await;
            let mut s = settings(&kind, &server);
            s.stream = stream;
            let reply = (kind.backend)(s).call(&request()).await;
            let reply = reply.unwrap_or_else(|f| panic!("{} (stream {stream}): {f}", kind.name));
            assert_eq!(reply.text, "Paris.", "{}", kind.name);
            assert_eq!(
                reply.finish_reason.as_deref(),
                Some("stop"),
                "{}",
                kind.name
            );
        }
    }
}

#[tokio::test]
async fn http_errors_are_classified_in_one_sentence_without_the_key() {
    for kind in kinds() {
        for error in common_errors(&kind) {
            check(&kind, error).await;
        }
        check(&kind, (kind.rate_limited)()).await;
    }
}

#[tokio::test]
async fn each_kind_s_own_http_errors_are_classified() {
    for kind in kinds() {
        for error in (kind.corners)() {
            check(&kind, error).await;
        }
    }
}

#[tokio::test]
async fn a_slow_first_byte_times_out_and_may_be_retried() {
    for kind in kinds() {
        let started = Instant::now();
        let slow = Canned::Slow(
            Duration::from_secs(5),
            Box::new(whole(&kind, 200, vec![], (kind.whole)().to_string())),
        );
        let f = failure_of(&kind, slow, |s| {
            s.timeouts.first_byte = Duration::from_millis(200)
        })
        .await;
        assert_eq!(f.class, ErrorClass::Timeout, "{}", kind.name);
        assert!(!f.after_first_byte, "{}", kind.name);
        assert_eq!(
            f.message,
            format!(
                "provider `{}` sent nothing within 0.2 s (first_byte_timeout_ms)",
                kind.name
            )
        );
        assert!(started.elapsed() < Duration::from_secs(4), "{}", kind.name);
    }
}

#[tokio::test]
async fn the_whole_call_deadline_times_out_and_may_be_retried() {
    for kind in kinds() {
        let slow = Canned::Slow(
            Duration::from_secs(5),
            Box::new(whole(&kind, 200, vec![], (kind.whole)().to_string())),
        );
        let f = failure_of(&kind, slow, |s| {
            s.timeouts.total = Duration::from_millis(300)
        })
        .await;
        assert_eq!(f.class, ErrorClass::Timeout, "{}", kind.name);
        assert!(!f.after_first_byte, "{}", kind.name);
        assert_eq!(
            f.message,
            format!(
                "provider `{}` gave no complete reply within 0.3 s (total_timeout_ms)",
                kind.name
            )
        );
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_failure() {
    for kind in kinds() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut s = (kind.settings)(&format!("http://{addr}{}", kind.base_path));
        s.key = ApiKey::new(KEY);
        let f = (kind.backend)(s).call(&request()).await.unwrap_err();
        assert_eq!(f.class, ErrorClass::Connection, "{}", kind.name);
        assert!(!f.after_first_byte, "{}", kind.name);
        let url = format!("http://{addr}{}{}", kind.base_path, kind.stream_path);
        assert!(
            f.message.starts_with(&format!(
                "provider `{}` could not be reached at {url}: ",
                kind.name
            )),
            "{}",
            f.message
        );
        assert!(!f.message.contains(KEY), "{}", f.message);
    }
}

#[tokio::test]
async fn a_cut_stream_is_truncated_never_a_success_and_never_retried() {
    for kind in kinds() {
        for n in kind.boundaries.iter().copied().chain([kind.mid_event]) {
            let f = failure_of(&kind, stream_of(&kind, n, true), |_| {}).await;
            let at = format!("{} cut after {n} chunks", kind.name);
            assert_eq!(f.class, ErrorClass::TruncatedStream, "{at}: {}", f.message);
            assert!(f.after_first_byte, "{at}");
            assert!(
                f.message.starts_with(&format!(
                    "provider `{}` stream cut before its end: ",
                    kind.name
                )),
                "{at}: {}",
                f.message
            );
        }
    }
}

#[tokio::test]
async fn a_stream_that_ends_short_of_its_end_is_truncated() {
    for kind in kinds() {
        for &n in kind.boundaries {
            let f = failure_of(&kind, stream_of(&kind, n, false), |_| {}).await;
            let at = format!("{} ended after {n} chunks", kind.name);
            assert_eq!(f.class, ErrorClass::TruncatedStream, "{at}: {}", f.message);
            assert!(f.after_first_byte, "{at}");
            assert_eq!(
                f.message,
                format!("provider `{}` {}", kind.name, kind.unfinished),
                "{at}"
            );
        }
    }
}

#[tokio::test]
async fn a_malformed_body_or_event_is_malformed() {
    for kind in kinds() {
        let not_json = format!(
            "provider `{}` sent {} that is not the expected JSON",
            kind.name, kind.unreadable
        );
        let reply = (kind.whole)().to_string();
        let half = whole(&kind, 200, vec![], reply[..reply.len() / 2].to_string());
        let f = failure_of(&kind, half, |s| s.stream = false).await;
        let bad_event = Canned::Stream {
            chunks: vec![(kind.stream)().remove(0), kind.bad_event.to_string()],
            cut: false,
        };
        let g = failure_of(&kind, bad_event, |_| {}).await;
        for f in [f, g] {
            assert_eq!(f.class, ErrorClass::MalformedResponse, "{}", f.message);
            assert!(f.after_first_byte, "{}", f.message);
            assert!(f.message.starts_with(&not_json), "{}", f.message);
        }
    }
}

#[tokio::test]
async fn a_page_where_a_stream_was_asked_for_is_malformed() {
    // A proxy's login page is not a cut stream.
    for kind in kinds() {
        let page = whole(
            &kind,
            200,
            vec![("content-type", "text/html; charset=utf-8".into())],
            "<html>login</html>".into(),
        );
        let f = failure_of(&kind, page, |_| {}).await;
        assert_eq!(f.class, ErrorClass::MalformedResponse, "{}", kind.name);
        assert_eq!(
            f.message,
            format!(
                "provider `{}` sent `text/html` instead of {}",
                kind.name, kind.framing
            )
        );
    }
}
