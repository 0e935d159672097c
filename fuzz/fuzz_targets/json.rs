//! JSON-lines formats: nested dotted paths, a path into a string that
//! holds JSON (Fluent Bit's `log`), and top-level fields, in each time
//! format.
#![no_main]

#[path = "common.rs"]
mod common;

use fail2waf_core::formats::json::{JsonFields, JsonSpec};
use fail2waf_core::formats::Format;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static FORMATS: LazyLock<Vec<Format>> = LazyLock::new(|| {
    let field = |s: &str| Some(s.to_string());
    let nested = JsonFields {
        ip: "log.remote_addr".into(),
        time: "log.time".into(),
        status: "log.status".into(),
        method: field("log.method"),
        path: field("log.path"),
        host: field("log.host"),
        user_agent: field("log.http.user_agent"),
        xff: field("log.xff"),
        user: field("log.auth.api_key"),
    };
    let flat = JsonFields {
        ip: "ip".into(),
        time: "time".into(),
        status: "status".into(),
        method: field("method"),
        path: field("path"),
        host: None,
        user_agent: field("user_agent"),
        xff: None,
        user: field("user.id"),
    };
    let mut v = Vec::new();
    for tf in ["clf", "iso8601", "epoch", "epoch_ms"] {
        for (name, fields) in [("nested", &nested), ("flat", &flat)] {
            let spec = JsonSpec::new(&format!("{name}-{tf}"), fields, tf).expect("spec");
            v.push(Format::Json(spec));
        }
    }
    v
});

fuzz_target!(|data: &[u8]| {
    for f in FORMATS.iter() {
        let mut parser = f.parser();
        common::parse_all(parser.as_mut(), data);
    }
});
