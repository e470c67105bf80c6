#!/usr/bin/env python3
"""One measured load run (copy of /work/shared/bench/loadrun.py; bench/relay adds
loadavg_start/_end, machine_cpu_ms_per_msg, --part and --log-count): smtp-source -> [relay on TARGET_PORT] -> smtp-sink.

Starts smtp-sink on 127.0.0.1:SINK_PORT (with its running counter, -c),
runs smtp-source against 127.0.0.1:TARGET_PORT, and waits until the sink has
received the expected number of messages. Prints one JSON object (and appends
it to --results) with:

  accept_s / accept_rate  time until smtp-source finished (all messages
                          accepted by the relay) and msgs/s on that basis
  e2e_s / e2e_rate        time until the sink had received every message
                          (end-to-end relay throughput, the headline number)
  relay_cpu_s             CPU seconds used by the relay: its cgroup
                          (--relay-cgroup, counts every process, also
                          double-forked ones) or else its process tree
                          (--relay-pid: live processes + reaped children)
  peak_rss_kib / peak_pss_kib / peak_procs
                          peak sum of RSS / PSS over the relay processes
                          (sampled every --sample-interval s; RSS counts
                          shared pages once per process, PSS splits them)
  delay_p50/p90/p99/max   per-message queue delay (arrival -> delivered, s)
                          parsed from --relay-log (Postfix delay=, Exim QT=)
  machine_cpu_ms_per_msg  CPU of the whole machine (all CPUs, /proc/stat: relay,
                          load generator, sink and anything else) per message,
                          from the start until the sink has everything (without
                          the --grace second); machine_cpu_busy_pct_run: the
                          same window in % of all CPUs
  loadgen_cpu_ms_per_msg  CPU of smtp-source, smtp-sink and this script per message
                          (so that machine - relay - loadgen = everything else)
  part_cpu_ms_per_msg     {NAME: ms} for every --part NAME=PID: the CPU of that
                          process tree alone (e.g. a milter inside the relay's
                          cgroup, so that its share can be shown apart)
  log_NAME                for every --log-count NAME=REGEX: lines of --relay-log
                          written during the run that match REGEX

If TARGET_PORT == SINK_PORT the sink itself is the target (baseline).
Everything is on 127.0.0.1; the run is bounded by --timeout seconds; only the
processes started here are stopped, by PID.
"""
import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

LOOPBACK = "127.0.0.1"
CLK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def port_open(port, timeout=0.5):
    s = socket.socket()
    s.settimeout(timeout)
    try:
        s.connect((LOOPBACK, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def proc_children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(root):
    kids = proc_children()
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def tree_cpu_ticks(root):
    """utime+stime+cutime+cstime summed over the live tree (ticks)."""
    total = 0
    for p in tree(root):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            # after ')' : state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14
            total += sum(int(x) for x in fields[11:15])
        except (OSError, ValueError, IndexError):
            pass
    return total


def cgroup_cpu_s(cg):
    """CPU seconds used so far by every process that ever ran in cgroup cg."""
    try:
        with open(os.path.join(cg, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
    except OSError:
        pass
    with open(os.path.join(cg, "cpuacct.usage")) as f:
        return int(f.read()) / 1e9


def cgroup_pids(cg):
    try:
        with open(os.path.join(cg, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def relay_pids(root, cg):
    pids = set(tree(root)) if root else set()
    if cg:
        pids.update(cgroup_pids(cg))
    return sorted(pids)


def loadavg():
    """the 1, 5 and 15 minute load averages (bench/relay addition)"""
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def machine_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


class Sampler(threading.Thread):
    """Samples sum(RSS) (cheap, every interval) and sum(PSS) (every 4th)."""

    def __init__(self, root, cg, interval):
        super().__init__(daemon=True)
        self.root, self.cg, self.interval = root, cg, interval
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = self.peak_procs = 0

    def run(self):
        n = 0
        while not self.stop.is_set():
            pids = relay_pids(self.root, self.cg)
            rss = 0
            for p in pids:
                try:
                    with open(f"/proc/{p}/statm") as f:
                        rss += int(f.read().split()[1]) * PAGE_KIB
                except (OSError, ValueError, IndexError):
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_procs = max(self.peak_procs, len(pids))
            if n % 4 == 0:
                pss = 0
                for p in pids:
                    try:
                        with open(f"/proc/{p}/smaps_rollup") as f:
                            for line in f:
                                if line.startswith("Pss:"):
                                    pss += int(line.split()[1])
                                    break
                    except (OSError, ValueError, IndexError):
                        pass
                self.peak_pss = max(self.peak_pss, pss)
            n += 1
            self.stop.wait(self.interval)


class SinkWatch(threading.Thread):
    """Reads smtp-sink -c output ("sess=N quit=N mesg=N\\r") and timestamps."""

    RX = re.compile(rb"mesg=(\d+)")

    def __init__(self, proc, expect):
        super().__init__(daemon=True)
        self.proc, self.expect = proc, expect
        self.count = 0
        self.t_first = self.t_done = None
        self.t_last = None
        self.done = threading.Event()

    def run(self):
        buf = b""
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            now = time.monotonic()
            buf += chunk
            parts = re.split(rb"[\r\n]", buf)
            buf = parts.pop()
            for part in parts:
                m = self.RX.search(part)
                if m:
                    c = int(m.group(1))
                    if c > self.count:
                        self.count = c
                        self.t_last = now
                        if self.t_first is None:
                            self.t_first = now
                        if c >= self.expect and self.t_done is None:
                            self.t_done = now
                            self.done.set()
        self.done.set()


def pct(sorted_vals, q):
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[i]


DUR_RX = re.compile(rb"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:([0-9.]+)s)?$")


def parse_dur(tok):
    """'0.12' (postfix), '1m2.5s' / '0.123s' (exim), '1s' -> seconds."""
    try:
        return float(tok)
    except ValueError:
        pass
    m = DUR_RX.match(tok)
    if not m or not any(m.groups()):
        return None
    d, h, mi, s = (float(x) if x else 0.0 for x in m.groups())
    return d * 86400 + h * 3600 + mi * 60 + s


def relay_delays(path, offset, fmt):
    """Per-delivery queue delay from the relay's log, written after offset.

    postfix: 'status=sent ... delay=S' (arrival -> delivered, seconds)
    exim:    '=> ... QT=<time>'        (arrival -> delivered)
    """
    vals, sent, other = [], 0, 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f:
                if fmt == "postfix":
                    if b" status=" not in line:
                        continue
                    if b" status=sent" not in line:
                        other += 1
                        continue
                    sent += 1
                    m = re.search(rb" delay=([0-9.]+)", line)
                elif fmt == "exim":
                    if b" ** " in line or b" == " in line:
                        other += 1
                        continue
                    if b" => " not in line:
                        continue
                    sent += 1
                    m = re.search(rb" QT=(\S+)", line)
                else:
                    return {}
                if m:
                    v = parse_dur(m.group(1))
                    if v is not None:
                        vals.append(v)
    except OSError:
        return {}
    vals.sort()
    return {
        "log_delivered": sent,
        "log_not_delivered": other,
        "delay_p50": pct(vals, 0.50),
        "delay_p90": pct(vals, 0.90),
        "delay_p99": pct(vals, 0.99),
        "delay_max": vals[-1] if vals else None,
    }


def loadgen_cpu_s():
    """CPU seconds of this script and of its reaped children (smtp-source, smtp-sink)"""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def log_counts(path, offset, specs):
    """{"log_NAME": lines written after offset that match REGEX} for NAME=REGEX"""
    rxs = []
    for kv in specs:
        name, _, rx = kv.partition("=")
        rxs.append(("log_" + name, re.compile(rx.encode())))
    out = {k: 0 for k, _ in rxs}
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            for line in f:
                for k, rx in rxs:
                    if rx.search(line):
                        out[k] += 1
    except OSError:
        return {}
    return out


def _terminate(signum, _frame):
    # turn TERM/INT/HUP into an exception so that the finally: below stops
    # the sink and the source that this run started
    raise SystemExit(128 + signum)


def main():
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _terminate)
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--label", default="run")
    ap.add_argument("--target-port", type=int, default=int(os.environ.get("TARGET_PORT", 2525)))
    ap.add_argument("--sink-port", type=int, default=int(os.environ.get("SINK_PORT", 2526)))
    ap.add_argument("--msgs", "-m", type=int, default=20000)
    ap.add_argument("--conc", "-s", type=int, default=50)
    ap.add_argument("--size", "-l", type=int, default=4096)
    ap.add_argument("--rcpts", "-r", type=int, default=1)
    ap.add_argument("--reuse", action="store_true", help="smtp-source -d")
    ap.add_argument("--from-addr", default="sender@target.example")
    ap.add_argument("--to-addr", default="rcpt@target.example")
    ap.add_argument("--expect", type=int, help="messages the sink must see (default: --msgs)")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--stall", type=float, default=60.0,
                    help="give up if the sink sees no progress for this long after the source ended")
    ap.add_argument("--grace", type=float, default=1.0,
                    help="seconds the sink stays up after the last message")
    ap.add_argument("--relay-pid", type=int, help="root PID of the relay's process tree")
    ap.add_argument("--relay-cgroup", help="cgroup holding every relay process: its CPU "
                    "counter is used, and its members are sampled for RSS/PSS")
    ap.add_argument("--sample-interval", type=float, default=0.25)
    ap.add_argument("--relay-log", "--maillog", dest="relay_log",
                    help="relay log to read per-message queue delays from")
    ap.add_argument("--log-format", default="postfix", choices=["postfix", "exim"],
                    help="format of --relay-log")
    ap.add_argument("--dump-dir", help="smtp-sink -d: dump every message into this directory")
    ap.add_argument("--smtp-source", default="/usr/sbin/smtp-source")
    ap.add_argument("--smtp-sink", default="/usr/sbin/smtp-sink")
    ap.add_argument("--results", help="append the JSON line to this file")
    ap.add_argument("--extra", action="append", default=[], help="key=value added to the JSON")
    ap.add_argument("--part", action="append", default=[],
                    help="NAME=PID: also report the CPU of this process tree alone")
    ap.add_argument("--log-count", action="append", default=[],
                    help="NAME=REGEX: count lines of --relay-log written during the run matching REGEX")
    a = ap.parse_args()

    expect = a.expect or a.msgs
    baseline = a.target_port == a.sink_port
    if port_open(a.sink_port):
        sys.exit(f"127.0.0.1:{a.sink_port} is already in use; stop it first")
    if not baseline and not port_open(a.target_port):
        sys.exit(f"nothing listens on 127.0.0.1:{a.target_port} (the relay under test)")

    sink_cmd = [a.smtp_sink, "-c"]
    if os.geteuid() == 0:
        sink_cmd += ["-u", "nobody"]
    if a.dump_dir:
        os.makedirs(a.dump_dir, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(a.dump_dir, 65534, -1)
        sink_cmd += ["-d", os.path.join(os.path.abspath(a.dump_dir), "%H%M%S.")]
    sink_cmd += [f"inet:{LOOPBACK}:{a.sink_port}", "1024"]

    src_cmd = [a.smtp_source, "-m", str(a.msgs), "-s", str(a.conc), "-l", str(a.size),
               "-r", str(a.rcpts), "-f", a.from_addr, "-t", a.to_addr, "-S", "bench",
               "-M", "bench-client.invalid"]
    if a.reuse:
        src_cmd.append("-d")
    src_cmd.append(f"inet:{LOOPBACK}:{a.target_port}")

    deadline = time.monotonic() + a.timeout
    sink = subprocess.Popen(sink_cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    watch = SinkWatch(sink, expect)
    watch.start()
    src = None
    sampler = None
    status = "ok"
    try:
        for _ in range(100):
            if port_open(a.sink_port, 0.2) or sink.poll() is not None:
                break
            time.sleep(0.05)
        if sink.poll() is not None or not port_open(a.sink_port):
            raise RuntimeError("smtp-sink did not start")

        log_off = os.path.getsize(a.relay_log) if a.relay_log and os.path.exists(a.relay_log) else 0
        def relay_cpu():
            if a.relay_cgroup:
                return cgroup_cpu_s(a.relay_cgroup)
            if a.relay_pid:
                return tree_cpu_ticks(a.relay_pid) / CLK
            return None

        parts = []
        for kv in a.part:
            name, _, pid = kv.partition("=")
            parts.append((name, int(pid)))
        part0 = {n: tree_cpu_ticks(p) for n, p in parts}
        cpu0 = relay_cpu()
        gen0 = loadgen_cpu_s()
        busy0, tot0 = machine_busy()
        load0 = loadavg()
        if a.relay_pid or a.relay_cgroup:
            sampler = Sampler(a.relay_pid, a.relay_cgroup, a.sample_interval)
            sampler.start()

        t0 = time.monotonic()
        src = subprocess.Popen(src_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            _, src_err = src.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.kill(src.pid, signal.SIGKILL)
            _, src_err = src.communicate()
            status = "timeout(source)"
        t_src = time.monotonic()
        src_rc = src.returncode

        # wait for the sink to see everything (bounded by deadline and stall)
        while not watch.done.is_set():
            now = time.monotonic()
            if now >= deadline:
                status = "timeout(sink)"
                break
            last = watch.t_last or t_src
            if now - max(last, t_src) > a.stall:
                status = "stalled(sink)"
                break
            watch.done.wait(0.2)
        t_end = time.monotonic()
        busy_end, tot_end = machine_busy()  # the run itself, without the grace below
        # keep the sink up a little longer: it counts a message when "." arrives,
        # before it answers 250; stopping it at once would make the relay retry
        time.sleep(a.grace)

        busy1, tot1 = machine_busy()
        cpu1 = relay_cpu()
        gen1 = loadgen_cpu_s()
        part1 = {n: tree_cpu_ticks(p) for n, p in parts}
    finally:
        if sampler:
            sampler.stop.set()
        if src and src.poll() is None:
            os.kill(src.pid, signal.SIGKILL)
            src.wait()
        if sink.poll() is None:
            os.kill(sink.pid, signal.SIGTERM)
            try:
                sink.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(sink.pid, signal.SIGKILL)
                sink.wait()
        watch.join(2)

    if src_rc != 0 and status == "ok":
        status = f"source_rc={src_rc}"
    t_done = watch.t_done or t_end
    res = {
        "label": a.label,
        "status": status,
        "target_port": a.target_port,
        "sink_port": a.sink_port,
        "msgs": a.msgs, "conc": a.conc, "size": a.size, "rcpts": a.rcpts,
        "reuse": a.reuse,
        "sink_count": watch.count,
        "accept_s": round(t_src - t0, 3),
        "accept_rate": round(a.msgs / (t_src - t0), 1) if t_src > t0 else None,
        "e2e_s": round(t_done - t0, 3),
        "e2e_rate": round(watch.count / (t_done - t0), 1) if t_done > t0 else None,
        "machine_cpu_busy_pct": round(100.0 * (busy1 - busy0) / max(1, tot1 - tot0), 1),
        "machine_cpu_busy_pct_run": round(100.0 * (busy_end - busy0) / max(1, tot_end - tot0), 1),
        "machine_cpu_ms_per_msg": round(1000.0 * (busy_end - busy0) / CLK / max(1, watch.count), 3),
        "ncpu": os.cpu_count(),
        # smtp-source + smtp-sink (reaped children) + this script
        "loadgen_cpu_ms_per_msg": round(1000.0 * (gen1 - gen0) / max(1, watch.count), 3),
        "loadavg_start": load0,
        "loadavg_end": loadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if cpu0 is not None:
        res["relay_cpu_s"] = round(cpu1 - cpu0, 2)
        res["relay_cpu_ms_per_msg"] = round(1000.0 * (cpu1 - cpu0) / max(1, watch.count), 3)
        res["relay_cpu_from"] = "cgroup" if a.relay_cgroup else "process-tree"
    if sampler:
        res["peak_rss_kib"] = sampler.peak_rss
        res["peak_pss_kib"] = sampler.peak_pss
        res["peak_procs"] = sampler.peak_procs
    if parts:
        res["part_cpu_ms_per_msg"] = {n: round(1000.0 * (part1[n] - part0[n]) / CLK / max(1, watch.count), 3)
                                      for n, _ in parts}
    if a.relay_log:
        time.sleep(0.5)  # let the logger flush the last lines
        res.update(relay_delays(a.relay_log, log_off, a.log_format))
        if a.log_count:
            res.update(log_counts(a.relay_log, log_off, a.log_count))
    if src_err:
        res["source_stderr"] = src_err.decode(errors="replace").strip()[-300:]
    for kv in a.extra:
        k, _, v = kv.partition("=")
        res[k] = v
    line = json.dumps(res, sort_keys=False)
    print(line, flush=True)
    if a.results:
        os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
        with open(a.results, "a") as f:
            f.write(line + "\n")
    sys.exit(0 if status == "ok" else 1)


if __name__ == "__main__":
    main()
