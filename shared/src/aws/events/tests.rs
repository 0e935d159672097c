//! Tests of the trigger decoders against every event fixture under
//! tests/fixtures/events/ and hand-made malformed events.

use super::alarm::parse_time_ms;
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
    (
        "aws_lambda_events_fixtures/example-cloudwatch-alarm-composite-with-suppressor-alarm.json",
        Alarm,
    ),
    (
        "aws_lambda_events_fixtures/example-cloudwatch-alarm-composite.json",
        Alarm,
    ),
    (
        "aws_lambda_events_fixtures/example-cloudwatch-alarm-metric.json",
        Alarm,
    ),
    (
        "aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-multiple-metrics.json",
        Alarm,
    ),
    (
        "aws_lambda_events_fixtures/example-cloudwatch-alarm-sns-payload-single-metric.json",
        Alarm,
    ),
    (
        "aws_lambda_events_fixtures/example-eventbridge-event-obj.json",
        Unrelated,
    ),
    (
        "aws_lambda_events_fixtures/example-eventbridge-schedule.json",
        Schedule,
    ),
    (
        "aws_lambda_events_fixtures/example-s3-event-with-decoded.json",
        Ingest,
    ),
    ("aws_lambda_events_fixtures/example-s3-event.json", Ingest),
    (
        "aws_lambda_events_fixtures/example-sns-event.json",
        IngestError,
    ),
    ("aws_lambda_events_fixtures/example-sqs-event.json", Ingest),
    (
        "awsdocs/eventbridge_cloudwatch_alarm_state_change_anomaly_detection.json",
        Alarm,
    ),
    (
        "awsdocs/eventbridge_cloudwatch_alarm_state_change_metric_math.json",
        Alarm,
    ),
    (
        "awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json",
        Alarm,
    ),
    ("awsdocs/eventbridge_s3_object_created.json", Ingest),
    ("awsdocs/s3_notification_put.json", Ingest),
    ("awsdocs/s3_test_event.json", Ingest),
    ("powertools/cloudWatchAlarmEventCompositeMetric.json", Alarm),
    ("powertools/cloudWatchAlarmEventSingleMetric.json", Alarm),
    ("powertools/eventBridgeEvent.json", Unrelated),
    ("powertools/s3Event.json", Ingest),
    (
        "powertools/s3EventBridgeNotificationObjectCreatedEvent.json",
        Ingest,
    ),
    ("powertools/s3EventDecodedKey.json", Ingest),
    ("powertools/s3SqsEvent.json", Ingest),
    ("powertools/snsEvent.json", IngestError),
    ("powertools/snsSqsEvent.json", Ingest),
    ("powertools/sqsEvent.json", Ingest),
    (
        "synthesized/eventbridge_cloudwatch_alarm_period_86400.json",
        Alarm,
    ),
    (
        "synthesized/eventbridge_s3_object_created_key_with_space.json",
        Ingest,
    ),
    // The template sends it to the expire function, which reconciles on
    // any event: for the decoders it is unrelated.
    (
        "synthesized/eventbridge_cloudformation_ipset_update_complete.json",
        Unrelated,
    ),
    (
        "synthesized/eventbridge_scheduler_custom_input.json",
        Schedule,
    ),
    ("synthesized/lambda_alarm_action_period_86400.json", Alarm),
    (
        "synthesized/s3_notification_alb_key_urlencoded_multipart.json",
        Ingest,
    ),
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
    let e = decode_ingest(&load("aws_lambda_events_fixtures/example-sns-event.json")).unwrap_err();
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
    let a = alarm(
        "aws_lambda_events_fixtures/example-cloudwatch-alarm-composite-with-suppressor-alarm.json",
    );
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
        e.to_string().starts_with(
            "SNS message 82833b5c-8d5d-56d0-b0e1-7511f8253eb8: not a CloudWatch alarm notification"
        ),
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

// -- GuardDuty findings -------------------------------------------------

const GD_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/guardduty");

/// Every GuardDuty fixture (tests/data/guardduty/*.json).
const GD_FIXTURES: &[&str] = &[
    "aws_api_call.json",
    "dns_request_no_remote.json",
    "kubernetes_api_call.json",
    "network_connection.json",
    "network_connection_ipv6.json",
    "port_probe.json",
    "rds_login_attempt.json",
    "rds_login_attempt_anomalous_login.json",
    "s3_or_runtime_no_remote.json",
];

fn gd_load(name: &str) -> Value {
    let path = format!("{GD_DIR}/{name}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn gd(name: &str) -> Finding {
    finding(&gd_load(name), name)
}

fn finding(v: &Value, what: &str) -> Finding {
    let f = decode_finding(v).unwrap_or_else(|e| panic!("{what}: {e}"));
    check_finding(&f).unwrap_or_else(|e| panic!("{what}: {e}"));
    f
}

fn ip(s: &str) -> std::net::IpAddr {
    s.parse().unwrap()
}

fn ips(list: &[&str]) -> Vec<std::net::IpAddr> {
    list.iter().map(|s| ip(s)).collect()
}

/// What holds for every decoded finding: addresses xor a skip reason, no
/// duplicates, nothing unspecified, loopback or IPv4-mapped.
fn check_finding(f: &Finding) -> Result<(), String> {
    if f.remote.is_empty() == f.skip.is_none() {
        return Err(format!("remote {:?} with skip {:?}", f.remote, f.skip));
    }
    for (i, a) in f.remote.iter().enumerate() {
        if f.remote[..i].contains(a) {
            return Err(format!("{a} twice in {:?}", f.remote));
        }
        if a.is_unspecified() || a.is_loopback() || a.to_canonical() != *a {
            return Err(format!("{a} kept in {:?}", f.remote));
        }
    }
    if !f.severity.is_finite() {
        return Err(format!("severity {}", f.severity));
    }
    Ok(())
}

#[test]
fn gd_every_fixture_file_is_listed() {
    let mut found: Vec<String> = std::fs::read_dir(GD_DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    found.sort();
    assert_eq!(
        found, GD_FIXTURES,
        "add new GuardDuty fixtures to GD_FIXTURES"
    );
}

/// Every GuardDuty fixture is a finding, decodes, and is refused by the
/// other decoders; no other event fixture is a finding.
#[test]
fn gd_fixtures_by_family() {
    for &name in GD_FIXTURES {
        let v = gd_load(name);
        assert!(is_guardduty_finding(&v), "{name}");
        let f = gd(name);
        assert!(f.sample, "{name}: every fixture is a sample finding");
        assert_eq!(f.account, "123456789012", "{name}");
        let e = decode_ingest(&v).expect_err(name);
        assert!(
            is_shape_error(&e) && e.to_string().contains("\"GuardDuty Finding\""),
            "{name}: {e}"
        );
        let e = decode_alarm(&v).expect_err(name);
        assert!(is_shape_error(&e), "{name}: {e}");
        assert!(!is_schedule(&v), "{name}");
    }
    for &(rel, _) in FIXTURES {
        let v = load(rel);
        assert!(!is_guardduty_finding(&v), "{rel}");
        let e = decode_finding(&v).expect_err(rel);
        assert!(is_shape_error(&e), "{rel}: {e:?}");
        assert!(
            e.to_string()
                .starts_with("event: not an EventBridge GuardDuty Finding event"),
            "{rel}: {e}"
        );
    }
}

#[test]
fn gd_network_connection_inbound() {
    assert_eq!(
        gd("network_connection.json"),
        Finding {
            id: "b2b1f6f0c4f1d9a2e1c3b5a7d9e0f1a2".into(),
            kind: "UnauthorizedAccess:EC2/SSHBruteForce".into(),
            severity: 2.0,
            count: 1,
            updated_at: "2018-05-11T14:56:39.976Z".into(),
            account: "123456789012".into(),
            region: "us-east-1".into(),
            action: "NETWORK_CONNECTION".into(),
            sample: true,
            // Not the instance's own publicIp 198.51.100.20.
            remote: ips(&["198.51.100.0"]),
            skip: None,
        }
    );
}

#[test]
fn gd_port_probe_every_prober() {
    let f = gd("port_probe.json");
    assert_eq!(f.id, "5cbd952561ad83a6e287ba028d676cb7");
    assert_eq!(f.kind, "Recon:EC2/PortProbeUnprotectedPort");
    assert_eq!(f.action, "PORT_PROBE");
    assert_eq!(f.severity, 2.0);
    assert_eq!(f.count, 5);
    assert_eq!(f.updated_at, "2021-09-30T10:19:47.408Z");
    assert_eq!(f.region, "us-east-2");
    assert_eq!(f.remote, ips(&["203.0.113.10", "203.0.113.11"]));
    assert_eq!(f.skip, None);

    // The same prober twice is kept once; a detail without an address, or
    // with a bad one, is passed over.
    let mut v = gd_load("port_probe.json");
    let details = v["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"]
        .as_array_mut()
        .unwrap();
    let first = details[0].clone();
    details.push(json!({"localPortDetails": {"port": 22}}));
    details.push(json!({"remoteIpDetails": {"ipAddressV4": "not an address"}}));
    details.push(json!(null));
    details.push(first);
    details.push(json!({"remoteIpDetails": {"ipAddressV6": "2001:db8::10"}}));
    assert_eq!(
        finding(&v, "port probe").remote,
        ips(&["203.0.113.10", "203.0.113.11", "2001:db8::10"])
    );
    // No details at all: nothing to block.
    v["detail"]["service"]["action"]["portProbeAction"]["portProbeDetails"] = json!([]);
    assert_eq!(
        finding(&v, "port probe").skip,
        Some(Skip::NoRemoteAddress {
            action: "PORT_PROBE".into()
        })
    );
}

#[test]
fn gd_api_calls() {
    let f = gd("aws_api_call.json");
    assert_eq!(f.kind, "UnauthorizedAccess:IAMUser/TorIPCaller");
    assert_eq!(f.action, "AWS_API_CALL");
    assert_eq!(f.severity, 5.0);
    assert_eq!(f.count, 4);
    assert_eq!(f.region, "us-east-2");
    // Not the instance's publicIp 198.51.100.22.
    assert_eq!(f.remote, ips(&["203.0.113.20"]));

    let f = gd("kubernetes_api_call.json");
    assert_eq!(f.id, "43b6abcdeabcdeabcde1234562176924");
    assert_eq!(f.kind, "Discovery:Kubernetes/TorIPCaller");
    assert_eq!(f.action, "KUBERNETES_API_CALL");
    assert_eq!(f.count, 2);
    assert_eq!(f.remote, ips(&["203.0.113.30"]));
}

#[test]
fn gd_rds_login_attempts() {
    let f = gd("rds_login_attempt.json");
    assert_eq!(
        f.kind,
        "CredentialAccess:RDS/AnomalousBehavior.SuccessfulBruteForce"
    );
    assert_eq!(f.action, "RDS_LOGIN_ATTEMPT");
    assert_eq!(f.severity, 8.0);
    assert_eq!(f.remote, ips(&["203.0.113.40"]));
    let f = gd("rds_login_attempt_anomalous_login.json");
    assert_eq!(
        f.kind,
        "CredentialAccess:RDS/AnomalousBehavior.SuccessfulLogin"
    );
    assert_eq!(f.remote, ips(&["203.0.113.41"]));
}

/// The 2024 sample: both v4 and v6 in one remoteIpDetails, but our instance
/// is the actor of an outbound connection, so its peer is the victim.
#[test]
fn gd_ipv6_actor_outbound_names_the_victim_not_a_target() {
    let f = gd("network_connection_ipv6.json");
    assert_eq!(f.id, "9b2373d85dcf4e429cce481fa2d8a84b");
    assert_eq!(f.kind, "Backdoor:EC2/DenialOfService.Tcp");
    assert_eq!(f.severity, 8.0);
    assert_eq!(f.count, 2);
    assert_eq!(f.region, "us-west-2");
    assert!(f.remote.is_empty());
    let peers = ips(&["192.0.2.50", "2001:db8::cde0"]);
    assert_eq!(
        f.skip,
        Some(Skip::OwnResourceIsActor {
            action: "NETWORK_CONNECTION".into(),
            peers: peers.clone()
        })
    );
    assert_eq!(
        f.skip.unwrap().to_string(),
        "our own resource is the actor of this NETWORK_CONNECTION: \
         192.0.2.50, 2001:db8::cde0 is its target, not an attacker"
    );

    let mut v = gd_load("network_connection_ipv6.json");
    // Outbound alone (role TARGET) is skipped too.
    v["detail"]["service"]["resourceRole"] = json!("TARGET");
    let f = finding(&v, "outbound");
    assert_eq!(
        f.skip,
        Some(Skip::Outbound {
            peers: peers.clone()
        })
    );
    assert!(f.remote.is_empty());
    assert!(f.skip.unwrap().to_string().starts_with(
        "outbound connection from our own resource: 192.0.2.50, 2001:db8::cde0 is its destination"
    ));
    // Inbound, unknown or no direction: both addresses, v4 first; never the
    // local 10.0.0.23 / 2001:db8::cde1.
    let conn = "/detail/service/action/networkConnectionAction";
    for dir in [json!("INBOUND"), json!("UNKNOWN"), json!(null)] {
        *v.pointer_mut(&format!("{conn}/connectionDirection"))
            .unwrap() = dir.clone();
        let f = finding(&v, "inbound");
        assert_eq!(f.remote, peers, "{dir}");
        assert_eq!(f.skip, None, "{dir}");
    }
    // No resourceRole: as TARGET.
    v["detail"]["service"]
        .as_object_mut()
        .unwrap()
        .remove("resourceRole");
    assert_eq!(finding(&v, "no role").remote, peers);
    // v6 only.
    v.pointer_mut(&format!("{conn}/remoteIpDetails"))
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("ipAddressV4");
    assert_eq!(finding(&v, "v6 only").remote, ips(&["2001:db8::cde0"]));
    // IPv4-mapped IPv6 is the IPv4 address, kept once beside the same v4.
    *v.pointer_mut(&format!("{conn}/remoteIpDetails/ipAddressV6"))
        .unwrap() = json!("::ffff:192.0.2.51");
    assert_eq!(finding(&v, "mapped").remote, ips(&["192.0.2.51"]));
    v.pointer_mut(&format!("{conn}/remoteIpDetails"))
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert("ipAddressV4".into(), json!("192.0.2.51"));
    assert_eq!(finding(&v, "mapped twice").remote, ips(&["192.0.2.51"]));
    // No remoteIpDetails: nothing to block.
    v.pointer_mut(conn)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("remoteIpDetails");
    assert_eq!(
        finding(&v, "no remote").skip,
        Some(Skip::NoRemoteAddress {
            action: "NETWORK_CONNECTION".into()
        })
    );
}

#[test]
fn gd_dns_and_runtime_name_no_address() {
    let f = gd("dns_request_no_remote.json");
    assert_eq!(f.kind, "Trojan:EC2/BlackholeTraffic!DNS");
    assert_eq!(f.action, "DNS_REQUEST");
    // The instance's own publicIp 198.51.100.23 is not a remote address.
    assert!(f.remote.is_empty());
    let skip = f.skip.unwrap();
    assert_eq!(
        skip,
        Skip::NoRemoteAddress {
            action: "DNS_REQUEST".into()
        }
    );
    assert_eq!(
        skip.to_string(),
        "no remote address to block: the DNS_REQUEST action names none"
    );

    let f = gd("s3_or_runtime_no_remote.json");
    assert_eq!(f.kind, "PrivilegeEscalation:Runtime/DockerSocketAccessed");
    assert_eq!(f.action, "");
    assert_eq!(f.count, 9);
    assert_eq!(f.region, "us-west-1");
    assert!(f.remote.is_empty());
    let skip = f.skip.unwrap();
    assert_eq!(skip, Skip::NoRemoteAddress { action: "".into() });
    assert!(
        skip.to_string()
            .starts_with("no remote address to block: the finding has no action type"),
        "{skip}"
    );

    // No service at all: still a finding, with nothing to block.
    let mut v = gd_load("dns_request_no_remote.json");
    v["detail"].as_object_mut().unwrap().remove("service");
    let f = finding(&v, "no service");
    assert_eq!((f.count, f.sample, f.action.as_str()), (1, false, ""));
    assert_eq!(f.skip, Some(Skip::NoRemoteAddress { action: "".into() }));
    // An unknown action type with a remoteIpDetails somewhere: not read.
    v["detail"]["service"] = json!({"action": {"actionType": "SOMETHING_NEW",
        "somethingNewAction": {"remoteIpDetails": {"ipAddressV4": "203.0.113.99"}}}});
    assert_eq!(
        finding(&v, "new action").skip,
        Some(Skip::NoRemoteAddress {
            action: "SOMETHING_NEW".into()
        })
    );
}

#[test]
fn gd_unusable_addresses_are_dropped() {
    let mut v = gd_load("aws_api_call.json");
    let details = "/detail/service/action/awsApiCallAction/remoteIpDetails";
    let cases: &[(Value, Value, &[&str])] = &[
        (json!("0.0.0.0"), json!("::"), &[]),
        (json!("127.0.0.1"), json!("::1"), &[]),
        (json!("::ffff:127.0.0.1"), json!("::ffff:0.0.0.0"), &[]),
        (json!("203.0.113.300"), json!("2001:db8::g"), &[]),
        (json!(""), json!(null), &[]),
        (json!(203), json!(["2001:db8::1"]), &[]),
        (
            json!(" 203.0.113.21 "),
            json!("2001:DB8::1"),
            &["203.0.113.21", "2001:db8::1"],
        ),
        (
            json!("10.0.0.5"),
            json!("fe80::1"),
            &["10.0.0.5", "fe80::1"],
        ),
        // A v6 address in the v4 field is still an address.
        (
            json!("2001:db8::2"),
            json!("203.0.113.22"),
            &["2001:db8::2", "203.0.113.22"],
        ),
        (
            json!("203.0.113.23"),
            json!("::ffff:203.0.113.23"),
            &["203.0.113.23"],
        ),
    ];
    for (v4, v6, want) in cases {
        *v.pointer_mut(details).unwrap() = json!({"ipAddressV4": v4, "ipAddressV6": v6});
        let f = finding(&v, &format!("{v4} {v6}"));
        assert_eq!(f.remote, ips(want), "{v4} {v6}");
        if want.is_empty() {
            assert_eq!(
                f.skip,
                Some(Skip::NoRemoteAddress {
                    action: "AWS_API_CALL".into()
                })
            );
        }
    }
    *v.pointer_mut(details).unwrap() = json!("203.0.113.20");
    assert!(finding(&v, "details a string").remote.is_empty());
}

#[test]
fn gd_lenient_fields() {
    let mut v = gd_load("aws_api_call.json");
    v["detail"]["severity"] = json!(" 5.3 ");
    v["detail"]["service"]["count"] = json!("17");
    v["detail"]["accountId"] = json!("");
    v["detail"].as_object_mut().unwrap().remove("region");
    v["account"] = json!("210987654321");
    v["detail"].as_object_mut().unwrap().remove("updatedAt");
    // additionalInfo in the API model's form: sample only inside `value`.
    v["detail"]["service"]["additionalInfo"] =
        json!({"value": "{\"sample\":true}", "type": "default"});
    let f = finding(&v, "lenient");
    assert_eq!(f.severity, 5.3);
    assert_eq!(f.count, 17);
    assert_eq!(f.account, "210987654321");
    assert_eq!(f.region, "us-east-2");
    assert_eq!(f.updated_at, "");
    assert!(f.sample);

    v["detail"]["severity"] = json!(7.5);
    v["detail"]["service"]["additionalInfo"] = json!({"sample": "true"});
    for count in [json!(-1), json!(1.5), json!("many"), json!(null)] {
        v["detail"]["service"]["count"] = count.clone();
        let f = finding(&v, "count");
        assert_eq!((f.count, f.severity, f.sample), (1, 7.5, false), "{count}");
    }
    v["detail"]["service"]["count"] = json!(3.0);
    assert_eq!(finding(&v, "count 3.0").count, 3);
    for envelope in ["account", "region"] {
        v.as_object_mut().unwrap().remove(envelope);
    }
    let f = finding(&v, "no account");
    assert_eq!((f.account.as_str(), f.region.as_str()), ("", ""));
}

#[test]
fn gd_other_events_are_not_findings() {
    let s3 = load("awsdocs/eventbridge_s3_object_created.json");
    let alarm = load("awsdocs/eventbridge_cloudwatch_alarm_state_change_single_metric.json");
    for (v, want) in [
        (&s3, "\"Object Created\" from source \"aws.s3\""),
        (&alarm, "\"CloudWatch Alarm State Change\""),
        (&json!(null), "(null)"),
        (&json!([]), "(an array of 0 elements)"),
        (&json!({}), "(an empty object)"),
        (
            &json!({"detail-type": "GuardDuty Finding", "source": "aws.s3", "detail": {}}),
            "from source \"aws.s3\"",
        ),
        (
            &json!({"detail-type": "Guardduty Finding"}),
            "\"Guardduty Finding\"",
        ),
    ] {
        assert!(!is_guardduty_finding(v), "{v}");
        let e = decode_finding(v).unwrap_err();
        assert!(is_shape_error(&e), "{v}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with("event: not an EventBridge GuardDuty Finding event")
                && msg.contains(want),
            "{v}: {msg}"
        );
    }
    // A finding without a source (a hand-made test event) is accepted.
    let mut v = gd_load("port_probe.json");
    v.as_object_mut().unwrap().remove("source");
    assert!(is_guardduty_finding(&v));
    assert_eq!(finding(&v, "no source").remote.len(), 2);
}

#[test]
fn gd_broken_findings_give_clear_errors() {
    let base = gd_load("port_probe.json");
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    let remove = |key: &'static str| {
        with(&move |v: &mut Value| {
            v["detail"].as_object_mut().unwrap().remove(key);
        })
    };
    let set =
        |key: &'static str, x: Value| with(&move |v: &mut Value| v["detail"][key] = x.clone());
    let at = "GuardDuty finding \"5cbd952561ad83a6e287ba028d676cb7\": ";
    let cases: Vec<(Value, String)> =
        vec![
        (
            json!({"detail-type": "GuardDuty Finding"}),
            "EventBridge GuardDuty Finding: detail is missing, expected an object".into(),
        ),
        (
            with(&|v: &mut Value| v["detail"] = json!("garbage")),
            "EventBridge GuardDuty Finding: detail is \"garbage\", expected an object".into(),
        ),
        (
            with(&|v: &mut Value| v["detail"] = json!([1, 2])),
            "EventBridge GuardDuty Finding: detail is an array of 2 elements, expected an object"
                .into(),
        ),
        (
            with(&|v: &mut Value| v["detail"] = json!({})),
            "EventBridge GuardDuty Finding: detail.id is missing, expected a non-empty string"
                .into(),
        ),
        (
            remove("id"),
            "EventBridge GuardDuty Finding: detail.id is missing".into(),
        ),
        (
            set("id", json!("")),
            "EventBridge GuardDuty Finding: detail.id is \"\"".into(),
        ),
        (
            set("id", json!(42)),
            "EventBridge GuardDuty Finding: detail.id is 42".into(),
        ),
        (
            remove("type"),
            format!("{at}detail.type is missing, expected a non-empty string"),
        ),
        (
            set("type", json!({"a": 1})),
            format!("{at}detail.type is keys: a, expected"),
        ),
        (
            remove("severity"),
            format!("{at}detail.severity is missing, expected a number"),
        ),
        (
            set("severity", json!("High")),
            format!("{at}detail.severity is \"High\", expected a number"),
        ),
        (
            set("severity", json!("NaN")),
            format!("{at}detail.severity is \"NaN\""),
        ),
        (set("severity", json!(null)), format!("{at}detail.severity is null")),
        (set("severity", json!(true)), format!("{at}detail.severity is a boolean")),
    ];
    for (v, want) in &cases {
        let e = decode_finding(v).unwrap_err();
        assert!(matches!(e, EventError::Malformed { .. }), "{want}: {e:?}");
        assert!(
            e.to_string().starts_with(want.as_str()),
            "{want}\n   got {e}"
        );
    }
}

/// Every JSON pointer in `v` (its root excluded).
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    let children: Vec<(String, &Value)> = match v {
        Value::Object(o) => o
            .iter()
            .map(|(k, c)| (k.replace('~', "~0").replace('/', "~1"), c))
            .collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, c)| (i.to_string(), c))
            .collect(),
        _ => return,
    };
    for (seg, child) in children {
        let p = format!("{at}/{seg}");
        out.push(p.clone());
        pointers(child, p, out);
    }
}

/// Replace the value at `pointer` with `with`, or delete it when `with` is
/// `None` (an object key removed, an array element taken out).
fn mutate(v: &mut Value, pointer: &str, with: Option<&Value>) {
    match with {
        Some(x) => {
            if let Some(slot) = v.pointer_mut(pointer) {
                *slot = x.clone();
            }
        }
        None => {
            let (parent, last) = pointer.rsplit_once('/').unwrap();
            let key = last.replace("~1", "/").replace("~0", "~");
            match v.pointer_mut(parent) {
                Some(Value::Object(o)) => {
                    o.remove(&key);
                }
                Some(Value::Array(a)) => {
                    if let Ok(i) = key.parse::<usize>() {
                        if i < a.len() {
                            a.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn gd_replacements() -> Vec<Option<Value>> {
    vec![
        None,
        Some(json!(null)),
        Some(json!(true)),
        Some(json!(0)),
        Some(json!(-1)),
        Some(json!(1.5)),
        Some(json!(1e300)),
        Some(json!(u64::MAX)),
        Some(json!("")),
        Some(json!("x")),
        Some(json!("::1")),
        Some(json!("::ffff:203.0.113.1")),
        Some(json!([])),
        Some(json!({})),
        Some(json!([null, 1])),
    ]
}

/// The decoder on a finding with one value dropped or replaced anywhere:
/// never a panic, an error only when a required field or the envelope was
/// hit, and a consistent finding otherwise.
#[test]
fn gd_every_single_mutation_of_every_fixture() {
    let replacements = gd_replacements();
    let mut runs = 0;
    for &name in GD_FIXTURES {
        let base = gd_load(name);
        let mut paths = Vec::new();
        pointers(&base, String::new(), &mut paths);
        for p in &paths {
            for r in &replacements {
                let mut v = base.clone();
                mutate(&mut v, p, r.as_ref());
                runs += 1;
                match decode_finding(&v) {
                    Ok(f) => check_finding(&f).unwrap_or_else(|e| panic!("{name} {p} {r:?}: {e}")),
                    Err(e) => {
                        let required = ["/detail-type", "/source", "/detail", "/detail/id"]
                            .contains(&p.as_str())
                            || p == "/detail/type"
                            || p == "/detail/severity";
                        assert!(required, "{name} {p} {r:?}: {e}");
                    }
                }
            }
        }
    }
    assert!(runs > 5000, "{runs}");
}

proptest::proptest! {
    /// Several mutations at once, anywhere: never a panic.
    #[test]
    fn gd_random_mutations_never_panic(
        fixture in proptest::sample::select(GD_FIXTURES),
        edits in proptest::collection::vec(
            (proptest::prelude::any::<proptest::sample::Index>(), 0..gd_replacements().len()),
            1..6,
        ),
    ) {
        let mut v = gd_load(fixture);
        let replacements = gd_replacements();
        for (at, r) in &edits {
            let mut paths = Vec::new();
            pointers(&v, String::new(), &mut paths);
            if paths.is_empty() {
                break;
            }
            let p = paths[at.index(paths.len())].clone();
            mutate(&mut v, &p, replacements[*r].as_ref());
        }
        if let Ok(f) = decode_finding(&v) {
            proptest::prop_assert!(check_finding(&f).is_ok(), "{:?}", check_finding(&f));
        }
    }
}
