//! moto's server as a real S3 and WAFv2 peer for the integration tests.
//!
//! [`moto()`] starts one server per test process, lazily, on a free
//! loopback port, and every test shares it. Tests run in parallel and
//! there is no reset: each test names its own buckets and IP sets with
//! [`unique`]. Spawned binaries reach the server through [`Moto::env`]
//! (the standard `AWS_ENDPOINT_URL` and static test credentials), so
//! production code runs unchanged.
//!
//! # Install
//! moto `5.2.5` (see [`MOTO_VERSION`]) is installed with pip into a venv at
//! `<target dir>/moto-venv`, once: a marker file written after a
//! successful install makes later runs skip pip. A lock file
//! (`<target dir>/moto-venv.lock`, holding the installer's pid; stale
//! locks of dead processes are taken over) keeps concurrent test
//! processes from installing at the same time. `python3` must be on
//! `PATH` and PyPI reachable; pip's output is shown only when it fails.
//! If moto cannot be installed or started, the tests panic: they never
//! skip.
//!
//! # Lifetime
//! The server runs inside a small python wrapper ([`WRAPPER`]) that binds
//! `127.0.0.1:0` itself (no race for a port), prints the port, serves from
//! a thread, and exits as soon as its stdin reaches end of file. The Rust
//! side holds the write end of that pipe: for the shared server, for the
//! life of the test process, and the OS closes it when the process exits,
//! panics or is killed (`SIGKILL` included), so moto never outlives the
//! tests. A [`Moto::start`]ed instance of one's own closes it on drop.
//!
//! # Talking to moto without the SDK
//! [`Moto::s3`] and [`Moto::wafv2`] send plain HTTP/1.1 requests, for
//! seeding and inspecting state around the binary under test. moto checks
//! no signature, but it does look for an `Authorization` header: unsigned
//! requests are anonymous, and anonymous access to an existing private
//! object answers `403` with an empty body (before any `If-Match` check).
//! Both helpers therefore send a dummy SigV4 header for the right service.
//!
//! Checked by the tests below, like AWS: `PUT` with `If-None-Match: *` on
//! an existing key and `If-Match` with a stale ETag answer `412`
//! `PreconditionFailed`; `If-Match` on a missing key answers `404`
//! `NoSuchKey`. WAFv2 `UpdateIPSet` with a stale lock token answers `400`
//! `WAFOptimisticLockException`.

use crate::util::{http, try_http, HttpResponse};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The pinned moto version.
pub const MOTO_VERSION: &str = "5.2.5";

/// How long a server may take to answer `GET /moto-api/` after spawning.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for another process's install before giving up.
const INSTALL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The python wrapper, run with the venv's python as
/// `python -c WRAPPER 0`: binds the given port (0: any free one) on
/// 127.0.0.1, prints `PORT <n>` (or `ERROR ...` and exits 3), serves moto
/// from a daemon thread, and exits when stdin reaches EOF.
pub const WRAPPER: &str = r#"
import logging, os, sys, threading
try:
    from werkzeug.serving import make_server
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication, MotoRequestHandler, create_backend_app)
    # S3 applies a conditional write (If-Match, If-None-Match) atomically;
    # moto checks the ETag and then writes, and under load two writers of
    # the same ETag can both win (a lost update): one at a time here.
    from moto.s3.responses import S3Response
    lock = threading.Lock()
    def atomic(f):
        def g(self, *a, **k):
            with lock:
                return f(self, *a, **k)
        return g
    S3Response.put_object = atomic(S3Response.put_object)
    S3Response.delete_object = atomic(S3Response.delete_object)
    srv = make_server("127.0.0.1", int(sys.argv[1]),
                      DomainDispatcherApplication(create_backend_app),
                      threaded=True, request_handler=MotoRequestHandler)
except BaseException as e:
    print("ERROR %r" % (e,), flush=True)
    os._exit(3)
os.environ["MOTO_PORT"] = str(srv.server_address[1])
logging.getLogger("werkzeug").setLevel(logging.WARNING)
threading.Thread(target=srv.serve_forever, daemon=True).start()
print("PORT %d" % srv.server_address[1], flush=True)
try:
    while sys.stdin.buffer.read(65536):
        pass
finally:
    os._exit(0)
"#;

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The port it listens on.
    pub port: u16,
    child: Mutex<Child>,
    /// Closing this makes the wrapper exit.
    stdin: Mutex<Option<ChildStdin>>,
    /// The wrapper's stdout after the port line, and its stderr.
    log: Arc<Mutex<String>>,
}

/// The server shared by every test of this process, started on first use.
/// Panics (in every test that asks) if it cannot be installed or started.
pub fn moto() -> &'static Moto {
    static SHARED: OnceLock<Result<Moto, String>> = OnceLock::new();
    match SHARED.get_or_init(Moto::try_start) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    }
}

/// A name no other test of this process uses: `<prefix>-<pid>-<n>`,
/// valid as an S3 bucket name and a WAF IP set name when `prefix` is
/// lowercase letters, digits and hyphens.
pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

impl Moto {
    /// Start a server of one's own (most tests want [`moto()`]); it stops
    /// on drop. Panics if moto cannot be installed or started.
    pub fn start() -> Moto {
        Moto::try_start().unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start() -> Result<Moto, String> {
        let venv = install()?;
        let t0 = Instant::now();
        let mut child = Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(WRAPPER)
            .arg("0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("moto: cannot run {}: {e}", venv.display()))?;
        let log = Arc::new(Mutex::new(String::new()));
        drain(child.stderr.take().unwrap(), log.clone(), None);
        let (tx, rx) = mpsc::channel();
        drain(child.stdout.take().unwrap(), log.clone(), Some(tx));
        let fail = |child: &mut Child, what: String| {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100)); // let the drains finish
            format!(
                "moto {MOTO_VERSION} did not start: {what}\n--- moto output ---\n{}",
                log.lock().unwrap()
            )
        };
        let port = match rx.recv_timeout(START_TIMEOUT) {
            Ok(line) => match line.strip_prefix("PORT ").and_then(|p| p.parse().ok()) {
                Some(p) => p,
                None => return Err(fail(&mut child, line)),
            },
            Err(_) => return Err(fail(&mut child, "no port printed".into())),
        };
        let endpoint = format!("http://127.0.0.1:{port}");
        loop {
            match try_http("GET", &format!("{endpoint}/moto-api/"), &[], b"") {
                Ok(r) if r.status == 200 => break,
                _ if t0.elapsed() > START_TIMEOUT => {
                    return Err(fail(&mut child, format!("{endpoint}/moto-api/ not ready")))
                }
                _ => {}
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(fail(&mut child, format!("the server exited ({status})")));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "moto {MOTO_VERSION}: {endpoint} ready in {} ms",
            t0.elapsed().as_millis()
        );
        Ok(Moto {
            endpoint,
            port,
            stdin: Mutex::new(child.stdin.take()),
            child: Mutex::new(child),
            log,
        })
    }

    /// Variables that point an AWS SDK (or the CLI) at this server.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.endpoint)
    }

    /// A path-style S3 request (`path` = `/bucket/key`), sent with a dummy
    /// SigV4 `Authorization` header so moto treats it as the owner's.
    pub fn s3(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = fake_auth("s3");
        let mut h = vec![
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/octet-stream"),
        ];
        h.extend_from_slice(headers);
        http(method, &self.url(path), &h, body)
    }

    /// One WAFv2 JSON call (`action`, e.g. `"GetIPSet"`): the status and
    /// the parsed body.
    pub fn wafv2(&self, action: &str, input: &serde_json::Value) -> (u16, serde_json::Value) {
        self.json_call("wafv2", "1.1", &format!("AWSWAF_20190729.{action}"), input)
    }

    /// One EventBridge call (`action`, e.g. `"PutRule"`).
    pub fn events(&self, action: &str, input: &serde_json::Value) -> (u16, serde_json::Value) {
        self.json_call("events", "1.1", &format!("AWSEvents.{action}"), input)
    }

    /// One SQS call (`action`, e.g. `"ReceiveMessage"`), JSON protocol.
    pub fn sqs(&self, action: &str, input: &serde_json::Value) -> (u16, serde_json::Value) {
        self.json_call("sqs", "1.0", &format!("AmazonSQS.{action}"), input)
    }

    /// One call of an AWS JSON protocol (`version` 1.0 or 1.1) to `target`.
    fn json_call(
        &self,
        service: &str,
        version: &str,
        target: &str,
        input: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let r = http(
            "POST",
            &self.url("/"),
            &[
                ("Authorization", &fake_auth(service)),
                ("Content-Type", &format!("application/x-amz-json-{version}")),
                ("X-Amz-Target", target),
            ],
            input.to_string().as_bytes(),
        );
        let v = if r.body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&r.body)
                .unwrap_or_else(|e| panic!("{target}: not JSON ({e}): {}", r.text()))
        };
        (r.status, v)
    }

    /// What the server has printed (requests are not logged).
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Close the wrapper's stdin: the server exits.
    fn close_stdin(&self) {
        self.stdin.lock().unwrap().take();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.close_stdin();
        let child = self.child.get_mut().unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A SigV4-shaped `Authorization` header; moto checks no signature.
fn fake_auth(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=00")
}

/// Read `from` line by line into `log`, in a thread; the first line goes
/// to `first` instead when given.
fn drain(
    from: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    first: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut first = first;
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            match first.take() {
                Some(tx) => {
                    let _ = tx.send(line);
                }
                None => {
                    let mut log = log.lock().unwrap();
                    if log.len() < 1 << 20 {
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            }
        }
    });
}

/// The target directory (the parent of `CARGO_TARGET_TMPDIR`).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .to_path_buf()
}

/// The venv with moto installed, installing it first if needed.
fn install() -> Result<PathBuf, String> {
    let target = target_dir();
    let venv = target.join("moto-venv");
    let marker = venv.join(format!(".fail2waf-moto-{MOTO_VERSION}"));
    let ready = || marker.exists() && venv.join("bin/moto_server").exists();
    if ready() {
        return Ok(venv);
    }
    let _lock = InstallLock::acquire(&target.join("moto-venv.lock"), &ready)?;
    if ready() {
        return Ok(venv); // another process installed it while we waited
    }
    let t0 = Instant::now();
    let _ = std::fs::remove_dir_all(&venv);
    let run = |cmd: &mut Command| -> Result<(), String> {
        let out = cmd
            .output()
            .map_err(|e| format!("moto install: cannot run {cmd:?}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        Err(format!(
            "moto install failed: {cmd:?}: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    };
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))?;
    run(Command::new(venv.join("bin/pip"))
        .args(["install", "--disable-pip-version-check", "--no-input"])
        .arg(format!("moto[server]=={MOTO_VERSION}")))?;
    std::fs::write(&marker, MOTO_VERSION).map_err(|e| format!("moto install: marker: {e}"))?;
    eprintln!(
        "moto {MOTO_VERSION}: installed into {} in {:.1} s",
        venv.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(venv)
}

/// An exclusive lock file holding the owner's pid, removed on drop.
struct InstallLock(PathBuf);

impl InstallLock {
    /// Take the lock, waiting while a live process holds it; `Ok(None)`
    /// when `done` turns true meanwhile (another process installed moto).
    fn acquire(path: &Path, done: &dyn Fn() -> bool) -> Result<Option<InstallLock>, String> {
        let t0 = Instant::now();
        loop {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Ok(Some(InstallLock(path.to_path_buf())));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(format!("moto install lock {}: {e}", path.display())),
            }
            if done() {
                return Ok(None);
            }
            // A holder that died leaves its lock: take it over. (An empty
            // file may be one just created: give it a moment.)
            let holder = std::fs::read_to_string(path).unwrap_or_default();
            let dead = match holder.trim().parse::<u32>() {
                Ok(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
                Err(_) => std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(10)),
            };
            if dead {
                let _ = std::fs::remove_file(path);
                continue;
            }
            if t0.elapsed() > INSTALL_TIMEOUT {
                return Err(format!(
                    "moto install: {} still held by pid {holder} after {INSTALL_TIMEOUT:?}",
                    path.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for InstallLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Whether something accepts connections on `port`.
fn answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Wait up to `limit` for `port` to stop accepting connections.
fn stops_answering(port: u16, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if !answers(port) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn shared_server_creates_and_lists_buckets() {
    let m = moto();
    assert!(m.endpoint.starts_with("http://127.0.0.1:"));
    let env = m.env();
    assert!(env.contains(&("AWS_ENDPOINT_URL".into(), m.endpoint.clone())));
    assert!(env.contains(&("AWS_REGION".into(), "us-east-1".into())));
    let bucket = unique("harness-list");
    // moto accepts unsigned requests for bucket creation and listing.
    let r = http("PUT", &m.url(&format!("/{bucket}")), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http("GET", &m.url("/"), &[], b"");
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains(&format!("<Name>{bucket}</Name>")),
        "{}",
        r.text()
    );
    // The same process gets the same server.
    assert!(std::ptr::eq(m, moto()));
}

#[test]
fn s3_conditional_writes_answer_412_like_aws() {
    let m = moto();
    let bucket = unique("harness-cas");
    assert_eq!(m.s3("PUT", &format!("/{bucket}"), &[], b"").status, 200);
    let key = format!("/{bucket}/state.json");

    // Create-only write: the first succeeds, the second is refused.
    let first = m.s3("PUT", &key, &[("If-None-Match", "*")], b"v1");
    assert_eq!(first.status, 200, "{}", first.text());
    let etag = first.header("ETag").expect("ETag").to_string();
    let again = m.s3("PUT", &key, &[("If-None-Match", "*")], b"v2");
    assert_eq!(again.status, 412, "{}", again.text());
    assert!(again.text().contains("<Code>PreconditionFailed</Code>"));

    // Compare-and-swap: a stale ETag is refused, the current one wins.
    let stale = m.s3("PUT", &key, &[("If-Match", "\"0123\"")], b"v2");
    assert_eq!(stale.status, 412, "{}", stale.text());
    let swap = m.s3("PUT", &key, &[("If-Match", &etag)], b"v2");
    assert_eq!(swap.status, 200, "{}", swap.text());
    assert_ne!(swap.header("ETag"), Some(etag.as_str()));
    assert_eq!(m.s3("GET", &key, &[], b"").body, b"v2");

    // If-Match on a missing key: 404 NoSuchKey.
    let missing = m.s3(
        "PUT",
        &format!("/{bucket}/nope"),
        &[("If-Match", &etag)],
        b"x",
    );
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(missing.text().contains("NoSuchKey"));

    // The trap the helpers avoid: unsigned means anonymous, and anonymous
    // access to an existing private object is 403 before any condition.
    let anon = http("PUT", &m.url(&key), &[("If-None-Match", "*")], b"v3");
    assert_eq!(anon.status, 403);
}

#[test]
fn wafv2_ip_sets_use_lock_tokens() {
    let m = moto();
    let name = unique("harness-ipset");
    let (status, created) = m.wafv2(
        "CreateIPSet",
        &serde_json::json!({"Name": name, "Scope": "REGIONAL", "IPAddressVersion": "IPV4",
                            "Addresses": ["192.0.2.1/32"]}),
    );
    assert_eq!(status, 200, "{created}");
    let id = created["Summary"]["Id"].as_str().unwrap().to_string();
    let get = serde_json::json!({"Name": name, "Scope": "REGIONAL", "Id": id});
    let (status, got) = m.wafv2("GetIPSet", &get);
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got["IPSet"]["Addresses"],
        serde_json::json!(["192.0.2.1/32"])
    );
    let token = got["LockToken"].as_str().unwrap().to_string();

    let update = |addrs: &[&str], token: &str| {
        m.wafv2(
            "UpdateIPSet",
            &serde_json::json!({"Name": name, "Scope": "REGIONAL", "Id": id,
                                "Addresses": addrs, "LockToken": token}),
        )
    };
    let (status, updated) = update(&["192.0.2.2/32"], &token);
    assert_eq!(status, 200, "{updated}");
    assert!(updated["NextLockToken"].is_string());
    let (status, refused) = update(&["192.0.2.3/32"], &token);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["__type"], "WAFOptimisticLockException", "{refused}");
    assert_eq!(
        m.wafv2("GetIPSet", &get).1["IPSet"]["Addresses"],
        serde_json::json!(["192.0.2.2/32"])
    );
}

#[test]
fn own_instance_stops_on_drop() {
    let own = Moto::start();
    let port = own.port;
    assert_ne!(port, moto().port);
    assert_eq!(http("GET", &own.url("/moto-api/"), &[], b"").status, 200);
    assert!(!own.log().contains("Traceback"), "{}", own.log());
    drop(own);
    assert!(stops_answering(port, Duration::from_secs(5)));
}

#[test]
fn killed_parent_process_leaves_no_moto_behind() {
    // A stand-in for a test process: a python parent that starts the
    // wrapper exactly as `Moto::start` does (stdin a pipe the parent holds),
    // reports the port and waits. SIGKILL it: the OS closes the pipe, and
    // the server must go away with its parent.
    struct Reap(Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let venv = install().unwrap_or_else(|e| panic!("{e}"));
    let parent = r#"
import subprocess, sys, time
p = subprocess.Popen([sys.argv[1], "-c", sys.argv[2], "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
print(p.stdout.readline().decode().strip(), flush=True)
time.sleep(300)
"#;
    let mut helper = Reap(
        Command::new("python3")
            .args(["-c", parent])
            .arg(venv.join("bin/python"))
            .arg(WRAPPER)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(helper.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("PORT ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port from the wrapper: {line:?}"));
    assert!(answers(port));
    helper.0.kill().unwrap();
    helper.0.wait().unwrap();
    assert!(
        stops_answering(port, Duration::from_secs(10)),
        "moto on port {port} outlived its killed parent"
    );
}
