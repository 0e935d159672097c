//! Format sniffing: which format a log is in, from the file name (or S3
//! key) first, then from the first non-empty line.
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
pub fn hint_from_name(name: &str) -> NameHint {
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
/// upper-case letters and digits starting with `E`. Real IDs have 13–14
/// characters, the doc's `EMLARXS9EXAMPLE` 15: accept 10–20.
fn is_cloudfront_file_name(file: &str) -> bool {
    let file = file.strip_suffix(".gz").unwrap_or(file);
    let mut parts = file.split('.');
    let (Some(id), Some(hour), Some(unique), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let id_ok = (10..=20).contains(&id.len())
        && id.starts_with('E')
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
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
pub fn format_from_line(line: &[u8]) -> Option<Format> {
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
    // NLB `tls 2.0 time …` lines share ALB prefixes; the ALB parser skips them.
    if (is_alb_type(first) && parse_iso8601_ms(second).is_some())
        || (first == b"tls" && second == b"2.0")
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::testutil::{fixture, lines};

    fn fmt(f: Format) -> NameHint {
        NameHint::Format(f)
    }

    #[test]
    fn alb_keys() {
        // The doc's key layout, with the doc's zero-padded node IP.
        let doc = "my-bucket/prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz";
        assert_eq!(hint_from_name(doc), fmt(Format::Alb));
        let file = doc.rsplit('/').next().unwrap();
        assert_eq!(hint_from_name(file), fmt(Format::Alb));
        assert_eq!(
            hint_from_name(file.trim_end_matches(".gz")),
            fmt(Format::Alb)
        );
        // Classic ELB: no `app.`.
        let classic = "AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log";
        assert_eq!(hint_from_name(classic), fmt(Format::Alb));
        // A renamed file under the ELB path still counts.
        let renamed =
            "bucket/AWSLogs/123456789012/elasticloadbalancing/eu-west-1/2024/01/01/part-0001.gz";
        assert_eq!(hint_from_name(renamed), fmt(Format::Alb));
    }

    #[test]
    fn files_without_requests_are_skipped() {
        let dir = "bucket/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2024/10/04/";
        let tail = "123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20241004T1705Z_172.160.001.192_20sg8hgm.log.gz";
        assert_eq!(
            hint_from_name(&format!("{dir}conn_log.{tail}")),
            NameHint::Skip("ALB connection log")
        );
        assert_eq!(
            hint_from_name(&format!("conn_log.{tail}")),
            NameHint::Skip("ALB connection log")
        );
        assert_eq!(
            hint_from_name(&format!("{dir}health_check_log_{tail}")),
            NameHint::Skip("ALB health-check log")
        );
        assert_eq!(
            hint_from_name(&format!("{dir}conn_log.renamed.gz")),
            NameHint::Skip("ALB connection log")
        );
        let nlb = "123456789012_elasticloadbalancing_us-east-2_net.my-nlb.1234567890abcdef_20241004T1705Z_54ab1234.log.gz";
        assert_eq!(
            hint_from_name(&format!("{dir}{nlb}")),
            NameHint::Skip("NLB access log")
        );
        assert_eq!(hint_from_name(nlb), NameHint::Skip("NLB access log"));
    }

    #[test]
    fn waf_keys() {
        let doc = "AWSLogs/11111111111/WAFLogs/us-east-1/TEST-WEBACL/2021/10/28/19/50/11111111111_waflogs_us-east-1_TEST-WEBACL_20211028T1950Z_e0ca43b5.log.gz";
        assert_eq!(hint_from_name(doc), fmt(Format::Waf));
        assert_eq!(
            hint_from_name(&format!("aws-waf-logs-mine/{doc}")),
            fmt(Format::Waf)
        );
        assert_eq!(
            hint_from_name(doc.rsplit('/').next().unwrap()),
            fmt(Format::Waf)
        );
        // Firehose: the stream name is in the object name.
        let firehose = "2021/10/28/19/aws-waf-logs-stream-1-2021-10-28-19-50-00-0a1b2c3d-4e5f";
        assert_eq!(hint_from_name(firehose), fmt(Format::Waf));
        assert_eq!(
            hint_from_name("WAFLogs/cloudfront/x.log.gz"),
            fmt(Format::Waf)
        );
    }

    #[test]
    fn cloudfront_keys() {
        let doc = "EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz";
        assert_eq!(hint_from_name(doc), fmt(Format::CloudFront));
        assert_eq!(
            hint_from_name(&format!("cf-logs/{doc}")),
            fmt(Format::CloudFront)
        );
        assert_eq!(
            hint_from_name("E2QWRUHAPOMQZL.2014-05-23-01.a1b2c3d4"),
            fmt(Format::CloudFront)
        );
        // Not a distribution ID: the fixture's name, lower case, too short.
        assert_eq!(
            hint_from_name("synthesized_EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz"),
            NameHint::Unknown
        );
        assert_eq!(
            hint_from_name("emlarxs9example.2019-11-14-20.RT4KCN4SGK9.gz"),
            NameHint::Unknown
        );
        assert_eq!(
            hint_from_name("EABC.2019-11-14-20.RT4KCN4SGK9.gz"),
            NameHint::Unknown
        );
        assert_eq!(
            hint_from_name("EMLARXS9EXAMPLE.2019-11-14.RT4KCN4SGK9.gz"),
            NameHint::Unknown
        );
    }

    #[test]
    fn plain_names_say_nothing() {
        for name in [
            "",
            "access.log",
            "/var/log/nginx/access.log.1",
            "logs/app.log.gz",
            "alb.log",
            "awsdocs_examples_2023.log",
            "C:\\logs\\access.log",
            "/",
        ] {
            assert_eq!(hint_from_name(name), NameHint::Unknown, "{name:?}");
        }
    }

    /// The first line of the fixture `rel` that is not blank, without `\r`.
    fn first_line(rel: &str) -> Vec<u8> {
        let bytes = fixture(rel);
        let line = lines(&bytes)
            .into_iter()
            .find(|l| !l.iter().all(u8::is_ascii_whitespace))
            .unwrap();
        line.strip_suffix(b"\r").unwrap_or(line).to_vec()
    }

    #[test]
    fn first_lines_of_fixtures() {
        let alb = [
            "alb/awsdocs_examples_2023.log",
            "alb/synthesized/awsdocs_examples_2023_multimember.log.gz",
            "alb/dpetzold/classic_loadbalancer_http_entry.csv",
            "alb/dpetzold/loadbalancer_http2_entry.csv",
            "alb/jdwit/sample.log",
            "alb/vrl_lines.log",
            "alb/elastic_integrations_test-alb.log",
            "alb/real_excerpt_azul_pr4920_truncated.log",
            "alb/synthesized/trailing_cr.log",
            "alb/synthesized/ipv6_client_404.log",
            // NLB lines under an ALB prefix: read as ALB, whose parser skips them.
            "alb/elastic_nlb_tls_NOT_ALB.log",
        ];
        for f in alb {
            assert_eq!(format_from_line(&first_line(f)), Some(Format::Alb), "{f}");
        }
        let conn = "alb_connection/elastic_alb_connection.log";
        assert_eq!(format_from_line(&first_line(conn)), None, "{conn}");
        let waf = [
            "waf/waf_ndjson_sample.log",
            "waf/waf_ndjson_sample.log.gz",
            "waf/waf_concatenated_no_newlines_defensive.log",
            "waf/dpetzold/waf_log.json",
            "waf/awsdocs/01_log_output_for_a_rule_that_triggered_on_sqli_detection_termi.json",
            "waf/awsdocs/07_rate_based_rule_1_log_entry_VERBATIM_INVALID_JSON.txt",
        ];
        for f in waf {
            assert_eq!(format_from_line(&first_line(f)), Some(Format::Waf), "{f}");
        }
        let cloudfront = [
            "cloudfront/awsdocs_example_standard_log.log",
            "cloudfront/synthesized_header_only.log",
            "cloudfront/synthesized_tricky.log",
            "cloudfront/synthesized_EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
            "cloudfront/dpetzold/cloudfront-multiple.log",
            // No header: `date TAB time TAB …`.
            "cloudfront/dpetzold/cloudfront_entry.csv",
            "cloudfront/dpetzold/cloudfront_entry2.csv",
        ];
        for f in cloudfront {
            assert_eq!(
                format_from_line(&first_line(f)),
                Some(Format::CloudFront),
                "{f}"
            );
        }
        // Access logs: the `nginx-combined` preset.
        let combined = Format::from_name("nginx-combined");
        assert!(combined.is_some());
        let applog = [
            "applog/nginx_combined_vrl.log",
            "applog/nginx_main_vrl.log",
            "applog/nginx_ingress_upstreaminfo_vrl.log",
            "applog/apache_combined_vrl.log",
            "applog/apache_httpd_docs_examples.log",
            "applog/common_log_vrl.log",
            "applog/synthesized_tricky.log",
        ];
        // Its client address was redacted to `x.x.x.x` upstream: not a log
        // we can count, so no format is guessed for it.
        assert_eq!(
            format_from_line(&first_line(
                "applog/apache_escaped_quote_fluentbit_pr566.log"
            )),
            None
        );
        for f in applog {
            let got = format_from_line(&first_line(f));
            assert_eq!(got, combined, "{f}");
            if let Some(got) = got {
                assert_eq!(got.name(), "nginx-combined", "{f}");
            }
        }
    }

    #[test]
    fn access_log_shape() {
        // Whether a line has the shape is tested directly, so this does not
        // wait for the presets.
        for line in [
            "172.17.0.1 - - [31/Mar/2021:12:04:07 +0000] \"GET / HTTP/1.1\" 200 612 \"-\" \"curl/7.75.0\"",
            "2001:db8::1 - - [31/Mar/2021:12:04:07 +0000] \"GET /a\\\" b HTTP/1.1\" 404 153",
            "0.0.0.0 - - [04/Oct/2022:04:34:49 +0000] \"\" 400 0 \"\" \"\"",
            "127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
        ] {
            assert!(is_access_log_line(line.as_bytes()), "{line}");
        }
        for line in [
            "x.x.x.x - - [16/Apr/2018:16:19:20 +0000] \"POST /myURL HTTP/1.1\" 200 8073",
            "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" OK 2326",
            "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0",
            "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\\",
            "127.0.0.1 - - [yesterday] \"GET / HTTP/1.0\" 200 1",
            "127.0.0.1",
            "- - - [1234] - - - - -",
        ] {
            assert!(!is_access_log_line(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn lines_that_say_nothing() {
        for line in [
            &b""[..],
            b"   ",
            b"\xEF\xBB\xBF",
            b"hello world",
            b"http not-a-time",
            b"2018-07-02T22:23:00.186641Z my-lb 1.2.3.4",
            b"2018-07-02T22:23:00.186641Z",
            b"2014-05-23\t01:13",
            b"#Comment",
            b"\xff\xfe\x00",
        ] {
            assert_eq!(
                format_from_line(line),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        // Leading BOM and whitespace are ignored.
        assert_eq!(
            format_from_line(b"\xEF\xBB\xBF{\"timestamp\":1}"),
            Some(Format::Waf)
        );
        assert_eq!(
            format_from_line(b"  #Version: 1.0"),
            Some(Format::CloudFront)
        );
        assert_eq!(
            format_from_line(b"grpcs 2018-07-02T22:23:00.186641Z app/x/y 1.2.3.4:5"),
            Some(Format::Alb)
        );
    }
}
