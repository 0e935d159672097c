//! The AWS side: S3 objects and state, WAF IP sets, Lambda trigger events,
//! handlers and metrics. Everything goes through the real AWS SDK, so
//! pointing `AWS_ENDPOINT_URL` at a local peer (moto) tests it unchanged.

pub mod events;
pub mod handlers;
pub mod metrics;
pub mod s3;
pub mod service;
pub mod store;
pub mod waf;
