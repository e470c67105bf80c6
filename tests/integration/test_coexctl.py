"""coexctl end to end: the real binary (the ASan+UBSan build under `make cli`)
against a real SQLite file in a temporary directory.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/integration
"""
import os
import pathlib
import sqlite3
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
COEXCTL = os.environ.get("COEXCTL", str(ROOT / "build" / "bin" / "coexctl"))
SAMPLE = ROOT / "tests" / "data" / "exo-outbound.in.eml"
GOLDEN = ROOT / "tests" / "data" / "exo-outbound.out.eml"

PAIRS = """source,target,enabled
alex.wilber@source.example,alexw@target.example,true
megan.bowen@source.example,MeganB@target.example,true
ceo@source.example,ceo@target.example,true
legal@source.example,legal@target.example,false
pat.taylor@source.example,pat.t@target.example,true
"""


class Ctl:
    def __init__(self, tmp):
        self.tmp = tmp
        self.db = tmp / "coex.db"

    def __call__(self, *args, stdin=b"", db=True, cwd=None):
        cmd = [COEXCTL] + (["--db", str(self.db)] if db else []) + list(args)
        p = subprocess.run(cmd, input=stdin, capture_output=True, cwd=cwd or self.tmp,
                           timeout=60)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode(
            "utf-8", "replace"), p.stdout

    def ok(self, *args, **kw):
        rc, out, err, _ = self(*args, **kw)
        assert rc == 0, f"{args}: rc={rc} stderr={err}"
        return out

    def write(self, name, text):
        path = self.tmp / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return str(path)

    def pairs(self):
        out = self.ok("mailbox", "list")
        return [line.split(",")[:3] for line in out.splitlines()[1:]]


@pytest.fixture
def ctl(tmp_path):
    return Ctl(tmp_path)


@pytest.fixture
def loaded(ctl):
    ctl.ok("mailbox", "import", ctl.write("pairs.csv", PAIRS))
    ctl.ok("coexistence", "on")
    return ctl


def test_import_and_list(ctl):
    out = ctl.ok("mailbox", "import", ctl.write("pairs.csv", PAIRS))
    assert "5 rows, 5 added, 0 updated" in out
    assert ctl.pairs()[0] == ["alex.wilber@source.example", "alexw@target.example", "true"]
    assert len(ctl.pairs()) == 5
    enabled = ctl.ok("mailbox", "list", "--enabled").splitlines()[1:]
    disabled = ctl.ok("mailbox", "list", "--disabled").splitlines()[1:]
    assert len(enabled) == 4 and len(disabled) == 1 and disabled[0].startswith("legal@")
    match = ctl.ok("mailbox", "list", "--match", "MEGAN").splitlines()[1:]
    assert [m.split(",")[1] for m in match] == ["MeganB@target.example"]
    # the store is a real SQLite file in WAL mode
    con = sqlite3.connect(ctl.db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT count(*) FROM mailbox").fetchone()[0] == 5
    con.close()


def test_import_errors_all_or_nothing(ctl):
    ctl.ok("mailbox", "import", ctl.write("first.csv", "source,target\na@s.example,a@t.example\n"))
    bad = ctl.write("bad.csv", "source,target,enabled\n"
                    "b@s.example,b@t.example,true\n"          # 2 good
                    "not an address,c@t.example,true\n"      # 3 bad source
                    "b@s.example,d@t.example,true\n"         # 4 duplicate source
                    "e@s.example,B@T.example,true\n"         # 5 duplicate target (case)
                    "f@s.example,f@t.example,maybe\n"        # 6 bad enabled
                    "g@s.example,a@t.example,true\n")        # 7 target owned in the store
    rc, out, err, _ = ctl("mailbox", "import", bad)
    assert rc == 1
    lines = err.splitlines()
    assert f"{bad}:3: bad source address 'not an address'" in lines
    assert f"{bad}:4: duplicate source b@s.example (first on line 2)" in lines
    assert f"{bad}:5: duplicate target B@T.example (first on line 2)" in lines
    assert f"{bad}:6: bad enabled value 'maybe' (use true or false)" in lines
    assert lines[-1].endswith("nothing imported")
    assert ctl.pairs() == [["a@s.example", "a@t.example", "false"]]
    # with the file-level errors fixed, the conflict with the store is reported by line
    conflict = ctl.write("conflict.csv", "source,target\nb@s.example,b@t.example\n"
                         "g@s.example,a@t.example\nh@s.example,a@s.example\n")
    rc, _, err, _ = ctl("mailbox", "import", conflict)
    assert rc == 1
    assert (f"{conflict}:3: target a@t.example already belongs to source a@s.example "
            "in the directory") in err
    assert ctl.pairs() == [["a@s.example", "a@t.example", "false"]]


def test_import_cross_and_header_errors(ctl):
    cross = ctl.write("cross.csv", "source,target\nx@s.example,x@t.example\n"
                      "y@s.example,x@s.example\n")
    rc, _, err, _ = ctl("mailbox", "import", cross)
    assert rc == 1
    assert f"{cross}:3: x@s.example is the target here but the source on line 2" in err
    nohdr = ctl.write("nohdr.csv", "a@s.example,a@t.example\n")
    rc, _, err, _ = ctl("mailbox", "import", nohdr)
    assert rc == 1 and f"{nohdr}:1: the first line must be a header" in err
    rc, _, err, _ = ctl("mailbox", "import", str(ctl.tmp / "missing.csv"))
    assert rc == 1 and "missing.csv: cannot read: No such file or directory" in err


def test_reimport_updates(loaded):
    upd = loaded.write("upd.csv", "target,source\n"            # other column order
                       "alexw@target.example,alex.w@source.example\n"
                       "legal@target.example,legal@source.example\n")
    # a new source for an existing target is a conflict: the old pair still owns it
    rc, _, err, _ = loaded("mailbox", "import", upd)
    assert rc == 1 and "already belongs to source alex.wilber@source.example" in err
    upd = loaded.write("upd2.csv", "source,target,enabled\n"
                       "alex.wilber@source.example,alex.wilber@target.example,false\n"
                       "legal@source.example,legal@target.example,true\n"
                       "new@source.example,new@target.example,\n")
    out = loaded.ok("mailbox", "import", upd)
    assert "3 rows, 1 added, 2 updated" in out
    pairs = {p[0]: p[1:] for p in loaded.pairs()}
    assert pairs["alex.wilber@source.example"] == ["alex.wilber@target.example", "false"]
    assert pairs["legal@source.example"] == ["legal@target.example", "true"]
    assert pairs["new@source.example"] == ["new@target.example", "false"]
    # without an enabled column the stored state is kept
    keep = loaded.write("keep.csv", "source,target\nlegal@source.example,legal@target.example\n")
    assert "1 unchanged" in loaded.ok("mailbox", "import", keep)
    assert {p[0]: p[2] for p in loaded.pairs()}["legal@source.example"] == "true"


def test_enable_disable(loaded):
    assert "for 1 mailbox" in loaded.ok("mailbox", "enable", "LEGAL@target.example")
    assert "for 2 mailbox" in loaded.ok("mailbox", "disable", "ceo@source.example",
                                        "alexw@target.example")
    rc, _, err, _ = loaded("mailbox", "enable", "ceo@target.example", "nobody@x.example")
    assert rc == 1 and "nobody@x.example" in err and "nothing changed" in err
    assert {p[0]: p[2] for p in loaded.pairs()}["ceo@source.example"] == "false"
    lst = loaded.write("list.txt", "# pilot group\nceo@target.example\n\nnobody@y.example\n")
    rc, _, err, _ = loaded("mailbox", "enable", "--file", lst)
    assert rc == 1 and f"{lst}:4: no mailbox pair has the address nobody@y.example" in err
    lst = loaded.write("list2.txt", "ceo@target.example\r\n  alexw@target.example  \n")
    assert "for 2 mailbox" in loaded.ok("mailbox", "enable", "--file", lst)
    loaded.ok("mailbox", "disable", "--all")
    assert all(p[2] == "false" for p in loaded.pairs())
    assert "for 5 mailbox" in loaded.ok("mailbox", "enable", "--all")
    assert "removed 1" in loaded.ok("mailbox", "remove", "pat.t@target.example")
    assert len(loaded.pairs()) == 4


def test_coexistence_switch(ctl):
    assert ctl.ok("coexistence", "status").startswith("coexistence off")
    ctl.ok("coexistence", "on")
    assert ctl.ok("coexistence", "status").startswith("coexistence on")
    ctl.ok("coexistence", "off")
    assert ctl.ok("coexistence", "status").startswith("coexistence off")
    rc, _, _, _ = ctl("coexistence", "maybe")
    assert rc == 2


def test_rewrite_golden(loaded):
    rc, _, err, raw = loaded("rewrite", "--direction", "to-source", "--trace",
                             "--mail-from", "alexw@target.example",
                             "--rcpt", "<partner01@external1.example>",
                             stdin=SAMPLE.read_bytes())
    assert rc == 0, err
    assert raw == GOLDEN.read_bytes()
    lines = err.splitlines()
    assert "envelope: mail-from=<alex.wilber@source.example> (was <alexw@target.example>)" in lines
    assert "envelope: rcpt=<partner01@external1.example> (not rewritten by this route)" in lines
    assert "trace: From: alexw@target.example -> alex.wilber@source.example (mailbox-pair)" in lines
    assert ("trace: To: alexw+reports@target.example -> alex.wilber+reports@source.example "
            "(subaddress)") in lines
    assert "trace: To: legal@target.example left untouched: address rewrite is off for it" in lines


def test_rewrite_to_target_and_rcpt(loaded):
    msg = b"From: Alex <alex.wilber@source.example>\r\nTo: ceo@source.example\r\n\r\nhi\r\n"
    rc, _, err, raw = loaded("rewrite", "--direction", "to-target", "--rcpt",
                             "ceo@source.example", stdin=msg)
    assert rc == 0
    assert raw == b"From: Alex <alexw@target.example>\r\nTo: ceo@target.example\r\n\r\nhi\r\n"
    assert "envelope: rcpt=<ceo@target.example> (was <ceo@source.example>)" in err
    rc, _, err, _ = loaded("rewrite", "--direction", "to-target", "--rewrite-rcpt", "no",
                           "--rcpt", "ceo@source.example", stdin=msg)
    assert "rcpt=<ceo@source.example> (not rewritten by this route)" in err


def test_rewrite_coexistence_off_passes_through(loaded):
    loaded.ok("coexistence", "off")
    data = SAMPLE.read_bytes()
    rc, _, err, raw = loaded("rewrite", "--direction", "to-source", "--trace", stdin=data)
    assert rc == 0 and raw == data
    assert "trace: coexistence is off: message passed through unchanged" in err


def test_rewrite_unmapped_is_byte_identical(loaded):
    data = (b"Received: from a by b\r\nFrom: someone@external.example\r\n"
            b"To: \"x\" <y@external.example>\r\nSubject: alexw@target.example\r\n\r\n"
            b"alexw@target.example\r\n.\r\n")
    rc, _, _, raw = loaded("rewrite", "--direction", "to-source", stdin=data)
    assert rc == 0 and raw == data


def test_rewrite_bad_input(loaded):
    rc, _, err, _ = loaded("rewrite", "--direction", "to-source", stdin=b"")
    assert rc == 1 and "no message on standard input" in err
    rc, _, err, _ = loaded("rewrite", "--direction", "to-source", stdin=b"\x00\x01binary\n")
    assert rc == 1 and "not a message" in err
    rc, _, err, _ = loaded("rewrite", "--direction", "sideways", stdin=b"To: a@b\r\n")
    assert rc == 1 and "to-source or to-target" in err
    rc, _, err, _ = loaded("rewrite", stdin=b"To: a@b\r\n")
    assert rc == 2 and "--direction" in err
    rc, _, err, _ = loaded("rewrite", "--direction", "to-source", "--mail-from", "a b",
                           stdin=b"To: a@b\r\n")
    assert rc == 1 and "bad mail-from address 'a b'" in err


def test_domains_and_exceptions(loaded):
    loaded.ok("domain", "add", "target.example", "source.example")
    rc, _, err, _ = loaded("domain", "add", "target.example", "other.example")
    assert rc == 1 and "already in the pair" in err
    rc, _, err, _ = loaded("domain", "add", "bad domain", "x.example")
    assert rc == 1 and "bad domain" in err
    loaded.ok("exception", "add", "noreply@target.example")
    loaded.ok("exception", "add", "frozen.target.example")
    msg = (b"To: stranger@target.example, noreply@target.example, ceo@target.example\r\n"
           b"Cc: x@frozen.target.example\r\n\r\n")
    rc, _, err, raw = loaded("rewrite", "--direction", "to-source", "--trace", stdin=msg)
    assert rc == 0
    assert raw == (b"To: stranger@source.example, noreply@target.example, ceo@source.example\r\n"
                   b"Cc: x@frozen.target.example\r\n\r\n")
    assert "(domain-pair)" in err and "on the exception list" in err
    loaded.ok("domain", "remove", "target.example", "source.example")
    rc, _, err, _ = loaded("domain", "remove", "target.example", "source.example")
    assert rc == 1 and "no such domain pair" in err
    loaded.ok("exception", "remove", "noreply@target.example")
    rc, _, err, _ = loaded("exception", "remove", "noreply@target.example")
    assert rc == 1 and "no such exception" in err


def test_default_db_and_config(tmp_path):
    ctl = Ctl(tmp_path)
    csv = ctl.write("p.csv", "source,target,enabled\na@s.example,a@t.example,yes\n")
    ctl.ok("mailbox", "import", csv, db=False)
    assert (tmp_path / "var" / "coex.db").exists()          # the embedded default
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "coex.conf").write_text("# test\ndirectory = other.db\n")
    ctl.ok("mailbox", "import", csv, db=False)
    assert (tmp_path / "other.db").exists()                   # etc/coex.conf wins
    bad = ctl.write("bad.conf", "directory = x.db\nlisten 1.2.3.4\n")
    rc, _, err, _ = ctl("--config", bad, "coexistence", "status", db=False)
    assert rc == 1 and f"{bad}:2: expected 'key = value'" in err
    bad = ctl.write("bad2.conf", "no_such_key = 1\n")
    rc, _, err, _ = ctl("--config", bad, "coexistence", "status", db=False)
    assert rc == 1 and f"{bad}:1: unknown key 'no_such_key'" in err
    # the sub-address separator comes from the config
    sep = ctl.write("sep.conf", "directory = var/coex.db\nsubaddress_separators = -\n")
    ctl.ok("--config", sep, "coexistence", "on", db=False)
    rc, _, _, raw = ctl("--config", sep, "rewrite", "--direction", "to-source",
                        stdin=b"To: a-x@t.example, a+y@t.example\r\n", db=False)
    assert rc == 0 and raw == b"To: a-x@s.example, a+y@t.example\r\n"


def test_usage(ctl):
    rc, _, err, _ = ctl("frobnicate")
    assert rc == 2 and "usage: coexctl" in err
    rc, out, _, _ = ctl("--help", db=False)
    assert rc == 0 and "mailbox import" in out
