"""Incoming DKIM verification and ARC sealing in coexd, end to end (issue 4).

The sender's tenant (target.example) signs a message with DKIM, and may pass
it through an upstream ARC sealer first (upstream.example, sealed by
dkimpy's arc_sign). coexd looks the keys up in a DNS server on loopback
(tests/integration/dnsserver.py, python3-dnslib), verifies what arrived,
rewrites From to source.example, signs it with DKIM for source.example and
adds one ARC set sealed by arc.coex.test. At the aiosmtpd next hop, dkimpy
(Debian's python3-dkim, its DNS function answering from this test's key
table) must find: a DKIM signature for source.example that verifies, and an
ARC chain that validates (cv=pass), whose newest ARC-Authentication-Results
says what coexd found: dkim=pass for the sender's signature, temperror when
the key lookup timed out, permerror when there is no key, fail when the
body was changed in transit, and arc=fail when the upstream chain was
broken (sealed cv=fail: dkimpy then reports the chain as failed).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import COEXCTL, COEXD, free_port, wait_for

dkim = pytest.importorskip("dkim")
dnsserver = pytest.importorskip("dnsserver")

MSG = (b"From: Alex Wilber <alexw@target.example>\r\n"
       b"To: \"Partner\" <partner@external1.example>\r\n"
       b"Subject: quarterly numbers\r\n"
       b"Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
       b"Message-ID: <m1@target.example>\r\n"
       b"\r\n"
       b"Hello partner,\r\n\r\nthe numbers are attached.\r\n")


def keygen(d, domain, selector):
    p = subprocess.run([COEXCTL, "dkim", "keygen", "--domain", domain, "--selector", selector,
                        "--out", str(d), "--type", "rsa", "--bits", "2048"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line = p.stdout.strip()
    name = line.split()[0]
    txt = "".join(re.findall(r'"([^"]*)"', line))
    path = d / f"{selector}._domainkey.{domain}.key"
    return name.rstrip("."), txt, path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("coexd-arc-keys")
    out = {}
    for tag, domain, sel in (("sign", "source.example", "coex"),
                             ("arc", "arc.coex.test", "seal1"),
                             ("sender", "target.example", "tenant"),
                             ("upstream", "upstream.example", "arc1")):
        name, txt, path = keygen(d, domain, sel)
        out[tag] = {"domain": domain, "selector": sel, "name": name, "txt": txt, "path": path,
                    "pem": path.read_bytes()}
    return out


@pytest.fixture
def dns(keys):
    srv = dnsserver.DNSServer({k["name"]: [k["txt"]] for k in keys.values()})
    srv.start()
    yield srv
    srv.stop()


def table(keys):
    return {k["name"] + ".": k["txt"].encode() for k in keys.values()}


def dnsfunc_for(keys):
    t = table(keys)

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return t.get(name if name.endswith(".") else name + ".")
    return dnsfunc


def config(port, hop_port, dns_port, keys, route_extra="", global_extra=""):
    return f"""hostname = coex.test
authserv_id = coex.test
directory = coex.db
spool = spool
directory_poll = 1
dns_resolver = 127.0.0.1:{dns_port}
dns_timeout = 2
{global_extra}
[connector main]
listen = 127.0.0.1:{port}
networks = 127.0.0.0/8
route = out
[route out]
direction = to-source
next_hop = smtp:[127.0.0.1]:{hop_port}
tls_required = no
retry_schedule = 1s
dkim_key = source.example coex {keys['sign']['path']}
arc_key = arc.coex.test seal1 {keys['arc']['path']}
{route_extra}
"""


def start(coexd_factory, sink_factory, dns, keys, **kw):
    hop = sink_factory()
    port = free_port()
    d = coexd_factory(config(port, hop.port, dns.port, keys, **kw), wait_ports=[port])
    return d, hop, port


def send(port, msg):
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as s:
        s.ehlo("client.test")
        return s.sendmail("alexw@target.example", ["partner@external1.example"], msg)


def sender_signed(keys, msg=MSG):
    k = keys["sender"]
    sig = dkim.sign(msg, k["selector"].encode(), k["domain"].encode(), k["pem"],
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def upstream_sealed(keys, msg):
    """msg after an upstream hop (upstream.example) that checked the sender's DKIM
    signature, wrote Authentication-Results and sealed i=1 with dkimpy"""
    pytest.importorskip("authres")  # dkim.arc_sign needs python3-authres
    k = keys["upstream"]
    msg = (b"Authentication-Results: upstream.example; dkim=pass header.d=target.example; "
           b"arc=none\r\n") + msg
    fields = dkim.arc_sign(msg, k["selector"].encode(), k["domain"].encode(), k["pem"],
                           b"upstream.example", timestamp=int(time.time()))
    assert fields, "dkimpy added no ARC set"
    return b"".join(fields) + msg


def arc_verify(keys, msg):
    cv, results, comment = dkim.arc_verify(msg, dnsfunc=dnsfunc_for(keys))
    return cv, comment


def header_fields(msg, name):
    head = msg.split(b"\r\n\r\n", 1)[0]
    return [re.sub(rb"\r\n[ \t]+", b" ", m.group(1)).decode()
            for m in re.finditer(rb"(?im)^" + re.escape(name.encode()) + rb":([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)",
                                 head)]


def newest_aar(msg):
    aars = header_fields(msg, "ARC-Authentication-Results")
    best = max(aars, key=lambda v: int(re.search(r"i=(\d+)", v).group(1)))
    return best


def dkim_ok(keys, msg, domain):
    head = msg.split(b"\r\n\r\n", 1)[0]
    sigs = re.findall(rb"(?im)^DKIM-Signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)", head)
    for idx, value in enumerate(sigs):
        if re.search(rb"d=\s*" + re.escape(domain.encode()) + rb"\s*;", re.sub(rb"\s+", b" ",
                                                                            value)):
            try:
                return dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc_for(keys))
            except dkim.DKIMException:
                return False
    return False


def test_signed_message_is_verified_rewritten_signed_and_sealed(coexd_factory, sink_factory,
                                                                 dns, keys):
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    send(port, sender_signed(keys))
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    assert b"From: Alex Wilber <alex.wilber@source.example>" in data
    assert dkim_ok(keys, data, "source.example"), data.decode()
    aar = newest_aar(data)
    assert re.search(r"i=1;\s*coex\.test;", aar), aar
    assert "dkim=pass" in aar and "header.d=target.example" in aar, aar
    assert "arc=none" in aar, aar
    assert "cv=none" in header_fields(data, "ARC-Seal")[0].replace(" ", "")
    cv, comment = arc_verify(keys, data)
    assert cv == dkim.CV_Pass, (comment, data.decode())
    log = d.log_text()
    assert "auth: dkim=pass" in log and "arc: sealed i=1 cv=none d=arc.coex.test" in log, log


def test_upstream_chain_is_continued(coexd_factory, sink_factory, dns, keys):
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    incoming = upstream_sealed(keys, sender_signed(keys))
    cv, comment = arc_verify(keys, incoming)
    assert cv == dkim.CV_Pass, comment  # the input is a valid i=1 chain
    send(port, incoming)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    seals = header_fields(data, "ARC-Seal")
    assert sorted(int(re.search(r"i=(\d+)", s).group(1)) for s in seals) == [1, 2]
    aar = newest_aar(data)
    assert "i=2" in aar and "arc=pass" in aar and "dkim=pass" in aar, aar
    cv, comment = arc_verify(keys, data)
    assert cv == dkim.CV_Pass, (comment, data.decode())


def test_broken_upstream_chain_is_sealed_fail(coexd_factory, sink_factory, dns, keys):
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    incoming = upstream_sealed(keys, sender_signed(keys))
    # change a header field the upstream AMS signed: its chain no longer validates
    incoming = incoming.replace(b"Subject: quarterly numbers", b"Subject: quarterly numbers!")
    cv, _ = arc_verify(keys, incoming)
    assert cv == dkim.CV_Fail
    send(port, incoming)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    newest = [s for s in header_fields(data, "ARC-Seal") if re.search(r"i=2\b", s)]
    assert newest and "cv=fail" in newest[0].replace(" ", ""), header_fields(data, "ARC-Seal")
    assert "arc=fail" in newest_aar(data)
    cv, _ = arc_verify(keys, data)
    # a cv=fail seal ends the chain: dkimpy 1.1.4 says fail or none ("terminated")
    assert cv != dkim.CV_Pass
    assert dkim_ok(keys, data, "source.example")


def test_tampered_body_is_dkim_fail_but_relayed(coexd_factory, sink_factory, dns, keys):
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    msg = sender_signed(keys).replace(b"the numbers are attached", b"the numbers are ATTACHED")
    send(port, msg)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    aar = newest_aar(data)
    assert "dkim=fail" in aar and "header.d=target.example" in aar, aar
    assert arc_verify(keys, data)[0] == dkim.CV_Pass  # the seal itself is sound


def test_missing_key_is_permerror(coexd_factory, sink_factory, dns, keys):
    dns.records.pop(keys["sender"]["name"])
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    send(port, sender_signed(keys))
    assert hop.wait(1), d.log_text()
    aar = newest_aar(hop.messages[0]["data"])
    assert "dkim=permerror" in aar and "header.d=target.example" in aar, aar


def test_key_lookup_timeout_is_temperror_and_bounded(coexd_factory, sink_factory, dns, keys):
    dns.set_mode(keys["sender"]["name"], "drop")
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    t0 = time.monotonic()
    send(port, sender_signed(keys))
    took = time.monotonic() - t0
    assert took < 10, took  # dns_timeout = 2: the session is not held much longer
    assert hop.wait(1), d.log_text()
    aar = newest_aar(hop.messages[0]["data"])
    assert "dkim=temperror" in aar, aar


def test_keys_are_cached_between_messages(coexd_factory, sink_factory, dns, keys):
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    for _ in range(3):
        send(port, sender_signed(keys))
    assert hop.wait(3), d.log_text()
    assert dns.queries(keys["sender"]["name"]) == 1
    for m in hop.messages:
        assert "dkim=pass" in newest_aar(m["data"])


def test_unsigned_message_is_sealed_with_dkim_none(coexd_factory, sink_factory, dns, keys):
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    send(port, MSG)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    assert "dkim=none" in newest_aar(data)
    assert arc_verify(keys, data)[0] == dkim.CV_Pass
    assert dns.queries() == 0


def test_client_leaving_during_lookup_loses_nothing(coexd_factory, sink_factory, dns, keys):
    """coexd reads nothing while it waits for the keys, so it notices the client is
    gone only when it replies: the message is queued and delivered anyway (the
    client may send it again: a duplicate, never a loss), and the next session
    is served"""
    dns.set_mode(keys["sender"]["name"], "drop")
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO client.test\r\nMAIL FROM:<alexw@target.example>\r\n"
              b"RCPT TO:<partner@external1.example>\r\nDATA\r\n")
    while not f.readline().startswith(b"354"):
        pass
    s.sendall(sender_signed(keys) + b".\r\n")
    time.sleep(0.3)  # coexd is waiting for the key lookup
    s.close()
    assert hop.wait(1), d.log_text()
    assert "dkim=temperror" in newest_aar(hop.messages[0]["data"])
    dns.set_mode(keys["sender"]["name"], None)
    send(port, sender_signed(keys, MSG.replace(b"<m1@", b"<m2@")))
    assert hop.wait(2), d.log_text()
    ids = sorted(re.search(rb"Message-ID: <(m\d)@", m["data"]).group(1) for m in hop.messages)
    assert ids == [b"m1", b"m2"]
    assert "dkim=pass" in newest_aar(hop.messages[1]["data"])
    assert d.proc.poll() is None


def test_arc_key_without_verification_is_a_config_error(tmp_path, keys):
    conf = tmp_path / "coex.conf"
    conf.write_text(config(2525, 2526, 53, keys, route_extra="dkim_verify = no"))
    p = subprocess.run([COEXD, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "arc_key needs dkim_verify" in p.stderr + p.stdout


@pytest.mark.parametrize("value", ["not-an-address", "127.0.0.1:99999", "[::1"])
def test_bad_dns_resolver_is_a_config_error(tmp_path, keys, value):
    conf = tmp_path / "coex.conf"
    conf.write_text(config(2525, 2526, 53, keys).replace("dns_resolver = 127.0.0.1:53",
                                                         f"dns_resolver = {value}"))
    p = subprocess.run([COEXD, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0, p.stdout
    assert "dns_resolver" in p.stderr, p.stderr


def test_good_config_with_arc_passes_check(tmp_path, keys):
    conf = tmp_path / "coex.conf"
    conf.write_text(config(2525, 2526, 53, keys))
    p = subprocess.run([COEXD, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr


def junk_signatures(n, long_names=False):
    """n DKIM-Signature fields of distinct (d=, s=) pairs that have no key"""
    out = b""
    for i in range(n):
        d = (f"{'x' * 60}.{'y' * 60}.{'z' * 60}.{'w' * 50}.junk{i}.example" if long_names
             else f"junk{i}.example")
        s = ("s" * 60 + str(i)) if long_names else f"sel{i}"
        out += (f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={d}; s={s};\r\n"
                f" h=from:subject; bh=AAAA; b=AAAA\r\n").encode()
    return out


def test_long_results_keep_the_pass_and_the_arc_result(coexd_factory, sink_factory, dns, keys):
    """16 verified signatures with names near the DNS limits: every result is
    in the AAR (an early version lost the whole text past 767 bytes); the
    pass comes first"""
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    send(port, junk_signatures(15, long_names=True) + sender_signed(keys))
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    aar = newest_aar(data)
    assert "dkim=pass header.d=target.example" in aar.split(";")[2], aar
    assert aar.count("dkim=permerror") == 15 and "arc=none" in aar, aar
    assert "not listed" not in aar and len(aar) > 6000, aar
    assert arc_verify(keys, data)[0] == dkim.CV_Pass
    assert "auth: dkim=pass" in d.log_text()


def test_many_dkim_signatures_do_not_starve_the_arc_chain(coexd_factory, sink_factory, dns,
                                                          keys):
    """ARC keys are looked up first, with a budget of their own"""
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    incoming = upstream_sealed(keys, sender_signed(keys))
    send(port, junk_signatures(24) + incoming)
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    aar = newest_aar(data)
    assert "i=2" in aar and "arc=pass" in aar, aar
    # 16 signatures are verified (the junk on top): the rest are counted
    assert aar.count("dkim=permerror") == 16 and "(9 more signature(s) not listed)" in aar, aar
    assert arc_verify(keys, data)[0] == dkim.CV_Pass


def test_arc_key_lookup_failure_is_a_temporary_refusal(coexd_factory, sink_factory, dns, keys):
    """sealing cv=fail because coex's DNS failed would end the chain for good:
    the client is told to try again (451 4.4.3) instead"""
    dns.set_mode(keys["upstream"]["name"], "servfail")
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    incoming = upstream_sealed(keys, sender_signed(keys))
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(port, incoming)
    assert e.value.smtp_code == 451 and b"4.4.3" in e.value.smtp_error, e.value
    assert "arc: chain not judged" in d.log_text()
    dns.set_mode(keys["upstream"]["name"], None)
    time.sleep(0.1)
    # servfail is not cached: the retry goes through and continues the chain
    send(port, incoming)
    assert hop.wait(1), d.log_text()
    assert arc_verify(keys, hop.messages[0]["data"])[0] == dkim.CV_Pass


def test_reload_during_the_lookup_keeps_the_route_of_the_message(coexd_factory, sink_factory,
                                                                 dns, keys):
    dns.set_mode(keys["sender"]["name"], "drop")
    d, hop, port = start(coexd_factory, sink_factory, dns, keys)
    result = {}

    def client():
        try:
            result["r"] = send(port, sender_signed(keys))
        except Exception as e:  # reported below
            result["e"] = e
    t = threading.Thread(target=client)
    t.start()
    time.sleep(0.5)  # the message waits for its keys (dns_timeout = 2)
    conf = d.conf.read_text()
    d.conf.write_text("\n".join(line for line in conf.splitlines()
                                if not line.startswith(("dkim_key", "arc_key"))) + "\n")
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "reload done" in d.log_text(), timeout=10), d.log_text()
    t.join(30)
    assert result.get("r") == {}, result
    assert hop.wait(1), d.log_text()
    data = hop.messages[0]["data"]
    assert dkim_ok(keys, data, "source.example")  # signed with the keys it started with
    assert "dkim=temperror" in newest_aar(data)


def test_bad_authserv_id_is_a_config_error(tmp_path, keys):
    conf = tmp_path / "coex.conf"
    conf.write_text(config(2525, 2526, 53, keys).replace("authserv_id = coex.test",
                                                         "authserv_id = coex test"))
    p = subprocess.run([COEXD, "-t", "-c", str(conf)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode != 0
    assert "authserv_id 'coex test' must be one token" in p.stderr, p.stderr
