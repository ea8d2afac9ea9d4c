//! The runner: sends the planned calls through their backends under a concurrency limit and
//! emits one call record per attempt. It never writes or analyses; the session does.
//!
//! No launched call goes unrecorded: a backend that panics fails that attempt (class `other`),
//! and a call task that dies anyway is recorded as failed when it is reaped. A target whose
//! first calls all fail alike is sent no more (see `breaker`).

mod breaker;

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::providers::{Backend, CallFailure, ChatRequest, Limits};
use crate::record::{CallError, CallRecord, CallStatus, ErrorClass, Timing};
use breaker::Breaker;

/// One planned call: which target, which item, which repeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedCall {
    pub target: usize,
    pub item: usize,
    /// 0-based index within (target, item); warm-up calls come first.
    pub call: u32,
    pub warmup: bool,
    /// Attempts already archived for this call (a resumed session continues its numbering,
    /// and its retry budget, where the killed one left off).
    pub attempts_before: u32,
}

/// Every planned call, interleaved so that all targets and items progress together
/// (a stopped campaign leaves every item with a comparable number of calls).
pub fn plan(targets: usize, items: usize, warmup: u32, repeats: u32) -> Vec<PlannedCall> {
    let mut calls = Vec::with_capacity(targets * items * (warmup + repeats) as usize);
    for call in 0..warmup + repeats {
        for item in 0..items {
            for target in 0..targets {
                calls.push(PlannedCall {
                    target,
                    item,
                    call,
                    warmup: call < warmup,
                    attempts_before: 0,
                });
            }
        }
    }
    calls
}

/// How the runner is told to pause or stop, and how many calls it has in flight.
#[derive(Clone)]
pub struct RunControl {
    /// Launch no new calls; calls in flight finish and are recorded.
    pub stop: CancellationToken,
    /// Calls in flight are abandoned and recorded as cancelled.
    pub abort: CancellationToken,
    /// While true, no new call is launched; calls in flight go on.
    pause: Arc<watch::Sender<bool>>,
    /// Calls launched whose task has not yet ended.
    in_flight: Arc<AtomicUsize>,
    /// Why targets were sent no more calls (their breakers tripped), as they tripped.
    stopped: Arc<Mutex<Vec<String>>>,
}

impl Default for RunControl {
    fn default() -> Self {
        RunControl {
            stop: CancellationToken::new(),
            abort: CancellationToken::new(),
            pause: Arc::new(watch::Sender::new(false)),
            in_flight: Arc::default(),
            stopped: Arc::default(),
        }
    }
}

impl RunControl {
    pub fn set_paused(&self, paused: bool) {
        self.pause.send_replace(paused);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Why targets were sent no more calls so far: one sentence per target whose breaker
    /// tripped, in the order they tripped.
    pub fn breaker_stops(&self) -> Vec<String> {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn breaker_stopped(&self, sentence: String) {
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sentence);
    }

    /// Returns once launching may go on; false when stopped meanwhile.
    async fn resumed(&self) -> bool {
        let mut paused = self.pause.subscribe();
        tokio::select! {
            biased;
            _ = self.stop.cancelled() => false,
            held = paused.wait_for(|p| !*p) => held.is_ok(),
        }
    }
}

/// What the runner needs: a backend per target and a request per item.
pub struct Runner {
    pub backends: Vec<Arc<dyn Backend>>,
    pub target_names: Vec<String>,
    pub item_names: Vec<String>,
    pub requests: Vec<ChatRequest>,
    pub concurrency: usize,
    /// A target whose first this-many outcomes all failed alike, with a failure no retry
    /// mends, is sent no more calls; 0 never stops one (`campaign.breaker`).
    pub breaker: u32,
    /// Session start; every timing is measured from it.
    pub clock: Instant,
}

/// What a run did with its plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ran {
    /// Planned calls launched.
    pub launched: usize,
    /// Why targets were sent no more calls, in target order: one sentence per target whose
    /// breaker held back at least one planned call.
    pub stopped: Vec<String>,
}

impl Runner {
    /// Runs `plan` to completion or until stopped; every attempt goes to `records`. A call
    /// to a target whose breaker has tripped is not launched.
    ///
    /// `records` should be bounded: a call keeps its concurrency permit until its record is
    /// accepted, so the runner never races ahead of the archive — a crash then loses at most
    /// the calls in flight and the channel's few slots, and a stop takes effect at once.
    pub async fn run(
        self: Arc<Self>,
        plan: Vec<PlannedCall>,
        control: RunControl,
        records: mpsc::Sender<CallRecord>,
    ) -> Ran {
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let targets: Arc<Vec<TargetRun>> = Arc::new(
            self.backends
                .iter()
                .map(|b| TargetRun::new(b.limits(), self.breaker))
                .collect(),
        );
        let mut in_flight = JoinSet::new();
        // What each call task is doing, so one that dies can still be recorded.
        let mut tasks = HashMap::new();
        let mut launched = 0;
        // Planned calls held back, per target, once its breaker tripped.
        let mut held_back = vec![0usize; self.backends.len()];
        for planned in plan {
            let tripped = || targets[planned.target].breaker.tripped();
            if let Some(why) = tripped() {
                hold_back(&mut held_back[planned.target], why, &control);
                continue;
            }
            if !control.resumed().await {
                break;
            }
            let permit = tokio::select! {
                biased;
                _ = control.stop.cancelled() => break,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            // The breaker may have tripped while this call waited for its turn.
            if let Some(why) = tripped() {
                hold_back(&mut held_back[planned.target], why, &control);
                continue;
            }
            launched += 1;
            let runner = Arc::clone(&self);
            let abort = control.abort.clone();
            let sender = records.clone();
            let gauge = InFlight::enter(&control.in_flight);
            let targets = Arc::clone(&targets);
            let progress = Arc::new(CallProgress::new(planned.attempts_before + 1));
            let shared = Arc::clone(&progress);
            let task = in_flight.spawn(async move {
                // Both are released when the task ends, however it ends.
                let _held = (gauge, permit);
                let target = &targets[planned.target];
                runner.call(planned, target, &abort, &sender, &shared).await;
            });
            tasks.insert(task.id(), (planned, progress));
            // Reap finished tasks as we go so the set stays small on long campaigns.
            while let Some(joined) = in_flight.try_join_next_with_id() {
                self.reap(joined, &mut tasks, &records).await;
            }
        }
        while let Some(joined) = in_flight.join_next_with_id().await {
            self.reap(joined, &mut tasks, &records).await;
        }
        let stopped = targets
            .iter()
            .zip(&held_back)
            .filter(|(_, held)| **held > 0)
            .filter_map(|(target, _)| target.breaker.tripped())
            .collect();
        Ran { launched, stopped }
    }

    /// A call task has ended. One that died (a panic outside the backend call, or aborted)
    /// before handing over its outcome gets a failure record for the attempt it was on.
    async fn reap(
        &self,
        joined: Result<(tokio::task::Id, ()), JoinError>,
        tasks: &mut HashMap<tokio::task::Id, (PlannedCall, Arc<CallProgress>)>,
        records: &mpsc::Sender<CallRecord>,
    ) {
        let (id, died) = match joined {
            Ok((id, ())) => (id, None),
            Err(e) => (e.id(), Some(e)),
        };
        let Some((planned, progress)) = tasks.remove(&id) else {
            return;
        };
        let Some(e) = died else { return };
        if progress.settled.load(Ordering::SeqCst) {
            return;
        }
        let what = if e.is_panic() {
            panic_message(e.into_panic().as_ref())
        } else {
            "its task was cancelled".to_string()
        };
        let attempt = progress.attempt.load(Ordering::SeqCst);
        let _ = records
            .send(self.internal_failure(planned, attempt, &what))
            .await;
    }

    /// One planned call: attempts until one is not to be retried, each its own record. The
    /// permit is held throughout, backoff included, so retries never exceed the concurrency.
    async fn call(
        &self,
        planned: PlannedCall,
        target: &TargetRun,
        abort: &CancellationToken,
        records: &mpsc::Sender<CallRecord>,
        progress: &CallProgress,
    ) {
        let policy = self.backends[planned.target].retry_policy();
        let mut attempt = planned.attempts_before + 1;
        // The provider's own concurrency, held across retries like the campaign's.
        let _provider_permit = match &target.permits {
            None => None,
            Some(permits) => tokio::select! {
                biased;
                _ = abort.cancelled() => {
                    self.hand_over(self.cancelled(planned, attempt), target, progress, records).await;
                    return;
                }
                permit = permits.clone().acquire_owned() => permit.ok(),
            },
        };
        loop {
            if let Some(pacer) = &target.pacer {
                tokio::select! {
                    biased;
                    _ = abort.cancelled() => {
                        self.hand_over(self.cancelled(planned, attempt), target, progress, records).await;
                        return;
                    }
                    _ = pacer.wait() => {}
                }
            }
            let (mut record, failure) = self.attempt(planned, attempt, abort).await;
            let wait = failure.and_then(|f| policy.wait(&f, attempt, rand::random::<f64>()));
            record.retried = wait.is_some();
            // The receiver only goes away when the session is failing; nothing to do then.
            if !self.hand_over(record, target, progress, records).await {
                return;
            }
            let Some(wait) = wait else { return };
            attempt += 1;
            progress.attempt.store(attempt, Ordering::SeqCst);
            let aborted = tokio::select! {
                biased;
                _ = abort.cancelled() => true,
                _ = tokio::time::sleep(wait) => false,
            };
            if aborted {
                // The call ends here: its last record says so, so it is never left open.
                self.hand_over(self.cancelled(planned, attempt), target, progress, records)
                    .await;
                return;
            }
        }
    }

    /// Hands `record` to the session; false when the session no longer takes any. A record
    /// that is not retried is the call's outcome: the call is then settled. The target's
    /// breaker sees it first, so it trips before this call's permit frees another launch.
    async fn hand_over(
        &self,
        record: CallRecord,
        target: &TargetRun,
        progress: &CallProgress,
        records: &mpsc::Sender<CallRecord>,
    ) -> bool {
        target.breaker.observe(&record.target, &record);
        let outcome = !record.retried;
        let sent = records.send(record).await.is_ok();
        if outcome {
            progress.settled.store(true, Ordering::SeqCst);
        }
        sent
    }

    fn blank(&self, planned: PlannedCall, attempt: u32, start_ms: f64) -> CallRecord {
        CallRecord {
            target: self.target_names[planned.target].clone(),
            item: self.item_names[planned.item].clone(),
            call: planned.call,
            attempt,
            warmup: planned.warmup,
            retried: false,
            timing: Timing {
                start_ms,
                ttft_ms: None,
                latency_ms: 0.0,
            },
            status: CallStatus::Ok,
            error: None,
            output: None,
            tokens: None,
            logprobs: None,
            finish_reason: None,
            usage: None,
            served: Default::default(),
            rate_limit: Default::default(),
        }
    }

    fn cancelled(&self, planned: PlannedCall, attempt: u32) -> CallRecord {
        let mut record = self.blank(planned, attempt, ms(self.clock.elapsed()));
        record.status = CallStatus::Cancelled;
        record.error = Some(CallError {
            class: ErrorClass::Cancelled,
            message: "cancelled by the user while in flight".into(),
        });
        record
    }

    /// The failure record of an attempt that reprise itself broke (`what`: the panic).
    fn internal_failure(&self, planned: PlannedCall, attempt: u32, what: &str) -> CallRecord {
        let mut record = self.blank(planned, attempt, ms(self.clock.elapsed()));
        record.status = CallStatus::Error;
        record.error = Some(internal_error(what));
        record
    }

    /// One attempt, as its record, with the failure when it failed (for the retry decision).
    /// A panic in the backend fails the attempt, never to be retried.
    async fn attempt(
        &self,
        planned: PlannedCall,
        attempt: u32,
        abort: &CancellationToken,
    ) -> (CallRecord, Option<CallFailure>) {
        let backend = &self.backends[planned.target];
        let request = &self.requests[planned.item];
        let sent = Instant::now();
        let start_ms = ms(sent.duration_since(self.clock));
        let result = tokio::select! {
            biased;
            _ = abort.cancelled() => None,
            result = CatchPanic(backend.call(request)) => Some(result),
        };
        let mut record = self.blank(planned, attempt, start_ms);
        record.timing.latency_ms = ms(sent.elapsed());
        match result {
            Some(Ok(Ok(reply))) => {
                record.timing.ttft_ms = reply.ttft.map(ms);
                record.output = Some(reply.text);
                record.tokens = reply.tokens;
                record.logprobs = reply.logprobs.map(finite_logprobs);
                record.finish_reason = reply.finish_reason;
                record.usage = reply.usage;
                record.served = reply.served;
                record.rate_limit = reply.rate_limit;
            }
            Some(Ok(Err(failure))) => {
                record.status = CallStatus::Error;
                record.error = Some(CallError {
                    class: failure.class,
                    message: failure.message.clone(),
                });
                record.rate_limit = failure.rate_limit.clone();
                return (record, Some(failure));
            }
            Some(Err(panicked)) => {
                record.status = CallStatus::Error;
                record.error = Some(internal_error(&panicked));
            }
            None => {
                record.status = CallStatus::Cancelled;
                record.error = Some(CallError {
                    class: ErrorClass::Cancelled,
                    message: "cancelled by the user while in flight".into(),
                });
            }
        }
        (record, None)
    }
}

/// How far a launched call has got: the attempt whose record is still to come, and whether
/// its outcome was handed over (a task that dies after that needs no record of its own).
struct CallProgress {
    attempt: AtomicU32,
    settled: AtomicBool,
}

impl CallProgress {
    fn new(attempt: u32) -> CallProgress {
        CallProgress {
            attempt: AtomicU32::new(attempt),
            settled: AtomicBool::new(false),
        }
    }
}

/// One call counted in [`RunControl::in_flight`] until dropped — when its task ends, however
/// it ends.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn enter(gauge: &Arc<AtomicUsize>) -> InFlight {
        gauge.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(gauge))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

thread_local! {
    static IN_BACKEND_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is inside a backend call whose panic the runner catches and records:
/// a panic hook can then leave the terminal alone, since the program goes on.
pub fn in_backend_call() -> bool {
    IN_BACKEND_CALL.with(Cell::get)
}

/// A backend call with a panic while polling it caught: `Err` carries the panic's message.
/// A future that panicked is never polled again.
struct CatchPanic<F>(F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outer = IN_BACKEND_CALL.with(|c| c.replace(true));
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(&mut self.0).poll(cx)));
        IN_BACKEND_CALL.with(|c| c.set(outer));
        match polled {
            Ok(poll) => poll.map(Ok),
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

/// A panic's message, one inert line (panics carry a `&str` or a `String`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    crate::providers::http::excerpt(text)
}

/// The error of an attempt reprise broke itself; `what` is already one inert line.
fn internal_error(what: &str) -> CallError {
    CallError {
        class: ErrorClass::Other,
        message: format!("reprise failed internally on this call ({what}); please report it"),
    }
}

/// A planned call held back by its target's tripped breaker (`why`); the first one held back
/// makes the stop known.
fn hold_back(held: &mut usize, why: String, control: &RunControl) {
    if *held == 0 {
        control.breaker_stopped(why);
    }
    *held += 1;
}

/// A target's own limits and its breaker while a plan runs.
struct TargetRun {
    permits: Option<Arc<Semaphore>>,
    pacer: Option<Pacer>,
    breaker: Breaker,
}

impl TargetRun {
    fn new(limits: Limits, breaker: u32) -> TargetRun {
        TargetRun {
            breaker: Breaker::new(breaker),
            permits: limits
                .concurrency
                .map(|n| Arc::new(Semaphore::new(n.max(1)))),
            pacer: limits
                .requests_per_minute
                .filter(|r| r.is_finite() && *r > 0.0)
                .map(|rpm| Pacer::new(std::time::Duration::from_secs_f64(60.0 / rpm))),
        }
    }
}

/// Spaces attempts `interval` apart, in the order they ask.
struct Pacer {
    interval: std::time::Duration,
    next: tokio::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pacer {
    fn new(interval: std::time::Duration) -> Pacer {
        Pacer {
            interval,
            next: tokio::sync::Mutex::new(None),
        }
    }

    async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + self.interval);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// JSON has no infinities: a logprob of −∞ (a token the server thought impossible) is kept
/// as the most negative f32, so the record stays writable and the value stays meaningful.
fn finite_logprobs(mut logprobs: Vec<f32>) -> Vec<f32> {
    for lp in &mut logprobs {
        if !lp.is_finite() {
            *lp = if *lp > 0.0 { f32::MAX } else { f32::MIN };
        }
    }
    logprobs
}

fn ms(d: std::time::Duration) -> f64 {
    // Microsecond resolution keeps archives short and is finer than any network jitter.
    (d.as_micros() as f64) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Params;
    use crate::providers::{CallFailure, Limits, Reply, RetryPolicy};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Fails every third call with a server error; answers the rest with an impossible token.
    struct Flaky {
        calls: AtomicU32,
        in_flight: AtomicU32,
        peak: AtomicU32,
        policy: RetryPolicy,
        limits: Limits,
    }

    #[async_trait::async_trait]
    impl Backend for Flaky {
        fn request_body(&self, _: &ChatRequest) -> serde_json::Value {
            serde_json::json!({})
        }
        fn endpoint(&self) -> String {
            "test".into()
        }
        fn retry_policy(&self) -> RetryPolicy {
            self.policy
        }
        fn limits(&self) -> Limits {
            self.limits
        }
        async fn call(&self, _: &ChatRequest) -> Result<Reply, CallFailure> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            if self.calls.fetch_add(1, Ordering::SeqCst) % 3 == 2 {
                return Err(CallFailure::new(ErrorClass::Server, "500"));
            }
            Ok(Reply {
                text: "x".into(),
                logprobs: Some(vec![-0.5, f32::NEG_INFINITY]),
                ..Default::default()
            })
        }
    }

    /// Never retried: every failure is the call's outcome.
    fn flaky() -> Arc<Flaky> {
        flaky_with(RetryPolicy::NONE)
    }

    fn flaky_with(policy: RetryPolicy) -> Arc<Flaky> {
        Arc::new(Flaky {
            calls: AtomicU32::new(0),
            in_flight: AtomicU32::new(0),
            peak: AtomicU32::new(0),
            policy,
            limits: Limits::default(),
        })
    }

    fn quick_retries(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            base: std::time::Duration::from_millis(1),
            cap: std::time::Duration::from_millis(4),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transient_failures_are_retried_each_attempt_its_own_record() {
        let backend = flaky_with(quick_retries(2));
        let runner = runner(backend.clone(), 3);
        let (tx, mut rx) = mpsc::channel(1);
        let run = tokio::spawn(runner.run(plan(1, 1, 0, 30), RunControl::default(), tx));
        let mut records = Vec::new();
        while let Some(r) = rx.recv().await {
            records.push(r);
        }
        assert_eq!(run.await.unwrap().launched, 30);
        // Every third attempt fails: 30 outcomes, one per call; a call fails only once its
        // two retries have failed too.
        let outcomes: Vec<&CallRecord> = records.iter().filter(|r| !r.retried).collect();
        let mut calls: Vec<u32> = outcomes.iter().map(|r| r.call).collect();
        calls.sort_unstable();
        assert_eq!(calls, (0..30).collect::<Vec<_>>(), "one outcome per call");
        assert!(outcomes
            .iter()
            .all(|r| r.status == CallStatus::Ok || r.attempt == 3));
        assert!(outcomes
            .iter()
            .any(|r| r.status == CallStatus::Ok && r.attempt > 1));
        let retried: Vec<&CallRecord> = records.iter().filter(|r| r.retried).collect();
        assert!(!retried.is_empty());
        assert_eq!(records.len(), 30 + retried.len());
        for r in &retried {
            assert_eq!(r.status, CallStatus::Error);
            let next = records
                .iter()
                .find(|n| n.call == r.call && n.attempt == r.attempt + 1)
                .expect("a retried attempt is followed by the next");
            assert!(next.timing.start_ms >= r.timing.start_ms + r.timing.latency_ms);
        }
        assert!(
            backend.peak.load(Ordering::SeqCst) <= 3,
            "retries hold the limit"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_providers_own_concurrency_and_pace_hold_under_the_campaigns() {
        let backend = Arc::new(Flaky {
            limits: Limits {
                concurrency: Some(1),
                requests_per_minute: Some(6000.0),
            },
            ..Arc::try_unwrap(flaky()).ok().unwrap()
        });
        let runner = runner(backend.clone(), 4);
        let (tx, mut rx) = mpsc::channel(4);
        let run = tokio::spawn(runner.run(plan(1, 1, 0, 12), RunControl::default(), tx));
        let mut starts = Vec::new();
        while let Some(r) = rx.recv().await {
            starts.push(r.timing.start_ms);
        }
        assert_eq!(run.await.unwrap().launched, 12);
        assert_eq!(backend.peak.load(Ordering::SeqCst), 1, "one at a time");
        starts.sort_by(f64::total_cmp);
        // 6000 a minute: the k-th attempt starts no sooner than k × 10 ms after the campaign
        // did (measured from the start, not from the first attempt, whose own start may be
        // recorded late on a loaded machine while the later ones keep to their slots).
        for (k, start) in starts.iter().enumerate() {
            assert!(*start >= k as f64 * 10.0 - 1.0, "{starts:?}");
        }
    }

    #[test]
    fn the_policy_retries_only_transient_failures_before_any_reply() {
        let p = RetryPolicy::default();
        let server = CallFailure::new(ErrorClass::Server, "500");
        let wait = p.wait(&server, 1, 0.0).unwrap();
        assert_eq!(
            wait,
            std::time::Duration::from_millis(375),
            "0.5 s × 75% jitter"
        );
        assert_eq!(
            p.wait(&server, 2, 1.0),
            Some(std::time::Duration::from_secs(1))
        );
        assert_eq!(p.wait(&server, 3, 0.5), None, "two retries at most");
        let capped = RetryPolicy {
            max_retries: 10,
            ..p
        };
        assert_eq!(
            capped.wait(&server, 9, 1.0),
            Some(std::time::Duration::from_secs(8))
        );
        let limited = CallFailure::new(ErrorClass::RateLimit, "429")
            .with_retry_after(Some(std::time::Duration::from_secs(3)));
        assert_eq!(
            p.wait(&limited, 1, 0.9),
            Some(std::time::Duration::from_secs(3))
        );
        let too_long = limited
            .clone()
            .with_retry_after(Some(std::time::Duration::from_secs(600)));
        assert_eq!(
            p.wait(&too_long, 1, 0.0),
            None,
            "a wait over 120 s fails the call"
        );
        let begun = CallFailure::new(ErrorClass::Timeout, "slow").after_first_byte();
        assert_eq!(p.wait(&begun, 1, 0.0), None, "never after the first byte");
        for class in [
            ErrorClass::Auth,
            ErrorClass::RefusedParameter,
            ErrorClass::MalformedResponse,
            ErrorClass::TruncatedStream,
            ErrorClass::Other,
        ] {
            assert_eq!(
                p.wait(&CallFailure::new(class, "x"), 1, 0.0),
                None,
                "{class:?}"
            );
        }
        assert_eq!(RetryPolicy::NONE.wait(&server, 1, 0.0), None);
    }

    /// One target, one item, on `backend`.
    fn runner(backend: Arc<Flaky>, concurrency: usize) -> Arc<Runner> {
        Arc::new(Runner {
            backends: vec![backend],
            target_names: vec!["t".into()],
            item_names: vec!["i".into()],
            requests: vec![ChatRequest {
                system: None,
                user: "u".into(),
                params: Params::default(),
            }],
            concurrency,
            breaker: 0,
            clock: Instant::now(),
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_planned_call_is_recorded_failures_included_under_the_limit() {
        let backend = flaky();
        let runner = runner(backend.clone(), 3);
        let (tx, mut rx) = mpsc::channel(1);
        let run = tokio::spawn(runner.run(plan(1, 1, 0, 30), RunControl::default(), tx));
        let mut records = Vec::new();
        while let Some(r) = rx.recv().await {
            records.push(r);
            if records.len() == 5 {
                // A slow archive: the runner must wait for it rather than race ahead.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let started = backend.calls.load(Ordering::SeqCst) as usize;
                assert!(started <= 5 + 3 + 1, "{started} calls started, 5 archived");
            }
        }
        assert_eq!(run.await.unwrap().launched, 30);
        assert_eq!(records.len(), 30);
        let mut calls: Vec<u32> = records.iter().map(|r| r.call).collect();
        calls.sort_unstable();
        assert_eq!(calls, (0..30).collect::<Vec<_>>(), "each call once");
        let errors = records
            .iter()
            .filter(|r| r.status == CallStatus::Error)
            .count();
        assert_eq!(errors, 10);
        assert!(
            backend.peak.load(Ordering::SeqCst) <= 3,
            "concurrency limit held"
        );
        let ok = records.iter().find(|r| r.status == CallStatus::Ok).unwrap();
        assert_eq!(ok.logprobs, Some(vec![-0.5, f32::MIN]), "−∞ kept writable");
        assert!(records.iter().all(|r| r.timing.latency_ms >= 2.0));
    }

    #[tokio::test]
    async fn stop_launches_nothing_more() {
        let control = RunControl::default();
        control.stop.cancel();
        let runner = runner(flaky(), 2);
        let (tx, mut rx) = mpsc::channel(4);
        assert_eq!(runner.run(plan(1, 1, 0, 10), control, tx).await.launched, 0);
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pause_holds_launches_and_resume_finishes_the_plan() {
        let backend = flaky();
        let control = RunControl::default();
        let runner = runner(backend.clone(), 2);
        let (tx, mut rx) = mpsc::channel(4);
        let run = tokio::spawn(runner.run(plan(1, 1, 0, 20), control.clone(), tx));
        let mut records = 0;
        while records < 4 {
            rx.recv().await.unwrap();
            records += 1;
        }
        control.set_paused(true);
        // Calls already launched finish; then nothing more starts while paused.
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
        while rx.try_recv().is_ok() {
            records += 1;
        }
        let held = backend.calls.load(Ordering::SeqCst);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(
            backend.calls.load(Ordering::SeqCst),
            held,
            "no launch while paused"
        );
        assert!(held < 20);
        assert_eq!(control.in_flight(), 0);
        control.set_paused(false);
        while rx.recv().await.is_some() {
            records += 1;
        }
        assert_eq!(run.await.unwrap().launched, 20);
        assert_eq!(records, 20);
    }

    #[tokio::test]
    async fn stop_while_paused_ends_the_run() {
        let control = RunControl::default();
        control.set_paused(true);
        let runner = runner(flaky(), 2);
        let (tx, _rx) = mpsc::channel(4);
        let run = tokio::spawn(runner.run(plan(1, 1, 0, 10), control.clone(), tx));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        control.stop.cancel();
        assert_eq!(run.await.unwrap().launched, 0);
    }

    /// Answers every call, but panics on every `every`-th — as a provider doing
    /// `Duration::from_secs_f64(1e20)` on a server's `Retry-After: 1e20` would; or, with
    /// `policy_panics`, panics when asked for its retry policy (outside the call itself).
    struct Panicky {
        calls: AtomicU32,
        every: u32,
        policy_panics: bool,
    }

    #[async_trait::async_trait]
    impl Backend for Panicky {
        fn request_body(&self, _: &ChatRequest) -> serde_json::Value {
            serde_json::json!({})
        }
        fn endpoint(&self) -> String {
            "test".into()
        }
        fn retry_policy(&self) -> RetryPolicy {
            if self.policy_panics {
                panic!("no policy today");
            }
            quick_retries(2)
        }
        async fn call(&self, _: &ChatRequest) -> Result<Reply, CallFailure> {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            if self.calls.fetch_add(1, Ordering::SeqCst) % self.every == self.every - 1 {
                let wait = std::time::Duration::from_secs_f64(1e20);
                return Err(
                    CallFailure::new(ErrorClass::RateLimit, "429").with_retry_after(Some(wait))
                );
            }
            Ok(Reply {
                text: "x".into(),
                ..Default::default()
            })
        }
    }

    fn panicky_runner(backend: Panicky, concurrency: usize) -> Arc<Runner> {
        Arc::new(Runner {
            backends: vec![Arc::new(backend)],
            ..Arc::try_unwrap(runner(flaky(), concurrency)).ok().unwrap()
        })
    }

    /// Runs `runner` on one target and item, `calls` calls; every record, in arrival order.
    async fn records_of(runner: Arc<Runner>, calls: u32, control: RunControl) -> Vec<CallRecord> {
        let (tx, mut rx) = mpsc::channel(2);
        let run = tokio::spawn(runner.run(plan(1, 1, 0, calls), control.clone(), tx));
        let mut records = Vec::new();
        while let Some(r) = rx.recv().await {
            records.push(r);
        }
        assert_eq!(run.await.unwrap().launched, calls as usize);
        assert_eq!(control.in_flight(), 0, "every call left the gauge");
        records
    }

    /// Each planned call's one outcome, by call number.
    fn outcomes(records: &[CallRecord], calls: u32) -> Vec<&CallRecord> {
        let mut outcomes: Vec<&CallRecord> = records.iter().filter(|r| !r.retried).collect();
        outcomes.sort_by_key(|r| r.call);
        let numbers: Vec<u32> = outcomes.iter().map(|r| r.call).collect();
        assert_eq!(
            numbers,
            (0..calls).collect::<Vec<_>>(),
            "one outcome per call"
        );
        outcomes
    }

    #[tokio::test(start_paused = true)]
    async fn a_panic_in_the_backend_fails_that_attempt_once_and_the_run_goes_on() {
        let backend = Panicky {
            calls: AtomicU32::new(0),
            every: 3,
            policy_panics: false,
        };
        let records = records_of(panicky_runner(backend, 4), 12, RunControl::default()).await;
        assert_eq!(records.len(), 12, "a panic is never retried");
        let outcomes = outcomes(&records, 12);
        let failed: Vec<&&CallRecord> = outcomes
            .iter()
            .filter(|r| r.status == CallStatus::Error)
            .collect();
        assert_eq!(failed.len(), 4);
        for r in failed {
            let error = r.error.as_ref().unwrap();
            assert_eq!(error.class, ErrorClass::Other);
            assert!(
                error
                    .message
                    .starts_with("reprise failed internally on this call (")
                    && error.message.ends_with("); please report it"),
                "{}",
                error.message
            );
            assert!(error.message.contains("too big"), "{}", error.message);
            assert!(!error.message.contains('\n'));
            assert_eq!(r.attempt, 1);
        }
    }

    #[tokio::test]
    async fn a_backend_call_is_marked_while_polled_and_its_panic_returned() {
        let marked = CatchPanic(Box::pin(async { in_backend_call() })).await;
        assert_eq!(marked, Ok(true));
        assert!(!in_backend_call(), "only while the call is polled");
        let panicked = CatchPanic(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("boom\n\x1b[2J");
        }))
        .await;
        assert_eq!(panicked, Err("boom ␛[2J".to_string()));
        assert!(!in_backend_call(), "cleared after a panic too");
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_task_that_dies_is_recorded_as_failed_and_frees_its_place() {
        let backend = Panicky {
            calls: AtomicU32::new(0),
            every: 1000,
            policy_panics: true,
        };
        // Concurrency 2 and 9 calls: the plan only finishes if dead tasks give back permits.
        let records = records_of(panicky_runner(backend, 2), 9, RunControl::default()).await;
        assert_eq!(records.len(), 9);
        for r in outcomes(&records, 9) {
            assert_eq!(r.status, CallStatus::Error);
            assert_eq!(r.attempt, 1);
            let error = r.error.as_ref().unwrap();
            assert_eq!(error.class, ErrorClass::Other);
            assert_eq!(
                error.message,
                "reprise failed internally on this call (no policy today); please report it"
            );
        }
    }

    /// Answers every call after 2 ms: `Ok`, or always the same failure.
    struct Always(Option<ErrorClass>);

    #[async_trait::async_trait]
    impl Backend for Always {
        fn request_body(&self, _: &ChatRequest) -> serde_json::Value {
            serde_json::json!({})
        }
        fn endpoint(&self) -> String {
            "test".into()
        }
        async fn call(&self, _: &ChatRequest) -> Result<Reply, CallFailure> {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            match self.0 {
                None => Ok(Reply {
                    text: "x".into(),
                    ..Default::default()
                }),
                Some(class) => Err(CallFailure::new(
                    class,
                    "provider `p` refused parameter `max_tokens` (HTTP 400)",
                )),
            }
        }
    }

    /// Targets `a` (refusing every call) and `b` (answering), 100 calls each, concurrency 4.
    async fn refusing_and_answering(breaker: u32) -> (Ran, Vec<CallRecord>, RunControl) {
        let runner = Arc::new(Runner {
            backends: vec![
                Arc::new(Always(Some(ErrorClass::RefusedParameter))),
                Arc::new(Always(None)),
            ],
            target_names: vec!["a".into(), "b".into()],
            breaker,
            ..Arc::try_unwrap(runner(flaky(), 4)).ok().unwrap()
        });
        let control = RunControl::default();
        let (tx, mut rx) = mpsc::channel(4);
        let run = tokio::spawn(runner.run(plan(2, 1, 0, 100), control.clone(), tx));
        let mut records = Vec::new();
        while let Some(r) = rx.recv().await {
            records.push(r);
        }
        (run.await.unwrap(), records, control)
    }

    #[tokio::test(start_paused = true)]
    async fn a_tripped_breaker_sends_its_target_no_more_and_the_others_go_on() {
        let (ran, records, control) = refusing_and_answering(5).await;
        let to = |t: &str| records.iter().filter(|r| r.target == t).count();
        // The first wave at most: the calls in flight as the fifth refusal came back.
        assert!(to("a") >= 5 && to("a") <= 4 + 5, "{} calls to a", to("a"));
        assert_eq!(to("b"), 100, "the other target completes");
        assert_eq!(ran.launched, to("a") + 100);
        let sentence = "target `a`: the first 5 calls all failed (refused_parameter): provider \
                        `p` refused parameter `max_tokens` (HTTP 400); no more calls were sent \
                        to it (breaker = 5 in [campaign])";
        assert_eq!(ran.stopped, [sentence]);
        assert_eq!(control.breaker_stops(), [sentence]);
        assert_eq!(control.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_zero_sends_every_call() {
        let (ran, records, control) = refusing_and_answering(0).await;
        assert_eq!(ran.launched, 200);
        assert_eq!(records.len(), 200);
        assert!(ran.stopped.is_empty());
        assert!(control.breaker_stops().is_empty());
    }

    #[test]
    fn plan_interleaves_targets_and_items_with_warmup_first() {
        let p = plan(2, 3, 1, 2);
        assert_eq!(p.len(), 2 * 3 * 3);
        assert!(p[..6].iter().all(|c| c.warmup && c.call == 0));
        assert!(p[6..].iter().all(|c| !c.warmup));
        assert_eq!(
            (p[1].target, p[1].item),
            (1, 0),
            "targets alternate first so a stopped run stays balanced"
        );
        let last = p.last().unwrap();
        assert_eq!((last.target, last.item, last.call), (1, 2, 2));
    }
}
