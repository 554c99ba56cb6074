//! Opening the files a command names, with errors that read the same
//! everywhere: `cannot open FILE: reason`, `cannot create FILE: reason`.
//! `-` is standard input (or output) where a command allows it.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use anyhow::Context;

/// Is `path` the `-` that means standard input or output?
pub fn is_stdio(path: &Path) -> bool {
    path == Path::new("-")
}

/// A buffered reader of `path`, or of standard input for `-`.
pub fn open(path: &Path) -> anyhow::Result<Box<dyn BufRead>> {
    if is_stdio(path) {
        return Ok(Box::new(BufReader::new(io::stdin().lock())));
    }
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// The whole of `path` as UTF-8 text.
pub fn read_to_string(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot open {}", path.display()))
}

/// A new (or truncated) file at `path`, or standard output for `-`.
pub fn create(path: &Path) -> anyhow::Result<Box<dyn Write>> {
    if is_stdio(path) {
        return Ok(Box::new(io::stdout().lock()));
    }
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(file))
}
