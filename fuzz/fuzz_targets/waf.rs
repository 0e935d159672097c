//! The waf parser on attacker-controlled bytes: every line of the input,
//! one parser per input (one file); without a user source, and with the
//! user in a header or a cookie.
#![no_main]

#[path = "common.rs"]
mod common;

use fail2waf_core::formats::{Format, UserSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let sources = [
        UserSource::default(),
        UserSource {
            header: Some("x-api-key".into()),
            cookie: None,
        },
        UserSource {
            header: None,
            cookie: Some("session".into()),
        },
    ];
    for source in &sources {
        let mut parser = Format::Waf.parser();
        parser.set_user_source(source);
        common::parse_all(parser.as_mut(), data);
    }
});
