#!/usr/bin/env python3
"""Score any fail2waf binary's `detect` on the simulator's scenario families.

The families come from this checkout's `fail2waf simulate --family`; the
binary that detects can be another build (an older commit, a tuned config):

    python3 tools/score_families.py --bin /path/to/old/fail2waf [--seeds 20] [FAMILY ...]

Prints, per family, innocent actors blocked and attackers not blocked (here
an attacker an outage hid counts as missed; `cargo test --test tests
quality::every` tells the two apart). Extra `detect` arguments after `--`.
"""
import argparse, csv, ipaddress, json, os, shutil, subprocess, sys, tempfile

FAMILIES = ["route-outage", "app-outage", "site-outage", "flaky-route",
            "scanner-heavy", "nat", "cgnat", "thin-scan"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="the fail2waf binary whose detect is scored")
    ap.add_argument("--sim", default="target/debug/fail2waf", help="the binary that simulates (this checkout's)")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("families", nargs="*", default=FAMILIES)
    args, extra = ap.parse_known_args()
    extra = [a for a in extra if a != "--"]
    work = tempfile.mkdtemp(prefix="f2w-families-")
    try:
        for fam in args.families:
            innocent = missed = attackers = 0
            for seed in range(1, args.seeds + 1):
                d = os.path.join(work, f"{fam}-{seed}")
                subprocess.run([args.sim, "simulate", "--family", fam, "--seed", str(seed), "-o", d],
                               capture_output=True, check=True)
                out = subprocess.run([args.bin, "detect", "--json", *extra, d],
                                     capture_output=True, text=True, check=True).stdout
                blocks = [ipaddress.ip_network(json.loads(l)["ip"], strict=False)
                          for l in out.splitlines() if '"decision"' in l]
                actors = {}
                for r in csv.DictReader(open(os.path.join(d, "labels.csv"))):
                    actors.setdefault(r["actor"], (r["expect"], []))[1].append(ipaddress.ip_network(r["cidr"]))
                for expect, nets in actors.values():
                    hit = any(n.overlaps(b) for n in nets for b in blocks)
                    if expect == "allow":
                        innocent += hit
                    else:
                        attackers += 1
                        missed += not hit
                shutil.rmtree(d)
            print(f"{fam:<14} {args.seeds} seeds: innocent blocked {innocent}, attackers missed {missed} of {attackers}")
            sys.stdout.flush()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
