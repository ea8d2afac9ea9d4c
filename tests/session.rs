//! The library pipeline: a session's archive, re-analysed, gives the snapshot the live run ended with.

use std::path::Path;
use std::sync::Arc;

use reprise::protocol::Protocol;
use reprise::providers::local::LocalBackend;
use reprise::runner::RunControl;
use reprise::session::{analyse_archive, run_session, SessionSpec};

#[test]
fn reanalysing_the_archive_reproduces_the_live_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("s.jsonl");
    let mut protocol = Protocol::load(Path::new("tests/fixtures/run/hot-unseeded.toml")).unwrap();
    protocol.campaign.repeats = 60;
    protocol.campaign.warmup = 2;
    let spec = SessionSpec {
        protocol,
        backends: vec![Arc::new(LocalBackend::new())],
        out: Some(out.clone()),
        dir: None,
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut seen = 0;
    let live = runtime
        .block_on(run_session(spec, RunControl::default(), |_, _| seen += 1))
        .unwrap();
    assert_eq!(seen, 62, "every record observed, warm-up included");
    assert!(!live.interrupted());
    assert_eq!(live.close.records, 62);
    let item = &live.snapshot.targets[0].items[0];
    assert_eq!(
        item.calls, 60,
        "warm-up calls are archived but not measured"
    );
    assert!(item.distinct_outputs > 1);

    let (archive, replayed) = analyse_archive(&out).unwrap();
    assert_eq!(archive.calls.len(), 62);
    assert_eq!(replayed, live.snapshot);
    assert_eq!(archive.header.identity, live.identity);
}
