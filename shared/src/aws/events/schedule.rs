//! Schedules, the expire function's trigger.

use super::{is_s3_test_event, str_field};
use serde_json::Value;

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
