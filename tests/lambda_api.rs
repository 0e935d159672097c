//! A Lambda Runtime API server, to run the real `bootstrap` binaries as
//! Lambda runs them.
//!
//! [`RuntimeApi::start`] serves, on `127.0.0.1:<free port>`, std only:
//! - `GET /2018-06-01/runtime/invocation/next`: a long poll that blocks
//!   until [`RuntimeApi::invoke`] queues an event, then answers `200` with
//!   the event JSON and the headers `Lambda-Runtime-Aws-Request-Id` (a
//!   fresh UUID-shaped id), `Lambda-Runtime-Deadline-Ms` (epoch ms: now +
//!   the function timeout, 60 s unless [`RuntimeApi::set_function_timeout`]),
//!   `Lambda-Runtime-Invoked-Function-Arn` ([`FUNCTION_ARN`]) and
//!   `Lambda-Runtime-Trace-Id`;
//! - `POST /2018-06-01/runtime/invocation/{id}/response` and
//!   `.../{id}/error` for an id handed out and not yet answered: `202`,
//!   and the result goes to the waiting `invoke`; any other id: `400`
//!   `InvalidRequestID`, and the mistake is kept for
//!   [`RuntimeApi::protocol_errors`];
//! - `POST /2018-06-01/runtime/init/error`: `202`, kept for
//!   [`RuntimeApi::init_error`];
//! - anything else: `404`.
//!
//! HTTP/1.1 with keep-alive (the `lambda_runtime` client reuses its
//! connections), one thread per connection, request bodies by
//! `Content-Length` or chunked.
//!
//! Not implemented: the client-context and Cognito headers, response
//! streaming (its trailers and `Lambda-Runtime-Function-Response-Mode`),
//! the Extensions and Telemetry APIs, the 6 MB payload limit, deadline
//! enforcement (a late answer is accepted), and restarting a crashed
//! function (the real service would start a new sandbox). An `invoke`
//! whose function processes all exited panics at once, with their stderr.
//!
//! [`spawn_function`] and [`spawn_command`] start the function with the
//! variables Lambda sets and capture its stdout (the EMF metric lines) and
//! stderr in memory.

use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The ARN every invocation reports.
pub const FUNCTION_ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:test";

/// How long [`RuntimeApi::invoke`] waits for an answer.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(120);

/// What the function answered to one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// `POST .../response`: the body, parsed as JSON (a body that is not
    /// JSON is kept as a JSON string).
    Response(Value),
    /// `POST .../error`: `errorType` and `errorMessage` from the body; the
    /// `Lambda-Runtime-Function-Error-Type` header stands in for a missing
    /// `errorType`, and the raw body for a missing `errorMessage`.
    Error {
        /// The error type.
        error_type: String,
        /// The error message.
        message: String,
    },
}

/// What the function posted to `/runtime/init/error`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitError {
    /// `errorType` from the body, else the error-type header.
    pub error_type: String,
    /// `errorMessage` from the body, else the raw body.
    pub message: String,
}

/// A running Runtime API server; stops on drop.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    queue: VecDeque<(String, Vec<u8>)>,
    in_flight: Vec<String>,
    done: HashMap<String, Invocation>,
    init_error: Option<InitError>,
    function_timeout: Duration,
    connections: usize,
    requests: usize,
    protocol_errors: Vec<String>,
    streams: Vec<TcpStream>,
    processes: Vec<Weak<Proc>>,
    shutdown: bool,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

impl RuntimeApi {
    /// Bind `127.0.0.1:0` and serve from a background thread.
    pub fn start() -> RuntimeApi {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Runtime API");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                in_flight: Vec::new(),
                done: HashMap::new(),
                init_error: None,
                function_timeout: Duration::from_secs(60),
                connections: 0,
                requests: 0,
                protocol_errors: Vec::new(),
                streams: Vec::new(),
                processes: Vec::new(),
                shutdown: false,
            }),
            changed: Condvar::new(),
        });
        let sh = shared.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(stream) = conn else { continue };
                let mut st = sh.lock();
                if st.shutdown {
                    return;
                }
                st.connections += 1;
                if let Ok(s) = stream.try_clone() {
                    st.streams.push(s);
                }
                drop(st);
                let sh = sh.clone();
                std::thread::spawn(move || serve(stream, &sh));
            }
        });
        RuntimeApi { addr, shared }
    }

    /// `127.0.0.1:PORT`, as `AWS_LAMBDA_RUNTIME_API` wants it (no scheme).
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The function timeout from which deadlines are computed (at the
    /// moment an event is handed out); 60 s by default.
    pub fn set_function_timeout(&self, timeout: Duration) {
        self.shared.lock().function_timeout = timeout;
    }

    /// Queue `event` and wait up to [`INVOKE_TIMEOUT`] for its answer.
    pub fn invoke(&self, event: &Value) -> Invocation {
        self.invoke_within(event, INVOKE_TIMEOUT)
    }

    /// Queue `event` and wait up to `limit` for its answer. Panics when
    /// the limit passes, when the function reports an init error, or when
    /// every function process spawned against this server has exited.
    pub fn invoke_within(&self, event: &Value, limit: Duration) -> Invocation {
        let id = request_id();
        let mut st = self.shared.lock();
        st.queue
            .push_back((id.clone(), event.to_string().into_bytes()));
        self.shared.changed.notify_all();
        let t0 = Instant::now();
        loop {
            if let Some(result) = st.done.remove(&id) {
                return result;
            }
            if let Some(e) = &st.init_error {
                panic!("invoke {event}: the function failed to initialise: {e:?}");
            }
            let procs: Vec<Arc<Proc>> = st.processes.iter().filter_map(Weak::upgrade).collect();
            if !procs.is_empty() {
                let exited: Vec<_> = procs.iter().filter_map(|p| p.exited()).collect();
                if exited.len() == procs.len() {
                    let stderr: Vec<String> = procs.iter().map(|p| p.stderr()).collect();
                    panic!(
                        "invoke {event}: the function exited ({exited:?}) without answering\n\
                         --- stderr ---\n{}",
                        stderr.join("\n---\n")
                    );
                }
            }
            if t0.elapsed() > limit {
                panic!(
                    "invoke {event}: no answer within {limit:?} (protocol errors: {:?})",
                    st.protocol_errors
                );
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    /// The init error the function posted, if any (so far).
    pub fn init_error(&self) -> Option<InitError> {
        self.shared.lock().init_error.clone()
    }

    /// Wait up to `limit` for an init error.
    pub fn wait_for_init_error(&self, limit: Duration) -> Option<InitError> {
        let st = self.shared.lock();
        let (st, _) = self
            .shared
            .changed
            .wait_timeout_while(st, limit, |s| s.init_error.is_none())
            .unwrap();
        st.init_error.clone()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Requests read so far (a long poll counts when it arrives).
    pub fn requests(&self) -> usize {
        self.shared.lock().requests
    }

    /// Answers for unknown or already answered request ids, and requests
    /// that could not be parsed.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.shared.lock().protocol_errors.clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.shutdown = true;
        for s in st.streams.drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        drop(st);
        self.shared.changed.notify_all();
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A fresh UUID-shaped request id.
fn request_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        std::process::id(),
        (nanos >> 16) & 0xffff,
        nanos & 0xfff,
        (n >> 48) & 0xfff,
        n & 0xffff_ffff_ffff
    )
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Serve one connection until the peer closes it or asks to.
fn serve(stream: TcpStream, shared: &Shared) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let req = match read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                shared
                    .lock()
                    .protocol_errors
                    .push(format!("bad request: {e}"));
                let _ = write_reply(&mut writer, &reply(400, Value::Null), true);
                return;
            }
        };
        shared.lock().requests += 1;
        let Some(rep) = route(shared, &req) else {
            return; // shutting down
        };
        if write_reply(&mut writer, &rep, req.close).is_err() || req.close {
            return;
        }
    }
}

fn route(shared: &Shared, req: &Request) -> Option<Reply> {
    let path = req.path.split('?').next().unwrap_or("");
    let Some(rest) = path.strip_prefix("/2018-06-01/runtime/") else {
        return Some(reply(404, serde_json::json!({"errorType": "NotFound"})));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("GET", ["invocation", "next"]) => {
            let mut st = shared.lock();
            while st.queue.is_empty() && !st.shutdown {
                st = shared.changed.wait(st).unwrap_or_else(|e| e.into_inner());
            }
            let (id, event) = st.queue.pop_front()?;
            st.in_flight.push(id.clone());
            let deadline = now_ms() + st.function_timeout.as_millis();
            let trace = format!(
                "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
                (now_ms() / 1000) as u32,
                now_ms(),
                st.requests
            );
            Some(Reply {
                status: 200,
                headers: vec![
                    ("Lambda-Runtime-Aws-Request-Id", id),
                    ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                    ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN.into()),
                    ("Lambda-Runtime-Trace-Id", trace),
                ],
                body: event,
            })
        }
        ("POST", ["invocation", id, kind @ ("response" | "error")]) => {
            let mut st = shared.lock();
            let Some(i) = st.in_flight.iter().position(|x| x == id) else {
                st.protocol_errors
                    .push(format!("{kind} for unknown or answered request id {id}"));
                return Some(reply(
                    400,
                    serde_json::json!({"errorType": "InvalidRequestID",
                                       "errorMessage": "Invalid request ID"}),
                ));
            };
            st.in_flight.swap_remove(i);
            let result = if *kind == "response" {
                Invocation::Response(serde_json::from_slice(&req.body).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&req.body).into_owned())
                }))
            } else {
                let (error_type, message) = error_body(req);
                Invocation::Error {
                    error_type,
                    message,
                }
            };
            st.done.insert(id.to_string(), result);
            shared.changed.notify_all();
            Some(reply(202, serde_json::json!({"status": "OK"})))
        }
        ("POST", ["init", "error"]) => {
            let (error_type, message) = error_body(req);
            shared.lock().init_error = Some(InitError {
                error_type,
                message,
            });
            shared.changed.notify_all();
            Some(reply(202, serde_json::json!({"status": "OK"})))
        }
        _ => Some(reply(404, serde_json::json!({"errorType": "NotFound"}))),
    }
}

/// `(errorType, errorMessage)` of an error post.
fn error_body(req: &Request) -> (String, String) {
    let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let error_type = v["errorType"]
        .as_str()
        .or(req.header("Lambda-Runtime-Function-Error-Type"))
        .unwrap_or("")
        .to_string();
    let message = match v["errorMessage"].as_str() {
        Some(m) => m.to_string(),
        None => String::from_utf8_lossy(&req.body).into_owned(),
    };
    (error_type, message)
}

/// One request, or `None` at a clean end of the connection.
fn read_request(r: &mut impl BufRead) -> std::io::Result<Option<Request>> {
    let bad = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidData, what);
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut words = line.split_whitespace();
    let (Some(method), Some(path), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(bad(format!("request line {line:?}")));
    };
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        headers: Vec::new(),
        body: Vec::new(),
        close: version == "HTTP/1.0",
    };
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            return Err(bad("end of stream in headers".into()));
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| bad(format!("header {h:?}")))?;
        req.headers
            .push((k.trim().to_string(), v.trim().to_string()));
    }
    if let Some(c) = req.header("Connection") {
        req.close = c.eq_ignore_ascii_case("close");
    }
    if req
        .header("Transfer-Encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("chunk size {size:?}")))?;
            if n == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut t = String::new();
                    if r.read_line(&mut t)? == 0 || t.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = req.body.len();
            req.body.resize(start + n, 0);
            r.read_exact(&mut req.body[start..])?;
            let mut crlf = [0; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = req.header("Content-Length") {
        let n: usize = n
            .parse()
            .map_err(|_| bad(format!("Content-Length {n:?}")))?;
        req.body.resize(n, 0);
        r.read_exact(&mut req.body)?;
    }
    Ok(Some(req))
}

fn write_reply(w: &mut impl Write, rep: &Reply, close: bool) -> std::io::Result<()> {
    let reason = match rep.status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        _ => "Not Found",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        rep.status,
        rep.body.len()
    );
    for (k, v) in &rep.headers {
        head += &format!("{k}: {v}\r\n");
    }
    if close {
        head += "Connection: close\r\n";
    }
    head += "\r\n";
    w.write_all(head.as_bytes())?;
    w.write_all(&rep.body)?;
    w.flush()
}

/// A function process started against a [`RuntimeApi`]: its output is
/// captured in memory; killed and reaped on drop.
pub struct FunctionProcess {
    proc: Arc<Proc>,
    readers: Vec<JoinHandle<()>>,
}

struct Proc {
    child: Mutex<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Proc {
    fn exited(&self) -> Option<ExitStatus> {
        self.child.lock().unwrap().try_wait().ok().flatten()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }
}

/// What a stopped function left.
#[derive(Debug)]
pub struct Finished {
    /// How it ended (killed, unless it had exited by itself).
    pub status: ExitStatus,
    /// All of its stdout.
    pub stdout: String,
    /// All of its stderr.
    pub stderr: String,
}

/// Start `binary` as a Lambda function served by `api`, with the
/// variables Lambda sets plus `env` (which wins). With
/// `FAIL2WAF_FUNCTIONS_RUNNER` set (a command and its arguments, e.g.
/// `qemu-aarch64 -L /usr/aarch64-linux-gnu`), the binary runs under it:
/// `infra/check-build.sh` so runs arm64 bootstraps on an x86_64 machine.
pub fn spawn_function(
    binary: &Path,
    api: &RuntimeApi,
    env: &[(String, String)],
) -> FunctionProcess {
    let runner = std::env::var("FAIL2WAF_FUNCTIONS_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let cmd = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(binary);
            c
        }
        None => Command::new(binary),
    };
    spawn_command(cmd, api, env)
}

/// [`spawn_function`] for a prepared command (an interpreter and its
/// arguments, say). Sets `AWS_LAMBDA_RUNTIME_API`,
/// `AWS_LAMBDA_FUNCTION_NAME=test`, `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=512`,
/// `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`, `AWS_LAMBDA_LOG_FORMAT=JSON`,
/// `AWS_LAMBDA_LOG_GROUP_NAME` and `AWS_LAMBDA_LOG_STREAM_NAME`, then `env`.
pub fn spawn_command(
    mut cmd: Command,
    api: &RuntimeApi,
    env: &[(String, String)],
) -> FunctionProcess {
    cmd.env("AWS_LAMBDA_RUNTIME_API", api.addr())
        .env("AWS_LAMBDA_FUNCTION_NAME", "test")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/test")
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]00000000000000000000000000000000",
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // ETXTBSY (26): a freshly written executable can still be open in a
    // child that another test thread is forking; it closes on that exec.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            r => break r.unwrap_or_else(|e| panic!("spawn the function {cmd:?}: {e}")),
        }
    };
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = vec![
        collect(child.stdout.take().unwrap(), stdout.clone()),
        collect(child.stderr.take().unwrap(), stderr.clone()),
    ];
    let proc = Arc::new(Proc {
        child: Mutex::new(child),
        stdout,
        stderr,
    });
    api.shared.lock().processes.push(Arc::downgrade(&proc));
    FunctionProcess { proc, readers }
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    })
}

impl FunctionProcess {
    /// Its stdout so far (lines written just before an answer may not be
    /// read yet: [`FunctionProcess::finish`] has them all).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.proc.stdout.lock().unwrap()).into_owned()
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> String {
        self.proc.stderr()
    }

    /// How it exited, if it has.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.proc.exited()
    }

    /// Kill it (if still running), reap it and return all its output.
    pub fn finish(mut self) -> Finished {
        let status = self.stop();
        Finished {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    fn stop(&mut self) -> ExitStatus {
        let status = {
            let mut child = self.proc.child.lock().unwrap_or_else(|e| e.into_inner());
            let _ = child.kill();
            child.wait().expect("reap the function")
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A stand-in function for testing this server: the runtime loop in
/// python, on one kept-alive connection. It answers an event with the
/// event plus `"handled": true` and `"seen"` (the headers and variables it
/// got, and its local port), posts an error for `{"fail": true}`, prints
/// an EMF line per handled event, and posts an init error instead of
/// starting when `FAKE_INIT_ERROR` is set.
const FAKE_FUNCTION: &str = r#"
import http.client, json, os, sys
host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
conn = http.client.HTTPConnection(host, int(port))
def call(method, path, body=None, headers={}):
    conn.request(method, path, body=body, headers=headers)
    r = conn.getresponse()
    return r, r.read()
if os.environ.get("FAKE_INIT_ERROR"):
    r, _ = call("POST", "/2018-06-01/runtime/init/error",
                json.dumps({"errorType": "Runtime.Boom", "errorMessage": "no config"}),
                {"Lambda-Runtime-Function-Error-Type": "Runtime.Boom"})
    sys.exit(1)
while True:
    r, body = call("GET", "/2018-06-01/runtime/invocation/next")
    rid = r.getheader("Lambda-Runtime-Aws-Request-Id")
    event = json.loads(body)
    if event.get("fail"):
        r, _ = call("POST", "/2018-06-01/runtime/invocation/%s/error" % rid,
                    json.dumps({"errorType": "Fake.Failure", "errorMessage": "asked to fail"}),
                    {"Lambda-Runtime-Function-Error-Type": "Fake.Failure",
                     "Content-Type": "application/json"})
    else:
        print(json.dumps({"_aws": {"CloudWatchMetrics": [{"Namespace": "fake",
              "Dimensions": [[]], "Metrics": [{"Name": "Handled", "Unit": "Count"}]}]},
              "Handled": 1}), flush=True)
        event["handled"] = True
        event["seen"] = {
            "request_id": rid,
            "deadline_ms": int(r.getheader("Lambda-Runtime-Deadline-Ms")),
            "arn": r.getheader("Lambda-Runtime-Invoked-Function-Arn"),
            "trace": r.getheader("Lambda-Runtime-Trace-Id"),
            "local_port": conn.sock.getsockname()[1],
            "env": {k: os.environ.get(k) for k in ["AWS_LAMBDA_FUNCTION_NAME",
                    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
                    "AWS_LAMBDA_LOG_FORMAT", "EXTRA"]},
        }
        r, _ = call("POST", "/2018-06-01/runtime/invocation/%s/response" % rid,
                    json.dumps(event), {"Content-Type": "application/json"})
    assert r.status == 202, r.status
"#;

fn fake_function(api: &RuntimeApi, env: &[(String, String)]) -> FunctionProcess {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(FAKE_FUNCTION);
    spawn_command(cmd, api, env)
}

#[test]
fn spawn_function_runs_an_executable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = crate::util::TempDir::new("lambda-bootstrap");
    let bootstrap = dir.join("bootstrap");
    std::fs::write(
        &bootstrap,
        format!("#!/usr/bin/env python3\n{FAKE_FUNCTION}"),
    )
    .unwrap();
    std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    let api = RuntimeApi::start();
    let f = spawn_function(&bootstrap, &api, &[]);
    let Invocation::Response(out) = api.invoke(&serde_json::json!({"k": "v"})) else {
        panic!("no response");
    };
    assert_eq!(out["k"], "v");
    assert_eq!(out["handled"], true);
    assert_eq!(f.exit_status(), None);
    let done = f.finish();
    assert_eq!(done.stdout.lines().count(), 1, "{}", done.stdout);
}

#[test]
fn fake_function_answers_events_on_one_connection() {
    let api = RuntimeApi::start();
    let f = fake_function(&api, &[("EXTRA".into(), "yes".into())]);
    let mut ids = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for i in 0..5 {
        let before = now_ms() as u64;
        let Invocation::Response(out) = api.invoke(&serde_json::json!({"n": i})) else {
            panic!("event {i} was not answered with a response");
        };
        assert_eq!(out["n"], i);
        assert_eq!(out["handled"], true);
        let seen = &out["seen"];
        assert!(ids.insert(seen["request_id"].as_str().unwrap().to_string()));
        ports.insert(seen["local_port"].as_u64().unwrap());
        let deadline = seen["deadline_ms"].as_u64().unwrap();
        assert!(
            deadline >= before + 59_000 && deadline <= now_ms() as u64 + 60_000,
            "deadline {deadline}, asked at {before}"
        );
        assert_eq!(seen["arn"], FUNCTION_ARN);
        assert!(seen["trace"].as_str().unwrap().starts_with("Root=1-"));
        assert_eq!(
            seen["env"],
            serde_json::json!({"AWS_LAMBDA_FUNCTION_NAME": "test",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_FORMAT": "JSON", "EXTRA": "yes"})
        );
    }
    // Five round trips on one kept-alive connection.
    assert_eq!(ports.len(), 1);
    assert_eq!(api.connections(), 1);

    assert_eq!(
        api.invoke(&serde_json::json!({"fail": true})),
        Invocation::Error {
            error_type: "Fake.Failure".into(),
            message: "asked to fail".into()
        }
    );
    // A failed invocation does not stop the function; deadlines follow the
    // configured timeout.
    api.set_function_timeout(Duration::from_secs(3));
    let before = now_ms() as u64;
    let Invocation::Response(out) = api.invoke(&serde_json::json!({"n": 5})) else {
        panic!("no response after an error");
    };
    let deadline = out["seen"]["deadline_ms"].as_u64().unwrap();
    assert!(deadline > before && deadline <= now_ms() as u64 + 3_000);

    assert!(
        api.protocol_errors().is_empty(),
        "{:?}",
        api.protocol_errors()
    );
    assert_eq!(api.init_error(), None);
    let done = f.finish();
    let emf: Vec<Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(emf.len(), 6, "{}", done.stdout);
    assert!(emf.iter().all(|m| m["Handled"] == 1));
    assert!(done.stderr.is_empty(), "{}", done.stderr);
}

#[test]
fn init_error_is_recorded() {
    let api = RuntimeApi::start();
    let f = fake_function(&api, &[("FAKE_INIT_ERROR".into(), "1".into())]);
    let e = api
        .wait_for_init_error(Duration::from_secs(30))
        .expect("an init error");
    assert_eq!(
        e,
        InitError {
            error_type: "Runtime.Boom".into(),
            message: "no config".into()
        }
    );
    assert_eq!(api.init_error(), Some(e));
    let t0 = Instant::now();
    while f.exit_status().is_none() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = f.finish();
    assert_eq!(done.status.code(), Some(1), "{}", done.stderr);
}

#[test]
fn invoke_fails_fast_when_the_function_dies() {
    let api = RuntimeApi::start();
    let mut cmd = Command::new("python3");
    cmd.args([
        "-c",
        "import sys; sys.stderr.write('crashed at start'); sys.exit(3)",
    ]);
    let _f = spawn_command(cmd, &api, &[]);
    let t0 = Instant::now();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        api.invoke(&serde_json::json!({}))
    }))
    .expect_err("invoke panics");
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("exited") && msg.contains("crashed at start"),
        "{msg}"
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn keep_alive_and_refusals_on_a_raw_connection() {
    let api = RuntimeApi::start();
    let mut s = TcpStream::connect(api.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut exchange = |req: &str| -> (u16, String) {
        s.write_all(req.as_bytes()).unwrap();
        let mut status = String::new();
        r.read_line(&mut status).unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            if h.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let code = status.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, String::from_utf8(body).unwrap())
    };
    let body = r#"{"errorType":"X","errorMessage":"y"}"#;
    let (code, text) = exchange(&format!(
        "POST /2018-06-01/runtime/invocation/nope/response HTTP/1.1\r\nHost: x\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    assert_eq!(code, 400);
    assert!(text.contains("InvalidRequestID"));
    let (code, _) = exchange("GET /2018-06-01/runtime/nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 404);
    // A chunked init error on the same connection.
    let (code, _) = exchange(&format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: x\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    ));
    assert_eq!(code, 202);
    assert_eq!(
        api.init_error(),
        Some(InitError {
            error_type: "X".into(),
            message: "y".into()
        })
    );
    assert_eq!(api.connections(), 1);
    assert_eq!(api.requests(), 3);
    assert_eq!(api.protocol_errors().len(), 1);
}
