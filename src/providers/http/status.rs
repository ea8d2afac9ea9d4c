//! What an HTTP error status stands for, for every wire format: the format reads its error
//! body into a [`ServerError`], and [`classify`] makes the status, the `Retry-After` header
//! and that reading into one classified failure in one sentence.

use std::time::Duration;

use super::excerpt;
use crate::providers::CallFailure;
use crate::record::ErrorClass;

/// An error body as its wire format reads it. Every part may be missing: a proxy's HTML page
/// has nothing but its text.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ServerError {
    /// The error's kind as the body names it (Anthropic's `type`, Gemini's `status`), shown
    /// after the status code.
    pub kind: Option<String>,
    /// What the server said: its message, or the body's text when the body is not the
    /// format's error shape.
    pub message: Option<String>,
    /// The sent parameter the body names: on a 400, the parameter refused.
    pub param: Option<String>,
    /// What the body says that changes what its status stands for.
    pub reason: Option<Reason>,
    /// The class the body's kind stands for, deciding a status outside 4xx and 5xx
    /// (Anthropic documents its error types, not every status).
    pub class: Option<ErrorClass>,
    /// The wait the body asks for (Gemini's `RetryInfo`: Google sends no `Retry-After`).
    pub retry_in: Option<Duration>,
}

/// A wire format's own reading of an error.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// On a 400: the key was refused (Gemini's `API_KEY_INVALID`).
    BadKey,
    /// On a 404: the server does not have `model`; `remedy` says how to get it.
    MissingModel { model: String, remedy: String },
}

/// The failure an HTTP error `status` stands for. `retry_after` is the `Retry-After` header
/// as sent, which a rate limit's message names (else the body's wait); `keyed` says whether
/// the request carried a key, so that no message blames a key that was never sent.
pub fn classify(
    provider: &str,
    status: u16,
    retry_after: Option<&str>,
    keyed: bool,
    error: ServerError,
) -> CallFailure {
    let what = match &error.kind {
        Some(kind) => format!("HTTP {status}, {}", excerpt(kind)),
        None => format!("HTTP {status}"),
    };
    let said = said(error.message.as_deref());
    let (class, text) = match (status, &error.reason, &error.param) {
        (401 | 403, ..) | (400, Some(Reason::BadKey), _) => (
            ErrorClass::Auth,
            if keyed {
                format!("refused the credentials ({what}){said}")
            } else {
                format!("refused the request, which carried no key (api_key_env) ({what}){said}")
            },
        ),
        (429, ..) => (
            ErrorClass::RateLimit,
            format!(
                "is rate limiting ({what}){said}{}",
                wait(retry_after, error.retry_in)
            ),
        ),
        (500..=599, ..) => (ErrorClass::Server, format!("failed ({what}){said}")),
        (404, Some(Reason::MissingModel { model, remedy }), _) => (
            ErrorClass::Other,
            format!(
                "does not have model `{}` ({what}){said}; {remedy}",
                excerpt(model)
            ),
        ),
        (400, _, Some(param)) => (
            ErrorClass::RefusedParameter,
            format!("refused parameter `{}` ({what}){said}", excerpt(param)),
        ),
        (400..=499, ..) => (ErrorClass::Other, format!("answered {what}{said}")),
        // A status outside the documented ones: the body's kind, where it has one, decides.
        _ => (
            error.class.unwrap_or(ErrorClass::Other),
            format!("answered {what}{said}"),
        ),
    };
    super::failure(provider, class, text).with_retry_after(error.retry_in)
}

/// The server's words after a colon, or nothing when it said nothing.
pub(crate) fn said(message: Option<&str>) -> String {
    match message.map(excerpt) {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

/// The wait a rate limit's message names: the header as sent, else the body's.
fn wait(retry_after: Option<&str>, retry_in: Option<Duration>) -> String {
    match (retry_after, retry_in) {
        (Some(header), _) => match header.trim().parse::<f64>() {
            Ok(s) => format!(" (Retry-After {s} s)"),
            Err(_) => format!(" (Retry-After {})", excerpt(header)),
        },
        (None, Some(wait)) => format!(" (retry in {} s)", wait.as_secs_f64()),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(message: &str) -> ServerError {
        ServerError {
            message: Some(message.into()),
            ..ServerError::default()
        }
    }

    fn classified(
        status: u16,
        retry_after: Option<&str>,
        error: ServerError,
    ) -> (ErrorClass, String) {
        let f = classify("p", status, retry_after, true, error);
        (f.class, f.message)
    }

    #[test]
    fn a_body_s_reading_counts_only_on_the_status_it_belongs_to() {
        let bad_key = ServerError {
            reason: Some(Reason::BadKey),
            ..said("no")
        };
        assert_eq!(classified(400, None, bad_key.clone()).0, ErrorClass::Auth);
        assert_eq!(classified(404, None, bad_key).0, ErrorClass::Other);
        let missing = ServerError {
            reason: Some(Reason::MissingModel {
                model: "m".into(),
                remedy: "get it".into(),
            }),
            ..said("no")
        };
        assert_eq!(
            classified(404, None, missing.clone()),
            (
                ErrorClass::Other,
                "provider `p` does not have model `m` (HTTP 404): no; get it".into()
            )
        );
        assert_eq!(
            classified(400, None, missing).1,
            "provider `p` answered HTTP 400: no"
        );
        let param = ServerError {
            param: Some("top_p".into()),
            ..said("no")
        };
        assert_eq!(
            classified(400, None, param.clone()).0,
            ErrorClass::RefusedParameter
        );
        assert_eq!(classified(422, None, param).0, ErrorClass::Other);
    }

    #[test]
    fn a_status_outside_4xx_and_5xx_is_decided_by_the_body_s_kind() {
        let overloaded = ServerError {
            kind: Some("overloaded_error".into()),
            class: Some(ErrorClass::Server),
            ..said("Overloaded")
        };
        assert_eq!(
            classified(302, None, overloaded.clone()),
            (
                ErrorClass::Server,
                "provider `p` answered HTTP 302, overloaded_error: Overloaded".into()
            )
        );
        // Within 4xx the status decides.
        assert_eq!(classified(418, None, overloaded).0, ErrorClass::Other);
        assert_eq!(classified(302, None, said("moved")).0, ErrorClass::Other);
    }

    #[test]
    fn a_rate_limit_names_the_header_s_wait_else_the_body_s() {
        let body_wait = ServerError {
            retry_in: Some(Duration::from_millis(3500)),
            ..said("slow down")
        };
        let f = classify("p", 429, None, true, body_wait.clone());
        assert_eq!(
            f.message,
            "provider `p` is rate limiting (HTTP 429): slow down (retry in 3.5 s)"
        );
        assert_eq!(f.retry_after, Some(Duration::from_millis(3500)));
        assert_eq!(
            classified(429, Some("2"), body_wait).1,
            "provider `p` is rate limiting (HTTP 429): slow down (Retry-After 2 s)"
        );
        assert_eq!(
            classified(429, Some("soon\x1b[2J"), said("")).1,
            "provider `p` is rate limiting (HTTP 429) (Retry-After soon␛[2J)"
        );
        assert_eq!(
            classified(429, None, ServerError::default()).1,
            "provider `p` is rate limiting (HTTP 429)"
        );
    }

    #[test]
    fn the_server_s_words_are_one_inert_line() {
        let kind = ServerError {
            kind: Some("bad\nkind".into()),
            ..said("line one\n\x1b[31mline two")
        };
        assert_eq!(
            classified(500, None, kind).1,
            "provider `p` failed (HTTP 500, bad kind): line one ␛[31mline two"
        );
    }
}
