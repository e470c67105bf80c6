"""ARC (RFC 8617) sets made by `coexctl arc seal`, checked by dkimpy.

coex seals the way coexd will: the message is DKIM-signed first (`coexctl
dkim sign`), then `coexctl arc seal` validates the chain that arrived (with
the public keys given by --pub), builds the AAR results from the DKIM
verdicts and adds one set. dkimpy (Debian's python3-dkim; its DNS function
answers from this test's own key table) then validates the whole chain
with `dkim.arc_verify`. It also seals hops of its own (`dkim.arc_sign`,
which needs python3-authres) so that coex continues a chain it did not
start, and coex's validator must agree with dkimpy's on those chains.

Two behaviours of dkimpy 1.1.4 the assertions allow for:
- a chain whose newest seal says cv=fail is reported as None ("the chain is
  terminated") rather than "fail"; either is "not pass";
- its verifier checks every seal over all earlier sets, also a cv=fail
  seal, while RFC 8617 §5.1.2 has a cv=fail seal cover only its own set
  (dkimpy's own signer does so too). The test therefore checks coex's
  cv=fail seal with dkimpy on a copy holding coex's set alone.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import os
import pathlib
import re
import subprocess

import pytest

dkim = pytest.importorskip("dkim")

ROOT = pathlib.Path(__file__).resolve().parents[2]
COEXCTL = os.environ.get("COEXCTL", str(ROOT / "build" / "bin" / "coexctl"))
CORPUS = sorted((ROOT / "tests" / "data" / "dkim").glob("*.eml"))
SOURCE = "source.example"   # the From domain coex DKIM-signs for
RELAY = "relay.example"     # coex's sealing domain
FW1 = "fw1.example"         # dkimpy sealers before coex
FW2 = "fw2.example"
AUTHSERV = "coex.relay.example"


def have_authres():
    try:
        import authres  # noqa: F401  (dkim.arc_sign needs it)
        return True
    except ImportError:
        return False


needs_authres = pytest.mark.skipif(not have_authres(), reason="dkim.arc_sign needs python3-authres")


def run(*args, stdin=b"", check=True):
    p = subprocess.run([COEXCTL, *args], input=stdin, capture_output=True, timeout=120)
    if check:
        assert p.returncode == 0, f"{args}: rc={p.returncode} {p.stderr.decode(errors='replace')}"
    return p


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("arckeys")
    table, priv, pub = {}, {}, {}
    for domain, sel in ((SOURCE, "s1"), (RELAY, "arc1"), (FW1, "fw1"), (FW2, "fw2")):
        out = run("dkim", "keygen", "--domain", domain, "--selector", sel, "--out", str(d))
        line = out.stdout.decode().strip()
        txt = "".join(re.findall(r'"([^"]*)"', line))
        table[f"{sel}._domainkey.{domain}."] = txt.encode()
        priv[domain] = (sel, d / f"{sel}._domainkey.{domain}.key")
        pub[domain] = d / f"{sel}.{domain}.txt"
        pub[domain].write_text(txt)
    return {"dir": d, "table": table, "priv": priv, "pub": pub}


def dnsfunc_for(keys):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return keys["table"].get(name)
    return dnsfunc


def pub_args(keys, *domains):
    out = []
    for dom in domains:
        sel = keys["priv"][dom][0]
        out += ["--pub", f"{dom}:{sel}:{keys['pub'][dom]}"]
    return out


def dkim_sign(keys, msg):
    sel, path = keys["priv"][SOURCE]
    return run("dkim", "sign", "--key", f"{SOURCE}:{sel}:{path}", stdin=msg).stdout


def coex_seal(keys, msg, *extra, pubs=(SOURCE, FW1, FW2), check=True):
    sel, path = keys["priv"][RELAY]
    return run("arc", "seal", "-", "--key", f"{RELAY}:{sel}:{path}", "--authserv-id", AUTHSERV,
               *pub_args(keys, *pubs), *extra, stdin=msg, check=check)


def coex_verify(keys, tmp_path, msg, pubs=(SOURCE, RELAY, FW1, FW2)):
    path = tmp_path / "v.eml"
    path.write_bytes(msg)
    p = run("arc", "verify", str(path), *pub_args(keys, *pubs), check=False)
    return p.returncode, p.stdout.decode()


def dkimpy_verify(keys, msg):
    cv, results, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc_for(keys))
    return cv, results, reason


def dkimpy_seal(keys, msg, domain, srv_id, arc_result):
    """one dkimpy hop: its Authentication-Results field, then its ARC set on top"""
    ar = f"Authentication-Results: {srv_id}; dkim=pass header.d={SOURCE}; arc={arc_result}\r\n"
    msg = ar.encode() + msg
    sel, path = keys["priv"][domain]
    fields = dkim.arc_sign(msg, sel.encode(), domain.encode(), path.read_bytes(), srv_id.encode())
    assert fields, "dkimpy added no ARC set"
    return b"".join(fields) + msg


def top_set(msg):
    """the fields above the first non-ARC field, unfolded"""
    head = msg.split(b"\r\n\r\n", 1)[0].decode(errors="replace")
    fields = re.split(r"\r\n(?![ \t])", head)
    out = []
    for f in fields:
        if not f.lower().startswith("arc-"):
            break
        out.append(re.sub(r"\r\n[ \t]", " ", f))
    return out


def only_newest_set(msg, instance):
    """msg without the ARC fields of instances below `instance` (for a cv=fail seal)"""
    head, body = msg.split(b"\r\n\r\n", 1)
    fields = re.split(rb"\r\n(?![ \t])", head)
    keep = []
    for f in fields:
        m = re.match(rb"(?i)arc-[a-z-]+:\s*i\s*=\s*(\d+)", f)  # i= comes first in all of them
        if m and int(m.group(1)) < instance:
            continue
        keep.append(f)
    return b"\r\n".join(keep) + b"\r\n\r\n" + body


def newest_set_verifies_alone(keys, msg, instance):
    a = dkim.ARC(only_newest_set(msg, instance))
    _, sets = a.sorted_arc_headers()
    r = a.verify_instance(sets, instance, dnsfunc=dnsfunc_for(keys))
    return r["ams-valid"] and r["as-valid"]


# ---------------------------------------------------------------- coex starts the chain

def arrives_with_arc(path):
    return re.search(rb"(?mi)^arc-seal:", path.read_bytes().split(b"\r\n\r\n", 1)[0]) is not None


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_coex_seals_corpus(keys, tmp_path, path):
    """every corpus message, DKIM-signed then sealed by coex: dkimpy and coex say pass.
    32 and 33 arrive with an ARC set whose key this test cannot have (Microsoft's, a
    bogus one): coex seals i=2 cv=fail and nobody says pass"""
    signed = dkim_sign(keys, path.read_bytes())
    p = coex_seal(keys, signed)
    sealed = p.stdout
    assert sealed.endswith(signed)
    fields = top_set(sealed)
    assert [f.split(":", 1)[0] for f in fields] == ["ARC-Seal", "ARC-Message-Signature",
                                                    "ARC-Authentication-Results"]
    for line in sealed[:len(sealed) - len(signed)].split(b"\r\n"):
        assert len(line) <= 78, line
    aar = fields[2]
    assert f"dkim=pass header.d={SOURCE} header.s=s1 header.b=" in aar, aar
    cv, results, reason = dkimpy_verify(keys, sealed)
    if arrives_with_arc(path):
        assert fields[0].startswith("ARC-Seal: i=2; ") and "cv=fail;" in fields[0]
        assert "arc=fail (no key given for " in aar, aar
        assert cv != b"pass", reason
        assert results[0]["ams-valid"], results  # coex's AMS is good
        assert newest_set_verifies_alone(keys, sealed, 2)
        rc, out = coex_verify(keys, tmp_path, sealed)
        assert rc == 1 and "cv=fail" in out and "not sealable" in out, out
        return
    assert fields[0].startswith("ARC-Seal: i=1; ") and "cv=none;" in fields[0]
    assert aar.startswith(f"ARC-Authentication-Results: i=1; {AUTHSERV}; dkim=pass")
    assert aar.endswith("arc=none"), aar
    assert cv == b"pass", f"dkimpy: {path.name}: {reason}"
    assert coex_verify(keys, tmp_path, sealed) == (0, "arc=pass i=1\n")


# ---------------------------------------------------------------- coex continues dkimpy's chain

def dkimpy_chain(keys, msg, hops):
    msg = dkimpy_seal(keys, msg, FW1, "fw1.example", "none")
    if hops == 2:
        msg = dkimpy_seal(keys, msg, FW2, "fw2.example", "pass")
    return msg


@needs_authres
@pytest.mark.parametrize("hops", [1, 2])
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_coex_continues_dkimpy_chain(keys, tmp_path, path, hops):
    if arrives_with_arc(path):
        pytest.skip("arrives with an ARC set of its own (see test_coex_seals_corpus)")
    chain = dkimpy_chain(keys, dkim_sign(keys, path.read_bytes()), hops)
    cv, _, reason = dkimpy_verify(keys, chain)
    assert cv == b"pass", reason
    # coex's validator agrees with dkimpy on dkimpy's chain
    assert coex_verify(keys, tmp_path, chain, pubs=(FW1, FW2)) == (0, f"arc=pass i={hops}\n")
    sealed = coex_seal(keys, chain).stdout
    fields = top_set(sealed)
    assert fields[0].startswith(f"ARC-Seal: i={hops + 1}; ") and "cv=pass;" in fields[0]
    assert f"arc=pass (i={hops} as.d=fw{hops}.example)" in fields[2], fields[2]
    cv, results, reason = dkimpy_verify(keys, sealed)
    assert cv == b"pass", f"dkimpy: {path.name}: {reason}"
    assert [r["instance"] for r in results] == list(range(hops + 1, 0, -1))
    assert coex_verify(keys, tmp_path, sealed) == (0, f"arc=pass i={hops + 1}\n")


# ---------------------------------------------------------------- broken chains

def break_body(msg):
    head, body = msg.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n" + body.replace(b"numbers", b"NUMBERS", 1)


def break_seal(msg):
    """one character of the i=1 ARC-Seal's b= changed"""
    m = re.search(rb"ARC-Seal: i=1;.*?b=([A-Za-z0-9+/])", msg, re.S)
    i = m.start(1)
    return msg[:i] + (b"A" if msg[i:i + 1] != b"A" else b"B") + msg[i + 1:]


def drop_ams(msg):
    return re.sub(rb"ARC-Message-Signature: i=1;.*?\r\n(?![ \t])", b"", msg, count=1, flags=re.S)


def renumber(msg):
    """the i=1 AAR says i=3: a gap and a missing AAR"""
    return msg.replace(b"ARC-Authentication-Results: i=1;", b"ARC-Authentication-Results: i=3;", 1)


@needs_authres
@pytest.mark.parametrize("breaker,why", [
    (break_body, "body hash does not match"),
    (break_seal, "ARC-Seal i=1: signature does not verify"),
    (drop_ams, "no ARC-Message-Signature with i=1"),
    (renumber, "no ARC-Authentication-Results with i=1"),
], ids=["body", "seal", "missing-ams", "gap"])
def test_broken_chain_sealed_fail(keys, tmp_path, breaker, why):
    msg = dkim_sign(keys, (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes())
    broken = breaker(dkimpy_chain(keys, msg, 1))
    cv, _, reason = dkimpy_verify(keys, broken)
    assert cv == b"fail", reason
    rc, out = coex_verify(keys, tmp_path, broken, pubs=(FW1,))
    assert rc == 1 and out.startswith("arc=fail") and why in out, out
    p = coex_seal(keys, broken)
    fields = top_set(p.stdout)
    assert "cv=fail;" in fields[0], fields[0]
    n = int(re.match(r"ARC-Seal: i=(\d+);", fields[0]).group(1))
    assert n == (4 if breaker is renumber else 2)  # the highest i= present was 3
    assert "arc=fail (" in fields[2]
    cv, results, reason = dkimpy_verify(keys, p.stdout)
    assert cv != b"pass", reason
    assert newest_set_verifies_alone(keys, p.stdout, n)  # RFC 8617 §5.1.2
    # and after a cv=fail seal nobody seals again (§5.1 step 1)
    again = coex_seal(keys, p.stdout, check=False)
    assert again.returncode == 1 and b"not sealable" in again.stderr


def test_no_key_is_a_failure(keys, tmp_path):
    sealed = coex_seal(keys, dkim_sign(keys, (ROOT / "tests/data/dkim/01-plain.eml").read_bytes())).stdout
    rc, out = coex_verify(keys, tmp_path, sealed, pubs=(SOURCE,))
    assert rc == 1 and "no key given for arc1._domainkey.relay.example" in out, out


# ---------------------------------------------------------------- changed after coex sealed

def tamper_subject(msg):
    return msg.replace(b"Subject: Plain text", b"Subject: Plain text!", 1)


def tamper_aar(msg):
    """coex's AAR says the DKIM result was something else"""
    return re.sub(rb"(ARC-Authentication-Results: i=\d; coex\.relay\.example; dkim=)pass", rb"\1fail",
                  msg, count=1)


def tamper_dkim_sig(msg):
    """a byte of coex's own DKIM-Signature (the AMS covers it, RFC 8617 §4.1.2)"""
    return re.sub(rb"(DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=source\.example; s=s1;\r\n t=)\d",
                  rb"\g<1>9", msg, count=1)


@needs_authres
@pytest.mark.parametrize("hops", [0, 1])
@pytest.mark.parametrize("tamper", [break_body, tamper_subject, tamper_aar, tamper_dkim_sig],
                         ids=["body", "subject", "aar", "dkim-signature"])
def test_changed_after_coex_sealed(keys, tmp_path, hops, tamper):
    msg = dkim_sign(keys, (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes())
    if hops:
        msg = dkimpy_chain(keys, msg, hops)
    sealed = coex_seal(keys, msg).stdout
    assert dkimpy_verify(keys, sealed)[0] == b"pass"
    bad = tamper(sealed)
    assert bad != sealed
    cv, _, reason = dkimpy_verify(keys, bad)
    assert cv == b"fail", reason
    rc, out = coex_verify(keys, tmp_path, bad)
    assert rc == 1 and out.startswith("arc=fail"), out


# ---------------------------------------------------------------- the CLI

def test_results_option_and_time(keys, tmp_path):
    msg = dkim_sign(keys, (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes())
    sealed = coex_seal(keys, msg, "--results", "dkim=pass header.d=source.example; arc=none",
                       "--time", "1796378400").stdout
    fields = top_set(sealed)
    assert fields[2] == (f"ARC-Authentication-Results: i=1; {AUTHSERV}; dkim=pass "
                         "header.d=source.example; arc=none")
    assert "t=1796378400;" in fields[0] and "t=1796378400;" in fields[1]
    assert dkimpy_verify(keys, sealed)[0] == b"pass"


def test_usage_and_refusals(keys, tmp_path):
    assert run("arc", check=False).returncode == 2
    assert run("arc", "verify", check=False).returncode == 2
    assert run("arc", "seal", "-", "--authserv-id", "x", check=False).returncode == 2
    msg = dkim_sign(keys, (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes())
    bad = coex_seal(keys, msg, "--authserv-id", "bad;id", check=False)
    # the last --authserv-id wins; ";" cannot go into an authserv-id
    assert bad.returncode == 1 and b"bad authserv-id" in bad.stderr
    ed = run("dkim", "keygen", "--domain", RELAY, "--selector", "ed", "--type", "ed25519", "--out",
             str(tmp_path))
    assert ed.returncode == 0
    p = run("arc", "seal", "-", "--key", f"{RELAY}:ed:{tmp_path}/ed._domainkey.{RELAY}.key",
            "--authserv-id", AUTHSERV, stdin=msg, check=False)
    assert p.returncode == 1 and b"rsa-sha256 key only" in p.stderr
    p = run("arc", "verify", "-", *pub_args(keys, RELAY), stdin=msg, check=False)
    assert p.returncode == 1 and p.stdout == b"arc=none i=0\n"
