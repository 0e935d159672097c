#!/usr/bin/env bash
# Record a labeled corpus of real attack-tool traffic against a throwaway
# nginx + Python shop on loopback. See README.md.
#
#   tools/realtool/record.sh [OUT_DIR]      (default tests/fixtures/realtool)
#
# Env: DURATION (s, default 1080), OUTAGE_START / OUTAGE_END (s, default
# 420 / 600), KEEP=1 keeps the temp dir.
# Needs: nginx gobuster ffuf dirb wfuzz sqlmap (Debian packages), python3, curl.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
OUT=${1:-$REPO/tests/fixtures/realtool}
DURATION=${DURATION:-1080}
OUTAGE_START=${OUTAGE_START:-420}
OUTAGE_END=${OUTAGE_END:-600}
WL=$HERE/wordlists
DIRB_WL=/usr/share/dirb/wordlists

for t in nginx gobuster ffuf dirb wfuzz sqlmap python3 curl timeout gzip; do
    command -v "$t" >/dev/null || { echo "missing: $t" >&2; exit 1; }
done

T=$(mktemp -d /tmp/realtool.XXXXXX)
chmod 755 "$T"                      # nginx workers may run as nobody
mkdir -p "$T/tmp" "$T/www" "$T/tools" "$T/wl"
PIDS=()
BACKEND_PID=

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null; done
    [ -n "$BACKEND_PID" ] && kill "$BACKEND_PID" 2>/dev/null
    if [ -f "$T/nginx.pid" ]; then
        kill -QUIT "$(cat "$T/nginx.pid")" 2>/dev/null
        for _ in $(seq 50); do [ -f "$T/nginx.pid" ] || break; sleep 0.1; done
    fi
    [ "${KEEP:-0}" = 1 ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Two free ports on loopback (the nginx one must be free on ::1 too).
read -r PORT BACKEND_PORT < <(python3 - <<'PY'
import socket
def free():
    while True:
        s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
        try:
            s6 = socket.socket(socket.AF_INET6); s6.bind(("::1", p)); s6.close()
        except OSError:
            continue
        return p
a = free(); b = free()
while b == a: b = free()
print(a, b)
PY
)
BASE=http://127.0.0.1:$PORT

T0=$(date +%s)
log() {
    local line
    line="$(date -u +%Y-%m-%dT%H:%M:%SZ) +$(( $(date +%s) - T0 ))s $*"
    echo "$line" | tee -a "$T/timeline.log" >&2
}

# --- site, backend, nginx ----------------------------------------------
python3 "$HERE/site.py" build "$T/www"
chmod -R a+rX "$T/www"
sed -e "s#@PREFIX@#$T#g; s#@PORT@#$PORT#g; s#@BACKEND_PORT@#$BACKEND_PORT#g; s#@ROOT@#$T/www#g" \
    "$HERE/nginx.conf.in" > "$T/nginx.conf"

start_backend() {
    python3 "$HERE/site.py" backend "$BACKEND_PORT" &
    BACKEND_PID=$!
    for _ in $(seq 50); do
        curl -s -o /dev/null "http://127.0.0.1:$BACKEND_PORT/api/health" && return 0
        sleep 0.1
    done
    echo "backend did not start" >&2; return 1
}
start_backend
nginx -p "$T" -c "$T/nginx.conf" -e "$T/error.log"
for _ in $(seq 50); do curl -s -o /dev/null "$BASE/health" && break; sleep 0.1; done
: > "$T/alb.raw.log"; : > "$T/nginx.log"     # drop the start-up probes
T0=$(date +%s)
log "nginx on $BASE (prefix $T), backend on 127.0.0.1:$BACKEND_PORT, duration ${DURATION}s, /api outage ${OUTAGE_START}-${OUTAGE_END}s"

# --- word lists: slices of Debian's dirb lists, plus ours ----------------
slice() { awk -v a="$2" -v b="$3" 'NF && ++n >= a && n <= b' "$1"; }   # non-empty lines a..b
slice "$DIRB_WL/common.txt" 1 2500 > "$T/wl/gobuster.txt"
slice "$DIRB_WL/big.txt" 1 2000 > "$T/wl/dirb.txt"
slice "$DIRB_WL/big.txt" 2001 4500 > "$T/wl/ffuf.txt"
slice "$DIRB_WL/big.txt" 6001 6150 > "$T/wl/slow.txt"
slice "$DIRB_WL/common.txt" 2501 3100 > "$T/wl/ipv6_paths.txt"

# --- actors ---------------------------------------------------------------
# run_at OFFSET NAME CMD...: start CMD OFFSET seconds after T0, in its own
# process group (so cleanup can stop it), output to $T/tools/NAME.out.
run_at() {
    local off=$1 name=$2; shift 2
    setsid bash -c '
        off=$1 name=$2 t0=$3 tl=$4 out=$5; shift 5
        now=$(date +%s); [ $(( t0 + off )) -gt "$now" ] && sleep $(( t0 + off - now ))
        echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) +$(( $(date +%s) - t0 ))s start $name: $*" | tee -a "$tl" >&2
        "$@" > "$out" 2>&1 < /dev/null; rc=$?
        echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) +$(( $(date +%s) - t0 ))s end $name (exit $rc)" | tee -a "$tl" >&2
    ' _ "$off" "$name" "$T0" "$T/timeline.log" "$T/tools/$name.out" "$@" &
    PIDS+=($!)
}

LABELS=$T/labels.attackers.tsv
: > "$LABELS"
attacker() {  # attacker NET GROUP NOTE
    printf '%s\t%s\tblock\t%s\n' "$1" "$2" "$3" >> "$LABELS"
}

# The proxy itself: nginx answers a request line it rejects (e.g. the subnet
# scan's /cgi-bin/.%2e/.%2e/bin/sh) with 400 before reading headers, so such
# lines carry the loopback peer address, not X-Forwarded-For.
printf '%s\t%s\t%s\t%s\n' 127.0.0.1/32 proxy allow \
    "the load balancer's own peer: requests nginx rejected with 400 at the request line, before realip (from subnet-scan)" >> "$LABELS"

# Innocent users (they write their own label rows).
run_at 0 users python3 "$HERE/users.py" "$BASE" "$DURATION" "$OUTAGE_START" "$OUTAGE_END" "$T/labels.users.tsv"

XFF="X-Forwarded-For"
run_at 60 gobuster timeout 300 gobuster dir -u "$BASE/" -w "$T/wl/gobuster.txt" \
    -H "$XFF: 203.0.113.10" -t 10 -q -z --no-error
attacker 203.0.113.10/32 gobuster "gobuster 3.5 dir, 2,500 words of dirb common.txt, 10 threads"

run_at 150 sqlmap timeout 240 sqlmap -u "$BASE/api/products?id=1" --batch --level 1 --risk 1 \
    --headers "$XFF: 203.0.113.20" --output-dir "$T/sqlmap1" --flush-session --disable-coloring
attacker 203.0.113.20/32 sqlmap "sqlmap 1.7.2 --batch --level 1 --risk 1 on /api/products?id=1 (normal period, cap 240 s)"

run_at 240 stuffer timeout 300 wfuzz -z "file,$WL/passwords.txt" -d "user=admin&pass=FUZZ" \
    -H "$XFF: 203.0.113.30" -t 5 "$BASE/login"
attacker 203.0.113.30/32 stuffer "wfuzz 3.1 POST /login user=admin, 400 passwords, 5 threads (401s)"

run_at 270 slow-scanner timeout 800 ffuf -u "$BASE/FUZZ" -w "$T/wl/slow.txt" \
    -H "$XFF: 185.191.171.33" -t 1 -p 3-5 -mc all -s
attacker 185.191.171.33/32 slow-scanner "ffuf -t 1 -p 3-5: 150 paths of dirb big.txt over ~10 min"

run_at $((OUTAGE_START + 20)) dirb timeout 400 dirb "$BASE/" "$T/wl/dirb.txt" \
    -H "$XFF: 203.0.113.40" -r -S
attacker 203.0.113.40/32 dirb "dirb 2.22 -r, first 2,000 words of big.txt (starts during the /api outage)"

run_at $((OUTAGE_START + 50)) sqlmap-outage timeout 100 sqlmap -u "$BASE/api/products?id=7" --batch \
    --level 1 --risk 1 --headers "$XFF: 203.0.113.21" --output-dir "$T/sqlmap2" --flush-session --disable-coloring
attacker 203.0.113.21/32 sqlmap-outage "sqlmap during the /api outage (sees nginx 502s), cap 100 s"

run_at $((OUTAGE_START + 100)) ipv6-rotator timeout 300 ffuf -u "$BASE/FUZZ" -mode pitchfork \
    -w "$T/wl/ipv6_paths.txt:FUZZ" -w "$WL/ipv6_rotator_ips.txt:SRCIP" -H "$XFF: SRCIP" \
    -t 4 -p 0.2-0.6 -mc all -s
attacker 2001:db8:bad::/48 ipv6-rotator "ffuf pitchfork: 600 requests, a new /64 of 2001:db8:bad::/48 for each"

run_at $((OUTAGE_END)) subnet-scan timeout 520 ffuf -u "$BASE/FUZZ" -mode pitchfork \
    -w "$WL/subnet_scan_paths.txt:FUZZ" -w "$WL/subnet_scan_ips.txt:SRCIP" -H "$XFF: SRCIP" \
    -H "User-Agent: Mozilla/5.0 zgrab/0.x" -t 1 -p 2.4 -mc all -s
attacker 45.95.147.0/24 subnet-scan "ffuf pitchfork -t 1 -p 2.4: 20 addresses x 9 exploit probes, ~25/min for the /24 over ~7 min"

run_at $((OUTAGE_END + 60)) slow-stuffer timeout 420 wfuzz -z "file,$WL/passwords_slow.txt" \
    -d "user=admin&pass=FUZZ" -H "$XFF: 91.240.118.222" -t 1 -s 1 "$BASE/login"
attacker 91.240.118.222/32 slow-stuffer "wfuzz -t 1 -s 1 POST /login, 240 passwords at ~1/s"

run_at $((OUTAGE_END + 180)) ffuf timeout 200 ffuf -u "$BASE/FUZZ" -w "$T/wl/ffuf.txt" \
    -H "$XFF: 203.0.113.50" -t 5 -p 0.1 -mc all -s
attacker 203.0.113.50/32 ffuf "ffuf -t 5 -p 0.1 (~50 req/s), 2,500 words of big.txt"

# --- the /api outage --------------------------------------------------------
sleep_until() { local d=$(( T0 + $1 - $(date +%s) )); [ "$d" -gt 0 ] && sleep "$d"; return 0; }
sleep_until "$OUTAGE_START"
kill "$BACKEND_PID"; wait "$BACKEND_PID" 2>/dev/null || true; BACKEND_PID=
log "outage: backend killed, nginx answers 502 for /api/* and POST /login"
sleep_until "$OUTAGE_END"
start_backend
log "outage over: backend restarted"

# --- wait for the end -------------------------------------------------------
deadline=$(( T0 + DURATION + 60 ))
for p in "${PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 2; done
    kill -- "-$p" 2>/dev/null || true
done
log "all actors done"

kill -QUIT "$(cat "$T/nginx.pid")"
for _ in $(seq 100); do [ -f "$T/nginx.pid" ] || break; sleep 0.1; done
kill "$BACKEND_PID"; BACKEND_PID=

# --- write the corpus -------------------------------------------------------
mkdir -p "$OUT"
python3 "$HERE/convert_alb.py" < "$T/alb.raw.log" | gzip -9n > "$OUT/alb.log.gz"
gzip -9n < "$T/nginx.log" > "$OUT/nginx.log.gz"
cat "$LABELS" "$T/labels.users.tsv" > "$OUT/labels.tsv"
cp "$T/timeline.log" "$OUT/timeline.log"
grep -h "done:\|requests," "$T/tools/users.out" > "$OUT/users.summary" || true
log "wrote $OUT: $(gzip -dc "$OUT/alb.log.gz" | wc -l) ALB lines, $(gzip -dc "$OUT/nginx.log.gz" | wc -l) combined lines"
cp "$T/timeline.log" "$OUT/timeline.log"
echo "status histogram:" >&2
gzip -dc "$OUT/nginx.log.gz" | awk '{print $9}' | sort | uniq -c | sort -k2 >&2
