//! CloudFront standard (legacy) access logs: W3C, tab-separated.
//!
//! Columns are found by the `#Fields` header of each file (older files have
//! 24 or 26 fields, current ones 33), falling back to the current 33-field
//! order when a file has no header. The header is turned once into a table
//! from column position to the field it holds, so a data line is split
//! with `memchr` in one pass, stops after the last column it needs, and
//! allocates only to percent-decode or to join path and query.

use super::text::{civil_to_ms, parse_ip};
use super::waf::strip_port;
use super::{LineParser, ParseError, ParseResult};
use crate::hit::Hit;
use std::borrow::Cow;

/// The 33 fields of the current standard log, in order (the default map).
const STANDARD_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// The fields fail2waf reads, by slot. The first [`REQUIRED`] are required.
const WANTED: [&str; 11] = [
    "date",
    "time",
    "c-ip",
    "sc-status",
    "cs-method",
    "cs(Host)",
    "x-host-header",
    "cs-uri-stem",
    "cs-uri-query",
    "cs(User-Agent)",
    "x-forwarded-for",
];
const REQUIRED: usize = 4;
const DATE: usize = 0;
const TIME: usize = 1;
const C_IP: usize = 2;
const STATUS: usize = 3;
const METHOD: usize = 4;
const CS_HOST: usize = 5;
const HOST_HEADER: usize = 6;
const STEM: usize = 7;
const QUERY: usize = 8;
const USER_AGENT: usize = 9;
const FORWARDED_FOR: usize = 10;
const UNUSED: u8 = u8::MAX;

/// Parser for CloudFront standard (legacy) log lines.
///
/// Make one per file: it keeps the column map of the file's `#Fields`
/// line. `#Version`, `#Fields` and other `#` lines, and blank lines, are
/// `Ok(None)`.
///
/// # Mapping to [`Hit`]
///
/// - `time_ms` from `date` and `time` (UTC); `peer` = `c-ip` (IPv4 or
///   IPv6); `status` = `sc-status` (`000`, the viewer closed the
///   connection first, and `-` give 0).
/// - `method` = `cs-method` as logged.
/// - `path` = `cs-uri-stem`, plus `?cs-uri-query` when the query is not
///   `-`, each percent-decoded **once**. CloudFront encodes `%` itself as
///   `%25`, so one decoding gives back the path as the client sent it
///   (`%2520` → `%20`, as ALB would log it); it is never decoded twice.
/// - `host` = `x-host-header` (the `Host` header the viewer sent: the
///   alternate domain name), falling back to `cs(Host)` (always the
///   `*.cloudfront.net` name of the distribution, which says nothing about
///   the site) when the column is absent or `-`; a `:port` is removed as
///   for the other formats.
/// - `user_agent` = `cs(User-Agent)` percent-decoded. CloudFront has been
///   seen encoding the agent twice (`Mozilla/5.0%2520(Windows...`), so when
///   the decoded text has no space but still holds an escape it is decoded
///   a second time.
/// - `forwarded_for` = `x-forwarded-for` when it is not `-`,
///   percent-decoded (a list is logged as `a,%20b`).
/// - `-` in an optional text column gives an empty value.
///
/// # Errors
///
/// `date`, `time`, `c-ip` and `sc-status` are required: a line too short to
/// hold one of them, or whose `#Fields` header lacks one, fails under that
/// name, as does a value that does not parse. Extra columns after the last
/// one needed (such as a trailing TAB) are ignored.
#[derive(Debug)]
pub struct CloudFrontParser {
    /// For each column position up to the last one needed, the slot in
    /// [`WANTED`] it fills, or [`UNUSED`].
    slot_of: Vec<u8>,
    /// Whether the current map has a column for each slot.
    present: [bool; WANTED.len()],
}

impl Default for CloudFrontParser {
    fn default() -> Self {
        let mut p = CloudFrontParser {
            slot_of: Vec::new(),
            present: [false; WANTED.len()],
        };
        p.set_fields(STANDARD_FIELDS.iter().copied());
        p
    }
}

impl CloudFrontParser {
    /// Rebuild the column map from the field names of a `#Fields` line.
    /// Where a name repeats, its first column is used.
    fn set_fields<'n>(&mut self, names: impl Iterator<Item = &'n str>) {
        self.slot_of.clear();
        self.present = [false; WANTED.len()];
        for (col, name) in names.enumerate() {
            let slot = WANTED.iter().position(|w| *w == name);
            match slot {
                Some(s) if !self.present[s] => {
                    self.present[s] = true;
                    self.slot_of.resize(col, UNUSED);
                    #[allow(clippy::cast_possible_truncation)] // WANTED has 11 entries
                    self.slot_of.push(s as u8);
                }
                _ => {}
            }
        }
    }
}

impl LineParser for CloudFrontParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        if line.is_empty() {
            return Ok(None);
        }
        if line[0] == b'#' {
            if let Some(rest) = line.strip_prefix(b"#Fields:") {
                let rest = String::from_utf8_lossy(rest);
                self.set_fields(rest.split_ascii_whitespace());
            }
            return Ok(None);
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }

        let mut cols: [Option<&'a [u8]>; WANTED.len()] = [None; WANTED.len()];
        let mut rest = line;
        for &slot in &self.slot_of {
            let (field, next) = match memchr::memchr(b'\t', rest) {
                Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                None => (rest, None),
            };
            if slot != UNUSED {
                cols[usize::from(slot)] = Some(field);
            }
            match next {
                Some(n) => rest = n,
                None => break,
            }
        }
        for slot in 0..REQUIRED {
            if !self.present[slot] {
                return Err(ParseError::new(WANTED[slot], "not in #Fields"));
            }
            if cols[slot].is_none() {
                return Err(ParseError::new(WANTED[slot], "missing"));
            }
        }
        let req = |slot: usize| cols[slot].unwrap_or_default();

        let time_ms = parse_date_time(req(DATE), req(TIME))?;
        let peer = std::str::from_utf8(req(C_IP))
            .ok()
            .and_then(parse_ip)
            .ok_or(ParseError::new("c-ip", "not an IP address"))?;
        let status = parse_status(req(STATUS))?;

        let text = |slot: usize| -> Option<Cow<'a, str>> {
            match cols[slot] {
                None | Some(b"-" | b"") => None,
                Some(b) => Some(String::from_utf8_lossy(b)),
            }
        };
        let path = {
            let stem = text(STEM).map(percent_decode).unwrap_or_default();
            match text(QUERY).map(percent_decode) {
                None => stem,
                Some(query) => {
                    let mut p = String::with_capacity(stem.len() + 1 + query.len());
                    p.push_str(&stem);
                    p.push('?');
                    p.push_str(&query);
                    Cow::Owned(p)
                }
            }
        };

        let mut hit = Hit::new(time_ms, peer, status);
        hit.method = cols[METHOD]
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        hit.path = path;
        hit.host = text(HOST_HEADER)
            .or_else(|| text(CS_HOST))
            .map(strip_port)
            .unwrap_or_default();
        hit.user_agent = text(USER_AGENT).map(decode_user_agent).unwrap_or_default();
        hit.forwarded_for = text(FORWARDED_FOR).map(percent_decode);
        Ok(Some(hit))
    }
}

/// `YYYY-MM-DD` and `HH:MM:SS` (UTC) to epoch milliseconds.
fn parse_date_time(date: &[u8], time: &[u8]) -> Result<i64, ParseError> {
    const BAD_DATE: ParseError = ParseError::new("date", "not YYYY-MM-DD");
    const BAD_TIME: ParseError = ParseError::new("time", "not HH:MM:SS");
    let [y1, y2, y3, y4, b'-', m1, m2, b'-', d1, d2] = *date else {
        return Err(BAD_DATE);
    };
    let [h1, h2, b':', i1, i2, b':', s1, s2] = *time else {
        return Err(BAD_TIME);
    };
    let year = num(&[y1, y2, y3, y4]).ok_or(BAD_DATE)?;
    let (month, day) = (
        num(&[m1, m2]).ok_or(BAD_DATE)?,
        num(&[d1, d2]).ok_or(BAD_DATE)?,
    );
    let (hour, min, sec) = (
        num(&[h1, h2]).ok_or(BAD_TIME)?,
        num(&[i1, i2]).ok_or(BAD_TIME)?,
        num(&[s1, s2]).ok_or(BAD_TIME)?,
    );
    if hour > 23 || min > 59 || sec > 60 {
        return Err(BAD_TIME);
    }
    civil_to_ms(year, month, day, hour, min, sec).ok_or(BAD_DATE)
}

/// A run of ASCII digits as a number.
fn num(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// `sc-status`: three digits (`000` when the viewer left first), or `-`.
fn parse_status(s: &[u8]) -> Result<u16, ParseError> {
    if s == b"-" {
        return Ok(0);
    }
    if s.is_empty() || s.len() > 3 {
        return Err(ParseError::new("sc-status", "not a status code"));
    }
    num(s)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or(ParseError::new("sc-status", "not a status code"))
}

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `s` holds a `%XX` escape.
fn has_escape(s: &str) -> bool {
    memchr::memchr_iter(b'%', s.as_bytes()).any(|i| {
        let b = s.as_bytes();
        i + 2 < b.len() && hex(b[i + 1]).is_some() && hex(b[i + 2]).is_some()
    })
}

/// Decode `%XX` escapes once; a `%` not followed by two hex digits stays.
/// Borrowed when there is no `%`; bytes that do not form UTF-8 after
/// decoding become U+FFFD.
fn percent_decode(s: Cow<'_, str>) -> Cow<'_, str> {
    if memchr::memchr(b'%', s.as_bytes()).is_none() {
        return s;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Decode a user agent: once, and a second time when the result is still
/// encoded as a whole (no space left, an escape left).
fn decode_user_agent(s: Cow<'_, str>) -> Cow<'_, str> {
    let once = percent_decode(s);
    if !once.contains(' ') && has_escape(&once) {
        Cow::Owned(percent_decode(Cow::Borrowed(&once)).into_owned())
    } else {
        once
    }
}
