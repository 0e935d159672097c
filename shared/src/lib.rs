//! # fail2waf-core
//!
//! The engine behind fail2waf, "fail2ban for AWS WAF". AWS WAF judges a
//! request before the application answers, so it cannot block a client for
//! the *responses* it keeps getting: 404 storms from scanners, 401s from
//! credential stuffers, 5xx from fuzzers. Those answers are in the access
//! logs; this crate reads them and decides whom to block.
//!
//! The pipeline, in the order data flows:
//!
//! 1. [`read`]: stream a file or object, gunzip by magic bytes, split lines
//!    in bounded memory; [`ahead`]: the same on a second thread, in chunks
//!    of whole lines, parsed there too while counting is the slower.
//! 2. [`formats`]: parse a line of ALB, AWS WAF, CloudFront or a regex
//!    format into a borrowed [`hit::Hit`]; a bad line is counted, never fatal.
//! 3. [`client`]: resolve the address that counts (trusted proxies,
//!    `X-Forwarded-For`), fold IPv6 to its /64.
//! 4. [`rules`] and [`window`]: match hits against rules and count them in
//!    event-time buckets; [`engine`] evaluates the sliding windows and emits
//!    offenses.
//! 5. [`ledger`]: turn offenses into time-limited, escalating blocks, under
//!    the safety rules (allow-list, trusted proxies, widest prefix).
//! 6. [`pipeline`]: all of the above for one configuration ([`config`]),
//!    as used by the CLI and the Lambda functions; [`state`] keeps windows
//!    and ledger between runs.
//! 7. `sim` (feature `sim`): a scenario simulator that writes labeled ALB logs of
//!    attackers and benign clients, to test and tune the rules.
//!
//! Everything here is deterministic: wall-clock time never enters the
//! engine, so the same records in the same order give the same decisions.
#![deny(missing_docs)]

pub mod ahead;
#[cfg(feature = "events")]
pub mod aws;
pub mod client;
pub mod clock;
pub mod config;
pub mod duration;
pub mod engine;
pub mod formats;
pub mod hit;
pub mod key;
pub mod ledger;
pub mod pipeline;
pub mod printable;
pub mod read;
pub mod route;
pub mod rules;
#[cfg(feature = "sim")]
pub mod sim;
pub mod state;
pub mod window;
