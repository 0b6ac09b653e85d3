//! The documentation's relative links resolve: every `[text](path)` and `[text](path#anchor)` in
//! the repository's Markdown files names a file that exists, and every anchor a heading in it.

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![
        repo().join("README.md"),
        repo().join("CONTRIBUTING.md"),
        repo().join("BENCHMARKS.md"),
    ];
    for directory in ["docs", "istio", "manifests"] {
        let Ok(entries) = std::fs::read_dir(repo().join(directory)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|ext| ext == "md") {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    files
}

/// GitHub's heading anchor: lower case, spaces to `-`, punctuation other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    markdown
        .lines()
        .filter(|line| {
            if line.starts_with("```") {
                in_code = !in_code;
            }
            !in_code && line.starts_with('#')
        })
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The targets of inline links, outside code blocks.
fn links(markdown: &str) -> Vec<String> {
    let mut in_code = false;
    let mut found = Vec::new();
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let Some(end) = after.find(')') else { break };
            found.push(after[..end].to_owned());
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn every_relative_link_and_anchor_resolves() {
    let files = markdown_files();
    assert!(files.len() >= 6, "{files:?}");
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for link in links(&text) {
            if link.starts_with("http://")
                || link.starts_with("https://")
                || link.starts_with("mailto:")
            {
                continue;
            }
            checked += 1;
            let (path, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link} (no such file)", file.display()));
                continue;
            }
            if !fragment.is_empty() && target.extension().is_some_and(|ext| ext == "md") {
                let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                if !headings.iter().any(|heading| heading == fragment) {
                    broken.push(format!("{}: {link} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked >= 10, "only {checked} links checked");
}

#[test]
fn the_anchor_rule_matches_github() {
    assert_eq!(
        anchor(" Body sources: JSON fields and LLM prompts"),
        "body-sources-json-fields-and-llm-prompts"
    );
    assert_eq!(
        anchor("Admin HTTP (`--admin`, default 127.0.0.1:19000)"),
        "admin-http---admin-default-12700119000"
    );
    assert_eq!(anchor("`listeners[]`"), "listeners");
}

/// Config files in the repository point readers at these documents.
#[test]
fn files_that_cite_a_document_cite_one_that_exists() {
    for (file, document) in [
        ("examples/demo.yaml", "docs/agent.md"),
        ("examples/two-services.yaml", "docs/agent.md"),
        ("examples/llm.yaml", "docs/filter.md"),
        ("istio/agent-mode/web.yaml", "docs/istio-mode.md"),
        ("istio/serviceentry-vms.yaml", "docs/istio-mode.md"),
    ] {
        let text = std::fs::read_to_string(repo().join(file)).unwrap();
        assert!(text.contains(document), "{file} no longer cites {document}");
        assert!(
            repo().join(document).exists(),
            "{file} cites {document}, which does not exist"
        );
    }
}
