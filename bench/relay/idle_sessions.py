#!/usr/bin/env python3
"""Memory per idle SMTP session of a running relay.

Opens N TCP sessions to 127.0.0.1:PORT, reads each greeting (the 220 line),
keeps them all open and silent, and reads the relay's memory (VmRSS from
/proc/PID/status, Pss from /proc/PID/smaps_rollup) before, with the N
sessions held, and after closing them:

  per session = (RSS with N sessions - RSS idle) / N

One JSON line per round on stdout (and appended to --results).
  ./idle_sessions.py --pid PID --port PORT [-n 5000] [--rounds 3] [--hold 3]
Loopback only; bounded by --timeout per round; closes only its own sockets.
"""
import argparse
import json
import re
import resource
import selectors
import socket
import time


def mem(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM", "VmData"):
                out[k] = int(v.split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                out["Pss"] = int(line.split()[1])
    return out


def open_sessions(port, n, timeout, ehlo=False):
    """connect n sockets (at most 200 connects in flight), read each 220 line
    (and with ehlo, send EHLO and read the whole 250 reply)"""
    sel = selectors.DefaultSelector()
    done, pending, greeted = [], 0, 0
    deadline = time.monotonic() + timeout
    i = 0
    bufs = {}
    while greeted < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {greeted}/{n} greetings within {timeout}s")
        while i < n and pending < 200:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            sel.register(s, selectors.EVENT_READ)
            bufs[s] = b""
            pending += 1
            i += 1
        for key, _ in sel.select(1.0):
            s = key.fileobj
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"session closed before its greeting ({greeted} greeted)")
            bufs[s] += chunk
            if b"\n" in bufs[s]:
                line = bufs[s].split(b"\n", 1)[0]
                if ehlo and line.startswith(b"220"):
                    bufs[s] = b""
                    s.sendall(b"EHLO idle.bench.invalid\r\n")
                    continue
                if ehlo:  # the EHLO reply: wait for its last line ("250 ...")
                    if not line.startswith(b"250"):
                        raise ConnectionError(f"EHLO reply {line!r} after {greeted} sessions")
                    if not re.search(rb"(^|\n)250 [^\n]*\n", bufs[s]):
                        continue
                elif not line.startswith(b"220"):
                    raise ConnectionError(f"greeting {line!r} after {greeted} sessions")
                sel.unregister(s)
                done.append(s)
                pending -= 1
                greeted += 1
    sel.close()
    return done


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--hold", type=float, default=3.0, help="seconds to hold the sessions before measuring")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--results")
    ap.add_argument("--label", default="idle-sessions")
    ap.add_argument("--ehlo", action="store_true", help="send EHLO after the greeting, then idle")
    a = ap.parse_args()
    if a.n > 20000:
        raise SystemExit("n <= 20000")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < a.n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.n + 1000), hard))
    for rnd in range(1, a.rounds + 1):
        time.sleep(a.hold)
        before = mem(a.pid)
        t0 = time.monotonic()
        socks = open_sessions(a.port, a.n, a.timeout, a.ehlo)
        t_open = time.monotonic() - t0
        time.sleep(a.hold)
        held = mem(a.pid)
        for s in socks:
            s.close()
        time.sleep(a.hold)
        after = mem(a.pid)
        res = {
            "label": a.label, "round": rnd, "sessions": a.n, "ehlo": a.ehlo, "open_s": round(t_open, 2),
            "idle": before, "held": held, "after_close": after,
            "rss_per_session_kib": round((held["VmRSS"] - before["VmRSS"]) / a.n, 2),
            "pss_per_session_kib": round((held["Pss"] - before["Pss"]) / a.n, 2),
            "anon_per_session_kib": round((held["RssAnon"] - before["RssAnon"]) / a.n, 2),
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        line = json.dumps(res)
        print(line, flush=True)
        if a.results:
            with open(a.results, "a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
