//! The service of a warm function, rebuilt when its rules file changes.
//!
//! A Lambda execution environment lives for hours; the rules file is read
//! when it starts. So that an uploaded change reaches warm functions too,
//! [`Current::get`] looks at most every `FAIL2WAF_CONFIG_CHECK_SECS`
//! (60 s) whether the `s3://` rules file's ETag changed (one HeadObject),
//! and if so builds the service again from it. A file that no longer
//! parses keeps the service running on the rules it has, and says so in
//! the log.

use super::{Service, ServiceError, Settings};
use crate::aws::s3::S3Loc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

/// The service of a function, as of its rules file's latest version.
pub struct Current {
    sdk: aws_config::SdkConfig,
    svc: RwLock<Arc<Service>>,
    checked_ms: AtomicI64,
}

impl Current {
    /// The service from the environment, as [`Service::from_env`].
    pub async fn from_env() -> Result<Current, ServiceError> {
        let settings = Settings::from_env().map_err(|e| ServiceError::Invalid(e.to_string()))?;
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let svc = Service::with_sdk(settings, &sdk).await?;
        Ok(Current {
            sdk,
            svc: RwLock::new(Arc::new(svc)),
            checked_ms: AtomicI64::new(crate::clock::wall_ms()),
        })
    }

    /// The service to use for an invocation at `now_ms`.
    pub async fn get(&self, now_ms: i64) -> Arc<Service> {
        let svc = self.svc.read().expect("lock").clone();
        let due = now_ms.saturating_sub(self.checked_ms.load(Ordering::Relaxed))
            >= svc.settings.config_check_ms;
        let Some(loc) = svc
            .settings
            .config
            .as_deref()
            .and_then(|c| c.parse::<S3Loc>().ok())
            .filter(|_| due)
        else {
            return svc;
        };
        self.checked_ms.store(now_ms, Ordering::Relaxed);
        let head = svc
            .store
            .client()
            .head_object()
            .bucket(&loc.bucket)
            .key(&loc.prefix)
            .send()
            .await;
        let etag = match head {
            Ok(h) => h.e_tag().map(str::to_string),
            Err(e) => {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "rules file: cannot look at it; keeping the rules in use");
                return svc;
            }
        };
        if etag == svc.config_etag {
            return svc;
        }
        match Service::with_sdk(svc.settings.clone(), &self.sdk).await {
            Ok(new) => {
                tracing::info!(etag = ?new.config_etag, "rules file changed: now in use");
                let new = Arc::new(new);
                *self.svc.write().expect("lock") = new.clone();
                new
            }
            Err(e) => {
                tracing::error!(error = %e, "rules file changed but cannot be used; keeping the rules in use");
                svc
            }
        }
    }
}
