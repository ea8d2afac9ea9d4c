//! No planned call is ever lost: whatever a backend does — panic included — every planned
//! call ends as exactly one recorded outcome, the closing record's counts equal the plan, and
//! the archive verifies.

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
            "[protocol]\nname = \"p\"\n[prompt]\nuser = \"Hi\"\n[campaign]\nrepeats = 20\nconcurrency = 4\n",
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
