//! Configuration files: any bytes (lossily UTF-8) through `Config::parse`,
//! and the same text as one `[[rules]]` entry through `Rule::new`.
#![no_main]

use fail2waf_core::config::Config;
use fail2waf_core::duration::Secs;
use fail2waf_core::engine::Engine;
use fail2waf_core::ledger::Policy;
use fail2waf_core::rules::{Rule, RuleConfig};
use libfuzzer_sys::fuzz_target;

/// Lines a user-defined format of an accepted config is tried on.
const LINES: [&[u8]; 3] = [
    br#"198.51.100.7 - - [01/Jan/2026:00:00:00 +0000] "GET /a HTTP/1.1" 404 1 "-" "ua""#,
    b"2026-01-01T00:00:00Z 198.51.100.7 404 GET /a",
    b"\xff\x00\"\\x22 [] 1767225600",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::parse(&text) {
        Err(e) => {
            assert!(!e.message.is_empty(), "empty config error: line {:?}", e.line);
            if let Some(line) = e.line {
                let lines = text.bytes().filter(|&b| b == b'\n').count() + 1;
                assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            }
        }
        Ok(cfg) => {
            // What an accepted configuration promises.
            let f = &cfg.file;
            assert!(f.max_prefix_v4 >= 1 && f.max_prefix_v6 >= 1, "a /0 may be blocked");
            assert!(f.trusted_proxies.iter().chain(&f.allow).all(|n| n.prefix_len() > 0));
            assert!(!cfg.rules.is_empty() && cfg.rules.len() <= 64);
            for r in &cfg.rules {
                // Validation is stable: a validated rule validates again.
                Rule::new(r.config.clone(), f.bucket).expect("a validated rule is valid");
            }
            let _policy = Policy::new(&cfg);
            let _engine = Engine::new(&cfg);
            let _ = cfg.longest_window_buckets();
            for format in cfg.formats.values() {
                let mut p = format.parser();
                for l in LINES {
                    if let Err(e) = p.parse(l) {
                        assert!(!e.field.is_empty() && !e.reason.is_empty());
                    }
                }
            }
        }
    }
    // One rule on its own, for several bucket widths.
    if let Ok(rc) = toml::from_str::<RuleConfig>(&text) {
        for bucket in [0, 1, 10, 60, 3600] {
            if let Err(e) = Rule::new(rc.clone(), Secs(bucket)) {
                assert!(!e.field.is_empty() && !e.message.is_empty(), "{e:?}");
            }
        }
    }
});
