//! No planned call is ever lost: whatever a backend does — panic included — every planned
//! call ends as exactly one recorded outcome, the closing record's counts equal the plan, and
//! the archive verifies.

#[path = "support/chat_server.rs"]
mod chat_server;
#[path = "support/raw_server.rs"]
mod raw_server;

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use reprise::archive::{self, SessionOutcome};
use reprise::protocol::Protocol;
use reprise::providers::{Backend, CallFailure, ChatRequest, Reply, RetryPolicy};
use reprise::record::{CallStatus, ErrorClass};
use reprise::runner::RunControl;
use reprise::session::{run_session, SessionSpec};

/// Panics on every other call, as a provider did on a server's `Retry-After: 1e20`.
struct PanicsEveryOtherCall(AtomicU32);

#[async_trait::async_trait]
impl Backend for PanicsEveryOtherCall {
    fn request_body(&self, _: &ChatRequest) -> serde_json::Value {
        serde_json::json!({})
    }
    fn endpoint(&self) -> String {
        "test".into()
    }
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default()
    }
    async fn call(&self, _: &ChatRequest) -> Result<Reply, CallFailure> {
        if self.0.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            let wait = std::time::Duration::from_secs_f64(1e20);
            return Err(CallFailure::new(ErrorClass::RateLimit, "429").with_retry_after(Some(wait)));
        }
        Ok(Reply {
            text: "fine".into(),
            ..Default::default()
        })
    }
}

fn protocol(text: &str) -> Protocol {
    Protocol::parse(Path::new("p.toml"), text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_panics_leaves_a_failure_per_call_and_a_session_that_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let spec = SessionSpec {
        protocol: protocol(
            "[protocol]\nname = \"p\"\n[prompt]\nuser = \"Hi\"\n[campaign]\nrepeats = 20\nconcurrency = 4\nbreaker = 0\n",
        ),
        backends: vec![Arc::new(PanicsEveryOtherCall(AtomicU32::new(0)))],
        out: Some(out.clone()),
        dir: None,
    };
    let result = run_session(spec, RunControl::default(), |_, _| {})
        .await
        .unwrap();
    // Every call has its outcome — half of them a failure — so the campaign completed.
    assert_eq!(result.close.outcome, SessionOutcome::Completed);
    assert_eq!(
        (result.close.records, result.close.ok, result.close.errors),
        (20, 10, 10)
    );
    let archive = archive::read(&out).unwrap();
    let mut calls: Vec<u32> = archive.calls.iter().map(|c| c.call).collect();
    calls.sort_unstable();
    assert_eq!(calls, (0..20).collect::<Vec<_>>());
    for failed in archive
        .calls
        .iter()
        .filter(|c| c.status == CallStatus::Error)
    {
        let error = failed.error.as_ref().unwrap();
        assert_eq!(error.class, ErrorClass::Other);
        assert!(
            error
                .message
                .starts_with("reprise failed internally on this call (")
                && error.message.ends_with("please report it"),
            "{}",
            error.message
        );
        assert!(!failed.retried);
    }
    archive::verify(&out).unwrap();
}

mod any_reply {
    //! Any server reply — any status, headers (`Retry-After: 1e20`, `NaN`, …), body (a valid
    //! stream, valid JSON, garbage, nothing), cut at any byte, or the connection closed — ends
    //! every planned call as exactly one recorded outcome, with closing counts equal to the
    //! plan and an archive that verifies.

    use std::collections::{BTreeMap, HashMap};
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use proptest::prelude::*;
    use proptest::sample::select;

    use super::chat_server;
    use super::raw_server::{Answer, RawServer};

    use reprise::archive::{self, SessionOutcome};
    use reprise::config::Config;
    use reprise::protocol::Protocol;
    use reprise::providers::{Backend, CallFailure, ChatRequest, Limits, Reply, RetryPolicy};
    use reprise::runner::RunControl;
    use reprise::session::{run_session, SessionSpec};

    #[derive(Debug, Clone)]
    enum Body {
        /// A whole "Paris." event stream, as OpenAI sends one.
        Stream,
        /// A whole "Paris." completion.
        Json,
        /// OpenAI's refusal of `max_tokens`.
        Refusal,
        Garbage(Vec<u8>),
        Empty,
    }

    impl Body {
        fn bytes(&self) -> Vec<u8> {
            match self {
                Body::Stream => chat_server::transcript().concat().into_bytes(),
                Body::Json => chat_server::whole_reply().to_string().into_bytes(),
                Body::Refusal => br#"{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}"#.to_vec(),
                Body::Garbage(bytes) => bytes.clone(),
                Body::Empty => Vec::new(),
            }
        }

        fn media_type(&self) -> Option<&'static str> {
            match self {
                Body::Stream => Some("text/event-stream"),
                Body::Json | Body::Refusal => Some("application/json"),
                Body::Garbage(_) | Body::Empty => None,
            }
        }
    }

    /// One reply: a status line, headers and body (with or without a `content-length`), cut
    /// after `cut` bytes if given; or None: the connection closed unanswered.
    #[derive(Debug, Clone)]
    struct Scripted {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: Body,
        length: bool,
        cut: Option<usize>,
    }

    impl Scripted {
        fn answer(reply: &Option<Scripted>) -> Answer {
            let Some(reply) = reply else {
                return Answer::Close;
            };
            let body = reply.body.bytes();
            let mut head = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", reply.status);
            let typed = reply
                .headers
                .iter()
                .any(|(name, _)| *name == "content-type");
            if let Some(media) = reply.body.media_type().filter(|_| !typed) {
                head.push_str(&format!("content-type: {media}\r\n"));
            }
            for (name, value) in &reply.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            if reply.length {
                head.push_str(&format!("content-length: {}\r\n", body.len()));
            }
            head.push_str("\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&body);
            if let Some(cut) = reply.cut {
                bytes.truncate(cut % (bytes.len() + 1));
            }
            Answer::Bytes(bytes)
        }
    }

    fn status() -> impl Strategy<Value = u16> {
        prop_oneof![
            4 => Just(200u16),
            4 => select(vec![400u16, 401, 403, 404, 408, 422, 429, 500, 502, 503, 504, 529]),
            1 => 100u16..1000,
        ]
    }

    fn header() -> impl Strategy<Value = (&'static str, String)> {
        let waits = vec![
            "1e20",
            "-1",
            "NaN",
            "abc",
            "18446744073709551616",
            "0",
            "0.001",
            "inf",
            "",
            "1e-9",
            "5",
        ];
        prop_oneof![
            select(waits.clone()).prop_map(|v| ("retry-after", v.to_string())),
            select(waits).prop_map(|v| ("retry-after-ms", v.to_string())),
            select(vec!["0", "-3", "99999999999999999999"])
                .prop_map(|v| ("x-ratelimit-remaining-requests", v.to_string())),
            "[a-z0-9]{1,12}".prop_map(|v| ("x-request-id", v)),
            select(vec![
                "text/event-stream",
                "application/json",
                "text/plain",
                "application/x-ndjson",
            ])
            .prop_map(|v| ("content-type", v.to_string())),
        ]
    }

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            Just(Body::Stream),
            Just(Body::Json),
            Just(Body::Refusal),
            Just(Body::Empty),
            proptest::collection::vec(any::<u8>(), 0..200).prop_map(Body::Garbage),
        ]
    }

    fn reply() -> impl Strategy<Value = Option<Scripted>> {
        let scripted = (
            status(),
            proptest::collection::vec(header(), 0..4),
            body(),
            any::<bool>(),
            proptest::option::weighted(0.2, any::<usize>()),
        )
            .prop_map(|(status, headers, body, length, cut)| Scripted {
                status,
                headers,
                body,
                length,
                cut,
            });
        proptest::option::weighted(0.9, scripted)
    }

    /// The configured backend with its retries made quick — backoff in milliseconds and a
    /// server's wait honoured up to 20 ms (a longer one fails the call, as one over 120 s does
    /// for real) — so no case sleeps for long.
    struct Quick(Arc<dyn Backend>);

    #[async_trait::async_trait]
    impl Backend for Quick {
        fn request_body(&self, request: &ChatRequest) -> serde_json::Value {
            self.0.request_body(request)
        }
        fn endpoint(&self) -> String {
            self.0.endpoint()
        }
        fn headers(&self) -> BTreeMap<String, String> {
            self.0.headers()
        }
        async fn call(&self, request: &ChatRequest) -> Result<Reply, CallFailure> {
            self.0.call(request).await
        }
        fn retry_policy(&self) -> RetryPolicy {
            RetryPolicy {
                max_retries: self.0.retry_policy().max_retries,
                base: Duration::from_millis(1),
                cap: Duration::from_millis(4),
                max_server_wait: Duration::from_millis(20),
            }
        }
        fn limits(&self) -> Limits {
            self.0.limits()
        }
    }

    /// A session of `repeats` calls at `concurrency` to an `openai`-kind provider at a server
    /// answering with `replies` in turn; its archive's path and the session's closing record.
    async fn session(
        dir: &Path,
        replies: &[Option<Scripted>],
        stream: bool,
        (repeats, concurrency, breaker, retries): (u32, u32, u32, u32),
    ) -> (std::path::PathBuf, archive::Close) {
        let server = RawServer::answering(replies.iter().map(Scripted::answer).collect()).await;
        // Short timeouts: a reply that stalled could not hold the test for long.
        let config = Config::parse(
            &dir.join("config.toml"),
            &format!(
                "[providers.prop]\nkind = \"openai\"\nbase_url = \"{}\"\nmodel = \"m\"\n\
                 stream = {stream}\nmax_retries = {retries}\nconnect_timeout_ms = 5000\n\
                 first_byte_timeout_ms = 5000\ntotal_timeout_ms = 10000\n",
                server.base_url()
            ),
        )
        .unwrap();
        let protocol = Protocol::parse_with_providers(
            &dir.join("p.toml"),
            &format!(
                "[protocol]\nname = \"any reply\"\n\n[prompt]\nuser = \"Capital of France?\"\n\n\
                 [params]\nmax_tokens = 20\n\n[campaign]\nrepeats = {repeats}\nconcurrency = \
                 {concurrency}\nbreaker = {breaker}\n\n[[targets]]\nname = \"t\"\nprovider = \
                 \"prop\"\n"
            ),
            &config.providers.names(),
        )
        .unwrap();
        let out = dir.join("s.jsonl");
        let mut spec =
            SessionSpec::with_providers(protocol, Some(out.clone()), &config.providers).unwrap();
        spec.backends = spec
            .backends
            .into_iter()
            .map(|b| Arc::new(Quick(b)) as Arc<dyn Backend>)
            .collect();
        let result = run_session(spec, RunControl::default(), |_, _| {})
            .await
            .unwrap();
        (out, result.close)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_reply_ends_each_planned_call_as_exactly_one_recorded_outcome(
            replies in proptest::collection::vec(reply(), 1..8),
            stream in any::<bool>(),
            repeats in 1u32..7,
            concurrency in 1u32..4,
            breaker in select(vec![0u32, 0, 1, 2]),
            retries in 0u32..3,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (out, close) = runtime.block_on(session(
                dir.path(),
                &replies,
                stream,
                (repeats, concurrency, breaker, retries),
            ));
            let verified = archive::verify(&out);
            prop_assert!(verified.is_ok(), "{:?}", verified.err());
            let calls = archive::read(&out).unwrap().calls;

            // Outcomes per planned call; each retried attempt followed by the next.
            let mut outcomes: HashMap<u32, u32> = HashMap::new();
            for r in &calls {
                prop_assert!(r.call < repeats, "{r:?}");
                prop_assert!(r.attempt <= 1 + retries, "{r:?}");
                if r.retried {
                    let next = calls
                        .iter()
                        .any(|n| n.call == r.call && n.attempt == r.attempt + 1);
                    prop_assert!(next, "retried attempt without a next one: {r:?}");
                } else {
                    *outcomes.entry(r.call).or_default() += 1;
                }
                if let Some(error) = &r.error {
                    prop_assert!(!error.message.chars().any(char::is_control), "{error:?}");
                }
            }
            prop_assert!(outcomes.values().all(|n| *n == 1), "{outcomes:?}");
            let without = u64::from(repeats) - outcomes.len() as u64;
            if breaker == 0 {
                prop_assert_eq!(without, 0, "every planned call has its outcome");
            }

            // The closing record adds up to the plan.
            prop_assert_eq!(close.planned_calls, u64::from(repeats));
            prop_assert_eq!(close.records, calls.len() as u64);
            prop_assert_eq!(close.without_outcome, without);
            prop_assert_eq!(close.not_sent, without, "no call sent was lost");
            let expected = if without == 0 {
                SessionOutcome::Completed
            } else {
                SessionOutcome::Failed
            };
            prop_assert_eq!(close.outcome, expected);
            prop_assert_eq!(close.reason.is_some(), without > 0);
        }
    }
}
