//! CloudFront standard (legacy) access logs: W3C, tab-separated.
//!
//! Columns are found by the `#Fields` header of each file (older files have
//! 24 or 26 fields, current ones 33), falling back to the current 33-field
//! order when a file has no header. The header is turned once into a table
//! from column position to the field it holds, so a data line is split
//! with `memchr` in one pass, stops after the last column it needs, and
//! allocates only to percent-decode or to join path and query.

use super::text::{civil_to_ms, hex_value, parse_ip};
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
    fn changes_state(&self, line: &[u8]) -> bool {
        line.starts_with(b"#Fields:")
    }

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

/// Whether `s` holds a `%XX` escape.
fn has_escape(s: &str) -> bool {
    memchr::memchr_iter(b'%', s.as_bytes()).any(|i| {
        let b = s.as_bytes();
        i + 2 < b.len() && hex_value(b[i + 1]).is_some() && hex_value(b[i + 2]).is_some()
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
            if let (Some(h), Some(l)) = (hex_value(b[i + 1]), hex_value(b[i + 2])) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::{epoch_ms, fixture, fixture_files, ip, lines, FreshParser};
    use std::collections::BTreeMap;

    const GZ: &str = "cloudfront/synthesized_EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz";
    const HEADER_33: &str = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
        cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) \
        x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken \
        x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version \
        fle-status fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type \
        sc-content-type sc-content-len sc-range-start sc-range-end";
    const CHROME_78: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                             (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36";
    const DIST: &str = "d111111abcdef8.cloudfront.net";

    /// A 33-field line from the doc example with some columns replaced.
    fn doc_line(replace: &[(usize, &str)]) -> String {
        let data = fixture("cloudfront/awsdocs_example_standard_log.log");
        let base = std::str::from_utf8(lines(&data)[2]).unwrap().to_owned();
        let mut cols: Vec<String> = base.split('\t').map(str::to_owned).collect();
        for &(i, v) in replace {
            cols[i] = v.to_owned();
        }
        cols.join("\t")
    }

    #[test]
    fn every_fixture_file_is_covered_with_counts() {
        // (parsed, skipped, rejected)
        let expected: BTreeMap<&str, (usize, usize, usize)> = [
            ("cloudfront/awsdocs_example_standard_log.log", (6, 2, 0)),
            ("cloudfront/dpetzold/cloudfront-multiple.log", (6, 2, 0)),
            ("cloudfront/dpetzold/cloudfront_entry.csv", (1, 0, 0)),
            ("cloudfront/dpetzold/cloudfront_entry2.csv", (1, 0, 0)),
            (
                "cloudfront/dpetzold/cloudfront_entry_broken_cookie.csv",
                (1, 0, 0),
            ),
            (
                "cloudfront/dpetzold/cloudfront_entry_cookie_with_encoding.csv",
                (1, 0, 0),
            ),
            (GZ, (6, 2, 0)),
            ("cloudfront/synthesized_header_only.log", (0, 2, 0)),
            ("cloudfront/synthesized_tricky.log", (4, 2, 0)),
        ]
        .into_iter()
        .collect();

        assert_eq!(
            fixture_files("cloudfront"),
            expected.keys().map(|k| (*k).to_owned()).collect::<Vec<_>>()
        );

        for (name, counts) in expected {
            let data = fixture(name);
            let out = CloudFrontParser::parse_all(&data);
            assert_eq!(out.counts(), counts, "{name}: {:?}", out.errors);
        }
    }

    struct Want {
        time_ms: i64,
        peer: &'static str,
        status: u16,
        path: &'static str,
        host: &'static str,
        user_agent: &'static str,
        forwarded_for: Option<&'static str>,
    }

    fn check(hit: &Hit<'_>, w: &Want, what: &str) {
        assert_eq!(hit.time_ms, w.time_ms, "{what}");
        assert_eq!(hit.peer, ip(w.peer), "{what}");
        assert_eq!(hit.status, w.status, "{what}");
        assert_eq!(hit.method, "GET", "{what}");
        assert_eq!(hit.path, w.path, "{what}");
        assert_eq!(hit.host, w.host, "{what}");
        assert_eq!(hit.user_agent, w.user_agent, "{what}");
        assert_eq!(hit.forwarded_for.as_deref(), w.forwarded_for, "{what}");
        assert!(hit.waf.is_none() && !hit.blocked_by_waf, "{what}");
    }

    fn doc_example(peer: &'static str) -> Vec<Want> {
        let first = |ts| Want {
            time_ms: ts,
            peer,
            status: 200,
            path: "/index.html",
            host: DIST,
            user_agent: CHROME_78,
            forwarded_for: None,
        };
        let t1 = epoch_ms("2019-12-04T21:02:31Z");
        vec![
            first(t1),
            first(t1),
            // Ends with a trailing TAB (34 columns).
            first(t1),
            // x-host-header (the viewer's Host) wins over cs(Host).
            Want {
                time_ms: epoch_ms("2019-12-13T22:36:27Z"),
                peer: "192.0.2.200",
                status: 502,
                path: "/favicon.ico",
                host: "www.example.com",
                user_agent: CHROME_78,
                forwarded_for: None,
            },
            Want {
                time_ms: epoch_ms("2019-12-13T22:36:26Z"),
                peer: "192.0.2.200",
                status: 502,
                path: "/",
                host: "www.example.com",
                user_agent: CHROME_78,
                forwarded_for: None,
            },
            Want {
                time_ms: epoch_ms("2019-12-13T22:37:02Z"),
                peer: "192.0.2.200",
                status: 502,
                path: "/",
                host: "www.example.com",
                user_agent: "curl/7.55.1",
                forwarded_for: None,
            },
        ]
    }

    #[test]
    fn doc_example_and_its_copies() {
        for (name, peer) in [
            ("cloudfront/awsdocs_example_standard_log.log", "192.0.2.100"),
            (GZ, "192.0.2.100"),
            (
                "cloudfront/dpetzold/cloudfront-multiple.log",
                "128.92.136.19",
            ),
        ] {
            let data = fixture(name);
            let out = CloudFrontParser::parse_all(&data);
            let wants = doc_example(peer);
            assert_eq!(out.hits.len(), wants.len(), "{name}");
            for (i, (hit, w)) in out.hits.iter().zip(&wants).enumerate() {
                check(hit, w, &format!("{name} hit {i}"));
            }
            // No escapes, no query: borrowed from the line.
            assert!(matches!(out.hits[0].path, Cow::Borrowed(_)));
            assert!(matches!(out.hits[0].host, Cow::Borrowed(_)));
            assert!(matches!(out.hits[5].user_agent, Cow::Borrowed(_)));
            assert!(matches!(out.hits[0].user_agent, Cow::Owned(_)));
        }
    }

    /// 2014-era 24-field lines without a header: the default 33-field map
    /// covers them, as their fields are its first 24.
    #[test]
    fn dpetzold_24_field_lines_without_header() {
        let msie5 = "Mozilla/4.0 (compatible; MSIE 5.0b1; Mac_PowerPC)";
        let entry = Want {
            time_ms: epoch_ms("2014-05-23T01:13:11Z"),
            peer: "192.0.2.10",
            status: 200,
            path: "/view/my/file.html",
            host: DIST,
            user_agent: msie5,
            forwarded_for: None,
        };
        for name in [
            "cloudfront/dpetzold/cloudfront_entry.csv",
            "cloudfront/dpetzold/cloudfront_entry_broken_cookie.csv",
            "cloudfront/dpetzold/cloudfront_entry_cookie_with_encoding.csv",
        ] {
            let data = fixture(name);
            assert_eq!(lines(&data)[0].split(|&b| b == b'\t').count(), 24);
            let out = CloudFrontParser::parse_all(&data);
            check(&out.hits[0], &entry, name);
        }
        let data = fixture("cloudfront/dpetzold/cloudfront_entry2.csv");
        let out = CloudFrontParser::parse_all(&data);
        check(
            &out.hits[0],
            &Want {
                time_ms: epoch_ms("2014-05-23T01:13:12Z"),
                peer: "192.0.2.202",
                status: 304,
                path: "/soundtrack/happy.mp3?a=b&c=d",
                host: DIST,
                user_agent: "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)",
                forwarded_for: None,
            },
            "entry2",
        );
    }

    #[test]
    fn synthesized_tricky() {
        let data = fixture("cloudfront/synthesized_tricky.log");
        let out = CloudFrontParser::parse_all(&data);
        let t = epoch_ms("2019-12-04T21:02:31Z");
        let want = |peer, status, path, forwarded_for| Want {
            time_ms: t,
            peer,
            status,
            path,
            host: DIST,
            user_agent: CHROME_78,
            forwarded_for,
        };
        let wants = [
            // IPv6 c-ip, written with leading zeros.
            want("2001:db8:85a3::8a2e:370:7334", 403, "/index.html", None),
            // %2520 is the client's own %20: decoded once, never twice.
            want("192.0.2.100", 404, "/a%20b/%3Cscript%3E", None),
            // c-ip is a proxy; the viewer is in x-forwarded-for.
            want("198.51.100.10", 429, "/index.html", Some("192.0.2.183")),
            // Query appended, decoded once like the stem.
            want("192.0.2.100", 500, "/index.html?a=b&c=d%20e", None),
        ];
        assert_eq!(out.hits.len(), wants.len());
        for (i, (hit, w)) in out.hits.iter().zip(&wants).enumerate() {
            check(hit, w, &format!("tricky hit {i}"));
        }
    }

    #[test]
    fn header_only_file_then_lines_use_its_map() {
        let data = fixture("cloudfront/synthesized_header_only.log");
        let mut p = CloudFrontParser::default();
        for line in lines(&data) {
            assert_eq!(p.parse(line), Ok(None));
        }
        assert_eq!(p.parse(b""), Ok(None));
        assert_eq!(p.parse(b"#Remark: anything"), Ok(None));
        assert_eq!(p.parse(b"  "), Ok(None));
    }

    #[test]
    fn status_000_and_dash() {
        let line = doc_line(&[(8, "000")]);
        assert_eq!(CloudFrontParser::hit(&line).status, 0);
        let line = doc_line(&[(8, "-")]);
        assert_eq!(CloudFrontParser::hit(&line).status, 0);
    }

    #[test]
    fn double_encoded_user_agent() {
        // As matomo-log-analytics#27/#228 saw in real 2014 logs, with the
        // 19-field header of the time.
        let mut p = CloudFrontParser::default();
        let header = "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) \
            cs-uri-stem sc-status cs(Referer) cs(User-Agent) cs-uri-query cs(Cookie) \
            x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken";
        assert_eq!(p.parse(header.as_bytes()), Ok(None));
        let line = "2014-07-21\t01:58:45\tDFW3\t563\t180.76.5.149\tGET\td116n0k3gjrs63.cloudfront.net\t\
            /robots.txt\t301\t-\tMozilla/5.0%2520(Windows%2520NT%25205.1;%2520rv:6.0.2)%2520Gecko/20100101%2520Firefox/6.0.2\t\
            -\t-\tRedirect\tNLmAqKRfyqQreOK6jMmjVhh8vaUV-CbEM7m_Kta_eoZIxl0VWTEmcQ==\twww.moneypot.com\thttp\t188\t0.000";
        let hit = p.parse(line.as_bytes()).unwrap().unwrap();
        assert_eq!(
            hit.user_agent,
            "Mozilla/5.0 (Windows NT 5.1; rv:6.0.2) Gecko/20100101 Firefox/6.0.2"
        );
        assert_eq!(hit.time_ms, epoch_ms("2014-07-21T01:58:45Z"));
        assert_eq!(hit.peer, ip("180.76.5.149"));
        assert_eq!(hit.status, 301);
        assert_eq!(hit.host, "www.moneypot.com");
        assert_eq!(hit.path, "/robots.txt");
        assert_eq!(hit.forwarded_for, None);

        // A singly-encoded agent that holds a literal escape keeps it.
        let ua = "NewsBlur%20Feed%20-%20https://example.com/a%2520b";
        let line = doc_line(&[(10, ua)]);
        let hit = CloudFrontParser::hit(&line);
        assert_eq!(hit.user_agent, "NewsBlur Feed - https://example.com/a%20b");
        // `-` is empty; a stray `%` stays.
        let line = doc_line(&[(10, "-")]);
        assert_eq!(CloudFrontParser::hit(&line).user_agent, "");
        let line = doc_line(&[(10, "100%25%2")]);
        assert_eq!(CloudFrontParser::hit(&line).user_agent, "100%%2");
    }

    #[test]
    fn forwarded_for_list_and_host_fallback() {
        let line = doc_line(&[(19, "203.0.113.1,%20198.51.100.2"), (15, "-")]);
        let hit = CloudFrontParser::hit(&line);
        assert_eq!(
            hit.forwarded_for.as_deref(),
            Some("203.0.113.1, 198.51.100.2")
        );
        assert_eq!(hit.host, DIST);
        let line = doc_line(&[(15, "www.example.com:8443")]);
        assert_eq!(CloudFrontParser::hit(&line).host, "www.example.com");
    }

    #[test]
    fn fields_header_remaps_columns() {
        let mut p = CloudFrontParser::default();
        assert_eq!(p.parse(b"#Version: 1.0"), Ok(None));
        assert_eq!(
            p.parse(b"#Fields: sc-status c-ip x-unknown time date cs-uri-stem"),
            Ok(None)
        );
        let hit = p
            .parse(b"404\t2001:db8::9\tzzz\t23:59:59\t2020-02-29\t/x")
            .unwrap()
            .unwrap();
        assert_eq!(hit.time_ms, epoch_ms("2020-02-29T23:59:59Z"));
        assert_eq!(hit.peer, ip("2001:db8::9"));
        assert_eq!(hit.status, 404);
        assert_eq!(hit.path, "/x");
        assert_eq!((&*hit.method, &*hit.host, &*hit.user_agent), ("", "", ""));
        // A header without a required field makes every line fail by name.
        assert_eq!(p.parse(b"#Fields: date time sc-status"), Ok(None));
        assert_eq!(
            p.parse(b"2020-02-29\t23:59:59\t200"),
            Err(ParseError::new("c-ip", "not in #Fields"))
        );
        // A new standard header restores the usual map.
        assert_eq!(p.parse(HEADER_33.as_bytes()), Ok(None));
        assert!(p.parse(doc_line(&[]).as_bytes()).unwrap().is_some());
    }

    #[test]
    fn errors_name_the_field() {
        let field = CloudFrontParser::failing_field;
        assert_eq!(field(b"2019-12-04"), "time");
        assert_eq!(field(b"2019-12-04\t21:02:31\tLAX1\t392"), "c-ip");
        assert_eq!(
            field(b"2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.1\tGET\th\t/"),
            "sc-status"
        );
        assert_eq!(field(doc_line(&[(0, "2019-13-04")]).as_bytes()), "date");
        assert_eq!(field(doc_line(&[(0, "04/12/2019")]).as_bytes()), "date");
        assert_eq!(field(doc_line(&[(0, "1969-12-31")]).as_bytes()), "date");
        assert_eq!(field(doc_line(&[(1, "24:00:00")]).as_bytes()), "time");
        assert_eq!(field(doc_line(&[(1, "21:02:31.5")]).as_bytes()), "time");
        assert_eq!(field(doc_line(&[(4, "-")]).as_bytes()), "c-ip");
        assert_eq!(field(doc_line(&[(4, "192.0.2.300")]).as_bytes()), "c-ip");
        assert_eq!(field(doc_line(&[(8, "2000")]).as_bytes()), "sc-status");
        assert_eq!(field(doc_line(&[(8, "20x")]).as_bytes()), "sc-status");
        assert_eq!(field(doc_line(&[(8, "")]).as_bytes()), "sc-status");
        // Space-separated instead of tab-separated: one column.
        assert_eq!(
            field(b"2019-12-04 21:02:31 LAX1 392 192.0.2.1 GET h / 200"),
            "time"
        );
    }

    #[test]
    fn invalid_utf8_in_optional_columns_is_replaced() {
        let mut line = doc_line(&[(10, "UA-X")]).into_bytes();
        let at = line.windows(4).position(|w| w == b"UA-X").unwrap();
        line[at + 3] = 0xff;
        let hit = CloudFrontParser::hit(&line);
        assert_eq!(hit.user_agent, "UA-\u{fffd}");
        // Decoded bytes that are not UTF-8 are replaced too.
        let line = doc_line(&[(7, "/caf%C3%A9%FF")]);
        assert_eq!(CloudFrontParser::hit(&line).path, "/caf\u{e9}\u{fffd}");
    }

    #[test]
    fn huge_line() {
        let ua = "a".repeat(5 << 20);
        let line = doc_line(&[(10, &ua)]);
        let hit = CloudFrontParser::hit(&line);
        assert_eq!(hit.user_agent.len(), 5 << 20);
        assert!(matches!(hit.user_agent, Cow::Borrowed(_)));
    }

    #[test]
    fn no_panic_on_prefixes_and_mutations() {
        let tricky = fixture("cloudfront/synthesized_tricky.log");
        let entry = fixture("cloudfront/dpetzold/cloudfront_entry2.csv");
        let samples: Vec<&[u8]> = lines(&tricky)
            .into_iter()
            .skip(2)
            .chain([lines(&entry)[0]])
            .collect();
        for line in samples {
            for end in 0..=line.len() {
                let r = CloudFrontParser::parse_line(&line[..end]);
                // Any prefix that reaches sc-status parses; shorter ones
                // fail by name or (empty) are skipped.
                if let Err(e) = r {
                    assert!(
                        ["date", "time", "c-ip", "sc-status"].contains(&e.field),
                        "{e}"
                    );
                }
            }
            let mut m = line.to_vec();
            for i in 0..m.len() {
                for b in [0u8, 0xff, 0xc3, b'\t', b'%', b'#', b' '] {
                    let orig = m[i];
                    m[i] = b;
                    let _ = CloudFrontParser::parse_line(&m);
                    m[i] = orig;
                }
            }
        }
        let _ = CloudFrontParser::parse_line(&[0xff; 1000]);
        let _ = CloudFrontParser::parse_line(&[b'\t'; 100_000]);
        let mut p = CloudFrontParser::default();
        let _ = p.parse(b"#Fields: \xff\xfe date");
        let _ = p.parse(b"#Fields:");
        assert_eq!(p.parse(b"x").unwrap_err().field, "date");
    }
}
