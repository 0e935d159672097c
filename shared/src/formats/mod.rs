//! Log formats: one parser per format, and detection of the format.
//!
//! A parser turns one line (newline and trailing `\r` already removed) into
//! a [`Hit`] borrowed from the line, `Ok(None)` for lines that carry no
//! request by design (headers, comments, blank lines, NLB lines in an ALB
//! prefix), or a [`ParseError`] naming the field that failed. A failing line
//! is counted and skipped by the caller, never fatal.

use crate::hit::Hit;

pub mod alb;
pub mod cloudfront;
pub mod json;
pub mod pattern;
pub mod sniff;
#[cfg(test)]
pub(crate) mod testutil;
mod text;
#[cfg(feature = "events")]
pub(crate) use text::hex_value;
pub mod waf;

pub use sniff::{format_from_line, hint_from_name, NameHint};
pub use text::{parse_ip, parse_ip_port, parse_iso8601_ms, split_request_line, split_url};

/// Why a line could not be turned into a [`Hit`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ParseError {
    /// The field that failed (`"time"`, `"client:port"`, `"elb_status_code"`,
    /// `"json"`, ...).
    pub field: &'static str,
    /// What was wrong with it (`"missing"`, `"not a number"`, ...).
    pub reason: &'static str,
}

impl ParseError {
    /// A failure of `field` for `reason`.
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        ParseError { field, reason }
    }
}

/// What a parser made of one line.
pub type ParseResult<'a> = Result<Option<Hit<'a>>, ParseError>;

/// A line parser. Parsers may keep state between lines of one file
/// (CloudFront maps columns by its `#Fields` header); make a new one per file.
pub trait LineParser: Send {
    /// Parse one line, without its line terminator.
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a>;

    /// Only requests with a status in `statuses` need every field. For the
    /// others a parser may leave method, path, host and user agent empty
    /// (most lines match no rule, and their text is the costly part to
    /// read); the time, the addresses, the status and whether the line
    /// parses at all stay the same. The default parser reads everything.
    fn set_detail(&mut self, statuses: &StatusSet) {
        let _ = statuses;
    }

    /// Where to find the application user ([`Hit::user`]) in a format that
    /// logs request headers (AWS WAF). Formats that name the user
    /// themselves (a regex format's `user` capture, a `json` format's user
    /// field) or not at all ignore it, as the default does. A source with
    /// neither a header nor a cookie turns the lookup off.
    fn set_user_source(&mut self, source: &UserSource) {
        let _ = source;
    }

    /// Does parsing `line` change how the lines after it are parsed (a
    /// CloudFront `#Fields` header)? Where lines are parsed on two threads
    /// ([`crate::ahead`]), both parsers read such a line. The default: no
    /// line does.
    fn changes_state(&self, line: &[u8]) -> bool {
        let _ = line;
        false
    }
}

/// Which request header or cookie names the application user, for formats
/// that log the request headers ([`LineParser::set_user_source`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSource {
    /// A request header whose value is the user (`X-Api-Key`), its name
    /// matched case-insensitively; the first such header counts. When both
    /// are set and the request has this header, it wins over `cookie`.
    pub header: Option<String>,
    /// A cookie whose value is the user (`session`), looked up in the
    /// `Cookie` header(s) (`a=1; session=xyz`) by its exact name; the first
    /// one counts.
    pub cookie: Option<String>,
}

/// A set of HTTP status codes. Only 0–1023 can be left out: a larger one
/// is always in the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet([u64; 16]);

impl StatusSet {
    /// Every status.
    pub const ALL: StatusSet = StatusSet([u64::MAX; 16]);

    /// No status.
    pub const NONE: StatusSet = StatusSet([0; 16]);

    /// Add `status`.
    pub fn insert(&mut self, status: u16) {
        if let Some(w) = self.0.get_mut(usize::from(status / 64)) {
            *w |= 1 << (status % 64);
        }
    }

    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0
            .get(usize::from(status / 64))
            .is_none_or(|w| w & (1 << (status % 64)) != 0)
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet::ALL
    }
}

/// The log formats fail2waf reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// Application Load Balancer access logs.
    Alb,
    /// AWS WAF logs (JSON lines).
    Waf,
    /// CloudFront standard (legacy, W3C) logs.
    CloudFront,
    /// A regex with named captures (a preset or user-defined).
    Pattern(pattern::PatternSpec),
    /// One JSON object per line, with configured field paths (always
    /// user-defined).
    Json(json::JsonSpec),
}

impl Format {
    /// A fresh parser for one file of this format.
    pub fn parser(&self) -> Box<dyn LineParser> {
        match self {
            Format::Alb => Box::new(alb::AlbParser::default()),
            Format::Waf => Box::new(waf::WafParser::default()),
            Format::CloudFront => Box::new(cloudfront::CloudFrontParser::default()),
            Format::Pattern(spec) => Box::new(pattern::PatternParser::new(spec.clone())),
            Format::Json(spec) => Box::new(json::JsonParser::new(spec.clone())),
        }
    }

    /// Short name: `alb`, `waf`, `cloudfront`, or the pattern's or `json`
    /// format's name.
    pub fn name(&self) -> &str {
        match self {
            Format::Alb => "alb",
            Format::Waf => "waf",
            Format::CloudFront => "cloudfront",
            Format::Pattern(spec) => spec.name(),
            Format::Json(spec) => spec.name(),
        }
    }

    /// A format by name: `alb`, `waf`, `cloudfront`, `nginx-combined`,
    /// `apache-combined`, `common`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "alb" => Some(Format::Alb),
            "waf" => Some(Format::Waf),
            "cloudfront" => Some(Format::CloudFront),
            other => pattern::PatternSpec::preset(other).map(Format::Pattern),
        }
    }
}
