//! Deriving the affinity key: the sources are tried in order and the first one present wins;
//! values are trimmed, empty counts as missing, `lowercase` folds ASCII letters to lower case.
//! A body source that cannot be decided yet stops the search: the first present source must win,
//! so a later source is not used until the earlier one is known to be missing.

use crate::body::{BodyIssue, Lookup};
use crate::request::RequestView;
use crate::sources::{self, Extraction, KeySource, SourceKind};

/// A key found in a request: its source kind and normalised value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedKey {
    /// Which kind of source it came from.
    pub kind: SourceKind,
    /// The normalised value (trimmed, case-folded when configured; never empty).
    pub value: Vec<u8>,
}

/// How values are read and normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOptions {
    /// Fold ASCII letters to lower case.
    pub lowercase: bool,
    /// How much of the body the body sources read.
    pub max_body_bytes: usize,
}

/// The outcome of trying the sources on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Derivation {
    /// A source matched.
    Keyed(DerivedKey),
    /// No source matched.
    Missing,
    /// A body source must see more of the body before anything can be decided.
    NeedBody,
}

/// A [`Derivation`] and, when a body source looked at a body that gave nothing, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    /// The outcome.
    pub derivation: Derivation,
    /// Why a body gave no key (not JSON, too large, truncated), when it did not.
    pub body_issue: Option<BodyIssue>,
}

/// Tries `sources` in order on `request`.
pub fn derive_key(
    sources: &[KeySource],
    request: &impl RequestView,
    options: KeyOptions,
) -> Derived {
    let extraction = Extraction::new(request, options);
    let mut derivation = Derivation::Missing;
    for source in sources {
        match sources::value(source, &extraction) {
            Lookup::Missing => continue,
            Lookup::NeedBody => derivation = Derivation::NeedBody,
            Lookup::Found(value) => {
                derivation = Derivation::Keyed(DerivedKey {
                    kind: SourceKind::of(source),
                    value,
                })
            }
        }
        break;
    }
    Derived {
        derivation,
        body_issue: extraction.body.issue(),
    }
}

/// The normalised value of one source in `request`.
pub fn source_value(source: &KeySource, request: &impl RequestView, options: KeyOptions) -> Lookup {
    sources::value(source, &Extraction::new(request, options))
}

/// Trims surrounding whitespace; empty is missing; folds ASCII letters to lower case when asked.
///
/// Case folding is ASCII-only on purpose: it is stable across Rust and Unicode versions and the
/// same in every language, so a filter upgrade never moves a key, and other tools (the predictor,
/// clients) can reproduce it exactly. Other bytes are kept as they are.
pub fn normalise(value: &[u8], lowercase: bool) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return None;
    }
    Some(if lowercase {
        value.to_ascii_lowercase()
    } else {
        value.to_vec()
    })
}
