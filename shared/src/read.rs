//! Streaming input: transparent gzip, and lines in bounded memory.
//!
//! Input is never loaded whole. Gzip is recognised by its magic bytes (any
//! number of members, as ALB and CloudFront write them); anything else
//! passes through as plain text. Lines are handed out as slices of a fixed
//! read buffer where they fit in it; a line longer than [`MAX_LINE`] is
//! skipped (and reported) without being held in memory.

use flate2::bufread::MultiGzDecoder;
use std::io::{self, BufReader, Read};

/// Size of the read buffer.
pub const BUF_SIZE: usize = 256 * 1024;

/// Longest line kept; longer lines are skipped and counted. AWS WAF log
/// records are the longest legitimate lines (headers, labels), far below.
pub const MAX_LINE: usize = 1024 * 1024;

/// Wrap `r` in a gzip decoder if it starts with the gzip magic bytes.
/// Plain text is passed through without another buffer (the line splitter
/// reads straight into its own).
pub fn decompress<R: Read + Send + 'static>(mut r: R) -> io::Result<Box<dyn Read + Send>> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < 2 {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let whole = io::Cursor::new(head).take(n as u64).chain(r);
    if n == 2 && head == [0x1f, 0x8b] {
        // The decoder reads the compressed bytes in place from this one
        // buffer (`flate2::read` would copy them into a buffer of its own).
        Ok(Box::new(MultiGzDecoder::new(BufReader::with_capacity(
            BUF_SIZE, whole,
        ))))
    } else {
        Ok(Box::new(whole))
    }
}

/// One line from [`Lines`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line's bytes, without `\n` or a trailing `\r`.
    Text(&'a [u8]),
    /// A line longer than [`MAX_LINE`], skipped; its length in bytes.
    TooLong(usize),
}

/// Splits a reader into lines, reusing one buffer.
pub struct Lines<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    long: Vec<u8>,
    /// Bytes consumed so far (after decompression).
    pub bytes: u64,
}

impl<R: Read> Lines<R> {
    /// Lines of `inner`.
    pub fn new(inner: R) -> Self {
        Lines {
            inner,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            long: Vec::new(),
            bytes: 0,
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.bytes += n as u64;
                    if n == 0 {
                        self.eof = true;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The reader, the bytes read from it and not yet handed out as lines,
    /// the bytes read, and whether it has ended.
    pub fn into_parts(self) -> (R, Vec<u8>, u64, bool) {
        let rest = self.buf[self.start..self.end].to_vec();
        (self.inner, rest, self.bytes, self.eof)
    }

    /// The next line, `None` at the end. An error (a truncated gzip, a
    /// broken connection) comes after every complete line before it.
    #[allow(clippy::should_implement_trait)]
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        // Case 1: a whole line in the buffer.
        let mut searched = 0;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start + searched..self.end]) {
                let s = self.start;
                let e = s + searched + i;
                self.start = e + 1;
                return Ok(Some(Line::Text(trim_cr(&self.buf[s..e]))));
            }
            searched = self.end - self.start;
            if self.eof {
                if searched == 0 {
                    return Ok(None);
                }
                let s = self.start;
                self.start = self.end;
                return Ok(Some(Line::Text(trim_cr(&self.buf[s..self.end]))));
            }
            if self.start == 0 && self.end == self.buf.len() {
                break; // the line does not fit in the buffer
            }
            self.fill()?;
        }
        // Case 2: a line longer than the buffer: keep up to MAX_LINE of it.
        self.long.clear();
        let mut total = 0usize;
        loop {
            let chunk = &self.buf[self.start..self.end];
            let (part, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (&chunk[..i], Some(i + 1)),
                None => (chunk, None),
            };
            total += part.len();
            if total <= MAX_LINE {
                self.long.extend_from_slice(part);
            }
            match done {
                Some(n) => {
                    self.start += n;
                    break;
                }
                None => {
                    self.start = self.end;
                    if self.eof {
                        break;
                    }
                    self.fill()?;
                    if self.eof && self.start == self.end {
                        break;
                    }
                }
            }
        }
        if total > MAX_LINE {
            self.long = Vec::new();
            return Ok(Some(Line::TooLong(total)));
        }
        Ok(Some(Line::Text(trim_cr(&self.long))))
    }
}

fn trim_cr(s: &[u8]) -> &[u8] {
    s.strip_suffix(b"\r").unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::gz;

    fn collect(data: Vec<u8>) -> (Vec<String>, Option<io::ErrorKind>) {
        let mut l = Lines::new(decompress(io::Cursor::new(data)).unwrap());
        let mut out = vec![];
        loop {
            match l.next_line() {
                Ok(Some(Line::Text(t))) => out.push(String::from_utf8_lossy(t).into_owned()),
                Ok(Some(Line::TooLong(n))) => out.push(format!("<too long: {n}>")),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e.kind())),
            }
        }
    }

    #[test]
    fn short_inputs_keep_their_first_bytes() {
        assert_eq!(collect(b"x".to_vec()).0, vec!["x"]);
        assert_eq!(collect(vec![0x1f]).0.len(), 1);
        assert_eq!(collect(b"ab\ncd".to_vec()).0, vec!["ab", "cd"]);
    }

    #[test]
    fn plain_crlf_and_missing_final_newline() {
        let (l, err) = collect(b"a\r\nb\n\nc".to_vec());
        assert_eq!(l, vec!["a", "b", "", "c"]);
        assert!(err.is_none());
        assert_eq!(collect(Vec::new()).0, Vec::<String>::new());
    }

    #[test]
    fn multi_member_gzip() {
        let mut data = gz(b"one\ntwo\n");
        data.extend(gz(b"three\n"));
        assert_eq!(collect(data).0, vec!["one", "two", "three"]);
    }

    #[test]
    fn truncated_gzip_yields_lines_before_the_damage_then_an_error() {
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        let data = gz(text.as_bytes());
        let (l, err) = collect(data[..data.len() / 2].to_vec());
        assert!(err.is_some());
        assert!(l.len() > 1000, "{}", l.len());
        for (i, s) in l.iter().enumerate() {
            assert_eq!(s, &format!("line {i}"));
        }
    }

    #[test]
    fn long_lines_fit_or_are_skipped_in_bounded_memory() {
        let mid = "x".repeat(BUF_SIZE * 2);
        let huge = "y".repeat(MAX_LINE * 3);
        let data = format!("a\n{mid}\nb\n{huge}\nc\n");
        let (l, _) = collect(data.into_bytes());
        assert_eq!(l.len(), 5);
        assert_eq!(l[1].len(), BUF_SIZE * 2);
        assert_eq!(l[3], format!("<too long: {}>", MAX_LINE * 3));
        assert_eq!(
            (l[0].as_str(), l[2].as_str(), l[4].as_str()),
            ("a", "b", "c")
        );
    }

    #[test]
    fn line_exactly_filling_the_buffer() {
        for n in [BUF_SIZE - 1, BUF_SIZE, BUF_SIZE + 1] {
            let data = format!("{}\nz\n", "q".repeat(n));
            let (l, _) = collect(data.into_bytes());
            assert_eq!(l.len(), 2, "n={n}");
            assert_eq!(l[0].len(), n);
            assert_eq!(l[1], "z");
        }
    }
}
