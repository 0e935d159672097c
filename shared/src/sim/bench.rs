//! Bulk ALB traffic for benchmarks: millions of realistic lines, fast.
//!
//! Unlike [`super::simulate`], nothing here is labeled: it is a load with
//! the shape of a busy site (mostly 200s, some 404s and 5xx, a few
//! thousand clients by default, browser user agents, full 30-field lines of about
//! 650 bytes), deterministic for a seed.

use super::rng::Rng;
use std::io::{self, Write};

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

const PATHS: &[&str] = &[
    "/",
    "/index.html",
    "/static/app.3f9a1c.js",
    "/static/app.9b2d.css",
    "/img/logo.svg",
    "/products/1842",
    "/products/77?ref=home",
    "/api/v1/cart",
    "/api/v1/session",
    "/search?q=shoes",
    "/category/men",
    "/category/women",
    "/login",
    "/account",
    "/blog/2025/11/winter-sale",
];

/// Write `lines` ALB log lines, one event every `step_ms` from `start_ms`,
/// from `clients` clients picked at random (each its own address: one in
/// ten an IPv6 /64, the others IPv4 addresses spread over the whole space).
pub fn write_alb<W: Write>(
    out: &mut W,
    lines: u64,
    clients: u64,
    seed: u64,
    start_ms: i64,
    step_ms: i64,
) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut buf = Vec::with_capacity(1024);
    for i in 0..lines {
        let t = start_ms + i as i64 * step_ms;
        let secs = t.div_euclid(1000);
        let dt = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
        let micros = t.rem_euclid(1000) * 1000 + (rng.below(1000) as i64);
        let ts = format!("{}.{micros:06}Z", dt.format("%Y-%m-%dT%H:%M:%S"));
        let client = rng.below(clients.max(1));
        let ip = if client % 10 == 0 {
            format!(
                "2001:db8:{:x}:{:x}::{:x}",
                client >> 16,
                client & 0xffff,
                rng.below(65536)
            )
        } else {
            // A bijection on u32: distinct clients, distinct addresses,
            // spread over many /24s.
            std::net::Ipv4Addr::from((client as u32).wrapping_mul(2_654_435_761)).to_string()
        };
        let roll = rng.below(1000);
        let (status, path) = match roll {
            0..=29 => (404, format!("/missing/{}", rng.below(100_000))),
            30..=34 => (500, "/api/v1/checkout".to_string()),
            35..=44 => (302, "/login".to_string()),
            _ => (
                200,
                PATHS[rng.below(PATHS.len() as u64) as usize].to_string(),
            ),
        };
        let ua = AGENTS[rng.below(AGENTS.len() as u64) as usize];
        buf.clear();
        writeln!(
            buf,
            "https {ts} app/shop-prod/6f2c1e0b9a7d4e31 {ip}:{port} 10.0.{n}.{h}:443 0.001 0.{lat:03} 0.000 {status} {status} {rx} {tx} \
             \"GET https://shop.example.com:443{path} HTTP/2.0\" \"{ua}\" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 \
             arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-app/73e2d6bc24d8a067 \
             \"Root=1-{secs:08x}-{trace:024x}\" \"shop.example.com\" \
             \"arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012\" 0 {ts} \
             \"forward\" \"-\" \"-\" \"10.0.{n}.{h}:443\" \"{status}\" \"-\" \"-\" TID_{tid:032x}",
            port = 1024 + rng.below(60000),
            n = rng.below(4),
            h = 10 + rng.below(20),
            lat = rng.below(300),
            rx = 200 + rng.below(800),
            tx = 500 + rng.below(50_000),
            trace = u128::from(rng.next_u64()) << 32 | u128::from(rng.next_u64() >> 32),
            tid = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()),
        )?;
        out.write_all(&buf)?;
    }
    Ok(())
}
