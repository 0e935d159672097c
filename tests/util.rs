//! Helpers shared by the integration tests.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh, empty directory under the target dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new directory named after `tag`, the process and a counter.
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fixture file's path.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Run the built `fail2waf` with `args`, feeding `stdin`.
pub fn fail2waf(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fail2waf"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fail2waf");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

/// The JSON Lines of a run, parsed.
pub fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// The objects of one `type`.
pub fn of_type<'a>(lines: &'a [serde_json::Value], t: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|v| v["type"] == t).collect()
}

/// One ALB access log line (30 fields).
pub fn alb_line(time: &str, client: &str, method: &str, path: &str, status: u16) -> String {
    format!(
        "http {time} app/shop/50dc6c495c0c9188 {client}:41234 10.0.0.1:80 0.001 0.002 0.000 {status} {status} 120 512 \
         \"{method} http://shop.example.com:80{path} HTTP/1.1\" \"Mozilla/5.0\" - - \
         arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop/73e2d6bc24d8a067 \
         \"Root=1-58337262-36d228ad5d99923122bbe354\" \"-\" \"-\" 0 {time} \"forward\" \"-\" \"-\" \
         \"10.0.0.1:80\" \"{status}\" \"-\" \"-\" TID_1234"
    )
}

/// An RFC 3339 time `secs` seconds after 2026-01-01T00:00:00Z, as ALB writes it.
pub fn at(secs: u32) -> String {
    format!(
        "2026-01-01T{:02}:{:02}:{:02}.000000Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Gzip `text`.
pub fn gzip(text: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

/// A response read by [`http`].
#[derive(Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`) to
/// `url` (`http://host:port/path`); panics on a network error.
pub fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    try_http(method, url, headers, body).unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

/// [`http`], returning network errors (for polling a server that may not
/// be up yet).
pub fn try_http(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    use std::io::{Error, Read};
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// URL: {url}"));
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(60)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req += &format!("{k}: {v}\r\n");
    }
    req += "\r\n";
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let bad = |what: &str| Error::other(format!("bad HTTP response ({what}) from {url}"));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        let (mut rest, mut body) = (&resp.body[..], Vec::new());
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("chunk size"))?;
            let size = std::str::from_utf8(&rest[..eol])
                .ok()
                .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
                .ok_or_else(|| bad("chunk size"))?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(rest.get(..size).ok_or_else(|| bad("short chunk"))?);
            rest = rest.get(size + 2..).ok_or_else(|| bad("short chunk"))?;
        }
        resp.body = body;
    } else if let Some(n) = resp.header("content-length").and_then(|n| n.parse().ok()) {
        resp.body.truncate(n);
    }
    Ok(resp)
}

/// Application logs as Fluent Bit ships them (the app's JSON line in
/// `log`), into `dir/app.log`: a credential stuffer with the API key
/// `ak_live_stuffer` failing a login every 100 ms from 500 addresses, and
/// `ak_live_alice`, whose avatar keeps answering 404, for 50 s. Returns
/// the configuration that reads them (`--format app`).
pub fn stuffer_app_logs(dir: &TempDir) -> PathBuf {
    let line = |t: u32, ip: &str, method: &str, path: &str, status: u16, key: &str| {
        let app = format!(
            r#"{{"remote_addr":"{ip}","time":"2026-01-01T00:00:{:02}.{:03}Z","method":"{method}","path":"{path}","status":{status},"auth":{{"api_key":"{key}"}}}}"#,
            t / 1000,
            t % 1000
        );
        let record = serde_json::json!({"date": 1767225600.0, "log": app, "kubernetes": {"pod_name": "api-7d9f"}});
        format!("{record}\n")
    };
    let mut log = String::new();
    for i in 0..500u32 {
        let t = i * 100;
        let ip = format!("203.0.{}.{}", 100 + i / 250, i % 250 + 1);
        log += &line(t, &ip, "POST", "/api/login", 401, "ak_live_stuffer");
        let status = if i % 2 == 0 { 404 } else { 200 };
        log += &line(
            t,
            "192.0.2.50",
            "GET",
            "/account/avatar.png",
            status,
            "ak_live_alice",
        );
    }
    std::fs::write(dir.join("app.log"), log).unwrap();
    let config = dir.join("fail2waf.toml");
    std::fs::write(
        &config,
        r#"
[formats.app]
json = { ip = "log.remote_addr", time = "log.time", status = "log.status", method = "log.method", path = "log.path", user = "log.auth.api_key" }
time_format = "iso8601"
"#,
    )
    .unwrap();
    config
}
