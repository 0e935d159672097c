#!/usr/bin/env python3
"""fail2waf benchmarks: throughput against zcat, peak memory, parse cost,
Lambda cold start and the ingest function's memory on a large S3 object.

    python3 bench/bench.py            # the full run (minutes; figures in docs/performance.md)
    python3 bench/bench.py --smoke    # a seconds-long run of every step (CI)
    python3 bench/bench.py --only-throughput --rounds 21 --baseline /path/to/old/fail2waf
                                      # this build beside another, alternately

Data comes from the project's own generator (`fail2waf gen-bench`), cached
under target/bench/. Commands are run alternately, several rounds, and
medians are compared within the same run.
"""
import argparse, http.server, json, os, re, shutil, socketserver, statistics, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BENCH = os.path.join(TARGET, "bench")


# Linux counts in a child's peak RSS the memory of the process it was
# forked from, up to its exec: measured from here, nothing would weigh less
# than this Python process (about 20 MiB). GNU time, a small C program,
# measures without that floor; without it the floor stays (and is said).
GNU_TIME = "/usr/bin/time" if os.path.exists("/usr/bin/time") else None


def run_measured(cmd, stdout=subprocess.DEVNULL, env=None):
    """Wall seconds and peak RSS (MiB) of one command."""
    full = [GNU_TIME, "-f", "%M", *cmd] if GNU_TIME else cmd
    t = time.perf_counter()
    p = subprocess.Popen(full, stdout=stdout, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err}")
    if GNU_TIME:
        return wall, int(err.strip().splitlines()[-1]) / 1024
    return wall, ru.ru_maxrss / 1024


def generate(bin_, lines, clients=5000):
    os.makedirs(BENCH, exist_ok=True)
    path = os.path.join(BENCH, f"alb-{lines}-c{clients}.log.gz")
    if not os.path.exists(path):
        subprocess.run([bin_, "gen-bench", "--lines", str(lines), "--clients", str(clients), "--out", path + ".tmp"], check=True)
        os.rename(path + ".tmp", path)
    return path


def plain(path):
    out = path[: -len(".gz")]
    if not os.path.exists(out):
        with open(out + ".tmp", "wb") as f:
            subprocess.run(["zcat", path], stdout=f, check=True)
        os.rename(out + ".tmp", out)
    return out


def copies_alike(*bins):
    """The binaries copied alike into target/bench/bin/. Peak RSS counts the
    executable's own pages (about 9 MiB for the CLI), and how many of them
    a run maps depends on how the file was written: written in large
    pieces (`cp`), the page cache holds it in large folios that a fault
    maps whole, and the same binary measured 0.8 MiB more than as the
    linker wrote it. Compared binaries are written the same way, 4 KiB at
    a time, as the linker does."""
    d = os.path.join(BENCH, "bin")
    os.makedirs(d, exist_ok=True)
    out = []
    for i, b in enumerate(bins):
        dst = os.path.join(d, f"fail2waf-{i}")
        if os.path.exists(dst):
            os.remove(dst)
        with open(b, "rb") as src, open(dst, "wb", buffering=0) as to:
            while piece := src.read(4096):
                to.write(piece)
        shutil.copymode(b, dst)
        out.append(dst)
    return out


def throughput(bin_, path, rounds, baseline=None):
    cmds = {"zcat": ["zcat", path]}
    for name, b in [("fail2waf", bin_)] + ([("baseline", baseline)] if baseline else []):
        cmds[f"{name} (2 threads)"] = [b, "detect", "--format", "alb", "--json", path]
        cmds[f"{name} --threads 1"] = [b, "detect", "--format", "alb", "--json", "--threads", "1", path]
    walls = {k: [] for k in cmds}
    rss = {k: [] for k in cmds}
    for _ in range(rounds):
        for name, cmd in cmds.items():  # alternating: one of each per round
            w, r = run_measured(cmd)
            walls[name].append(w)
            rss[name].append(r)
    base = statistics.median(walls["zcat"])
    best_base = min(walls["zcat"])
    print(f"\n## Throughput: {os.path.basename(path)} ({os.path.getsize(path) / 1e6:.0f} MB gzip), median of {rounds} alternating rounds")
    print(f"{'command':<24} {'wall s':>8} {'x zcat':>7} {'best s':>7} {'x best':>7} {'peak RSS MiB':>13}")
    for name in cmds:
        m, b = statistics.median(walls[name]), min(walls[name])
        print(f"{name:<24} {m:>8.3f} {m / base:>7.2f} {b:>7.3f} {b / best_base:>7.2f} {max(rss[name]):>13.1f}")
    print("(best: the fastest round of each against zcat's fastest: noise on a shared")
    print(" host only adds time, so the best rounds show what the machine can do)")
    return {name: (statistics.median(walls[name]) / base, max(rss[name])) for name in cmds}


def by_clients(bin_, lines, counts, rounds, baseline=None):
    """The throughput table for each number of distinct clients, then one
    line per count: what a site's size does to speed and memory."""
    rows = [(c, throughput(bin_, generate(bin_, lines, clients=c), rounds, baseline)) for c in counts]
    names = [n for n in rows[0][1] if n != "zcat"]
    print(f"\n## By distinct clients ({lines} ALB lines, gzip): median wall time / zcat's, peak RSS MiB")
    print(f"{'clients':>9} " + " ".join(f"{n:>30}" for n in names))
    for c, r in rows:
        print(f"{c:>9} " + " ".join(f"{r[n][0]:>19.2f} {r[n][1]:>6.1f} MiB" for n in names))


def cpu_rate(bin_, path, lines, clients, rounds):
    """Lines per CPU-second (user + system) of `detect --threads 1` on plain
    text: parsing and counting alone, no decompression."""
    best = None
    for _ in range(rounds):
        p = subprocess.Popen([bin_, "detect", "--format", "alb", "--threads", "1", path],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"failed: detect {path}")
        cpu = ru.ru_utime + ru.ru_stime
        best = cpu if best is None else min(best, cpu)
    print(f"\n## Lines per CPU-second, plain ALB text, {clients} clients (best of {rounds}, one thread)")
    print(f"{lines / best / 1e6:.2f} M lines per CPU-second ({best:.2f} CPU-s for {lines} lines; "
          "the AWS Security Automations log parser: 0.149 M measured in issue #12)")


def memory(bin_, paths):
    print("\n## Peak RSS by input size (2 threads; -cN: N clients)")
    for p in paths:
        _, r = run_measured([bin_, "detect", "--format", "alb", "--json", p])
        print(f"{os.path.basename(p):<32} {r:6.1f} MiB")


def callgrind(bin_, path, extra=()):
    """Instructions of one `detect` run under callgrind, and the inclusive
    cost of AlbParser::parse in it."""
    out = os.path.join(BENCH, "callgrind.out")
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", bin_, "detect", "--format", "alb", "--json", "--threads", "1", *extra, path],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
    )
    total = 0
    with open(out) as f:
        for line in f:
            if line.startswith("summary:") or line.startswith("totals:"):
                total = int(line.split()[1])
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", out], capture_output=True, text=True).stdout
    parse = max((int(l.split()[0].replace(",", "")) for l in ann.splitlines()
                 if "AlbParser as fail2waf_core::formats::LineParser>::parse" in l and l.strip()[:1].isdigit()), default=0)
    return total, parse


def parse_cost(bin_, lines_path, lines):
    if not shutil.which("valgrind"):
        print("\n## Parse cost: valgrind not installed, skipped")
        return
    # The same run on an empty file: start-up and exit, to subtract.
    empty = os.path.join(BENCH, "empty.log")
    open(empty, "w").close()
    base, _ = callgrind(bin_, empty)
    total, parse = callgrind(bin_, lines_path)
    # The default rules plus one without a status condition (and a path
    # nothing has): every line is one a rule may match, so every field of
    # every line is read (the parser's full cost).
    every = os.path.join(BENCH, "every-line.toml")
    defaults = subprocess.run([bin_, "config", "print-default"], capture_output=True, text=True, check=True).stdout
    with open(every, "w") as f:
        f.write(defaults + '\n[[rules]]\nname = "every-line"\npath = "^/never$"\nwindow = "1m"\nthreshold = 10\n')
    total_all, parse_all = callgrind(bin_, lines_path, ["--config", every])
    print(f"\n## Parse cost (callgrind, {lines} plain ALB lines, one thread)")
    rows = [
        ("parsing (AlbParser::parse), default rules", parse),
        ("whole pipeline (read, parse, count, decide)", total - base),
        ("parsing every field of every line", parse_all),
        ("whole pipeline, every field of every line", total_all - base),
    ]
    for label, n in rows:
        print(f"{label + ':':<46}{n / lines:6.0f} instructions per line")
    print("(start-up subtracted from the whole-pipeline figures; every field: the")
    print(" default rules plus one without a status condition)")


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Just enough of the Lambda Runtime API to see the first poll."""
    protocol_version = "HTTP/1.1"
    first_next = None
    event = None
    done = None

    def log_message(self, *a):
        pass

    def do_GET(self):
        if RuntimeApi.first_next is None:
            RuntimeApi.first_next = time.perf_counter()
        if RuntimeApi.event is None:  # cold-start runs: never answer
            time.sleep(30)
            return
        body, RuntimeApi.event = RuntimeApi.event, None
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 600_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:bench")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        RuntimeApi.done = (self.path, self.rfile.read(n))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def runtime_api():
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), RuntimeApi)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def lambda_env(port, extra):
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "bench", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_EC2_METADATA_DISABLED": "true",
        "FAIL2WAF_STATE": "s3://bench-state/fail2waf/", "FAIL2WAF_DRY_RUN": "true",
    })
    env.update(extra)
    return env


def cold_start(ingest, runs):
    srv = runtime_api()
    port = srv.server_address[1]
    times = []
    for _ in range(runs):
        RuntimeApi.first_next = None
        t = time.perf_counter()
        p = subprocess.Popen([ingest], env=lambda_env(port, {}), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while RuntimeApi.first_next is None and time.perf_counter() - t < 10:
            time.sleep(0.0005)
        times.append((RuntimeApi.first_next or time.perf_counter()) - t)
        p.kill()
        p.wait()
    srv.shutdown()
    print(f"\n## Cold start: process start to the first invocation/next, median of {runs}")
    print(f"{statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})")


def moto_python():
    """The Python of the moto venv `cargo test` installs (None: not yet)."""
    py = os.path.join(TARGET, "moto-venv", "bin", "python")
    return py if os.path.exists(py) else None


def start_moto():
    """moto's server on a free loopback port: (process, port). The process
    exits when killed or when our end of its stdin closes."""
    wrapper = (
        "import logging, os, sys, threading\n"
        "from werkzeug.serving import make_server\n"
        "from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app\n"
        # S3 applies a conditional write atomically; moto checks the ETag and
        # writes in two steps, and under load two writers can both win (the
        # same patch as tests/moto.rs's wrapper).
        "from moto.s3.responses import S3Response\n"
        "lock = threading.Lock()\n"
        "def atomic(f):\n"
        "    def g(self, *a, **k):\n"
        "        with lock: return f(self, *a, **k)\n"
        "    return g\n"
        "S3Response.put_object = atomic(S3Response.put_object)\n"
        "S3Response.delete_object = atomic(S3Response.delete_object)\n"
        "srv = make_server('127.0.0.1', 0, DomainDispatcherApplication(create_backend_app), threaded=True, request_handler=MotoRequestHandler)\n"
        "os.environ['MOTO_PORT'] = str(srv.server_address[1])\n"
        "logging.getLogger('werkzeug').setLevel(logging.WARNING)\n"
        "threading.Thread(target=srv.serve_forever, daemon=True).start()\n"
        "print(srv.server_address[1], flush=True)\n"
        "sys.stdin.read()\n"
    )
    # The same wrapper as the tests' (tests/moto.rs): it exits when our stdin pipe closes.
    moto = subprocess.Popen([moto_python(), "-c", wrapper], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return moto, int(moto.stdout.readline())


def lambda_memory(ingest, path, clients, copies=1):
    """Peak RSS of the ingest function counting `path` from moto: one S3
    event, or with `copies` > 1 a queue batch (SQS) of that many copies."""
    py = moto_python()
    if not py:
        print("\n## Ingest memory: run `cargo test` once first (it installs moto into target/moto-venv); skipped")
        return
    moto, port = start_moto()
    endpoint = f"http://127.0.0.1:{port}"
    keys = [f"AWSLogs/1/elasticloadbalancing/us-east-1/2026/01/01/1_elasticloadbalancing_us-east-1_app.shop.1_20260101T0000Z_10.0.0.1_big{i}.log.gz"
            for i in range(copies)]
    upload = (
        "import boto3, sys\n"
        f"s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\n"
        "for b in ('bench-logs', 'bench-state'): s3.create_bucket(Bucket=b)\n"
        f"for k in {keys!r}: s3.upload_file(sys.argv[1], 'bench-logs', k)\n"
    )
    subprocess.run([py, "-c", upload, path], check=True)
    srv = runtime_api()
    size = os.path.getsize(path)
    if copies == 1:
        RuntimeApi.event = json.dumps({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-01-01T00:05:00.000Z", "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "x"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"}, "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "x", "bucket": {"name": "bench-logs", "ownerIdentity": {"principalId": "x"}, "arn": "arn:aws:s3:::bench-logs"},
                   "object": {"key": keys[0], "size": size, "eTag": "x", "sequencer": "1"}}}]}).encode()
    else:
        # As the stack's ingest queue hands them over: EventBridge events in SQS messages.
        RuntimeApi.event = json.dumps({"Records": [{
            "messageId": f"m{i}", "receiptHandle": "r", "attributes": {}, "messageAttributes": {}, "md5OfBody": "",
            "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bench-ingest", "awsRegion": "us-east-1",
            "body": json.dumps({"version": "0", "id": f"e{i}", "detail-type": "Object Created", "source": "aws.s3",
                                "account": "123456789012", "time": "2026-01-01T00:05:00Z", "region": "us-east-1", "resources": [],
                                "detail": {"version": "0", "bucket": {"name": "bench-logs"},
                                           "object": {"key": k, "size": size, "etag": "x", "sequencer": "1"},
                                           "request-id": "x", "requester": "x", "reason": "PutObject"}})}
            for i, k in enumerate(keys)]}).encode()
    RuntimeApi.done = None
    t = time.perf_counter()
    p = subprocess.Popen([ingest], env=lambda_env(srv.server_address[1], {"AWS_ENDPOINT_URL": endpoint}),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while RuntimeApi.done is None and time.perf_counter() - t < 900:
        time.sleep(0.05)
    wall = time.perf_counter() - t
    # Still alive, polling for the next event: its own high-water mark.
    with open(f"/proc/{p.pid}/status") as f:
        hwm = next((int(l.split()[1]) for l in f if l.startswith("VmHWM:")), 0)
    p.kill()
    p.wait()
    srv.shutdown()
    moto.kill()
    moto.wait()
    if RuntimeApi.done is None or not RuntimeApi.done[0].endswith("/response"):
        sys.exit(f"the ingest function did not answer: {RuntimeApi.done}")
    if copies > 1 and json.loads(RuntimeApi.done[1]).get("batchItemFailures"):
        sys.exit(f"the ingest function failed messages: {RuntimeApi.done}")
    what = f"a {size / 1e6:.0f} MB gzip object" if copies == 1 else f"a queue batch of {copies} {size / 1e6:.0f} MB gzip objects"
    print(f"\n## Ingest function on {what}, {clients} clients, from moto (S3 body streamed)")
    print(f"peak RSS {hwm / 1024:.1f} MiB, {wall:.1f} s including the download from moto")


def lambda_ingest(build):
    """The ingest function as deployed: the `lambda` profile (fat LTO,
    stripped), without the simulator; for this machine's architecture and
    in a directory of its own (cargo-lambda's `target/lambda/` is not it)."""
    host = re.search(r"^host: (\S+)", subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout, re.M)[1]
    cmd = ["cargo", "build", "--profile", "lambda", "--no-default-features", "--bin", "fail2waf-ingest", "--target", host]
    if build:
        subprocess.run(cmd, cwd=ROOT, check=True)
    path = os.path.join(TARGET, host, "lambda", "fail2waf-ingest")
    if not os.path.exists(path):
        sys.exit(f"{path}: build it first ({' '.join(cmd)})")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one round: checks that every step runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    ap.add_argument("--baseline", metavar="BIN", help="another fail2waf binary (e.g. a build of an earlier commit) timed alternately beside this one")
    ap.add_argument("--only-throughput", action="store_true", help="the throughput tables alone")
    ap.add_argument("--clients", default=None, help="distinct clients per file, comma-separated (default 5000,50000,500000; smoke: 500,5000)")
    ap.add_argument("--ingest", metavar="BIN", help="the ingest function to measure (cold start, memory), e.g. .aws-sam/build/IngestFunction/bootstrap as `sam build` packages it; default: the `lambda` profile's, built for this machine")
    ap.add_argument("--only-lambda", action="store_true", help="the ingest function's cold start and memory alone")
    args = ap.parse_args()
    profile = "debug" if args.smoke else "release"
    if not args.no_build:
        # The smoke run builds as `cargo test` does (same features, so CI
        # reuses what the tests built instead of compiling the SDK again).
        build = ["cargo", "test", "--workspace", "--no-run"] if args.smoke else ["cargo", "build", "--bins", "--release"]
        subprocess.run(build, cwd=ROOT, check=True)
    bin_ = os.path.join(TARGET, profile, "fail2waf")
    small, big, huge = (2_000, 20_000, 40_000) if args.smoke else (100_000, 1_000_000, 2_000_000)
    rounds = 1 if args.smoke else args.rounds
    print(f"fail2waf benchmarks ({profile} build, {os.cpu_count()} cores)")
    if not GNU_TIME:
        print("(no /usr/bin/time: peak RSS figures include this script's ~20 MiB)")
    if not args.only_lambda:
        counts = [int(c) for c in (args.clients or ("500,5000" if args.smoke else "5000,50000,500000")).split(",")]
        if args.baseline:
            new, old = copies_alike(bin_, args.baseline)
            by_clients(new, big, counts, rounds, old)
        else:
            by_clients(bin_, big, counts, rounds)
    if args.only_throughput:
        return
    # The last: a flood of addresses (as many clients as lines) against the
    # engine's key cap.
    if not args.only_lambda:
        memory(bin_, [generate(bin_, small), generate(bin_, huge), generate(bin_, big, clients=big)])
        parse_cost(bin_, plain(generate(bin_, small)), small)
        clients = 5000 if args.smoke else 50_000
        cpu_rate(bin_, plain(generate(bin_, small if args.smoke else big, clients=clients)),
                 small if args.smoke else big, clients, rounds)
    if args.ingest:
        ingest = os.path.abspath(args.ingest)
    elif args.smoke:
        ingest = os.path.join(TARGET, profile, "fail2waf-ingest")
    else:
        ingest = lambda_ingest(build=not args.no_build)
    print(f"\n(ingest function: {os.path.relpath(ingest, ROOT)})")
    cold_start(ingest, 3 if args.smoke else 10)
    # A large object: about 200 MB of gzip, from a few thousand clients
    # and from half a million (the Lambda function has 128 MiB).
    for clients in [5000] if args.smoke else [5000, 500_000]:
        path = generate(bin_, 40_000 if args.smoke else 2_600_000, clients=clients)
        lambda_memory(ingest, path, clients)
        if clients == 500_000 or args.smoke:
            # A batch is counted in one engine, under one key cap.
            lambda_memory(ingest, path, clients, copies=3)


if __name__ == "__main__":
    main()
