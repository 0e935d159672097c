//! AWS glue for the Lambda functions: trigger events and metrics.
pub mod events;
pub mod metrics;
