#!/usr/bin/env python3
"""Tables for docs/BENCHMARKS.md "Relay with DKIM signing" (run-relay-dkim.sh).

Reads RESULTS/results.jsonl (loadrun.py), RESULTS/dkimcheck.jsonl
(dkim_check.py) and RESULTS/rsa.jsonl (the RSA-2048 cost measured in the same
run) and prints, per scenario (sessions):

1. medians per relay: e2e msg/s, accept msg/s, relay CPU ms/msg (opendkim's
   share apart), machine CPU ms/msg, peak PSS, load; the DKIM checks
2. the cost of one RSA-2048 signature (openssl speed; coexctl dkim bench)
3. the ratios against the issue's targets:
   - coexd-sign e2e >= 5x postfix-opendkim e2e
   - signing may lower coexd's throughput by no more than the CPU the RSA
     operation costs: the CPU per message added by signing (coexd-sign minus
     coexd-nosign) against one signature's cost, and the throughput with
     signing against the "RSA floor" 1 / (1/R_nosign + t_sign), the rate left
     if every message took one signature's time longer on one serial path
     (the most lenient reading: two cores could hide half of it), and the
     "CPU ceiling" N / (M + t): N CPUs, M the machine's CPU per message without
     signing (relay, load generator, sink, everything), t one signature: the
     rate if the whole machine were CPU-bound and signing added exactly t

  ./summarize-dkim.py RESULTS_DIR [--since ISO-TIME]
"""
import argparse
import json
import os
import statistics
from collections import OrderedDict

ORDER = ["baseline", "coexd-nosign", "coexd-sign", "coexd-sign-w1", "coexd-sign-w2", "coexd-sign-w4",
         "postfix-canonical-hash", "postfix-opendkim"]
NAMES = {
    "baseline": "no relay",
    "coexd-nosign": "coexd, rewrite only",
    "coexd-sign": "coexd, rewrite + rsa-2048 signing",
    "coexd-sign-w1": "coexd-sign, dkim_workers = 1",
    "coexd-sign-w2": "coexd-sign, dkim_workers = 2 (explicit)",
    "coexd-sign-w4": "coexd-sign, dkim_workers = 4",
    "postfix-canonical-hash": "Postfix canonical_maps, no milter",
    "postfix-opendkim": "Postfix canonical_maps + opendkim milter",
}


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def f0(v):
    return "-" if v is None else f"{v:,.0f}"


def f2(v):
    return "-" if v is None else f"{v:.2f}"


def f3(v):
    return "-" if v is None else f"{v:.3f}"


def read(path, since):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path):
        if line.strip():
            r = json.loads(line)
            if not since or r.get("time", "") >= since:
                out.append(r)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results_dir")
    ap.add_argument("--since")
    a = ap.parse_args()
    runs = read(os.path.join(a.results_dir, "results.jsonl"), a.since)
    checks = read(os.path.join(a.results_dir, "dkimcheck.jsonl"), a.since)
    rsa = read(os.path.join(a.results_dir, "rsa.jsonl"), a.since)

    groups, bad = OrderedDict(), []
    for r in runs:
        if r["label"].endswith(("-warmup", "-verify", "-dkimcheck")) or r["label"] == "msgcap":
            continue
        if r.get("status") != "ok":
            bad.append(r)
            continue
        groups.setdefault((r["conc"], r["label"]), []).append(r)

    # --- RSA cost -------------------------------------------------------------
    ms_sign = [1000.0 / r["openssl_rsa2048_sign_per_s"] for r in rsa if r.get("openssl_rsa2048_sign_per_s")]
    ms_bench = [1000.0 / r["coexctl_dkim_bench_msg_per_cpu_s"] for r in rsa
                if r.get("coexctl_dkim_bench_msg_per_cpu_s")]
    t_rsa, t_bench = med(ms_sign), med(ms_bench)
    print("RSA-2048 signature cost, one core, measured before and after every round:\n")
    print("| round | `openssl speed -seconds 3 rsa2048` sign/s | ms per signature "
          "| `coexctl dkim bench` msg/s per CPU s | ms per signed message | load avg (1 min) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rsa:
        s, b = r.get("openssl_rsa2048_sign_per_s"), r.get("coexctl_dkim_bench_msg_per_cpu_s")
        print(f"| {r['rep']} {r.get('when', '')} | {s:,.1f} | {f3(1000 / s if s else None)} | {b:,.1f} "
              f"| {f3(1000 / b if b else None)} | {r['loadavg'][0]:.2f} |")
    print(f"| **median** | | **{f3(t_rsa)}** | | **{f3(t_bench)}** | |")
    print()

    # --- per relay --------------------------------------------------------------
    summary = {}
    print("| sessions | relay | runs | e2e msg/s median | e2e min-max | accept msg/s "
          "| relay CPU ms/msg | of which opendkim | smtp-source + smtp-sink ms/msg "
          "| machine CPU ms/msg (all processes) | of which other processes | machine busy % "
          "| peak PSS MiB | load avg (1 min) at start of each run |")
    print("|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    keys = sorted(groups, key=lambda k: (k[0], ORDER.index(k[1]) if k[1] in ORDER else 99, k[1]))
    for conc, label in keys:
        rs = groups[(conc, label)]
        e2e = [r["e2e_rate"] for r in rs]
        m = {
            "e2e": med(e2e),
            "accept": med(r["accept_rate"] for r in rs),
            "cpu": med(r.get("relay_cpu_ms_per_msg") for r in rs),
            "odk": med((r.get("part_cpu_ms_per_msg") or {}).get("opendkim") for r in rs),
            "mcpu": med(r.get("machine_cpu_ms_per_msg") for r in rs),
            "gen": med(r.get("loadgen_cpu_ms_per_msg") for r in rs),
            "other": med(r["machine_cpu_ms_per_msg"] - r.get("relay_cpu_ms_per_msg", 0) - r["loadgen_cpu_ms_per_msg"]
                         for r in rs if "loadgen_cpu_ms_per_msg" in r),
            "busy": med(r.get("machine_cpu_busy_pct_run", r.get("machine_cpu_busy_pct")) for r in rs),
            "pss": med(r.get("peak_pss_kib") for r in rs),
            "ncpu": med(r.get("ncpu") for r in rs),
        }
        summary[(conc, label)] = m
        loads = ", ".join(f"{r['loadavg_start'][0]:.2f}" for r in rs if r.get("loadavg_start"))
        pss = "-" if m["pss"] is None else f"{m['pss'] / 1024:.1f}"
        print(f"| {conc} | {NAMES.get(label, label)} | {len(rs)} | **{f0(m['e2e'])}** | {f0(min(e2e))}-{f0(max(e2e))} "
              f"| {f0(m['accept'])} | {f2(m['cpu'])} | {f2(m['odk'])} | {f2(m['gen'])} | {f2(m['mcpu'])} "
              f"| {f2(m['other'])} | {f0(m['busy'])} "
              f"| {pss} | {loads} |")
    print()

    # --- signatures really there -------------------------------------------------
    print("DKIM checks (after every measured run, same relay instance; dkimpy verification):\n")
    print("| sessions | relay | checks | messages | with DKIM-Signature | d=/s= right | verified by dkimpy "
          "| From rewritten | status | relay log over the measured runs: coexd's `dkim: signed` / messages, `not signed`; "
          "error/warning lines |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    cgroups = OrderedDict()
    for c in checks:
        cgroups.setdefault((c.get("conc"), c["label"]), []).append(c)
    for (conc, label), cs in sorted(cgroups.items(), key=lambda kv: (kv[0][0] or 0, ORDER.index(kv[0][1])
                                                                      if kv[0][1] in ORDER else 99)):
        tot = lambda k: sum(c.get(k, 0) for c in cs)  # noqa: E731
        st = "all ok" if all(c["status"] == "ok" for c in cs) else "; ".join(
            c["status"] for c in cs if c["status"] != "ok")
        logcol = "-"
        rs = groups.get((conc, label), [])
        if rs and any("log_dkim_signed" in r for r in rs):
            logcol = (f"{sum(r.get('log_dkim_signed', 0) for r in rs):,} / {sum(r['sink_count'] for r in rs):,}, "
                      f"{sum(r.get('log_dkim_unsigned', 0) for r in rs)}, ")
        elif rs:
            logcol = "-, -, "
        if rs:
            logcol += str(sum(r.get("log_errors", 0) for r in rs)) if any("log_errors" in r for r in rs) else "-"
        print(f"| {conc} | {NAMES.get(label, label)} | {len(cs)} | {tot('files'):,} | {tot('with_signature'):,} "
              f"| {tot('right_d_s'):,} | {tot('verified'):,} / {tot('verify_tried'):,} | {tot('from_rewritten'):,} "
              f"| {st} | {logcol} |")
    sample = next((c["sample_signature"] for c in checks if c.get("sample_signature")
                   and c["label"] == "coexd-sign"), None)
    sample_o = next((c["sample_signature"] for c in checks if c.get("sample_signature")
                     and c["label"] == "postfix-opendkim"), None)
    if sample or sample_o:
        print()
        for who, s in (("coexd", sample), ("opendkim", sample_o)):
            if s:
                print(f"- {who} signs: a={s['a']} c={s['c']} d={s['d']} s={s['s']} h={s['h']}")
    print()

    # --- ratios -------------------------------------------------------------------
    print("| sessions | coexd-sign ÷ postfix+opendkim, e2e (target ≥ 5×) "
          "| CPU/msg, postfix+opendkim ÷ coexd-sign | coexd: CPU/msg added by signing "
          "| one RSA-2048 signature (openssl) / signed message (dkim bench) | added CPU ÷ signature cost "
          "| coexd e2e: nosign → sign | RSA floor 1/(1/R + t) | sign ÷ floor (target ≥ 1) "
          "| CPU ceiling N/(M + t) | sign ÷ ceiling |")
    print("|---:|---|---:|---:|---|---|---|---:|---|---:|---:|")
    for conc in sorted({k[0] for k in summary}):
        s, ns, po = (summary.get((conc, x)) for x in ("coexd-sign", "coexd-nosign", "postfix-opendkim"))
        if not s:
            continue
        r5 = s["e2e"] / po["e2e"] if po and po["e2e"] else None
        cpu_ratio = po["cpu"] / s["cpu"] if po and po["cpu"] and s["cpu"] else None
        delta = s["cpu"] - ns["cpu"] if ns and s["cpu"] is not None and ns["cpu"] is not None else None
        floor = 1000.0 / (1000.0 / ns["e2e"] + t_rsa) if ns and ns["e2e"] and t_rsa else None
        r5s = "-" if r5 is None else f"**{r5:.1f}×** " + ("✔" if r5 >= 5 else "✘")
        cpus = "-" if cpu_ratio is None else f"{cpu_ratio:.0f}×"
        dratio = "-" if delta is None or not t_rsa else f"{delta / t_rsa:.2f} / {delta / t_bench:.2f}"
        drop = "-" if not ns else f"{100 * s['e2e'] / ns['e2e']:.0f} %"
        ceil = (1000.0 * ns["ncpu"] / (ns["mcpu"] + t_rsa)) if ns and ns["mcpu"] and ns["ncpu"] and t_rsa else None
        cs = "-" if ceil is None else f"{s['e2e'] / ceil:.2f}"
        fl = "-" if floor is None else f"**{s['e2e'] / floor:.2f}** " + ("✔" if s["e2e"] >= floor else "✘")
        print(f"| {conc} | {r5s} | {cpus} | {f3(delta)} ms | {f3(t_rsa)} ms / {f3(t_bench)} ms | {dratio} "
              f"| {f0(ns and ns['e2e'])} → {f0(s['e2e'])} ({drop}) | {f0(floor)} | {fl} | {f0(ceil)} | {cs} |")
    if bad:
        print("\nRuns not counted (status not ok):\n")
        for r in bad:
            print(f"- {r.get('time')} {r['label']} s={r['conc']}: {r['status']}, sink got {r.get('sink_count')}"
                  + (f", source: {r['source_stderr']}" if r.get("source_stderr") else ""))


if __name__ == "__main__":
    main()
