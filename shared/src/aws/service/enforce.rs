//! Enforcement: offenses become blocks in the ledger (announced as
//! events), both IP sets and the users' regex pattern set are made to hold
//! the ledger's active blocks (one writer at a time, under a lease in S3),
//! and ended blocks expire (announced too).

use super::{Service, ServiceError, StatePart};
use crate::aws::notify::Action;
use crate::aws::patterns::{pack, sync_patterns};
use crate::aws::store::{Lease, Shard};
use crate::aws::waf::{sync_set, validate, IpVersion, SyncOutcome, WafSetRef};
use crate::clock::wall_ms;
use crate::engine::{Offense, StoredState};
use crate::key::Key;
use crate::ledger::{Block, Ledger, Outcome};
use ipnet::IpNet;
use serde::Serialize;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// How long a WAF writer may hold the lease before others may take over.
const LEASE_MS: i64 = 30_000;

/// Minimum time between two UpdateIPSet calls (the account-wide limit).
const WRITE_SPACING_MS: i64 = 1000;

/// What an enforcement did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnforceReport {
    /// Another invocation holds the writer lease and will pick our change up.
    pub deferred: bool,
    /// Dry run: WAF was not touched.
    pub dry_run: bool,
    /// Networks in each set after the sync.
    pub v4: usize,
    /// Networks in each set after the sync.
    pub v6: usize,
    /// Active blocks left out for lack of capacity.
    pub overflow: usize,
    /// UpdateIPSet calls made.
    pub writes: u32,
    /// Networks added and removed.
    pub added: usize,
    /// Networks removed.
    pub removed: usize,
    /// Lock-token conflicts retried.
    pub lock_retries: u32,
    /// Throttled WAF calls retried.
    pub throttled: u32,
    /// Networks refused by validation (should be none).
    pub invalid: Vec<String>,
    /// Blocked users in the regex pattern set after the sync.
    pub users: usize,
    /// Blocked users left out of it (no room, or too long a value).
    pub users_overflow: usize,
}

impl EnforceReport {
    /// Add what the sync of one set did.
    fn add(&mut self, out: &SyncOutcome) {
        self.writes += u32::from(out.written);
        self.added += out.added;
        self.removed += out.removed;
        self.lock_retries += out.lock_retries;
        self.throttled += out.throttled;
    }
}

impl Service {
    /// Apply offenses to the ledger; the new blocks.
    pub(super) async fn decide(
        &self,
        mut offenses: Vec<Offense>,
    ) -> Result<Vec<(Key, Block)>, ServiceError> {
        if offenses.is_empty() {
            return Ok(Vec::new());
        }
        offenses.sort_by(|a, b| (a.time_ms, &a.key, &a.rule).cmp(&(b.time_ms, &b.key, &b.rule)));
        let mut added = Vec::new();
        self.store
            .update::<Ledger, _>(&self.store.ledger_key(), |l| {
                added.clear();
                for o in &offenses {
                    if let Outcome::Blocked(b) = l.apply(o, &self.policy) {
                        added.push((o.key.trunc(), b));
                    }
                }
                !added.is_empty()
            })
            .await?;
        self.announce(Action::Block, &added).await;
        Ok(added)
    }

    /// Make both IP sets hold the ledger's active blocks. One writer at a
    /// time (a lease in S3): a concurrent caller returns `deferred` and the
    /// holder, which re-reads the ledger until it is stable, picks its
    /// change up. Writes are spaced by at least a second.
    pub async fn enforce(&self, now_ms: i64, holder: &str) -> Result<EnforceReport, ServiceError> {
        let mut rep = EnforceReport {
            dry_run: self.settings.dry_run,
            ..EnforceReport::default()
        };
        let (Some(waf), Some(v4), Some(v6)) =
            (&self.waf, &self.settings.ipset_v4, &self.settings.ipset_v6)
        else {
            let ledger = self.store.ledger().await?;
            let d = ledger.value.desired(now_ms, &self.policy);
            (rep.v4, rep.v6, rep.overflow) =
                (d.v4.len(), d.v6.len(), d.overflow_v4 + d.overflow_v6);
            let users = pack(&d.users);
            (rep.users, rep.users_overflow) = (users.users, users.overflow);
            return Ok(rep);
        };
        let lease_key = self.store.lease_key();
        for _round in 0..5 {
            let lease = self.store.get::<Lease>(&lease_key).await?;
            if !lease.value.holder.is_empty()
                && lease.value.holder != holder
                && lease.value.until_ms > now_ms
            {
                rep.deferred = true;
                return Ok(rep);
            }
            let last_write = Arc::new(Mutex::new(lease.value.last_write_ms));
            let mine = Lease {
                holder: holder.into(),
                until_ms: now_ms + LEASE_MS,
                last_write_ms: lease.value.last_write_ms,
            };
            let Some(etag) = self
                .store
                .put(&lease_key, &mine, lease.etag.as_deref())
                .await?
            else {
                rep.deferred = true;
                return Ok(rep);
            };
            // A failed sync still releases the lease (below), so the next
            // writer or the expire reconcile need not wait for it to run out.
            let synced = self
                .sync_until_stable(waf, (v4, v6), now_ms, &last_write, &mut rep)
                .await;
            let released = Lease {
                holder: String::new(),
                until_ms: 0,
                last_write_ms: *last_write.lock().expect("lock"),
            };
            let synced = match synced {
                Ok(etag) => etag,
                Err(e) => {
                    let _ = self.store.put(&lease_key, &released, Some(&etag)).await;
                    return Err(e);
                }
            };
            self.store.put(&lease_key, &released, Some(&etag)).await?;
            if self.store.ledger().await?.etag == synced {
                return Ok(rep);
            }
        }
        Ok(rep)
    }

    /// Sync both sets with the ledger, again until the ledger did not
    /// change during a sync: the ETag of the ledger the sets now hold.
    async fn sync_until_stable(
        &self,
        waf: &aws_sdk_wafv2::Client,
        (v4, v6): (&WafSetRef, &WafSetRef),
        now_ms: i64,
        last_write: &Arc<Mutex<i64>>,
        rep: &mut EnforceReport,
    ) -> Result<Option<String>, ServiceError> {
        loop {
            let ledger = self.store.ledger().await?;
            let d = ledger.value.desired(now_ms, &self.policy);
            rep.overflow = d.overflow_v4 + d.overflow_v6;
            rep.v4 = self
                .sync_one(waf, v4, &d.v4, IpVersion::V4, last_write, rep)
                .await?;
            rep.v6 = self
                .sync_one(waf, v6, &d.v6, IpVersion::V6, last_write, rep)
                .await?;
            let users = pack(&d.users);
            (rep.users, rep.users_overflow) = (users.users, users.overflow);
            if let Some(set) = &self.settings.user_patterns {
                let lw = last_write.clone();
                let out = sync_patterns(waf, set, &users.regexes, move || pace(lw.clone())).await?;
                rep.add(&out);
            }
            let again = self.store.ledger().await?;
            if again.etag == ledger.etag {
                return Ok(ledger.etag);
            }
        }
    }

    /// Make `set` hold the networks of `nets` that pass validation for
    /// `version` (the others go to `rep.invalid`): how many it holds.
    async fn sync_one(
        &self,
        waf: &aws_sdk_wafv2::Client,
        set: &WafSetRef,
        nets: &[IpNet],
        version: IpVersion,
        last_write: &Arc<Mutex<i64>>,
        rep: &mut EnforceReport,
    ) -> Result<usize, ServiceError> {
        let widest = match version {
            IpVersion::V4 => self.config.file.max_prefix_v4,
            IpVersion::V6 => self.config.file.max_prefix_v6,
        };
        let mut want = BTreeSet::new();
        for n in nets {
            match validate(n, version, widest) {
                Ok(_) => {
                    want.insert(*n);
                }
                Err(e) => rep.invalid.push(e.to_string()),
            }
        }
        let lw = last_write.clone();
        let out = sync_set(waf, set, &want, move || pace(lw.clone())).await?;
        rep.add(&out);
        Ok(want.len())
    }

    /// Remove ended blocks, end incident mode when its time is up, prune
    /// stored windows and absorbed records, and reconcile both IP sets with
    /// the ledger (so a lost update heals). Returns the removed blocks.
    pub async fn expire(
        &self,
        now_ms: i64,
        holder: &str,
    ) -> Result<(Vec<(Key, Block)>, EnforceReport), ServiceError> {
        let mut removed = Vec::new();
        self.store
            .update::<Ledger, _>(&self.store.ledger_key(), |l| {
                removed = l.expire(now_ms, &self.policy);
                let incident_over = l.incident_until_ms.is_some_and(|t| t <= now_ms);
                if incident_over {
                    l.incident_until_ms = None;
                }
                !removed.is_empty() || incident_over
            })
            .await?;
        self.announce(Action::Expiry, &removed).await;
        let shards =
            (0..self.store.shards()).map(|n| (self.store.shard_key(n), StatePart::Shard(n)));
        for (key, part) in shards.chain([(self.store.site_key(), StatePart::Site)]) {
            self.store
                .update::<Shard, _>(&key, |sh| {
                    if *sh == Shard::default() {
                        return false; // never written
                    }
                    let before = sh.clone();
                    sh.state = self.merge(&sh.state, &StoredState::default(), part, now_ms);
                    sh.prune_absorbed(now_ms);
                    *sh != before
                })
                .await?;
        }
        let rep = self.enforce(now_ms, holder).await?;
        Ok((removed, rep))
    }
}

async fn pace(last_write: Arc<Mutex<i64>>) {
    let now = wall_ms();
    let last = *last_write.lock().expect("lock");
    let wait = last + WRITE_SPACING_MS - now;
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    }
    *last_write.lock().expect("lock") = wall_ms();
}
