//! GuardDuty findings: a finding's remote addresses become offenses of the
//! rule `guardduty:TYPE`, decided by the same ledger as any rule (so the
//! allow-list, trusted proxies, escalation and capacity apply), with the
//! finding in the evidence and a ban by severity band
//! ([`crate::config::GuardDutyConfig`]).
//!
//! Idempotent: the ledger remembers each finding occurrence it acted on
//! (`id#count`), so a re-delivered event changes nothing, while a
//! recurrence (GuardDuty raises `count` under the same id) is a repeat
//! offense.

use super::{EnforceReport, Service, ServiceError};
use crate::aws::events::Finding;
use crate::client::ClientResolver;
use crate::duration::Secs;
use crate::engine::{Evidence, FindingRef, Offense};
use crate::key::Key;
use crate::ledger::{Block, Outcome};
use crate::printable::clip;
use serde::Serialize;

/// What a finding came to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FindingReport {
    /// The finding's id.
    pub finding: String,
    /// Why it blocks nobody: no remote address, below the severity or not
    /// a configured type, a sample, or already acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// New blocks.
    pub blocks: Vec<(Key, Block)>,
    /// Addresses the ledger refused (allow-listed, a trusted proxy, already
    /// blocked).
    pub refused: usize,
    /// The enforcement, when there were new blocks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforce: Option<EnforceReport>,
}

/// The rule name of a finding type.
pub fn rule_of(kind: &str) -> String {
    format!("guardduty:{}", clip(kind, 120))
}

impl Service {
    /// Block the remote addresses of `f` (as of `now_ms`, wall clock:
    /// findings arrive within minutes), then enforce.
    pub async fn guardduty(
        &self,
        f: &Finding,
        now_ms: i64,
        holder: &str,
    ) -> Result<FindingReport, ServiceError> {
        let mut rep = FindingReport {
            finding: f.id.clone(),
            ..FindingReport::default()
        };
        let gd = &self.config.file.guardduty;
        let skipped = match &f.skip {
            Some(skip) => Some(skip.to_string()),
            None => gd.refuses(&f.kind, f.severity, f.sample),
        };
        if skipped.is_some() {
            rep.skipped = skipped;
            return Ok(rep);
        }
        let resolver = ClientResolver::new(vec![], self.config.file.ipv6_key_prefix);
        let evidence = Evidence {
            matched: f.count,
            requests: f.count,
            window: Secs(0),
            threshold: 1,
            distinct_paths: 0,
            members: 0,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            samples: vec![],
            user_agent: String::new(),
            incident: false,
            finding: Some(Box::new(FindingRef {
                id: clip(&f.id, 100),
                kind: clip(&f.kind, 120),
                severity: f.severity,
                count: f.count,
                action: clip(&f.action, 40),
                account: clip(&f.account, 20),
                region: clip(&f.region, 30),
            })),
        };
        let offenses: Vec<Offense> = f
            .remote
            .iter()
            .map(|ip| Offense {
                key: Key::Net(resolver.key(*ip)),
                rule: rule_of(&f.kind),
                time_ms: now_ms,
                evidence: evidence.clone(),
            })
            .collect();
        let seen = format!("{}#{}", f.id, f.count);
        let mut added = Vec::new();
        let mut refused = 0;
        let mut duplicate = false;
        self.store
            .update::<crate::ledger::Ledger, _>(&self.store.ledger_key(), |l| {
                (added, refused) = (Vec::new(), 0);
                duplicate = l.findings.contains_key(&seen);
                if duplicate {
                    return false;
                }
                for o in &offenses {
                    match l.apply(o, &self.policy) {
                        Outcome::Blocked(b) => added.push((o.key.clone(), b)),
                        Outcome::Refused(_) => refused += 1,
                    }
                }
                l.findings.insert(seen.clone(), now_ms);
                true
            })
            .await?;
        if duplicate {
            rep.skipped = Some(format!("occurrence {} already acted on", f.count));
            return Ok(rep);
        }
        rep.refused = refused;
        self.announce(crate::aws::notify::Action::Block, &added)
            .await;
        if !added.is_empty() {
            rep.enforce = Some(self.enforce(now_ms, holder).await?);
        }
        rep.blocks = added;
        Ok(rep)
    }
}
