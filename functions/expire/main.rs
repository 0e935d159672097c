//! `fail2waf-expire`: every minute, end blocks whose time is up and reconcile WAF.

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
        common::finish(handlers::expire(svc, &e.context.request_id, wall_ms()).await)
    }))
    .await
}
