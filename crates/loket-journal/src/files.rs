//! File naming and small filesystem helpers shared by the journal and the
//! snapshot store.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::{Error, Lsn};

/// What a directory entry's name says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Named {
    /// `<prefix><lsn:020><suffix>`.
    Lsn(Lsn),
    /// Starts with the prefix and ends with the suffix, but the middle is not
    /// exactly twenty decimal digits.
    Malformed,
    /// Anything else.
    Other,
}

/// `<prefix><lsn:020><suffix>`.
pub(crate) fn lsn_file_name(prefix: &str, lsn: Lsn, suffix: &str) -> String {
    format!("{prefix}{lsn:020}{suffix}")
}

/// Parses a name of the shape [`lsn_file_name`] writes.
pub(crate) fn parse_lsn_name(name: &str, prefix: &str, suffix: &str) -> Named {
    let Some(middle) = name.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)) else {
        return Named::Other;
    };
    if middle.len() != 20 || !middle.bytes().all(|b| b.is_ascii_digit()) {
        return Named::Malformed;
    }
    match middle.parse::<u64>() {
        Ok(lsn) => Named::Lsn(lsn),
        Err(_) => Named::Malformed,
    }
}

/// The entries of `dir` named `<prefix><lsn:020><suffix>`, sorted by lsn.
/// With `strict`, a name with the prefix and suffix but a malformed middle is
/// a [`Error::ForeignFile`]; otherwise it is ignored.
pub(crate) fn list_lsn_files(
    dir: &Path,
    prefix: &str,
    suffix: &str,
    strict: bool,
) -> Result<Vec<(Lsn, PathBuf)>, Error> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match parse_lsn_name(name, prefix, suffix) {
            Named::Lsn(lsn) => found.push((lsn, entry.path())),
            Named::Malformed if strict => return Err(Error::ForeignFile { path: entry.path() }),
            Named::Malformed | Named::Other => {}
        }
    }
    found.sort_unstable_by_key(|&(lsn, _)| lsn);
    Ok(found)
}

/// Makes the directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

/// Creates `dir` (and its parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), Error> {
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))
}

/// Removes a file; a file already gone is not an error.
pub(crate) fn remove_file(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let name = lsn_file_name("journal-", 42, ".log");
        assert_eq!(name, "journal-00000000000000000042.log");
        assert_eq!(parse_lsn_name(&name, "journal-", ".log"), Named::Lsn(42));
        let max = lsn_file_name("journal-", u64::MAX, ".log");
        assert_eq!(parse_lsn_name(&max, "journal-", ".log"), Named::Lsn(u64::MAX));
    }

    #[test]
    fn malformed_and_other_names() {
        assert_eq!(parse_lsn_name("journal-42.log", "journal-", ".log"), Named::Malformed);
        assert_eq!(
            parse_lsn_name("journal-+0000000000000000042.log", "journal-", ".log"),
            Named::Malformed
        );
        assert_eq!(
            parse_lsn_name("journal-99999999999999999999.log", "journal-", ".log"),
            Named::Malformed
        );
        assert_eq!(
            parse_lsn_name("snapshot-00000000000000000042.snap", "journal-", ".log"),
            Named::Other
        );
        assert_eq!(
            parse_lsn_name("journal-00000000000000000042.log.bak", "journal-", ".log"),
            Named::Other
        );
    }
}
