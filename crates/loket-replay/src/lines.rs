//! Reading JSONL safely: numbered lines with a length limit, so one huge or
//! broken line costs an error message, not the run or the memory.

use std::io::{self, BufRead};

/// The default longest line, in bytes.
pub const DEFAULT_MAX_LINE: usize = 64 * 1024;

/// One line, or the news that it was too long (its bytes were skipped).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes without the line ending.
    Text(&'a [u8]),
    /// The line was longer than the limit; this many bytes were skipped.
    TooLong(usize),
}

/// Numbered lines from a reader, at most `max` bytes each.
#[derive(Debug)]
pub struct BoundedLines<R> {
    reader: R,
    max: usize,
    buffer: Vec<u8>,
    number: u64,
}

impl<R: BufRead> BoundedLines<R> {
    /// Lines of at most `max` bytes from `reader`.
    pub fn new(reader: R, max: usize) -> BoundedLines<R> {
        BoundedLines { reader, max, buffer: Vec::new(), number: 0 }
    }

    /// The next line and its 1-based number; `None` at the end of input.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        self.buffer.clear();
        let mut skipped = 0usize;
        let mut read_any = false;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            if chunk.is_empty() {
                break;
            }
            read_any = true;
            let (part, found_end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => (&chunk[..end], true),
                None => (chunk, false),
            };
            let used = part.len() + usize::from(found_end);
            if skipped == 0 && self.buffer.len() + part.len() <= self.max {
                self.buffer.extend_from_slice(part);
            } else {
                skipped += self.buffer.len() + part.len();
                self.buffer.clear();
            }
            self.reader.consume(used);
            if found_end {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.number += 1;
        if skipped > 0 {
            return Ok(Some((self.number, Line::TooLong(skipped))));
        }
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        Ok(Some((self.number, Line::Text(&self.buffer))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], max: usize) -> Vec<(u64, Result<String, usize>)> {
        let mut lines = BoundedLines::new(io::BufReader::with_capacity(4, input), max);
        let mut out = Vec::new();
        while let Some((number, line)) = lines.next_line().unwrap() {
            out.push((
                number,
                match line {
                    Line::Text(text) => Ok(String::from_utf8_lossy(text).into_owned()),
                    Line::TooLong(n) => Err(n),
                },
            ));
        }
        out
    }

    #[test]
    fn numbers_lines_and_skips_long_ones_across_buffer_refills() {
        let got = collect(b"ab\r\n0123456789abc\n\nxyz", 8);
        assert_eq!(
            got,
            vec![(1, Ok("ab".into())), (2, Err(13)), (3, Ok(String::new())), (4, Ok("xyz".into()))]
        );
        assert!(collect(b"", 8).is_empty());
    }
}
