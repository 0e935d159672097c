//! Incident mode, for the alarm function: stricter thresholds for a
//! while, everything already counted judged again, and the log objects
//! delivered during the alarm found for a re-scan.

use super::{Service, ServiceError};
use crate::aws::s3::{S3Error, S3Loc};
use crate::aws::store::Shard;
use crate::key::Key;
use crate::ledger::{Block, Ledger};

impl Service {
    /// Judge everything already counted again, with the current thresholds
    /// (after incident mode began), and block what offends.
    pub async fn rejudge(
        &self,
        now_ms: i64,
        holder: &str,
    ) -> Result<Vec<(Key, Block)>, ServiceError> {
        let ledger = self.store.ledger().await?;
        let factor = self.threshold_factor(&ledger.value, now_ms);
        let site = self.store.get::<Shard>(&self.store.site_key()).await?;
        let mut offenses = Vec::new();
        for n in 0..self.store.shards() {
            let shard = self.store.get::<Shard>(&self.store.shard_key(n)).await?;
            if shard.etag.is_none() {
                continue;
            }
            let mut engine = self.engine_for(factor, &site.value.state, &shard.value.state);
            engine.evaluate_all();
            offenses.extend(engine.take_offenses());
        }
        let blocks = self.decide(offenses).await?;
        if !blocks.is_empty() {
            self.enforce(now_ms, holder).await?;
        }
        Ok(blocks)
    }

    /// Enter incident mode until `until_ms` (`None`: leave it).
    pub async fn set_incident(&self, until_ms: Option<i64>) -> Result<(), ServiceError> {
        self.store
            .update::<Ledger, _>(&self.store.ledger_key(), |l| {
                let changed = l.incident_until_ms != until_ms;
                l.incident_until_ms = until_ms;
                changed
            })
            .await?;
        Ok(())
    }

    /// The log objects under the configured prefixes modified at or after
    /// `since_ms` (`{date}` in a prefix expands to each day from then to now).
    pub async fn recent_objects(
        &self,
        since_ms: i64,
        now_ms: i64,
    ) -> Result<Vec<(String, String)>, ServiceError> {
        let mut out = Vec::new();
        for p in &self.settings.log_prefixes {
            let mut prefixes = Vec::new();
            if p.contains("{date}") {
                let mut day = since_ms.div_euclid(86_400_000);
                while day <= now_ms.div_euclid(86_400_000) {
                    let d = chrono::DateTime::from_timestamp(day * 86_400, 0).unwrap_or_default();
                    prefixes.push(p.replace("{date}", &d.format("%Y/%m/%d").to_string()));
                    day += 1;
                }
            } else {
                prefixes.push(p.clone());
            }
            for prefix in prefixes {
                let loc: S3Loc = prefix
                    .parse()
                    .map_err(|e| ServiceError::Invalid(format!("FAIL2WAF_LOG_PREFIXES: {e}")))?;
                let mut pages = self
                    .store
                    .client()
                    .list_objects_v2()
                    .bucket(&loc.bucket)
                    .prefix(&loc.prefix)
                    .into_paginator()
                    .send();
                let mut listed = 0usize;
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| {
                        S3Error::from_sdk("ListObjectsV2", &loc.bucket, &loc.prefix, &e)
                    })?;
                    for o in page.contents() {
                        listed += 1;
                        let modified = o.last_modified().map_or(0, |t| t.to_millis().unwrap_or(0));
                        if modified >= since_ms {
                            if let Some(k) = o.key() {
                                out.push((loc.bucket.clone(), k.to_string()));
                            }
                        }
                    }
                    if listed >= 50_000 {
                        break;
                    }
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}
