//! # fail2waf-core
//!
//! The engine behind fail2waf, "fail2ban for AWS WAF".
#![deny(missing_docs)]

pub mod formats;
pub mod hit;
pub mod sim;
