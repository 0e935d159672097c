//! Regex formats: the three presets, and a user-defined regex that uses
//! every capture (`ip`, `time`, `status`, `request`, `method`, `path`,
//! `host`, `user_agent`, `xff`, `user`) in each time format.
#![no_main]

#[path = "common.rs"]
mod common;

use fail2waf_core::formats::pattern::{PatternSpec, PRESET_NAMES};
use fail2waf_core::formats::Format;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

/// Combined-like, with every capture; optional tails for xff and an
/// explicit method and path (which win over `request`).
const USER_RE: &str = r#"^(?P<ip>\S+) \S+ (?P<user>\S+) \[(?P<time>[^\]]*)\] "(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\S+) \S+ "(?P<host>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)"(?: "(?P<xff>(?:[^"\\]|\\.)*)")?(?: (?P<method>\S+) (?P<path>\S+))?"#;

static FORMATS: LazyLock<Vec<Format>> = LazyLock::new(|| {
    let mut v: Vec<Format> = PRESET_NAMES
        .iter()
        .map(|n| Format::from_name(n).expect("preset"))
        .collect();
    for tf in ["clf", "iso8601", "epoch", "epoch_ms"] {
        let spec = PatternSpec::new(&format!("user-{tf}"), USER_RE, tf).expect("user regex");
        v.push(Format::Pattern(spec));
    }
    v
});

fuzz_target!(|data: &[u8]| {
    for f in FORMATS.iter() {
        let mut parser = f.parser();
        common::parse_all(parser.as_mut(), data);
    }
});
