//! Format detection, from the file name (or S3 key) first, then from the
//! first non-empty line.
//!
//! Names AWS writes are specific enough to decide on their own:
//!
//! | key (last component unless noted) | result |
//! |---|---|
//! | `{acct}_elasticloadbalancing_{region}_app.{lb}.{id}_{end}_{ip}_{rand}.log.gz` | ALB |
//! | `{acct}_elasticloadbalancing_{region}_{lb}_{end}_{ip}_{rand}.log` (Classic) | ALB |
//! | `conn_log.` + the ALB name | skip: connection log |
//! | `health_check_log_` + the ALB name | skip: health-check log |
//! | `{acct}_elasticloadbalancing_{region}_net.{lb}…` | skip: NLB access log |
//! | path `AWSLogs/{acct}/elasticloadbalancing/…` | ALB |
//! | `{acct}_waflogs_…`, path `…/WAFLogs/…`, anything `aws-waf-logs…` | WAF |
//! | `{DistributionID}.YYYY-MM-DD-HH.{unique}[.gz]` | CloudFront |

use super::{alb::is_alb_type, parse_ip, parse_ip_port, parse_iso8601_ms, Format};
use memchr::{memchr, memmem};

/// What a file name or S3 key says about its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameHint {
    /// The name says which format this is.
    Format(Format),
    /// A file that carries no requests (ALB connection or health-check log).
    Skip(&'static str),
    /// The name says nothing: look at the first line.
    Unknown,
}

/// Detect from a file name or S3 key (a path with `/` or `\` separators).
pub fn detect_from_name(name: &str) -> NameHint {
    let file = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let elb_path = name.contains("AWSLogs/") && name.contains("/elasticloadbalancing/");

    if let Some(pos) = file.find("_elasticloadbalancing_") {
        if file.starts_with("conn_log.") {
            return NameHint::Skip("ALB connection log");
        }
        if file.starts_with("health_check_log") {
            return NameHint::Skip("ALB health-check log");
        }
        // `{region}_net.{lb}` (NLB) vs `{region}_app.{lb}` / `{region}_{lb}`.
        let after = &file[pos + "_elasticloadbalancing_".len()..];
        let lb = after.split_once('_').map_or("", |(_, lb)| lb);
        if lb.starts_with("net.") {
            return NameHint::Skip("NLB access log");
        }
        return NameHint::Format(Format::Alb);
    }
    if elb_path {
        if file.starts_with("conn_log.") {
            return NameHint::Skip("ALB connection log");
        }
        if file.starts_with("health_check_log") {
            return NameHint::Skip("ALB health-check log");
        }
        return NameHint::Format(Format::Alb);
    }
    if file.contains("_waflogs_")
        || name.contains("aws-waf-logs")
        || name.contains("/WAFLogs/")
        || name.starts_with("WAFLogs/")
    {
        return NameHint::Format(Format::Waf);
    }
    if is_cloudfront_file_name(file) {
        return NameHint::Format(Format::CloudFront);
    }
    NameHint::Unknown
}

/// `{DistributionID}.YYYY-MM-DD-HH.{unique}[.gz]`, the distribution ID being
/// 13–14 upper-case letters and digits starting with `E`.
fn is_cloudfront_file_name(file: &str) -> bool {
    let file = file.strip_suffix(".gz").unwrap_or(file);
    let mut parts = file.split('.');
    let (Some(id), Some(hour), Some(unique), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let id_ok = (13..=14).contains(&id.len())
        && id.starts_with('E')
        && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    // YYYY-MM-DD-HH
    let h = hour.as_bytes();
    let hour_ok = h.len() == 13
        && h.iter().enumerate().all(|(i, &b)| match i {
            4 | 7 | 10 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    let unique_ok = !unique.is_empty() && unique.bytes().all(|b| b.is_ascii_alphanumeric());
    id_ok && hour_ok && unique_ok
}

/// Detect from the first non-empty line.
///
/// `{` is WAF JSON; `#Version`/`#Fields` or `date TAB time TAB …` is
/// CloudFront; `type time …` with an ALB type, or `time elb client:port …`
/// (Classic ELB) is ALB; `IP ident user [dd/Mon/yyyy:…] "…" NNN` is the
/// `nginx-combined` preset (when it exists). Anything else is `None`.
pub fn detect_from_line(line: &[u8]) -> Option<Format> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    let line = &line[start..];
    if line[0] == b'{' {
        return Some(Format::Waf);
    }
    if line.starts_with(b"#Version") || line.starts_with(b"#Fields") {
        return Some(Format::CloudFront);
    }
    if is_cloudfront_line(line) {
        return Some(Format::CloudFront);
    }
    let mut tokens = line.split(|&b| b == b' ');
    let first = tokens.next().unwrap_or_default();
    let second = tokens.next().unwrap_or_default();
    if is_alb_type(first) && parse_iso8601_ms(second).is_some() {
        return Some(Format::Alb);
    }
    if parse_iso8601_ms(first).is_some() {
        let third = tokens.next().unwrap_or_default();
        let classic = std::str::from_utf8(third)
            .ok()
            .and_then(parse_ip_port)
            .is_some();
        return classic.then_some(Format::Alb);
    }
    if is_access_log_line(line) {
        return Format::from_name("nginx-combined");
    }
    None
}

/// `YYYY-MM-DD TAB HH:MM:SS TAB`: a CloudFront line without its header.
fn is_cloudfront_line(line: &[u8]) -> bool {
    line.len() > 20
        && line[10] == b'\t'
        && line[19] == b'\t'
        && line[..10].iter().enumerate().all(|(i, &b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        })
        && line[11..19].iter().enumerate().all(|(i, &b)| match i {
            2 | 5 => b == b':',
            _ => b.is_ascii_digit(),
        })
}

/// `IP ident user [dd/Mon/yyyy:HH:MM:SS zone] "request" NNN`: the common
/// and combined access-log shape of nginx and Apache.
fn is_access_log_line(line: &[u8]) -> bool {
    let Some(sp) = memchr(b' ', line) else {
        return false;
    };
    let ip_ok = std::str::from_utf8(&line[..sp])
        .ok()
        .and_then(parse_ip)
        .is_some();
    if !ip_ok {
        return false;
    }
    // `[dd/Mon/yyyy:`
    let Some(open) = memmem::find(line, b" [") else {
        return false;
    };
    let date = &line[open + 2..];
    let date_ok = date.len() >= 12
        && date[..2].iter().all(u8::is_ascii_digit)
        && date[2] == b'/'
        && date[3..6].iter().all(u8::is_ascii_alphabetic)
        && date[6] == b'/'
        && date[7..11].iter().all(u8::is_ascii_digit)
        && date[11] == b':';
    if !date_ok {
        return false;
    }
    // `] "request" NNN`, with backslash escapes inside the quotes.
    let Some(close) = memmem::find(date, b"] \"") else {
        return false;
    };
    let mut i = close + 3;
    loop {
        let Some(&b) = date.get(i) else {
            return false;
        };
        match b {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let rest = &date[i + 1..];
    rest.len() >= 4
        && rest[0] == b' '
        && rest[1..4].iter().all(u8::is_ascii_digit)
        && rest.get(4).is_none_or(|&b| b == b' ')
}
