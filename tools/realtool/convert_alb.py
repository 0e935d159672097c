#!/usr/bin/env python3
"""Finish nginx's ALB-format lines (stdin -> stdout).

nginx cannot write ISO 8601 times with fractional seconds, so the `alb`
log_format in nginx.conf.in writes placeholders that this script rewrites:

  @<msec>                 field 2 (time): $msec -> 2026-01-02T03:04:05.678000Z
                          (nginx has milliseconds; the last 3 digits are 000)
  @<msec>@<request_time>  request_creation_time: $msec - $request_time, same form
  "@TRACE@<request_id>"   trace_id: "Root=1-<epoch hex>-<first 24 hex of $request_id>"
  @TID@<connection>       conn_trace_id: TID_<32 hex derived from $connection>

Nothing else on the line is touched.
"""
import datetime as dt
import hashlib
import re
import sys

def iso(ms):
    t = dt.datetime.fromtimestamp(ms // 1000, dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S") + ".%03d000Z" % (ms % 1000)

def ms_of(s):
    sec, _, frac = s.partition(".")
    return int(sec) * 1000 + int((frac + "000")[:3])

CREATED = re.compile(r" @(\d+\.\d+)@(\d+\.\d+) ")
TRACE = re.compile(r'"@TRACE@([0-9a-f]{32})"')
TID = re.compile(r" @TID@(\d+) ")

def convert(line):
    typ, rest = line.split(" ", 1)
    stamp, rest = rest.split(" ", 1)
    assert stamp.startswith("@"), line
    ms = ms_of(stamp[1:])
    line = f"{typ} {iso(ms)} {rest}"
    # The placeholders follow the quoted request and user agent, which a
    # client controls: always rewrite the last match.
    line = sub_last(CREATED, lambda m: " %s " % iso(ms_of(m.group(1)) - ms_of(m.group(2))), line)
    line = sub_last(TRACE, lambda m: '"Root=1-%08x-%s"' % (ms // 1000, m.group(1)[:24]), line)
    line = sub_last(TID, lambda m: " TID_%s " % hashlib.md5(b"conn" + m.group(1).encode()).hexdigest(), line)
    return line

def sub_last(rx, fn, line):
    found = list(rx.finditer(line))
    assert found, line
    m = found[-1]
    return line[: m.start()] + fn(m) + line[m.end():]

for raw in sys.stdin:
    sys.stdout.write(convert(raw.rstrip("\n")) + "\n")
