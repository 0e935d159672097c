//! AWS WAF (v2) logs: one JSON object per line.
//!
//! Only the fields fail2waf needs are read; every other key is skipped
//! without being built. Strings are borrowed from the line unless they
//! contain JSON escapes, and the request headers are scanned for the three
//! that matter (`X-Forwarded-For`, `User-Agent`, `Host`) without collecting
//! them, so a line costs one allocation at most (the label list) in the
//! common case.
//!
//! Fields are read leniently: a field of an unexpected JSON type is treated
//! as absent, so a wrong type in a field fail2waf does not need never
//! rejects the record, and a wrong type in one it does need is reported
//! under that field's name rather than as a JSON error.

use super::text::parse_ip;
use super::{LineParser, ParseError, ParseResult};
use crate::hit::{Hit, WafVerdict};
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

/// Parser for AWS WAF log lines (one JSON object per line).
///
/// # Mapping to [`Hit`]
///
/// - `time_ms` = `timestamp` (epoch milliseconds; an integral float or a
///   string of digits is accepted too).
/// - `peer` = `httpRequest.clientIp`. For a web ACL behind CloudFront this
///   is the edge, so `forwarded_for` carries the `X-Forwarded-For` header
///   (name matched case-insensitively; several such headers are joined with
///   `", "` in log order).
/// - `user_agent` = the first `User-Agent` header; `host` = the first
///   `Host` header, or else `httpRequest.host` (newer logs), with a
///   trailing `:port` removed as for ALB URLs.
/// - `path` = `uri`, plus `?args` when `args` is not empty; `method` =
///   `httpMethod`.
/// - `status` = `responseCodeSent` when it is a number; otherwise what WAF
///   answered by default for the terminating action: BLOCK → 403,
///   CAPTCHA → 405, CHALLENGE → 202, anything else (ALLOW, COUNT) → 0,
///   because WAF logs carry no origin status.
/// - `waf` = `action`, `terminatingRuleId` and the `labels` names.
///
/// # `blocked_by_waf`
///
/// True when the terminating `action` is BLOCK, CAPTCHA or CHALLENGE: WAF
/// answered the request itself and the application never saw it. Only the
/// terminating action counts. The AWS samples show that a CAPTCHA rule
/// matching a request that carries a *valid* token is logged with
/// `"action": "ALLOW"` (terminating rule `Default_Action`) and the CAPTCHA
/// listed under `nonTerminatingMatchingRules` with `captchaResponse
/// .responseCode` 0 (sample 05): that request reached the application and
/// is not blocked. Without a valid token the record has `"action":
/// "CAPTCHA"`, the CAPTCHA rule as terminating rule and `responseCodeSent`
/// 405 (sample 06): blocked.
///
/// # Errors
///
/// A line that is not one JSON object (including several objects run
/// together on one line) fails as `json`; a missing or unparsable
/// `timestamp`, `httpRequest.clientIp` or `action` fails under that name;
/// a `responseCodeSent` that is neither null nor an HTTP status fails as
/// `responseCodeSent`. Blank lines are `Ok(None)`.
#[derive(Debug, Default)]
pub struct WafParser;

impl LineParser for WafParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let rec: Record<'a> =
            serde_json::from_slice(line).map_err(|_| ParseError::new("json", "not a JSON object"))?;

        let time_ms = match rec.timestamp {
            Loose::Int(ms) => ms,
            Loose::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
                .parse()
                .map_err(|_| ParseError::new("timestamp", "not epoch milliseconds"))?,
            Loose::Absent | Loose::Null => return Err(ParseError::new("timestamp", "missing")),
            _ => return Err(ParseError::new("timestamp", "not epoch milliseconds")),
        };
        let req = rec.http_request.unwrap_or_default();
        let peer = match &req.client_ip {
            Loose::Str(s) => {
                parse_ip(s).ok_or(ParseError::new("httpRequest.clientIp", "not an IP address"))?
            }
            Loose::Absent | Loose::Null => {
                return Err(ParseError::new("httpRequest.clientIp", "missing"))
            }
            _ => return Err(ParseError::new("httpRequest.clientIp", "not a string")),
        };
        let action = match rec.action {
            Loose::Str(s) => s,
            Loose::Absent | Loose::Null => return Err(ParseError::new("action", "missing")),
            _ => return Err(ParseError::new("action", "not a string")),
        };
        let is = |name: &str| action.eq_ignore_ascii_case(name);
        let blocked_by_waf = is("BLOCK") || is("CAPTCHA") || is("CHALLENGE");
        let status = match rec.response_code {
            Loose::Absent | Loose::Null => {
                if is("BLOCK") {
                    403
                } else if is("CAPTCHA") {
                    405
                } else if is("CHALLENGE") {
                    202
                } else {
                    0
                }
            }
            Loose::Int(code) => u16::try_from(code)
                .ok()
                .filter(|c| (100..=999).contains(c))
                .ok_or(ParseError::new("responseCodeSent", "not an HTTP status"))?,
            _ => return Err(ParseError::new("responseCodeSent", "not an HTTP status")),
        };

        let path = match (req.uri.into_str(), req.args.into_str()) {
            (uri, Some(args)) if !args.is_empty() => {
                let uri = uri.unwrap_or_default();
                let mut p = String::with_capacity(uri.len() + 1 + args.len());
                p.push_str(&uri);
                p.push('?');
                p.push_str(&args);
                Cow::Owned(p)
            }
            (uri, _) => uri.unwrap_or_default(),
        };
        let host = req
            .headers
            .host
            .or_else(|| req.host.into_str())
            .map(strip_port)
            .unwrap_or_default();

        let mut hit = Hit::new(time_ms, peer, status);
        hit.forwarded_for = req.headers.forwarded_for;
        hit.method = req.http_method.into_str().unwrap_or_default();
        hit.path = path;
        hit.host = host;
        hit.user_agent = req.headers.user_agent.unwrap_or_default();
        hit.blocked_by_waf = blocked_by_waf;
        hit.waf = Some(WafVerdict {
            action,
            rule: rec.rule.into_str().unwrap_or_default(),
            labels: rec.labels.0,
        });
        Ok(Some(hit))
    }
}

/// Remove a trailing `:port` (digits only) from a Host value, keeping
/// bracketed IPv6 literals whole (`[2001:db8::1]:443` → `[2001:db8::1]`).
/// Shared with the CloudFront parser.
pub(super) fn strip_port(host: Cow<'_, str>) -> Cow<'_, str> {
    let cut = match host.rfind(':') {
        Some(i)
            if i + 1 < host.len()
                && host[i + 1..].bytes().all(|b| b.is_ascii_digit())
                && (host.starts_with('[') && host[..i].ends_with(']')
                    || !host[..i].contains(':')) =>
        {
            i
        }
        _ => return host,
    };
    match host {
        Cow::Borrowed(s) => Cow::Borrowed(&s[..cut]),
        Cow::Owned(mut s) => {
            s.truncate(cut);
            Cow::Owned(s)
        }
    }
}

/// The fields of a WAF record that fail2waf reads; unknown keys are skipped.
#[derive(serde::Deserialize)]
struct Record<'a> {
    #[serde(default, borrow)]
    timestamp: Loose<'a>,
    #[serde(default, borrow)]
    action: Loose<'a>,
    #[serde(default, borrow, rename = "terminatingRuleId")]
    rule: Loose<'a>,
    #[serde(default, borrow, rename = "responseCodeSent")]
    response_code: Loose<'a>,
    #[serde(default, borrow)]
    labels: Labels<'a>,
    #[serde(default, borrow, rename = "httpRequest")]
    http_request: Option<Request<'a>>,
}

/// `httpRequest`.
#[derive(serde::Deserialize, Default)]
struct Request<'a> {
    #[serde(default, borrow, rename = "clientIp")]
    client_ip: Loose<'a>,
    #[serde(default, borrow)]
    headers: Headers<'a>,
    #[serde(default, borrow)]
    uri: Loose<'a>,
    #[serde(default, borrow)]
    args: Loose<'a>,
    #[serde(default, borrow, rename = "httpMethod")]
    http_method: Loose<'a>,
    #[serde(default, borrow)]
    host: Loose<'a>,
}

/// One element of `headers[]` or `labels[]`.
#[derive(serde::Deserialize)]
struct NameValue<'a> {
    #[serde(default, borrow)]
    name: Loose<'a>,
    #[serde(default, borrow)]
    value: Loose<'a>,
}

/// Any JSON value, keeping only what fail2waf can use: a string (borrowed
/// when it has no escapes) or an integer. Everything else is consumed and
/// remembered as `Other`.
#[derive(Default)]
enum Loose<'a> {
    #[default]
    Absent,
    Null,
    Str(Cow<'a, str>),
    Int(i64),
    Other,
}

impl<'a> Loose<'a> {
    fn into_str(self) -> Option<Cow<'a, str>> {
        match self {
            Loose::Str(s) => Some(s),
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LooseVisitor(PhantomData))
    }
}

struct LooseVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LooseVisitor<'a> {
    type Value = Loose<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Loose::Str(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Loose::Other, Loose::Int))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Loose::Int(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // 2^63 as f64; anything at or beyond does not fit an i64.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if v.fract() == 0.0 && v.abs() < LIMIT {
            #[allow(clippy::cast_possible_truncation)]
            Ok(Loose::Int(v as i64))
        } else {
            Ok(Loose::Other)
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Loose::Other)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Loose::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Loose::Other)
    }
}

/// The three request headers fail2waf uses, picked out of `headers[]`
/// while it is read.
#[derive(Default)]
struct Headers<'a> {
    forwarded_for: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Headers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeadersVisitor(PhantomData))
    }
}

struct HeadersVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for HeadersVisitor<'a> {
    type Value = Headers<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of {name, value} headers")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Headers::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Headers::default();
        while let Some(h) = seq.next_element::<Option<NameValue<'a>>>()? {
            let Some(NameValue {
                name: Loose::Str(name),
                value: Loose::Str(value),
            }) = h
            else {
                continue;
            };
            if name.eq_ignore_ascii_case("x-forwarded-for") {
                out.forwarded_for = Some(match out.forwarded_for.take() {
                    None => value,
                    Some(prev) => Cow::Owned(format!("{prev}, {value}")),
                });
            } else if name.eq_ignore_ascii_case("user-agent") {
                out.user_agent.get_or_insert(value);
            } else if name.eq_ignore_ascii_case("host") {
                out.host.get_or_insert(value);
            }
        }
        Ok(out)
    }
}

/// `labels[].name`.
#[derive(Default)]
struct Labels<'a>(Vec<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LabelsVisitor(PhantomData))
    }
}

struct LabelsVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for LabelsVisitor<'a> {
    type Value = Labels<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of {name} labels")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Labels::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(label) = seq.next_element::<Option<NameValue<'a>>>()? {
            if let Some(NameValue {
                name: Loose::Str(name),
                ..
            }) = label
            {
                out.push(name);
            }
        }
        Ok(Labels(out))
    }
}
