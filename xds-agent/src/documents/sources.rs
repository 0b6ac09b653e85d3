//! Reading configuration sources: one file or a directory of YAML files, each possibly holding
//! several `---`-separated documents.

use std::io;
use std::path::{Path, PathBuf};

/// The text of one configuration file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    /// Where the text came from.
    pub file: PathBuf,
    /// The whole file.
    pub text: String,
}

/// One YAML document of a [`Source`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentText {
    /// 1-based line of the file where the document's text starts.
    pub first_line: u64,
    /// The document's text (without its `---` separator line).
    pub text: String,
}

/// Read `path`: a YAML file, or a directory whose `*.yaml` / `*.yml` files are read in name order
/// (not recursively).
///
/// # Errors
/// The I/O error, with the path it is about.
pub fn read_sources(path: &Path) -> io::Result<Vec<Source>> {
    let with_path =
        |e: io::Error, p: &Path| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let metadata = std::fs::metadata(path).map_err(|e| with_path(e, path))?;
    let files = if metadata.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| with_path(e, path))? {
            let file = entry.map_err(|e| with_path(e, path))?.path();
            let is_yaml = file
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if is_yaml && file.is_file() {
                files.push(file);
            }
        }
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).map_err(|e| with_path(e, &file))?;
            Ok(Source { file, text })
        })
        .collect()
}

/// Split a file into its YAML documents at `---` / `...` marker lines (at column 1), keeping
/// each document's first line number for error positions.
#[must_use]
pub fn split_documents(text: &str) -> Vec<DocumentText> {
    let mut documents = Vec::new();
    let mut current = String::new();
    let mut first_line = 1;
    for (i, line) in text.lines().enumerate() {
        let line_number = i as u64 + 1;
        // `---` alone, or followed by a space or tab and content (`--- {a: 1}`).
        let inline_content = line
            .strip_prefix("--- ")
            .or_else(|| line.strip_prefix("---\t"));
        let is_start = line == "---" || inline_content.is_some();
        let is_end = line == "..." || line.starts_with("... ");
        if is_start || is_end {
            documents.push(DocumentText {
                first_line,
                text: std::mem::take(&mut current),
            });
            first_line = line_number + 1;
            if let Some(rest) = inline_content {
                // Content on the marker line itself belongs to the new document; the marker
                // becomes spaces so columns stay those of the file.
                first_line = line_number;
                current.push_str(&" ".repeat(4));
                current.push_str(rest);
                current.push('\n');
            }
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    documents.push(DocumentText {
        first_line,
        text: current,
    });
    documents.retain(|doc| {
        doc.text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    documents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_documents_with_line_numbers() {
        let docs = split_documents("a: 1\n---\n# only a comment\n---\nb: 2\nc: 3\n...\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0],
            DocumentText {
                first_line: 1,
                text: "a: 1\n".into()
            }
        );
        assert_eq!(docs[1].first_line, 5);
        assert_eq!(docs[1].text, "b: 2\nc: 3\n");
    }

    #[test]
    fn leading_marker_and_inline_content() {
        let docs = split_documents("---\nkind: X\n--- {a: 1}\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].first_line, 2);
        assert_eq!(docs[1].first_line, 3);
        assert_eq!(docs[1].text.trim(), "{a: 1}");
    }

    #[test]
    fn inline_content_after_a_tab_is_kept() {
        let docs = split_documents("a: 1\n---\t{b: 2}\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].first_line, 2);
        assert_eq!(docs[1].text, "    {b: 2}\n");
    }

    #[test]
    fn reads_directory_in_name_order() {
        let dir = std::env::temp_dir().join(format!("xds-agent-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.yaml"), "b: 1\n").unwrap();
        std::fs::write(dir.join("a.yml"), "a: 1\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "x").unwrap();
        let sources = read_sources(&dir).unwrap();
        let names: Vec<_> = sources
            .iter()
            .map(|s| s.file.file_name().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml"]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            read_sources(&dir)
                .unwrap_err()
                .to_string()
                .contains("xds-agent-docs")
        );
    }
}
