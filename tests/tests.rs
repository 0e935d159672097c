//! The one integration-test binary (one link on a two-core machine):
//! the `fail2waf` CLI as a user runs it, and detection quality on the
//! scenario simulator; the real peers that tests run against: moto's
//! server (S3, WAFv2) and a Lambda Runtime API for the function binaries.

mod aws;
mod cli;
mod faults;
mod lambda_api;
mod manage;
mod moto;
mod quality;
mod report;
mod users;
mod util;
