//! The book (`docs/src/`) holds together: every chapter is in its table of
//! contents, every chapter in the table exists, and every relative link
//! and image of the book and the README points at a file that exists. (The
//! chapters' code blocks are doctests of the root crate; the command-line
//! reference is checked against the flags by `cfmem-cli`'s tests.)

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn chapters(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            chapters(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

/// The targets of `](target)` links in `text`.
fn links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(j) = rest.find(')') {
            out.push(rest[..j].to_string());
            rest = &rest[j..];
        }
    }
    out
}

#[test]
fn every_chapter_is_listed_and_every_link_resolves() {
    let src = Path::new(ROOT).join("docs/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).unwrap();
    let listed: Vec<String> = links(&summary);
    let mut all = Vec::new();
    chapters(&src, &mut all);
    for c in &all {
        let rel = c.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if rel != "SUMMARY.md" {
            assert!(listed.contains(&rel), "{rel} is not in docs/src/SUMMARY.md");
        }
    }
    for l in &listed {
        assert!(
            src.join(l).is_file(),
            "SUMMARY.md lists {l}, which does not exist"
        );
    }
    all.push(Path::new(ROOT).join("README.md"));
    let mut checked = 0;
    for c in &all {
        let text = std::fs::read_to_string(c).unwrap();
        for l in links(&text) {
            if l.contains("://") || l.starts_with('#') || l.starts_with("mailto:") {
                continue;
            }
            let file = l.split('#').next().unwrap();
            let target = c.parent().unwrap().join(file);
            assert!(
                target.exists(),
                "{}: link to {l}, but {} does not exist",
                c.display(),
                target.display()
            );
            checked += 1;
        }
    }
    assert!(
        checked > 50,
        "only {checked} links found: is the parser broken?"
    );
}
