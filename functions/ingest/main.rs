//! `fail2waf-ingest`: count S3 log objects as they are written, block.

#[path = "../common.rs"]
mod common;

use fail2waf_core::aws::{handlers, service::Service};
use fail2waf_core::clock::wall_ms;
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    common::init_tracing();
    let svc = &*Box::leak(Box::new(Service::from_env().await?));
    lambda_runtime::run(service_fn(move |e: LambdaEvent<Value>| async move {
        let deadline = Some(e.context.deadline as i64);
        common::finish(
            handlers::ingest(svc, &e.payload, &e.context.request_id, wall_ms(), deadline).await,
        )
    }))
    .await
}
