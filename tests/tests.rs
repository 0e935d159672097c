//! The one integration-test binary (one link on a two-core machine):
//! the `fail2waf` CLI as a user runs it, and detection quality on the
//! scenario simulator.

mod cli;
mod quality;
mod util;
