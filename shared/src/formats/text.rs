//! Small, allocation-free helpers shared by the parsers.

use std::net::IpAddr;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

/// Milliseconds since the epoch of a civil UTC date and time, after range
/// checks.
pub(crate) fn civil_to_ms(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(((days * 24 + i64::from(h)) * 60 + i64::from(mi)) * 60_000 + i64::from(s) * 1000)
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM|±HHMM)` to epoch
/// milliseconds. A missing zone is taken as UTC.
pub fn parse_iso8601_ms(s: &[u8]) -> Option<i64> {
    seconds_on(minute_ms(s)?, s)
}

/// The start of the minute of an ISO 8601 time (its first 16 bytes,
/// `YYYY-MM-DDTHH:MM`, checked together with the `:` that follows).
fn minute_ms(s: &[u8]) -> Option<i64> {
    if s.len() < 19 || s[4] != b'-' || s[7] != b'-' || !(s[10] == b'T' || s[10] == b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    civil_to_ms(
        digits(&s[0..4])?,
        digits(&s[5..7])?,
        digits(&s[8..10])?,
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        0,
    )
}

/// The rest of an ISO 8601 time after its minute (seconds, fraction, zone)
/// added to `minute`, the value of [`minute_ms`] for `s`.
fn seconds_on(minute: i64, s: &[u8]) -> Option<i64> {
    // AWS's own form, `SS.ffffffZ` (every ALB time): checked and read in
    // two loads, `SS.fffff` and `fZ`.
    if let (27, Some(head), Some(tail)) = (s.len(), s.get(17..25), s.get(25..27)) {
        let head = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        let tail = u16::from_le_bytes(tail.try_into().expect("2 bytes"));
        // The `.` (byte 2) as a `0`, and the last digit in its place: all
        // eight bytes are then digits, 0x30..=0x39, so that adding 6 keeps
        // each below 0x40.
        let dot = (head >> 16) as u8 == b'.';
        let word = (head & !0xff_0000) | u64::from(tail & 0xff) << 16;
        let all_digits = word & 0xf0f0_f0f0_f0f0_f0f0 == 0x3030_3030_3030_3030
            && (word + 0x0606_0606_0606_0606) & 0xf0f0_f0f0_f0f0_f0f0 == 0x3030_3030_3030_3030;
        if dot && tail >> 8 == u16::from(b'Z') && all_digits {
            let digit = |i: u32| ((word >> (8 * i)) & 0xf) as u32;
            let sec = digit(0) * 10 + digit(1);
            if sec <= 60 {
                let ms = digit(3) * 100 + digit(4) * 10 + digit(5);
                return Some(minute + i64::from(sec * 1000 + ms));
            }
        }
    }
    seconds_on_any(minute, s)
}

/// [`seconds_on`] for every form.
fn seconds_on_any(minute: i64, s: &[u8]) -> Option<i64> {
    let sec = digits(&s[17..19])?;
    if sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut ms = 0i64;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, &b) in frac[..n.min(3)].iter().enumerate() {
            ms += i64::from(b - b'0') * [100, 10, 1][i];
        }
        rest = &frac[n..];
    }
    let offset_min = match rest {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, tail @ ..] => {
            let mm = match tail {
                [b':', m1, m2] | [m1, m2] => digits(&[*m1, *m2])?,
                [] => 0,
                _ => return None,
            };
            let off = i64::from(digits(&[*h1, *h2])? * 60 + mm);
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    Some(minute + i64::from(sec) * 1000 + ms - offset_min * 60_000)
}

/// [`parse_iso8601_ms`] for the times of one log file, which mostly share
/// their minute with the line before: the date, hour and minute of the last
/// time are kept and not read again when the next time repeats them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Iso8601Cache {
    /// The first 16 bytes of the last time that parsed (`YYYY-MM-DDTHH:MM`).
    minute: [u8; 16],
    /// Their value; `None` until a time parsed.
    minute_ms: Option<i64>,
}

impl Iso8601Cache {
    /// The same as [`parse_iso8601_ms`]`(s)`.
    pub(crate) fn parse(&mut self, s: &[u8]) -> Option<i64> {
        if let Some(m) = self.minute_ms {
            if s.len() >= 19 && s[16] == b':' && s[..16] == self.minute {
                return seconds_on(m, s);
            }
        }
        let m = minute_ms(s)?;
        self.minute.copy_from_slice(&s[..16]);
        self.minute_ms = Some(m);
        seconds_on(m, s)
    }
}

/// The value of one hex digit (`%XX` escapes in URLs, keys and fields).
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parse an address, with or without brackets and with or without a port
/// (`192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`, `[2001:db8::1]:443`).
/// An unbracketed IPv6 address is taken whole: use [`parse_ip_port`] where
/// the format always appends a port.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(inner) = s.strip_prefix('[') {
        let end = inner.find(']')?;
        return inner[..end].parse().ok();
    }
    // IPv4 with a port: exactly one colon.
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') || port.parse::<u16>().is_err() {
        return None;
    }
    host.parse().ok()
}

/// Parse `address:port` where the port is always present and IPv6 is not
/// bracketed (ALB's `client:port`): split at the last colon.
pub fn parse_ip_port(s: &str) -> Option<IpAddr> {
    parse_ip_port_bytes(s.as_bytes())
}

/// [`parse_ip_port`] on bytes (a field of a line, not yet known to be text).
///
/// Inlined, for its common case (IPv4 with a port): the address then
/// stays in registers. Returned through memory, byte by byte, it cost a
/// store-forwarding stall per line, which waits for every earlier store.
#[inline]
pub(crate) fn parse_ip_port_bytes(s: &[u8]) -> Option<IpAddr> {
    let (bits, v6) = ip_port_bits(s)?;
    Some(if v6 {
        IpAddr::V6(std::net::Ipv6Addr::from_bits(bits))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::from_bits(bits as u32))
    })
}

/// [`parse_ip_port_bytes`]'s address as its bits and whether it is IPv6:
/// its two paths meet in registers (where they met in an `IpAddr`, that
/// went through memory, in pieces, for the same wait).
#[inline]
fn ip_port_bits(s: &[u8]) -> Option<(u128, bool)> {
    // Read forward: the address, a colon, the port. (The port after the
    // last colon, as `parse_ip_port_other` reads it, is this one: a port
    // holds no colon.)
    if let Some((addr, end)) = ipv4_prefix(s) {
        if s.get(end) == Some(&b':') && is_port(&s[end + 1..]) {
            return Some((u128::from(addr), false));
        }
    }
    match parse_ip_port_other(s)? {
        IpAddr::V4(a) => Some((u128::from(a.to_bits()), false)),
        IpAddr::V6(a) => Some((a.to_bits(), true)),
    }
}

/// A port: 1 to 5 digits, at most 65535.
#[inline]
fn is_port(port: &[u8]) -> bool {
    if port.is_empty() || port.len() > 5 {
        return false;
    }
    let mut p: u32 = 0;
    for &b in port {
        if !b.is_ascii_digit() {
            return false;
        }
        p = p * 10 + u32::from(b - b'0');
    }
    p <= u32::from(u16::MAX)
}

/// [`parse_ip_port_bytes`] but for IPv4 with a port.
#[inline(never)]
fn parse_ip_port_other(s: &[u8]) -> Option<IpAddr> {
    if let Some(inner) = s.strip_prefix(b"[") {
        let end = memchr::memchr(b']', inner)?;
        return std::str::from_utf8(&inner[..end]).ok()?.parse().ok();
    }
    let colon = memchr::memrchr(b':', s)?;
    let (host, port) = (&s[..colon], &s[colon + 1..]);
    if !is_port(port) {
        return None;
    }
    parse_ipv4_fast(host)
        .map(IpAddr::V4)
        .or_else(|| parse_ipv6_fast(host).map(IpAddr::V6))
        .or_else(|| std::str::from_utf8(host).ok()?.parse().ok())
}

/// Colon-hex IPv6 (`2001:db8::1`, at most one `::`, groups of one to four
/// hex digits) without the general parser's overhead; `None` for anything
/// else, including the valid forms it leaves to the standard parser (an
/// embedded IPv4 address such as `::ffff:192.0.2.1`).
fn parse_ipv6_fast(b: &[u8]) -> Option<std::net::Ipv6Addr> {
    let mut groups = [0u16; 8];
    let mut n = 0;
    // Where `::` stands, in groups; `None` without one.
    let mut gap: Option<usize> = None;
    let mut i = 0;
    if b.starts_with(b"::") {
        gap = Some(0);
        i = 2;
        if i == b.len() {
            return Some(std::net::Ipv6Addr::UNSPECIFIED);
        }
    }
    loop {
        let start = i;
        let mut v: u16 = 0;
        while i < b.len() && i - start < 4 {
            let d = match b[i] {
                c @ b'0'..=b'9' => c - b'0',
                c @ b'a'..=b'f' => c - b'a' + 10,
                c @ b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            v = v << 4 | u16::from(d);
            i += 1;
        }
        if i == start || n == 8 {
            return None;
        }
        groups[n] = v;
        n += 1;
        if i == b.len() {
            break;
        }
        if b[i] != b':' {
            return None;
        }
        i += 1;
        if b.get(i) == Some(&b':') {
            if gap.is_some() {
                return None;
            }
            gap = Some(n);
            i += 1;
            if i == b.len() {
                break;
            }
        } else if i == b.len() {
            return None;
        }
    }
    match gap {
        None if n == 8 => {}
        // `::` stands for at least one group of zeros.
        Some(at) if n <= 7 => {
            let tail = n - at;
            groups.copy_within(at..n, 8 - tail);
            groups[at..8 - tail].fill(0);
        }
        _ => return None,
    }
    Some(std::net::Ipv6Addr::from(groups))
}

/// Dotted-quad IPv4 without the general parser's overhead (the common case
/// in every log line); `None` for anything else, which then takes the
/// standard parser.
#[inline]
fn parse_ipv4_fast(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    ipv4_prefix(b)
        .filter(|&(_, end)| end == b.len())
        .map(|(addr, _)| std::net::Ipv4Addr::from_bits(addr))
}

/// The dotted-quad IPv4 address that `b` starts with, by the standard
/// parser's rules (one to three digits an octet, no leading zeros, at most
/// 255): its bits, and where it ends.
#[inline]
fn ipv4_prefix(b: &[u8]) -> Option<(u32, usize)> {
    // Read from sixteen bytes (an address is at most fifteen), padded with
    // a byte that ends it: no bounds check on every byte.
    let mut padded = [0u8; 16];
    let head: &[u8; 16] = match b.first_chunk() {
        Some(head) => head,
        None => {
            padded[..b.len()].copy_from_slice(b);
            &padded
        }
    };
    let at = |i: usize| head[i & 15];
    let (mut addr, mut i) = (0u32, 0);
    for n in 0..4 {
        let first = at(i).wrapping_sub(b'0');
        if first > 9 {
            return None;
        }
        let mut v = u32::from(first);
        i += 1;
        // No leading zeros (as the standard parser): a 0 is the octet.
        if first != 0 {
            for _ in 0..2 {
                let d = at(i).wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                v = v * 10 + u32::from(d);
                i += 1;
            }
            if v > 255 {
                return None;
            }
        }
        addr = addr << 8 | v;
        if n < 3 {
            if at(i) != b'.' {
                return None;
            }
            i += 1;
        }
    }
    Some((addr, i))
}

/// Split an HTTP request line `METHOD URL VERSION` into method and URL at
/// the first and last space, so a URL with spaces stays whole. A line with
/// no space is all URL with method `-`; with one space the version is taken
/// to be missing.
pub fn split_request_line(req: &str) -> (&str, &str) {
    let b = req.as_bytes();
    let Some(first) = memchr::memchr(b' ', b) else {
        return ("-", req);
    };
    let (method, rest) = (&req[..first], &req[first + 1..]);
    match memchr::memrchr(b' ', rest.as_bytes()) {
        Some(last) => {
            let version = &rest[last + 1..];
            if version.starts_with("HTTP/") || version == "-" {
                (method, &rest[..last])
            } else {
                (method, rest)
            }
        }
        None => (method, rest),
    }
}

/// Split an absolute URL `scheme://host[:port]/path?query` into host (with
/// the port removed) and path; a URL that is already a path is returned
/// with an empty host.
pub fn split_url(url: &str) -> (&str, &str) {
    let b = url.as_bytes();
    // Only a scheme before the first `/` or `?` makes an absolute URL:
    // `/r?u=http://x/y` is a path.
    let scheme_end = match memchr::memchr3(b':', b'/', b'?', b) {
        Some(i) if b[i] == b':' && b[i + 1..].starts_with(b"//") => i,
        _ => return ("", url),
    };
    let rest = &url[scheme_end + 3..];
    let (authority, path) = match memchr::memchr2(b'/', b'?', rest.as_bytes()) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host = match memchr::memrchr(b':', authority.as_bytes()) {
        Some(i)
            if i + 1 < authority.len()
                && authority.as_bytes()[i + 1..].iter().all(u8::is_ascii_digit) =>
        {
            &authority[..i]
        }
        _ => authority,
    };
    (host, if path.is_empty() { "/" } else { path })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv6Addr;

    /// Strings near the IPv6 grammar: hex digits, colons, a dot, a zone.
    fn ipv6ish() -> impl Strategy<Value = String> {
        prop_oneof![
            "[0-9a-fA-F:]{0,40}",
            "[0-9a-f:.%]{0,45}",
            any::<[u16; 8]>().prop_map(|g| Ipv6Addr::from(g).to_string()),
            any::<[u16; 8]>().prop_map(|g| {
                g.iter()
                    .map(|x| format!("{x:x}"))
                    .collect::<Vec<_>>()
                    .join(":")
            }),
            (any::<[u16; 8]>(), 0usize..8, 0usize..8).prop_map(|(g, a, b)| {
                // Cut a run of groups (zero or not) out and write `::`.
                let (a, b) = (a.min(b), a.max(b));
                let hex = |r: &[u16]| r.iter().map(|x| format!("{x:X}")).collect::<Vec<_>>();
                format!("{}::{}", hex(&g[..a]).join(":"), hex(&g[b..]).join(":"))
            }),
        ]
    }

    /// Times near the ISO 8601 grammar, several in the same minute.
    fn timeish() -> impl Strategy<Value = Vec<String>> {
        let one = prop_oneof![
            "2026-11-2[6-7]T23:5[89]:[0-6][0-9](\\.[0-9]{0,7})?(Z|z|[+-][0-9]{2}:?[0-9]{2})?",
            "20[0-9]{2}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}.{0,4}",
            ".{0,24}",
        ];
        proptest::collection::vec(one, 1..20)
    }

    proptest! {
        #[test]
        fn ipv6_fast_path_agrees_with_the_standard_parser(s in ipv6ish()) {
            let std = s.parse::<Ipv6Addr>().ok();
            if let Some(fast) = parse_ipv6_fast(s.as_bytes()) {
                prop_assert_eq!(Some(fast), std, "{}", s);
            }
            // Through parse_ip_port, with the fallback, every form agrees.
            let with_port = format!("{s}:443");
            prop_assert_eq!(
                parse_ip_port(&with_port),
                std.map(IpAddr::V6).or_else(|| s.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)),
                "{}", with_port
            );
        }

        #[test]
        fn ipv4_with_a_port_agrees_with_the_standard_parser(
            host in prop_oneof!["[0-9]{0,4}(\\.[0-9]{0,4}){0,4}", "([0-2]?[0-9]{1,2}\\.){3}[0-2]?[0-9]{1,2}"],
            port in "[0-9a+]{0,6}",
        ) {
            let s = format!("{host}:{port}");
            let port_ok = (1..=5).contains(&port.len())
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| p <= 65535);
            let std = host.parse::<std::net::Ipv4Addr>().ok();
            prop_assert_eq!(parse_ipv4_fast(host.as_bytes()), std, "{}", host);
            let want = std.filter(|_| port_ok);
            prop_assert_eq!(parse_ip_port(&s), want.map(IpAddr::V4), "{}", s);
        }

        #[test]
        fn the_fast_path_agrees_with_the_general_one(
            s in "[0-9.:a\\[\\]]{0,24}|([0-9]{1,3}\\.){3}[0-9]{1,4}[:.a0][0-9:]{0,7}",
        ) {
            prop_assert_eq!(parse_ip_port_bytes(s.as_bytes()), parse_ip_port_other(s.as_bytes()), "{}", s);
        }

        #[test]
        fn aws_times_are_read_as_any_other(
            rest in "[0-9]{2}\\.[0-9]{6}Z",
            at in 0usize..12,
            other in prop_oneof![Just(':'), Just('/'), Just('.'), Just('Z'), any::<char>()],
        ) {
            // `SS.ffffffZ` after the minute, or that with one character
            // replaced (`at` past its end: none).
            let rest: String = rest
                .chars()
                .enumerate()
                .map(|(i, c)| if i == at { other } else { c })
                .collect();
            let t = format!("2026-12-05T17:59:{rest}");
            let (t, minute) = (t.as_bytes(), minute_ms(t.as_bytes()).unwrap());
            prop_assert_eq!(seconds_on(minute, t), seconds_on_any(minute, t), "{:?}", t);
        }

        #[test]
        fn cached_times_agree_with_the_plain_parser(times in timeish()) {
            let mut cache = Iso8601Cache::default();
            for t in &times {
                prop_assert_eq!(cache.parse(t.as_bytes()), parse_iso8601_ms(t.as_bytes()), "{}", t);
            }
        }
    }

    #[test]
    fn ipv6_fast_path_reads_the_compressed_forms() {
        for s in [
            "::",
            "::1",
            "1::",
            "2001:db8::1",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "fe80::AbCd:0:0:1",
        ] {
            assert_eq!(
                parse_ipv6_fast(s.as_bytes()),
                Some(s.parse().unwrap()),
                "{s}"
            );
        }
        for s in [
            "",
            ":",
            ":::",
            "1:::2",
            "1::2::3",
            "12345::",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7:8::",
            "::1:",
            "::ffff:192.0.2.1",
        ] {
            assert_eq!(parse_ipv6_fast(s.as_bytes()), None, "{s}");
        }
        // The embedded IPv4 form is left to the standard parser.
        assert_eq!(
            parse_ip_port("::ffff:192.0.2.1:80"),
            Some("::ffff:192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_ip_port("2001:db8::1:65536"), None);
    }

    #[test]
    fn iso8601_variants() {
        let z = parse_iso8601_ms(b"2018-07-02T22:23:00.186641Z").unwrap();
        assert_eq!(z, 1_530_570_180_186);
        assert_eq!(
            parse_iso8601_ms(b"2018-07-02T22:23:00Z"),
            Some(1_530_570_180_000)
        );
        assert_eq!(
            parse_iso8601_ms(b"2018-07-03T00:23:00.186+02:00"),
            Some(1_530_570_180_186)
        );
        assert_eq!(parse_iso8601_ms(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601_ms(b"2018-13-02T22:23:00Z"), None);
        assert_eq!(parse_iso8601_ms(b"2018-07-02T22:23:00.Z"), None);
        assert_eq!(parse_iso8601_ms(b"2018-07-02"), None);
        assert_eq!(parse_iso8601_ms(b"2018-07-02T22:23:00Zjunk"), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            parse_ip_port("192.0.2.1:2817"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            parse_ip_port("2001:db8::1:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_ip_port("[2001:db8::1]:443"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip_port("192.0.2.1"), None);
        for bad in [
            "256.1.1.1:1",
            "1.2.3:1",
            "1.2.3.4.5:1",
            "01.2.3.4:1",
            "1..3.4:1",
            "1.2.3.4:",
            "1.2.3.4:99999",
            ":80",
        ] {
            assert_eq!(parse_ip_port(bad), None, "{bad}");
        }
        assert_eq!(parse_ip_port("0.0.0.0:0"), Some("0.0.0.0".parse().unwrap()));
        assert_eq!(
            parse_ip_port("::ffff:192.0.2.1:80"),
            Some("::ffff:192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            parse_ip("2001:db8::1"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(
            parse_ip(" 192.0.2.1:80"),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(parse_ip("unknown"), None);
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            split_request_line("GET http://h:80/a b HTTP/1.1"),
            ("GET", "http://h:80/a b")
        );
        assert_eq!(
            split_request_line("- http://h:80- -"),
            ("-", "http://h:80-")
        );
        assert_eq!(split_request_line("garbage"), ("-", "garbage"));
        assert_eq!(
            split_url("https://www.example.com:443/x?y=1"),
            ("www.example.com", "/x?y=1")
        );
        assert_eq!(split_url("http://h:80-"), ("h:80-", "/"));
        assert_eq!(split_url("http://h:"), ("h:", "/"));
        assert_eq!(split_url("http:/x"), ("", "http:/x"));
        assert_eq!(split_url("h:80"), ("", "h:80"));
        assert_eq!(split_request_line("GET /x"), ("GET", "/x"));
        assert_eq!(split_url("/only/path"), ("", "/only/path"));
        assert_eq!(split_url("/r?u=http://x/y"), ("", "/r?u=http://x/y"));
    }
}
