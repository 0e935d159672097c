//! Lambda trigger events: which S3 objects to ingest, which alarm changed,
//! whether an invocation is a schedule.
//!
//! Every decoder takes the raw invocation payload as a [`serde_json::Value`]
//! and never panics: anything it does not recognise is an [`EventError`]
//! that says what shape was expected and what was found.
//!
//! The shape is decided first, by a few marker keys, and only then is the
//! payload parsed (with the `aws_lambda_events` types where they work):
//!
//! | marker | shape |
//! |---|---|
//! | `Records[0].eventSource == "aws:s3"` | S3 notification |
//! | `Records[0].eventSource == "aws:sqs"` | SQS batch (body: S3 notification, SNS envelope, test event or EventBridge event) |
//! | `Records[0].EventSource == "aws:sns"` | SNS (message: S3 notification, test event, or CloudWatch alarm notification) |
//! | `Event == "s3:TestEvent"` | S3 test event, sent once when a notification is configured |
//! | `detail-type` (+ `source`) | EventBridge: `Object Created` / `aws.s3`, `CloudWatch Alarm State Change`, `Scheduled Event` |
//! | `alarmData` | CloudWatch alarm action invoking Lambda directly |
//!
//! Known traps handled here (see `TOOLING.md`): `S3Event` fails on the test
//! event, so it is routed before parsing; S3 keys arrive form-encoded and are
//! decoded by [`decode_s3_key`]; the crate's metric-alarm type rejects
//! metric-math and anomaly-detection alarms and 1-day periods, so alarms are
//! read leniently from JSON; an EventBridge alarm event would mis-parse as an
//! alarm action with an empty name, so `detail-type` is checked first.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What [`decode_ingest`] accepts, for error messages.
const EXPECTED_INGEST: &str = "an S3, SQS, SNS or EventBridge Object Created event";
/// What [`decode_alarm`] accepts, for error messages.
const EXPECTED_ALARM: &str = "a CloudWatch alarm event (alarm action with alarmData, \
     EventBridge CloudWatch Alarm State Change, or SNS alarm notification)";
/// What an SQS body or SNS message may hold, for error messages.
const EXPECTED_PAYLOAD: &str = "an S3 notification, S3 test event, SNS notification \
     or EventBridge Object Created event";

/// Why an event could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The event (or a message inside it) is not a shape this decoder
    /// accepts: the wrong trigger, or not an AWS event at all.
    #[error("{context}: not {expected} ({found})")]
    UnexpectedShape {
        /// Where: `event`, `Records[0]`, `SQS message <id>`, `SNS message <id>`.
        context: String,
        /// The shapes that would have been accepted.
        expected: String,
        /// What was there instead: its type, marker values and keys.
        found: String,
    },
    /// The shape was recognised but its content is broken: a missing or
    /// mistyped field, a body that is not JSON, a bad time or alarm state.
    #[error("{context}: {detail}")]
    Malformed {
        /// Where, as in [`EventError::UnexpectedShape`], plus the shape.
        context: String,
        /// What is wrong.
        detail: String,
    },
    /// An S3 object key that does not form-decode (bad `%` escape, or not
    /// UTF-8 once decoded).
    #[error("S3 key {key:?} does not decode: {detail}")]
    BadKey {
        /// The key as it appeared in the event.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
}

fn shape(context: impl Into<String>, expected: &str, found: String) -> EventError {
    EventError::UnexpectedShape {
        context: context.into(),
        expected: expected.to_string(),
        found,
    }
}

fn malformed(context: impl Into<String>, detail: impl Into<String>) -> EventError {
    EventError::Malformed {
        context: context.into(),
        detail: detail.into(),
    }
}

/// A short description of a JSON value for error messages: its type, the
/// marker keys that identify AWS events, and its keys.
fn describe(v: &Value) -> String {
    let obj = match v {
        Value::Null => return "null".into(),
        Value::Bool(_) => return "a boolean".into(),
        Value::Number(_) => return "a number".into(),
        Value::String(_) => return "a string".into(),
        Value::Array(a) => return format!("an array of {} elements", a.len()),
        Value::Object(o) => o,
    };
    if obj.is_empty() {
        return "an empty object".into();
    }
    let mut parts = Vec::new();
    if let Some(dt) = obj.get("detail-type") {
        parts.push(format!(
            "EventBridge detail-type {} from source {}",
            dt,
            obj.get("source").unwrap_or(&Value::Null)
        ));
    }
    if obj.contains_key("alarmData") {
        parts.push("a CloudWatch alarm action".into());
    }
    if let Some(e) = obj.get("Event") {
        parts.push(format!("Event {e}"));
    }
    if let Some(first) = obj
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        match record_source(first) {
            Some(s) => parts.push(format!("Records from {s:?}")),
            None => parts.push("Records without an event source".into()),
        }
    }
    const MAX_KEYS: usize = 16;
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(MAX_KEYS).collect();
    if obj.len() > MAX_KEYS {
        keys.push("…");
    }
    parts.push(format!("keys: {}", keys.join(", ")));
    parts.join("; ")
}

/// The event source of one `Records` element: `eventSource` (S3, SQS) or
/// `EventSource` (SNS).
fn record_source(record: &Value) -> Option<&str> {
    record
        .get("eventSource")
        .or_else(|| record.get("EventSource"))
        .and_then(Value::as_str)
}

/// The first `max` characters of `s`, for error messages.
fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

// ---------------------------------------------------------------------------
// Ingest side
// ---------------------------------------------------------------------------

/// An S3 object to ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// Bucket name.
    pub bucket: String,
    /// Object key, ready for `GetObject`: form-decoded for S3 notifications
    /// (direct, SNS, SQS); taken as-is from EventBridge (whose encoding is
    /// undocumented: on `NoSuchKey`, retry with [`decode_s3_key`] of it).
    pub key: String,
    /// ETag without surrounding quotes (multipart: `<md5>-<parts>`).
    pub etag: Option<String>,
    /// Object size in bytes.
    pub size: Option<i64>,
    /// S3 sequencer: orders the events of one key (compare as hex strings
    /// of equal length after left-padding with zeros).
    pub sequencer: Option<String>,
}

/// A decoded ingest trigger.
#[derive(Debug, Clone, PartialEq)]
pub enum IngestEvent {
    /// S3 notification (direct), via SNS, or EventBridge "Object Created":
    /// all created objects in it (non-`ObjectCreated:*` records such as
    /// `ObjectRemoved:Delete` are left out; the list may be empty).
    Objects(Vec<ObjectRef>),
    /// An SQS batch (S3 → SQS, S3 → SNS → SQS, or EventBridge → SQS); each
    /// message decoded on its own so one bad message fails only itself (for
    /// partial batch responses: `batchItemFailures` with its `messageId`).
    Sqs(Vec<SqsItem>),
    /// `s3:TestEvent`, directly or inside SNS, or inside SQS when *every*
    /// message of the batch is one: nothing to do (an SQS handler returns an
    /// empty `batchItemFailures`). In a mixed SQS batch a test event is an
    /// [`SqsItem`] with `Ok(vec![])`.
    Test,
}

/// One message of an SQS batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsItem {
    /// The SQS `messageId`, to report in `batchItemFailures`.
    pub message_id: String,
    /// The created objects in this message: `Ok(vec![])` for a test event or
    /// a notification of removals only; `Err` if the body is not one of the
    /// accepted payloads.
    pub objects: Result<Vec<ObjectRef>, EventError>,
}

/// Detail of an EventBridge "Object Created" event from S3 (the crate has no
/// type for it). Keys are kebab-case; only what ingestion needs is read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ObjectCreatedDetail {
    bucket: DetailBucket,
    object: DetailObject,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DetailBucket {
    name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct DetailObject {
    key: String,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
}

/// Decode the payload of an ingest invocation: S3 notification, SQS batch,
/// SNS notification, EventBridge "Object Created", or S3 test event.
///
/// An event of another family (an alarm, a schedule, an unrelated
/// EventBridge event) is an [`EventError::UnexpectedShape`] naming what it
/// looks like. Inside an SQS batch each message is decoded on its own; for
/// direct S3, SNS and EventBridge events any bad record fails the whole
/// event (Lambda retries it as a unit anyway).
pub fn decode_ingest(event: &Value) -> Result<IngestEvent, EventError> {
    let Some(obj) = event.as_object() else {
        return Err(shape("event", EXPECTED_INGEST, describe(event)));
    };
    if is_s3_test_event(event) {
        return Ok(IngestEvent::Test);
    }
    if let Some(records) = obj.get("Records") {
        let first = first_record(records)?;
        return match record_source(first) {
            Some("aws:s3") => decode_s3_notification(event, "S3 notification").map(IngestEvent::Objects),
            Some("aws:sqs") => decode_sqs(event),
            Some("aws:sns") => decode_sns_ingest(event),
            _ => Err(shape(
                "Records[0]",
                "an S3, SQS or SNS record (eventSource aws:s3 or aws:sqs, EventSource aws:sns)",
                describe(first),
            )),
        };
    }
    if obj.contains_key("detail-type") {
        if is_object_created(event) {
            return decode_object_created(event, "EventBridge Object Created").map(IngestEvent::Objects);
        }
        return Err(shape("event", EXPECTED_INGEST, describe(event)));
    }
    Err(shape("event", EXPECTED_INGEST, describe(event)))
}

/// The first element of a `Records` value, or why there is none.
fn first_record(records: &Value) -> Result<&Value, EventError> {
    let Some(arr) = records.as_array() else {
        return Err(malformed(
            "event",
            format!("Records is {}, expected an array", describe(records)),
        ));
    };
    arr.first().ok_or_else(|| {
        malformed(
            "event",
            "Records is empty: nothing tells an S3, SQS or SNS event apart",
        )
    })
}

fn is_s3_test_event(v: &Value) -> bool {
    str_field(v, "Event") == Some("s3:TestEvent") && v.get("Records").is_none()
}

fn is_object_created(v: &Value) -> bool {
    str_field(v, "detail-type") == Some("Object Created") && str_field(v, "source") == Some("aws.s3")
}

/// Strip the quotes an ETag may carry; `None` for an empty one.
fn normalize_etag(etag: Option<&str>) -> Option<String> {
    let e = etag?.trim().trim_matches('"');
    (!e.is_empty()).then(|| e.to_string())
}

/// The created objects of an S3 notification (`{"Records": [...]}`).
fn decode_s3_notification(v: &Value, context: &str) -> Result<Vec<ObjectRef>, EventError> {
    let ev = S3Event::deserialize(v).map_err(|e| malformed(context, format!("S3 notification does not parse: {e}")))?;
    let mut out = Vec::with_capacity(ev.records.len());
    for (i, r) in ev.records.iter().enumerate() {
        let name = r
            .event_name
            .as_deref()
            .ok_or_else(|| malformed(context, format!("record {i} has no eventName")))?;
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let bucket = r
            .s3
            .bucket
            .name
            .as_deref()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| malformed(context, format!("record {i} has no s3.bucket.name")))?;
        let raw_key = r
            .s3
            .object
            .key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| malformed(context, format!("record {i} has no s3.object.key")))?;
        out.push(ObjectRef {
            bucket: bucket.to_string(),
            key: decode_s3_key(raw_key)?,
            etag: normalize_etag(r.s3.object.e_tag.as_deref()),
            size: r.s3.object.size,
            sequencer: r.s3.object.sequencer.clone(),
        });
    }
    Ok(out)
}

/// The object of an EventBridge "Object Created" event; its key as-is.
fn decode_object_created(v: &Value, context: &str) -> Result<Vec<ObjectRef>, EventError> {
    let ev = EventBridgeEvent::<ObjectCreatedDetail>::deserialize(v)
        .map_err(|e| malformed(context, format!("Object Created event does not parse: {e}")))?;
    let d = ev.detail;
    if d.bucket.name.is_empty() || d.object.key.is_empty() {
        return Err(malformed(context, "empty detail.bucket.name or detail.object.key"));
    }
    Ok(vec![ObjectRef {
        bucket: d.bucket.name,
        key: d.object.key,
        etag: normalize_etag(d.object.etag.as_deref()),
        size: d.object.size,
        sequencer: d.object.sequencer,
    }])
}

/// What an SQS body or SNS message held.
enum Payload {
    Test,
    Objects(Vec<ObjectRef>),
}

/// Decode a message payload (SQS body or SNS message text). `allow_sns`
/// admits one SNS envelope (S3 → SNS → SQS without raw delivery).
fn decode_payload_str(text: &str, context: &str, allow_sns: bool) -> Result<Payload, EventError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| malformed(context, format!("not JSON ({e}): {:?}", excerpt(text, 80))))?;
    decode_payload(&v, context, allow_sns)
}

fn decode_payload(v: &Value, context: &str, allow_sns: bool) -> Result<Payload, EventError> {
    if is_s3_test_event(v) {
        return Ok(Payload::Test);
    }
    if let Some(records) = v.get("Records") {
        let first = first_record(records).map_err(|e| malformed(context, e.to_string()))?;
        if record_source(first) == Some("aws:s3") {
            return decode_s3_notification(v, context).map(Payload::Objects);
        }
        return Err(shape(context, EXPECTED_PAYLOAD, describe(v)));
    }
    if is_object_created(v) {
        return decode_object_created(v, context).map(Payload::Objects);
    }
    if allow_sns && str_field(v, "Type") == Some("Notification") {
        if let Some(message) = str_field(v, "Message") {
            let id = str_field(v, "MessageId").unwrap_or("?");
            let inner = format!("{context}, SNS message {id}");
            return decode_payload_str(message, &inner, false);
        }
    }
    Err(shape(context, EXPECTED_PAYLOAD, describe(v)))
}

fn decode_sqs(event: &Value) -> Result<IngestEvent, EventError> {
    let ev = SqsEvent::deserialize(event).map_err(|e| malformed("SQS event", format!("does not parse: {e}")))?;
    let mut items = Vec::with_capacity(ev.records.len());
    let mut all_test = true;
    for (i, m) in ev.records.iter().enumerate() {
        let Some(id) = m.message_id.as_deref().filter(|id| !id.is_empty()) else {
            return Err(malformed("SQS event", format!("record {i} has no messageId")));
        };
        let context = format!("SQS message {id}");
        let decoded = match m.body.as_deref() {
            None => Err(malformed(&context, "no body")),
            Some(body) => decode_payload_str(body, &context, true),
        };
        all_test &= matches!(decoded, Ok(Payload::Test));
        items.push(SqsItem {
            message_id: id.to_string(),
            objects: decoded.map(|p| match p {
                Payload::Test => Vec::new(),
                Payload::Objects(o) => o,
            }),
        });
    }
    if all_test && !items.is_empty() {
        return Ok(IngestEvent::Test);
    }
    Ok(IngestEvent::Sqs(items))
}

fn decode_sns_ingest(event: &Value) -> Result<IngestEvent, EventError> {
    let ev = SnsEvent::deserialize(event).map_err(|e| malformed("SNS event", format!("does not parse: {e}")))?;
    let mut objects = Vec::new();
    let mut all_test = true;
    for r in &ev.records {
        let context = format!("SNS message {}", r.sns.message_id);
        match decode_payload_str(&r.sns.message, &context, false)? {
            Payload::Test => {}
            Payload::Objects(o) => {
                all_test = false;
                objects.extend(o);
            }
        }
    }
    if all_test && !ev.records.is_empty() {
        return Ok(IngestEvent::Test);
    }
    Ok(IngestEvent::Objects(objects))
}

/// Decode an S3 key as S3 writes it into notifications: form encoding, so
/// `+` is a space, then `%XX` escapes (`%2B` → `+`, `%3D` → `=`); `/` and
/// everything else stays. Fails on a malformed escape or on bytes that are
/// not UTF-8 once decoded.
///
/// Keys of S3 notifications are decoded already; use this on an EventBridge
/// key only if the raw key gave `NoSuchKey`.
pub fn decode_s3_key(raw: &str) -> Result<String, EventError> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex);
                let lo = bytes.get(i + 2).copied().and_then(hex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(EventError::BadKey {
                        key: raw.to_string(),
                        detail: format!("'%' at byte {i} is not followed by two hex digits"),
                    });
                };
                out.push(hi << 4 | lo);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|e| EventError::BadKey {
        key: raw.to_string(),
        detail: format!(
            "not UTF-8 after percent-decoding (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

// ---------------------------------------------------------------------------
// Alarm side
// ---------------------------------------------------------------------------

/// A CloudWatch alarm state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlarmState {
    /// `ALARM`.
    Alarm,
    /// `OK`.
    Ok,
    /// `INSUFFICIENT_DATA`.
    InsufficientData,
}

impl AlarmState {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "ALARM" => Some(Self::Alarm),
            "OK" => Some(Self::Ok),
            "INSUFFICIENT_DATA" => Some(Self::InsufficientData),
            _ => None,
        }
    }
}

/// A CloudWatch alarm state change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmChange {
    /// Alarm name.
    pub name: String,
    /// The new state.
    pub state: AlarmState,
    /// The state before, when the event says.
    pub previous: Option<AlarmState>,
    /// When the state changed, in ms since the epoch (the state's
    /// `timestamp`; the envelope `time` if it has none).
    pub time_ms: i64,
    /// The state reason, human readable (empty if absent).
    pub reason: String,
    /// How much time the alarm evaluated: period × evaluation periods, in
    /// ms. The period is the longest `metricStat.period` of the alarm's
    /// metrics (else `period` of the state's `reasonData`); the number of
    /// periods is `configuration.evaluationPeriods`, else N of "… out of
    /// the last N datapoints" in the state reason, else
    /// `configuration.datapointsToAlarm`, else 1 (so the value is then a
    /// lower bound). SNS notifications: `Trigger.Period ×
    /// Trigger.EvaluationPeriods`. `None` when no period is known
    /// (composite alarms).
    pub evaluation_window_ms: Option<i64>,
}

/// Decode the payload of an alarm invocation: a CloudWatch alarm action
/// (`alarmData`: metric, composite, metric-math, anomaly-detection alarms),
/// an EventBridge `CloudWatch Alarm State Change` (`detail`), or an SNS
/// notification carrying a CloudWatch alarm message (alarm → SNS → Lambda;
/// with several records, the latest state change is returned).
///
/// Dispatch is by shape: `detail-type` present → EventBridge (its body is
/// `detail`, or `alarmData` if a hybrid event has no `detail`), else
/// `alarmData` → alarm action, else SNS `Records`.
pub fn decode_alarm(event: &Value) -> Result<AlarmChange, EventError> {
    let Some(obj) = event.as_object() else {
        return Err(shape("event", EXPECTED_ALARM, describe(event)));
    };
    let envelope_time = str_field(event, "time");
    if let Some(dt) = obj.get("detail-type") {
        if dt != "CloudWatch Alarm State Change" {
            return Err(shape("event", EXPECTED_ALARM, describe(event)));
        }
        let context = "EventBridge CloudWatch Alarm State Change";
        let body = obj
            .get("detail")
            .filter(|d| d.is_object())
            .or_else(|| obj.get("alarmData").filter(|d| d.is_object()))
            .ok_or_else(|| malformed(context, "no detail object"))?;
        return decode_alarm_body(body, envelope_time, context);
    }
    if let Some(body) = obj.get("alarmData") {
        let context = "CloudWatch alarm action";
        if !body.is_object() {
            return Err(malformed(context, format!("alarmData is {}", describe(body))));
        }
        return decode_alarm_body(body, envelope_time, context);
    }
    if let Some(records) = obj.get("Records") {
        let first = first_record(records)?;
        if record_source(first) == Some("aws:sns") {
            return decode_sns_alarm(event);
        }
    }
    Err(shape("event", EXPECTED_ALARM, describe(event)))
}

/// Parse a CloudWatch time: RFC 3339, or `2023-08-04T12:36:15.490+0000`
/// (offset without colon). Whitespace is removed first, for the documented
/// sample typo `2023-08-04T12: 36: 15.490+0000`.
fn parse_time_ms(s: &str) -> Option<i64> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    chrono::DateTime::parse_from_rfc3339(&t)
        .or_else(|_| chrono::DateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.timestamp_millis())
}

fn as_i64(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

/// N of "… out of the last N datapoints …" in a CloudWatch state reason.
fn datapoints_in_reason(reason: &str) -> Option<i64> {
    const MARK: &str = "out of the last ";
    let at = reason.find(MARK)? + MARK.len();
    let digits: String = reason[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|n| *n > 0)
}

fn state_of(v: &Value, context: &str, which: &str) -> Result<AlarmState, EventError> {
    match v.get("value") {
        Some(Value::String(s)) => AlarmState::parse(s).ok_or_else(|| {
            malformed(
                context,
                format!("{which}.value is {s:?}, expected ALARM, OK or INSUFFICIENT_DATA"),
            )
        }),
        other => Err(malformed(
            context,
            format!("{which}.value is {}, expected a string", describe(other.unwrap_or(&Value::Null))),
        )),
    }
}

/// The alarm body shared by alarm actions (`alarmData`) and EventBridge
/// (`detail`): `alarmName`, `state`, `previousState`, `configuration`.
fn decode_alarm_body(body: &Value, envelope_time: Option<&str>, context: &str) -> Result<AlarmChange, EventError> {
    let name = str_field(body, "alarmName")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| malformed(context, "no alarmName"))?;
    let context = &format!("{context} for alarm {name:?}");
    let state_obj = body
        .get("state")
        .filter(|s| s.is_object())
        .ok_or_else(|| malformed(context, "no state object"))?;
    let state = state_of(state_obj, context, "state")?;
    let previous = match body.get("previousState") {
        Some(p) if p.is_object() => Some(state_of(p, context, "previousState")?),
        _ => None,
    };
    let time_str = str_field(state_obj, "timestamp")
        .or(envelope_time)
        .ok_or_else(|| malformed(context, "no state.timestamp nor time"))?;
    let time_ms = parse_time_ms(time_str).ok_or_else(|| {
        malformed(
            context,
            format!("time {time_str:?} is not like 2023-08-04T12:36:15.490+0000"),
        )
    })?;
    let reason = str_field(state_obj, "reason").unwrap_or_default().to_string();

    let config = body.get("configuration");
    let is_composite = config.is_some_and(|c| c.get("alarmRule").is_some());
    let metric_period = config
        .and_then(|c| c.get("metrics"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("metricStat")?.get("period").and_then(as_i64))
        .max();
    let reason_period = || {
        let rd = str_field(state_obj, "reasonData")?;
        let rd: Value = serde_json::from_str(rd).ok()?;
        rd.get("period").and_then(as_i64)
    };
    let period = if is_composite {
        None
    } else {
        metric_period.or_else(reason_period).filter(|p| *p > 0)
    };
    let periods = config
        .and_then(|c| c.get("evaluationPeriods"))
        .and_then(as_i64)
        .or_else(|| datapoints_in_reason(&reason))
        .or_else(|| config.and_then(|c| c.get("datapointsToAlarm")).and_then(as_i64))
        .filter(|n| *n > 0)
        .unwrap_or(1);
    let evaluation_window_ms = period.and_then(|p| p.checked_mul(periods)?.checked_mul(1000));

    Ok(AlarmChange {
        name: name.to_string(),
        state,
        previous,
        time_ms,
        reason,
        evaluation_window_ms,
    })
}

/// Alarm → SNS → Lambda: the SNS message is the classic alarm notification
/// (`AlarmName`, `NewStateValue`, `OldStateValue`, `StateChangeTime`,
/// `Trigger`).
fn decode_sns_alarm(event: &Value) -> Result<AlarmChange, EventError> {
    let ev = SnsEvent::deserialize(event).map_err(|e| malformed("SNS event", format!("does not parse: {e}")))?;
    let mut latest: Option<AlarmChange> = None;
    for r in &ev.records {
        let context = format!("SNS message {}", r.sns.message_id);
        let m: Value = serde_json::from_str(&r.sns.message).map_err(|e| {
            shape(
                &context,
                "a CloudWatch alarm notification",
                format!("not JSON ({e}): {:?}", excerpt(&r.sns.message, 80)),
            )
        })?;
        let Some(name) = str_field(&m, "AlarmName").filter(|n| !n.is_empty()) else {
            return Err(shape(&context, "a CloudWatch alarm notification", describe(&m)));
        };
        let context = format!("{context} for alarm {name:?}");
        let state = state_of(&serde_json::json!({"value": m.get("NewStateValue")}), &context, "NewStateValue")?;
        let previous = match m.get("OldStateValue") {
            Some(Value::String(_)) => Some(state_of(
                &serde_json::json!({"value": m.get("OldStateValue")}),
                &context,
                "OldStateValue",
            )?),
            _ => None,
        };
        let time_str = str_field(&m, "StateChangeTime").ok_or_else(|| malformed(&context, "no StateChangeTime"))?;
        let time_ms = parse_time_ms(time_str)
            .ok_or_else(|| malformed(&context, format!("StateChangeTime {time_str:?} does not parse")))?;
        let trigger = m.get("Trigger");
        let period = trigger
            .and_then(|t| t.get("Period"))
            .and_then(as_i64)
            .or_else(|| {
                trigger?
                    .get("Metrics")?
                    .as_array()?
                    .iter()
                    .filter_map(|x| x.get("MetricStat")?.get("Period").and_then(as_i64))
                    .max()
            })
            .filter(|p| *p > 0);
        let periods = trigger
            .and_then(|t| t.get("EvaluationPeriods"))
            .and_then(as_i64)
            .filter(|n| *n > 0)
            .unwrap_or(1);
        let change = AlarmChange {
            name: name.to_string(),
            state,
            previous,
            time_ms,
            reason: str_field(&m, "NewStateReason").unwrap_or_default().to_string(),
            evaluation_window_ms: period.and_then(|p| p.checked_mul(periods)?.checked_mul(1000)),
        };
        if latest.as_ref().is_none_or(|l| change.time_ms >= l.time_ms) {
            latest = Some(change);
        }
    }
    latest.ok_or_else(|| malformed("SNS event", "no records"))
}

// ---------------------------------------------------------------------------
// Schedule side
// ---------------------------------------------------------------------------

/// Whether an invocation looks like a schedule: an EventBridge rule's
/// `Scheduled Event` (source `aws.events`), or EventBridge Scheduler's
/// custom input, which arrives verbatim with no envelope, so any other JSON
/// object counts (including `{}`) unless it is a recognisable event of
/// another kind (`Records`, `alarmData`, an S3 test event, any other
/// EventBridge `detail-type`).
///
/// The expire function does its work whatever the input (expiring is
/// idempotent and the input carries nothing it needs); this is for logging
/// a warning on a trigger that looks misrouted, not for refusing to run.
pub fn is_schedule(event: &Value) -> bool {
    let Some(obj) = event.as_object() else {
        return false;
    };
    if obj.contains_key("detail-type") {
        return str_field(event, "detail-type") == Some("Scheduled Event")
            && str_field(event, "source") == Some("aws.events");
    }
    !(obj.contains_key("Records") || obj.contains_key("alarmData") || is_s3_test_event(event))
}

