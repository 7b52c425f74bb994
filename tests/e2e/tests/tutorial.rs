//! docs/WRITING-AN-EXTENSION.md shows only code that CI compiles: every
//! fenced block after a `<!-- from: PATH -->` line is found verbatim in
//! PATH (a file of the repository), or, for `<!-- from: generated PATH -->`,
//! in what `wrpc-ext new` generates with the tutorial's command; and every
//! Rust block has such a line.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `(source, block)` for each block after a `from:` line; panics on a Rust
/// block without one.
fn sourced_blocks(doc: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut source: Option<String> = None;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        if let Some(from) = line
            .strip_prefix("<!-- from: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        {
            source = Some(from.to_string());
            continue;
        }
        if let Some(lang) = line.strip_prefix("```") {
            if lang.is_empty() {
                continue;
            }
            let block: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            match source.take() {
                Some(from) => blocks.push((from, block.join("\n"))),
                None => assert_ne!(
                    lang,
                    "rust",
                    "a Rust block without its source:\n{}",
                    block.join("\n")
                ),
            }
            continue;
        }
        if !line.trim().is_empty() {
            source = None;
        }
    }
    blocks
}

#[test]
fn every_code_block_is_taken_from_a_compiled_file() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("docs/WRITING-AN-EXTENSION.md")).unwrap();
    let blocks = sourced_blocks(&doc);
    assert!(blocks.len() >= 8, "{blocks:?}");

    // What the tutorial's `wrpc-ext new` command generates.
    let generated = std::env::temp_dir().join(format!("tutorial-scaffold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&generated);
    let crate_dir = generated.join("inventory");
    let out = Command::new(harness::bin("wrpc-ext").unwrap())
        .args(["new", "inventory", "--wit"])
        .arg(root.join("wit/inventory"))
        .args(["--world", "extension", "--sdk-path"])
        .arg(root.join("sdk"))
        .arg("--dir")
        .arg(&crate_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    for (from, block) in &blocks {
        let path = match from.strip_prefix("generated ") {
            Some(file) => crate_dir.join(file),
            None => root.join(from),
        };
        let file = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert!(
            file.contains(block.as_str()),
            "this block of the tutorial is not in {from} any more:\n{block}"
        );
    }
    let _ = std::fs::remove_dir_all(&generated);
}
