//! AWS WAF (v2) logs: one JSON object per line.
//!
//! Only the fields fail2waf needs are read; every other key is skipped
//! without being built. Strings are borrowed from the line unless they
//! contain JSON escapes, and the request headers are scanned for the three
//! that matter (`X-Forwarded-For`, `User-Agent`, `Host`) without collecting
//! them, so a line costs one allocation at most (the label list) in the
//! common case. Only with a [`UserSource`] set are the headers kept (as
//! borrowed pairs), to find the user's header or cookie among them.
//!
//! Fields are read leniently: a field of an unexpected JSON type is treated
//! as absent, so a wrong type in a field fail2waf does not need never
//! rejects the record, and a wrong type in one it does need is reported
//! under that field's name rather than as a JSON error.

use super::text::parse_ip;
use super::{LineParser, ParseError, ParseResult, UserSource};
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
/// - `user` = with a [`UserSource`] ([`LineParser::set_user_source`]), the
///   value of the first request header of that name (case-insensitive),
///   or else the value of the first cookie of that name in the `Cookie`
///   header(s), spaces around it trimmed. An empty or `-` value is no user.
///   A value WAF redacted is handed on as logged (`REDACTED`): the engine
///   counts no user for it. Without a source, `user` is `None`.
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
///
/// It keeps no state between lines, only its settings; it is made with
/// [`Default`], like the other parsers.
#[derive(Debug, Default)]
pub struct WafParser {
    /// Where the user is, when a source with a header or a cookie is set.
    user: Option<UserSource>,
}

impl LineParser for WafParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        match &self.user {
            None => Ok(Self::parse_record::<()>(line)?.map(|(hit, ())| hit)),
            Some(source) => Ok(Self::parse_record::<AllHeaders>(line)?.map(
                |(mut hit, headers)| {
                    hit.user = headers.user(source);
                    hit
                },
            )),
        }
    }

    fn set_user_source(&mut self, source: &UserSource) {
        let named = |n: &Option<String>| n.clone().filter(|n| !n.is_empty());
        let source = UserSource {
            header: named(&source.header),
            cookie: named(&source.cookie),
        };
        self.user = (source.header.is_some() || source.cookie.is_some()).then_some(source);
    }
}

impl WafParser {
    /// One line as a [`Hit`] (without its user), and what `X` kept of the
    /// request headers; `None` for a blank line.
    fn parse_record<'a, X: Extra<'a>>(line: &'a [u8]) -> Result<Option<(Hit<'a>, X)>, ParseError> {
        match line.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Ok(None),
            // serde would also take a struct from a JSON array.
            Some(b'{') => {}
            Some(_) => return Err(ParseError::new("json", "not a JSON object")),
        }
        let rec: Record<'a, X> = serde_json::from_slice(line)
            .map_err(|_| ParseError::new("json", "not a JSON object"))?;

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
        Ok(Some((hit, req.headers.extra)))
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
/// `X` is what is kept of the request headers besides the three read.
#[derive(serde::Deserialize)]
#[serde(bound(deserialize = "X: Extra<'a>"))]
struct Record<'a, X> {
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
    http_request: Option<Request<'a, X>>,
}

/// `httpRequest`.
#[derive(serde::Deserialize, Default)]
#[serde(bound(deserialize = "X: Extra<'a>"))]
struct Request<'a, X> {
    #[serde(default, borrow, rename = "clientIp")]
    client_ip: Loose<'a>,
    #[serde(default, borrow)]
    headers: Headers<'a, X>,
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
            #[allow(clippy::cast_possible_truncation)] // integral and in range
            let ms = v as i64;
            Ok(Loose::Int(ms))
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
/// while it is read, and what `X` keeps of all of them.
#[derive(Default)]
struct Headers<'a, X> {
    forwarded_for: Option<Cow<'a, str>>,
    user_agent: Option<Cow<'a, str>>,
    host: Option<Cow<'a, str>>,
    extra: X,
}

/// What a parse keeps of the request headers besides the three it reads:
/// nothing (`()`, the fast path), or every one ([`AllHeaders`]).
trait Extra<'a>: Default {
    /// Offer one `name: value` header, in log order.
    #[allow(clippy::ptr_arg)] // a `Cow`, so that what was borrowed stays so
    fn offer(&mut self, name: &Cow<'a, str>, value: &Cow<'a, str>);
}

impl<'a> Extra<'a> for () {
    #[inline]
    fn offer(&mut self, _: &Cow<'a, str>, _: &Cow<'a, str>) {}
}

/// Every request header with a string name and value, in log order.
#[derive(Default)]
struct AllHeaders<'a>(Vec<(Cow<'a, str>, Cow<'a, str>)>);

impl<'a> Extra<'a> for AllHeaders<'a> {
    fn offer(&mut self, name: &Cow<'a, str>, value: &Cow<'a, str>) {
        self.0.push((name.clone(), value.clone()));
    }
}

impl<'a> AllHeaders<'a> {
    /// The values of the headers called `want` (in any case), in order.
    fn named<'s>(&'s self, want: &'s str) -> impl Iterator<Item = &'s Cow<'a, str>> + 's {
        self.0
            .iter()
            .filter(move |(name, _)| name.eq_ignore_ascii_case(want))
            .map(|(_, value)| value)
    }

    /// The user `source` names: the first header of its name, else the
    /// first cookie of its name; `None` for an empty or `-` value.
    fn user(&self, source: &UserSource) -> Option<Cow<'a, str>> {
        let someone = |v: &Cow<'_, str>| !v.is_empty() && v != "-";
        let by_header = source
            .header
            .as_deref()
            .and_then(|h| self.named(h).next())
            .and_then(|v| sub_str(v, |v| Some(v.trim())))
            .filter(someone);
        if by_header.is_some() {
            return by_header;
        }
        let cookie = source.cookie.as_deref()?;
        self.named("cookie")
            .find_map(|h| sub_str(h, |h| cookie_value(h, cookie)))
            .filter(someone)
    }
}

/// The value of the first cookie called `name` in a `Cookie` header
/// (`a=1; session=xyz`), spaces around it trimmed.
fn cookie_value<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    header.split(';').find_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        (n.trim() == name).then(|| v.trim())
    })
}

/// The part `f` picks of `s`, borrowed from the line when `s` is.
fn sub_str<'a>(
    s: &Cow<'a, str>,
    f: impl for<'x> FnOnce(&'x str) -> Option<&'x str>,
) -> Option<Cow<'a, str>> {
    match s {
        Cow::Borrowed(s) => f(s).map(Cow::Borrowed),
        Cow::Owned(s) => f(s).map(|part| Cow::Owned(part.to_owned())),
    }
}

impl<'de: 'a, 'a, X: Extra<'a>> Deserialize<'de> for Headers<'a, X> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(HeadersVisitor(PhantomData))
    }
}

struct HeadersVisitor<'a, X>(PhantomData<(&'a (), X)>);

impl<'de: 'a, 'a, X: Extra<'a>> Visitor<'de> for HeadersVisitor<'a, X> {
    type Value = Headers<'a, X>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of {name, value} headers")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Headers::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Headers::<'a, X>::default();
        while let Some(h) = seq.next_element::<Option<NameValue<'a>>>()? {
            let Some(NameValue {
                name: Loose::Str(name),
                value: Loose::Str(value),
            }) = h
            else {
                continue;
            };
            out.extra.offer(&name, &value);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::{epoch_ms, fixture, fixture_files, ip, lines, FreshParser};
    use std::collections::BTreeMap;

    /// Every file under `tests/fixtures/waf/` with (parsed, skipped,
    /// rejected) line counts. A new fixture fails this test until listed.
    #[test]
    fn every_fixture_file_is_covered_with_counts() {
        let expected: BTreeMap<&str, (usize, usize, usize)> = [
            (
                "waf/awsdocs/01_log_output_for_a_rule_that_triggered_on_sqli_detection_termi.json",
                (1, 0, 0),
            ),
            (
                "waf/awsdocs/02_log_output_for_a_rule_that_triggered_on_sqli_detection_non_t.json",
                (1, 0, 0),
            ),
            (
                "waf/awsdocs/03_log_output_for_multiple_rules_that_triggered_inside_a_rule_g.json",
                (1, 0, 0),
            ),
            (
                "waf/awsdocs/04_log_output_for_a_rule_that_triggered_for_the_inspection_of_t.json",
                (1, 0, 0),
            ),
            (
                "waf/awsdocs/05_log_output_for_a_captcha_rule_against_a_web_request_with_a_v.json",
                (1, 0, 0),
            ),
            (
                "waf/awsdocs/06_log_output_for_a_captcha_rule_against_a_web_request_that_doe.json",
                (1, 0, 0),
            ),
            // The doc elides two values as `...`: not JSON.
            (
                "waf/awsdocs/07_rate_based_rule_1_log_entry_VERBATIM_INVALID_JSON.txt",
                (0, 0, 1),
            ),
            (
                "waf/awsdocs/07_rate_based_rule_1_log_entry_repaired.json",
                (1, 0, 0),
            ),
            // Pretty-printed over 68 lines: 5 blank lines skipped, every
            // other line a JSON fragment (see `pretty_printed_record`).
            ("waf/dpetzold/waf_log.json", (0, 5, 63)),
            // Seven objects on one line: one rejected line, no panic.
            ("waf/waf_concatenated_no_newlines_defensive.log", (0, 0, 1)),
            ("waf/waf_ndjson_sample.log", (7, 0, 0)),
            ("waf/waf_ndjson_sample.log.gz", (7, 0, 0)),
        ]
        .into_iter()
        .collect();

        assert_eq!(
            fixture_files("waf"),
            expected.keys().map(|k| (*k).to_owned()).collect::<Vec<_>>()
        );

        for (name, (parsed, skipped, rejected)) in expected {
            let data = fixture(name);
            let out = WafParser::parse_all(&data);
            assert_eq!(
                out.counts(),
                (parsed, skipped, rejected),
                "{name}: {:?}",
                out.errors
            );
            assert!(
                out.errors.iter().all(|e| e.field == "json"),
                "{name}: {:?}",
                out.errors
            );
        }
    }

    struct Want {
        file: &'static str,
        time_ms: i64,
        peer: &'static str,
        status: u16,
        method: &'static str,
        path: &'static str,
        host: &'static str,
        user_agent: &'static str,
        forwarded_for: Option<&'static str>,
        action: &'static str,
        rule: &'static str,
        labels: &'static [&'static str],
        blocked: bool,
    }

    const CHROME_94: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                             (KHTML, like Gecko) Chrome/94.0.4606.54 Safari/537.36";
    const APIGW_HOST: &str = "b34myvfw0b.gamma.execute-api.us-east-1.amazonaws.com";

    fn doc_samples() -> Vec<Want> {
        vec![
            Want {
                file:
                    "waf/awsdocs/01_log_output_for_a_rule_that_triggered_on_sqli_detection_termi.json",
                time_ms: epoch_ms("2019-12-13T23:40:12.771Z"),
                peer: "1.1.1.1",
                status: 403,
                method: "GET",
                path: "/myUri",
                host: "localhost",
                user_agent: "curl/7.61.1",
                forwarded_for: None,
                action: "BLOCK",
                rule: "STMTest_SQLi_XSS",
                labels: &["value"],
                blocked: true,
            },
            Want {
                file:
                    "waf/awsdocs/02_log_output_for_a_rule_that_triggered_on_sqli_detection_non_t.json",
                time_ms: epoch_ms("2020-06-17T01:26:32.516Z"),
                peer: "3.3.3.3",
                status: 0,
                method: "GET",
                path: "/myUri",
                host: "localhost",
                user_agent: "curl/7.61.1",
                forwarded_for: None,
                action: "ALLOW",
                rule: "Default_Action",
                labels: &["value"],
                blocked: false,
            },
            Want {
                file:
                    "waf/awsdocs/03_log_output_for_multiple_rules_that_triggered_inside_a_rule_g.json",
                time_ms: epoch_ms("2020-06-17T02:43:30.888Z"),
                peer: "3.3.3.3",
                status: 403,
                method: "GET",
                path: "/myUri",
                host: "localhost",
                user_agent: "curl/7.61.1",
                forwarded_for: None,
                action: "BLOCK",
                rule: "RG-Reference",
                labels: &["value"],
                blocked: true,
            },
            // Body inspection sample: no headers, empty uri, null responseCodeSent.
            Want {
                file:
                    "waf/awsdocs/04_log_output_for_a_rule_that_triggered_for_the_inspection_of_t.json",
                time_ms: epoch_ms("2019-12-13T23:40:12.771Z"),
                peer: "1.1.1.1",
                status: 403,
                method: "POST",
                path: "",
                host: "",
                user_agent: "",
                forwarded_for: None,
                action: "BLOCK",
                rule: "STMTest_SQLi_XSS",
                labels: &["value"],
                blocked: true,
            },
            // CAPTCHA with a valid token: logged as ALLOW, not blocked.
            Want {
                file:
                    "waf/awsdocs/05_log_output_for_a_captcha_rule_against_a_web_request_with_a_v.json",
                time_ms: epoch_ms("2021-09-23T18:07:09.309Z"),
                peer: "72.21.198.65",
                status: 0,
                method: "GET",
                path: "/pen-test/pets",
                host: APIGW_HOST,
                user_agent: CHROME_94,
                forwarded_for: Some("72.21.198.65"),
                action: "ALLOW",
                rule: "Default_Action",
                labels: &[],
                blocked: false,
            },
            // CAPTCHA without a token: the puzzle was served, 405.
            Want {
                file:
                    "waf/awsdocs/06_log_output_for_a_captcha_rule_against_a_web_request_that_doe.json",
                time_ms: epoch_ms("2021-09-23T18:06:56.512Z"),
                peer: "72.21.198.65",
                status: 405,
                method: "GET",
                path: "/pen-test/pets",
                host: APIGW_HOST,
                user_agent: CHROME_94,
                forwarded_for: Some("72.21.198.65"),
                action: "CAPTCHA",
                rule: "captcha-rule",
                labels: &[],
                blocked: true,
            },
            // Rate-based rule (evaluationWindowSec is a string in the doc).
            Want {
                file: "waf/awsdocs/07_rate_based_rule_1_log_entry_repaired.json",
                time_ms: epoch_ms("2023-05-06T06:46:19.981Z"),
                peer: "52.46.82.45",
                status: 403,
                method: "GET",
                path: "/CanaryTest",
                host: "rjvegx5guh.execute-api.eu-west-3.amazonaws.com",
                user_agent: "RateBasedRuleTestKoipOneKeyModulePV2",
                forwarded_for: Some("52.46.82.45"),
                action: "BLOCK",
                rule: "RateBasedRule",
                labels: &[],
                blocked: true,
            },
        ]
    }

    fn check(hit: &Hit<'_>, w: &Want) {
        let f = w.file;
        assert_eq!(hit.time_ms, w.time_ms, "{f}");
        assert_eq!(hit.peer, ip(w.peer), "{f}");
        assert_eq!(hit.status, w.status, "{f}");
        assert_eq!(hit.method, w.method, "{f}");
        assert_eq!(hit.path, w.path, "{f}");
        assert_eq!(hit.host, w.host, "{f}");
        assert_eq!(hit.user_agent, w.user_agent, "{f}");
        assert_eq!(hit.forwarded_for.as_deref(), w.forwarded_for, "{f}");
        assert_eq!(hit.blocked_by_waf, w.blocked, "{f}");
        let waf = hit.waf.as_ref().unwrap();
        assert_eq!(waf.action, w.action, "{f}");
        assert_eq!(waf.rule, w.rule, "{f}");
        assert_eq!(waf.labels, w.labels, "{f}");
    }

    #[test]
    fn doc_samples_parse_to_documented_values() {
        for w in doc_samples() {
            let data = fixture(w.file);
            let out = WafParser::parse_all(&data);
            assert_eq!(out.hits.len(), 1, "{}", w.file);
            check(&out.hits[0], &w);
        }
    }

    #[test]
    fn ndjson_plain_and_gzip_hold_the_doc_samples_in_order() {
        let plain = fixture("waf/waf_ndjson_sample.log");
        let gz = fixture("waf/waf_ndjson_sample.log.gz");
        assert_eq!(plain, gz);
        let out = WafParser::parse_all(&gz);
        let wants = doc_samples();
        assert_eq!(out.hits.len(), wants.len());
        for (hit, w) in out.hits.iter().zip(&wants) {
            check(hit, w);
        }
    }

    #[test]
    fn rejected_samples_name_json() {
        let verbatim =
            fixture("waf/awsdocs/07_rate_based_rule_1_log_entry_VERBATIM_INVALID_JSON.txt");
        assert_eq!(WafParser::failing_field(lines(&verbatim)[0]), "json");
        let concatenated = fixture("waf/waf_concatenated_no_newlines_defensive.log");
        assert_eq!(lines(&concatenated).len(), 1);
        assert_eq!(WafParser::failing_field(&concatenated), "json");
    }

    /// The 2018 sample is pretty-printed: line by line it is fragments
    /// (counted in the coverage test); handed over whole it is one record.
    #[test]
    fn pretty_printed_record() {
        let data = fixture("waf/dpetzold/waf_log.json");
        let hit = WafParser::hit(&data);
        check(
            &hit,
            &Want {
                file: "waf/dpetzold/waf_log.json",
                time_ms: epoch_ms("2018-08-08T00:44:30.589Z"),
                peer: "192.10.23.23",
                status: 0,
                method: "GET",
                path: "REDACTED?usernam=abc",
                host: "127.0.0.1",
                user_agent: "curl/7.51.2",
                forwarded_for: None,
                action: "ALLOW",
                rule: "Default_Action",
                labels: &[],
                blocked: false,
            },
        );
    }

    #[test]
    fn strings_without_escapes_are_borrowed() {
        let data = fixture(
            "waf/awsdocs/01_log_output_for_a_rule_that_triggered_on_sqli_detection_termi.json",
        );
        let hit = WafParser::hit(lines(&data)[0]);
        assert!(matches!(hit.path, Cow::Borrowed(_)));
        assert!(matches!(hit.user_agent, Cow::Borrowed(_)));
        assert!(matches!(hit.host, Cow::Borrowed(_)));
        assert!(matches!(hit.method, Cow::Borrowed(_)));
        let waf = hit.waf.unwrap();
        assert!(matches!(waf.action, Cow::Borrowed(_)));
        assert!(matches!(waf.labels[0], Cow::Borrowed(_)));

        let line = br#"{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1","headers":[{"name":"User-Agent","value":"say \"hi\"\u00e9"}],"uri":"/a\/b"}}"#;
        let hit = WafParser::hit(line);
        assert_eq!(hit.user_agent, "say \"hi\"\u{e9}");
        assert!(matches!(hit.user_agent, Cow::Owned(_)));
        assert_eq!(hit.path, "/a/b");
    }

    fn line_with(action: &str, extra: &str) -> String {
        format!(
            r#"{{"timestamp":1700000000000,"action":"{action}","terminatingRuleId":"r"{extra},"httpRequest":{{"clientIp":"192.0.2.7","uri":"/x","args":"","httpMethod":"GET"}}}}"#
        )
    }

    #[test]
    fn status_and_blocked_from_the_action() {
        let cases = [
            ("BLOCK", "", 403, true),
            ("CAPTCHA", "", 405, true),
            ("CHALLENGE", "", 202, true),
            ("ALLOW", "", 0, false),
            ("COUNT", "", 0, false),
            ("BLOCK", r#","responseCodeSent":null"#, 403, true),
            ("BLOCK", r#","responseCodeSent":429"#, 429, true),
            ("CHALLENGE", r#","responseCodeSent":202"#, 202, true),
            ("ALLOW", r#","responseCodeSent":200"#, 200, false),
        ];
        for (action, extra, status, blocked) in cases {
            let line = line_with(action, extra);
            let hit = WafParser::hit(&line);
            assert_eq!(
                (hit.status, hit.blocked_by_waf),
                (status, blocked),
                "{line}"
            );
            assert_eq!(hit.time_ms, epoch_ms("2023-11-14T22:13:20Z"));
        }
    }

    #[test]
    fn headers_by_case_insensitive_name_and_host_fallbacks() {
        let line = br#"{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"2001:db8::7","headers":[{"name":"x-forwarded-for","value":"203.0.113.9, 10.0.0.1"},{"name":"USER-AGENT","value":"ua1"},{"name":"user-agent","value":"ua2"},{"name":"X-Forwarded-For","value":"198.51.100.3"},{"name":"odd"},{"value":"no name"},null],"uri":"/p","args":"a=1&b=2","httpMethod":"POST","host":"fallback.example"}}"#;
        let hit = WafParser::hit(line);
        assert_eq!(hit.peer, ip("2001:db8::7"));
        assert_eq!(
            hit.forwarded_for.as_deref(),
            Some("203.0.113.9, 10.0.0.1, 198.51.100.3")
        );
        assert_eq!(hit.user_agent, "ua1");
        assert_eq!(hit.host, "fallback.example");
        assert_eq!(hit.path, "/p?a=1&b=2");
        assert_eq!(hit.method, "POST");
        assert!(hit.waf.unwrap().labels.is_empty());

        let line = br#"{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1","headers":[{"name":"Host","value":"[2001:db8::1]:8443"}],"host":"other"}}"#;
        assert_eq!(WafParser::hit(line).host, "[2001:db8::1]");
        let line = br#"{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1","headers":null,"host":"h.example:443"}}"#;
        assert_eq!(WafParser::hit(line).host, "h.example");
    }

    #[test]
    fn unknown_and_newer_keys_are_ignored() {
        let line = br##"{"timestamp":1,"formatVersion":1,"ja3Fingerprint":"abc","ja4Fingerprint":"t13d","clientAsn":16509,"cfDistributionTenantId":null,"rateBasedRuleList":[{"evaluationWindowSec":"120","customValues":[{"key":"HEADER"}]}],"action":"BLOCK","labels":[{"name":"awswaf:managed:aws:bot-control:bot:verified"},{"name":"a"}],"httpRequest":{"clientIp":"192.0.2.1","country":"-","fragment":"#x","scheme":"https","headers":[]}}"##;
        let hit = WafParser::hit(line);
        let waf = hit.waf.unwrap();
        assert_eq!(
            waf.labels,
            ["awswaf:managed:aws:bot-control:bot:verified", "a"]
        );
        assert_eq!(waf.rule, "");
        assert_eq!(hit.path, "");
    }

    #[test]
    fn errors_name_the_field() {
        let field = WafParser::failing_field;
        assert_eq!(field(b"not json"), "json");
        assert_eq!(field(b"{\"timestamp\":1"), "json");
        assert_eq!(field(b"[]"), "json");
        assert_eq!(field(b"{} {}"), "json");
        assert_eq!(field(b"{}"), "timestamp");
        assert_eq!(field(br#"{"timestamp":null}"#), "timestamp");
        assert_eq!(field(br#"{"timestamp":"yesterday"}"#), "timestamp");
        assert_eq!(field(br#"{"timestamp":1.5}"#), "timestamp");
        assert_eq!(
            field(br#"{"timestamp":1,"action":"BLOCK"}"#),
            "httpRequest.clientIp"
        );
        let ip_case = |v: &str| {
            format!(r#"{{"timestamp":1,"action":"BLOCK","httpRequest":{{"clientIp":{v}}}}}"#)
        };
        for bad in [r#""unknown""#, "null", "42", r#""""#, "[]"] {
            assert_eq!(
                field(ip_case(bad).as_bytes()),
                "httpRequest.clientIp",
                "{bad}"
            );
        }
        assert_eq!(
            field(br#"{"timestamp":1,"httpRequest":{"clientIp":"192.0.2.1"}}"#),
            "action"
        );
        assert_eq!(
            field(line_with("BLOCK", r#","responseCodeSent":"x""#).as_bytes()),
            "responseCodeSent"
        );
        assert_eq!(
            field(line_with("BLOCK", r#","responseCodeSent":70000"#).as_bytes()),
            "responseCodeSent"
        );
        // Numeric strings and integral floats are accepted as timestamps.
        let ok = br#"{"timestamp":"1576280412771","action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1"}}"#;
        assert_eq!(
            WafParser::hit(ok).time_ms,
            epoch_ms("2019-12-13T23:40:12.771Z")
        );
        let ok = br#"{"timestamp":1.576280412771e12,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1"}}"#;
        assert_eq!(WafParser::hit(ok).time_ms, 1_576_280_412_771);
    }

    /// A WAF record of an allowed request with these `headers[]` entries.
    fn with_headers(headers: &str) -> String {
        format!(
            r#"{{"timestamp":1,"action":"ALLOW","httpRequest":{{"clientIp":"192.0.2.1","headers":[{headers}],"uri":"/"}}}}"#
        )
    }

    fn by_header(name: &str) -> UserSource {
        UserSource {
            header: Some(name.into()),
            cookie: None,
        }
    }

    fn by_cookie(name: &str) -> UserSource {
        UserSource {
            header: None,
            cookie: Some(name.into()),
        }
    }

    /// The user a parser with `source` reads from `line`.
    fn user_of(source: &UserSource, line: &str) -> Option<String> {
        let mut p = WafParser::default();
        p.set_user_source(source);
        let hit = p.parse(line.as_bytes()).unwrap().unwrap();
        hit.user.map(Cow::into_owned)
    }

    #[test]
    fn user_from_a_header() {
        let src = by_header("X-Api-Key");
        let key = |v: &str| format!(r#"{{"name":"x-api-key","value":"{v}"}}"#);
        let ua = r#"{"name":"User-Agent","value":"curl/8"}"#;
        let line = with_headers(&format!("{ua},{}", key("k-123")));
        assert_eq!(user_of(&src, &line).as_deref(), Some("k-123"));
        // The name in any case, in the source or in the log.
        assert_eq!(
            user_of(&by_header("X-API-KEY"), &line).as_deref(),
            Some("k-123")
        );
        let upper = line.replace("x-api-key", "X-Api-KEY");
        assert_eq!(user_of(&src, &upper).as_deref(), Some("k-123"));
        // Absent, or another header: nobody.
        assert_eq!(user_of(&src, &with_headers(ua)), None);
        assert_eq!(user_of(&by_header("X-Api-Key-2"), &line), None);
        assert_eq!(user_of(&src, &with_headers("")), None);
        let no_headers =
            r#"{"timestamp":1,"action":"ALLOW","httpRequest":{"clientIp":"192.0.2.1"}}"#;
        assert_eq!(user_of(&src, no_headers), None);
        // The first of two; an empty or `-` value is nobody.
        let two = with_headers(&format!("{},{}", key("first"), key("second")));
        assert_eq!(user_of(&src, &two).as_deref(), Some("first"));
        assert_eq!(user_of(&src, &with_headers(&key(""))), None);
        assert_eq!(user_of(&src, &with_headers(&key("-"))), None);
        // A header fail2waf reads anyway can be the source too, and stays read.
        let mut p = WafParser::default();
        p.set_user_source(&by_header("user-agent"));
        let hit = p.parse(line.as_bytes()).unwrap().unwrap();
        assert_eq!(
            (hit.user.as_deref(), &*hit.user_agent),
            (Some("curl/8"), "curl/8")
        );
        // Borrowed from the line; unescaped (and so owned) where it must be.
        let hit = p.parse(line.as_bytes()).unwrap().unwrap();
        assert!(matches!(hit.user, Some(Cow::Borrowed(_))));
        let escaped = with_headers(&key(r"a\u00e9\\b"));
        assert_eq!(user_of(&src, &escaped).as_deref(), Some("a\u{e9}\\b"));
    }

    #[test]
    fn user_from_a_cookie() {
        let src = by_cookie("session");
        let cookie = |v: &str| format!(r#"{{"name":"cookie","value":"{v}"}}"#);
        let line = with_headers(&cookie("a=1; session=xyz; b=2"));
        assert_eq!(user_of(&src, &line).as_deref(), Some("xyz"));
        // Spaces trimmed; a name that only ends in the cookie's is another.
        let line = with_headers(&cookie("xsession=no;session = s 1 ;b=2"));
        assert_eq!(user_of(&src, &line).as_deref(), Some("s 1"));
        // The cookie name is exact; the header name is not.
        assert_eq!(user_of(&by_cookie("Session"), &line), None);
        let line = with_headers(r#"{"name":"COOKIE","value":"session=up"}"#);
        assert_eq!(user_of(&src, &line).as_deref(), Some("up"));
        // Several Cookie headers (HTTP/2 sends one per cookie): the first
        // cookie of the name wins.
        let line = with_headers(&format!(
            "{},{},{}",
            cookie("a=1"),
            cookie("session=s2"),
            cookie("session=s3")
        ));
        assert_eq!(user_of(&src, &line).as_deref(), Some("s2"));
        // Not there, or no Cookie header at all: nobody.
        assert_eq!(user_of(&src, &with_headers(&cookie("a=1; b=2"))), None);
        assert_eq!(user_of(&src, &with_headers(&cookie("session"))), None);
        assert_eq!(user_of(&src, &with_headers(&cookie("session=; a=1"))), None);
        let other = r#"{"name":"session","value":"not a cookie"}"#;
        assert_eq!(user_of(&src, &with_headers(other)), None);
        // AWS's own sample: the CAPTCHA token cookie, `=` padding and all.
        let data = fixture(
            "waf/awsdocs/05_log_output_for_a_captcha_rule_against_a_web_request_with_a_v.json",
        );
        let line = String::from_utf8(lines(&data)[0].to_vec()).unwrap();
        let token = user_of(&by_cookie("aws-waf-token"), &line).unwrap();
        assert!(
            token.starts_with("51c71352-41f5-4f6d-b676-c24907bdf819:"),
            "{token}"
        );
        assert!(
            token.ends_with("PsQyoQuDCrtoY/TvQyMTXIXzGPDC/rKBbg=="),
            "{token}"
        );
    }

    #[test]
    fn header_wins_over_cookie_and_sources_can_be_unset() {
        let both = UserSource {
            header: Some("x-user".into()),
            cookie: Some("session".into()),
        };
        let user = r#"{"name":"X-User","value":"alice"}"#;
        let cookie = r#"{"name":"Cookie","value":"session=bob"}"#;
        let line = with_headers(&format!("{cookie},{user}"));
        assert_eq!(user_of(&both, &line).as_deref(), Some("alice"));
        assert_eq!(
            user_of(&both, &with_headers(cookie)).as_deref(),
            Some("bob")
        );
        // No source, or one naming nothing: no user, whatever the headers.
        assert_eq!(user_of(&UserSource::default(), &line), None);
        let empty = UserSource {
            header: Some(String::new()),
            cookie: Some(String::new()),
        };
        assert_eq!(user_of(&empty, &line), None);
        let mut p = WafParser::default();
        p.set_user_source(&both);
        p.set_user_source(&UserSource::default());
        assert_eq!(p.parse(line.as_bytes()).unwrap().unwrap().user, None);
    }

    /// A header WAF's logging configuration redacts is logged as
    /// `REDACTED`. The parser hands it on unchanged (the engine counts no
    /// user for it); a redacted Cookie header holds no cookie.
    #[test]
    fn redacted_user_is_handed_on_unchanged() {
        let line = with_headers(r#"{"name":"x-api-key","value":"REDACTED"}"#);
        assert_eq!(
            user_of(&by_header("x-api-key"), &line).as_deref(),
            Some("REDACTED")
        );
        let line = with_headers(r#"{"name":"cookie","value":"REDACTED"}"#);
        assert_eq!(user_of(&by_cookie("session"), &line), None);
    }

    /// With a user source set, every other field is read as before.
    #[test]
    fn user_source_changes_nothing_else() {
        let mut p = WafParser::default();
        p.set_user_source(&UserSource {
            header: Some("x-api-key".into()),
            cookie: Some("aws-waf-token".into()),
        });
        for w in doc_samples() {
            let data = fixture(w.file);
            let mut hit = p.parse(lines(&data)[0]).unwrap().unwrap();
            assert_eq!(hit.user.is_some(), w.file.contains("/05_"), "{}", w.file);
            hit.user = None;
            check(&hit, &w);
            assert_eq!(hit, WafParser::hit(lines(&data)[0]), "{}", w.file);
        }
        let mut field = |line: &[u8]| p.parse(line).unwrap_err().field;
        assert_eq!(field(b"not json"), "json");
        assert_eq!(field(b"{}"), "timestamp");
        assert_eq!(p.parse(b" "), Ok(None));
    }

    #[test]
    fn blank_lines_are_skipped() {
        assert_eq!(WafParser::parse_line(b""), Ok(None));
        assert_eq!(WafParser::parse_line(b"  \t "), Ok(None));
    }

    #[test]
    fn multi_megabyte_line() {
        let ua = "x".repeat(6 << 20);
        let line = format!(
            r#"{{"timestamp":1,"action":"BLOCK","terminatingRuleMatchDetails":[{{"matchedData":["{ua}"]}}],"httpRequest":{{"clientIp":"192.0.2.1","headers":[{{"name":"User-Agent","value":"{ua}"}}]}}}}"#
        );
        let hit = WafParser::hit(&line);
        assert_eq!(hit.user_agent.len(), 6 << 20);
        assert!(matches!(hit.user_agent, Cow::Borrowed(_)));
    }

    #[test]
    fn no_panic_on_prefixes_and_mutations() {
        let mut samples: Vec<Vec<u8>> = doc_samples()
            .iter()
            .map(|w| lines(&fixture(w.file))[0].to_vec())
            .collect();
        for line in &samples {
            // Every strict prefix of one object is incomplete JSON.
            for end in 0..line.len() {
                match WafParser::parse_line(&line[..end]) {
                    Ok(None) => assert!(line[..end].iter().all(u8::is_ascii_whitespace)),
                    Ok(Some(_)) => panic!("prefix {end} parsed"),
                    Err(e) => assert_eq!(e.field, "json"),
                }
            }
        }
        // The concatenation's prefixes include whole objects: just no panic.
        let concatenated = fixture("waf/waf_concatenated_no_newlines_defensive.log");
        let whole = (0..=concatenated.len())
            .filter(|&end| matches!(WafParser::parse_line(&concatenated[..end]), Ok(Some(_))))
            .count();
        assert_eq!(whole, 1, "only the first object alone is a record");
        samples.push(concatenated);
        // With a user source too: the headers are then kept and searched.
        let mut with_user = WafParser::default();
        with_user.set_user_source(&UserSource {
            header: Some("x-forwarded-proto".into()),
            cookie: Some("aws-waf-token".into()),
        });
        for line in &samples {
            let mut m = line.clone();
            for i in 0..m.len() {
                for b in [0u8, 0xff, 0xc3, b'"', b'\\', b'{', b'9', b';', b'='] {
                    let orig = m[i];
                    m[i] = b;
                    let _ = WafParser::parse_line(&m);
                    let _ = with_user.parse(&m);
                    m[i] = orig;
                }
            }
        }
        // Deep nesting in skipped or loosely read values costs no stack.
        let nest = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let deep = format!("{{\"a\":{nest}}}");
        assert_eq!(WafParser::failing_field(deep.as_bytes()), "timestamp");
        let deep = format!("{{\"timestamp\":{nest}}}");
        assert_eq!(WafParser::failing_field(deep.as_bytes()), "timestamp");
        let deep = format!(
            "{{\"timestamp\":1,\"action\":\"BLOCK\",\"httpRequest\":{{\"clientIp\":\"192.0.2.1\",\"headers\":[{nest}]}}}}"
        );
        let _ = WafParser::parse_line(deep.as_bytes());
    }
}
