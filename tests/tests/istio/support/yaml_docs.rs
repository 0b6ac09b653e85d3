//! Loads every YAML document of a file or directory tree as a `serde_json::Value`,
//! remembering the file and the line each document starts on for error messages.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One YAML document of a file.
#[derive(Debug, Clone)]
pub struct YamlDoc {
    /// The file it came from.
    pub file: PathBuf,
    /// 1-based line of the document's first line in `file`.
    pub line: usize,
    /// The parsed document.
    pub value: Value,
}

impl YamlDoc {
    /// `apiVersion`, or "" when absent.
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind`, or "" when absent.
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`, or "" when absent.
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }
}

impl fmt::Display for YamlDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{} ({} {})",
            self.file.display(),
            self.line,
            self.kind(),
            self.name()
        )
    }
}

/// Every `*.yaml` / `*.yml` file under `dir`, recursively, sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", current.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Parses every document of `text` (named `file` in messages).
///
/// Documents are split on `---` lines so each keeps its starting line; documents
/// holding only comments or blank lines are skipped.
pub fn parse_documents(file: &Path, text: &str) -> Result<Vec<YamlDoc>, String> {
    let mut docs = Vec::new();
    let mut chunk = String::new();
    let mut chunk_line = 1;
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let is_separator = *line == "---" || line.starts_with("--- ");
        if is_separator {
            push_chunk(file, &chunk, chunk_line, &mut docs)?;
            chunk.clear();
            chunk_line = index + 2;
        } else {
            chunk.push_str(line);
            chunk.push('\n');
        }
    }
    push_chunk(file, &chunk, chunk_line, &mut docs)?;
    Ok(docs)
}

fn push_chunk(
    file: &Path,
    chunk: &str,
    line: usize,
    docs: &mut Vec<YamlDoc>,
) -> Result<(), String> {
    let has_content = chunk.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    });
    if !has_content {
        return Ok(());
    }
    let value: Value = serde_saphyr::from_str(chunk)
        .map_err(|e| format!("{}: document starting at line {line}: {e}", file.display()))?;
    docs.push(YamlDoc {
        file: file.to_path_buf(),
        line,
        value,
    });
    Ok(())
}

/// Every document of every YAML file under `dir`; panics with the parse error otherwise.
pub fn load_dir(dir: &Path) -> Vec<YamlDoc> {
    let mut docs = Vec::new();
    for file in yaml_files(dir) {
        let text = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        docs.extend(parse_documents(&file, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    docs
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    e2e::paths::repo_root()
}
