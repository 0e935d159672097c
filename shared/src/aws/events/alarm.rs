//! CloudWatch alarm state changes, the alarm function's trigger: an alarm
//! action invoking Lambda directly (`alarmData`), an EventBridge
//! `CloudWatch Alarm State Change`, or an alarm notification through SNS.

use super::{
    describe, excerpt, first_record, malformed, record_source, shape, str_field, EventError,
};
use aws_lambda_events::event::sns::SnsEvent;
use serde::Deserialize;
use serde_json::Value;

/// What [`decode_alarm`] accepts, for error messages.
const EXPECTED_ALARM: &str = "a CloudWatch alarm event (alarm action with alarmData, \
     EventBridge CloudWatch Alarm State Change, or SNS alarm notification)";

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
pub(super) fn parse_time_ms(s: &str) -> Option<i64> {
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
