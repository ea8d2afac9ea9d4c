//! What an OpenAI-compatible server says about itself, read from the documents the known
//! servers publish outside any call — the model's `/models` entry (every server), llama.cpp's
//! `/props` and vLLM's `/version` (both at the server root, beside `/v1`) — and from vLLM's
//! structured `system_fingerprint` on each reply. Each reader keeps only what it recognises;
//! anything else (an error page, HTML, another shape) reads as nothing. No I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::providers::http::excerpt;

/// An identity never holds more keys than this, whatever a server lists (llama.cpp's fill 15).
pub const MAX_KEYS: usize = 24;

/// Hex digits of the chat template's SHA-256 kept: enough to tell two templates apart.
const TEMPLATE_HASH_HEX: usize = 16;

/// The base URL without its trailing `/v1` segment, where llama.cpp and vLLM serve `/props`
/// and `/version`; a base URL without one is its own root.
pub fn server_root(base_url: &str) -> &str {
    let base = base_url.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base)
}

/// The entry for `model` in a `GET /models` list, its scalar fields as strings (a vLLM `root`,
/// `reprise serve`'s `revision`, `mode`, `build`, …), and those of its `meta` object where it
/// has one (llama.cpp's `n_params`, `size`, `n_ctx_train`, `vocab_type`, `n_vocab`, `n_embd`).
pub fn model_entry(body: &[u8], model: &str) -> BTreeMap<String, String> {
    let Some(list) = object(body) else {
        return BTreeMap::new();
    };
    let entry = list
        .get("data")
        .and_then(Value::as_array)
        .and_then(|models| models.iter().find(|m| m["id"].as_str() == Some(model)))
        .and_then(Value::as_object);
    let Some(entry) = entry else {
        return BTreeMap::new();
    };
    let meta = entry
        .get("meta")
        .and_then(Value::as_object)
        .into_iter()
        .flatten();
    let mut fields = BTreeMap::new();
    // The entry's own fields first: a `meta` field of the same name does not replace one.
    for (key, value) in entry
        .iter()
        .filter(|(k, _)| k.as_str() != "object")
        .chain(meta)
    {
        if let Some(value) = scalar(value) {
            fields.entry(excerpt(key)).or_insert(value);
        }
    }
    fields
}

/// llama.cpp's `GET /props`: `build_info`, `model_path`, `total_slots`, the default seed
/// (`default_seed`; 4294967295 means a random seed per request), a short SHA-256 of the
/// chat template (`chat_template_sha256`: the template itself runs to kilobytes) and the
/// `quantization`: the server's `model_ftype` (`Q4_K - Medium`), else the one the GGUF file's
/// name gives (see [`quantization_in_file_name`]).
pub fn props(body: &[u8]) -> BTreeMap<String, String> {
    let mut identity = BTreeMap::new();
    let Some(props) = object(body) else {
        return identity;
    };
    for key in ["build_info", "model_path", "total_slots"] {
        if let Some(value) = props.get(key).and_then(scalar) {
            identity.insert(key.to_string(), value);
        }
    }
    let said = props
        .get("model_ftype")
        .and_then(Value::as_str)
        .filter(|f| !f.trim().is_empty())
        .map(excerpt);
    let from_file = || {
        let path = props.get("model_path").and_then(Value::as_str)?;
        quantization_in_file_name(path)
    };
    if let Some(quantization) = said.or_else(from_file) {
        identity.insert("quantization".into(), quantization);
    }
    if let Some(Value::String(template)) = props.get("chat_template") {
        let digest = Sha256::digest(template.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        identity.insert(
            "chat_template_sha256".into(),
            hex[..TEMPLATE_HASH_HEX].to_string(),
        );
    }
    // Newer builds nest the sampling defaults under `params`; older ones do not.
    let defaults = &props.get("default_generation_settings");
    let seed = defaults
        .and_then(|d| d.get("params"))
        .and_then(|p| p.get("seed"))
        .or_else(|| defaults.and_then(|d| d.get("seed")))
        .filter(|s| s.is_number())
        .and_then(scalar);
    if let Some(seed) = seed {
        identity.insert("default_seed".into(), seed);
    }
    identity
}

/// The quantization a GGUF file's name gives (`…-Q4_K_M.gguf` → `Q4_K_M`), when it names
/// exactly one: llama.cpp's types (`Q8_0`, `Q4_K_M`, `IQ2_XXS`, `TQ1_0`, `MXFP4`, `F16`, `BF16`,
/// `F32`, …) as a part of the name between `-`, `.` or `_`, in any case. None for any other
/// file, or a name that gives two.
pub fn quantization_in_file_name(path: &str) -> Option<String> {
    static QUANT: LazyLock<Regex> = LazyLock::new(|| {
        let kinds = r"I?Q[1-8](?:_[0-9A-Z]{1,3})+|TQ[12]_0|MXFP4(?:_MOE)?|BF16|F16|F32";
        Regex::new(&format!(r"(?i)(?:^|[-._])({kinds})(?:[-._]|$)")).expect("a valid pattern")
    });
    let name = path.rsplit(['/', '\\']).next()?;
    let cut = name.len().checked_sub(".gguf".len())?;
    let stem = name
        .get(..cut)
        .filter(|_| name[cut..].eq_ignore_ascii_case(".gguf"))?;
    let mut found = BTreeSet::new();
    let mut from = 0;
    // Each search starts where the last type ended, so the part boundary between two
    // adjacent types serves both.
    while let Some(kind) = QUANT.captures_at(stem, from).and_then(|c| c.get(1)) {
        found.insert(kind.as_str().to_ascii_uppercase());
        from = kind.end();
    }
    match found.len() {
        1 => found.pop_first(),
        _ => None,
    }
}

/// vLLM's `GET /version` (`{"version": "0.8.5"}`) as `server_version`; `reprise serve`
/// answers the same shape.
pub fn version(body: &[u8]) -> BTreeMap<String, String> {
    object(body)
        .and_then(|v| match v.get("version") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(excerpt(s)),
            _ => None,
        })
        .map(|v| BTreeMap::from([("server_version".to_string(), v)]))
        .unwrap_or_default()
}

/// The model entry with what the server documents added (these win on a shared key), at most
/// [`MAX_KEYS`] keys; None when nothing was learnt.
pub fn combine(
    entry: BTreeMap<String, String>,
    documents: impl IntoIterator<Item = BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let mut identity: BTreeMap<String, String> = documents.into_iter().flatten().collect();
    for (key, value) in entry {
        if identity.len() >= MAX_KEYS {
            break;
        }
        identity.entry(key).or_insert(value);
    }
    while identity.len() > MAX_KEYS {
        identity.pop_last();
    }
    (!identity.is_empty()).then_some(identity)
}

/// vLLM's `system_fingerprint` read into fields (the raw value is the caller's to keep). vLLM
/// writes it (since 2026) in one of these forms, `[…]` being parts it leaves out when trivial:
/// - `vllm-<version>-<hardware>[-tp<n>][-pp<n>][-dp<n>][-ep]-<dtype>[-<quant>][-kv<dtype>]-<hash8>`
///   (the first builds, e.g. `vllm-0.11.0-H100-tp8-bf16-a3b21f94`);
/// - `vllm-<version>[-tp<n>][-pp<n>][-dp<n>][-ep]-<hash8>` (later builds);
/// - `vllm-[<version>-]<hash8>` (hash mode).
///
/// A value in none of these forms (another server's fingerprint, a custom one) gives nothing.
pub fn vllm_fingerprint(fingerprint: &str) -> BTreeMap<String, String> {
    parse_vllm_fingerprint(fingerprint.trim())
        .map(|fields| {
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), excerpt(&v)))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_vllm_fingerprint(fingerprint: &str) -> Option<Vec<(&'static str, String)>> {
    let parts: Vec<&str> = fingerprint.strip_prefix("vllm-")?.split('-').collect();
    let (hash, middle) = parts.split_last()?;
    let is_hash = hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hash && *hash != "nohash" {
        return None;
    }
    let mut fields = vec![("config_hash", hash.to_string())];
    let mut rest = middle.iter().copied().peekable();
    if let Some(version) = rest.next_if(|p| p.starts_with(|c: char| c.is_ascii_digit())) {
        fields.push(("vllm_version", version.to_string()));
    }
    // The hardware runs up to the parallelism or the dtype (its name may hold hyphens).
    let mut hardware = Vec::new();
    while let Some(part) = rest.next_if(|p| parallelism(p).is_none() && !is_dtype(p)) {
        hardware.push(part);
    }
    if !hardware.is_empty() {
        fields.push(("hardware", hardware.join("-")));
    }
    while let Some(part) = rest.next_if(|p| parallelism(p).is_some()) {
        fields.extend(parallelism(part));
    }
    if let Some(dtype) = rest.next_if(|p| is_dtype(p)) {
        fields.push(("dtype", dtype.to_string()));
        // After the dtype: the quantization, up to the KV-cache dtype (`compressed-tensors`
        // holds a hyphen).
        let mut quantization = Vec::new();
        while let Some(part) = rest.next_if(|p| kv_cache_dtype(p).is_none()) {
            quantization.push(part);
        }
        if !quantization.is_empty() {
            fields.push(("quantization", quantization.join("-")));
        }
        if let Some(kv) = rest.next().and_then(kv_cache_dtype) {
            fields.push(("kv_cache_dtype", kv.to_string()));
        }
    }
    // Anything left over is not vLLM's format.
    rest.next().is_none().then_some(fields)
}

/// A parallelism part of a vLLM fingerprint (`tp8`, `pp2`, `dp4`, `ep`) as a field.
fn parallelism(part: &str) -> Option<(&'static str, String)> {
    if part == "ep" {
        return Some(("expert_parallel", "true".into()));
    }
    let key = match part.get(..2)? {
        "tp" => "tensor_parallel",
        "pp" => "pipeline_parallel",
        "dp" => "data_parallel",
        _ => return None,
    };
    let degree = &part[2..];
    (!degree.is_empty() && degree.bytes().all(|b| b.is_ascii_digit()))
        .then(|| (key, degree.to_string()))
}

/// A model dtype as vLLM writes it: short (`bf16`, `fp16`, `fp32`) or torch's own name.
fn is_dtype(part: &str) -> bool {
    matches!(part, "bf16" | "fp16" | "fp32" | "fp64")
        || part.starts_with("float")
        || part.starts_with("bfloat")
}

/// The KV-cache dtype of a `kv<dtype>` part (`kvfp8`, `kvfp8_e4m3`).
fn kv_cache_dtype(part: &str) -> Option<&str> {
    part.strip_prefix("kv").filter(|d| !d.is_empty())
}

/// The body as a JSON object, or None.
fn object(body: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(body).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A string (cut to one safe line), number or boolean as text; None for anything else.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(excerpt(s)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
