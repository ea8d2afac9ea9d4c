use std::path::Path;

use super::*;

fn options(format: ImportFormat, out: &Path) -> ImportOptions {
    ImportOptions {
        format,
        out: Some(out.to_path_buf()),
        dir: None,
        name: None,
    }
}

#[test]
fn jsonl_becomes_a_verifiable_archive_that_says_it_was_imported() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("outs.jsonl");
    let text = concat!(
        "{\"item\":\"q1\",\"output\":\"A\",\"latency_ms\":5,\"model\":\"m1\"}\n",
        "\n",
        "{\"item\":\"q2\",\"output\":\"X\",\"model\":\"m1\",\"extra\":true}\r\n",
        "{\"item\":\"q1\",\"output\":\"B\",\"model\":\"m1\",\"latency_ms\":2.5}\n",
        "{\"item\":\"q1\",\"output\":\"A\",\"target\":\"other\"}\n",
    );
    std::fs::write(&input, text).unwrap();
    let out = dir.path().join("a.jsonl");
    let imported = import(&input, &options(ImportFormat::Jsonl, &out)).unwrap();
    assert_eq!(imported.records, 4);
    assert_eq!(imported.targets, ["imported", "other"]);
    assert_eq!(imported.items, ["q1", "q2"]);
    crate::archive::verify(&out).unwrap();

    let (archive, snapshot) = crate::session::analyse_archive(&out).unwrap();
    let c = &archive.header.conditions;
    assert_eq!(c["imported"]["format"], "jsonl");
    assert_eq!(c["imported"]["file"], "outs.jsonl");
    assert_eq!(
        c["imported"]["sha256"],
        format!("{:x}", Sha256::digest(text.as_bytes()))
    );
    assert_eq!(c["protocol"]["name"], "outs");
    assert_eq!(c["targets"][0]["model"], "m1");
    // A target whose calls name no model (or several) has none in its conditions.
    assert!(c["targets"][1]["model"].is_null());
    assert!(archive.header.protocol_path.is_none());
    // Call indices count per (target, item) in file order.
    let calls: Vec<(&str, &str, u32)> = archive
        .calls
        .iter()
        .map(|r| (r.target.as_str(), r.item.as_str(), r.call))
        .collect();
    assert_eq!(
        calls,
        [
            ("imported", "q1", 0),
            ("imported", "q2", 0),
            ("imported", "q1", 1),
            ("other", "q1", 0)
        ]
    );
    assert_eq!(archive.calls[2].timing.latency_ms, 2.5);
    assert_eq!(archive.calls[2].served["model"], "m1");
    let q1 = &snapshot.targets[0].items[0];
    assert_eq!((q1.item.as_str(), q1.ok, q1.distinct_outputs), ("q1", 2, 2));
    assert!(archive.close.unwrap().summary.is_some());
}

#[test]
fn bad_input_names_file_line_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.jsonl");
    for (text, line, field) in [
        (
            "{\"item\":\"q\",\"output\":\"A\"}\n{\"item\":\"q\"}\n",
            2,
            "output",
        ),
        (
            "{\"item\":\"q\",\"output\":\"A\"}\n\n{\"item\":1,\"output\":\"A\"}\n",
            3,
            "item",
        ),
        (
            "{\"item\":\"q\",\"output\":\"A\",\"latency_ms\":-1}\n",
            1,
            "latency_ms",
        ),
        (
            "{\"item\":\"q\",\"output\":\"A\",\"latency_ms\":\"5\"}\n",
            1,
            "latency_ms",
        ),
        (
            "{\"item\":\"q\",\"output\":\"A\",\"model\":7}\n",
            1,
            "model",
        ),
        ("{\"item\":\"\",\"output\":\"A\"}\n", 1, "item"),
    ] {
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, text).unwrap();
        let err = import(&input, &options(ImportFormat::Jsonl, &out)).unwrap_err();
        let ImportError::Input(e) = &err else {
            panic!("{err}")
        };
        assert_eq!(
            (e.line, e.field.as_deref()),
            (Some(line), Some(field)),
            "{err}"
        );
        assert!(err.to_string().starts_with(&input.display().to_string()));
        assert!(!out.exists(), "nothing written for {text:?}");
    }
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"item\":\"q\",\"output\":\"A\"}\nnot json\n").unwrap();
    let err = import(&input, &options(ImportFormat::Jsonl, &out)).unwrap_err();
    assert!(err.to_string().contains(":2: not valid JSON"), "{err}");
    std::fs::write(&input, "\n\n").unwrap();
    let err = import(&input, &options(ImportFormat::Jsonl, &out)).unwrap_err();
    assert!(err.to_string().contains("no outputs"), "{err}");
    assert!(!out.exists());
}

#[test]
fn promptfoo_output_file_imports_by_provider_and_test() {
    // The shape of `promptfoo eval -o out.json` (summary version 3), trimmed.
    let doc = serde_json::json!({
        "evalId": "eval-1",
        "results": {
            "version": 3,
            "timestamp": "2025-01-01T00:00:00Z",
            "prompts": [],
            "stats": {},
            "results": [
                {"promptIdx": 0, "testIdx": 0, "promptId": "p", "provider": {"id": "openai:gpt-4o-mini", "label": ""},
                 "prompt": {"raw": "Capital of France?", "label": "cap"}, "vars": {},
                 "response": {"output": "Paris", "tokenUsage": {"prompt": 5, "completion": 1, "total": 6}},
                 "latencyMs": 120, "success": true, "score": 1, "namedScores": {}, "failureReason": 0},
                {"promptIdx": 0, "testIdx": 0, "promptId": "p", "provider": {"id": "openai:gpt-4o-mini"},
                 "prompt": {"raw": "Capital of France?", "label": "cap"}, "vars": {},
                 "response": {"output": {"city": "Paris"}}, "latencyMs": 90, "success": true, "score": 1,
                 "namedScores": {}, "failureReason": 0},
                {"promptIdx": 0, "testIdx": 1, "promptId": "p", "provider": {"id": "x", "label": "mine"},
                 "prompt": {"raw": "Capital of Spain?", "label": "cap"}, "vars": {},
                 "error": "timeout", "latencyMs": 0, "success": false, "score": 0, "namedScores": {},
                 "failureReason": 2}
            ]
        },
        "config": {},
        "shareableUrl": null
    });
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("out.json");
    std::fs::write(&input, doc.to_string()).unwrap();
    let out = dir.path().join("a.jsonl");
    let imported = import(&input, &options(ImportFormat::Promptfoo, &out)).unwrap();
    assert_eq!(imported.targets, ["openai:gpt-4o-mini", "mine"]);
    assert_eq!(imported.items, ["test 0", "test 1"]);
    let (archive, _) = crate::session::analyse_archive(&out).unwrap();
    assert_eq!(archive.calls[0].output.as_deref(), Some("Paris"));
    assert_eq!(archive.calls[0].usage.map(|u| u.completion_tokens), Some(1));
    assert_eq!(
        archive.calls[1].output.as_deref(),
        Some(r#"{"city":"Paris"}"#)
    );
    assert_eq!(archive.calls[1].call, 1);
    assert_eq!(archive.calls[2].status, crate::record::CallStatus::Error);
    assert_eq!(archive.calls[2].error.as_ref().unwrap().message, "timeout");
    assert_eq!(
        archive.header.conditions["items"][0]["user"],
        "Capital of France?"
    );

    std::fs::write(&input, r#"{"results": []}"#).unwrap();
    let err = import(&input, &options(ImportFormat::Promptfoo, &out)).unwrap_err();
    assert!(err.to_string().contains("results.results"), "{err}");
}

#[test]
fn lm_eval_samples_import_each_generation_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("samples_gsm8k_2025-01-01.jsonl");
    // Two filters log the same generations of doc 0; `repeats` gives several per request.
    let lines = [
        r#"{"doc_id": 0, "doc": {}, "target": "4", "arguments": [], "resps": [["2+2=4", "4", "2+2=4"]], "filtered_resps": ["4"], "filter": "strict"}"#,
        r#"{"doc_id": 0, "doc": {}, "target": "4", "arguments": [], "resps": [["2+2=4", "4", "2+2=4"]], "filtered_resps": ["4"], "filter": "flexible"}"#,
        r#"{"doc_id": 1, "doc": {}, "target": "9", "arguments": [], "resps": [["9"]], "filtered_resps": ["9"], "filter": "strict"}"#,
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = dir.path().join("a.jsonl");
    let imported = import(&input, &options(ImportFormat::LmEval, &out)).unwrap();
    assert_eq!(imported.records, 4);
    assert_eq!(imported.items, ["doc 0", "doc 1"]);
    let (_, snapshot) = crate::session::analyse_archive(&out).unwrap();
    let doc0 = &snapshot.targets[0].items[0];
    assert_eq!((doc0.ok, doc0.distinct_outputs), (3, 2));

    let loglikelihood =
        r#"{"doc_id": 0, "resps": [[[-1.5, false]], [[-0.2, true]]], "filtered_resps": []}"#;
    std::fs::write(&input, loglikelihood).unwrap();
    let out2 = dir.path().join("b.jsonl");
    let err = import(&input, &options(ImportFormat::LmEval, &out2)).unwrap_err();
    assert!(err.to_string().contains("resps[0][0]"), "{err}");
    assert!(err.to_string().contains("loglikelihood"), "{err}");
    assert!(!out2.exists());
}

#[test]
fn an_existing_archive_is_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"item\":\"q\",\"output\":\"A\"}\n").unwrap();
    let out = dir.path().join("a.jsonl");
    std::fs::write(&out, "keep").unwrap();
    let err = import(&input, &options(ImportFormat::Jsonl, &out)).unwrap_err();
    assert!(matches!(err, ImportError::Write { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep");
}
