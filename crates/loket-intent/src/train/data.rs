//! Labelled data: [`Example`] and [`Row`], the [`Labelled`] trait training
//! and evaluation take, and the CSV readers.

use std::path::{Path, PathBuf};

use crate::handoff::HandoffKind;
use crate::language::Language;

/// One labelled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// The message.
    pub text: String,
    /// Its intent label.
    pub label: String,
}

/// One row of a data file: a message with its intent label and, when the
/// file has those columns, its hand-off label and language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The message.
    pub text: String,
    /// Its intent label.
    pub label: String,
    /// Its hand-off label (`handoff` column); `None` when the file has no
    /// such column or the field is empty.
    pub handoff: Option<HandoffKind>,
    /// Its language (`language` column: `nl`, `en` or `und`); `None` when
    /// the file has no such column or the field is empty.
    pub language: Option<Language>,
}

/// A labelled message that training and evaluation accept: an [`Example`]
/// (no hand-off label) or a [`Row`].
pub trait Labelled: Clone + Send + Sync {
    /// The message.
    fn text(&self) -> &str;
    /// Its intent label.
    fn label(&self) -> &str;
    /// Its hand-off label, if it has one.
    fn handoff(&self) -> Option<HandoffKind> {
        None
    }
    /// Its language, if known.
    fn language(&self) -> Option<Language> {
        None
    }
}

impl Labelled for Example {
    fn text(&self) -> &str {
        &self.text
    }
    fn label(&self) -> &str {
        &self.label
    }
}

impl Labelled for Row {
    fn text(&self) -> &str {
        &self.text
    }
    fn label(&self) -> &str {
        &self.label
    }
    fn handoff(&self) -> Option<HandoffKind> {
        self.handoff
    }
    fn language(&self) -> Option<Language> {
        self.language
    }
}

impl From<Row> for Example {
    fn from(row: Row) -> Example {
        Example { text: row.text, label: row.label }
    }
}

/// Errors reading training or evaluation data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("cannot open {path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        reason: std::io::Error,
    },
    /// The header lacks a required column.
    #[error("{path}: the header has no `{column}` column (expected `text,label`)")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The missing column.
        column: &'static str,
    },
    /// A record could not be parsed.
    #[error("{path}:{line}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Reads a CSV file with a header naming (at least) `text` and `label`.
///
/// # Errors
/// [`DataError`] naming the file, line and field at fault.
pub fn read_csv(path: impl AsRef<Path>) -> Result<Vec<Example>, DataError> {
    Ok(read_rows(path)?.into_iter().map(Example::from).collect())
}

/// As [`read_csv`], from any reader; `path` is only used in error messages.
///
/// # Errors
/// As [`read_csv`].
pub fn read_csv_from(reader: impl std::io::Read, path: &Path) -> Result<Vec<Example>, DataError> {
    Ok(read_rows_from(reader, path)?.into_iter().map(Example::from).collect())
}

/// Reads a CSV file with a header naming `text` and `label` and, optionally,
/// `handoff` (`none`, `doubt`, `complaint` or `human`; empty: no hand-off
/// label) and `language` (`nl`, `en` or `und`; empty: unknown). Other
/// columns are ignored.
///
/// # Errors
/// [`DataError`] naming the file, line and field at fault.
pub fn read_rows(path: impl AsRef<Path>) -> Result<Vec<Row>, DataError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path)
        .map_err(|reason| DataError::Io { path: path.to_owned(), reason })?;
    read_rows_from(std::io::BufReader::new(file), path)
}

/// As [`read_rows`], from any reader; `path` is only used in error messages.
///
/// # Errors
/// As [`read_rows`].
pub fn read_rows_from(reader: impl std::io::Read, path: &Path) -> Result<Vec<Row>, DataError> {
    let record_error =
        |line: u64, message: String| DataError::Record { path: path.to_owned(), line, message };
    let mut rdr = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
    let headers = rdr.headers().map_err(|e| record_error(1, format!("bad header: {e}")))?.clone();
    let column = |name: &'static str| {
        headers
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| DataError::MissingColumn { path: path.to_owned(), column: name })
    };
    let (text_col, label_col) = (column("text")?, column("label")?);
    let handoff_col = column("handoff").ok();
    let language_col = column("language").ok();
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                return Err(record_error(line, e.to_string()));
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let text = record.get(text_col).unwrap_or_default();
        let label = record.get(label_col).unwrap_or_default().trim();
        if label.is_empty() {
            return Err(record_error(line, "field `label` is empty".into()));
        }
        let optional = |col: Option<usize>| col.and_then(|c| record.get(c)).map(str::trim);
        let handoff = match optional(handoff_col) {
            None | Some("") => None,
            Some(name) => Some(HandoffKind::from_name(name).ok_or_else(|| {
                record_error(
                    line,
                    format!(
                        "field `handoff` is {name:?}; expected none, doubt, complaint, human or empty"
                    ),
                )
            })?),
        };
        let language = match optional(language_col) {
            None | Some("") => None,
            Some("nl") => Some(Language::Dutch),
            Some("en") => Some(Language::English),
            Some("und") => Some(Language::Unknown),
            Some(other) => {
                return Err(record_error(
                    line,
                    format!("field `language` is {other:?}; expected nl, en, und or empty"),
                ));
            }
        };
        out.push(Row { text: text.to_owned(), label: label.to_owned(), handoff, language });
    }
    Ok(out)
}
