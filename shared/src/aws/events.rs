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
//! alarm action with an empty name, so `detail-type` is checked first; the
//! crate's `SqsEvent` fails a whole batch on one message attribute whose
//! `binaryValue` is not base64, so SQS records are read one by one.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
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
            Some("aws:s3") => {
                decode_s3_notification(event, "S3 notification").map(IngestEvent::Objects)
            }
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
            return decode_object_created(event, "EventBridge Object Created")
                .map(IngestEvent::Objects);
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
    str_field(v, "detail-type") == Some("Object Created")
        && str_field(v, "source") == Some("aws.s3")
}

/// Strip the quotes an ETag may carry; `None` for an empty one.
fn normalize_etag(etag: Option<&str>) -> Option<String> {
    let e = etag?.trim().trim_matches('"');
    (!e.is_empty()).then(|| e.to_string())
}

/// The created objects of an S3 notification (`{"Records": [...]}`).
fn decode_s3_notification(v: &Value, context: &str) -> Result<Vec<ObjectRef>, EventError> {
    let ev = S3Event::deserialize(v)
        .map_err(|e| malformed(context, format!("S3 notification does not parse: {e}")))?;
    let mut out = Vec::with_capacity(ev.records.len());
    for (i, r) in ev.records.iter().enumerate() {
        let name = r
            .event_name
            .as_deref()
            .ok_or_else(|| malformed(context, format!("record {i} has no eventName")))?;
        if !name.starts_with("ObjectCreated:") {
            continue;
        }
        let bucket =
            r.s3.bucket
                .name
                .as_deref()
                .filter(|b| !b.is_empty())
                .ok_or_else(|| malformed(context, format!("record {i} has no s3.bucket.name")))?;
        let raw_key =
            r.s3.object
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
        return Err(malformed(
            context,
            "empty detail.bucket.name or detail.object.key",
        ));
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
    let v: Value = serde_json::from_str(text).map_err(|e| {
        shape(
            context,
            EXPECTED_PAYLOAD,
            format!("text, not JSON ({e}): {:?}", excerpt(text, 80)),
        )
    })?;
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
    // Records are read one by one rather than as the crate's `SqsEvent`:
    // that type fails the whole batch on one message attribute it cannot
    // decode (a `binaryValue` that is not base64), and only `messageId` and
    // `body` matter here.
    let records = event
        .get("Records")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("SQS event", "Records is not an array"))?;
    let mut items = Vec::with_capacity(records.len());
    let mut all_test = true;
    for (i, m) in records.iter().enumerate() {
        let Some(id) = str_field(m, "messageId").filter(|id| !id.is_empty()) else {
            return Err(malformed(
                "SQS event",
                format!("record {i} has no messageId"),
            ));
        };
        let context = format!("SQS message {id}");
        let decoded = match m.get("body") {
            Some(Value::String(body)) => decode_payload_str(body, &context, true),
            None | Some(Value::Null) => Err(malformed(&context, "no body")),
            Some(other) => Err(malformed(
                &context,
                format!("body is {}, expected a string", describe(other)),
            )),
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
    let ev = SnsEvent::deserialize(event)
        .map_err(|e| malformed("SNS event", format!("does not parse: {e}")))?;
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
            return Err(malformed(
                context,
                format!("alarmData is {}", describe(body)),
            ));
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
    let digits: String = reason[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
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
            format!(
                "{which}.value is {}, expected a string",
                describe(other.unwrap_or(&Value::Null))
            ),
        )),
    }
}

/// The alarm body shared by alarm actions (`alarmData`) and EventBridge
/// (`detail`): `alarmName`, `state`, `previousState`, `configuration`.
fn decode_alarm_body(
    body: &Value,
    envelope_time: Option<&str>,
    context: &str,
) -> Result<AlarmChange, EventError> {
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
    let reason = str_field(state_obj, "reason")
        .unwrap_or_default()
        .to_string();

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
        .or_else(|| {
            config
                .and_then(|c| c.get("datapointsToAlarm"))
                .and_then(as_i64)
        })
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
    let ev = SnsEvent::deserialize(event)
        .map_err(|e| malformed("SNS event", format!("does not parse: {e}")))?;
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
            return Err(shape(
                &context,
                "a CloudWatch alarm notification",
                describe(&m),
            ));
        };
        let context = format!("{context} for alarm {name:?}");
        let state = state_of(
            &serde_json::json!({"value": m.get("NewStateValue")}),
            &context,
            "NewStateValue",
        )?;
        let previous = match m.get("OldStateValue") {
            Some(Value::String(_)) => Some(state_of(
                &serde_json::json!({"value": m.get("OldStateValue")}),
                &context,
                "OldStateValue",
            )?),
            _ => None,
        };
        let time_str = str_field(&m, "StateChangeTime")
            .ok_or_else(|| malformed(&context, "no StateChangeTime"))?;
        let time_ms = parse_time_ms(time_str).ok_or_else(|| {
            malformed(
                &context,
                format!("StateChangeTime {time_str:?} does not parse"),
            )
        })?;
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
            reason: str_field(&m, "NewStateReason")
                .unwrap_or_default()
                .to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/events");

    /// What each fixture is, for the decoders.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kind {
        /// `decode_ingest` succeeds.
        Ingest,
        /// Ingest family (S3/SQS/SNS record shape) but not S3: `decode_ingest` fails.
        IngestError,
        /// `decode_alarm` succeeds.
        Alarm,
        /// `is_schedule` is true.
        Schedule,
        /// None of the three: an unrelated EventBridge event.
        Unrelated,
    }
    use Kind::*;

    /// Every file under tests/fixtures/events/, with its kind. Files that are
    /// not events are in [`NOT_EVENTS`].
    const FIXTURES: &[(&str, Kind)] = &[
        ("aws_lambda_events_fixtures/example-cloudwatch-alarm-composite-with-suppressor-alarm.json", Alarm),
        ("aws_lambda_events_fixtures/example-cloudwatch-alarm-composite.json", Alarm),
        ("aws_lambda_events_fixtures/example-cloudwatch-alarm-metric.json", Alarm),
        ("aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-multiple-metrics.json", Alarm),
        ("aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-single-metric.json", Alarm),
        ("aws_lambda_events_fixtures/example-eventbridge-event-obj.json", Unrelated),
        ("aws_lambda_events_fixtures/example-eventbridge-schedule.json", Schedule),
        ("aws_lambda_events_fixtures/example-s3-event-with-decoded.json", Ingest),
        ("aws_lambda_events_fixtures/example-s3-event.json", Ingest),
        ("aws_lambda_events_fixtures/example-sns-event.json", IngestError),
        ("aws_lambda_events_fixtures/example-sqs-event.json", Ingest),
        ("awsdocs/eventbridge_cloudwatch_alarm_state_change_anomaly_detection.json", Alarm),
        ("awsdocs/eventbridge_cloudwatch_alarm_state_change_metric_math.json", Alarm),
        ("awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json", Alarm),
        ("awsdocs/eventbridge_s3_object_created.json", Ingest),
        ("awsdocs/s3_notification_put.json", Ingest),
        ("awsdocs/s3_test_event.json", Ingest),
        ("powertools/cloudWatchAlarmEventCompositeMetric.json", Alarm),
        ("powertools/cloudWatchAlarmEventSingleMetric.json", Alarm),
        ("powertools/eventBridgeEvent.json", Unrelated),
        ("powertools/s3Event.json", Ingest),
        ("powertools/s3EventBridgeNotificationObjectCreatedEvent.json", Ingest),
        ("powertools/s3EventDecodedKey.json", Ingest),
        ("powertools/s3SqsEvent.json", Ingest),
        ("powertools/snsEvent.json", IngestError),
        ("powertools/snsSqsEvent.json", Ingest),
        ("powertools/sqsEvent.json", Ingest),
        ("synthesized/eventbridge_cloudwatch_alarm_period_86400.json", Alarm),
        ("synthesized/eventbridge_s3_object_created_key_with_space.json", Ingest),
        ("synthesized/eventbridge_scheduler_custom_input.json", Schedule),
        ("synthesized/lambda_alarm_action_period_86400.json", Alarm),
        ("synthesized/s3_notification_alb_key_urlencoded_multipart.json", Ingest),
        ("synthesized/s3_test_event_via_sqs.json", Ingest),
        ("synthesized/s3_via_sns.json", Ingest),
        ("synthesized/s3_via_sns_via_sqs.json", Ingest),
    ];

    /// Files in the fixture directory that are not events.
    const NOT_EVENTS: &[&str] = &["EVENTCHECK_RESULTS.md"];

    fn load(rel: &str) -> Value {
        let path = format!("{FIXTURE_DIR}/{rel}");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ingest(rel: &str) -> IngestEvent {
        decode_ingest(&load(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn objects(rel: &str) -> Vec<ObjectRef> {
        match ingest(rel) {
            IngestEvent::Objects(o) => o,
            other => panic!("{rel}: expected Objects, got {other:?}"),
        }
    }

    fn sqs(rel: &str) -> Vec<SqsItem> {
        match ingest(rel) {
            IngestEvent::Sqs(items) => items,
            other => panic!("{rel}: expected Sqs, got {other:?}"),
        }
    }

    fn alarm(rel: &str) -> AlarmChange {
        decode_alarm(&load(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    fn obj(bucket: &str, key: &str, etag: &str, size: i64, sequencer: &str) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            etag: Some(etag.into()),
            size: Some(size),
            sequencer: Some(sequencer.into()),
        }
    }

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn is_shape_error(e: &EventError) -> bool {
        matches!(e, EventError::UnexpectedShape { .. })
    }

    // -- the fixture list ---------------------------------------------------

    #[test]
    fn every_fixture_file_is_listed() {
        fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, base, out);
                } else {
                    let rel = path.strip_prefix(base).unwrap();
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        let base = std::path::Path::new(FIXTURE_DIR);
        let mut found = Vec::new();
        walk(base, base, &mut found);
        found.sort();
        let mut listed: Vec<String> = FIXTURES
            .iter()
            .map(|(p, _)| p.to_string())
            .chain(NOT_EVENTS.iter().map(|p| p.to_string()))
            .collect();
        listed.sort();
        assert_eq!(
            found, listed,
            "fixture files and the FIXTURES list differ: add new files to FIXTURES (and assert their values)"
        );
    }

    /// Each fixture decodes with the decoder of its family and gives a shape
    /// error (or `false`) with the others.
    #[test]
    fn every_fixture_by_family() {
        for &(rel, kind) in FIXTURES {
            let v = load(rel);
            let ingest = decode_ingest(&v);
            let alarm = decode_alarm(&v);
            let schedule = is_schedule(&v);
            match kind {
                Ingest => assert!(ingest.is_ok(), "{rel}: {ingest:?}"),
                _ => {
                    let e = ingest.as_ref().expect_err(rel);
                    assert!(is_shape_error(e), "{rel}: {e:?}");
                    assert!(e.to_string().contains("not "), "{rel}: {e}");
                }
            }
            match kind {
                Alarm => assert!(alarm.is_ok(), "{rel}: {alarm:?}"),
                _ => {
                    let e = alarm.as_ref().expect_err(rel);
                    assert!(is_shape_error(e), "{rel}: {e:?}");
                }
            }
            assert_eq!(schedule, kind == Schedule, "{rel}: is_schedule");
        }
    }

    // -- S3 notifications ---------------------------------------------------

    #[test]
    fn s3_notification_put() {
        assert_eq!(
            objects("awsdocs/s3_notification_put.json"),
            vec![obj(
                "mybucket",
                "HappyFace.jpg",
                "d41d8cd98f00b204e9800998ecf8427e",
                1024,
                "0055AED6DCD90281E5"
            )]
        );
    }

    #[test]
    fn s3_notification_alb_key_plus_and_percent_3d() {
        let o = objects("synthesized/s3_notification_alb_key_urlencoded_multipart.json");
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].bucket, "my-alb-logs");
        assert_eq!(
            o[0].key,
            "alb logs/dt=2024-01-01/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/01/01/\
             123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_\
             20240101T0005Z_172.160.001.192_20sg8hgm.log.gz"
        );
        assert_eq!(
            o[0].etag.as_deref(),
            Some("d41d8cd98f00b204e9800998ecf8427e-7")
        );
        assert_eq!(o[0].size, Some(52_428_800));
        assert_eq!(o[0].sequencer.as_deref(), Some("0055AED6DCD90281E5"));
    }

    #[test]
    fn s3_crate_fixtures_percent_20_key() {
        for rel in [
            "aws_lambda_events_fixtures/example-s3-event.json",
            "aws_lambda_events_fixtures/example-s3-event-with-decoded.json",
            "powertools/s3EventDecodedKey.json",
        ] {
            assert_eq!(
                objects(rel),
                vec![obj(
                    "sourcebucket",
                    "Happy Face.jpg",
                    "d41d8cd98f00b204e9800998ecf8427e",
                    1024,
                    "Happy Sequencer"
                )],
                "{rel}"
            );
            // Our decoding agrees with urlDecodedKey where the event has it.
            if let Some(d) = load(rel)["Records"][0]["s3"]["object"]["urlDecodedKey"].as_str() {
                assert_eq!(d, "Happy Face.jpg");
            }
        }
    }

    #[test]
    fn s3_powertools() {
        assert_eq!(
            objects("powertools/s3Event.json"),
            vec![obj(
                "lambda-artifacts-deafc19498e3f2df",
                "b21b84d653bb07b05b1e6b33684dc11b",
                "b21b84d653bb07b05b1e6b33684dc11b",
                1_305_107,
                "0C0F6F405D6ED209E1"
            )]
        );
    }

    #[test]
    fn s3_test_event_direct() {
        assert_eq!(ingest("awsdocs/s3_test_event.json"), IngestEvent::Test);
    }

    fn s3_record(event_name: &str, key: &str, etag: &str) -> Value {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-01-01T00:00:00.000Z", "eventName": event_name,
            "userIdentity": {"principalId": "X"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": "b"},
                   "object": {"key": key, "size": 7, "eTag": etag, "sequencer": "01"}}
        })
    }

    #[test]
    fn s3_only_object_created_counts_and_etag_quotes_go() {
        let event = json!({"Records": [
            s3_record("ObjectRemoved:Delete", "gone", "x"),
            s3_record("ObjectCreated:Put", "a%2Bb+c%3Dd/e", "\"abc\""),
            s3_record("ObjectRestore:Completed", "restored", "y"),
            s3_record("ObjectCreated:Copy", "x%20y", ""),
        ]});
        let o = match decode_ingest(&event).unwrap() {
            IngestEvent::Objects(o) => o,
            other => panic!("{other:?}"),
        };
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].key, "a+b c=d/e");
        assert_eq!(o[0].etag.as_deref(), Some("abc"));
        assert_eq!(o[1].key, "x y");
        assert_eq!(o[1].etag, None);
        // Only removals: no objects, not an error.
        let removed = json!({"Records": [s3_record("ObjectRemoved:Delete", "gone", "x")]});
        assert_eq!(
            decode_ingest(&removed).unwrap(),
            IngestEvent::Objects(vec![])
        );
    }

    #[test]
    fn s3_bad_key_fails_clearly() {
        let event = json!({"Records": [s3_record("ObjectCreated:Put", "bad%ZZkey", "e")]});
        let e = decode_ingest(&event).unwrap_err();
        assert!(matches!(e, EventError::BadKey { .. }), "{e:?}");
        assert!(e.to_string().contains("bad%ZZkey"), "{e}");
    }

    // -- decode_s3_key ------------------------------------------------------

    #[test]
    fn key_decoding() {
        let ok = |raw: &str, want: &str| assert_eq!(decode_s3_key(raw).unwrap(), want, "{raw}");
        ok("plain/key.log.gz", "plain/key.log.gz");
        ok("alb+logs/dt%3D2024-01-01/x", "alb logs/dt=2024-01-01/x");
        ok("a%2Bb", "a+b");
        ok("a%2bb", "a+b");
        ok("a+%2B+b", "a + b");
        ok("sp%20ace", "sp ace");
        ok("%25", "%");
        ok("caf%C3%A9/%E2%98%83", "café/☃");
        ok("already/é", "already/é");
        ok("slash%2Fencoded/kept", "slash/encoded/kept");
        ok("", "");
        for bad in ["%", "%2", "a%G0", "a%0g", "%%"] {
            let e = decode_s3_key(bad).unwrap_err();
            assert!(e.to_string().contains("hex digits"), "{bad}: {e}");
        }
        let e = decode_s3_key("bad%FFutf8").unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        let e = decode_s3_key("half%C3").unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }

    // -- EventBridge Object Created ----------------------------------------

    #[test]
    fn eventbridge_object_created() {
        assert_eq!(
            objects("awsdocs/eventbridge_s3_object_created.json"),
            vec![obj(
                "DOC-EXAMPLE-BUCKET1",
                "example-key",
                "b1946ac92492d2347c6235b4d2611184",
                5,
                "617f08299329d189"
            )]
        );
        assert_eq!(
            objects("powertools/s3EventBridgeNotificationObjectCreatedEvent.json"),
            vec![obj(
                "example-bucket",
                "IMG_m7fzo3.jpg",
                "4e68adba0abe2dc8653dc3354e14c01d",
                184_662,
                "006408CAD69598B05E"
            )]
        );
    }

    #[test]
    fn eventbridge_key_taken_as_is() {
        let o = objects("synthesized/eventbridge_s3_object_created_key_with_space.json");
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].bucket, "DOC-EXAMPLE-BUCKET1");
        assert_eq!(
            o[0].key,
            "waf logs/AWSLogs/111122223333/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/\
             111122223333_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz"
        );
        // Not decoded: a '+' in an EventBridge key stays a '+'.
        let mut v = load("awsdocs/eventbridge_s3_object_created.json");
        v["detail"]["object"]["key"] = json!("a+b%3D");
        match decode_ingest(&v).unwrap() {
            IngestEvent::Objects(o) => assert_eq!(o[0].key, "a+b%3D"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn eventbridge_other_events_are_shape_errors() {
        for rel in [
            "aws_lambda_events_fixtures/example-eventbridge-event-obj.json",
            "powertools/eventBridgeEvent.json",
            "aws_lambda_events_fixtures/example-eventbridge-schedule.json",
        ] {
            let e = decode_ingest(&load(rel)).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.contains("not an S3, SQS, SNS or EventBridge Object Created event")
                    && msg.contains("detail-type"),
                "{rel}: {msg}"
            );
        }
        let e = decode_ingest(&load(
            "aws_lambda_events_fixtures/example-eventbridge-event-obj.json",
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("EC2 Instance State-change Notification"),
            "{e}"
        );
    }

    // -- SNS ----------------------------------------------------------------

    #[test]
    fn s3_via_sns() {
        assert_eq!(
            objects("synthesized/s3_via_sns.json"),
            vec![obj(
                "mybucket",
                "HappyFace.jpg",
                "d41d8cd98f00b204e9800998ecf8427e",
                1024,
                "0055AED6DCD90281E5"
            )]
        );
    }

    #[test]
    fn sns_with_other_messages_fails_naming_the_message() {
        let e =
            decode_ingest(&load("aws_lambda_events_fixtures/example-sns-event.json")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("SNS message 82833b5c-8d5d-56d0-b0e1-7511f8253eb8"),
            "{msg}"
        );
        assert!(msg.contains("not JSON"), "{msg}");
        let e = decode_ingest(&load("powertools/snsEvent.json")).unwrap_err();
        assert!(
            e.to_string()
                .contains("SNS message 95df01b4-ee98-5cb9-9903-4c221d41eb5e"),
            "{e}"
        );
        // An alarm notification over SNS is not an S3 notification.
        let e = decode_ingest(&load(
            "aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-single-metric.json",
        ))
        .unwrap_err();
        assert!(is_shape_error(&e), "{e:?}");
        assert!(e.to_string().contains("AlarmName"), "{e}");
    }

    #[test]
    fn sns_test_event_is_test() {
        let mut v = load("synthesized/s3_via_sns.json");
        v["Records"][0]["Sns"]["Message"] =
            json!(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#);
        assert_eq!(decode_ingest(&v).unwrap(), IngestEvent::Test);
    }

    // -- SQS ----------------------------------------------------------------

    #[test]
    fn s3_via_sqs() {
        let items = sqs("powertools/s3SqsEvent.json");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].message_id, "ca3e7a89-c358-40e5-8aa0-5da01403c267");
        assert_eq!(
            items[0].objects,
            Ok(vec![obj(
                "xxx",
                "test.pdf",
                "2e3ad1e983318bbd8e73b080e2997980",
                104_681,
                "00643717F9F8B85354"
            )])
        );
    }

    #[test]
    fn s3_via_sns_via_sqs() {
        let items = sqs("synthesized/s3_via_sns_via_sqs.json");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].message_id, "ca3e7a89-c358-40e5-8aa0-5da01403c267");
        assert_eq!(
            items[0].objects,
            Ok(vec![obj(
                "mybucket",
                "HappyFace.jpg",
                "d41d8cd98f00b204e9800998ecf8427e",
                1024,
                "0055AED6DCD90281E5"
            )])
        );
    }

    #[test]
    fn s3_test_event_via_sqs() {
        assert_eq!(
            ingest("synthesized/s3_test_event_via_sqs.json"),
            IngestEvent::Test
        );
    }

    #[test]
    fn sqs_non_s3_bodies_fail_per_message() {
        let items = sqs("aws_lambda_events_fixtures/example-sqs-event.json");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].message_id, "MessageID_1");
        let e = items[0].objects.as_ref().unwrap_err();
        assert!(
            e.to_string().contains("SQS message MessageID_1") && e.to_string().contains("not JSON"),
            "{e}"
        );

        // Its first message has `binaryValue: "base64Str"`, which fails the
        // crate's `SqsEvent` for the whole batch; here it is just a message.
        let items = sqs("powertools/sqsEvent.json");
        let ids: Vec<&str> = items.iter().map(|i| i.message_id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "059f36b4-87a3-44ab-83d2-661975830a7d",
                "2e1424d4-f796-459a-8184-9c92662be6da"
            ]
        );
        assert!(items[0]
            .objects
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("not JSON"));
        let e = items[1].objects.as_ref().unwrap_err();
        assert!(is_shape_error(e), "{e:?}");
        assert!(e.to_string().contains("keys: message"), "{e}");

        // SNS → SQS with a non-S3 SNS message.
        let items = sqs("powertools/snsSqsEvent.json");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].message_id, "79406a00-bf15-46ca-978c-22c3613fcb30");
        let e = items[0].objects.as_ref().unwrap_err();
        assert!(
            e.to_string()
                .contains("SQS message 79406a00-bf15-46ca-978c-22c3613fcb30, SNS message d88d4479-6ec0-54fe-b63f-1cf9df4bb16e"),
            "{e}"
        );
    }

    #[test]
    fn sqs_one_good_one_garbage() {
        let mut v = load("powertools/s3SqsEvent.json");
        let mut bad = v["Records"][0].clone();
        bad["messageId"] = json!("bad-1");
        bad["body"] = json!("{garbage");
        let mut test = v["Records"][0].clone();
        test["messageId"] = json!("test-1");
        test["body"] = json!(r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#);
        v["Records"].as_array_mut().unwrap().push(bad);
        v["Records"].as_array_mut().unwrap().push(test);
        let items = match decode_ingest(&v).unwrap() {
            IngestEvent::Sqs(items) => items,
            other => panic!("{other:?}"),
        };
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].objects.as_ref().unwrap().len(), 1);
        assert_eq!(items[1].message_id, "bad-1");
        let e = items[1].objects.as_ref().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("SQS message bad-1: not an S3 notification")
                && e.to_string().contains("not JSON"),
            "{e}"
        );
        assert_eq!(items[2].message_id, "test-1");
        assert_eq!(items[2].objects, Ok(vec![]));
    }

    #[test]
    fn sqs_eventbridge_body() {
        let mut v = load("powertools/s3SqsEvent.json");
        let eb = load("awsdocs/eventbridge_s3_object_created.json");
        v["Records"][0]["body"] = json!(eb.to_string());
        let items = match decode_ingest(&v).unwrap() {
            IngestEvent::Sqs(items) => items,
            other => panic!("{other:?}"),
        };
        assert_eq!(items[0].objects.as_ref().unwrap()[0].key, "example-key");
    }

    #[test]
    fn sqs_without_message_id_fails() {
        let mut v = load("powertools/s3SqsEvent.json");
        v["Records"][0].as_object_mut().unwrap().remove("messageId");
        let e = decode_ingest(&v).unwrap_err();
        assert!(e.to_string().contains("no messageId"), "{e}");
    }

    // -- malformed inputs ---------------------------------------------------

    #[test]
    fn malformed_inputs_give_clear_errors() {
        let cases: &[(Value, &str)] = &[
            (json!(null), "event: not an S3, SQS, SNS or EventBridge Object Created event (null)"),
            (json!([]), "(an array of 0 elements)"),
            (json!("x"), "(a string)"),
            (json!(7), "(a number)"),
            (json!({}), "(an empty object)"),
            (json!({"a": 1, "b": 2}), "(keys: a, b)"),
            (json!({"Records": []}), "Records is empty"),
            (json!({"Records": {}}), "Records is an empty object, expected an array"),
            (json!({"Records": [{"eventSource": "aws:s3"}]}), "S3 notification does not parse"),
            (json!({"Records": [{"eventSource": "aws:kinesis"}]}), "Records[0]: not an S3, SQS or SNS record"),
            (json!({"Records": [1]}), "Records[0]: not an S3, SQS or SNS record (eventSource aws:s3 or aws:sqs, EventSource aws:sns) (a number)"),
            (json!({"Records": [{"eventSource": "aws:sqs"}]}), "SQS event: record 0 has no messageId"),
            (json!({"Records": [{"EventSource": "aws:sns"}]}), "SNS event: does not parse"),
            (json!({"detail-type": "Object Created", "source": "aws.s3"}), "Object Created event does not parse"),
            (json!({"detail-type": "Object Created", "source": "aws.s3", "detail": {"bucket": {"name": "b"}, "object": {"key": ""}}}), "empty detail.bucket.name or detail.object.key"),
        ];
        for (v, want) in cases {
            let e = decode_ingest(v).unwrap_err();
            assert!(e.to_string().contains(want), "{v}: {e}");
        }
        let sqs_no_body = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m1"}]});
        match decode_ingest(&sqs_no_body).unwrap() {
            IngestEvent::Sqs(items) => {
                assert_eq!(items[0].message_id, "m1");
                assert_eq!(
                    items[0].objects.as_ref().unwrap_err().to_string(),
                    "SQS message m1: no body"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ingest_on_alarm_names_the_shape() {
        let e = decode_ingest(&load(
            "aws_lambda_events_fixtures/example-cloudwatch-alarm-metric.json",
        ))
        .unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("event: not an S3, SQS, SNS or EventBridge Object Created event ("),
            "{msg}"
        );
        assert!(
            msg.contains("a CloudWatch alarm action") && msg.contains("alarmData"),
            "{msg}"
        );
        let e = decode_ingest(&load(
            "awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json",
        ))
        .unwrap_err();
        assert!(
            e.to_string().contains("\"CloudWatch Alarm State Change\""),
            "{e}"
        );
    }

    // -- alarms -------------------------------------------------------------

    #[test]
    fn alarm_action_metric_with_spaced_times() {
        let a = alarm("aws_lambda_events_fixtures/example-cloudwatch-alarm-metric.json");
        assert_eq!(a.name, "lambda-demo-metric-alarm");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::InsufficientData));
        assert_eq!(a.time_ms, ms("2023-08-04T12:36:15.490Z"));
        assert_eq!(a.reason, "test");
        assert_eq!(a.evaluation_window_ms, Some(60_000));
    }

    #[test]
    fn alarm_action_period_one_day() {
        let a = alarm("synthesized/lambda_alarm_action_period_86400.json");
        assert_eq!(a.name, "lambda-demo-metric-alarm");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::InsufficientData));
        assert_eq!(a.time_ms, ms("2023-08-04T12:36:15.490Z"));
        assert_eq!(a.evaluation_window_ms, Some(86_400_000));
    }

    #[test]
    fn alarm_action_composite() {
        for rel in [
            "aws_lambda_events_fixtures/example-cloudwatch-alarm-composite.json",
            "powertools/cloudWatchAlarmEventCompositeMetric.json",
        ] {
            let a = alarm(rel);
            assert_eq!(a.name, "CompositeDemo.Main", "{rel}");
            assert_eq!(a.state, AlarmState::Alarm);
            assert_eq!(a.previous, Some(AlarmState::Alarm));
            assert_eq!(a.time_ms, ms("2023-08-04T12:56:46.138Z"), "{rel}");
            assert!(a
                .reason
                .contains("CompositeDemo.FirstChild transitioned to ALARM"));
            assert_eq!(a.evaluation_window_ms, None, "{rel}");
        }
    }

    #[test]
    fn alarm_action_composite_hybrid_with_detail_type() {
        let a = alarm("aws_lambda_events_fixtures/example-cloudwatch-alarm-composite-with-suppressor-alarm.json");
        assert_eq!(a.name, "ServiceAggregatedAlarm");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::Ok));
        assert_eq!(a.time_ms, ms("2022-07-22T15:57:45.394Z"));
        assert_eq!(a.evaluation_window_ms, None);
    }

    #[test]
    fn alarm_action_metric_math() {
        let a = alarm("powertools/cloudWatchAlarmEventSingleMetric.json");
        assert_eq!(a.name, "Test alert");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::Ok));
        assert_eq!(a.time_ms, ms("2024-02-17T11:53:08.431Z"));
        assert!(a
            .reason
            .starts_with("Threshold Crossed: 1 out of the last 1 datapoints"));
        assert_eq!(a.evaluation_window_ms, Some(60_000));
    }

    #[test]
    fn eventbridge_alarm_single_metric() {
        let a = alarm("awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json");
        assert_eq!(a.name, "ServerCpuTooHigh");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::Ok));
        assert_eq!(a.time_ms, ms("2019-10-02T17:04:40.989Z"));
        assert_eq!(a.evaluation_window_ms, Some(300_000));
    }

    #[test]
    fn eventbridge_alarm_metric_math() {
        let a = alarm("awsdocs/eventbridge_cloudwatch_alarm_state_change_metric_math.json");
        assert_eq!(a.name, "TotalNetworkTrafficTooHigh");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::InsufficientData));
        assert_eq!(a.time_ms, ms("2019-10-02T17:20:48.554Z"));
        assert_eq!(a.evaluation_window_ms, Some(300_000));
    }

    #[test]
    fn eventbridge_alarm_anomaly_detection() {
        let a = alarm("awsdocs/eventbridge_cloudwatch_alarm_state_change_anomaly_detection.json");
        assert_eq!(a.name, "EC2 CPU Utilization Anomaly");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::Ok));
        assert_eq!(a.time_ms, ms("2019-10-03T16:00:04.653Z"));
        assert_eq!(a.evaluation_window_ms, Some(60_000));
    }

    #[test]
    fn eventbridge_alarm_period_one_day() {
        let a = alarm("synthesized/eventbridge_cloudwatch_alarm_period_86400.json");
        assert_eq!(a.name, "ServerCpuTooHigh");
        assert_eq!(a.state, AlarmState::Alarm);
        assert_eq!(a.previous, Some(AlarmState::Ok));
        assert_eq!(a.time_ms, ms("2019-10-02T17:04:40.989Z"));
        assert_eq!(a.evaluation_window_ms, Some(86_400_000));
    }

    #[test]
    fn sns_alarm_notifications() {
        for rel in [
            "aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-single-metric.json",
            "aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-multiple-metrics.json",
        ] {
            let a = alarm(rel);
            assert_eq!(a.name, "EXAMPLE", "{rel}");
            assert_eq!(a.state, AlarmState::Alarm);
            assert_eq!(a.previous, Some(AlarmState::InsufficientData));
            assert_eq!(a.time_ms, ms("2015-06-03T17:43:27.123Z"));
            assert!(a.reason.starts_with("Threshold Crossed"));
            assert_eq!(a.evaluation_window_ms, Some(60_000), "{rel}");
        }
    }

    #[test]
    fn evaluation_window_sources() {
        let mut v = load("awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json");
        // "M out of the last N datapoints" in the reason.
        v["detail"]["state"]["reason"] =
            json!("Threshold Crossed: 3 out of the last 5 datapoints [..]");
        assert_eq!(
            decode_alarm(&v).unwrap().evaluation_window_ms,
            Some(5 * 300_000)
        );
        // configuration.evaluationPeriods wins.
        v["detail"]["configuration"]["evaluationPeriods"] = json!(4);
        assert_eq!(
            decode_alarm(&v).unwrap().evaluation_window_ms,
            Some(4 * 300_000)
        );
        // No metrics: period from reasonData.
        v["detail"]["configuration"]
            .as_object_mut()
            .unwrap()
            .remove("metrics");
        v["detail"]["configuration"]
            .as_object_mut()
            .unwrap()
            .remove("evaluationPeriods");
        v["detail"]["state"]["reason"] = json!("x");
        assert_eq!(
            decode_alarm(&v).unwrap().evaluation_window_ms,
            Some(300_000)
        );
        // Nothing at all: None.
        v["detail"]["state"]
            .as_object_mut()
            .unwrap()
            .remove("reasonData");
        assert_eq!(decode_alarm(&v).unwrap().evaluation_window_ms, None);
    }

    #[test]
    fn alarm_time_falls_back_to_envelope() {
        let mut v = load("awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json");
        v["detail"]["state"]
            .as_object_mut()
            .unwrap()
            .remove("timestamp");
        assert_eq!(
            decode_alarm(&v).unwrap().time_ms,
            ms("2019-10-02T17:04:40Z")
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(
            parse_time_ms("2023-08-04T12:36:15.490+0000"),
            Some(ms("2023-08-04T12:36:15.490Z"))
        );
        assert_eq!(
            parse_time_ms("2023-08-04T12: 36: 15.490+0000"),
            Some(ms("2023-08-04T12:36:15.490Z"))
        );
        assert_eq!(
            parse_time_ms("2023-08-04T14:36:15.490+0200"),
            Some(ms("2023-08-04T12:36:15.490Z"))
        );
        assert_eq!(
            parse_time_ms("2019-10-02T17:04:40Z"),
            Some(ms("2019-10-02T17:04:40Z"))
        );
        assert_eq!(
            parse_time_ms("2019-10-02T17:04:40+0000"),
            Some(ms("2019-10-02T17:04:40Z"))
        );
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(parse_time_ms(""), None);
    }

    #[test]
    fn alarm_wrong_family_and_malformed() {
        let cases: &[(Value, &str)] = &[
            (json!(null), "event: not a CloudWatch alarm event"),
            (json!([]), "(an array of 0 elements)"),
            (json!({}), "(an empty object)"),
            (json!({"Records": []}), "Records is empty"),
            (
                json!({"Records": [{"eventSource": "aws:s3"}]}),
                "Records from \"aws:s3\"",
            ),
            (
                json!({"alarmData": 1}),
                "CloudWatch alarm action: alarmData is a number",
            ),
            (
                json!({"alarmData": {}}),
                "CloudWatch alarm action: no alarmName",
            ),
            (json!({"alarmData": {"alarmName": "a"}}), "no state object"),
            (
                json!({"alarmData": {"alarmName": "a", "state": {"value": "BAD"}}}),
                "state.value is \"BAD\", expected ALARM, OK or INSUFFICIENT_DATA",
            ),
            (
                json!({"alarmData": {"alarmName": "a", "state": {"value": "OK"}}}),
                "no state.timestamp nor time",
            ),
            (
                json!({"alarmData": {"alarmName": "a", "state": {"value": "OK", "timestamp": "soon"}}}),
                "time \"soon\" is not like",
            ),
            (
                json!({"detail-type": "CloudWatch Alarm State Change"}),
                "no detail object",
            ),
        ];
        for (v, want) in cases {
            let e = decode_alarm(v).unwrap_err();
            assert!(e.to_string().contains(want), "{v}: {e}");
        }
        // Ingest events and schedules.
        for rel in [
            "awsdocs/s3_notification_put.json",
            "awsdocs/s3_test_event.json",
            "powertools/s3SqsEvent.json",
            "aws_lambda_events_fixtures/example-eventbridge-schedule.json",
        ] {
            let e = decode_alarm(&load(rel)).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("event: not a CloudWatch alarm event"),
                "{rel}: {e}"
            );
        }
        // SNS carrying an S3 notification: the message is not an alarm.
        let e = decode_alarm(&load("synthesized/s3_via_sns.json")).unwrap_err();
        assert!(
            e.to_string().starts_with("SNS message 82833b5c-8d5d-56d0-b0e1-7511f8253eb8: not a CloudWatch alarm notification"),
            "{e}"
        );
        // Minimal valid alarm action.
        let a = decode_alarm(&json!({"alarmData": {"alarmName": "a",
            "state": {"value": "OK", "timestamp": "2024-01-01T00:00:00.000+0000"}}}))
        .unwrap();
        assert_eq!(
            a,
            AlarmChange {
                name: "a".into(),
                state: AlarmState::Ok,
                previous: None,
                time_ms: ms("2024-01-01T00:00:00Z"),
                reason: String::new(),
                evaluation_window_ms: None,
            }
        );
    }

    // -- schedules ----------------------------------------------------------

    #[test]
    fn schedules() {
        assert!(is_schedule(&load(
            "aws_lambda_events_fixtures/example-eventbridge-schedule.json"
        )));
        assert!(is_schedule(&load(
            "synthesized/eventbridge_scheduler_custom_input.json"
        )));
        assert!(is_schedule(&json!({})));
        assert!(!is_schedule(&json!(null)));
        assert!(!is_schedule(&json!([])));
        assert!(!is_schedule(&json!("x")));
        assert!(!is_schedule(
            &json!({"detail-type": "Scheduled Event", "source": "aws.ec2"})
        ));
        assert!(!is_schedule(&load("awsdocs/s3_test_event.json")));
        assert!(!is_schedule(&load("awsdocs/s3_notification_put.json")));
        assert!(!is_schedule(&load("powertools/eventBridgeEvent.json")));
    }
}
