//! A session: one campaign from header to closing record. The runner produces call records;
//! this is their one owner — it appends each to the archive (flushed), then folds it into the
//! analysis, in that order, so an archive replayed later folds to the same snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use crate::analysis::{AnalysisConfig, Analyzer, Snapshot, DEFAULT_PAIR_BUDGET};
use crate::archive::{self, ArchiveWriter, Close, Header, SessionOutcome};
use crate::conditions::{chat_request, conditions};
use crate::config::Providers;
use crate::error::InputError;
use crate::protocol::Protocol;
use crate::providers::Backend;
use crate::record::{CallRecord, CallStatus};
use crate::report;
use crate::runner::{plan, RunControl, Runner};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create the archive {path}: {source}")]
    CreateArchive {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the archive {path}: {source}; the records before this one are kept")]
    WriteArchive {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no data directory for sessions on this platform; give --out FILE")]
    NoDataDir,
    #[error(
        "{path}: the protocol no longer produces this session's conditions (identity {was}, now {now}): resuming needs the same protocol file, targets, providers and reprise version"
    )]
    ResumeMismatch {
        path: PathBuf,
        was: String,
        now: String,
    },
}

/// Leaves in `planned` only the calls `earlier` holds no outcome for — an outcome being a
/// success, or a failure that was not to be retried — and sets where each left call's
/// attempts go on. Returns how many planned calls already have their outcome.
fn resume_plan(
    planned: &mut Vec<crate::runner::PlannedCall>,
    earlier: &[CallRecord],
    protocol: &Protocol,
) -> u64 {
    let target = |name: &str| protocol.targets.iter().position(|t| t.name == name);
    let item = |name: &str| protocol.items.iter().position(|i| i.name == name);
    // (target, item, call) → (has an outcome, attempts archived)
    let mut seen: HashMap<(usize, usize, u32), (bool, u32)> = HashMap::new();
    for r in earlier {
        let (Some(t), Some(i)) = (target(&r.target), item(&r.item)) else {
            continue;
        };
        let entry = seen.entry((t, i, r.call)).or_insert((false, 0));
        entry.1 = entry.1.max(r.attempt);
        let outcome = match r.status {
            CallStatus::Ok => true,
            CallStatus::Error => !r.retried,
            CallStatus::Cancelled => false,
        };
        entry.0 |= outcome;
    }
    let before = planned.len();
    planned.retain_mut(|p| match seen.get(&(p.target, p.item, p.call)) {
        Some((true, _)) => false,
        Some((false, attempts)) => {
            p.attempts_before = *attempts;
            true
        }
        None => true,
    });
    (before - planned.len()) as u64
}

/// The planned calls that have their outcome in the archive — a success, a failure not to
/// be retried, or a cancellation (always a call's last attempt) — counted from the records
/// actually appended, so a call lost on the way can never pass for done.
struct Settled {
    targets: HashMap<String, usize>,
    items: HashMap<String, usize>,
    calls_per_item: u32,
    settled: HashSet<(usize, usize, u32)>,
}

impl Settled {
    fn new(protocol: &Protocol) -> Settled {
        Settled {
            targets: protocol
                .targets
                .iter()
                .map(|t| t.name.clone())
                .zip(0..)
                .collect(),
            items: protocol
                .items
                .iter()
                .map(|i| i.name.clone())
                .zip(0..)
                .collect(),
            calls_per_item: protocol.campaign.warmup + protocol.campaign.repeats,
            settled: HashSet::new(),
        }
    }

    fn note(&mut self, record: &CallRecord) {
        let outcome = record.status != CallStatus::Error || !record.retried;
        let target = self.targets.get(&record.target);
        let item = self.items.get(&record.item);
        if let (true, Some(&t), Some(&i)) = (outcome, target, item) {
            if record.call < self.calls_per_item {
                self.settled.insert((t, i, record.call));
            }
        }
    }

    fn count(&self) -> u64 {
        self.settled.len() as u64
    }
}

/// How the plan ended, counted where the session closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PlanCount {
    planned: u64,
    /// Planned calls with an outcome in the archive.
    settled: u64,
    /// Planned calls launched, in this session and (resumed) the one before.
    launched: u64,
    /// Calls cancelled in flight.
    abandoned: u64,
    /// The user asked to stop.
    stopped: bool,
}

/// The closing outcome, the counts behind it, and why when it did not complete. A session
/// completes only if every planned call was sent and has its outcome, and none was abandoned;
/// otherwise it closes `failed` when breakers held calls back (`breaker`: why) or calls were
/// lost, else `cancelled` (the user stopped it).
fn closing(count: PlanCount, breaker: &[String]) -> (SessionOutcome, u64, u64, Option<String>) {
    let PlanCount {
        planned,
        settled,
        launched,
        abandoned,
        stopped,
    } = count;
    let without = planned.saturating_sub(settled);
    let not_sent = planned.saturating_sub(launched);
    // Calls sent that have no outcome: lost on the way, which no stop explains.
    let lost = without.saturating_sub(not_sent);
    let lost_sentence = || {
        format!(
            "{without} of {planned} planned calls have no outcome in the archive ({not_sent} \
             never sent): reprise failed internally; please report it"
        )
    };
    let (outcome, reason) = if without == 0 && not_sent == 0 && abandoned == 0 {
        (SessionOutcome::Completed, None)
    } else if !breaker.is_empty() {
        let mut reason = breaker.join("; ");
        if lost > 0 {
            reason = format!("{reason}; and {}", lost_sentence());
        }
        (SessionOutcome::Failed, Some(reason))
    } else if stopped {
        let reason = if without > 0 {
            format!("stopped by the user: {without} of {planned} planned calls have no outcome")
        } else {
            format!("stopped by the user: {abandoned} calls were cancelled in flight")
        };
        (SessionOutcome::Cancelled, Some(reason))
    } else {
        (SessionOutcome::Failed, Some(lost_sentence()))
    };
    (outcome, without, not_sent, reason)
}

/// How a finished (or stopped) session ended.
#[derive(Debug, Clone)]
pub struct SessionResult {
    /// The protocol's name.
    pub protocol: String,
    pub archive: PathBuf,
    pub identity: String,
    pub snapshot: Snapshot,
    pub close: Close,
}

impl SessionResult {
    pub fn interrupted(&self) -> bool {
        self.close.outcome != SessionOutcome::Completed
    }
}

/// Everything needed to start a session.
pub struct SessionSpec {
    pub protocol: Protocol,
    /// `backends[i]` serves `protocol.targets[i]`.
    pub backends: Vec<Arc<dyn Backend>>,
    /// Archive path; default: a file named after the identity in `dir`.
    pub out: Option<PathBuf>,
    /// Where a default-named archive goes; default: the platform data directory.
    pub dir: Option<PathBuf>,
}

impl SessionSpec {
    /// A session on `protocol` with a backend per target, built-in providers only (`local`,
    /// `openai`); see [`SessionSpec::with_providers`] for the user's configured ones.
    pub fn new(protocol: Protocol, out: Option<PathBuf>) -> Result<SessionSpec, InputError> {
        SessionSpec::with_providers(protocol, out, &Providers::default())
    }

    /// A session on `protocol`, its targets served by built-in or `providers`' backends.
    pub fn with_providers(
        protocol: Protocol,
        out: Option<PathBuf>,
        providers: &Providers,
    ) -> Result<SessionSpec, InputError> {
        for target in &protocol.targets {
            crate::providers::check_callable(&protocol, target, providers)?;
        }
        let backends = protocol
            .targets
            .iter()
            .map(|t| crate::providers::backend_with_providers(&protocol, t, providers))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SessionSpec {
            protocol,
            backends,
            out,
            dir: None,
        })
    }
}

/// What each target's server says about itself now, by target name (see
/// `Backend::server_identity`).
async fn server_identities(
    protocol: &Protocol,
    backends: &[Arc<dyn Backend>],
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (target, backend) in protocol.targets.iter().zip(backends) {
        if let Some(identity) = backend.server_identity().await {
            out.insert(target.name.clone(), identity);
        }
    }
    out
}

/// The analysis configuration a protocol implies.
pub fn analysis_config(protocol: &Protocol) -> AnalysisConfig {
    AnalysisConfig {
        answer: protocol.answer.clone(),
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: protocol.targets.iter().map(|t| t.name.clone()).collect(),
        items: protocol
            .items
            .iter()
            .map(|i| (i.name.clone(), i.expected.clone()))
            .collect(),
    }
}

/// Runs a whole session. `observe` sees every record after it is archived and folded
/// (progress display, live views).
pub async fn run_session(
    spec: SessionSpec,
    control: RunControl,
    observe: impl FnMut(&CallRecord, &Analyzer),
) -> Result<SessionResult, SessionError> {
    let mut observe = observe;
    run_session_with_start(
        spec,
        control,
        |_| {},
        |seen, analyzer| {
            if let Some(record) = seen {
                observe(record, analyzer);
            }
        },
    )
    .await
}

/// After this long without a record, a live view is told so (`None`): throttled displays
/// then show the latest state instead of the one from before the lull (a pause, a slow call).
pub const QUIET: std::time::Duration = std::time::Duration::from_millis(150);

/// What a live view learns once the archive is created, before the first call.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub archive: PathBuf,
    pub identity: String,
    /// Planned calls, warm-up included.
    pub planned_calls: u64,
}

/// [`run_session`], telling `on_start` the archive and identity before any call is sent;
/// `observe` also hears `None` once records stop arriving for [`QUIET`].
pub async fn run_session_with_start(
    spec: SessionSpec,
    control: RunControl,
    on_start: impl FnOnce(&SessionStart),
    observe: impl FnMut(Option<&CallRecord>, &Analyzer),
) -> Result<SessionResult, SessionError> {
    run_inner(spec, None, control, on_start, observe).await
}

/// Continues the unfinished session `reopened` to its planned count: only the calls without
/// an outcome in the archive are sent (a call whose last attempt was cut or awaited a retry
/// goes on with its next attempt), under the same identity. `spec` must produce exactly the
/// archive's conditions; `observe` sees the new records only, the analysis all of them.
pub async fn resume_session(
    spec: SessionSpec,
    reopened: archive::Reopened,
    control: RunControl,
    observe: impl FnMut(Option<&CallRecord>, &Analyzer),
) -> Result<SessionResult, SessionError> {
    run_inner(spec, Some(reopened), control, |_| {}, observe).await
}

async fn run_inner(
    spec: SessionSpec,
    reopened: Option<archive::Reopened>,
    control: RunControl,
    on_start: impl FnOnce(&SessionStart),
    mut observe: impl FnMut(Option<&CallRecord>, &Analyzer),
) -> Result<SessionResult, SessionError> {
    let SessionSpec {
        protocol,
        backends,
        out,
        dir,
    } = spec;
    let started = SystemTime::now();
    let backend_refs: Vec<&dyn Backend> = backends.iter().map(|b| b.as_ref()).collect();
    let conditions = conditions(&protocol, &backend_refs);
    let mut header = Header::new(
        conditions,
        Some(protocol.path.display().to_string()),
        started,
    );
    let campaign = protocol.campaign;
    let mut planned = plan(
        protocol.targets.len(),
        protocol.items.len(),
        campaign.warmup,
        campaign.repeats,
    );
    let planned_calls = planned.len() as u64;
    let mut analyzer = Analyzer::new(analysis_config(&protocol));
    let mut settled = Settled::new(&protocol);
    let mut clock = Instant::now();
    let (mut writer, identity, done_before) = match reopened {
        Some(archive::Reopened {
            archive,
            writer,
            ended,
        }) => {
            if archive.header.identity != header.identity {
                return Err(SessionError::ResumeMismatch {
                    path: writer.path().to_path_buf(),
                    was: archive::short_identity(&archive.header.identity).to_string(),
                    now: archive::short_identity(&header.identity).to_string(),
                });
            }
            let done = resume_plan(&mut planned, &archive.calls, &protocol);
            for record in &archive.calls {
                analyzer.fold(record);
                settled.note(record);
            }
            // New records' times go on from where the archive's last call ended.
            clock = clock.checked_sub(ended).unwrap_or(clock);
            (writer, archive.header.identity, done)
        }
        None => {
            header.servers = server_identities(&protocol, &backends).await;
            let identity = header.identity.clone();
            // A default-named archive never replaces another: two runs in one second get
            // `-2`, ….
            let created = match out {
                Some(path) => {
                    ArchiveWriter::create(&path, &header).map_err(|source| (path, source))
                }
                None => {
                    let dir = dir
                        .or_else(archive::default_dir)
                        .ok_or(SessionError::NoDataDir)?;
                    ArchiveWriter::create_in(&dir, &header, started, &protocol.meta.name)
                        .map_err(|source| (dir, source))
                }
            };
            let writer =
                created.map_err(|(path, source)| SessionError::CreateArchive { path, source })?;
            (writer, identity, 0)
        }
    };
    let path = writer.path().to_path_buf();
    on_start(&SessionStart {
        archive: path.clone(),
        identity: identity.clone(),
        planned_calls,
    });
    let runner = Arc::new(Runner {
        backends: backends.clone(),
        target_names: protocol.targets.iter().map(|t| t.name.clone()).collect(),
        item_names: protocol.items.iter().map(|i| i.name.clone()).collect(),
        requests: (0..protocol.items.len())
            .map(|i| chat_request(&protocol, i))
            .collect(),
        concurrency: campaign.concurrency as usize,
        breaker: campaign.breaker,
        clock,
    });
    // Bounded: the runner waits for the archive (see `Runner::run`).
    let (tx, mut rx) = mpsc::channel(campaign.concurrency.max(1) as usize);
    let run = tokio::spawn(runner.run(planned, control.clone(), tx));

    let mut write_error = None;
    // Calls abandoned in flight (second Ctrl-C): the campaign is then not complete.
    let mut abandoned = 0u64;
    let mut quiet_due = false;
    loop {
        let record = if quiet_due {
            match tokio::time::timeout(QUIET, rx.recv()).await {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(_) => {
                    quiet_due = false;
                    observe(None, &analyzer);
                    continue;
                }
            }
        } else {
            match rx.recv().await {
                Some(record) => record,
                None => break,
            }
        };
        if write_error.is_some() {
            continue; // draining after a failure: nothing more can be kept
        }
        if let Err(source) = writer.append(&record) {
            control.stop.cancel();
            control.abort.cancel();
            write_error = Some(source);
            continue;
        }
        abandoned += u64::from(record.status == CallStatus::Cancelled);
        settled.note(&record);
        analyzer.fold(&record);
        observe(Some(&record), &analyzer);
        quiet_due = true;
    }
    // The runner has dropped its sender, so it is done. Were it to panic, it counts as having
    // launched nothing; the plan count below still says what the archive holds.
    let ran = run.await.unwrap_or_default();
    let launched = done_before + ran.launched as u64;
    if let Some(source) = write_error {
        return Err(SessionError::WriteArchive { path, source });
    }

    let snapshot = analyzer.snapshot();
    let (outcome, without_outcome, not_sent, reason) = closing(
        PlanCount {
            planned: planned_calls,
            settled: settled.count(),
            launched,
            abandoned,
            stopped: control.stop.is_cancelled(),
        },
        &ran.stopped,
    );
    let mut close = writer.close_record(outcome, planned_calls, None);
    close.without_outcome = without_outcome;
    close.not_sent = not_sent;
    close.reason = reason;
    let summary = report::summary_json(&snapshot, &path, &identity);
    close.summary = Some(report::with_stop(summary, &close));
    close.servers = server_identities(&protocol, &backends).await;
    writer
        .close(&close)
        .map_err(|source| SessionError::WriteArchive {
            path: path.clone(),
            source,
        })?;
    Ok(SessionResult {
        protocol: protocol.meta.name.clone(),
        archive: path,
        identity,
        snapshot,
        close,
    })
}

/// Folds an archive's call records into a fresh analysis, exactly as the live session did.
pub fn analyse_archive(
    path: &Path,
) -> Result<(archive::Archive, Snapshot), crate::error::InputError> {
    let archive = archive::read(path)?;
    let protocol_like = analysis_config_from_conditions(&archive.header.conditions);
    let mut analyzer = Analyzer::new(protocol_like);
    for record in &archive.calls {
        analyzer.fold(record);
    }
    let snapshot = analyzer.snapshot();
    Ok((archive, snapshot))
}

/// The analysis configuration recorded in an archive's conditions.
pub fn analysis_config_from_conditions(conditions: &serde_json::Value) -> AnalysisConfig {
    let names = |key: &str| -> Vec<serde_json::Value> {
        conditions[key].as_array().cloned().unwrap_or_default()
    };
    AnalysisConfig {
        answer: serde_json::from_value(conditions["answer"].clone()).ok(),
        pair_budget: DEFAULT_PAIR_BUDGET,
        targets: names("targets")
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect(),
        items: names("items")
            .iter()
            .filter_map(|i| {
                let name = i["name"].as_str()?.to_string();
                Some((name, i["expected"].as_str().map(str::to_string)))
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::PlannedCall;

    fn record(target: &str, call: u32, attempt: u32, status: &str, retried: bool) -> CallRecord {
        let mut r: CallRecord = serde_json::from_value(serde_json::json!({
            "target": target, "item": "prompt", "call": call, "attempt": attempt,
            "timing": {"start_ms": 0.0, "latency_ms": 1.0}, "status": status,
        }))
        .unwrap();
        r.retried = retried;
        r
    }

    #[test]
    fn a_session_completes_only_when_every_planned_call_has_its_outcome() {
        let all = PlanCount {
            planned: 10,
            settled: 10,
            launched: 10,
            abandoned: 0,
            stopped: false,
        };
        assert_eq!(closing(all, &[]), (SessionOutcome::Completed, 0, 0, None));
        // Stopped after the last launch: nothing is missing, so it still completed.
        let late_stop = PlanCount {
            stopped: true,
            ..all
        };
        assert_eq!(closing(late_stop, &[]).0, SessionOutcome::Completed);
        // Every call launched, one never recorded (a task lost on the way): never completed.
        let lost = PlanCount { settled: 9, ..all };
        let (outcome, without, not_sent, reason) = closing(lost, &[]);
        assert_eq!((outcome, without, not_sent), (SessionOutcome::Failed, 1, 0));
        assert_eq!(
            reason.as_deref(),
            Some(
                "1 of 10 planned calls have no outcome in the archive (0 never sent): reprise \
                 failed internally; please report it"
            )
        );
        // Stopped by the user with calls unsent: cancelled, and counted.
        let stopped = PlanCount {
            settled: 6,
            launched: 6,
            stopped: true,
            ..all
        };
        let (outcome, without, not_sent, reason) = closing(stopped, &[]);
        assert_eq!(
            (outcome, without, not_sent),
            (SessionOutcome::Cancelled, 4, 4)
        );
        assert_eq!(
            reason.as_deref(),
            Some("stopped by the user: 4 of 10 planned calls have no outcome")
        );
        // Abandoned in flight: every call has an outcome, but some were cut.
        let aborted = PlanCount {
            abandoned: 2,
            stopped: true,
            ..all
        };
        assert_eq!(closing(aborted, &[]).0, SessionOutcome::Cancelled);
        // The runner ended early without being stopped (it panicked): failed, not completed.
        let ended = PlanCount {
            settled: 3,
            launched: 3,
            ..all
        };
        assert_eq!(closing(ended, &[]).0, SessionOutcome::Failed);
    }

    #[test]
    fn calls_a_breaker_held_back_fail_the_session_with_its_sentence() {
        let tripped = PlanCount {
            planned: 1000,
            settled: 9,
            launched: 9,
            abandoned: 0,
            stopped: false,
        };
        let why = ["target `a`: the first 5 calls all failed (auth): …".to_string()];
        let (outcome, without, not_sent, reason) = closing(tripped, &why);
        assert_eq!(
            (outcome, without, not_sent),
            (SessionOutcome::Failed, 991, 991)
        );
        assert_eq!(reason.as_deref(), Some(why[0].as_str()));
        // Two targets stopped, and a call lost besides: every reason is said.
        let both = [why[0].clone(), "target `b`: …".to_string()];
        let lost = PlanCount {
            settled: 8,
            ..tripped
        };
        let reason = closing(lost, &both).3.unwrap();
        assert_eq!(
            reason,
            "target `a`: the first 5 calls all failed (auth): …; target `b`: …; and 992 of \
             1000 planned calls have no outcome in the archive (991 never sent): reprise failed \
             internally; please report it"
        );
        // Stopped by the user as well: the breaker's stop is still the session's failure.
        let stopped = PlanCount {
            stopped: true,
            ..tripped
        };
        assert_eq!(closing(stopped, &why).0, SessionOutcome::Failed);
    }

    #[test]
    fn settled_counts_each_planned_call_once_and_only_planned_ones() {
        let protocol = Protocol::parse(
            Path::new("p.toml"),
            "[protocol]\nname = \"p\"\n[prompt]\nuser = \"Hi\"\n[campaign]\nrepeats = 3\n",
        )
        .unwrap();
        let mut settled = Settled::new(&protocol);
        for r in [
            record("local", 0, 1, "error", true),
            record("local", 0, 2, "ok", false),
            record("local", 1, 1, "cancelled", false),
            // A retried attempt is not an outcome.
            record("local", 2, 1, "error", true),
            // Not in the plan: another target, a call past the last.
            record("zz", 2, 1, "ok", false),
            record("local", 3, 1, "ok", false),
        ] {
            settled.note(&r);
        }
        assert_eq!(settled.count(), 2);
        settled.note(&record("local", 2, 2, "error", false));
        settled.note(&record("local", 2, 2, "error", false));
        assert_eq!(settled.count(), 3);
    }

    #[test]
    fn resuming_plans_only_the_calls_without_an_outcome() {
        let protocol = Protocol::parse(
            Path::new("p.toml"),
            "[protocol]\nname = \"p\"\n[prompt]\nuser = \"Hi\"\n[campaign]\nrepeats = 4\n\n[[targets]]\nname = \"a\"\nprovider = \"local\"\n\n[[targets]]\nname = \"b\"\nprovider = \"local\"\n",
        )
        .unwrap();
        let mut planned = plan(2, 1, 0, 4);
        let earlier = [
            record("a", 0, 1, "ok", false),
            // A failure that was final is an outcome too.
            record("b", 0, 1, "error", false),
            // Killed while waiting to retry: the call goes on with its third attempt.
            record("a", 1, 1, "error", true),
            record("a", 1, 2, "error", true),
            // Cancelled in flight: sent again, as its second attempt.
            record("b", 1, 1, "cancelled", false),
            // A record of a target the protocol no longer has changes nothing.
            record("zz", 2, 1, "ok", false),
        ];
        let done = resume_plan(&mut planned, &earlier, &protocol);
        assert_eq!(done, 2);
        let left: Vec<(usize, u32, u32)> = planned
            .iter()
            .map(|p: &PlannedCall| (p.target, p.call, p.attempts_before))
            .collect();
        assert_eq!(
            left,
            [
                (0, 1, 2),
                (1, 1, 1),
                (0, 2, 0),
                (1, 2, 0),
                (0, 3, 0),
                (1, 3, 0)
            ]
        );
    }
}
