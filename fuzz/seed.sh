#!/bin/sh
# Build the seed corpora in fuzz/seeds/<target>/ from the repository's
# fixtures. Run from anywhere; re-running replaces the seeds.
# cargo fuzz run <t> fuzz/seeds/<t> reads them (see README.md); new inputs
# libFuzzer finds go to fuzz/corpus/<t>/ (not committed).
set -eu
cd "$(dirname "$0")/.."
F=tests/fixtures
S=fuzz/seeds
rm -rf "$S"
for t in alb waf cloudfront pattern json config events pipeline state; do mkdir -p "$S/$t"; done

# put TARGET FILE: copy FILE (gunzipped when it is gzip) as a seed named
# after its path.
put() {
    name=$(printf '%s' "$2" | sed 's|^tests/fixtures/||; s|[/ ]|_|g; s|\.gz$||')
    case "$2" in
        *.gz) gzip -dc "$2" > "$S/$1/$name" ;;
        *) cp "$2" "$S/$1/$name" ;;
    esac
}

# split TARGET: turn each whole-file seed of TARGET into one seed per
# distinct line (small inputs run fast; libFuzzer splices them together).
split() {
    for f in "$S/$1"/*; do
        n=0
        # shellcheck disable=SC2034
        sort -u "$f" | while IFS= read -r line || [ -n "$line" ]; do
            n=$((n + 1))
            printf '%s\n' "$line" > "$f.$n"
        done
        rm "$f"
    done
}

# The pipeline gets whole files; the line parsers get lines, except
# CloudFront, whose parser maps columns by the file's `#Fields` header:
# a header and the first few records of each file.
for f in $(find $F/alb $F/alb_connection -type f | sort); do put alb "$f"; put pipeline "$f"; done
for f in $(find $F/waf -type f | sort); do put waf "$f"; put pipeline "$f"; done
for f in $(find $F/applog -type f | sort); do put pattern "$f"; put pipeline "$f"; done
split alb
split waf
split pattern
for f in $(find $F/cloudfront -type f | sort); do
    put pipeline "$f"
    name=$(basename "$(ls -t "$S/pipeline" | head -1)")
    head -n 6 "$S/pipeline/$name" > "$S/cloudfront/$name"
done
for f in $(find $F/events -type f -name '*.json' | sort); do put events "$f"; done
for f in tests/data/guardduty/*.json; do put events "$f"; done
# json: application log lines (Fluent Bit, Firehose, ECS shapes), one seed
# per line and the file whole.
n=0
while IFS= read -r line; do
    n=$((n + 1)); printf '%s\n' "$line" > "$S/json/line-$n.log"
done < tests/data/json/app-lines.log
cp tests/data/json/app-lines.log "$S/json/app-lines.log"
put config examples/fail2waf.toml

# Configs that exercise user formats and rules (from docs/configuration.md
# shapes): a user-defined format, a custom rule, the safety settings.
cat > "$S/config/custom.toml" <<'TOML'
bucket = "10s"
allow = ["192.0.2.0/24"]
trusted_proxies = ["10.0.0.0/8"]
max_prefix_v4 = 24
max_prefix_v6 = 48

[formats.edge]
regex = '^(?P<host>\S+) (?P<ip>\S+) \[(?P<time>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d+) "(?P<user_agent>[^"]*)" "(?P<xff>[^"]*)"$'
time_format = "iso8601"

[[rules]]
name = "login"
status = ["401", "403"]
methods = ["POST"]
path = '^/login'
window = "5m"
threshold = 10
min_ratio = 0.3

[[rules]]
name = "net"
status = ["4xx"]
exclude_status = ["429"]
key = "prefix"
prefix_v4 = 24
prefix_v6 = 48
min_members = 6
window = "5m"
threshold = 120
distinct_paths = 50
ban = "1h"
ban_factor = 2.0
ban_max = "7d"
TOML
cat > "$S/config/rule.toml" <<'TOML'
name = "fuzz-5xx"
status = ["5xx"]
window = "2m"
threshold = 10
distinct_paths = 5
distinct_include_query = true
outage_aware = true
TOML

# The first 40 lines of each of the bundled sample's first files, plain
# and gzip (the pipeline detects gzip by its magic bytes).
for f in $(ls examples/alb/*.log.gz | head -3); do
    b=$(basename "$f" .log.gz | cut -c1-60)
    gzip -dc "$f" | head -n 40 > "$S/alb/example_$b"
    cp "$S/alb/example_$b" "$S/pipeline/example_$b"
    gzip -9nc "$S/alb/example_$b" > "$S/pipeline/example_$b.gz"
done
# Gzip as delivered: multi-member and CloudFront's.
cp $F/alb/synthesized/awsdocs_examples_2023_multimember.log.gz "$S/pipeline/multimember.gz"
cp $F/cloudfront/synthesized_EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz "$S/pipeline/cloudfront.gz"

# Stored state: the windows and the ledger the CLI keeps after the bundled
# sample's first six files (blocks, history), and with a manual block.
st=$(mktemp -d)
cargo run -q --bin fail2waf -- detect --state "$st" $(ls examples/alb/*.log.gz | head -6) > /dev/null || true
# (eight keys of it: seeds under libFuzzer's -max_len)
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d["keys"]=dict(list(d["keys"].items())[:8]); json.dump(d,open(sys.argv[2],"w"))' \
    "$st/state.json" "$S/state/state.json"
cp "$st/ledger.json" "$S/state/ledger.json"
cargo run -q --bin fail2waf -- block 192.0.2.0/24 --state "$st" --ttl 1h --now 2026-01-01T00:20:00Z --reason seed > /dev/null 2>&1 &&
    cp "$st/ledger.json" "$S/state/ledger-manual.json"
rm -rf "$st"

du -sh "$S"
for t in "$S"/*; do echo "$(basename "$t"): $(ls "$t" | wc -l) seeds"; done
