//! `json` formats: application access logs written as one JSON object per
//! line, as Fluent Bit or Firehose ship them from EKS or ECS to S3.
//!
//! A format names, for each field fail2waf reads, where its value is in
//! the object ([`JsonFields`]): a top-level key (`remote_addr`), or a
//! dotted path into nested objects (`http.request.method`). At each object
//! a key equal to the whole rest of the path wins (`user.id` finds a key
//! literally named `user.id` before `{"user": {"id": …}}`); otherwise the
//! first segment is a key to descend into. A string on the way that holds
//! a JSON object is parsed and descended into: Fluent Bit keeps the
//! application's own JSON line as a string in `log`, so `log.remote_addr`
//! reads `{"log": "{\"remote_addr\": \"192.0.2.1\"}"}`.
//!
//! | field | | becomes |
//! |---|---|---|
//! | `ip` | required | [`Hit::peer`] (IPv4 or IPv6, an optional port or brackets allowed) |
//! | `time` | required | [`Hit::time_ms`], read with the spec's [`TimeFormat`] |
//! | `status` | required | [`Hit::status`]: a number or a string of three digits, 100–599, or 0 |
//! | `method` | optional | [`Hit::method`]; `-` when absent |
//! | `path` | optional | [`Hit::path`], query included (a URL gives the host too); `-` if absent |
//! | `host` | optional | [`Hit::host`]; wins over the URL's authority |
//! | `user_agent` | optional | [`Hit::user_agent`] |
//! | `xff` | optional | [`Hit::forwarded_for`] |
//! | `user` | optional | [`Hit::user`], the application user (account, API key, session) |
//!
//! **Values.** A field is read from a string or a number (its decimal
//! text: `"user_id": 42` is the user `42`, `"ts": 1700000000.123` an
//! `epoch` time); `null`, `true`, an array or
//! an object count as absent for the optional fields and as invalid for
//! the required ones. An empty string or `-` is empty (`host`,
//! `user_agent`) or absent (`xff`, `user`; `method`, `path` become `-`).
//! When a key appears twice in one object, the first counts.
//!
//! Only the keys on a configured path are read; everything else is
//! skipped without being built, and strings are borrowed from the line
//! unless they hold JSON escapes (or come from inside a string).

use super::pattern::{parse_status, split_path, TimeFormat};
use super::text::parse_ip;
use super::{LineParser, ParseError, ParseResult};
use crate::hit::Hit;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Where each field of a `json` format is in a line's object: a key, or a
/// dotted path (`http.request.method`; see the [module](self) docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFields {
    /// The client address (`remote_addr`, `client.ip`); may carry a port.
    pub ip: String,
    /// The request's time, read with the format's time format.
    pub time: String,
    /// The HTTP status sent.
    pub status: String,
    /// The HTTP method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The path, with its query (`request_uri`), or an absolute URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The `Host` the request was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The `User-Agent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The `X-Forwarded-For` value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xff: Option<String>,
    /// The application user (account, API key, session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Why a `json` format cannot be built ([`JsonSpec::new`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonSpecError {
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
    /// A field's path is empty.
    #[error("format {name:?}: the path of field {field:?} is empty")]
    EmptyPath {
        /// The format.
        name: String,
        /// The field (`ip`, `user_agent`, ...).
        field: &'static str,
    },
    /// A field's path has an empty segment (`a..b`, `.a`, `a.`).
    #[error(
        "format {name:?}: the path {path:?} of field {field:?} has an empty \
         segment (a leading, trailing or doubled `.`)"
    )]
    EmptySegment {
        /// The format.
        name: String,
        /// The field (`ip`, `user_agent`, ...).
        field: &'static str,
        /// The path as given.
        path: String,
    },
}

/// How many fields there are.
const FIELDS: usize = 9;
/// The fields' names, by index (the order of [`JsonFields`]), as
/// configured and in errors.
const NAMES: [&str; FIELDS] = [
    "ip",
    "time",
    "status",
    "method",
    "path",
    "host",
    "user_agent",
    "xff",
    "user",
];

/// A set of fields, one bit per index.
type Mask = u16;

/// One field's path, split once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldPath {
    /// The segments (`http`, `request`, `method`).
    segments: Vec<String>,
    /// For each depth `d`, the segments from `d` on, joined with `.`: the
    /// key that, at that depth, holds the value itself.
    rests: Vec<String>,
}

impl FieldPath {
    fn new(path: &str) -> Option<FieldPath> {
        let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return None;
        }
        let rests = (0..segments.len())
            .map(|d| segments[d..].join("."))
            .collect();
        Some(FieldPath { segments, rests })
    }
}

/// A `json` format: a name, where its fields are, and how its time is
/// written. Made by [`JsonSpec::new`]; read with [`JsonParser`]. Cheap to
/// clone (one per file read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSpec(Arc<SpecInner>);

/// What a [`JsonSpec`] holds.
#[derive(Debug, PartialEq, Eq)]
struct SpecInner {
    name: String,
    fields: JsonFields,
    time_format: TimeFormat,
    /// The fields' paths, by index; `None` for an optional field not set.
    paths: [Option<FieldPath>; FIELDS],
}

impl JsonSpec {
    /// A format named `name` reading `fields`, whose time is written as
    /// `time_format`: `clf`, `iso8601`, `epoch` or `epoch_ms`, as for the
    /// regex formats. The error names what is wrong: an empty name, an
    /// unknown time format, an empty path or an empty path segment.
    pub fn new(
        name: &str,
        fields: &JsonFields,
        time_format: &str,
    ) -> Result<JsonSpec, JsonSpecError> {
        if name.trim().is_empty() {
            return Err(JsonSpecError::EmptyName);
        }
        let time = TimeFormat::from_name(time_format).ok_or_else(|| JsonSpecError::TimeFormat {
            name: name.to_string(),
            time_format: time_format.to_string(),
        })?;
        let given: [Option<&String>; FIELDS] = [
            Some(&fields.ip),
            Some(&fields.time),
            Some(&fields.status),
            fields.method.as_ref(),
            fields.path.as_ref(),
            fields.host.as_ref(),
            fields.user_agent.as_ref(),
            fields.xff.as_ref(),
            fields.user.as_ref(),
        ];
        let mut paths: [Option<FieldPath>; FIELDS] = Default::default();
        for (i, path) in given.into_iter().enumerate() {
            let Some(path) = path else { continue };
            if path.is_empty() {
                return Err(JsonSpecError::EmptyPath {
                    name: name.to_string(),
                    field: NAMES[i],
                });
            }
            paths[i] = Some(
                FieldPath::new(path).ok_or_else(|| JsonSpecError::EmptySegment {
                    name: name.to_string(),
                    field: NAMES[i],
                    path: path.clone(),
                })?,
            );
        }
        Ok(JsonSpec(Arc::new(SpecInner {
            name: name.to_string(),
            fields: fields.clone(),
            time_format: time,
            paths,
        })))
    }

    /// The format's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The field paths, as given.
    pub fn fields(&self) -> &JsonFields {
        &self.0.fields
    }

    /// How the time field is written.
    pub fn time_format(&self) -> TimeFormat {
        self.0.time_format
    }

    /// Every field that has a path.
    fn wanted(&self) -> Mask {
        (0..FIELDS)
            .filter(|&i| self.0.paths[i].is_some())
            .fold(0, |m, i| m | 1 << i)
    }
}

/// Parser for a `json` format.
///
/// A blank line is `Ok(None)`. A line that is not one JSON object
/// (invalid JSON, several objects, invalid UTF-8 in a string that is
/// read) fails as `json`; a missing or invalid `ip`, `time` or `status`
/// fails under that name (the field's, not its path's). The optional
/// fields never fail a line. It keeps no state between lines.
#[derive(Debug)]
pub struct JsonParser {
    spec: JsonSpec,
    wanted: Mask,
}

impl JsonParser {
    /// A parser for `spec`.
    pub fn new(spec: JsonSpec) -> Self {
        let wanted = spec.wanted();
        JsonParser { spec, wanted }
    }
}

impl LineParser for JsonParser {
    fn parse<'a>(&mut self, line: &'a [u8]) -> ParseResult<'a> {
        match line.iter().find(|b| !b.is_ascii_whitespace()) {
            None => return Ok(None),
            Some(b'{') => {}
            Some(_) => return Err(ParseError::new("json", "not a JSON object")),
        }
        let mut found = Found::default();
        let mut de = serde_json::Deserializer::from_slice(line);
        Level::<Borrowed> {
            paths: &self.spec.0.paths,
            found: &mut found,
            depth: 0,
            wanted: self.wanted,
            lift: PhantomData,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|_| ParseError::new("json", "not a JSON object"))?;
        let [ip, time, status, method, path, host, user_agent, xff, user] =
            found.0.map(|slot| slot.map(|(_, v)| v));

        let peer = match ip {
            None | Some(Value::Null) => return Err(ParseError::new("ip", "missing")),
            Some(Value::Str(s)) => parse_ip(&s),
            Some(_) => None,
        }
        .ok_or(ParseError::new("ip", "not an IP address"))?;
        let time_ms = match &time {
            None | Some(Value::Null) => return Err(ParseError::new("time", "missing")),
            Some(Value::Str(s)) => self.spec.0.time_format.parse(s.as_bytes()),
            Some(Value::Num(n)) => self.spec.0.time_format.parse(n.text()),
            Some(Value::Other) => Err("not a string or a number"),
        }
        .map_err(|reason| ParseError::new("time", reason))?;
        let status = match &status {
            None | Some(Value::Null) => return Err(ParseError::new("status", "missing")),
            Some(Value::Str(s)) => parse_status(s.as_bytes()),
            Some(Value::Num(n)) => std::str::from_utf8(n.text())
                .ok()
                .and_then(|t| t.parse::<u16>().ok())
                .filter(|&s| s == 0 || (100..=599).contains(&s)),
            Some(Value::Other) => None,
        }
        .ok_or(ParseError::new("status", "not an HTTP status"))?;

        let mut hit = Hit::new(time_ms, peer, status);
        hit.method = text(method)
            .filter(|m| !m.is_empty())
            .unwrap_or(Cow::Borrowed("-"));
        let mut url_host = Cow::Borrowed("");
        hit.path = match text(path).filter(|p| is_present(p)) {
            Some(p) => {
                let (host, path) = split_path(p);
                url_host = host;
                path
            }
            None => Cow::Borrowed("-"),
        };
        hit.host = text(host).filter(|h| is_present(h)).unwrap_or(url_host);
        hit.user_agent = text(user_agent)
            .filter(|u| is_present(u))
            .unwrap_or_default();
        hit.forwarded_for = text(xff).filter(|x| is_present(x));
        hit.user = text(user).filter(|u| is_present(u));
        Ok(Some(hit))
    }
}

/// Not empty and not `-`.
fn is_present(s: &str) -> bool {
    !s.is_empty() && s != "-"
}

/// The text of a string or a number.
fn text(v: Option<Value<'_>>) -> Option<Cow<'_, str>> {
    match v? {
        Value::Str(s) => Some(s),
        Value::Num(n) => Some(Cow::Owned(String::from_utf8_lossy(n.text()).into_owned())),
        Value::Null | Value::Other => None,
    }
}

/// A field's value as found in a line.
#[derive(Debug, Clone)]
enum Value<'a> {
    /// A string, borrowed from the line when it has no escapes.
    Str(Cow<'a, str>),
    /// A number, as its decimal text.
    Num(NumText),
    /// `null`.
    Null,
    /// `true`, `false`, an array or an object (or a number too long to
    /// be any field).
    Other,
}

/// The decimal text of a JSON number (Rust's `Display`, which never
/// writes an exponent), kept without allocating.
#[derive(Debug, Clone, Copy)]
struct NumText {
    buf: [u8; 32],
    len: usize,
}

impl NumText {
    /// The text of `n`; `None` if it is longer than 32 bytes (`1e100`).
    fn of(n: impl fmt::Display) -> Option<NumText> {
        let mut t = NumText {
            buf: [0; 32],
            len: 0,
        };
        fmt::write(&mut t, format_args!("{n}")).ok()?;
        Some(t)
    }

    fn text(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl fmt::Write for NumText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// What has been found of each field, with the depth of the key it was
/// found under: the shallowest wins (a key holding the whole rest of the
/// path beats descending), and of two at one depth the first.
#[derive(Default)]
struct Found<'a>([Option<(usize, Value<'a>)>; FIELDS]);

impl<'a> Found<'a> {
    fn put(&mut self, field: usize, depth: usize, value: Value<'a>) {
        let slot = &mut self.0[field];
        if slot.as_ref().is_none_or(|&(d, _)| depth < d) {
            *slot = Some((depth, value));
        }
    }

    /// Every value of `fields` in `other` that beats the one here.
    fn merge(&mut self, other: Found<'a>, fields: Mask) {
        for (i, slot) in other.0.into_iter().enumerate() {
            if let Some((depth, value)) = slot.filter(|_| fields & 1 << i != 0) {
                self.put(i, depth, value);
            }
        }
    }
}

/// How a string the deserializer lends for `'de` becomes one of the hit's
/// (`'a`): borrowed when it is from the line, copied when it is from a
/// string parsed inside the line.
trait Lift<'de, 'a> {
    fn lift(s: &'de str) -> Cow<'a, str>;
}

/// Strings borrowed from the line.
enum Borrowed {}

impl<'de: 'a, 'a> Lift<'de, 'a> for Borrowed {
    fn lift(s: &'de str) -> Cow<'a, str> {
        Cow::Borrowed(s)
    }
}

/// Strings copied out of a string that held JSON.
enum Copied {}

impl<'a> Lift<'_, 'a> for Copied {
    fn lift(s: &str) -> Cow<'a, str> {
        Cow::Owned(s.to_owned())
    }
}

/// An object at `depth` (the number of path segments used to reach it),
/// where the `wanted` fields are looked for.
struct Level<'p, 'f, 'a, L> {
    paths: &'p [Option<FieldPath>; FIELDS],
    found: &'f mut Found<'a>,
    depth: usize,
    wanted: Mask,
    lift: PhantomData<L>,
}

impl<'de, 'a, L: Lift<'de, 'a>> DeserializeSeed<'de> for Level<'_, '_, 'a, L> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'a, L: Lift<'de, 'a>> Visitor<'de> for Level<'_, '_, 'a, L> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Level {
            paths,
            found,
            depth,
            wanted,
            ..
        } = self;
        while let Some((leaf, down)) = map.next_key_seed(Key {
            paths,
            depth,
            wanted,
        })? {
            if leaf | down == 0 {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            map.next_value_seed(Field::<L> {
                paths,
                found: &mut *found,
                depth,
                leaf,
                down,
                lift: PhantomData,
            })?;
        }
        Ok(())
    }
}

/// A key of an object at `depth`, matched against the `wanted` fields'
/// paths: the fields whose value it holds (`leaf`), and those whose path
/// goes on inside it (`down`).
struct Key<'p> {
    paths: &'p [Option<FieldPath>; FIELDS],
    depth: usize,
    wanted: Mask,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = (Mask, Mask);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(Mask, Mask), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = (Mask, Mask);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(Mask, Mask), E> {
        let (mut leaf, mut down) = (0, 0);
        for (i, path) in self.paths.iter().enumerate() {
            let Some(path) = path.as_ref().filter(|_| self.wanted & 1 << i != 0) else {
                continue;
            };
            let (Some(rest), Some(segment)) =
                (path.rests.get(self.depth), path.segments.get(self.depth))
            else {
                continue;
            };
            if key == rest {
                leaf |= 1 << i;
            } else if key == segment {
                down |= 1 << i;
            }
        }
        Ok((leaf, down))
    }
}

/// The value of a key that holds the `leaf` fields' values, or that the
/// `down` fields' paths go on inside.
struct Field<'p, 'f, 'a, L> {
    paths: &'p [Option<FieldPath>; FIELDS],
    found: &'f mut Found<'a>,
    depth: usize,
    leaf: Mask,
    down: Mask,
    lift: PhantomData<L>,
}

impl<'a, L> Field<'_, '_, 'a, L> {
    /// `value` for every `leaf` field.
    fn put(&mut self, value: Value<'a>) {
        for i in (0..FIELDS).filter(|i| self.leaf & 1 << i != 0) {
            self.found.put(i, self.depth, value.clone());
        }
    }

    /// A string on the `down` fields' way: if it holds a JSON object, look
    /// for them in it. A string that is not one JSON object holds nothing.
    fn descend_into(&mut self, s: &str) {
        if self.down == 0 || !s.trim_start().starts_with('{') {
            return;
        }
        let mut inner = Found::default();
        let mut de = serde_json::Deserializer::from_str(s);
        let parsed = Level::<Copied> {
            paths: self.paths,
            found: &mut inner,
            depth: self.depth + 1,
            wanted: self.down,
            lift: PhantomData,
        }
        .deserialize(&mut de)
        .and_then(|()| de.end());
        if parsed.is_ok() {
            self.found.merge(inner, self.down);
        }
    }
}

impl<'de, 'a, L: Lift<'de, 'a>> DeserializeSeed<'de> for Field<'_, '_, 'a, L> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'a, L: Lift<'de, 'a>> Visitor<'de> for Field<'_, '_, 'a, L> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(mut self, v: &'de str) -> Result<(), E> {
        self.put(Value::Str(L::lift(v)));
        self.descend_into(v);
        Ok(())
    }

    fn visit_str<E: de::Error>(mut self, v: &str) -> Result<(), E> {
        if self.leaf != 0 {
            self.put(Value::Str(Cow::Owned(v.to_owned())));
        }
        self.descend_into(v);
        Ok(())
    }

    fn visit_u64<E: de::Error>(mut self, v: u64) -> Result<(), E> {
        self.put(NumText::of(v).map_or(Value::Other, Value::Num));
        Ok(())
    }

    fn visit_i64<E: de::Error>(mut self, v: i64) -> Result<(), E> {
        self.put(NumText::of(v).map_or(Value::Other, Value::Num));
        Ok(())
    }

    fn visit_f64<E: de::Error>(mut self, v: f64) -> Result<(), E> {
        self.put(NumText::of(v).map_or(Value::Other, Value::Num));
        Ok(())
    }

    fn visit_bool<E: de::Error>(mut self, _: bool) -> Result<(), E> {
        self.put(Value::Other);
        Ok(())
    }

    fn visit_unit<E: de::Error>(mut self) -> Result<(), E> {
        self.put(Value::Null);
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        self.put(Value::Other);
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<(), A::Error> {
        self.put(Value::Other);
        Level::<L> {
            paths: self.paths,
            found: self.found,
            depth: self.depth + 1,
            wanted: self.down,
            lift: PhantomData,
        }
        .visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::{epoch_ms, ip};
    use crate::formats::Format;

    /// Fields with `ip`, `time` and `status` only.
    fn fields(ip: &str, time: &str, status: &str) -> JsonFields {
        JsonFields {
            ip: ip.into(),
            time: time.into(),
            status: status.into(),
            method: None,
            path: None,
            host: None,
            user_agent: None,
            xff: None,
            user: None,
        }
    }

    /// Every field under `prefix` (`"log."`), named as the sample apps
    /// name them.
    fn app_fields(prefix: &str) -> JsonFields {
        let at = |key: &str| format!("{prefix}{key}");
        JsonFields {
            method: Some(at("method")),
            path: Some(at("path")),
            host: Some(at("host")),
            user_agent: Some(at("ua")),
            xff: Some(at("xff")),
            user: Some(at("user")),
            ..fields(&at("remote_addr"), &at("ts"), &at("status"))
        }
    }

    fn parser(fields: &JsonFields, time_format: &str) -> JsonParser {
        JsonParser::new(JsonSpec::new("app", fields, time_format).unwrap())
    }

    /// The hit `line` holds; panics, naming the line, if there is none.
    fn hit<'a>(p: &mut JsonParser, line: &'a str) -> Hit<'a> {
        p.parse(line.as_bytes())
            .unwrap_or_else(|e| panic!("{e}: {line}"))
            .unwrap_or_else(|| panic!("skipped: {line}"))
    }

    /// The error `line` is rejected with.
    fn error(p: &mut JsonParser, line: &str) -> ParseError {
        match p.parse(line.as_bytes()) {
            Err(e) => e,
            Ok(r) => panic!("not rejected ({r:?}): {line}"),
        }
    }

    /// Fluent Bit's S3 output from EKS (`json_date_key` `date`, the
    /// kubernetes filter without `Merge_Log`): the application's JSON line
    /// is the string `log`, with its newline.
    const FLUENT_BIT_S3: [&str; 6] = [
        r#"{"date":"2024-05-01T10:00:00.118230Z","log":"{\"ts\":\"2024-05-01T10:00:00.117Z\",\"remote_addr\":\"203.0.113.9\",\"method\":\"POST\",\"path\":\"/api/login?next=%2Fcart\",\"status\":401,\"host\":\"shop.example.com\",\"ua\":\"python-requests/2.31.0\",\"xff\":\"203.0.113.9, 10.0.1.5\",\"user\":\"alice@example.com\"}\n","stream":"stdout","time":"2024-05-01T10:00:00.118230412Z","kubernetes":{"pod_name":"web-7d9f8b6c5-x2k4p","namespace_name":"shop","pod_id":"5a3c1f0e-8a8e-4d5c-9b7e-2f1d3c4b5a69","labels":{"app":"web","pod-template-hash":"7d9f8b6c5"},"host":"ip-10-0-1-23.eu-west-1.compute.internal","container_name":"web","docker_id":"3f9c2b1a","container_image":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:1.4.2"}}"#,
        r#"{"date":"2024-05-01T10:00:01.502113Z","log":"{\"ts\":\"2024-05-01T10:00:01.501Z\",\"remote_addr\":\"198.51.100.23\",\"method\":\"GET\",\"path\":\"/search?q=a\\u0026b\",\"status\":200,\"host\":\"shop.example.com\",\"ua\":\"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\",\"xff\":\"-\",\"user\":\"-\"}\n","stream":"stdout","time":"2024-05-01T10:00:01.502113901Z","kubernetes":{"pod_name":"web-7d9f8b6c5-x2k4p","namespace_name":"shop","container_name":"web"}}"#,
        r#"{"date":"2024-05-01T10:00:02.000310Z","log":"2024/05/01 10:00:02 [warn] upstream response time 2.1s\n","stream":"stderr","time":"2024-05-01T10:00:02.000310552Z","kubernetes":{"pod_name":"web-7d9f8b6c5-x2k4p","namespace_name":"shop","container_name":"web"}}"#,
        r#"{"date":"2024-05-01T10:00:03.911882Z","log":"{\"ts\":\"2024-05-01T10:00:03.910Z\",\"remote_addr\":\"2001:db8::7\",\"method\":\"POST\",\"path\":\"/api/login\",\"status\":\"401\",\"host\":\"shop.example.com\",\"ua\":\"\",\"user\":\"bob\"}\n","stream":"stdout","time":"2024-05-01T10:00:03.911882004Z","kubernetes":{"pod_name":"web-7d9f8b6c5-9qz7m","namespace_name":"shop","container_name":"web"}}"#,
        r#"{"date":"2024-05-01T10:00:04.250977Z","log":"{\"ts\":\"2024-05-01T10:00:04.250Z\",\"remote_addr\":\"10.0.3.17:41822\",\"method\":\"GET\",\"path\":\"/api/orders/7\",\"status\":403,\"host\":\"shop.example.com\",\"ua\":\"okhttp/4.12.0\",\"user\":1042}\n","stream":"stdout","time":"2024-05-01T10:00:04.250977310Z","kubernetes":{"pod_name":"web-7d9f8b6c5-9qz7m","namespace_name":"shop","container_name":"web"}}"#,
        r#"{"date":"2024-05-01T10:00:05.777001Z","log":"{\"ts\":\"2024-05-01T10:00:05.776Z\",\"remote_addr\":\"unknown\",\"method\":\"GET\",\"path\":\"/healthz\",\"status\":200}\n","stream":"stdout","time":"2024-05-01T10:00:05.777001120Z","kubernetes":{"pod_name":"web-7d9f8b6c5-9qz7m","namespace_name":"shop","container_name":"web"}}"#,
    ];

    #[test]
    fn fluent_bit_s3_lines_read_inside_the_log_string() {
        let mut p = parser(&app_fields("log."), "iso8601");
        let lines = FLUENT_BIT_S3;

        let h = hit(&mut p, lines[0]);
        assert_eq!(h.time_ms, epoch_ms("2024-05-01T10:00:00.117Z"));
        assert_eq!(h.peer, ip("203.0.113.9"));
        assert_eq!(h.status, 401);
        assert_eq!(h.method, "POST");
        assert_eq!(h.path, "/api/login?next=%2Fcart");
        assert_eq!(h.host, "shop.example.com");
        assert_eq!(h.user_agent, "python-requests/2.31.0");
        assert_eq!(h.forwarded_for.as_deref(), Some("203.0.113.9, 10.0.1.5"));
        assert_eq!(h.user.as_deref(), Some("alice@example.com"));
        assert_eq!(
            (h.waf, h.blocked_by_waf, h.raw_request),
            (None, false, None)
        );

        // Escaped twice (`\\u0026` in the line): `&` in the end; `-` is no
        // user and no X-Forwarded-For.
        let h = hit(&mut p, lines[1]);
        assert_eq!((h.status, &*h.path), (200, "/search?q=a&b"));
        assert_eq!((h.forwarded_for, h.user), (None, None));

        // The container's stderr: no JSON in `log`, so no address.
        assert_eq!(error(&mut p, lines[2]), ParseError::new("ip", "missing"));

        // IPv6, a status as a string, an empty user agent.
        let h = hit(&mut p, lines[3]);
        assert_eq!((h.peer, h.status), (ip("2001:db8::7"), 401));
        assert_eq!((&*h.user_agent, h.user.as_deref()), ("", Some("bob")));

        // An address with a port; a numeric user id.
        let h = hit(&mut p, lines[4]);
        assert_eq!((h.peer, h.status), (ip("10.0.3.17"), 403));
        assert_eq!(h.user.as_deref(), Some("1042"));
        assert_eq!(h.forwarded_for, None);

        assert_eq!(
            error(&mut p, lines[5]),
            ParseError::new("ip", "not an IP address")
        );

        // Fluent Bit's own time instead of the application's: nanoseconds
        // are cut to milliseconds.
        let mut p = parser(
            &JsonFields {
                time: "time".into(),
                ..app_fields("log.")
            },
            "iso8601",
        );
        assert_eq!(
            hit(&mut p, lines[0]).time_ms,
            epoch_ms("2024-05-01T10:00:00.118Z")
        );
        // The kubernetes metadata is reachable too.
        let mut p = parser(
            &JsonFields {
                host: Some("kubernetes.host".into()),
                ..app_fields("log.")
            },
            "iso8601",
        );
        assert_eq!(
            hit(&mut p, lines[0]).host,
            "ip-10-0-1-23.eu-west-1.compute.internal"
        );
    }

    /// ECS FireLens to Firehose: the task metadata around the container's
    /// line in `log`, without its newline.
    const FIREHOSE: &str = r#"{"container_id":"0d6f1a3c9b2e4f5a8c7d6e5f4a3b2c1d-1234567890","container_name":"api","ecs_cluster":"prod","ecs_task_arn":"arn:aws:ecs:eu-west-1:123456789012:task/prod/0d6f1a3c9b2e4f5a8c7d6e5f4a3b2c1d","ecs_task_definition":"api:42","log":"{\"ts\":1714557600.25,\"client\":\"[2001:db8::9]:51234\",\"verb\":\"DELETE\",\"url\":\"https://api.example.com:8443/v1/orders?id=7\",\"code\":\"404\",\"api_key\":\"key-42\"}","source":"stdout"}"#;

    #[test]
    fn firehose_firelens_line() {
        let f = JsonFields {
            method: Some("log.verb".into()),
            path: Some("log.url".into()),
            user: Some("log.api_key".into()),
            ..fields("log.client", "log.ts", "log.code")
        };
        let mut p = parser(&f, "epoch");
        let h = hit(&mut p, FIREHOSE);
        assert_eq!(h.time_ms, 1_714_557_600_250);
        assert_eq!(h.peer, ip("2001:db8::9"));
        assert_eq!((h.status, &*h.method), (404, "DELETE"));
        // An absolute URL: the path and query, and the host from it.
        assert_eq!((&*h.path, &*h.host), ("/v1/orders?id=7", "api.example.com"));
        assert_eq!(h.user.as_deref(), Some("key-42"));
        // Values from inside a string are copies.
        assert!(matches!(h.user, Some(Cow::Owned(_))));
        // The format's fields are all inside `log`: not at the top.
        let mut p = parser(&fields("client", "ts", "code"), "epoch");
        assert_eq!(error(&mut p, FIREHOSE), ParseError::new("ip", "missing"));
    }

    /// An application logging Elastic Common Schema: nested objects.
    const ECS: &str = r#"{"@timestamp":"2024-05-01T12:00:00.000+02:00","log.level":"info","client":{"ip":"192.0.2.44","port":50211},"http":{"request":{"method":"PUT"},"response":{"status_code":403}},"url":{"original":"/admin/users/3","domain":"admin.example.com"},"user":{"name":"bob"},"user_agent":{"original":"Mozilla/5.0"},"event":{"dataset":"app.access"}}"#;

    fn ecs_fields() -> JsonFields {
        JsonFields {
            method: Some("http.request.method".into()),
            path: Some("url.original".into()),
            host: Some("url.domain".into()),
            user_agent: Some("user_agent.original".into()),
            user: Some("user.name".into()),
            ..fields("client.ip", "@timestamp", "http.response.status_code")
        }
    }

    #[test]
    fn nested_dotted_paths() {
        let mut p = parser(&ecs_fields(), "iso8601");
        let h = hit(&mut p, ECS);
        assert_eq!(h.time_ms, epoch_ms("2024-05-01T10:00:00Z"));
        assert_eq!((h.peer, h.status), (ip("192.0.2.44"), 403));
        assert_eq!((&*h.method, &*h.path), ("PUT", "/admin/users/3"));
        assert_eq!(&*h.host, "admin.example.com");
        assert_eq!(&*h.user_agent, "Mozilla/5.0");
        assert_eq!(h.user.as_deref(), Some("bob"));
        // Strings without escapes are borrowed from the line.
        assert!(matches!(h.method, Cow::Borrowed(_)));
        assert!(matches!(h.user, Some(Cow::Borrowed(_))));
        // A path that stops at an object, or goes on through a number,
        // finds nothing.
        let mut p = parser(
            &JsonFields {
                user: Some("user".into()),
                user_agent: Some("client.port.x".into()),
                ..ecs_fields()
            },
            "iso8601",
        );
        let h = hit(&mut p, ECS);
        assert_eq!((h.user, &*h.user_agent), (None, ""));
        // A required one that stops at an object is invalid.
        let mut p = parser(
            &fields("client", "@timestamp", "http.response.status_code"),
            "iso8601",
        );
        assert_eq!(
            error(&mut p, ECS),
            ParseError::new("ip", "not an IP address")
        );
    }

    #[test]
    fn a_key_holding_the_whole_rest_of_the_path_wins() {
        let mut p = parser(
            &JsonFields {
                user: Some("user.id".into()),
                method: Some("attributes.http.request.method".into()),
                ..fields("client.address", "time", "status")
            },
            "epoch",
        );
        let line = |body: &str| {
            format!(r#"{{"client.address":"192.0.2.1","time":1700000000,"status":401,{body}}}"#)
        };
        // OpenTelemetry-style flat keys, before or after a nested object.
        for body in [
            r#""user.id":"flat","user":{"id":"nested"}"#,
            r#""user":{"id":"nested"},"user.id":"flat""#,
        ] {
            let line = line(body);
            assert_eq!(hit(&mut p, &line).user.as_deref(), Some("flat"), "{line}");
        }
        let l = line(r#""user":{"id":"nested"}"#);
        assert_eq!(hit(&mut p, &l).user.as_deref(), Some("nested"));
        // A flat key one level down; `-` there is no user, and still wins.
        let l =
            line(r#""attributes":{"http.request.method":"GET"},"user":{"id":"u"},"user.id":"-""#);
        let h = hit(&mut p, &l);
        assert_eq!((&*h.method, h.user), ("GET", None));
        let l = line(r#""attributes":{"http":{"request.method":"HEAD"}}"#);
        assert_eq!(hit(&mut p, &l).method, "HEAD");
        // Of two equal keys the first counts.
        let l = line(r#""user.id":"first","user.id":"second""#);
        assert_eq!(hit(&mut p, &l).user.as_deref(), Some("first"));
    }

    #[test]
    fn status_as_number_or_string() {
        let mut p = parser(&fields("ip", "t", "s"), "epoch");
        let line = |s: &str| format!(r#"{{"ip":"192.0.2.1","t":1700000000,"s":{s}}}"#);
        for (s, want) in [
            ("404", 404),
            (r#""404""#, 404),
            ("404.0", 404),
            ("4.04e2", 404),
            ("100", 100),
            ("599", 599),
            ("0", 0),
            (r#""000""#, 0),
        ] {
            assert_eq!(hit(&mut p, &line(s)).status, want, "{s}");
        }
        for s in [
            "99",
            "600",
            "-404",
            "404.5",
            "70000",
            r#""4044""#,
            r#""40""#,
            r#""abc""#,
            r#""""#,
            "true",
            "[404]",
            r#"{"code":404}"#,
            "1e300",
        ] {
            assert_eq!(
                error(&mut p, &line(s)),
                ParseError::new("status", "not an HTTP status"),
                "{s}"
            );
        }
        assert_eq!(
            error(&mut p, &line("null")),
            ParseError::new("status", "missing")
        );
    }

    #[test]
    fn times_as_epoch_numbers_strings_or_text() {
        let at = |t: &str, tf: &str| {
            let mut p = parser(&fields("ip", "t", "s"), tf);
            let line = format!(r#"{{"ip":"192.0.2.1","t":{t},"s":200}}"#);
            p.parse(line.as_bytes()).map(|h| h.unwrap().time_ms)
        };
        let want = Ok(1_700_000_000_123);
        assert_eq!(at("1700000000.123", "epoch"), want);
        assert_eq!(at(r#""1700000000.123""#, "epoch"), want);
        assert_eq!(at("1700000000123", "epoch_ms"), want);
        assert_eq!(at(r#""1700000000123""#, "epoch_ms"), want);
        assert_eq!(at("1700000000", "epoch"), Ok(1_700_000_000_000));
        assert_eq!(at("1.7e9", "epoch"), Ok(1_700_000_000_000));
        assert_eq!(at(r#""2023-11-14T22:13:20.123Z""#, "iso8601"), want);
        assert_eq!(at(r#""2023-11-15T00:13:20.123+02:00""#, "iso8601"), want);
        assert_eq!(
            at(r#""14/Nov/2023:23:13:20 +0100""#, "clf"),
            Ok(1_700_000_000_000)
        );
        let bad = |t: &str, tf: &str| at(t, tf).unwrap_err();
        assert_eq!(bad("-5", "epoch").field, "time");
        assert_eq!(bad("1700000000.5", "epoch_ms").field, "time");
        assert_eq!(bad("1e300", "epoch").field, "time");
        assert_eq!(
            bad("1700000000", "iso8601"),
            ParseError::new("time", "not an ISO 8601 time")
        );
        assert_eq!(bad(r#""yesterday""#, "clf").field, "time");
        assert_eq!(
            bad("[]", "epoch"),
            ParseError::new("time", "not a string or a number")
        );
        assert_eq!(bad("null", "epoch"), ParseError::new("time", "missing"));
    }

    #[test]
    fn missing_and_empty_fields() {
        let mut p = parser(&app_fields(""), "epoch");
        let base = r#""remote_addr":"192.0.2.1","ts":1700000000,"status":404"#;
        // Only the required fields: the others empty, as for regex formats.
        let only = format!("{{{base}}}");
        let h = hit(&mut p, &only);
        assert_eq!((&*h.method, &*h.path), ("-", "-"));
        assert_eq!((&*h.host, &*h.user_agent), ("", ""));
        assert_eq!((h.forwarded_for, h.user), (None, None));
        // Empty, `-`, null or of another type: the same.
        for v in [r#""""#, r#""-""#, "null", "true", "[]", "{}"] {
            let line = format!(
                r#"{{{base},"method":{v},"path":{v},"host":{v},"ua":{v},"xff":{v},"user":{v}}}"#
            );
            let h = hit(&mut p, &line);
            assert_eq!((&*h.method, &*h.path), ("-", "-"), "{v}");
            assert_eq!((&*h.host, &*h.user_agent), ("", ""), "{v}");
            assert_eq!((h.forwarded_for, h.user), (None, None), "{v}");
        }
        // Each required field, missing.
        let mut p = parser(&fields("ip", "t", "s"), "epoch");
        for (line, field) in [
            (r#"{"t":1,"s":200}"#, "ip"),
            (r#"{"ip":null,"t":1,"s":200}"#, "ip"),
            (r#"{"ip":"192.0.2.1","s":200}"#, "time"),
            (r#"{"ip":"192.0.2.1","t":1}"#, "status"),
            ("{}", "ip"),
        ] {
            assert_eq!(
                error(&mut p, line),
                ParseError::new(field, "missing"),
                "{line}"
            );
        }
        for bad in [
            r#""""#,
            r#""-""#,
            r#""x.x.x.x""#,
            "42",
            "[]",
            r#"{"ip":"192.0.2.1"}"#,
        ] {
            let line = format!(r#"{{"ip":{bad},"t":1,"s":200}}"#);
            assert_eq!(
                error(&mut p, &line),
                ParseError::new("ip", "not an IP address"),
                "{line}"
            );
        }
    }

    #[test]
    fn garbage_lines() {
        let mut p = parser(&fields("ip", "t", "s"), "epoch");
        assert_eq!(p.parse(b""), Ok(None));
        assert_eq!(p.parse(b" \t "), Ok(None));
        for line in [
            &b"not json"[..],
            b"[1, 2]",
            b"\"a string\"",
            b"42",
            b"{",
            b"{\"ip\":\"192.0.2.1\"",
            b"{} {}",
            b"{\"ip\":\"192.0.2.1\",\"t\":1,\"s\":200} trailing",
            b"{\"ip\":\"192.0.2.1\",\"t\":1,\"s\":200,}",
            b"{\"ip\":\"192.0.2.\xff\",\"t\":1,\"s\":200}",
            b"{\"ip\":\"192.0.2.1\",\"t\":1,\"s\":200}\x00",
        ] {
            assert_eq!(
                p.parse(line),
                Err(ParseError::new("json", "not a JSON object")),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        // Invalid UTF-8 in a value no field reads is skipped with it.
        let h = p.parse(b"{\"other\":\"\xc3\",\"ip\":\"192.0.2.1\",\"t\":1,\"s\":200}");
        assert_eq!(h.unwrap().unwrap().status, 200);
        // Whitespace around the object is fine (and a `\r` left over).
        let h = p.parse(b"  {\"ip\":\"192.0.2.1\",\"t\":1,\"s\":200}\r");
        assert_eq!(h.unwrap().unwrap().time_ms, 1000);
        // A string on the way that is broken JSON holds nothing.
        let mut p = parser(&fields("log.ip", "t", "s"), "epoch");
        let line = r#"{"t":1,"s":200,"log":"{\"ip\":\"192.0.2.1\", broken"}"#;
        assert_eq!(error(&mut p, line), ParseError::new("ip", "missing"));
        // Deep nesting, skipped or on a path, costs no stack.
        let nest = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let line = format!(r#"{{"a":{nest},"log":{nest},"t":1,"s":200}}"#);
        assert_eq!(error(&mut p, &line), ParseError::new("ip", "missing"));
        let objects = format!("{}{}", r#"{"log":"#.repeat(10_000), "}".repeat(10_000));
        assert_eq!(error(&mut p, &objects).field, "json");
    }

    #[test]
    fn spec_errors_and_format() {
        let ok = fields("ip", "t", "s");
        let err = |name: &str, f: &JsonFields, tf: &str| JsonSpec::new(name, f, tf).unwrap_err();
        assert_eq!(err(" ", &ok, "epoch"), JsonSpecError::EmptyName);
        let e = err("app", &ok, "strftime").to_string();
        assert!(
            e.contains(r#"unknown time format "strftime""#) && e.contains("epoch_ms"),
            "{e}"
        );
        assert_eq!(
            err("app", &fields("", "t", "s"), "epoch"),
            JsonSpecError::EmptyPath {
                name: "app".into(),
                field: "ip",
            }
        );
        let f = JsonFields {
            user_agent: Some(String::new()),
            ..ok.clone()
        };
        assert!(matches!(
            err("app", &f, "epoch"),
            JsonSpecError::EmptyPath {
                field: "user_agent",
                ..
            }
        ));
        for bad in [".a", "a.", "a..b", "."] {
            let f = JsonFields {
                user: Some(bad.into()),
                ..ok.clone()
            };
            let e = err("app", &f, "epoch");
            assert_eq!(
                e,
                JsonSpecError::EmptySegment {
                    name: "app".into(),
                    field: "user",
                    path: bad.into(),
                }
            );
            assert!(e.to_string().contains("empty segment"), "{e}");
        }

        let spec = JsonSpec::new("app", &ok, "iso8601").unwrap();
        assert_eq!(
            (spec.name(), spec.fields(), spec.time_format()),
            ("app", &ok, TimeFormat::Iso8601)
        );
        let format = Format::Json(spec.clone());
        assert_eq!(format.name(), "app");
        let mut p = format.parser();
        let line = br#"{"ip":"192.0.2.1","t":"2023-11-14T22:13:20Z","s":200}"#;
        assert_eq!(p.parse(line).unwrap().unwrap().time_ms, 1_700_000_000_000);
        assert_ne!(spec, JsonSpec::new("app", &ok, "epoch").unwrap());
        // `json` formats are user-defined only.
        assert_eq!(Format::from_name("json"), None);
    }

    #[test]
    fn fields_from_and_to_config() {
        let f: JsonFields = toml::from_str(
            "ip = \"log.remote_addr\"\ntime = \"date\"\nstatus = \"log.status\"\nuser = \"log.user\"\n",
        )
        .unwrap();
        assert_eq!(
            f,
            JsonFields {
                user: Some("log.user".into()),
                ..fields("log.remote_addr", "date", "log.status")
            }
        );
        let again: JsonFields = toml::from_str(&toml::to_string(&f).unwrap()).unwrap();
        assert_eq!(again, f);
        let e = toml::from_str::<JsonFields>(
            "ip = \"a\"\ntime = \"b\"\nstatus = \"c\"\nagent = \"d\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `agent`"), "{e}");
        let e = toml::from_str::<JsonFields>("ip = \"a\"\ntime = \"b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `status`"), "{e}");
    }

    fn all_parsers() -> Vec<JsonParser> {
        vec![
            parser(&app_fields("log."), "iso8601"),
            parser(&app_fields(""), "epoch"),
            parser(&ecs_fields(), "iso8601"),
            parser(
                &JsonFields {
                    user: Some("log.api_key".into()),
                    ..fields("log.client", "log.ts", "log.code")
                },
                "epoch",
            ),
        ]
    }

    #[test]
    fn no_panic_on_prefixes_and_mutations() {
        let mut parsers = all_parsers();
        let mut lines: Vec<&str> = FLUENT_BIT_S3.to_vec();
        lines.extend([FIREHOSE, ECS]);
        for line in lines {
            let line = line.as_bytes();
            for p in &mut parsers {
                for end in 0..line.len() {
                    // A strict prefix of one object is never a request.
                    assert!(
                        !matches!(p.parse(&line[..end]), Ok(Some(_))),
                        "prefix {end}"
                    );
                }
                let mut m = line.to_vec();
                for i in 0..m.len() {
                    for b in [0u8, 0xff, 0xc3, b'"', b'\\', b'{', b'}', b'.', b'9'] {
                        let orig = m[i];
                        m[i] = b;
                        let _ = p.parse(&m);
                        m[i] = orig;
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn no_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            for p in &mut all_parsers() {
                let _ = p.parse(&bytes);
                let mut object = b"{\"log\":".to_vec();
                object.extend_from_slice(&bytes);
                let _ = p.parse(&object);
            }
        }
    }
}
