//! Decisions as Amazon EventBridge events: one per block, unblock and
//! expiry, of networks and users alike, so that the application can lock
//! an account, force MFA or page someone (`docs/events.md`).
//!
//! `Source` is `fail2waf`, `DetailType` one of [`Action::detail_type`],
//! `Detail` the JSON of [`detail`]. Events are sent after the ledger write
//! that made the decision; a failed entry is retried (throttling, internal
//! errors) and then counted, never allowed to undo or delay the decision.

use crate::key::Key;
use crate::ledger::Block;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde_json::{json, Value};
use std::time::Duration;

/// The `Source` of every event.
pub const SOURCE: &str = "fail2waf";

/// The version of the `detail` layout.
pub const DETAIL_SCHEMA: u32 = 1;

/// Most entries in one PutEvents call (an EventBridge limit).
const BATCH: usize = 10;

/// Attempts per entry before it counts as failed.
const ATTEMPTS: u32 = 4;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A new block (a rule, GuardDuty, or by hand).
    Block,
    /// A block removed by hand before its time.
    Unblock,
    /// A block whose time ran out.
    Expiry,
}

impl Action {
    /// `block`, `unblock`, `expiry`: the `detail.action` field.
    pub fn name(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Unblock => "unblock",
            Action::Expiry => "expiry",
        }
    }

    /// The event's `DetailType`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Action::Block => "fail2waf Block",
            Action::Unblock => "fail2waf Unblock",
            Action::Expiry => "fail2waf Expiry",
        }
    }
}

/// One decision to announce.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// What happened.
    pub action: Action,
    /// To whom.
    pub key: Key,
    /// The block that began or ended (for an unblock: the removed block,
    /// with `manual` naming who removed it and why).
    pub block: Block,
}

/// The event's `detail`: the decision, its key in every form a rule may
/// match on, and its evidence.
pub fn detail(d: &Decision, dry_run: bool) -> Value {
    let b = &d.block;
    let reason = match (d.action, &b.manual) {
        (Action::Unblock, Some(m)) => format!("unblocked by hand by {}: {}", m.by, m.reason),
        _ => b.reason(),
    };
    json!({
        "schema": DETAIL_SCHEMA,
        "action": d.action.name(),
        "key": d.key.to_string(),
        "kind": d.key.kind(),
        "network": d.key.net().map(|n| n.to_string()),
        "user": d.key.user().map(|u| u.as_str()),
        "rule": b.rule,
        "since": rfc3339(b.since_ms),
        "until": rfc3339(b.until_ms),
        "offense": b.offense,
        "reason": reason,
        "evidence": b.evidence,
        "manual": b.manual,
        "dry_run": dry_run,
    })
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// What sending came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NotifyReport {
    /// Events EventBridge accepted.
    pub sent: usize,
    /// Events given up on (logged; the `EventsFailed` metric).
    pub failed: usize,
}

/// Sends decisions to one event bus.
#[derive(Debug, Clone)]
pub struct Notifier {
    client: Client,
    bus: String,
    dry_run: bool,
}

impl Notifier {
    /// A notifier for the bus `bus` (name or ARN); `dry_run` is said in
    /// every event, so that a consumer that acts (disables an account) can
    /// ignore a dry run's decisions.
    pub fn new(sdk: &aws_config::SdkConfig, bus: &str, dry_run: bool) -> Notifier {
        Notifier {
            client: Client::new(sdk),
            bus: bus.to_string(),
            dry_run,
        }
    }

    /// Send `decisions`, ten to a call; entries EventBridge refuses with a
    /// passing error (throttling, an internal error) or that a failed call
    /// carried are tried again with backoff, up to four times.
    pub async fn send(&self, decisions: &[Decision]) -> NotifyReport {
        let mut rep = NotifyReport::default();
        for chunk in decisions.chunks(BATCH) {
            let mut todo: Vec<PutEventsRequestEntry> =
                chunk.iter().map(|d| self.entry(d)).collect();
            for attempt in 0..ATTEMPTS {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                todo = match self
                    .client
                    .put_events()
                    .set_entries(Some(todo.clone()))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let results = out.entries();
                        let mut retry = Vec::new();
                        for (i, e) in todo.into_iter().enumerate() {
                            match results.get(i).and_then(|r| r.error_code()) {
                                None => rep.sent += 1,
                                Some(code) if passing(code) => retry.push(e),
                                Some(code) => {
                                    tracing::warn!(code, message = ?results[i].error_message(), "PutEvents refused an event");
                                    rep.failed += 1;
                                }
                            }
                        }
                        retry
                    }
                    Err(e) => {
                        tracing::warn!(error = %aws_sdk_eventbridge::error::DisplayErrorContext(&e), attempt, "PutEvents failed");
                        todo
                    }
                };
                if todo.is_empty() {
                    break;
                }
            }
            rep.failed += todo.len();
        }
        rep
    }

    fn entry(&self, d: &Decision) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(d.action.detail_type())
            .detail(detail(d, self.dry_run).to_string())
            .build()
    }
}

/// Entry error codes worth another try.
fn passing(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException" | "InternalFailure" | "InternalException" | "ServiceUnavailable"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Manual;

    #[test]
    fn the_detail_names_the_key_in_every_form_and_says_why() {
        let block = Block {
            rule: "manual".into(),
            since_ms: 1_767_225_600_000,
            until_ms: 1_767_229_200_000,
            offense: 2,
            evidence: None,
            manual: Some(Manual {
                by: "ops@example.com".into(),
                reason: "abuse report".into(),
            }),
        };
        let d = Decision {
            action: Action::Block,
            key: "user:ak_live_1".parse().unwrap(),
            block: block.clone(),
        };
        let v = detail(&d, false);
        assert_eq!(v["kind"], "user");
        assert_eq!(v["user"], "ak_live_1");
        assert!(v["network"].is_null());
        assert_eq!(v["since"], "2026-01-01T00:00:00Z");
        assert_eq!(v["until"], "2026-01-01T01:00:00Z");
        assert_eq!(
            v["reason"],
            "blocked by hand by ops@example.com: abuse report"
        );
        assert_eq!(v["manual"]["by"], "ops@example.com");
        let d = Decision {
            action: Action::Expiry,
            key: "198.51.100.0/24".parse().unwrap(),
            block,
        };
        let v = detail(&d, true);
        assert_eq!(
            (v["action"].as_str(), v["kind"].as_str()),
            (Some("expiry"), Some("network"))
        );
        assert_eq!(v["network"], "198.51.100.0/24");
        assert_eq!(v["dry_run"], true);
    }
}
