"""DKIM signing checked by two independent verifiers.

Every signature `coexctl dkim sign` makes over the corpus in tests/data/dkim
(rsa-2048, ed25519 and both; relaxed/relaxed and simple/simple) must verify
with dkimpy (Debian's python3-dkim, its DNS function answering from this
test's own key table) and with OpenDKIM's test mode (`opendkim -x CONF -t`,
keys from a TestPublicKeys file). Tampered messages must fail in both, which
proves the verifiers would catch a wrong signature.

OpenDKIM's test mode reports one signature per message, so each of coex's
signatures is shown to it in a copy of the message that carries only that
one of coex's fields (the fields are independent: none signs another).

One known limit of OpenDKIM's test mode: it feeds the message through its
milter code, which rebuilds every field as "Name: value" (one space after the
colon). With simple header canonicalisation a signed field written any
other way ("Subject:x", "From:   a", "Message-ID:" + fold) then fails in
OpenDKIM whoever signed it. For those messages the test shows OpenDKIM
failing dkimpy's own simple signature of the same message in the same way,
instead of accepting coex's; dkimpy still verifies coex's signature.

A second limit: with relaxed body canonicalisation OpenDKIM answers "message
not signed" for a body whose last line has no CRLF. RFC 6376 §3.4.4 adds
the CRLF, so the test shows OpenDKIM verifying the very same field once the
CRLF is there (the canonical body is the same bytes either way).

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import os
import pathlib
import re
import shutil
import stat
import subprocess
import time

import pytest

dkim = pytest.importorskip("dkim")

ROOT = pathlib.Path(__file__).resolve().parents[2]
COEXCTL = os.environ.get("COEXCTL", str(ROOT / "build" / "bin" / "coexctl"))
CORPUS = sorted((ROOT / "tests" / "data" / "dkim").glob("*.eml"))
OPENDKIM = shutil.which("opendkim") or "/usr/sbin/opendkim"
DOMAIN = "source.example"

KEYSETS = {"rsa": ["rsa"], "ed25519": ["ed"], "dual": ["rsa", "ed"]}
CANONS = ["relaxed/relaxed", "simple/simple"]


def run(*args, stdin=b"", check=True):
    p = subprocess.run([COEXCTL, *args], input=stdin, capture_output=True, timeout=120)
    if check:
        assert p.returncode == 0, f"{args}: rc={p.returncode} {p.stderr.decode(errors='replace')}"
    return p


def zone_record(line):
    """`S._domainkey.D IN TXT "a" "b"` -> (name, "ab")"""
    name = line.split()[0]
    return name, "".join(re.findall(r'"([^"]*)"', line))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkimkeys")
    table, files = {}, {}
    for tag, args in (("rsa", ["--type", "rsa", "--bits", "2048"]), ("ed", ["--type", "ed25519"])):
        sel = f"coex-{tag}"
        out = run("dkim", "keygen", "--domain", DOMAIN, "--selector", sel, "--out", str(d), *args)
        name, txt = zone_record(out.stdout.decode().strip())
        assert name == f"{sel}._domainkey.{DOMAIN}"
        table[name + "."] = txt.encode()
        files[tag] = (sel, d / f"{sel}._domainkey.{DOMAIN}.key")
    (d / "keys.txt").write_text("".join(f"{n.rstrip('.')} {t.decode()}\n" for n, t in table.items()))
    (d / "opendkim.conf").write_text(f"Mode v\nTestPublicKeys {d / 'keys.txt'}\nSyslog no\n")
    return {"dir": d, "table": table, "files": files, "conf": d / "opendkim.conf"}


def key_args(keys, which):
    out = []
    for tag in KEYSETS[which]:
        sel, path = keys["files"][tag]
        out += ["--key", f"{DOMAIN}:{sel}:{path}"]
    return out


def sign(keys, which, canon, msg, *extra):
    return run("dkim", "sign", *key_args(keys, which), "--canon", canon, *extra, stdin=msg).stdout


def split_signed(signed, count):
    """coex's `count` fields on top -> ([field bytes...], the original message)"""
    fields, rest = [], signed
    for _ in range(count):
        assert rest.startswith(b"DKIM-Signature:"), rest[:200]
        m = re.match(rb"DKIM-Signature:.*?\r\n(?![ \t])", rest, re.S)
        fields.append(m.group(0))
        rest = rest[m.end():]
    return fields, rest


def dkimpy_verify(keys, msg, idx):
    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        return keys["table"].get(name)
    try:
        return dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


def opendkim_verify(keys, tmp_path, msg, name="m.eml"):
    path = tmp_path / name
    path.write_bytes(msg)
    p = subprocess.run([OPENDKIM, "-x", str(keys["conf"]), "-t", str(path)], capture_output=True,
                       timeout=60)
    return (p.stdout + p.stderr).decode(errors="replace")


def milter_safe(head, names):
    """every signed field is written "Name: value" (see the module comment)"""
    for m in re.finditer(rb"(?m)^([!-9;-~]+):(.*(?:\r\n[ \t].*)*)", head):
        if m.group(1).decode().lower() in names and not re.match(rb" [^ \t\r\n]", m.group(2)):
            return False
    return True


def opendkim_rejects_dkimpy_simple(keys, tmp_path, msg, names):
    sel, path = keys["files"]["rsa"]
    sig = dkim.sign(msg, sel.encode(), DOMAIN.encode(), path.read_bytes(),
                    canonicalize=(b"simple", b"simple"), include_headers=[n.encode() for n in names])
    assert dkimpy_verify(keys, sig + msg, 0)
    out = opendkim_verify(keys, tmp_path, sig + msg, "dkimpy.eml")
    return "failed" in out and not opendkim_ok(out, sel)


def opendkim_ok(output, selector):
    return re.search(rf"verification \(s={re.escape(selector)}, d={DOMAIN}, .*\) succeeded", output)


def test_corpus_size():
    assert len(CORPUS) >= 30
    for path in CORPUS:
        head = path.read_bytes().split(b"\r\n\r\n", 1)[0]
        # dkimpy refuses white space before the colon (RFC 5322 obs syntax)
        assert not re.search(rb"(?m)^[!-9;-~]+[ \t]+:", head), path.name


@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("which", list(KEYSETS))
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_signature_verifies(keys, tmp_path, path, which, canon):
    msg = path.read_bytes()
    signed = sign(keys, which, canon, msg)
    nsig = len(KEYSETS[which])
    fields, original = split_signed(signed, nsig)
    assert original == msg
    for i, field in enumerate(fields):
        # folded at 78 columns, never l=, t= always, from oversigned
        lines = field.split(b"\r\n")
        assert all(len(line) <= 78 for line in lines), field
        unfolded = re.sub(rb"\r\n[ \t]", b" ", field).decode()
        assert "l=" not in re.sub(r"[bh]+=[^;]*", "", unfolded.split(":", 1)[1]).replace(" ", "")
        assert re.search(r"\bt=\d+;", unfolded)
        assert f"c={canon};" in unfolded
        h = re.search(r"\bh=([^;]*);", unfolded).group(1).replace(" ", "").split(":")
        head = msg.split(b"\r\n\r\n", 1)[0]
        assert h.count("from") == len(re.findall(rb"(?mi)^from:", head)) + 1
        # dkimpy, on the whole signed message
        assert dkimpy_verify(keys, signed, i), f"dkimpy: signature {i} of {path.name}"
        # OpenDKIM, on the message with only this one of coex's fields
        sel = keys["files"][KEYSETS[which][i]][0]
        out = opendkim_verify(keys, tmp_path, field + original)
        if canon.startswith("simple") and not milter_safe(head, set(h)):
            assert opendkim_rejects_dkimpy_simple(keys, tmp_path, msg, sorted(set(h))), path.name
            continue
        if canon.endswith("/relaxed") and not original.endswith(b"\r\n"):
            assert "message not signed" in out, out
            out = opendkim_verify(keys, tmp_path, field + original + b"\r\n")
        assert opendkim_ok(out, sel), f"opendkim: {path.name}: {out}"


def tamper_body(msg):
    head, body = msg.split(b"\r\n\r\n", 1)
    i = body.index(b"o")
    return head + b"\r\n\r\n" + body[:i] + b"0" + body[i + 1:]


def tamper_subject(msg):
    return msg.replace(b"Subject: Plain text", b"Subject: Plain text!", 1)


def tamper_add_from(msg):
    # oversigning: a From added after signing breaks the signature
    return msg.replace(b"\r\nTo:", b"\r\nFrom: Mallory <m@evil.example>\r\nTo:", 1)


@pytest.mark.parametrize("canon", CANONS)
@pytest.mark.parametrize("which", ["rsa", "ed25519"])
@pytest.mark.parametrize("tamper", [tamper_body, tamper_subject, tamper_add_from],
                         ids=["body-byte", "header-changed", "from-added"])
def test_tampered_fails(keys, tmp_path, which, canon, tamper):
    msg = (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes()
    signed = sign(keys, which, canon, msg)
    sel = keys["files"][KEYSETS[which][0]][0]
    assert dkimpy_verify(keys, signed, 0)
    assert opendkim_ok(opendkim_verify(keys, tmp_path, signed), sel)
    bad = tamper(signed)
    assert bad != signed
    assert not dkimpy_verify(keys, bad, 0)
    out = opendkim_verify(keys, tmp_path, bad)
    assert re.search(r"verification \(s=.*\) failed", out) and not opendkim_ok(out, sel), out
    # and coex's own offline verifier agrees
    pub = keys["dir"] / f"{sel}.txt"
    pub.write_text(keys["table"][f"{sel}._domainkey.{DOMAIN}."].decode())
    (tmp_path / "bad.eml").write_bytes(bad)
    (tmp_path / "good.eml").write_bytes(signed)
    assert run("dkim", "verify", str(tmp_path / "good.eml"), "--key", f"{DOMAIN}:{sel}:{pub}").returncode == 0
    p = run("dkim", "verify", str(tmp_path / "bad.eml"), "--key", f"{DOMAIN}:{sel}:{pub}", check=False)
    assert p.returncode == 1 and b"dkim=fail" in p.stdout


@pytest.mark.parametrize("canon", CANONS)
def test_chunking_does_not_change_the_signature(keys, canon):
    for name in ("06-trailing-blank-lines", "07-trailing-whitespace", "25-no-final-crlf", "35-crlf-runs-inside"):
        msg = (ROOT / "tests" / "data" / "dkim" / f"{name}.eml").read_bytes()
        ref = sign(keys, "ed25519", canon, msg, "--time", "1796378400")
        for chunk in ("1", "2", "3", "7", "64"):
            assert sign(keys, "ed25519", canon, msg, "--time", "1796378400", "--chunk", chunk) == ref


def test_expiry_tag(keys, tmp_path):
    msg = (ROOT / "tests" / "data" / "dkim" / "01-plain.eml").read_bytes()
    now = int(time.time())
    signed = sign(keys, "rsa", "relaxed/relaxed", msg, "--time", str(now), "--expire", "86400")
    assert f"x={now + 86400};".encode() in re.sub(rb"\r\n ", b" ", signed)
    assert dkimpy_verify(keys, signed, 0)


def test_keygen_file_mode_and_no_overwrite(tmp_path):
    out = run("dkim", "keygen", "--domain", "d.example", "--selector", "s1", "--type", "ed25519",
              "--out", str(tmp_path))
    path = tmp_path / "s1._domainkey.d.example.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert out.stdout.decode().startswith('s1._domainkey.d.example IN TXT "v=DKIM1; k=ed25519; p=')
    before = path.read_bytes()
    p = run("dkim", "keygen", "--domain", "d.example", "--selector", "s1", "--type", "ed25519",
            "--out", str(tmp_path), check=False)
    assert p.returncode != 0 and path.read_bytes() == before
    # dns prints the same record again
    again = run("dkim", "dns", "--key", str(path), "--domain", "d.example", "--selector", "s1")
    assert again.stdout == out.stdout


def test_rsa_record_split_into_255_byte_strings(tmp_path):
    out = run("dkim", "keygen", "--domain", "d.example", "--selector", "big", "--bits", "4096",
              "--out", str(tmp_path)).stdout.decode()
    strings = re.findall(r'"([^"]*)"', out)
    assert len(strings) >= 3 and all(len(s) <= 255 for s in strings)
    assert "".join(strings).startswith("v=DKIM1; k=rsa; p=MII")


def test_small_rsa_key_refused(tmp_path):
    p = run("dkim", "keygen", "--domain", "d.example", "--selector", "s", "--bits", "1024",
            "--out", str(tmp_path), check=False)
    assert p.returncode != 0 and not list(tmp_path.iterdir())
    small = tmp_path / "small.key"
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024",
                    "-out", str(small)], check=True, capture_output=True)
    p = run("dkim", "sign", "--key", f"d.example:s:{small}", stdin=b"From: a@d.example\r\n\r\nx\r\n",
            check=False)
    assert p.returncode != 0 and b"1024 bits refused" in p.stderr


def test_message_without_from_is_not_signed(keys):
    p = run("dkim", "sign", *key_args(keys, "rsa"), stdin=b"To: b@x.example\r\n\r\nbody\r\n", check=False)
    assert p.returncode != 0 and b"no From field" in p.stderr


def test_dns_of_the_configured_keys(tmp_path):
    """`coexctl dkim dns --domain D` prints the records of the dkim_key lines of
    the configuration, the same as `dns --key` for each file."""
    keys = tmp_path / "k"
    keys.mkdir()
    run("dkim", "keygen", "--domain", "source.example", "--selector", "s1", "--out", str(keys))
    run("dkim", "keygen", "--domain", "source.example", "--selector", "e1", "--type", "ed25519",
        "--out", str(keys))
    conf = tmp_path / "c.conf"
    conf.write_text(f"""directory = {tmp_path}/x.db
[route r]
next_hop = file:{tmp_path}/o
dkim_key = source.example s1 {keys}/s1._domainkey.source.example.key
dkim_key = source.example e1 {keys}/e1._domainkey.source.example.key
""")
    out = run("--config", str(conf), "dkim", "dns", "--domain", "source.example").stdout.decode()
    one = run("dkim", "dns", "--domain", "source.example", "--selector", "s1", "--key",
              f"{keys}/s1._domainkey.source.example.key").stdout.decode()
    assert out.startswith(one)
    assert "e1._domainkey.source.example IN TXT \"v=DKIM1; k=ed25519; p=" in out
    p = run("--config", str(conf), "dkim", "dns", "--domain", "other.example", check=False)
    assert p.returncode == 1 and b"configures no dkim_key for other.example" in p.stderr


def test_verify_with_the_private_key_file(tmp_path):
    """`dkim verify --key D:S:FILE` accepts the private key PEM (docs/dkim.md)."""
    keys = tmp_path / "k"
    keys.mkdir()
    run("dkim", "keygen", "--domain", "source.example", "--selector", "e1", "--type", "ed25519",
        "--out", str(keys))
    key = f"source.example:e1:{keys}/e1._domainkey.source.example.key"
    msg = b"From: a@source.example\r\nTo: b@x.example\r\nSubject: t\r\n\r\nhello\r\n"
    signed = run("dkim", "sign", "--key", key, stdin=msg).stdout
    (tmp_path / "s.eml").write_bytes(signed)
    out = run("dkim", "verify", str(tmp_path / "s.eml"), "--key", key).stdout.decode()
    assert "dkim=pass d=source.example s=e1" in out


def test_keygen_creates_a_missing_directory_private(tmp_path):
    d = tmp_path / "etc" / "coex" / "dkim"
    run("dkim", "keygen", "--domain", "d.example", "--selector", "s1", "--type", "ed25519",
        "--out", str(d))
    assert (d / "s1._domainkey.d.example.key").exists()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o700
