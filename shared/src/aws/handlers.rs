//! What each Lambda function does with its event, independent of the
//! runtime: the binaries in `functions/` only wire these to
//! `lambda_runtime`. Each returns the JSON response and the metrics of the
//! invocation; a [`HandlerError`] becomes the runtime's `Diagnostic` (with
//! the `lambda` feature).

use super::events::{
    decode_alarm, decode_finding, decode_ingest, is_guardduty_finding, AlarmState, IngestEvent,
};
use super::metrics::{Metrics, Unit};
use super::service::{BatchReport, Deadline, EnforceReport, IngestReport, Service, ServiceError};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// A failed invocation: the message, and whether Lambda should retry it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// What went wrong.
    pub message: String,
    /// A retry may succeed (the event is fine, a peer failed).
    pub retryable: bool,
}

impl From<ServiceError> for HandlerError {
    fn from(e: ServiceError) -> Self {
        HandlerError {
            retryable: e.retryable(),
            message: e.to_string(),
        }
    }
}

/// The failure as the Lambda runtime reports it: error type
/// `Fail2waf.Retryable` when a retry may succeed, else
/// `Fail2waf.InvalidInput`.
#[cfg(feature = "lambda")]
impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        let error_type = if e.retryable {
            "Fail2waf.Retryable"
        } else {
            "Fail2waf.InvalidInput"
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.into(),
            error_message: e.message,
        }
    }
}

fn metrics(function: &str) -> Metrics {
    Metrics::new("fail2waf").dimension("Function", function)
}

fn count_ingest(m: &mut Metrics, r: &IngestReport, now_ms: i64) {
    if r.skipped.is_some() {
        m.add("ObjectsSkipped", 1.0, Unit::Count);
        return;
    }
    m.add("ObjectsRead", 1.0, Unit::Count);
    m.add(
        "DuplicateObjects",
        f64::from(u8::from(r.duplicate)),
        Unit::Count,
    );
    m.add("LinesRead", r.file.lines_read as f64, Unit::Count);
    m.add("LinesParsed", r.file.lines_parsed as f64, Unit::Count);
    m.add("LinesSkipped", r.file.lines_skipped as f64, Unit::Count);
    m.add(
        "ReadErrors",
        f64::from(u8::from(r.file.error.is_some())),
        Unit::Count,
    );
    // Requests counted for no client: over the key cap, dated ahead.
    m.add("UntrackedRequests", r.counts.untracked as f64, Unit::Count);
    m.add("FutureRequests", r.counts.future as f64, Unit::Count);
    if let Some(t) = r.newest_event_ms {
        m.set(
            "DecisionLag",
            (now_ms - t).max(0) as f64,
            Unit::Milliseconds,
        );
    }
}

/// What a batch did as one: shards written, blocks, enforcement (logged
/// here, once).
fn count_batch(m: &mut Metrics, b: &BatchReport) {
    m.add("ShardsWritten", f64::from(b.shards_written), Unit::Count);
    m.add("BlocksAdded", b.blocks.len() as f64, Unit::Count);
    m.add("ObjectsMergedAlone", b.merged_alone as f64, Unit::Count);
    for (key, b) in &b.blocks {
        tracing::info!(key = %key, rule = %b.rule, since_ms = b.since_ms, until_ms = b.until_ms, offense = b.offense, "blocked");
    }
    if let Some(e) = &b.enforce {
        count_enforce(m, e);
    }
}

fn count_enforce(m: &mut Metrics, e: &EnforceReport) {
    m.add("WafWrites", f64::from(e.writes), Unit::Count);
    m.add("WafLockRetries", f64::from(e.lock_retries), Unit::Count);
    m.add("WafThrottled", f64::from(e.throttled), Unit::Count);
    m.add(
        "EnforceDeferred",
        f64::from(u8::from(e.deferred)),
        Unit::Count,
    );
    m.set("BlockedV4", e.v4 as f64, Unit::Count);
    m.set("BlockedV6", e.v6 as f64, Unit::Count);
    m.set("BlockedUsers", e.users as f64, Unit::Count);
    m.set("CapacityOverflow", e.overflow as f64, Unit::Count);
    m.set("UserPatternOverflow", e.users_overflow as f64, Unit::Count);
    m.add("InvalidAddresses", e.invalid.len() as f64, Unit::Count);
}

/// The service's counters since the last invocation reported them: the
/// service lives as long as the execution environment, the metrics are per
/// invocation.
fn count_store(m: &mut Metrics, svc: &Service) {
    let s = &svc.store.stats;
    for (name, counter) in [
        ("StateGets", &s.gets),
        ("StatePuts", &s.puts),
        ("CasRetries", &s.cas_retries),
        ("EventsSent", &svc.events.sent),
        ("EventsFailed", &svc.events.failed),
    ] {
        m.add(name, counter.swap(0, Ordering::Relaxed) as f64, Unit::Count);
    }
}

fn log_ingest(r: &IngestReport) {
    match &r.skipped {
        Some(why) => tracing::info!(object = %r.object, skipped = %why, "object skipped"),
        None => tracing::info!(
            object = %r.object,
            duplicate = r.duplicate,
            lines = r.file.lines_read,
            parsed = r.file.lines_parsed,
            skipped = r.file.lines_skipped,
            "object ingested"
        ),
    }
    if let Some(e) = &r.file.error {
        tracing::warn!(object = %r.object, error = %e, "object damaged: every line before the damage was counted");
    }
}

/// The ingest function: S3 notifications (direct, SNS, SQS with partial
/// batch failures, EventBridge). A retryable failure of a direct event
/// fails the invocation (Lambda retries; absorbed records make the retry
/// idempotent); in an SQS batch it fails only its message. `deadline_ms`
/// is the Lambda deadline (epoch ms): close to it (a safety margin before),
/// the invocation stops between atomic steps with a retryable error, and in
/// an SQS batch the messages not finished become batch item failures.
pub async fn ingest(
    svc: &Service,
    event: &Value,
    request_id: &str,
    now_ms: i64,
    deadline_ms: Option<i64>,
) -> Result<(Value, Metrics), HandlerError> {
    let mut m = metrics("ingest");
    let deadline = deadline_ms.map(|d| Deadline::from_epoch_ms(d, now_ms));
    let deadline = deadline.as_ref();
    let decoded = decode_ingest(event).map_err(|e| HandlerError {
        message: e.to_string(),
        retryable: false,
    })?;
    let response = match decoded {
        IngestEvent::Test => json!({"status": "s3:TestEvent: nothing to do"}),
        IngestEvent::Objects(objects) => {
            let batch = svc
                .ingest_objects(&objects, now_ms, request_id, deadline)
                .await;
            count_batch(&mut m, &batch);
            let mut done = Vec::new();
            let mut failed: Option<ServiceError> = None;
            for r in batch.objects {
                match r {
                    Ok(r) => {
                        log_ingest(&r);
                        count_ingest(&mut m, &r, now_ms);
                        done.push(r.object);
                    }
                    // An error fails the invocation, a retryable one
                    // first (Lambda retries it; what was counted stays
                    // counted).
                    Err(e) if failed.as_ref().is_none_or(|f| !f.retryable()) => failed = Some(e),
                    Err(_) => {}
                }
            }
            if let Some(e) = failed {
                return Err(e.into());
            }
            json!({"objects": done})
        }
        IngestEvent::Sqs(items) => {
            // One batch for all the messages' objects; a message fails if
            // one of its objects must be retried.
            let mut objects = Vec::new();
            let mut owner = Vec::new();
            for (n, item) in items.iter().enumerate() {
                match &item.objects {
                    Err(e) => {
                        // A message that is not an S3 event will never be: drop it.
                        tracing::error!(message_id = %item.message_id, error = %e, "not an S3 event: dropped");
                        m.add("BadMessages", 1.0, Unit::Count);
                    }
                    Ok(o) => {
                        objects.extend(o.iter().cloned());
                        owner.extend(std::iter::repeat_n(n, o.len()));
                    }
                }
            }
            let batch = svc
                .ingest_objects(&objects, now_ms, request_id, deadline)
                .await;
            count_batch(&mut m, &batch);
            let mut retry = vec![false; items.len()];
            for (r, n) in batch.objects.into_iter().zip(owner) {
                let id = &items[n].message_id;
                match r {
                    Ok(r) => {
                        log_ingest(&r);
                        count_ingest(&mut m, &r, now_ms);
                    }
                    Err(e) if e.retryable() => {
                        tracing::warn!(message_id = %id, error = %e, "will be retried");
                        retry[n] = true;
                    }
                    // Not a passing fault (access denied, a state object that
                    // does not parse): retried all the same, so that after
                    // its receives it waits in the dead-letter queue, with
                    // its alarm, for the fix and `fail2waf redrive`.
                    Err(e) => {
                        tracing::error!(message_id = %id, error = %e, "cannot be ingested: retried, then the dead-letter queue");
                        m.add("ObjectErrors", 1.0, Unit::Count);
                        retry[n] = true;
                    }
                }
            }
            let failures: Vec<Value> = items
                .iter()
                .zip(retry)
                .filter(|(_, r)| *r)
                .map(|(item, _)| json!({"itemIdentifier": item.message_id}))
                .collect();
            json!({"batchItemFailures": failures})
        }
    };
    count_store(&mut m, svc);
    Ok((response, m))
}

/// The expire function (every minute, any input): remove ended blocks,
/// prune state, reconcile the IP sets with the ledger.
pub async fn expire(
    svc: &Service,
    request_id: &str,
    now_ms: i64,
) -> Result<(Value, Metrics), HandlerError> {
    let mut m = metrics("expire");
    let (removed, rep) = svc.expire(now_ms, request_id).await?;
    for (key, b) in &removed {
        tracing::info!(key = %key, rule = %b.rule, "block expired");
    }
    m.add("BlocksRemoved", removed.len() as f64, Unit::Count);
    count_enforce(&mut m, &rep);
    count_store(&mut m, svc);
    Ok((
        json!({"removed": removed.len(), "v4": rep.v4, "v6": rep.v6, "writes": rep.writes}),
        m,
    ))
}

/// A GuardDuty finding (delivered to the alarm function by EventBridge):
/// its remote addresses are blocked as the rule `guardduty:TYPE`, or it is
/// skipped with a reason (no remote address, below the severity, not a
/// configured type, a sample, already acted on) and counted.
pub async fn guardduty(
    svc: &Service,
    event: &Value,
    request_id: &str,
    now_ms: i64,
) -> Result<(Value, Metrics), HandlerError> {
    let mut m = metrics("alarm");
    let f = decode_finding(event).map_err(|e| HandlerError {
        message: e.to_string(),
        retryable: false,
    })?;
    let r = svc.guardduty(&f, now_ms, request_id).await?;
    match &r.skipped {
        Some(why) => {
            tracing::info!(finding = %f.id, kind = %f.kind, severity = f.severity, skipped = %why, "finding skipped");
            m.add("FindingsSkipped", 1.0, Unit::Count);
        }
        None => {
            m.add("FindingsActedOn", 1.0, Unit::Count);
            for (key, b) in &r.blocks {
                tracing::info!(key = %key, rule = %b.rule, until_ms = b.until_ms, offense = b.offense, finding = %f.id, "blocked");
            }
        }
    }
    m.add("BlocksAdded", r.blocks.len() as f64, Unit::Count);
    m.add("BlocksRefused", r.refused as f64, Unit::Count);
    if let Some(e) = &r.enforce {
        count_enforce(&mut m, e);
    }
    count_store(&mut m, svc);
    let v = serde_json::to_value(&r).map_err(|e| HandlerError {
        message: e.to_string(),
        retryable: false,
    })?;
    Ok((v, m))
}

/// The alarm function: ALARM enters incident mode (stricter thresholds)
/// for the configured time, re-scans the log objects delivered during the
/// alarm's evaluation window and judges everything counted again; OK ends
/// incident mode. A GuardDuty finding goes to [`guardduty`].
pub async fn alarm(
    svc: &Service,
    event: &Value,
    request_id: &str,
    now_ms: i64,
    deadline_ms: Option<i64>,
) -> Result<(Value, Metrics), HandlerError> {
    if is_guardduty_finding(event) {
        return guardduty(svc, event, request_id, now_ms).await;
    }
    let mut m = metrics("alarm");
    let deadline = deadline_ms.map(|d| Deadline::from_epoch_ms(d, now_ms));
    let change = decode_alarm(event).map_err(|e| HandlerError {
        message: e.to_string(),
        retryable: false,
    })?;
    tracing::info!(alarm = %change.name, state = ?change.state, reason = %change.reason, "alarm state change");
    let response = match change.state {
        AlarmState::Alarm => {
            let until = now_ms + svc.config.file.incident.duration.ms();
            svc.set_incident(Some(until)).await?;
            let window = change.evaluation_window_ms.unwrap_or(15 * 60_000);
            let since = change.time_ms.min(now_ms) - window - 5 * 60_000;
            let objects = svc.recent_objects(since, now_ms).await?;
            let mut blocks = 0;
            // One at a time, not in batches: most were counted already, and
            // a batch mixing counted and new objects is merged object by
            // object after all (each one read twice).
            for (bucket, key) in &objects {
                let r = svc
                    .ingest_object(bucket, key, now_ms, request_id, deadline.as_ref())
                    .await?;
                log_ingest(&r);
                count_ingest(&mut m, &r, now_ms);
                blocks += r.blocks.len();
            }
            let rejudged = svc.rejudge(now_ms, request_id).await?;
            for (key, b) in &rejudged {
                tracing::info!(key = %key, rule = %b.rule, "blocked in incident mode");
            }
            blocks += rejudged.len();
            m.add("IncidentsStarted", 1.0, Unit::Count);
            json!({"incident_until_ms": until, "rescanned": objects.len(), "blocks": blocks})
        }
        AlarmState::Ok => {
            svc.set_incident(None).await?;
            json!({"incident": false})
        }
        AlarmState::InsufficientData => json!({"status": "insufficient data: nothing to do"}),
    };
    count_store(&mut m, svc);
    Ok((response, m))
}
