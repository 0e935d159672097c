//! # fail2waf-core
//!
//! The engine behind fail2waf, "fail2ban for AWS WAF".
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod duration;
pub mod engine;
pub mod formats;
pub mod hit;
pub mod ledger;
pub mod pipeline;
pub mod read;
pub mod rules;
pub mod state;
pub mod window;
