//! `fail2waf-ingest`: count S3 log objects as they are written, block.

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
        let deadline = Some(e.context.deadline as i64);
        common::finish(
            handlers::ingest(svc, &e.payload, &e.context.request_id, wall_ms(), deadline).await,
        )
    }))
    .await
}
