//! The circuit breaker: when a target's first calls all fail alike, with a failure no retry
//! mends (credentials refused, a parameter refused, a request the server will not take), the
//! rest would fail the same way — and may each be billed — so no more are sent to it.
//!
//! Only the first outcomes count: a success, or two different kinds of outcome, and the
//! target's breaker can never trip.

use std::sync::Mutex;

use crate::record::{CallRecord, CallStatus, ErrorClass};

/// One target's breaker.
pub(super) struct Breaker {
    /// How many first outcomes, all failed alike, trip it; 0 never trips.
    threshold: u32,
    state: Mutex<State>,
}

enum State {
    /// Only failures of one persistent class so far (`first`: none yet).
    Armed { first: Option<Failures> },
    /// A success or a second kind of outcome came: it never trips.
    Disarmed,
    /// Tripped: the sentence that says why.
    Tripped(String),
}

/// The failures seen so far, all of one class.
struct Failures {
    class: ErrorClass,
    count: u32,
    /// The first failure's message: what the user needs to fix.
    message: String,
}

/// Failures no retry or wait mends: the same request will fail the same way.
fn persistent(class: ErrorClass) -> bool {
    matches!(
        class,
        ErrorClass::Auth | ErrorClass::RefusedParameter | ErrorClass::Other
    )
}

impl Breaker {
    pub(super) fn new(threshold: u32) -> Breaker {
        Breaker {
            threshold,
            state: Mutex::new(State::Armed { first: None }),
        }
    }

    /// Takes in one record of target `target` (its name). Attempts to be retried and calls
    /// cancelled by the user are not outcomes of the target and change nothing.
    pub(super) fn observe(&self, target: &str, record: &CallRecord) {
        if self.threshold == 0 || record.retried || record.status == CallStatus::Cancelled {
            return;
        }
        let failure = record
            .error
            .as_ref()
            .filter(|e| record.status == CallStatus::Error && persistent(e.class));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let State::Armed { first } = &mut *state else {
            return;
        };
        let seen = match (failure, first.take()) {
            (Some(error), None) => Failures {
                class: error.class,
                count: 1,
                message: error.message.clone(),
            },
            (Some(error), Some(mut seen)) if seen.class == error.class => {
                seen.count += 1;
                seen
            }
            _ => {
                *state = State::Disarmed;
                return;
            }
        };
        *state = if seen.count >= self.threshold {
            State::Tripped(self.sentence(target, &seen))
        } else {
            State::Armed { first: Some(seen) }
        };
    }

    /// Why no more calls go to this target, once tripped.
    pub(super) fn tripped(&self) -> Option<String> {
        match &*self.state.lock().unwrap_or_else(|e| e.into_inner()) {
            State::Tripped(sentence) => Some(sentence.clone()),
            _ => None,
        }
    }

    fn sentence(&self, target: &str, seen: &Failures) -> String {
        let calls = match self.threshold {
            1 => "the first call".to_string(),
            n => format!("the first {n} calls all"),
        };
        // The message is already one sentence; its full stop would end ours.
        let message = one_line(&seen.message);
        format!(
            "target `{}`: {calls} failed ({}): {}; no more calls were sent to it (breaker = {} \
             in [campaign])",
            one_line(target),
            seen.class.as_str(),
            message.trim_end_matches('.'),
            self.threshold
        )
    }
}

/// `text` on one line, with no control character left.
fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::inert(&line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(class: ErrorClass, message: &str) -> CallRecord {
        CallRecord::failed("gpt", "q", 0, class, message)
    }

    fn ok() -> CallRecord {
        CallRecord::ok("gpt", "q", 0, "fine", 1.0)
    }

    const REFUSED: &str = "provider `openai` refused parameter `max_tokens` (HTTP 400): \
                           Unsupported parameter: 'max_tokens' is not supported with this model.";

    #[test]
    fn the_first_calls_failing_alike_trip_it_with_one_sentence() {
        let breaker = Breaker::new(3);
        for _ in 0..2 {
            breaker.observe("gpt", &failed(ErrorClass::RefusedParameter, REFUSED));
            assert_eq!(breaker.tripped(), None);
        }
        // A retried attempt and a cancelled call are no outcome of the target.
        let mut retried = failed(ErrorClass::Server, "500");
        retried.retried = true;
        breaker.observe("gpt", &retried);
        breaker.observe("gpt", &failed(ErrorClass::Cancelled, "cancelled"));
        breaker.observe("gpt", &failed(ErrorClass::RefusedParameter, "another"));
        assert_eq!(
            breaker.tripped().as_deref(),
            Some(
                "target `gpt`: the first 3 calls all failed (refused_parameter): provider \
                 `openai` refused parameter `max_tokens` (HTTP 400): Unsupported parameter: \
                 'max_tokens' is not supported with this model; no more calls were sent to it \
                 (breaker = 3 in [campaign])"
            )
        );
        // Tripped it stays, whatever comes after (calls that were in flight).
        breaker.observe("gpt", &ok());
        assert!(breaker.tripped().is_some());
    }

    #[test]
    fn a_success_or_a_second_kind_of_outcome_first_and_it_never_trips() {
        let after_success = Breaker::new(2);
        after_success.observe("gpt", &ok());
        let mixed = Breaker::new(2);
        mixed.observe("gpt", &failed(ErrorClass::Auth, "401"));
        mixed.observe("gpt", &failed(ErrorClass::RefusedParameter, "400"));
        // Transient failures are no reason to stop: retries and waits mend those.
        let transient = Breaker::new(2);
        transient.observe("gpt", &failed(ErrorClass::RateLimit, "429"));
        for breaker in [&after_success, &mixed, &transient] {
            for _ in 0..10 {
                breaker.observe("gpt", &failed(ErrorClass::Auth, "401"));
            }
            assert_eq!(breaker.tripped(), None);
        }
        let off = Breaker::new(0);
        for _ in 0..10 {
            off.observe("gpt", &failed(ErrorClass::Auth, "401"));
        }
        assert_eq!(off.tripped(), None, "0 turns it off");
    }

    #[test]
    fn the_sentence_is_one_inert_line() {
        let breaker = Breaker::new(1);
        breaker.observe("g\x1bpt", &failed(ErrorClass::Other, "bad\n\x1b[2Jthing."));
        let sentence = breaker.tripped().unwrap();
        assert_eq!(
            sentence,
            "target `g␛pt`: the first call failed (other): bad ␛[2Jthing; no more calls were \
             sent to it (breaker = 1 in [campaign])"
        );
    }
}
