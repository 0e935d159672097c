//! The cloudfront parser on attacker-controlled bytes: every line of the input,
//! one parser per input (one file).
#![no_main]

#[path = "common.rs"]
mod common;

use fail2waf_core::formats::Format;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parser = Format::CloudFront.parser();
    common::parse_all(parser.as_mut(), data);
});
