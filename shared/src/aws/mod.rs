//! The AWS side: S3 objects and state, WAF IP sets, Lambda events and
//! metrics.

pub mod s3;
pub mod store;
pub mod service;
pub mod waf;
