//! Regex formats with named captures: the `nginx-combined`,
//! `apache-combined` and `common` presets, and formats users define.
//!
//! A format is a regex matched against the raw bytes of a line (logs may
//! hold invalid UTF-8) whose named captures say where the fields are:
//!
//! | capture | | becomes |
//! |---|---|---|
//! | `ip` | required | [`Hit::peer`] (IPv4 or IPv6, an optional port or brackets allowed) |
//! | `time` | required | [`Hit::time_ms`], read with the spec's [`TimeFormat`] |
//! | `status` | required | [`Hit::status`]: three digits, 100–599, or `000` (= 0, no response) |
//! | `request` | optional | a request line `METHOD URL VERSION`, split into method, path and host |
//! | `method`, `path` | optional | [`Hit::method`], [`Hit::path`]; win over what `request` says |
//! | `host` | optional | [`Hit::host`]; wins over the URL's authority |
//! | `user_agent` (or `ua`) | optional | [`Hit::user_agent`] |
//! | `xff` | optional | [`Hit::forwarded_for`] |
//! | `user` | optional | [`Hit::user`], the application user (account, API key, session) |
//!
//! Any other capture name is an error, so a typo cannot silently lose a
//! field; use unnamed or non-capturing groups for everything else.
//!
//! **Regex dialect.** Anchor user regexes with `^`: an unanchored one
//! matches anywhere in the line, and is slower. Regexes are compiled with
//! Unicode mode *off*, so `\S`, `[^"]` and `.` match any byte and a line
//! with invalid UTF-8 still matches; `\w`, `\d` and `\s` are ASCII. Write
//! `(?u)` to turn Unicode back on for (part of) a regex.
//!
//! **Values.** Text fields are unescaped the way nginx (`escape=default`)
//! and Apache (≥ 2.0.46) escape them: `\"` → `"`, `\\` → `\`, `\xHH` → that
//! byte; the result is then read as UTF-8, invalid sequences replaced. A
//! field of `-` means empty (`host`, `user_agent`) or absent (`xff`,
//! `user`).
//! A request line that is empty, `-`, or whose method is not an HTTP token
//! (an nginx `\x16\x03…` TLS handshake sent to a plain-HTTP port) gives
//! method and path `-`: the line still counts, with its status (400).

use super::text::{civil_to_ms, hex_value, parse_iso8601_ms, split_request_line, split_url};
use super::{parse_ip, LineParser, ParseError, ParseResult};
use crate::hit::Hit;
use regex::bytes::{CaptureLocations, Regex, RegexBuilder};
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, LazyLock};

/// Names of the presets, for help texts and config validation.
pub const PRESET_NAMES: [&str; 3] = ["nginx-combined", "apache-combined", "common"];

/// A quoted field as nginx and Apache write it: `"`, then any byte but `"`
/// and `\`, or a backslash escape (`\"`, `\\`, `\xHH`), then `"`.
macro_rules! quoted {
    ($inner:literal) => {
        concat!(r#"""#, $inner, r#"(?:[^"\\]|\\.)*)""#)
    };
}

/// CLF up to and including the bytes field:
/// `%h %l %u [%t] "%r" %>s %b`.
// `%u` is not captured as `user`: on a 401 it is the login tried; blocking it locks out the victim.
macro_rules! clf_head {
    () => {
        concat!(
            r"^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]*)\] ",
            quoted!("(?P<request>"),
            r" (?P<status>\S+) \S+"
        )
    };
}

/// Common Log Format; fields after the bytes field are ignored, so a
/// combined line also parses (without its user agent).
const COMMON_RE: &str = concat!(clf_head!(), r"(?: |$)");

/// Combined: CLF, then `"referer" "user agent"`. Unquoted `-` is taken for
/// either (VRL's tests have such lines). Fields after the user agent
/// (nginx `main`'s `"$http_x_forwarded_for"`, `$gzip_ratio`, nginx-ingress
/// `upstreaminfo`, Apache `%D`) are ignored.
const COMBINED_RE: &str = concat!(
    clf_head!(),
    r#" (?:"(?:[^"\\]|\\.)*"|-) (?:"#,
    quoted!("(?P<user_agent>"),
    r"|-)(?: |$)"
);

/// The capture names a format may use.
const KNOWN_CAPTURES: &str =
    "ip, time, status, method, path, request, host, user_agent (or ua), xff, user";

/// Why a user-defined format cannot be compiled ([`PatternSpec::new`]).
#[derive(Debug, Clone, thiserror::Error)]
pub enum SpecError {
    /// The format has no name.
    #[error("format name is empty")]
    EmptyName,
    /// `time_format` is none of the known ones.
    #[error(
        "format {name:?}: unknown time format {time_format:?} \
         (expected clf, iso8601, epoch or epoch_ms)"
    )]
    TimeFormat {
        /// The format.
        name: String,
        /// The time format asked for.
        time_format: String,
    },
    /// The regex does not compile.
    #[error("format {name:?}: invalid regex: {error}")]
    Regex {
        /// The format.
        name: String,
        /// The regex crate's message.
        error: regex::Error,
    },
    /// Two captures name the same field (`ua` and `user_agent`).
    #[error(
        "format {name:?}: captures both {first:?} and {second:?}; \
         they are the same field, use one"
    )]
    SameField {
        /// The format.
        name: String,
        /// The capture seen first.
        first: String,
        /// The capture seen second.
        second: String,
    },
    /// A capture name that is no field.
    #[error(
        "format {name:?}: unknown capture name {capture:?} \
         (known: {known}; use (?:...) for other groups)",
        known = KNOWN_CAPTURES
    )]
    UnknownCapture {
        /// The format.
        name: String,
        /// The capture's name.
        capture: String,
    },
    /// A required capture (`ip`, `time`, `status`) is missing.
    #[error(
        "format {name:?}: the regex has no named capture {capture:?} \
         (required: ip, time, status), e.g. (?P<{capture}>\\S+)"
    )]
    MissingCapture {
        /// The format.
        name: String,
        /// The capture that is missing.
        capture: &'static str,
    },
}

/// How the `time` capture is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeFormat {
    /// `10/Oct/2000:13:55:36 -0700` (nginx `$time_local`, Apache `%t`),
    /// optionally inside `[` `]`. The offset is applied to get UTC.
    Clf,
    /// ISO 8601 / RFC 3339 (nginx `$time_iso8601`); no zone means UTC.
    Iso8601,
    /// Seconds since the epoch, optionally with a fraction
    /// (nginx `$msec`: `1617192247.123`).
    Epoch,
    /// Milliseconds since the epoch.
    EpochMs,
}

impl TimeFormat {
    /// The format by its configuration name: `clf`, `iso8601`, `epoch`,
    /// `epoch_ms`.
    pub fn from_name(name: &str) -> Option<TimeFormat> {
        match name {
            "clf" => Some(TimeFormat::Clf),
            "iso8601" => Some(TimeFormat::Iso8601),
            "epoch" => Some(TimeFormat::Epoch),
            "epoch_ms" => Some(TimeFormat::EpochMs),
            _ => None,
        }
    }

    /// The configuration name (the inverse of [`TimeFormat::from_name`]).
    pub fn name(self) -> &'static str {
        match self {
            TimeFormat::Clf => "clf",
            TimeFormat::Iso8601 => "iso8601",
            TimeFormat::Epoch => "epoch",
            TimeFormat::EpochMs => "epoch_ms",
        }
    }

    /// Epoch milliseconds (UTC) of a `time` capture (or a `json` format's
    /// time field), with the reason it was rejected.
    pub(crate) fn parse(self, s: &[u8]) -> Result<i64, &'static str> {
        match self {
            TimeFormat::Clf => parse_clf_ms(s).ok_or("not a dd/Mon/yyyy:HH:MM:SS +zzzz time"),
            TimeFormat::Iso8601 => parse_iso8601_ms(s).ok_or("not an ISO 8601 time"),
            TimeFormat::Epoch => parse_epoch_ms(s, true).ok_or("not epoch seconds"),
            TimeFormat::EpochMs => parse_epoch_ms(s, false).ok_or("not epoch milliseconds"),
        }
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Group indexes of the captures a format names, resolved once.
#[derive(Debug, Clone, Copy, Default)]
struct Slots {
    ip: usize,
    time: usize,
    status: usize,
    method: Option<usize>,
    path: Option<usize>,
    request: Option<usize>,
    host: Option<usize>,
    user_agent: Option<usize>,
    xff: Option<usize>,
    user: Option<usize>,
}

/// A regex format: a name, a regex with named captures and a time format.
///
/// Two specs are equal when name, regex source and time format are.
#[derive(Debug, Clone)]
pub struct PatternSpec {
    name: String,
    regex: Arc<Regex>,
    time_format: TimeFormat,
    slots: Slots,
}

impl PartialEq for PatternSpec {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.regex.as_str() == other.regex.as_str()
            && self.time_format == other.time_format
    }
}

impl Eq for PatternSpec {}

static PRESETS: LazyLock<[PatternSpec; 3]> = LazyLock::new(|| {
    let make =
        |name: &str, re: &str| PatternSpec::new(name, re, "clf").expect("preset regexes compile");
    [
        make("nginx-combined", COMBINED_RE),
        make("apache-combined", COMBINED_RE),
        make("common", COMMON_RE),
    ]
});

impl PatternSpec {
    /// A built-in format by name, with time format `clf`:
    ///
    /// - `nginx-combined`: `$remote_addr - $remote_user [$time_local]
    ///   "$request" $status $body_bytes_sent "$http_referer"
    ///   "$http_user_agent"`, trailing fields ignored (nginx `main`,
    ///   nginx-ingress `upstreaminfo`).
    /// - `apache-combined`: `%h %l %u %t "%r" %>s %b "%{Referer}i"
    ///   "%{User-agent}i"` (the same regex), trailing fields ignored.
    /// - `common`: `%h %l %u %t "%r" %>s %b`, trailing fields ignored.
    ///
    /// Quoted fields take `\"` and `\x22` escapes; `%b` may be `-`.
    pub fn preset(name: &str) -> Option<PatternSpec> {
        PRESETS.iter().find(|p| p.name == name).cloned()
    }

    /// Compile a user-defined format. `time_format` is one of `clf`,
    /// `iso8601`, `epoch`, `epoch_ms`. The error says what is wrong: the
    /// regex's own message, a missing required capture (`ip`, `time`,
    /// `status`), an unknown capture name, or an unknown time format.
    pub fn new(name: &str, regex: &str, time_format: &str) -> Result<PatternSpec, SpecError> {
        if name.trim().is_empty() {
            return Err(SpecError::EmptyName);
        }
        let time = TimeFormat::from_name(time_format).ok_or_else(|| SpecError::TimeFormat {
            name: name.to_string(),
            time_format: time_format.to_string(),
        })?;
        let re = RegexBuilder::new(regex)
            .unicode(false)
            .build()
            .map_err(|error| SpecError::Regex {
                name: name.to_string(),
                error,
            })?;
        let mut slots = Slots::default();
        let (mut ip, mut t, mut status, mut ua_name) = (None, None, None, None::<&str>);
        for (i, cap) in re.capture_names().enumerate() {
            let Some(cap) = cap else { continue };
            match cap {
                "ip" => ip = Some(i),
                "time" => t = Some(i),
                "status" => status = Some(i),
                "method" => slots.method = Some(i),
                "path" => slots.path = Some(i),
                "request" => slots.request = Some(i),
                "host" => slots.host = Some(i),
                "xff" => slots.xff = Some(i),
                "user" => slots.user = Some(i),
                "user_agent" | "ua" => {
                    if let Some(first) = ua_name {
                        return Err(SpecError::SameField {
                            name: name.to_string(),
                            first: first.to_string(),
                            second: cap.to_string(),
                        });
                    }
                    ua_name = Some(cap);
                    slots.user_agent = Some(i);
                }
                other => {
                    return Err(SpecError::UnknownCapture {
                        name: name.to_string(),
                        capture: other.to_string(),
                    })
                }
            }
        }
        let required = |slot: Option<usize>, capture: &'static str| {
            slot.ok_or_else(|| SpecError::MissingCapture {
                name: name.to_string(),
                capture,
            })
        };
        slots.ip = required(ip, "ip")?;
        slots.time = required(t, "time")?;
        slots.status = required(status, "status")?;
        Ok(PatternSpec {
            name: name.to_string(),
            regex: Arc::new(re),
            time_format: time,
            slots,
        })
    }

    /// The format's name (a preset's name, or the one the user chose).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The regex source, as given.
    pub fn regex_source(&self) -> &str {
        self.regex.as_str()
    }

    /// How the `time` capture is written.
    pub fn time_format(&self) -> TimeFormat {
        self.time_format
    }
}

/// Parser for a regex format. Keeps its capture buffer between lines, so
/// parsing allocates only to unescape or repair text.
#[derive(Debug)]
pub struct PatternParser {
    spec: PatternSpec,
    locs: CaptureLocations,
}

impl PatternParser {
    /// A parser for `spec`.
    pub fn new(spec: PatternSpec) -> Self {
        let locs = spec.regex.capture_locations();
        PatternParser { spec, locs }
    }
}

impl LineParser for PatternParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if self
            .spec
            .regex
            .captures_read(&mut self.locs, line)
            .is_none()
        {
            return Err(ParseError::new("line", "does not match the format"));
        }
        let locs = &self.locs;
        let cap = |slot: usize| locs.get(slot).map(|(s, e)| &line[s..e]);
        let opt = |slot: Option<usize>| slot.and_then(cap);
        let slots = &self.spec.slots;

        let ip = cap(slots.ip).ok_or(ParseError::new("ip", "missing"))?;
        let peer = std::str::from_utf8(ip)
            .ok()
            .and_then(parse_ip)
            .ok_or(ParseError::new("ip", "not an IP address"))?;
        let time = cap(slots.time).ok_or(ParseError::new("time", "missing"))?;
        let time_ms = self
            .spec
            .time_format
            .parse(time)
            .map_err(|reason| ParseError::new("time", reason))?;
        let status = cap(slots.status).ok_or(ParseError::new("status", "missing"))?;
        let status =
            parse_status(status).ok_or(ParseError::new("status", "not a 3-digit HTTP status"))?;

        let mut hit = Hit::new(time_ms, peer, status);
        let mut url_host: Cow<'a, str> = Cow::Borrowed("");
        if let Some(req) = opt(slots.request) {
            let req = unescape(req);
            let (method, path, host) = split_request(req);
            hit.method = method;
            hit.path = path;
            url_host = host;
        }
        if let Some(m) = opt(slots.method) {
            hit.method = unescape(m);
        }
        if let Some(p) = opt(slots.path) {
            let (host, path) = split_path(unescape(p));
            hit.path = path;
            if !host.is_empty() {
                url_host = host;
            }
        }
        hit.host = match opt(slots.host).filter(|h| !is_blank(h)) {
            Some(h) => unescape(h),
            None => url_host,
        };
        if let Some(ua) = opt(slots.user_agent).filter(|u| !is_blank(u)) {
            hit.user_agent = unescape(ua);
        }
        hit.forwarded_for = opt(slots.xff).filter(|x| !is_blank(x)).map(unescape);
        hit.user = opt(slots.user).filter(|u| !is_blank(u)).map(unescape);
        Ok(Some(hit))
    }
}

/// Empty or `-`: the value was not there.
fn is_blank(s: &[u8]) -> bool {
    s.is_empty() || s == b"-"
}

/// Three digits: 100–599, or `000` (no response was sent) as 0.
pub(crate) fn parse_status(s: &[u8]) -> Option<u16> {
    let [a, b, c] = *s else { return None };
    if !(a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()) {
        return None;
    }
    let v = u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0');
    (v == 0 || (100..=599).contains(&v)).then_some(v)
}

/// An HTTP token (RFC 9110 `tchar`s), the shape of a method.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Method, path and URL host of a request line; `-`, `-`, `` when it is
/// empty, `-` or not an HTTP request (binary, no method).
fn split_request(req: Cow<'_, str>) -> (Cow<'_, str>, Cow<'_, str>, Cow<'_, str>) {
    let is_request = |m: &str| m != "-" && is_token(m);
    let dash = || (Cow::Borrowed("-"), Cow::Borrowed("-"), Cow::Borrowed(""));
    match req {
        Cow::Borrowed(r) => {
            let (m, u) = split_request_line(r);
            if !is_request(m) {
                return dash();
            }
            let (host, path) = split_path(Cow::Borrowed(u));
            (Cow::Borrowed(m), path, host)
        }
        Cow::Owned(r) => {
            let (m, u) = split_request_line(&r);
            if !is_request(m) {
                return dash();
            }
            let (host, path) = split_path(Cow::Borrowed(u));
            (
                Cow::Owned(m.to_string()),
                Cow::Owned(path.into_owned()),
                Cow::Owned(host.into_owned()),
            )
        }
    }
}

/// Host and path of a request target: an absolute URL is split with
/// [`split_url`]; anything else (`/path?q`, `*`) is the path, host empty.
pub(crate) fn split_path(url: Cow<'_, str>) -> (Cow<'_, str>, Cow<'_, str>) {
    // Only a target that does not start with `/` can be absolute: this keeps
    // `/r?u=http://x/y` whole.
    if url.starts_with('/') || !url.contains("://") {
        return (Cow::Borrowed(""), url);
    }
    match url {
        Cow::Borrowed(u) => {
            let (h, p) = split_url(u);
            (Cow::Borrowed(h), Cow::Borrowed(p))
        }
        Cow::Owned(u) => {
            let (h, p) = split_url(&u);
            (Cow::Owned(h.to_string()), Cow::Owned(p.to_string()))
        }
    }
}

/// Undo nginx/Apache escaping (`\"`, `\\`, `\xHH`) and read as UTF-8
/// (invalid sequences replaced). Borrows when there is nothing to undo.
fn unescape(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\\') {
        return String::from_utf8_lossy(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'\\' {
            match raw.get(i + 1) {
                Some(&c @ (b'"' | b'\\')) => {
                    out.push(c);
                    i += 2;
                    continue;
                }
                Some(b'x') => {
                    if let (Some(h), Some(l)) = (
                        raw.get(i + 2).and_then(|&c| hex_value(c)),
                        raw.get(i + 3).and_then(|&c| hex_value(c)),
                    ) {
                        out.push(h << 4 | l);
                        i += 4;
                        continue;
                    }
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    Cow::Owned(match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn two_digits(s: &[u8]) -> Option<u32> {
    match *s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `dd/Mon/yyyy:HH:MM:SS ±hhmm` (optionally in `[` `]`) to UTC epoch ms.
fn parse_clf_ms(s: &[u8]) -> Option<i64> {
    let s = match s {
        [b'[', inner @ .., b']'] => inner,
        _ => s,
    };
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' {
        return None;
    }
    if s[14] != b':' || s[17] != b':' || s[20] != b' ' {
        return None;
    }
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let mon = MONTHS.iter().position(|m| m[..] == s[3..6])? as u32 + 1;
    let day = two_digits(&s[0..2])?;
    let year = two_digits(&s[7..9])? * 100 + two_digits(&s[9..11])?;
    if day == 0 || day > days_in_month(year, mon) {
        return None;
    }
    let base = civil_to_ms(
        year,
        mon,
        day,
        two_digits(&s[12..14])?,
        two_digits(&s[15..17])?,
        two_digits(&s[18..20])?,
    )?;
    let (oh, om) = (two_digits(&s[22..24])?, two_digits(&s[24..26])?);
    if oh > 23 || om > 59 {
        return None;
    }
    let offset = i64::from(oh * 60 + om) * 60_000;
    match s[21] {
        b'+' => Some(base - offset),
        b'-' => Some(base + offset),
        _ => None,
    }
}

/// Latest accepted time: 9999-12-31T23:59:59.999Z.
const MAX_MS: i64 = 253_402_300_799_999;

/// Epoch seconds with an optional fraction (`seconds`), or whole epoch
/// milliseconds, to epoch ms.
fn parse_epoch_ms(s: &[u8], seconds: bool) -> Option<i64> {
    let (int, frac) = match s.iter().position(|&b| b == b'.') {
        Some(i) if seconds => (&s[..i], Some(&s[i + 1..])),
        _ => (s, None),
    };
    if int.is_empty() || int.len() > 15 || !int.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v = int
        .iter()
        .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0'));
    if seconds {
        v = v.checked_mul(1000)?;
        if let Some(frac) = frac {
            if frac.is_empty() || !frac.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for (i, &b) in frac.iter().take(3).enumerate() {
                v += i64::from(b - b'0') * [100, 10, 1][i];
            }
        }
    }
    (v <= MAX_MS).then_some(v)
}

#[cfg(test)]
mod tests;
