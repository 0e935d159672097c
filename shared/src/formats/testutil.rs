//! Test helpers shared by the tests of every format (test builds only).
//!
//! Fixtures are named by their path under `tests/fixtures/`
//! (`"alb/jdwit/sample.log"`, `"waf/waf_ndjson_sample.log.gz"`); a `.gz`
//! fixture is read gunzipped. The one-line calls come with every parser that
//! has a `Default`, through [`FreshParser`]: `AlbParser::hit(line)`,
//! `WafParser::failing_field(line)`, `CloudFrontParser::parse_all(&data)`.

use super::{LineParser, ParseError, ParseResult};
use crate::hit::Hit;
use std::io::Read;
use std::net::IpAddr;

/// `tests/fixtures/` of the repository.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures");

/// The bytes of the fixture `rel` (a path under `tests/fixtures/`),
/// gunzipped (every member) if its name ends in `.gz`.
pub(crate) fn fixture(rel: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}/{rel}");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    if !rel.ends_with(".gz") {
        return bytes;
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    out
}

/// The lines of the fixture `rel`, owned: [`lines`] of [`fixture`].
pub(crate) fn fixture_lines(rel: &str) -> Vec<Vec<u8>> {
    lines(&fixture(rel))
        .into_iter()
        .map(<[u8]>::to_vec)
        .collect()
}

/// Every file under the fixture folder `dir`, at any depth, as paths under
/// `tests/fixtures/` (`"cloudfront/dpetzold/cloudfront_entry.csv"`), sorted.
pub(crate) fn fixture_files(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let path = format!("{FIXTURES}/{dir}");
        for entry in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{path}: {e}")) {
            let entry = entry.unwrap();
            let rel = format!("{dir}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                stack.push(rel);
            } else {
                found.push(rel);
            }
        }
    }
    found.sort();
    found
}

/// `data` as one gzip member.
pub(crate) fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

/// The lines of `data`, split at `\n` as the reader splits a file, without
/// the empty piece after a final newline (so no lines for no bytes). Unlike
/// the reader, it leaves a `\r` before the `\n` on the line, so that a
/// fixture with CRLF endings (`alb/synthesized/trailing_cr.log`) tests the
/// parser's own handling of it.
pub(crate) fn lines(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|&b| b == b'\n').collect()
}

/// The address `s`, which must be one.
pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} is not an address: {e}"))
}

/// Epoch milliseconds of an RFC 3339 time (`"2019-12-13T23:40:12.771Z"`),
/// computed by chrono, independently of the parsers under test.
pub(crate) fn epoch_ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("{rfc3339:?}: {e}"))
        .timestamp_millis()
}

/// What one parser made of the lines of a file.
#[derive(Debug, Default)]
pub(crate) struct Parsed<'a> {
    /// The lines that were requests, in order.
    pub hits: Vec<Hit<'a>>,
    /// How many lines were skipped (`Ok(None)`).
    pub skipped: usize,
    /// Why the other lines were rejected, in order.
    pub errors: Vec<ParseError>,
}

impl Parsed<'_> {
    /// The (parsed, skipped, rejected) line counts.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.hits.len(), self.skipped, self.errors.len())
    }
}

/// Test calls on a fresh parser of a type, one per call:
/// `AlbParser::hit(line)`. Every parser with a `Default` has them.
pub(crate) trait FreshParser: LineParser + Default {
    /// What a fresh parser makes of `line`.
    fn parse_line(line: &[u8]) -> ParseResult<'_> {
        Self::default().parse(line)
    }

    /// The request `line` holds; panics, naming the line, if it is
    /// rejected or skipped.
    fn hit<L: AsRef<[u8]> + ?Sized>(line: &L) -> Hit<'_> {
        let line = line.as_ref();
        let shown = || String::from_utf8_lossy(line);
        Self::parse_line(line)
            .unwrap_or_else(|e| panic!("{e}: {}", shown()))
            .unwrap_or_else(|| panic!("skipped: {}", shown()))
    }

    /// The field `line` is rejected for; panics, naming the line, if it is
    /// not rejected.
    fn failing_field(line: &[u8]) -> &'static str {
        match Self::parse_line(line) {
            Err(e) => e.field,
            Ok(r) => panic!("not rejected ({r:?}): {}", String::from_utf8_lossy(line)),
        }
    }

    /// Every line of `data` ([`lines`]) through one fresh parser, as the
    /// reader uses one parser per file.
    fn parse_all(data: &[u8]) -> Parsed<'_> {
        let mut parser = Self::default();
        let mut out = Parsed::default();
        for line in lines(data) {
            match parser.parse(line) {
                Ok(Some(hit)) => out.hits.push(hit),
                Ok(None) => out.skipped += 1,
                Err(e) => out.errors.push(e),
            }
        }
        out
    }
}

impl<P: LineParser + Default> FreshParser for P {}
