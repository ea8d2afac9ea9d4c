//! Served identities: what the server said ran each call, grouped, with the first call each
//! one served — so a silent update shows as a second identity and the call where it began.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::record::CallRecord;

/// Keys of `served` that identify the call, not what served it: ids that differ on every call,
/// and the seed Groq says it sampled with (drawn per call unless the protocol set one).
pub const PER_CALL_KEYS: [&str; 5] = [
    "response_id",
    "request_id",
    "litellm_call_id",
    "groq_id",
    "groq_seed",
];

/// Keys whose value is the time of the request on a known server, not a fact about the server:
/// llama.cpp's and vLLM's `GET /v1/models` answer `created` = now. Recorded (an auditor may
/// want them), never compared.
pub const VOLATILE_KEYS: [&str; 1] = ["created"];

/// Whether a difference in `key` is a difference in what served the calls: not for per-call
/// or volatile keys. Every comparison of identities (the analysis, `compare`, the report's
/// start-versus-end check) goes by this.
pub fn compared(key: &str) -> bool {
    !PER_CALL_KEYS.contains(&key) && !VOLATILE_KEYS.contains(&key)
}

/// The fields of an identity that count when comparing it (see [`compared`]).
pub fn compared_fields(fields: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    fields
        .iter()
        .filter(|(k, _)| compared(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One distinct served identity of a target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServedIdentity {
    /// The `served` fields that are compared (per-call and volatile keys left out).
    pub fields: BTreeMap<String, String>,
    /// The first record it served, in archive order.
    pub first: FirstServed,
    /// Records (call attempts, warm-up included) it served.
    pub records: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FirstServed {
    pub item: String,
    pub call: u32,
    pub attempt: u32,
    /// How many of the target's records came before it (0-based arrival order).
    pub after_records: u64,
}

/// Folds records of one target into its served identities, in order of first appearance.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServedState {
    identities: Vec<ServedIdentity>,
    index: HashMap<Vec<(String, String)>, usize>,
    records: u64,
}

impl ServedState {
    pub fn fold(&mut self, record: &CallRecord) {
        let seen = self.records;
        self.records += 1;
        if record.served.is_empty() {
            return;
        }
        let key: Vec<(String, String)> = compared_fields(&record.served).into_iter().collect();
        if let Some(&i) = self.index.get(&key) {
            self.identities[i].records += 1;
            return;
        }
        self.index.insert(key.clone(), self.identities.len());
        self.identities.push(ServedIdentity {
            fields: key.into_iter().collect(),
            first: FirstServed {
                item: record.item.clone(),
                call: record.call,
                attempt: record.attempt,
                after_records: seen,
            },
            records: 1,
        });
    }

    pub fn identities(&self) -> Vec<ServedIdentity> {
        self.identities.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(call: u32, revision: &str, response: &str) -> CallRecord {
        let mut r = CallRecord::ok("t", "q", call, "x", 1.0);
        r.served.insert("model".into(), "m".into());
        r.served.insert("revision".into(), revision.into());
        r.served.insert("response_id".into(), response.into());
        r
    }

    #[test]
    fn an_update_is_a_second_identity_from_the_call_it_began() {
        let mut s = ServedState::default();
        s.fold(&CallRecord::ok("t", "q", 0, "x", 1.0)); // nothing said: not an identity
        for call in 1..5 {
            s.fold(&served(call, "r1", &format!("id-{call}")));
        }
        for call in 5..8 {
            s.fold(&served(call, "r2", &format!("id-{call}")));
        }
        let ids = s.identities();
        assert_eq!(ids.len(), 2, "response ids are per call: {ids:?}");
        assert_eq!(ids[0].fields["revision"], "r1");
        assert_eq!((ids[0].first.call, ids[0].records), (1, 4));
        assert_eq!(ids[1].fields["revision"], "r2");
        assert_eq!(ids[1].first.call, 5);
        assert_eq!(ids[1].first.after_records, 5);
        assert_eq!(ids[1].records, 3);
        assert!(!ids[1].fields.contains_key("response_id"));
    }

    #[test]
    fn a_volatile_field_neither_splits_nor_shows_an_identity() {
        let mut s = ServedState::default();
        for call in 0..3 {
            let mut r = served(call, "r1", &format!("id-{call}"));
            r.served
                .insert("created".into(), (1_752_000_000 + call).to_string());
            s.fold(&r);
        }
        let ids = s.identities();
        assert_eq!(ids.len(), 1, "{ids:?}");
        assert_eq!(ids[0].records, 3);
        assert!(!ids[0].fields.contains_key("created"));
        assert!(compared("system_fingerprint") && !compared("created") && !compared("request_id"));
    }
}
