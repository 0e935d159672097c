//! Lambda trigger events: which S3 objects to ingest, which alarm changed,
//! whether an invocation is a schedule, which addresses a GuardDuty finding
//! names.
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
//! | `detail-type` (+ `source`) | EventBridge: `Object Created` / `aws.s3`, `CloudWatch Alarm State Change`, `Scheduled Event`, `GuardDuty Finding` / `aws.guardduty` (`events/guardduty.rs`) |
//! | `alarmData` | CloudWatch alarm action invoking Lambda directly |
//!
//! Known traps handled here (see `tests/fixtures/README.md`, section 5):
//! `S3Event` fails on the test event, so it is routed before parsing; S3
//! keys arrive form-encoded and are decoded by [`decode_s3_key`]; the
//! crate's metric-alarm type rejects metric-math and anomaly-detection
//! alarms and 1-day periods, so alarms are read leniently from JSON; an
//! EventBridge alarm event would mis-parse as an alarm action with an empty
//! name, so `detail-type` is checked first; the crate's `SqsEvent` fails a
//! whole batch on one message attribute whose `binaryValue` is not base64,
//! so SQS records are read one by one.
//!
//! One file per trigger: `events/object_created.rs` (the ingest function:
//! S3 Object Created, delivered directly, through SNS or SQS, or by
//! EventBridge), `events/alarm.rs` (the alarm function: CloudWatch alarm
//! state changes), `events/schedule.rs` (the expire function),
//! `events/guardduty.rs` (GuardDuty findings: the remote addresses to
//! block, or why a finding names none); tests in `events/tests.rs`
//! (GuardDuty fixtures: `tests/data/guardduty/`).

mod alarm;
mod guardduty;
mod object_created;
mod schedule;
#[cfg(test)]
mod tests;

pub use alarm::{decode_alarm, AlarmChange, AlarmState};
pub use guardduty::{decode_finding, is_guardduty_finding, Finding, Skip};
pub use object_created::{decode_ingest, decode_s3_key, IngestEvent, ObjectRef, SqsItem};
pub use schedule::is_schedule;

use serde_json::Value;

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
