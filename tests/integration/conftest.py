"""Shared fixtures for the integration tests: certificates made with the
openssl command, a coexd process on loopback with its own config, spool and
directory, and aiosmtpd next hops (Debian's python3-aiosmtpd).

Everything listens on 127.0.0.1, on ports the tests pick, and every process a
test starts is stopped by PID when the test ends.
"""
import os
import pathlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("COEX_BUILD", ROOT / "build" / "san" / "bin"))
COEXD = str(BUILD / "coexd")
COEXCTL = str(BUILD / "coexctl")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for(pred, timeout=15.0, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(step)
    return pred()


# ---------------------------------------------------------------- certificates

def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _issue(d, name, san, ca="ca", cn=None):
    cn = cn or name
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    (d / f"{name}.ext").write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
             "-out", f"{name}.crt", cwd=d)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    """A test CA; coexd's server cert; client certs (allowed name, wrong name,
    and one from another CA); the next hop's server cert."""
    d = tmp_path_factory.mktemp("pki")
    for ca in ("ca", "rogue"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{ca}.key",
                 "-out", f"{ca}.crt", "-days", "2", "-subj", f"/CN=coex test {ca}", cwd=d)
    _issue(d, "coexd", "DNS:coex.test,IP:127.0.0.1")
    _issue(d, "client", "DNS:relay.target.example")
    _issue(d, "wrongname", "DNS:relay.other.example")
    _issue(d, "rogueclient", "DNS:relay.target.example", ca="rogue")
    _issue(d, "nexthop", "DNS:nexthop.test,IP:127.0.0.1")
    _issue(d, "coexclient", "DNS:coex.source.example")
    return d


# ---------------------------------------------------------------- next hop

class Sink:
    """An aiosmtpd server that records every message (envelope + bytes) and can
    answer chosen recipients with a chosen code."""

    def __init__(self, port, tls_context=None, require_starttls=False, reject=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        self.port = port
        self.messages = []
        self.peer_certs = []
        self.reject = reject or {}
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                code = sink.reject.get(address.lower())
                if code:
                    return code
                envelope.rcpt_tos.append(address)
                return "250 2.1.5 OK"

            async def handle_DATA(self, server, session, envelope):
                cert = None
                if session.ssl:
                    obj = server.transport.get_extra_info("ssl_object")
                    cert = obj.getpeercert() if obj else None
                with sink.lock:
                    sink.messages.append({
                        "from": envelope.mail_from,
                        "to": list(envelope.rcpt_tos),
                        "data": envelope.original_content or envelope.content,
                        "tls": bool(session.ssl),
                        "cert": cert,
                    })
                return "250 2.0.0 accepted"

        class Controller2(Controller):
            def factory(self):
                return SMTP(self.handler, tls_context=tls_context,
                            require_starttls=require_starttls, decode_data=False,
                            enable_SMTPUTF8=True)

        self.controller = Controller2(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()

    def stop(self):
        self.controller.stop()

    def wait(self, count, timeout=20.0):
        return wait_for(lambda: len(self.messages) >= count, timeout)


@pytest.fixture
def sink_factory():
    sinks = []

    def make(**kw):
        s = Sink(kw.pop("port", None) or free_port(), **kw)
        sinks.append(s)
        return s

    yield make
    for s in sinks:
        try:
            s.stop()
        except Exception:
            pass


def server_tls_context(certs, require_client_cert=False):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "nexthop.crt", certs / "nexthop.key")
    if require_client_cert:
        ctx.load_verify_locations(certs / "ca.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


# ---------------------------------------------------------------- coexd

PAIRS = """source,target,enabled
alex.wilber@source.example,alexw@target.example,true
megan.bowen@source.example,MeganB@target.example,true
ceo@source.example,ceo@target.example,true
legal@source.example,legal@target.example,false
"""


class Coexd:
    def __init__(self, workdir, config_text):
        self.dir = workdir
        self.conf = workdir / "coex.conf"
        self.conf.write_text(config_text)
        self.log = workdir / "coexd.log"
        self.proc = None

    def ctl(self, *args, check=True):
        p = subprocess.run([COEXCTL, "--config", str(self.conf), *args], cwd=self.dir,
                           capture_output=True, text=True, timeout=60)
        if check:
            assert p.returncode == 0, p.stderr
        return p

    def start(self, wait_ports=()):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen([COEXD, "-c", str(self.conf)], cwd=self.dir,
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        for port in wait_ports:
            assert wait_port(port), f"coexd did not listen on {port}:\n{self.log_text()}"
        return self

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        rc = self.proc.returncode if self.proc else None
        self.proc = None
        return rc

    def log_text(self):
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def outbox(self):
        box = self.dir / "outbox"
        return sorted(box.glob("*.eml")) if box.exists() else []


@pytest.fixture
def coexd_factory(tmp_path):
    daemons = []

    def make(config_text, pairs=PAIRS, coexistence=True, start=True, wait_ports=()):
        work = tmp_path / f"coexd{len(daemons)}"
        work.mkdir()
        d = Coexd(work, config_text)
        daemons.append(d)
        if pairs:
            (work / "pairs.csv").write_text(pairs)
            d.ctl("mailbox", "import", "pairs.csv")
        d.ctl("coexistence", "on" if coexistence else "off")
        if start:
            d.start(wait_ports)
        return d

    yield make
    for d in daemons:
        rc = d.stop()
        # the sanitizer build reports leaks and errors in the log
        text = d.log_text()
        assert "ERROR: AddressSanitizer" not in text, text[-4000:]
        assert "runtime error" not in text, text[-4000:]
        assert "ERROR: LeakSanitizer" not in text, text[-4000:]
        assert rc in (0, None, -9), f"coexd exit {rc}\n{text[-4000:]}"


# ---------------------------------------------------------------- a real Postfix next hop

class PostfixHop:
    """A private Postfix instance (its own config, queue and log under a temp
    directory, started with `postfix -c`): smtpd on 127.0.0.1:port relaying
    everything to relay_port. Needs root and Debian's postfix package."""

    def __init__(self, base, port, relay_port):
        self.base, self.port = base, port
        etc, spool, data = base / "etc", base / "spool", base / "data"
        for p in (etc, spool, data):
            p.mkdir(parents=True)
        subprocess.run(["chown", "postfix", str(data)], check=True)
        self.log = base / "maillog"
        (etc / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {spool}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix-hop.test
mydestination =
local_recipient_maps =
local_transport = error:local delivery disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_bind_address = 127.0.0.1
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{relay_port}
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = {base}
maillog_file = {self.log}
""")
        (etc / "master.cf").write_text(f"""127.0.0.1:{port} inet n - n - 10 smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
""")
        self.etc = etc
        # the first check creates the queue directories and may complain once
        if subprocess.run(["postfix", "-c", str(etc), "check"], capture_output=True).returncode:
            subprocess.run(["postfix", "-c", str(etc), "check"], check=True, capture_output=True)
        subprocess.run(["postfix", "-c", str(etc), "start"], check=True, capture_output=True,
                       timeout=60)
        assert wait_port(port, 20), self.log.read_text() if self.log.exists() else "no log"

    def stop(self):
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=60)


@pytest.fixture
def postfix_hop(sink_factory):
    # Postfix's processes run as user postfix: the queue must not sit below
    # pytest's private (0700) temp directory
    base = pathlib.Path(tempfile.mkdtemp(prefix="coex-postfix-"))
    base.chmod(0o755)
    sink = sink_factory()
    hop = PostfixHop(base / "pf", free_port(), sink.port)
    yield hop, sink
    hop.stop()
    shutil.rmtree(base, ignore_errors=True)
