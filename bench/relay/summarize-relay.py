#!/usr/bin/env python3
"""Tables for docs/BENCHMARKS.md "Relay throughput (issue: coexd)".

Reads loadrun.py's JSON lines and prints, per scenario (sessions), the medians
of 3 runs (e2e and accept msg/s, relay CPU ms/msg, peak PSS/RSS), the load
average at the start of every run, then coexd's ratios against Postfix and
against the no-relay baseline, checked against the issue's targets:
  e2e >= 5x Postfix, e2e >= 50% of no relay, CPU/msg <= 1/10 of Postfix's,
  peak PSS <= 1/10 of Postfix's.

  ./summarize-relay.py RESULTS.jsonl [--since ISO-TIME] [--coexd LABEL]
"""
import argparse
import json
import statistics
from collections import OrderedDict


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def f0(v):
    return "-" if v is None else f"{v:,.0f}"


def f2(v):
    return "-" if v is None else f"{v:.2f}"


def mib(kib):
    return "-" if kib is None else f"{kib / 1024:.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--since")
    ap.add_argument("--postfix", default="postfix-canonical-hash")
    ap.add_argument("--baseline", default="baseline")
    a = ap.parse_args()
    groups, bad = OrderedDict(), []
    for line in open(a.file):
        if not line.strip():
            continue
        r = json.loads(line)
        if a.since and r.get("time", "") < a.since:
            continue
        if r["label"].endswith(("-warmup", "-verify")):
            continue
        if r.get("status") != "ok":
            bad.append(r)
            continue
        groups.setdefault((r["conc"], r["label"]), []).append(r)

    summary = {}
    print("| sessions | relay | runs | e2e msg/s median | e2e min-max | accept msg/s median "
          "| relay CPU ms/msg | peak PSS MiB | peak RSS sum MiB | load avg (1 min) at start of each run "
          "| machine busy % |")
    print("|---:|---|---:|---:|---|---:|---:|---:|---:|---|---:|")
    for (conc, label), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != a.baseline,
                                                                       kv[0][1] != a.postfix, kv[0][1])):
        e2e = [r["e2e_rate"] for r in runs]
        m = {
            "e2e": med(e2e),
            "accept": med(r["accept_rate"] for r in runs),
            "cpu": med(r.get("relay_cpu_ms_per_msg") for r in runs),
            "pss": med(r.get("peak_pss_kib") for r in runs),
            "rss": med(r.get("peak_rss_kib") for r in runs),
        }
        summary[(conc, label)] = m
        loads = ", ".join(f"{r['loadavg_start'][0]:.2f}" for r in runs if r.get("loadavg_start"))
        print(f"| {conc} | {label} | {len(runs)} | **{f0(m['e2e'])}** | {f0(min(e2e))}-{f0(max(e2e))} "
              f"| {f0(m['accept'])} | {f2(m['cpu'])} "
              f"| {mib(m['pss'])} | {mib(m['rss'])} "
              f"| {loads} | {f0(med(r.get('machine_cpu_busy_pct') for r in runs))} |")
    print()
    print("| sessions | relay | e2e vs Postfix (target ≥ 5×) | e2e vs no relay (target ≥ 50 %) "
          "| accept vs Postfix | CPU/msg vs Postfix (target ≤ 0.10) | peak PSS vs Postfix (target ≤ 0.10) |")
    print("|---:|---|---|---|---:|---|---|")
    for (conc, label), m in summary.items():
        if label in (a.postfix, a.baseline):
            continue
        pf, bl = summary.get((conc, a.postfix)), summary.get((conc, a.baseline))

        def ratio(x, y, fmt, ok):
            if x is None or y is None or not y:
                return "-"
            v = x / y
            return f"{fmt(v)} {'✔' if ok(v) else '✘'}"
        print(f"| {conc} | {label} "
              f"| {ratio(m['e2e'], pf and pf['e2e'], lambda v: f'{v:.1f}×', lambda v: v >= 5)} "
              f"| {ratio(m['e2e'], bl and bl['e2e'], lambda v: f'{100 * v:.0f} %', lambda v: v >= 0.5)} "
              f"| {ratio(m['accept'], pf and pf['accept'], lambda v: f'{v:.1f}×', lambda v: True).rstrip(' ✔')} "
              f"| {ratio(m['cpu'], pf and pf['cpu'], lambda v: f'{v:.3f} (1/{1 / v:.0f})', lambda v: v <= 0.1)} "
              f"| {ratio(m['pss'], pf and pf['pss'], lambda v: f'{v:.3f} (1/{1 / v:.0f})', lambda v: v <= 0.1)} |")
    if bad:
        print("\nRuns not counted (status not ok):\n")
        for r in bad:
            print(f"- {r.get('time')} {r['label']} s={r['conc']}: {r['status']}, sink got {r.get('sink_count')}"
                  + (f", source: {r['source_stderr']}" if r.get("source_stderr") else ""))


if __name__ == "__main__":
    main()
