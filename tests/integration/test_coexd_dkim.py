"""DKIM signing in coexd, end to end (issue 4).

A message from alexw@target.example is rewritten to alex.wilber@source.example,
signed by coexd's worker pool with the route's keys for source.example, and
must arrive at an aiosmtpd next hop carrying signatures that dkimpy (Debian's
python3-dkim, its DNS function answering from this test's key table)
verifies: rsa-2048, ed25519 and both (dual signing). Also: a From domain
without a key is relayed unsigned and logged; an earlier signature of the
target domain is removed when the route says so and kept otherwise; a
tampered copy fails; 50 messages over 20 concurrent sessions all verify; -t
checks the key files; SIGHUP picks up new keys.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import re
import signal
import socket
import smtplib
import subprocess
import threading

import pytest

from conftest import COEXCTL, COEXD, free_port, wait_for, wait_port

dkim = pytest.importorskip("dkim")

MSG = (b"From: Alex Wilber <alexw@target.example>\r\n"
       b"To: \"Partner\" <partner@external1.example>\r\n"
       b"Subject: quarterly numbers\r\n"
       b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <m1@target.example>\r\n"
       b"\r\n"
       b"Hello partner,\r\n\r\nthe numbers are attached.  \r\n\r\n\r\n")

KEYSETS = {"rsa": ["rsa"], "ed25519": ["ed"], "dual": ["rsa", "ed"]}


def keygen(d, domain, selector, kind):
    args = ["--type", "rsa", "--bits", "2048"] if kind == "rsa" else ["--type", "ed25519"]
    p = subprocess.run([COEXCTL, "dkim", "keygen", "--domain", domain, "--selector", selector,
                        "--out", str(d), *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip()
    name = line.split()[0]
    assert name == f"{selector}._domainkey.{domain}"
    return name + ".", "".join(re.findall(r'"([^"]*)"', line)).encode(), \
        d / f"{selector}._domainkey.{domain}.key"


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("coexd-dkim-keys")
    table, files = {}, {}
    for tag, domain, sel, kind in (("rsa", "source.example", "coex-rsa", "rsa"),
                                   ("ed", "source.example", "coex-ed", "ed"),
                                   ("target", "target.example", "old", "rsa")):
        name, txt, path = keygen(d, domain, sel, kind)
        table[name] = txt
        files[tag] = (domain, sel, path)
    return {"table": table, "files": files, "dir": d}


def key_lines(keys, which):
    return "".join("dkim_key = %s %s %s\n" % keys["files"][tag] for tag in KEYSETS[which])


def config(port, hop_port, route=""):
    return f"""hostname = coex.test
directory = coex.db
spool = spool
directory_poll = 1
[connector main]
listen = 127.0.0.1:{port}
networks = 127.0.0.0/8
route = out
[route out]
direction = to-source
next_hop = smtp:[127.0.0.1]:{hop_port}
tls_required = no
retry_schedule = 1s
{route}
"""


def send(port, msg=MSG, sender="alexw@target.example", rcpts=("partner@external1.example",)):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("client.test")
        return s.sendmail(sender, list(rcpts), msg)


def verify(keys, msg, idx):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return keys["table"].get(name)
    try:
        return dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


def signatures(msg):
    """(index, d=, a=) of every DKIM-Signature field, top to bottom"""
    head = msg.split(b"\r\n\r\n", 1)[0]
    out = []
    for i, m in enumerate(re.finditer(rb"(?im)^DKIM-Signature:(.*(?:\r\n[ \t].*)*)", head)):
        value = re.sub(rb"\s+", b"", m.group(1))
        tags = dict(t.split(b"=", 1) for t in value.split(b";") if b"=" in t)
        out.append((i, tags[b"d"].decode(), tags[b"a"].decode()))
    return out


def start(coexd_factory, sink_factory, route):
    hop = sink_factory()
    port = free_port()
    d = coexd_factory(config(port, hop.port, route), wait_ports=[port])
    return d, hop, port


@pytest.mark.parametrize("which", ["rsa", "ed25519", "dual"])
def test_rewritten_message_is_signed_for_the_new_from_domain(coexd_factory, sink_factory, keys,
                                                             which):
    d, hop, port = start(coexd_factory, sink_factory, key_lines(keys, which))
    send(port)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    assert b"From: Alex Wilber <alex.wilber@source.example>" in data
    sigs = signatures(data)
    want = {"rsa": ["rsa-sha256"], "ed25519": ["ed25519-sha256"],
            "dual": ["rsa-sha256", "ed25519-sha256"]}[which]
    assert [a for _, _, a in sigs] == want
    assert data.startswith(b"DKIM-Signature:")  # on top, above coexd's Received field
    for idx, domain, _ in sigs:
        assert domain == "source.example"
        assert verify(keys, data, idx), f"signature {idx} does not verify:\n{data.decode()}"
    assert "dkim: signed d=source.example s=" in d.log_text()


def test_from_domain_without_key_is_relayed_unsigned(coexd_factory, sink_factory, keys):
    d, hop, port = start(coexd_factory, sink_factory, key_lines(keys, "rsa"))
    msg = MSG.replace(b"Alex Wilber <alexw@target.example>", b"someone@other.example")
    send(port, msg, sender="someone@other.example")
    assert hop.wait(1), d.log_text()
    assert signatures(hop.messages[0]["data"]) == []
    assert "dkim: not signed: no key for the From domain other.example (route out)" \
        in d.log_text()


@pytest.mark.parametrize("remove", [True, False])
def test_target_signature_removed_only_when_configured(coexd_factory, sink_factory, keys, remove):
    domain, sel, path = keys["files"]["target"]
    old = dkim.sign(MSG, sel.encode(), domain.encode(), path.read_bytes()) + MSG
    assert verify(keys, old, 0)
    route = key_lines(keys, "rsa")
    if remove:
        route += "dkim_remove_target_signatures = target.example, other.example\n"
    d, hop, port = start(coexd_factory, sink_factory, route)
    send(port, old)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    sigs = signatures(data)
    domains = [dom for _, dom, _ in sigs]
    if remove:
        assert domains == ["source.example"]
        assert "removed 1 DKIM-Signature field(s)" in d.log_text()
    else:
        assert domains == ["source.example", "target.example"]
        assert not verify(keys, data, 1)  # the rewrite broke it, as expected
    assert verify(keys, data, 0)


def test_tampered_copy_fails(coexd_factory, sink_factory, keys):
    d, hop, port = start(coexd_factory, sink_factory, key_lines(keys, "dual"))
    send(port)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    assert verify(keys, data, 0) and verify(keys, data, 1)
    body = data.replace(b"the numbers are attached", b"the numbers are attacked")
    subject = data.replace(b"Subject: quarterly numbers", b"Subject: quarterly numbers!")
    for bad in (body, subject):
        assert bad != data
        assert not verify(keys, bad, 0) and not verify(keys, bad, 1)


def test_fifty_messages_over_twenty_sessions_all_verify(coexd_factory, sink_factory, keys):
    d, hop, port = start(coexd_factory, sink_factory,
                         key_lines(keys, "dual") + "max_concurrency = 10\n")
    errors = []
    counter = iter(range(50))
    lock = threading.Lock()

    def client():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as s:
                s.ehlo("client.test")
                while True:
                    with lock:
                        n = next(counter, None)
                    if n is None:
                        return
                    msg = MSG.replace(b"<m1@", b"<m%d@" % n).replace(
                        b"quarterly numbers", b"quarterly numbers %d" % n)
                    s.sendmail("alexw@target.example", ["partner@external1.example"], msg)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=client) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert hop.wait(50, timeout=120), f"{len(hop.messages)} arrived\n{d.log_text()[-3000:]}"
    subjects = set()
    for m in hop.messages:
        data = m["data"]
        assert [a for _, _, a in signatures(data)] == ["rsa-sha256", "ed25519-sha256"]
        assert verify(keys, data, 0) and verify(keys, data, 1)
        subjects.add(re.search(rb"Subject: (.*)\r\n", data).group(1))
    assert len(subjects) == 50
    assert d.log_text().count("dkim: signed d=source.example") == 50


def test_config_check_reads_keys(tmp_path, keys):
    conf = tmp_path / "coex.conf"
    good = config(2525, 2526, key_lines(keys, "dual"))
    conf.write_text(good)
    p = subprocess.run([COEXD, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert p.returncode == 0 and "configuration ok" in p.stdout, p.stderr
    line = good.splitlines().index("dkim_key = source.example coex-ed %s" % keys["files"]["ed"][2])
    # a missing file, named with the config file and line
    conf.write_text(good.replace(str(keys["files"]["ed"][2]), str(tmp_path / "nope.key")))
    p = subprocess.run([COEXD, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert p.returncode == 1
    assert f"{conf}:{line + 1}: dkim_key: cannot read {tmp_path / 'nope.key'}" in p.stderr
    # an RSA key below 2048 bits is refused
    small = tmp_path / "small.key"
    subprocess.run(["openssl", "genrsa", "-out", str(small), "1024"], check=True,
                   capture_output=True)
    conf.write_text(good.replace(str(keys["files"]["ed"][2]), str(small)))
    p = subprocess.run([COEXD, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert p.returncode == 1 and f"{conf}:{line + 1}: dkim_key: {small}:" in p.stderr, p.stderr
    # syntax errors are found by the parser
    conf.write_text(good + "dkim_key = source.example\n")
    p = subprocess.run([COEXD, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert p.returncode == 1 and "dkim_key must be DOMAIN SELECTOR FILE" in p.stderr
    conf.write_text(good + "dkim_canon = loose\n")
    p = subprocess.run([COEXD, "-c", str(conf), "-t"], capture_output=True, text=True)
    assert p.returncode == 1 and "dkim_canon must be" in p.stderr


def test_sighup_picks_up_new_keys(coexd_factory, sink_factory, keys):
    hop = sink_factory()
    port = free_port()
    d = coexd_factory(config(port, hop.port), wait_ports=[port])
    send(port)
    assert hop.wait(1), d.log_text()
    assert signatures(hop.messages[0]["data"]) == []
    d.conf.write_text(config(port, hop.port, key_lines(keys, "ed25519") +
                             "dkim_canon = simple\ndkim_expire = 7d\n"))
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload done" in d.log_text(), 10), d.log_text()
    send(port)
    assert hop.wait(2), d.log_text()
    data = hop.messages[1]["data"]
    assert [a for _, _, a in signatures(data)] == ["ed25519-sha256"]
    head = data.split(b"\r\n\r\n", 1)[0]
    assert re.search(rb"c=simple/simple;", head) and re.search(rb"x=\d+", head)
    assert verify(keys, data, 0)
    assert wait_port(port)


# The body hash is computed while the body streams in (smtpd_data.c), so the
# header/body boundary and the body may arrive split anywhere: across BDAT
# chunks, across TCP reads of DATA, or not at all (no body).

def bdat_send(port, chunks):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            assert line, "connection closed"
            if line[3:4] != b"-":
                return line

    reply()
    s.sendall(b"EHLO client.test\r\n")
    reply()
    for line in (b"MAIL FROM:<alexw@target.example>", b"RCPT TO:<partner@external1.example>"):
        s.sendall(line + b"\r\n")
        assert reply().startswith(b"250")
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        s.sendall(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
        r = reply()
        assert r.startswith(b"250"), r
    s.sendall(b"QUIT\r\n")
    s.close()


def test_body_hash_streams_across_bdat_chunks(coexd_factory, sink_factory, keys):
    d, hop, port = start(coexd_factory, sink_factory, key_lines(keys, "dual"))
    blank = MSG.index(b"\r\n\r\n")
    cuts = [(blank - 1,), (blank,), (blank + 1,), (blank + 2,), (blank + 3,), (blank + 4,),
            (1, blank + 2, blank + 5), tuple(range(1, len(MSG)))]  # the last: byte by byte
    for cut in cuts:
        bounds = (0,) + cut + (len(MSG),)
        bdat_send(port, [MSG[a:b] for a, b in zip(bounds, bounds[1:])])
    assert hop.wait(len(cuts)), d.log_text()
    for m in hop.messages:
        data = m["data"]
        for idx, _, _ in signatures(data):
            assert verify(keys, data, idx), data.decode()


def test_body_hash_of_large_and_bodiless_messages(coexd_factory, sink_factory, keys):
    d, hop, port = start(coexd_factory, sink_factory, key_lines(keys, "dual"))
    head = MSG.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    big = head + b"\r\n" + b"".join(b"line %d of a long body .  \t \r\n" % i
                                    for i in range(40000)) + b"\r\n\r\n"
    send(port, big)            # about 1.2 MB over many reads
    send(port, head)           # no empty line, no body
    send(port, head + b"\r\n")  # an empty body
    assert hop.wait(3), d.log_text()
    for m in hop.messages:
        data = m["data"]
        sigs = signatures(data)
        assert len(sigs) == 2
        for idx, _, _ in sigs:
            assert verify(keys, data, idx), data[:3000].decode()
