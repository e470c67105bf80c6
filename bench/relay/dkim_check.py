#!/usr/bin/python3
"""Check the DKIM signatures of the messages an smtp-sink dumped (smtp-sink -d).

Run under /usr/bin/python3: it needs Debian's dkimpy (python3-dkim).

For every file in --dir: the message (the sink's X-*-Args and Received lines
on top are left in place: they are not signed), its DKIM-Signature fields and
their d=, s=, a=, c=, whether From was rewritten to @source.example, and,
with --key, a full dkimpy verification (body hash + RSA signature) against
the public half of that private key, served to dkimpy as the TXT record of
SELECTOR._domainkey.DOMAIN (no DNS).

  --expect signed    every message must carry a DKIM-Signature for --domain /
                     --selector that dkimpy verifies, and --count messages
                     must have arrived
  --expect unsigned  no message may carry a DKIM-Signature

Prints one JSON line (appended to --results) and exits 0 when the
expectation holds, 1 otherwise.
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import time

import dkim


def pubkey_record(keyfile):
    der = subprocess.run(["openssl", "pkey", "-in", keyfile, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def header_fields(msg):
    """[(name, unfolded value)] of the header block of a CRLF message"""
    head = msg.split(b"\r\n\r\n", 1)[0]
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b" " + line.strip()
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append([name.strip().lower(), value.strip()])
    return fields


def tags(value):
    out = {}
    for part in re.sub(rb"\s+", b"", value).split(b";"):
        k, eq, v = part.partition(b"=")
        if eq:
            out[k.decode()] = v.decode(errors="replace")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--expect", choices=["signed", "unsigned"], required=True)
    ap.add_argument("--count", type=int, help="messages that must have arrived")
    ap.add_argument("--domain", default="source.example")
    ap.add_argument("--selector", default="bench")
    ap.add_argument("--key", help="the private key (PEM) the relay signs with")
    ap.add_argument("--verify", type=int, default=0, help="verify at most this many (0 = all)")
    ap.add_argument("--label", default="relay")
    ap.add_argument("--conc", type=int)
    ap.add_argument("--results")
    a = ap.parse_args()

    record = pubkey_record(a.key) if a.key else None
    want_name = f"{a.selector}._domainkey.{a.domain}.".encode()

    def dnsfunc(name, timeout=5):
        n = name if isinstance(name, bytes) else name.encode()
        if not n.endswith(b"."):
            n += b"."
        return record if record and n.lower() == want_name.lower() else None

    files = sorted(os.listdir(a.dir)) if os.path.isdir(a.dir) else []
    r = {"label": a.label, "expect": a.expect, "conc": a.conc, "files": len(files),
         "with_signature": 0, "right_d_s": 0, "rsa_sha256": 0, "canon": {}, "signatures_per_msg": {},
         "from_rewritten": 0, "verified": 0, "verify_failed": 0, "verify_tried": 0,
         "sample_signature": None, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
    fail_examples = []
    for fn in files:
        with open(os.path.join(a.dir, fn), "rb") as f:
            raw = f.read()
        msg = re.sub(rb"\r?\n", b"\r\n", raw)
        fields = header_fields(msg)
        sigs = [v for n, v in fields if n == b"dkim-signature"]
        froms = [v for n, v in fields if n == b"from"]
        if froms and b"@source.example" in froms[0].lower():
            r["from_rewritten"] += 1
        k = str(len(sigs))
        r["signatures_per_msg"][k] = r["signatures_per_msg"].get(k, 0) + 1
        if not sigs:
            continue
        r["with_signature"] += 1
        t = tags(sigs[0])
        if r["sample_signature"] is None:
            r["sample_signature"] = {x: t.get(x) for x in ("v", "a", "c", "d", "s", "h")}
        if any(tags(s).get("d", "").lower() == a.domain.lower() and tags(s).get("s") == a.selector for s in sigs):
            r["right_d_s"] += 1
        if t.get("a") == "rsa-sha256":
            r["rsa_sha256"] += 1
        c = t.get("c", "simple/simple")
        r["canon"][c] = r["canon"].get(c, 0) + 1
        if record and (a.verify == 0 or r["verify_tried"] < a.verify):
            r["verify_tried"] += 1
            try:
                ok = dkim.verify(msg, dnsfunc=dnsfunc, minkey=2048)
            except Exception as e:  # dkimpy raises on malformed input
                ok = False
                fail_examples.append(f"{fn}: {e}")
            if ok:
                r["verified"] += 1
            else:
                r["verify_failed"] += 1
                if len(fail_examples) < 3:
                    fail_examples.append(f"{fn}: dkim.verify returned False")
    problems = []
    if a.count is not None and len(files) != a.count:
        problems.append(f"{len(files)} messages arrived, {a.count} expected")
    if a.expect == "signed":
        if r["with_signature"] != len(files):
            problems.append(f"{len(files) - r['with_signature']} messages without DKIM-Signature")
        if r["right_d_s"] != len(files):
            problems.append(f"{len(files) - r['right_d_s']} messages without a signature for "
                            f"d={a.domain} s={a.selector}")
        if record and r["verified"] != r["verify_tried"]:
            problems.append(f"{r['verify_failed']} of {r['verify_tried']} signatures did not verify")
        if not files:
            problems.append("no message arrived")
    else:
        if r["with_signature"]:
            problems.append(f"{r['with_signature']} messages carry a DKIM-Signature")
    if r["from_rewritten"] != len(files):
        problems.append(f"{len(files) - r['from_rewritten']} messages with From not rewritten")
    r["status"] = "ok" if not problems else "FAIL: " + "; ".join(problems)
    if fail_examples:
        r["fail_examples"] = fail_examples[:3]
    line = json.dumps(r)
    print(line, flush=True)
    print(f"dkim check {a.label}: {r['status']}: {len(files)} messages, {r['with_signature']} signed, "
          f"{r['right_d_s']} with d={a.domain} s={a.selector}, verified {r['verified']}/{r['verify_tried']}, "
          f"From rewritten {r['from_rewritten']}", file=sys.stderr)
    if a.results:
        os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
        with open(a.results, "a") as f:
            f.write(line + "\n")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
