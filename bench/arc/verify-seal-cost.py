"""coexd's CPU per message: DKIM signing alone vs incoming verification + signing + ARC sealing.

The message is what Exchange Online sends: signed by the sender's domain
(rsa-2048, relaxed/relaxed, dkimpy) and sealed once upstream (ARC i=1,
dkimpy). Keys come from a loopback DNS server (tests/integration/dnsserver.py).
coexd (build/bin/coexd, the release build) relays N messages over SESS
sessions to Postfix's smtp-sink; CPU is coexd's utime+stime from /proc, read
before and after (a warm-up of 20 messages first: key caches, signers).
Throughput is limited by this Python client, so only the CPU column matters.
Rounds alternate the two configurations. Run as root from the repository:

    make build/bin/coexd build/bin/coexctl
    N=2000 ROUNDS=3 /usr/bin/python3 bench/arc/verify-seal-cost.py

Each round prints the counts from coexd's log (every message must show
"auth: dkim=pass" and "arc: sealed i=2 cv=pass" in the sealing rounds).
PERF=1 records the sealing rounds with perf (call graphs, to perf.data in WORK).
"""
import os, re, subprocess, sys, time, smtplib, threading, socket, signal
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests", "integration"))
import dkim
from dnsserver import DNSServer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COEXD = ROOT + "/build/bin/coexd"
COEXCTL = ROOT + "/build/bin/coexctl"
W = os.environ.get("WORK", "/tmp/coex-verify-seal-bench")
N = int(os.environ.get("N", "2000"))
SESS = 8

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def keygen(domain, sel):
    p = subprocess.run([COEXCTL, "dkim", "keygen", "--domain", domain, "--selector", sel, "--out", W,
                        "--type", "rsa", "--bits", "2048"], capture_output=True, text=True, check=True)
    line = p.stdout.strip()
    return line.split()[0].rstrip("."), "".join(re.findall(r'"([^"]*)"', line)), f"{W}/{sel}._domainkey.{domain}.key"

subprocess.run(["rm", "-rf", W]); os.makedirs(W)
keys = {t: keygen(d, s) for t, d, s in (("sign", "source.example", "coex"), ("arc", "arc.coex.test", "seal1"),
                                         ("sender", "target.example", "tenant"), ("up", "upstream.example", "arc1"))}
dns = DNSServer({n: [t] for n, t, _ in keys.values()}); dns.start()
body = b"".join(b"line %d of the quarterly numbers, nothing special here at all.\r\n" % i for i in range(64))
msg = (b"From: Alex Wilber <alexw@target.example>\r\nTo: <partner@external1.example>\r\n"
       b"Subject: quarterly numbers\r\nDate: Fri, 04 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@target.example>\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n" + body)
pem = lambda t: open(keys[t][2], "rb").read()
msg = dkim.sign(msg, b"tenant", b"target.example", pem("sender"), canonicalize=(b"relaxed", b"relaxed")) + msg
msg = b"Authentication-Results: upstream.example; dkim=pass header.d=target.example; arc=none\r\n" + msg
msg = b"".join(dkim.arc_sign(msg, b"arc1", b"upstream.example", pem("up"), b"upstream.example")) + msg
print("message bytes", len(msg))

def run(label, route_extra):
    port, hop = free_port(), free_port()
    sink = subprocess.Popen(["/usr/sbin/smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{hop}", "1000"], stdout=subprocess.DEVNULL)
    wd = f"{W}/{label}"; os.makedirs(wd)
    open(f"{wd}/pairs.csv", "w").write("source,target,enabled\nalex.wilber@source.example,alexw@target.example,true\n")
    open(f"{wd}/coex.conf", "w").write(f"""hostname = coex.test
directory = coex.db
spool = spool
dns_resolver = 127.0.0.1:{dns.port}
[connector main]
listen = 127.0.0.1:{port}
networks = 127.0.0.0/8
route = out
[route out]
direction = to-source
next_hop = smtp:[127.0.0.1]:{hop}
tls_required = no
dkim_key = source.example coex {keys['sign'][2]}
{route_extra}
""")
    subprocess.run([COEXCTL, "--config", "coex.conf", "mailbox", "import", "pairs.csv"], cwd=wd, check=True, capture_output=True)
    subprocess.run([COEXCTL, "--config", "coex.conf", "coexistence", "on"], cwd=wd, check=True, capture_output=True)
    log = open(f"{wd}/log", "w")
    cmd = [COEXD, "-c", "coex.conf"]
    if os.environ.get("PERF") and "verify" in label:
        cmd = ["perf", "record", "--call-graph", "dwarf,16384", "-F", "2000", "-o", W + "/perf.data", "--"] + cmd
    d = subprocess.Popen(cmd, cwd=wd, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        try: socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError: time.sleep(0.05)
    def cpu():
        f = open(f"/proc/{d.pid}/stat").read().split(")")[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    def client(n):
        with smtplib.SMTP("127.0.0.1", port) as s:
            for _ in range(n):
                s.sendmail("alexw@target.example", ["partner@external1.example"], msg)
    # warm-up (key cache, signers)
    client(20)
    c0, t0 = cpu(), time.time()
    ts = [threading.Thread(target=client, args=(N // SESS,)) for _ in range(SESS)]
    [t.start() for t in ts]; [t.join() for t in ts]
    c1, t1 = cpu(), time.time()
    d.send_signal(signal.SIGTERM); d.wait(); sink.terminate(); sink.wait()
    text = open(f"{wd}/log").read()
    sealed = text.count("arc: sealed i=2 cv=pass"); passed = text.count("auth: dkim=pass")
    print(f"{label}: {(c1 - c0) * 1000 / N:.3f} ms coexd CPU/msg, {N / (t1 - t0):.0f} msg/s (client-bound), "
          f"sealed cv=pass {sealed}, dkim=pass {passed}, errors {text.count('error')}")

for rnd in range(int(os.environ.get("ROUNDS", "3"))):
    run(f"sign{rnd}", "")
    run(f"verify_sign_seal{rnd}", f"arc_key = arc.coex.test seal1 {keys['arc'][2]}")
dns.stop()
