//! Shared by the line-parser targets: feed every line of the input to one
//! parser (so stateful parsers, CloudFront's `#Fields` header, see a file),
//! and check only what must hold for any input.
#![allow(dead_code)]

use fail2waf_core::client::ClientResolver;
use fail2waf_core::printable::clip;
use fail2waf_core::formats::{LineParser, ParseError};
use fail2waf_core::hit::Hit;
use ipnet::IpNet;
use std::sync::LazyLock;

/// Trusted proxies for the resolver check.
pub static TRUSTED: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32", "::ffff:0:0/96"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect()
});

static RESOLVER: LazyLock<ClientResolver> =
    LazyLock::new(|| ClientResolver::new(TRUSTED.clone(), 64));

/// The input's lines, as `read::Lines` hands them out: split on `\n`, one
/// trailing `\r` removed.
pub fn lines(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

/// A parse error names a field and a reason.
pub fn check_error(e: &ParseError) {
    assert!(!e.field.is_empty(), "parse error without a field: {e:?}");
    assert!(!e.reason.is_empty(), "parse error without a reason: {e:?}");
}

/// What must hold for any hit a parser returns.
pub fn check_hit(hit: &Hit<'_>) {
    // Text taken from logs is printed through `clip`: no control character
    // may survive it (log and terminal injection).
    for text in [&hit.path, &hit.method, &hit.host, &hit.user_agent] {
        let c = clip(text, 200);
        assert!(!c.chars().any(char::is_control), "control char in {c:?}");
    }
    if let Some(x) = &hit.forwarded_for {
        let c = clip(x, 200);
        assert!(!c.chars().any(char::is_control), "control char in {c:?}");
    }
    // A request never counts for a trusted proxy, whatever X-Forwarded-For
    // says; and keys are networks with their host bits masked.
    if let Some(ip) = RESOLVER.client(hit) {
        assert!(
            !TRUSTED.iter().any(|n| n.contains(&ip)),
            "counted for a trusted proxy: {ip} ({hit:?})"
        );
        let key = RESOLVER.key(ip);
        assert_eq!(key, key.trunc());
        assert!(key.contains(&ip));
    }
}

/// Parse every line of `data` with `parser`.
pub fn parse_all(parser: &mut dyn LineParser, data: &[u8]) {
    for line in lines(data) {
        match parser.parse(line) {
            Ok(Some(hit)) => check_hit(&hit),
            Ok(None) => {}
            Err(e) => check_error(&e),
        }
    }
}
