#!/usr/bin/env python3
"""The shop behind nginx for tools/realtool/record.sh.

  site.py build DOCROOT      write the static site (pages, /static/ assets)
  site.py backend PORT       run the JSON backend on 127.0.0.1:PORT

Backend routes (nginx proxies /api/* and /login here):
  GET  /api/products?id=N   200 JSON (404 for an unknown id, 400 if id is not
                            a number, 500 "SQL syntax" error if any query
                            parameter looks like SQL injection)
  GET  /api/products        200 list
  GET  /api/cart, POST /api/cart   200 / 201
  GET  /api/report          flaky: ~5 % 500 and ~3 % 502, else 200
  GET  /api/health          200
  GET  /login               200 HTML form
  POST /login               200 for user=alice&pass=correct-horse, else 401
Anything else: 404 JSON.
"""
import json
import os
import random
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PAGES = ["index", "products", "about", "cart", "checkout", "contact", "faq"]
CSS = ["/static/css/site.css", "/static/css/print.css"]
JS = ["/static/js/app.js", "/static/js/vendor.js"]
IMAGES = ["/static/img/logo.png", "/static/img/hero.jpg"] + [
    f"/static/img/p{i}.jpg" for i in range(1, 13)
]
BROKEN_BANNER = "/static/img/banner-spring-sale.jpg"  # referenced, never written


def build(root):
    for d in ("static/css", "static/js", "static/img"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    rnd = random.Random(7)
    for p in CSS + JS + IMAGES:
        size = {"css": 6000, "js": 40000, "png": 3000, "jpg": 25000}[p.rsplit(".", 1)[1]]
        with open(os.path.join(root, p.lstrip("/")), "wb") as f:
            f.write(bytes(rnd.getrandbits(8) for _ in range(size)))
    for page in PAGES:
        imgs = IMAGES[:2] + (IMAGES[2:] if page == "products" else [])
        extra = f'<img src="{BROKEN_BANNER}">' if page == "index" else ""
        body = "".join(f'<img src="{i}">' for i in imgs)
        html = f"""<!doctype html><html><head><title>{page}</title>
<link rel="stylesheet" href="/static/css/site.css">
<link rel="stylesheet" href="/static/css/print.css" media="print">
<script src="/static/js/vendor.js"></script><script src="/static/js/app.js"></script>
</head><body><h1>{page}</h1>{extra}{body}
<a href="/">home</a> <a href="/products">products</a> <a href="/about">about</a>
<a href="/cart">cart</a> <a href="/faq">faq</a> <a href="/contact">contact</a>
</body></html>
"""
        with open(os.path.join(root, f"{page}.html"), "w") as f:
            f.write(html + "<!-- " + "x" * 2000 + " -->\n")
    with open(os.path.join(root, "robots.txt"), "w") as f:
        f.write("User-agent: *\nDisallow: /checkout\nSitemap: /sitemap.xml\n")
    with open(os.path.join(root, "sitemap.xml"), "w") as f:
        f.write("<urlset>" + "".join(f"<url><loc>/{p}</loc></url>" for p in PAGES) + "</urlset>\n")


SQLI = re.compile(r"""['"`;]|--|/\*|\b(union|select|sleep|benchmark|waitfor|and|or|order\s+by|null)\b|\(""", re.I)
PRODUCTS = 400


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shop-api/1.0"

    def log_message(self, *a):
        pass

    def send(self, code, obj, ctype="application/json"):
        body = (json.dumps(obj) + "\n").encode() if ctype == "application/json" else obj.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode("latin-1") if n else ""

    def sql_error(self):
        self.send(500, {"error": "You have an error in your SQL syntax; check the manual that "
                        "corresponds to your MySQL server version for the right syntax to use"})

    def route(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query, keep_blank_values=True)
        path = u.path
        data = self.body() if self.command == "POST" else ""
        if any(SQLI.search(v) for vs in q.values() for v in vs):
            return self.sql_error()
        if path == "/api/health":
            return self.send(200, {"status": "ok"})
        if path == "/api/products":
            if "id" not in q:
                return self.send(200, {"products": list(range(1, 21))})
            try:
                pid = int(q["id"][0])
            except ValueError:
                return self.send(400, {"error": "bad id"})
            if not 1 <= pid <= PRODUCTS:
                return self.send(404, {"error": "no such product"})
            return self.send(200, {"id": pid, "name": f"Product {pid}", "price": pid * 1.5})
        if path == "/api/cart":
            if self.command == "POST":
                return self.send(201, {"added": parse_qs(data).get("id", ["?"])[0]})
            return self.send(200, {"items": random.randint(0, 4)})
        if path == "/api/report":
            r = random.random()
            if r < 0.05:
                return self.send(500, {"error": "report generation failed"})
            if r < 0.08:
                return self.send(502, {"error": "upstream reporting service unavailable"})
            time.sleep(random.uniform(0.05, 0.3))
            return self.send(200, {"report": "weekly", "rows": random.randint(10, 99)})
        if path == "/login":
            if self.command == "POST":
                f = parse_qs(data)
                ok = f.get("user", [""])[0] == "alice" and f.get("pass", [""])[0] == "correct-horse"
                return self.send(200 if ok else 401, {"login": "ok" if ok else "denied"})
            return self.send(200, "<!doctype html><form method=post action=/login>"
                             "<input name=user><input name=pass type=password></form>\n", "text/html")
        return self.send(404, {"error": "not found"})

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_OPTIONS = route


def backend(port):
    ThreadingHTTPServer.daemon_threads = True
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2])
    elif sys.argv[1] == "backend":
        backend(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
