//! What every HTTP provider shares: the whole-call deadline, the failures of the transport,
//! and keeping the key out of every message. Wire formats stay in their own modules.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::key::ApiKey;
use super::openai::{cause, seconds};
use super::{CallFailure, Reply};
use crate::record::ErrorClass;

/// A failure in the one-sentence form every provider uses: "provider `x` {what}".
pub(crate) fn failure(provider: &str, class: ErrorClass, what: String) -> CallFailure {
    CallFailure::new(class, format!("provider `{provider}` {what}"))
}

/// Nothing arrived within the first-byte timeout.
pub(crate) fn first_byte_timeout(provider: &str, wait: Duration) -> CallFailure {
    failure(
        provider,
        ErrorClass::Timeout,
        format!(
            "sent nothing within {} (first_byte_timeout_ms)",
            seconds(wait)
        ),
    )
}

/// A request that failed before any reply: connecting, or the connection dropping.
pub(crate) fn transport(
    provider: &str,
    endpoint: &str,
    connect: Duration,
    e: &reqwest::Error,
) -> CallFailure {
    if e.is_timeout() {
        return failure(
            provider,
            ErrorClass::Timeout,
            format!(
                "could not be reached at {endpoint} within {} (connect_timeout_ms)",
                seconds(connect)
            ),
        );
    }
    let what = if e.is_connect() {
        format!("could not be reached at {endpoint}")
    } else {
        format!("dropped the request to {endpoint} before replying")
    };
    failure(
        provider,
        ErrorClass::Connection,
        format!("{what}: {}", cause(e)),
    )
}

/// Runs one exchange under the whole-call deadline. `replying` is what the exchange sets once
/// a success status arrived, so a deadline passed mid-reply is never retried. Every failure
/// message has the key scrubbed: servers and proxies quote a wrong key back.
pub(crate) async fn within_deadline(
    provider: &str,
    total: Duration,
    key: Option<&ApiKey>,
    replying: &AtomicBool,
    exchange: impl Future<Output = Result<Reply, CallFailure>>,
) -> Result<Reply, CallFailure> {
    let result = match tokio::time::timeout(total, exchange).await {
        Ok(result) => result,
        Err(_) => {
            let failure = failure(
                provider,
                ErrorClass::Timeout,
                format!(
                    "gave no complete reply within {} (total_timeout_ms)",
                    seconds(total)
                ),
            );
            Err(if replying.load(Ordering::Relaxed) {
                failure.after_first_byte()
            } else {
                failure
            })
        }
    };
    result.map_err(|mut failure| {
        if let Some(key) = key {
            failure.message = key.scrub(&failure.message);
        }
        failure
    })
}
