"""`coexctl dkim verify --dns`: DKIM keys fetched over DNS by coex's own stub
resolver (src/smtp/dnstxt, src/smtp/keyfetch), served by the loopback test
server in dnsserver.py (Debian's python3-dnslib).

Messages are signed with `coexctl dkim sign`; the key records `keygen` prints
are published on the test server. What is shown: rsa, ed25519 and dual
signatures pass with keys from DNS (one query per name); a missing name
(NXDOMAIN), a name without TXT (NODATA) and a revoked key are permerror; a
server that does not answer or answers SERVFAIL is temperror, and a dropped
query gives up within the configured timeout; a truncated UDP answer is
retried over TCP; an RSA-4096 record (several character-strings) works over
UDP with EDNS0 and over TCP; a CNAME to the key works; a reply with a wrong
ID is ignored; --key and --dns combine; a key record longer than the
resolver keeps (an attacker's 60 KB TXT) is refused as a bad answer
(temperror), over TCP, without the verifier reading it as a key.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
pytest.importorskip("dnslib")
from dnsserver import DNSServer  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
COEXCTL = os.environ.get("COEXCTL", str(ROOT / "build" / "bin" / "coexctl"))
MESSAGE = (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes()
DOMAIN = "source.example"


def run(*args, stdin=b"", check=True, timeout=60):
    p = subprocess.run([COEXCTL, *args], input=stdin, capture_output=True, timeout=timeout)
    if check:
        assert p.returncode == 0, f"{args}: rc={p.returncode} {p.stderr.decode(errors='replace')}"
    return p


def zone_record(line):
    """`S._domainkey.D IN TXT ( "a" "b" )` -> (name, "ab")"""
    return line.split()[0].rstrip("."), "".join(re.findall(r'"([^"]*)"', line))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dnskeys")
    out = {}
    for tag, args in (("rsa", ["--type", "rsa", "--bits", "2048"]), ("ed", ["--type", "ed25519"]),
                      ("rsa4096", ["--type", "rsa", "--bits", "4096"])):
        sel = f"coex-{tag}"
        p = run("dkim", "keygen", "--domain", DOMAIN, "--selector", sel, "--out", str(d), *args)
        name, txt = zone_record(p.stdout.decode().strip())
        out[tag] = {"sel": sel, "name": name, "txt": txt,
                    "file": d / f"{sel}._domainkey.{DOMAIN}.key"}
    return out


def signed(keys, *tags):
    args = []
    for tag in tags:
        args += ["--key", f"{DOMAIN}:{keys[tag]['sel']}:{keys[tag]['file']}"]
    return run("dkim", "sign", *args, stdin=MESSAGE).stdout


def verify(tmp_path, msg, srv, *extra, timeout_ms=None):
    path = tmp_path / "m.eml"
    path.write_bytes(msg)
    args = ["dkim", "verify", str(path), "--dns", "--resolver", f"127.0.0.1:{srv.port}", *extra]
    if timeout_ms:
        args += ["--dns-timeout", str(timeout_ms)]
    p = run(*args, check=False)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def records(keys, *tags):
    return {keys[t]["name"]: [keys[t]["txt"]] for t in tags}


@pytest.mark.parametrize("tags", [("rsa",), ("ed",), ("rsa", "ed")])
def test_pass_with_keys_from_dns(keys, tmp_path, tags):
    with DNSServer(records(keys, "rsa", "ed")) as srv:
        rc, out, err = verify(tmp_path, signed(keys, *tags), srv)
        assert rc == 0, out + err
        assert out.count("dkim=pass") == len(tags), out
        for t in tags:
            assert srv.queries(keys[t]["name"]) == 1  # one query per name, over UDP
        assert srv.queries(transport="tcp") == 0


def test_nxdomain_is_permerror(keys, tmp_path):
    with DNSServer({}) as srv:
        rc, out, _ = verify(tmp_path, signed(keys, "rsa"), srv)
        assert rc == 1
        assert "dkim=permerror" in out and f"no key for {keys['rsa']['name']}" in out, out
        assert "NXDOMAIN" in out


def test_nodata_is_permerror(keys, tmp_path):
    with DNSServer({keys["ed"]["name"]: []}) as srv:
        rc, out, _ = verify(tmp_path, signed(keys, "ed"), srv)
        assert rc == 1
        assert "dkim=permerror" in out and f"no key for {keys['ed']['name']}" in out, out
        assert "NODATA" in out


def test_revoked_key_is_permerror(keys, tmp_path):
    with DNSServer({keys["rsa"]["name"]: ["v=DKIM1; k=rsa; p="]}) as srv:
        rc, out, _ = verify(tmp_path, signed(keys, "rsa"), srv)
        assert rc == 1 and "dkim=permerror" in out and "revoked" in out, out


def test_garbage_record_is_permerror(keys, tmp_path):
    with DNSServer({keys["rsa"]["name"]: ["v=spf1 -all"]}) as srv:
        rc, out, _ = verify(tmp_path, signed(keys, "rsa"), srv)
        assert rc == 1 and "dkim=permerror" in out and "no usable key" in out, out


def test_dropped_queries_are_temperror_within_the_timeout(keys, tmp_path):
    name = keys["rsa"]["name"]
    with DNSServer(records(keys, "rsa"), modes={name: "drop"}) as srv:
        t0 = time.monotonic()
        rc, out, _ = verify(tmp_path, signed(keys, "rsa"), srv, timeout_ms=300)
        elapsed = time.monotonic() - t0
        assert rc == 1 and "dkim=temperror" in out and "timeout" in out, out
        assert srv.queries(name, "udp") == 2  # two attempts of 300 ms
        assert 0.55 <= elapsed < 0.6 + 3.0, elapsed  # 2 x 300 ms, plus process start-up (ASan)


def test_servfail_is_temperror(keys, tmp_path):
    name = keys["ed"]["name"]
    with DNSServer(records(keys, "ed"), modes={name: "servfail"}) as srv:
        rc, out, _ = verify(tmp_path, signed(keys, "ed"), srv)
        assert rc == 1 and "dkim=temperror" in out and "SERVFAIL" in out, out
        assert srv.queries(name) == 1  # an answer, even a failure, is not retried


def test_no_server_is_temperror(keys, tmp_path):
    srv = DNSServer({}).start()
    srv.stop()  # its port is closed now: ICMP port unreachable, or nothing
    rc, out, _ = verify(tmp_path, signed(keys, "ed"), srv, timeout_ms=300)
    assert rc == 1 and "dkim=temperror" in out, out


def test_tcp_fallback_on_truncation(keys, tmp_path):
    name = keys["rsa"]["name"]
    with DNSServer(records(keys, "rsa"), modes={name: "tc"}) as srv:
        rc, out, err = verify(tmp_path, signed(keys, "rsa"), srv)
        assert rc == 0 and "dkim=pass" in out, out + err
        assert srv.queries(name, "udp") == 1 and srv.queries(name, "tcp") == 1


def test_rsa4096_record_over_udp_and_tcp(keys, tmp_path):
    name, txt = keys["rsa4096"]["name"], keys["rsa4096"]["txt"]
    assert len(txt) > 255  # several character-strings in one record
    with DNSServer(records(keys, "rsa4096")) as srv:
        rc, out, err = verify(tmp_path, signed(keys, "rsa4096"), srv)
        assert rc == 0 and "dkim=pass" in out and "4096-bit" in out, out + err
        assert srv.queries(name, "tcp") == 0  # fits the EDNS0 payload of 1232
        srv.set_mode(name, "tc")
        rc, out, err = verify(tmp_path, signed(keys, "rsa4096"), srv)
        assert rc == 0 and "dkim=pass" in out, out + err
        assert srv.queries(name, "tcp") == 1


@pytest.mark.parametrize("records_text", [
    ["v=DKIM1; k=rsa; p=" + "A" * 60000],        # one record of 60 KB
    ["v=DKIM1; k=rsa; p=" + "A" * 4000] * 3,     # three of 4 KB: 12 KB in one answer
])
def test_oversized_key_record_is_refused(keys, tmp_path, records_text):
    name = keys["ed"]["name"]
    with DNSServer({name: records_text}) as srv:
        rc, out, _ = verify(tmp_path, signed(keys, "ed"), srv)
        assert rc == 1 and "dkim=permerror" in out, out  # asking again gives the same
        assert "more than" in out or "longer than" in out, out
        assert srv.queries(name, "udp") == 1 and srv.queries(name, "tcp") == 1


def test_cname_to_the_key(keys, tmp_path):
    target = "coex-ed.keys.provider.example"
    with DNSServer({target: [keys["ed"]["txt"]]}, cnames={keys["ed"]["name"]: target}) as srv:
        rc, out, err = verify(tmp_path, signed(keys, "ed"), srv)
        assert rc == 0 and "dkim=pass" in out, out + err


def test_reply_with_wrong_id_is_ignored(keys, tmp_path):
    name = keys["ed"]["name"]
    with DNSServer(records(keys, "ed"), modes={name: "badid"}) as srv:
        rc, out, err = verify(tmp_path, signed(keys, "ed"), srv)
        assert rc == 0 and "dkim=pass" in out, out + err
        assert srv.queries(name) == 1


def test_key_option_combines_with_dns(keys, tmp_path):
    """--key for the rsa selector, DNS (which has only the ed25519 key) for the other"""
    with DNSServer(records(keys, "ed")) as srv:
        rc, out, err = verify(tmp_path, signed(keys, "rsa", "ed"), srv, "--key",
                              f"{DOMAIN}:{keys['rsa']['sel']}:{keys['rsa']['file']}")
        assert rc == 0 and out.count("dkim=pass") == 2, out + err


def test_one_bad_lookup_fails_the_message(keys, tmp_path):
    with DNSServer(records(keys, "ed")) as srv:  # no rsa record
        rc, out, _ = verify(tmp_path, signed(keys, "rsa", "ed"), srv)
        assert rc == 1 and "dkim=pass" in out and "dkim=permerror" in out, out


def test_usage_errors(tmp_path):
    path = tmp_path / "m.eml"
    path.write_bytes(MESSAGE)
    assert run("dkim", "verify", str(path), "--resolver", "127.0.0.1", check=False).returncode == 2
    assert run("dkim", "verify", str(path), "--dns", "--dns-timeout", "x",
               check=False).returncode == 2
    p = run("dkim", "verify", str(path), "--dns", "--resolver", "not-an-address", check=False)
    assert p.returncode == 1 and "bad DNS server" in p.stderr.decode()


def test_unsigned_message_needs_no_query(tmp_path):
    with DNSServer({}) as srv:
        rc, out, _ = verify(tmp_path, MESSAGE, srv)
        assert rc == 1 and "dkim=none" in out
        assert srv.queries() == 0
