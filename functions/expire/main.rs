//! `fail2waf-expire`: every minute, end blocks whose time is up and reconcile WAF.

#[path = "../common.rs"]
mod common;

use fail2waf_core::aws::{handlers, service::Current};
use fail2waf_core::clock::wall_ms;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::init_tracing();
    // The service, rebuilt when the rules file changes (checked at most once a minute).
    let current = &*Box::leak(Box::new(Current::from_env().await?));
    lambda_runtime::run(service_fn(move |e: LambdaEvent<Value>| async move {
        let svc = &*current.get(wall_ms()).await;
        common::finish(handlers::expire(svc, &e.context.request_id, wall_ms()).await)
    }))
    .await
}
