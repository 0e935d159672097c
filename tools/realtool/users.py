#!/usr/bin/env python3
"""The innocent actors for record.sh: shoppers, a corporate NAT, a mobile
carrier's CGNAT /24, a crawler and two monitors. Each actor is a thread with
its own X-Forwarded-For address and a browser-like User-Agent, talking to
nginx on loopback with keep-alive connections.

usage: users.py BASE_URL DURATION_S OUTAGE_START_S OUTAGE_END_S LABELS_OUT

Times are seconds after start. Writes one labels row per actor to LABELS_OUT
and a line per started session to stdout. TIME_SCALE=0.1 shrinks every
sleep (for a quick test)."""
import http.client
import os
import random
import sys
import threading
import time
from urllib.parse import urlsplit

BASE, DURATION, OUT_START, OUT_END, LABELS = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
SCALE = float(os.environ.get("TIME_SCALE", "1"))
HOST = urlsplit(BASE).netloc
T0 = time.time()
STOP = threading.Event()
rnd0 = random.Random(int(os.environ.get("SEED", "42")))
print_lock = threading.Lock()

def now():
    return (time.time() - T0) / SCALE

def sleep(s):
    STOP.wait(s * SCALE)

def say(msg):
    with print_lock:
        print(f"{now():7.1f}s {msg}", flush=True)

DESKTOP = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
]
MOBILE = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.107 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
]
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

PAGES = ["/", "/products", "/about", "/cart", "/faq", "/contact"]
CSS = ["/static/css/site.css"]
JS = ["/static/js/vendor.js", "/static/js/app.js"]
IMG_COMMON = ["/static/img/logo.png", "/static/img/hero.jpg"]
IMG_PRODUCTS = [f"/static/img/p{i}.jpg" for i in range(1, 13)]
BANNER = "/static/img/banner-spring-sale.jpg"   # broken image on the home page
STALE = ["/promo/black-friday", "/products/old-widget", "/blog/2019/launch", "/press.html"]


class Client:
    """One browser: a keep-alive connection, an address, a UA, a cache."""

    def __init__(self, ip, ua, rnd):
        self.ip, self.ua, self.rnd = ip, ua, rnd
        self.conn = None
        self.cache = {}
        self.requests = 0
        self.errors = 0

    def req(self, method, path, body=None, referer=None, extra=None):
        if STOP.is_set():
            raise SystemExit
        h = {"Host": HOST, "User-Agent": self.ua, "X-Forwarded-For": self.ip,
             "Accept": "*/*", "Accept-Language": "en-US,en;q=0.9"}
        if referer:
            h["Referer"] = BASE + referer
        if extra:
            h.update(extra)
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(HOST, timeout=15)
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                r.read()
                self.requests += 1
                if r.status >= 400:
                    self.errors += 1
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, r.getheader("ETag")
            except (OSError, http.client.HTTPException):
                if self.conn:
                    self.conn.close()
                self.conn = None
        return 0, None

    def asset(self, path, referer):
        """A static asset the way a browser loads it: first time a GET,
        later usually from memory cache, sometimes revalidated (304)."""
        if path in self.cache:
            if self.rnd.random() < 0.2:
                self.req("GET", path, referer=referer, extra={"If-None-Match": self.cache[path]})
            return
        st, etag = self.req("GET", path, referer=referer)
        if st == 200 and etag:
            self.cache[path] = etag

    def api(self, method, path, referer, body=None, retries=2):
        """An XHR; on 5xx the page script retries after a second or two."""
        for i in range(retries + 1):
            st, _ = self.req(method, path, body=body, referer=referer)
            if st < 500:
                return st
            sleep(self.rnd.uniform(1, 3))
        return st


def view(c, page, prev, mobile, first, reporter):
    """One page view; returns False if the page's API calls failed."""
    c.req("GET", page, referer=prev)
    for a in CSS + JS + IMG_COMMON:
        c.asset(a, page)
    if page == "/":
        c.req("GET", BANNER, referer=page)          # 404 every time
    if page == "/products":
        for a in c.rnd.sample(IMG_PRODUCTS, c.rnd.randint(4, 12)):
            c.asset(a, page)
    if first:
        c.req("GET", "/favicon.ico", referer=page)   # 404
        if mobile:
            c.req("GET", "/apple-touch-icon-precomposed.png")  # 404
            c.req("GET", "/apple-touch-icon.png")              # 404
    # XHRs: the page script stops calling the API after the first call that
    # still fails after its retries (it shows an error banner instead).
    calls = []
    if page == "/products":
        calls.append(("GET", "/api/products", None))
        for _ in range(c.rnd.randint(1, 4)):
            n = c.rnd.randint(1, 400) if c.rnd.random() > 0.03 else c.rnd.randint(401, 999)
            calls.append(("GET", f"/api/products?id={n}", None))
    if page == "/cart":
        calls.append(("GET", "/api/cart", None))
        if c.rnd.random() < 0.6:
            calls.append(("POST", "/api/cart", f"id={c.rnd.randint(1, 400)}&qty=1"))
            calls.append(("GET", "/api/cart", None))
    if reporter or c.rnd.random() < 0.05:
        calls.append(("GET", "/api/report", None))
    for method, path, body in calls:
        if c.api(method, path, page, body=body, retries=1 if "report" in path else 2) >= 500:
            return False
    if page == "/cart" and c.rnd.random() < 0.3:
        c.req("GET", "/checkout", referer=page)
        for a in CSS + JS:
            c.asset(a, "/checkout")
    return True


def session(c, pages, mobile=False, reporter=False, think=(2, 20), stale=0.0):
    prev, page = None, c.rnd.choice(["/", "/", "/", "/products"])
    for i in range(pages):
        if STOP.is_set():
            return
        if stale and c.rnd.random() < stale:
            c.req("GET", c.rnd.choice(STALE), referer=prev)     # a dead link from elsewhere
        ok = view(c, page, prev, mobile, i == 0, reporter)
        # After an error page people wait a little longer, then reload or move on.
        sleep(c.rnd.uniform(*think) + (0 if ok else c.rnd.uniform(5, 20)))
        prev, page = page, c.rnd.choice(PAGES + ["/products", "/products", "/cart"])


def at(t0, fn, *a):
    """Run fn(*a) in a thread starting t0 seconds after start."""
    def run():
        sleep(max(0.0, t0 - now()))
        try:
            fn(*a)
        except SystemExit:
            pass
    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


labels = []
threads = []

def label(net, group, expect, note):
    labels.append(f"{net}\t{group}\t{expect}\t{note}")

# --- shoppers: 25 addresses, one session each (a few come back later).
shopper_ips = ([f"198.51.100.{h}" for h in rnd0.sample(range(10, 250), 12)]
               + [f"192.0.2.{h}" for h in rnd0.sample(range(60, 250), 6)]
               + ["89.160.20.112", "89.160.20.128", "81.2.69.142", "81.2.69.160", "216.160.83.56",
                  "2001:db8:4f2e:1a::2b7", "2001:db8:77:c0de::19"])
span = DURATION - 60
outage_shoppers = set(range(6))            # shoppers 1-6 are clicking through the outage
reporters = {6, 7, 8, 9, 10}               # use /api/report on every page
for i, ip in enumerate(shopper_ips):
    r = random.Random(1000 + i)
    mobile = i % 4 == 3
    c = Client(ip, r.choice(MOBILE if mobile else DESKTOP), r)
    if i in outage_shoppers:
        start = OUT_START - r.uniform(20, 90)
        pages = r.randint(14, 24)
        think = (2, 14)
    else:
        start = r.uniform(0, span - 200)
        pages = r.randint(3, 14)
        think = (2, 20)
    def shopper(c=c, pages=pages, mobile=mobile, i=i, think=think, start=start):
        say(f"shopper-{i+1} {c.ip} start ({pages} pages)")
        session(c, pages, mobile=mobile, reporter=i in reporters, think=think)
        if i % 5 == 0 and not STOP.is_set():     # comes back later
            sleep(c.rnd.uniform(60, 180))
            session(c, c.rnd.randint(2, 6), mobile=mobile, reporter=i in reporters)
        say(f"shopper-{i+1} {c.ip} done: {c.requests} requests, {c.errors} errors")
    threads.append(at(start, shopper))
    what = "during the /api outage" if i in outage_shoppers else "normal"
    if i in reporters:
        what += ", uses /api/report"
    label(f"{ip}/{128 if ':' in ip else 32}", f"shopper-{i+1}", "allow", f"browser session(s), {what}")

# --- corporate NAT: 30 people behind one address.
NAT = "192.0.2.10"
nat_clients = []
for k in range(30):
    r = random.Random(2000 + k)
    c = Client(NAT, r.choice(DESKTOP[:2] + DESKTOP[3:4]), r)
    nat_clients.append(c)
    def person(c=c, k=k):
        for _ in range(c.rnd.choice([1, 1, 2])):
            session(c, c.rnd.randint(2, 10), reporter=c.rnd.random() < 0.2)
            sleep(c.rnd.uniform(60, 300))
    threads.append(at(r.uniform(0, span - 150), person))
label(f"{NAT}/32", "nat", "allow", "corporate NAT: 30 browser users behind one address")

def nat_summary():
    sleep(DURATION - 5)
    say(f"nat {NAT}: {sum(c.requests for c in nat_clients)} requests, {sum(c.errors for c in nat_clients)} errors")
threads.append(at(0, nat_summary))

# --- mobile carrier CGNAT: 24 addresses in one /24, one shopper each.
for k, h in enumerate(rnd0.sample(range(2, 254), 24)):
    r = random.Random(3000 + k)
    c = Client(f"172.58.12.{h}", r.choice(MOBILE), r)
    threads.append(at(r.uniform(0, span - 100), session, c, r.randint(2, 8), True, False, (2, 20), 0.15))
label("172.58.12.0/24", "cgnat", "allow", "mobile carrier CGNAT: 24 phone users, genuine 404s (favicon, touch icons, banner, stale links)")

# --- crawler.
def crawler():
    c = Client("66.249.66.77", GOOGLEBOT, random.Random(4000))
    c.req("GET", "/robots.txt")
    c.req("GET", "/sitemap.xml")
    stale = STALE + ["/catalog.html", "/shop", "/old/index.html", "/products?page=9"]
    while now() < DURATION - 20:
        r = c.rnd.random()
        if r < 0.08:
            c.req("GET", c.rnd.choice(stale))
        elif r < 0.25:
            c.req("GET", c.rnd.choice(IMG_PRODUCTS + IMG_COMMON + CSS + JS))
        else:
            c.req("GET", c.rnd.choice(PAGES + ["/checkout", "/products"]))
        sleep(c.rnd.uniform(2, 5))
    say(f"crawler {c.ip}: {c.requests} requests, {c.errors} errors")
threads.append(at(5, crawler))
label("66.249.66.77/32", "crawler", "allow", "Googlebot-like crawler, ~5-10 % stale links (404) and 301s")

# --- monitors.
def monitor(ip, ua, paths):
    c = Client(ip, ua, random.Random(ip))
    while now() < DURATION - 10:
        for p in paths:
            c.req("GET", p)
        sleep(c.rnd.uniform(10, 30))
    say(f"monitor {ip} {paths}: {c.requests} requests, {c.errors} errors")
threads.append(at(1, monitor, "198.51.100.250", "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", ["/health", "/"]))
threads.append(at(2, monitor, "192.0.2.251", "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", ["/api/health"]))
label("198.51.100.250/32", "monitor", "allow", "uptime monitor: /health and / every 10-30 s")
label("192.0.2.251/32", "monitor-api", "allow", "uptime monitor on /api/health every 10-30 s: 502s during the outage")

with open(LABELS, "w") as f:
    f.write("\n".join(labels) + "\n")

# Wait until the end of the run, then stop everyone.
STOP.wait(max(0.0, DURATION * SCALE - (time.time() - T0)))
STOP.set()
time.sleep(1)
say("users done")
