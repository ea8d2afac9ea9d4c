//! The sample protocols of `sample-protocols/`, embedded so the binary offers them from any
//! directory (the picker lists them; a test keeps this table and the folder in step).

/// The sample the picker selects first: one key (Enter) from running on the local model.
///
/// `multiple-choice` rather than `biography`: on the built-in model biography is greedy and gives
/// one identical text 100 times, so the heatmap, the diff and the clusters have nothing to show.
/// multiple-choice samples at 0.8, so texts split within a few words while the extracted letter
/// agrees on every run — every panel has something to show, and it states the idea of the tool
/// (texts diverge, answers agree) in one run of a few seconds.
pub const DEFAULT_DEMO: &str = "multiple-choice";

/// `(file stem, TOML text)` of every file in `sample-protocols/`, in file-name order.
pub const SAMPLES: &[(&str, &str)] = &[
    (
        "arithmetic",
        include_str!("../../sample-protocols/arithmetic.toml"),
    ),
    (
        "batch-invariant",
        include_str!("../../sample-protocols/batch-invariant.toml"),
    ),
    (
        "batching-demo",
        include_str!("../../sample-protocols/batching-demo.toml"),
    ),
    (
        "battery",
        include_str!("../../sample-protocols/battery.toml"),
    ),
    (
        "biography",
        include_str!("../../sample-protocols/biography.toml"),
    ),
    (
        "code-generation",
        include_str!("../../sample-protocols/code-generation.toml"),
    ),
    (
        "json-output",
        include_str!("../../sample-protocols/json-output.toml"),
    ),
    (
        "multiple-choice",
        include_str!("../../sample-protocols/multiple-choice.toml"),
    ),
    (
        "seeded-sampling",
        include_str!("../../sample-protocols/seeded-sampling.toml"),
    ),
    ("warmup", include_str!("../../sample-protocols/warmup.toml")),
];

/// The path a sample is reported under (messages, the archive header): where it lives in the
/// source tree, so `reprise run` on the same file gives the same protocol.
pub fn sample_path(stem: &str) -> std::path::PathBuf {
    std::path::Path::new("sample-protocols").join(format!("{stem}.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Protocol;

    /// A sample added to the folder but not to `SAMPLES` would be missing from the picker.
    #[test]
    fn every_sample_file_is_embedded_verbatim() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-protocols");
        let mut on_disk: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .map(|p| {
                let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
                (stem, std::fs::read_to_string(&p).unwrap())
            })
            .collect();
        on_disk.sort();
        let embedded: Vec<(String, String)> = SAMPLES
            .iter()
            .map(|(s, t)| (s.to_string(), t.to_string()))
            .collect();
        assert_eq!(embedded, on_disk);
    }

    #[test]
    fn every_sample_parses_and_the_default_demo_is_one_of_them() {
        for (stem, text) in SAMPLES {
            let protocol = Protocol::parse(&sample_path(stem), text).unwrap();
            assert_eq!(&protocol.meta.name, stem, "name and file stem agree");
        }
        assert!(SAMPLES.iter().any(|(s, _)| *s == DEFAULT_DEMO));
    }
}
