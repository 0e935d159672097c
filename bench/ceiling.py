#!/usr/bin/env python3
"""The ingest ceiling: how many log objects a second one stack counts when
every S3 request takes as long as it does in AWS.

    python3 bench/ceiling.py                        # the table in docs/architecture.md
    python3 bench/ceiling.py --latency-ms 30 --concurrency 1,4,16 --clients 1000
    python3 bench/ceiling.py --smoke                # seconds, tiny sizes, the debug build (CI)

    python3 bench/ceiling.py --batch 1,10 --clients 50000 --concurrency 1,4,8

What runs: moto's S3 server (target/moto-venv, installed by `cargo test`),
in front of it a proxy that delays every request by the latency (each chunk
a client sends is forwarded that much later, in order, so a request is
delayed once however large its body), a Lambda Runtime API that hands out
the EventBridge "Object Created" events as Lambda hands out the stack's
ingest queue: up to `--batch` messages an invocation (IngestBatchSize),
again those it reports failed, five receives at most. As many
`fail2waf-ingest` processes as the concurrency, built as deployed (the
`lambda` profile), each a warm Lambda container taking one batch at a
time. The objects are ALB logs of the same five minutes from the same
client population (`gen-bench` with distinct seeds, like the nodes of one
load balancer), dated now.

Per run it prints objects per second (from the first batch handed out to
the last answer), the CAS retries (conditional writes that lost a race, from
the functions' metrics), the messages received again after a failure,
those that failed five times (the dead-letter queue's), and whether every
request was counted exactly once (the site object's totals against the
lines uploaded). Two cores run moto, the proxy and every function: the
figures are a floor for what AWS, with a core per container, would do.
"""
import argparse, asyncio, http.server, json, os, queue, re, socketserver, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (moto, paths)

LOGS, STATE = "ceiling-logs", "ceiling-state"


def proxy(upstream_port, latency_s):
    """A TCP proxy on a free port delaying each client-to-server chunk by
    `latency_s`, in order: returns its port (it runs until the process exits)."""
    ready = queue.Queue()

    async def pipe(reader, writer, delay):
        q = asyncio.Queue()

        async def forward():
            while True:
                due, data = await q.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            writer.close()

        task = asyncio.create_task(forward())
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    break
                await q.put((time.monotonic() + delay, data))
        except ConnectionError:
            pass
        await q.put((0, None))
        await task

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, uw, latency_s), pipe(ur, cw, 0), return_exceptions=True)

    async def main():
        srv = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 20)
        ready.put(srv.sockets[0].getsockname()[1])
        await srv.serve_forever()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    return ready.get()


class Dispatcher(http.server.BaseHTTPRequestHandler):
    """The Lambda Runtime API for many function processes, fed as Lambda
    feeds a function from an SQS queue: each poll takes up to `batch`
    waiting messages as one SQS event. A message the function names in
    `batchItemFailures` (or every message of an invocation that errored)
    is received again, up to five times as the stack's queue does; an
    answered message is recorded in `answers`."""
    protocol_version = "HTTP/1.1"
    batch = 10
    events = queue.Queue()
    answers = []
    bodies = {}
    tries = {}
    invocations = {}
    retried = 0
    first = None
    lock = threading.Lock()

    def log_message(self, *a):
        pass

    def do_GET(self):
        try:
            msgs = [Dispatcher.events.get(timeout=3600)]
        except queue.Empty:
            return
        while len(msgs) < Dispatcher.batch:
            try:
                msgs.append(Dispatcher.events.get_nowait())
            except queue.Empty:
                break
        with Dispatcher.lock:
            if Dispatcher.first is None:
                Dispatcher.first = time.perf_counter()
            rid = f"invocation-{len(Dispatcher.invocations)}"
            Dispatcher.invocations[rid] = msgs
        body = json.dumps({"Records": [{
            "messageId": m, "receiptHandle": m, "body": Dispatcher.bodies[m],
            "attributes": {"ApproximateReceiveCount": str(Dispatcher.tries[m]), "SentTimestamp": "1",
                           "SenderId": "x", "ApproximateFirstReceiveTimestamp": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ceiling-ingest", "awsRegion": "us-east-1",
        } for m in msgs]}).encode()
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", rid)
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:ceiling")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(n)
        rid = self.path.split("/")[-2]
        with Dispatcher.lock:
            msgs = Dispatcher.invocations[rid]
            if self.path.endswith("/error"):
                again = set(msgs)
            else:
                again = {f["itemIdentifier"] for f in json.loads(body).get("batchItemFailures", [])}
            for m in msgs:
                if m in again and Dispatcher.tries[m] < 5:
                    Dispatcher.tries[m] += 1
                    Dispatcher.retried += 1
                    Dispatcher.events.put(m)
                else:
                    Dispatcher.answers.append((time.perf_counter(), m not in again))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a function process killed at the end of a run, mid-poll


def event(key, size):
    """The "Object Created" event EventBridge puts into the ingest queue."""
    return json.dumps({
        "version": "0", "id": key, "detail-type": "Object Created", "source": "aws.s3",
        "account": "123456789012", "time": "2026-01-01T00:05:00Z", "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{LOGS}"],
        "detail": {"version": "0", "bucket": {"name": LOGS},
                   "object": {"key": key, "size": size, "etag": "x", "sequencer": "1"},
                   "request-id": "x", "requester": "x", "reason": "PutObject"}})


def s3_script(endpoint, body):
    """Run boto3 code against moto (directly, not through the proxy)."""
    head = (
        "import boto3, json, sys\n"
        f"s3 = boto3.client('s3', endpoint_url='{endpoint}', region_name='us-east-1',"
        " aws_access_key_id='testing', aws_secret_access_key='testing')\n"
    )
    return subprocess.run([bench.moto_python(), "-c", head + body], capture_output=True, text=True, check=True).stdout


def run(args, ingest, gen, clients, concurrency, batch, files):
    """One measurement: `concurrency` function processes count `objects`
    objects (copies of `files` under distinct keys) into a fresh state,
    taking up to `batch` at a time."""
    objects = args.objects or min(max(3 * concurrency * batch, 12), args.max_objects)
    moto_proc, moto_port = bench.start_moto()
    endpoint = f"http://127.0.0.1:{moto_port}"
    try:
        keys = [f"AWSLogs/1/elasticloadbalancing/us-east-1/{time.strftime('%Y/%m/%d')}/"
                f"1_elasticloadbalancing_us-east-1_app.shop.1_{time.strftime('%Y%m%dT%H%MZ')}_10.0.{i // 250}.{i % 250}_ceiling{i}.log.gz"
                for i in range(objects)]
        uploads = [(files[i % len(files)][0], k) for i, k in enumerate(keys)]
        s3_script(endpoint, (
            f"for b in ('{LOGS}', '{STATE}'): s3.create_bucket(Bucket=b)\n"
            f"for path, key in {uploads!r}: s3.upload_file(path, '{LOGS}', key)\n"
        ))
        lines = sum(files[i % len(files)][1] for i in range(objects))
        port = proxy(moto_port, args.latency_ms / 1000)
        Dispatcher.events, Dispatcher.answers, Dispatcher.first = queue.Queue(), [], None
        Dispatcher.bodies, Dispatcher.tries, Dispatcher.retried = {}, {}, 0
        Dispatcher.invocations, Dispatcher.batch = {}, batch
        api = ThreadingServer(("127.0.0.1", 0), Dispatcher)
        threading.Thread(target=api.serve_forever, daemon=True).start()
        logs = tempfile.TemporaryDirectory()
        env = bench.lambda_env(api.server_address[1], {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "FAIL2WAF_STATE": f"s3://{STATE}/fail2waf/",
            "AWS_LAMBDA_FUNCTION_NAME": "ceiling",
        })
        procs = []
        for i in range(concurrency):
            out = open(os.path.join(logs.name, f"{i}.log"), "wb")
            procs.append((subprocess.Popen([ingest], env=env, stdout=out, stderr=subprocess.STDOUT), out))
        for i, (key, (path, _)) in enumerate(zip(keys, uploads)):
            m = f"message-{i}"
            Dispatcher.bodies[m], Dispatcher.tries[m] = event(key, os.path.getsize(path)), 1
            Dispatcher.events.put(m)
        moto_cpu = cpu_seconds(moto_proc.pid)
        deadline = time.perf_counter() + args.timeout
        while len(Dispatcher.answers) < objects and time.perf_counter() < deadline:
            time.sleep(0.05)
        moto_cpu = cpu_seconds(moto_proc.pid) - moto_cpu
        fn_cpu = sum(cpu_seconds(p.pid) for p, _ in procs)
        done = len(Dispatcher.answers)
        elapsed = (max(a[0] for a in Dispatcher.answers) - Dispatcher.first) if done else float("nan")
        failed = sum(1 for a in Dispatcher.answers if not a[1])
        for p, out in procs:
            p.kill()
            p.wait()
            out.close()
        api.shutdown()
        retries = 0
        for name in os.listdir(logs.name):
            with open(os.path.join(logs.name, name), errors="replace") as f:
                retries += sum(int(m) for m in re.findall(r'"CasRetries":(\d+)', f.read()))
        if os.environ.get('CEILING_KEEP_LOGS'):
            subprocess.run(['cp', '-r', logs.name, '/tmp/ceiling-logs'])
        logs.cleanup()
        # Every request counted once: the site object's total against the lines.
        counted, state_bytes, absorbed = (int(x) for x in s3_script(endpoint, (
            f"o = s3.get_object(Bucket='{STATE}', Key='fail2waf/v1/site.json')\n"
            "site = json.loads(o['Body'].read())\n"
            "st = site['state']['site']['total']\n"
            f"size = sum(o['Size'] for o in s3.list_objects_v2(Bucket='{STATE}')['Contents'])\n"
            "print(sum(n for _, n in st), size, len(site['absorbed']))\n"
        )).split())
    finally:
        moto_proc.kill()
        moto_proc.wait()
    return {
        "clients": clients, "concurrency": concurrency, "batch": batch, "objects": objects, "done": done,
        "failed": failed, "seconds": elapsed, "per_second": done / elapsed if done else 0.0,
        "retries": retries, "lines": lines, "counted": counted, "absorbed": absorbed, "redelivered": Dispatcher.retried,
        "fn_cpu": fn_cpu / max(done, 1), "moto_cpu": moto_cpu / max(done, 1), "state_mb": state_bytes / 1e6,
    }


def cpu_seconds(pid):
    """User + system CPU time a live process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-ms", type=float, default=30)
    ap.add_argument("--concurrency", default="1,4,16,64,200")
    ap.add_argument("--clients", default="1000,50000", help="distinct clients an object comes from")
    ap.add_argument("--batch", default="10", help="most objects an invocation takes (IngestBatchSize)")
    ap.add_argument("--objects", type=int, default=0, help="objects per run (default: 3 x concurrency x batch, 12 to --max-objects)")
    ap.add_argument("--max-objects", type=int, default=400)
    ap.add_argument("--timeout", type=float, default=900, help="seconds a run may take")
    ap.add_argument("--smoke", action="store_true", help="tiny objects, concurrency 1 and 4")
    ap.add_argument("--no-build", action="store_true", help="use the ingest function already built (the `lambda` profile)")
    args = ap.parse_args()
    if args.smoke:
        args.concurrency, args.clients, args.batch, args.max_objects = "1,4", "200", "1,10", 12
    if args.smoke:
        # What `cargo test` built (CI runs the smoke after the tests).
        gen, ingest = (os.path.join(bench.TARGET, "debug", b) for b in ("fail2waf", "fail2waf-ingest"))
    else:
        gen, ingest = os.path.join(bench.TARGET, "release", "fail2waf"), bench.lambda_ingest(build=not args.no_build)
    for b in (gen, ingest):
        if not os.path.exists(b):
            sys.exit(f"{b}: build it first ({'cargo test' if args.smoke else 'cargo build --release'})")
    if not bench.moto_python():
        sys.exit("moto: run `cargo test` once first (it installs moto into target/moto-venv)")
    lost = False
    print(f"fail2waf ingest ceiling: S3 latency {args.latency_ms:g} ms a request, {os.cpu_count()} cores, moto")
    print(f"{'clients':>8} {'batch':>5} {'concurrent':>10} {'objects':>8} {'seconds':>8} {'objects/s':>10} {'CAS retries':>12} "
          f"{'retried':>8} {'failed':>7} {'fn CPU/obj':>10} {'moto CPU/obj':>12} {'state MB':>8}  counts")
    tmp = tempfile.TemporaryDirectory()
    for clients in [int(c) for c in args.clients.split(",")]:
        # Two lines a client on average (about 86 % of the clients appear),
        # the same five minutes ending now, four distinct files.
        lines = 2 * clients
        start = int(time.time() * 1000) - 330_000
        files = []
        for seed in range(4):
            path = os.path.join(tmp.name, f"c{clients}-{seed}.log.gz")
            subprocess.run([gen, "gen-bench", "--lines", str(lines), "--clients", str(clients), "--seed", str(seed + 1),
                            "--start-ms", str(start), "--step-ms", str(max(1, 300_000 // lines)), "--out", path], check=True)
            files.append((path, lines))
        for b, c in [(int(b), int(c)) for b in args.batch.split(",") for c in args.concurrency.split(",")]:
            r = run(args, ingest, gen, clients, c, b, files)
            ok = "all once" if r["counted"] == r["lines"] and r["done"] == r["objects"] else f"{r['counted']} of {r['lines']} ({r['absorbed']} objects absorbed)"
            print(f"{clients:>8} {b:>5} {c:>10} {r['done']:>3}/{r['objects']:<4} {r['seconds']:>8.1f} {r['per_second']:>10.2f} "
                  f"{r['retries']:>12} {r['redelivered']:>8} {r['failed']:>7} {r['fn_cpu']:>9.2f}s {r['moto_cpu']:>11.2f}s "
                  f"{r['state_mb']:>8.1f}  {ok}", flush=True)
            lost |= ok != "all once"
    if lost:
        sys.exit("counts lost or doubled, or objects not answered: see the table")


if __name__ == "__main__":
    main()
