//! The AWS side: S3 objects and state, WAF IP sets and the users' regex
//! pattern set, EventBridge events of decisions, Lambda trigger events,
//! handlers and metrics. Everything goes through the real AWS SDK, so
//! pointing `AWS_ENDPOINT_URL` at a local peer (moto) tests it unchanged.

pub mod events;
#[cfg(feature = "aws")]
pub mod handlers;
pub mod metrics;
#[cfg(feature = "aws")]
pub mod notify;
#[cfg(feature = "aws")]
pub mod patterns;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod service;
#[cfg(feature = "aws")]
pub mod store;
#[cfg(feature = "aws")]
pub mod waf;
