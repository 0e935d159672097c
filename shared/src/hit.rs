//! The normalized record every parser produces.

use std::borrow::Cow;
use std::net::IpAddr;

/// One request from a log line, borrowed from the line where possible.
///
/// Text fields are `Cow` so a parser can hand out the raw slice of the
/// line (the common case) and allocate only where it has to unescape or
/// repair invalid UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit<'a> {
    /// Event time, milliseconds since the Unix epoch (UTC). For ALB this is
    /// the time the response was sent; for WAF the time WAF saw the request.
    pub time_ms: i64,
    /// The connecting peer as the log records it (ALB `client`, CloudFront
    /// `c-ip`, WAF `clientIp`, `$remote_addr`). May be a proxy: see
    /// [`crate::client`] for how the counted address is resolved.
    pub peer: IpAddr,
    /// The raw `X-Forwarded-For` value, where the format records it.
    pub forwarded_for: Option<Cow<'a, str>>,
    /// The HTTP status the client received; `0` when the format has none
    /// (CloudFront `000`: the viewer closed the connection first).
    pub status: u16,
    /// HTTP method as logged (`-` when the request line was malformed).
    pub method: Cow<'a, str>,
    /// Path and query as the client sent them, without scheme and host
    /// (`-` when the request line was malformed).
    pub path: Cow<'a, str>,
    /// Host the request was for (`Host` header or URL authority), may be empty.
    pub host: Cow<'a, str>,
    /// User agent, may be empty.
    pub user_agent: Cow<'a, str>,
    /// What AWS WAF did, for formats that record it (WAF logs).
    pub waf: Option<WafVerdict<'a>>,
    /// The request was blocked by AWS WAF before the application saw it
    /// (ALB `actions_executed` contains `waf` and the status is 403, or a WAF
    /// log with a terminating BLOCK/CAPTCHA/CHALLENGE). Such requests never
    /// count towards status rules: otherwise a block would renew itself.
    pub blocked_by_waf: bool,
    /// The raw request field (`GET http://host/path HTTP/1.1`) of a line
    /// whose text fields were left out ([`crate::formats::LineParser::set_detail`]):
    /// enough to name the request's route ([`crate::route`]) when outage
    /// awareness needs it, without validating or copying the text.
    pub raw_request: Option<&'a [u8]>,
    /// The application user the request was made as, where the format
    /// names one (a regex format's `user` capture, a `json` format's user
    /// field, a configured header or cookie of a WAF log): raw, validated
    /// when counted ([`crate::key::User::new`]).
    pub user: Option<Cow<'a, str>>,
}

/// The decision AWS WAF logged for a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WafVerdict<'a> {
    /// `ALLOW`, `BLOCK`, `CAPTCHA`, `CHALLENGE` or `COUNT`, as logged.
    pub action: Cow<'a, str>,
    /// `terminatingRuleId` (`Default_Action` when no rule terminated).
    pub rule: Cow<'a, str>,
    /// Label names attached to the request.
    pub labels: Vec<Cow<'a, str>>,
}

impl<'a> Hit<'a> {
    /// The path (and query) as bytes: [`Hit::path`], or the one in the raw
    /// request field of a lean line.
    pub fn path_bytes(&self) -> &[u8] {
        match self.raw_request {
            Some(raw) if self.path.is_empty() => crate::route::path_of_request(raw),
            _ => self.path.as_bytes(),
        }
    }

    /// A record with only the fields every format has; the rest empty.
    pub fn new(time_ms: i64, peer: IpAddr, status: u16) -> Self {
        Hit {
            time_ms,
            peer,
            forwarded_for: None,
            status,
            method: Cow::Borrowed(""),
            path: Cow::Borrowed(""),
            host: Cow::Borrowed(""),
            user_agent: Cow::Borrowed(""),
            waf: None,
            blocked_by_waf: false,
            raw_request: None,
            user: None,
        }
    }
}
