//! The fast-path fuzz target's corpus, replayed as an ordinary test: the
//! seeds in `fuzz/corpus/fast_path` and every input a fuzzing run found
//! (`fuzz/regressions/fast_path`) must pass the target's oracle. Fuzzing
//! itself is `scripts/fuzz`, outside the test command.

use std::path::Path;

fn inputs(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut inputs: Vec<_> = entries
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn fuzz_corpus_of_the_fast_path_passes_its_oracle() {
    let seeds = inputs("fuzz/corpus/fast_path");
    assert!(seeds.len() >= 4, "the seed corpus is missing");
    for (name, data) in seeds
        .iter()
        .chain(inputs("fuzz/regressions/fast_path").iter())
    {
        let outcome = std::panic::catch_unwind(|| jrps::proxy::fuzzing::fast_path_request(data));
        assert!(outcome.is_ok(), "{name} fails the oracle");
    }
}
