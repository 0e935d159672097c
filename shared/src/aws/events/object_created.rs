//! S3 Object Created, the ingest function's trigger: an S3 notification
//! delivered directly, through SNS, through SQS (also S3 → SNS → SQS), or
//! an EventBridge `Object Created` event; and the S3 test event.

use super::{
    describe, excerpt, first_record, is_s3_test_event, malformed, record_source, shape, str_field,
    EventError,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sns::SnsEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What [`decode_ingest`] accepts, for error messages.
const EXPECTED_INGEST: &str = "an S3, SQS, SNS or EventBridge Object Created event";
/// What an SQS body or SNS message may hold, for error messages.
const EXPECTED_PAYLOAD: &str = "an S3 notification, S3 test event, SNS notification \
     or EventBridge Object Created event";

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

impl ObjectRef {
    /// An object known by its bucket and key only.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> ObjectRef {
        ObjectRef {
            bucket: bucket.into(),
            key: key.into(),
            etag: None,
            size: None,
            sequencer: None,
        }
    }
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

/// Whether a message payload may be an SNS envelope around the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnsEnvelope {
    /// One envelope is unwrapped (S3 → SNS → SQS without raw delivery).
    Allowed,
    /// The payload is the event itself.
    NotAllowed,
}

/// Decode a message payload (SQS body or SNS message text).
fn decode_payload_str(text: &str, context: &str, sns: SnsEnvelope) -> Result<Payload, EventError> {
    let v: Value = serde_json::from_str(text).map_err(|e| {
        shape(
            context,
            EXPECTED_PAYLOAD,
            format!("text, not JSON ({e}): {:?}", excerpt(text, 80)),
        )
    })?;
    decode_payload(&v, context, sns)
}

fn decode_payload(v: &Value, context: &str, sns: SnsEnvelope) -> Result<Payload, EventError> {
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
    if sns == SnsEnvelope::Allowed && str_field(v, "Type") == Some("Notification") {
        if let Some(message) = str_field(v, "Message") {
            let id = str_field(v, "MessageId").unwrap_or("?");
            let inner = format!("{context}, SNS message {id}");
            return decode_payload_str(message, &inner, SnsEnvelope::NotAllowed);
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
            Some(Value::String(body)) => decode_payload_str(body, &context, SnsEnvelope::Allowed),
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
        match decode_payload_str(&r.sns.message, &context, SnsEnvelope::NotAllowed)? {
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
                let hi = bytes
                    .get(i + 1)
                    .copied()
                    .and_then(crate::formats::hex_value);
                let lo = bytes
                    .get(i + 2)
                    .copied()
                    .and_then(crate::formats::hex_value);
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
