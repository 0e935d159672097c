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

use super::{parse_ip_port, parse_iso8601_ms, split_request_line, split_url};
use super::{LineParser, ParseError, ParseResult};
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

/// Parser for ALB access log lines (and Classic ELB lines). Stateless: one
/// parser may read any number of lines.
#[derive(Debug, Default)]
pub struct AlbParser;

impl LineParser for AlbParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        parse_line(line)
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
        match memchr(b' ', &line[start..]) {
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

/// Text of a field: borrowed when it is valid UTF-8, repaired otherwise.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
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
    std::str::from_utf8(field)
        .ok()
        .and_then(parse_ip_port)
        .ok_or(ParseError::new(name, "not an address:port"))
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

fn parse_line(line: &[u8]) -> ParseResult<'_> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Ok(None);
    }
    let first_end = memchr(b' ', line).unwrap_or(line.len());
    let first = &line[..first_end];
    if is_alb_type(first) {
        parse_alb(line)
    } else if parse_iso8601_ms(first).is_some() {
        parse_classic(line)
    } else {
        // `tls` (NLB) and any other type: not an ALB request by design.
        Ok(None)
    }
}

/// An ALB access-log line (first field is a request type).
fn parse_alb(line: &[u8]) -> ParseResult<'_> {
    let mut f = Fields::new(line);
    f.skip("type")?;
    let time = f.required("time")?;
    let time_ms = parse_iso8601_ms(time).ok_or(ParseError::new("time", "not an ISO 8601 time"))?;
    f.skip("elb")?;
    let peer = parse_peer(f.required("client:port")?, "client:port")?;
    f.skip("target:port")?;
    f.skip("request_processing_time")?;
    f.skip("target_processing_time")?;
    f.skip("response_processing_time")?;
    let status = parse_status(f.required("elb_status_code")?, "elb_status_code")?;
    f.skip("target_status_code")?;
    f.skip("received_bytes")?;
    f.skip("sent_bytes")?;
    let request = f.required("request")?;
    let user_agent = f.required("user_agent")?;

    let mut hit = Hit::new(time_ms, peer, status);
    fill_request(&mut hit, request);
    hit.user_agent = text(user_agent);

    // Optional fields: walk to actions_executed (23) and stop there.
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
