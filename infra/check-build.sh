#!/usr/bin/env bash
# What is deployed is what is tested: build the functions as `sam build`
# does for a deployment (x86_64 here, or ARCH=arm64), with the pinned
# tools, then run the Lambda tests against the built bootstraps
# (FAIL2WAF_FUNCTIONS_DIR): ingest, alarm (and GuardDuty), expire, through
# the Lambda Runtime API harness and moto. Prints the build time and the
# package sizes. Run from the repository root; docs/deploy.md explains it.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${ARCH:-x86_64}
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1
venv=target/build-venv
if ! "$venv/bin/python" -c '
import sys
from importlib.metadata import version
sys.exit(version("aws-sam-cli") != sys.argv[1] or version("cargo-lambda") != sys.argv[2] or version("ziglang") != sys.argv[3])
' "$SAM_CLI_VERSION" "$CARGO_LAMBDA_VERSION" "$ZIGLANG_VERSION" 2>/dev/null; then
  echo "== creating $venv (SAM CLI, cargo-lambda, zig; about a minute)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION"
fi
export PATH="$PWD/$venv/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true
case "$ARCH" in
  arm64) rustup target list --installed | grep -q aarch64-unknown-linux-gnu \
           || rustup target add aarch64-unknown-linux-gnu ;;
  x86_64) ;;
  *) echo "ARCH must be arm64 or x86_64" >&2; exit 2 ;;
esac

echo "== sam build (ARCH=$ARCH)"
rm -rf .aws-sam
start=$(date +%s)
ARCH=$ARCH sam build --build-in-source --template-file infra/template.yaml \
  --parameter-overrides "Architecture=$ARCH" >/tmp/fail2waf-sam-build.log 2>&1 \
  || { tail -40 /tmp/fail2waf-sam-build.log; exit 1; }
echo "   built in $(( $(date +%s) - start )) s"

echo "== packages"
python3 - .aws-sam/build <<'PY'
import io, os, subprocess, sys, zipfile
for f in ("IngestFunction", "AlarmFunction", "ExpireFunction"):
    b = os.path.join(sys.argv[1], f, "bootstrap")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(b, "bootstrap")
    kind = subprocess.run(["file", "-b", b], capture_output=True, text=True).stdout.split(",")
    print(f"   {f:<15} bootstrap {os.path.getsize(b) / 1e6:5.1f} MB, zipped {len(buf.getvalue()) / 1e6:4.1f} MB"
          f"  ({kind[1].strip()},{kind[-1].strip()})")
PY

runner=
if [ "$ARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  # Debian: apt-get install qemu-user libc6-arm64-cross
  if command -v qemu-aarch64 >/dev/null && [ -d /usr/aarch64-linux-gnu ]; then
    runner="qemu-aarch64 -L /usr/aarch64-linux-gnu"
  else
    echo "== arm64 bootstraps built; to run them here: apt-get install qemu-user libc6-arm64-cross"
    exit 0
  fi
fi
echo "== the built functions against moto, through the Lambda Runtime API${runner:+ (under $runner)}"
FAIL2WAF_FUNCTIONS_RUNNER="$runner" FAIL2WAF_FUNCTIONS_DIR="$PWD/.aws-sam/build" cargo test --test tests -- \
  aws::an_attack_spread_over_node_files aws::a_queue_batch_is_merged_once aws::a_batch_that_fails_for_want_of_a_fix aws::an_alarm_enters_incident_mode \
  aws::expire_removes_ended_blocks aws::an_ip_set_a_stack_update_emptied \
  users::guardduty_findings_block \
  users::a_user_waf_keeps_blocking 2>&1 | grep -E '^test |test result'
