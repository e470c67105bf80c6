"""coexd end to end, with real peers on 127.0.0.1: Python's smtplib and raw
sockets as clients, aiosmtpd as the next hop (with STARTTLS and client
certificates), certificates made by the openssl command.
"""
import email
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import COEXD, free_port, server_tls_context, wait_for, wait_port

MSG = (b"From: Alex Wilber <alexw@target.example>\r\n"
       b"To: \"Partner\" <partner@external1.example>, ceo@target.example\r\n"
       b"Subject: hello alexw@target.example\r\n"
       b"\r\n"
       b"Body mentions alexw@target.example.\r\n")


def config(port, next_hop="file:outbox", extra_global="", connector="", route=""):
    return f"""hostname = coex.test
directory = coex.db
spool = spool
directory_poll = 1
{extra_global}
[connector main]
listen = 127.0.0.1:{port}
networks = 127.0.0.0/8
route = out
{connector}
[route out]
direction = to-source
next_hop = {next_hop}
retry_schedule = 1s
{route}
"""


def send(port, msg=MSG, sender="alexw@target.example", rcpts=("partner@external1.example",)):
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        return s.sendmail(sender, list(rcpts), msg)


def test_file_hop_rewrites_and_queues(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        code, ehlo = s.ehlo("client.test")
        for ext in (b"PIPELINING", b"SIZE", b"8BITMIME", b"SMTPUTF8", b"ENHANCEDSTATUSCODES",
                    b"DSN", b"CHUNKING"):
            assert ext in ehlo
        s.sendmail("alexw@target.example", ["partner@external1.example"], MSG)
    files = wait_for(d.outbox)
    assert len(files) == 1
    data = files[0].read_bytes()
    msg = email.message_from_bytes(data)
    assert msg["From"] == "Alex Wilber <alex.wilber@source.example>"
    assert msg["To"] == "\"Partner\" <partner@external1.example>, ceo@source.example"
    assert msg["Subject"] == "hello alexw@target.example"        # never rewritten
    assert data.endswith(b"Body mentions alexw@target.example.\r\n")
    assert "by coex.test (coex, connector main)" in msg["Received"]
    assert msg["X-Coex-Loop"] == "coex.test/out"
    env = files[0].with_suffix(".env").read_text()
    assert "alex.wilber@source.example" in env and "partner@external1.example" in env
    log = d.log_text()
    assert "rewrite From: alexw@target.example -> alex.wilber@source.example" in log
    assert "status=sent" in log


def test_disallowed_network_refused(coexd_factory):
    port = free_port()
    cfg = config(port).replace("networks = 127.0.0.0/8", "networks = 192.0.2.0/24, 2001:db8::/32")
    d = coexd_factory(cfg, wait_ports=[port])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        banner = c.recv(1000)
    assert banner.startswith(b"554 5.7.1")
    assert "not in the connector's networks" in d.log_text()
    assert d.outbox() == []


def tls_server_config(certs, port, names="relay.target.example", mode="require"):
    return config(port, connector=f"""starttls = {mode}
tls_cert = {certs}/coexd.crt
tls_key = {certs}/coexd.key
tls_ca = {certs}/ca.crt
client_cert_names = {names}
""")


def client_ctx(certs, cert=None):
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(certs / f"{cert}.crt", certs / f"{cert}.key")
    return ctx


@pytest.mark.parametrize("cert,ok", [(None, False), ("wrongname", False), ("rogueclient", False),
                                     ("client", True)])
def test_client_certificate_required(coexd_factory, certs, cert, ok):
    port = free_port()
    d = coexd_factory(tls_server_config(certs, port), wait_ports=[port])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        code, _ = s.mail("alexw@target.example")
        assert code == 530                                  # STARTTLS first
        s.rset()
        s.starttls(context=client_ctx(certs, cert))
        s.ehlo("client.test")
        code, reply = s.mail("alexw@target.example")
        if ok:
            assert code == 250
            s.rcpt("partner@external1.example")
            code, _ = s.data(MSG)
            assert code == 250
        else:
            assert code == 554 and reply.startswith(b"5.7.1")
    if ok:
        assert len(wait_for(d.outbox)) == 1
        assert "certificate relay.target.example (accepted)" in d.log_text()
    else:
        time.sleep(0.3)
        assert d.outbox() == []


def test_pipelined_commands_after_starttls_discarded(coexd_factory, certs):
    port = free_port()
    d = coexd_factory(tls_server_config(certs, port, mode="offer").replace(
        "client_cert_names = relay.target.example\n", ""), wait_ports=[port])
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = raw.makefile("rb")
    assert f.readline().startswith(b"220")
    raw.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    # the injection: a command in the same packet as STARTTLS
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<attacker@evil.example>\r\n")
    assert f.readline().startswith(b"220")
    tls = client_ctx(certs).wrap_socket(raw, server_hostname="coex.test")
    tf = tls.makefile("rb")
    tls.sendall(b"EHLO x\r\n")
    while not tf.readline().startswith(b"250 "):
        pass
    tls.sendall(b"RCPT TO:<a@b.example>\r\n")
    reply = tf.readline()
    assert reply.startswith(b"503"), reply             # no MAIL FROM survived the handshake
    tls.sendall(b"QUIT\r\n")
    tls.close()
    assert "discarded" in d.log_text() and "pipelined after STARTTLS" in d.log_text()


def smtp_hop_config(certs, port, hop_port, extra_route=""):
    return config(port, next_hop=f"smtp:[127.0.0.1]:{hop_port}", route=f"""tls_ca = {certs}/ca.crt
tls_cert = {certs}/coexclient.crt
tls_key = {certs}/coexclient.key
tls_verify_name = nexthop.test
{extra_route}""")


def test_relay_over_verified_starttls_with_client_cert(coexd_factory, sink_factory, certs):
    hop = sink_factory(tls_context=server_tls_context(certs, require_client_cert=True),
                       require_starttls=True)
    port = free_port()
    d = coexd_factory(smtp_hop_config(certs, port, hop.port), wait_ports=[port])
    send(port, rcpts=("partner@external1.example", "ceo@target.example"))
    assert hop.wait(1), d.log_text()
    m = hop.messages[0]
    assert m["tls"] and m["cert"], "next hop saw no client certificate"
    sans = dict(m["cert"]["subjectAltName"])
    assert sans["DNS"] == "coex.source.example"
    assert m["from"] == "alex.wilber@source.example"
    assert m["to"] == ["partner@external1.example", "ceo@target.example"]  # rcpt: not rewritten
    parsed = email.message_from_bytes(m["data"])
    assert parsed["From"] == "Alex Wilber <alex.wilber@source.example>"
    assert "relay=127.0.0.1[127.0.0.1]" in d.log_text() or "status=sent" in d.log_text()


def test_next_hop_with_untrusted_certificate_is_deferred(coexd_factory, sink_factory, certs):
    hop = sink_factory(tls_context=server_tls_context(certs), require_starttls=True)
    port = free_port()
    # verify against the rogue CA: the next hop's certificate must not be accepted
    cfg = smtp_hop_config(certs, port, hop.port).replace(f"tls_ca = {certs}/ca.crt",
                                                         f"tls_ca = {certs}/rogue.crt")
    d = coexd_factory(cfg, wait_ports=[port])
    send(port)
    assert wait_for(lambda: "status=deferred" in d.log_text(), 15), d.log_text()
    assert hop.messages == []


def test_next_hop_down_then_up(coexd_factory, sink_factory, certs):
    hop_port = free_port()
    port = free_port()
    d = coexd_factory(smtp_hop_config(certs, port, hop_port), wait_ports=[port])
    send(port)
    assert wait_for(lambda: "status=deferred" in d.log_text(), 15), d.log_text()
    hop = sink_factory(port=hop_port, tls_context=server_tls_context(certs))
    assert hop.wait(1, timeout=30), d.log_text()
    assert len(hop.messages) == 1


def test_5xx_gives_exactly_one_dsn(coexd_factory, sink_factory, certs):
    hop = sink_factory(tls_context=server_tls_context(certs),
                       reject={"nobody@external1.example": "550 5.1.1 no such user"})
    port = free_port()
    d = coexd_factory(smtp_hop_config(certs, port, hop.port), wait_ports=[port])
    send(port, rcpts=("nobody@external1.example", "partner@external1.example"))
    assert hop.wait(2, timeout=30), d.log_text()
    time.sleep(3)                                        # room for a wrong second bounce
    bounces = [m for m in hop.messages if m["from"] in ("", "<>")]
    normal = [m for m in hop.messages if m["from"] not in ("", "<>")]
    assert len(bounces) == 1, hop.messages
    assert len(normal) == 1 and normal[0]["to"] == ["partner@external1.example"]
    assert bounces[0]["to"] == ["alex.wilber@source.example"]
    report = email.message_from_bytes(bounces[0]["data"])
    assert report.get_content_type() == "multipart/report"
    assert b"nobody@external1.example" in bounces[0]["data"]
    assert b"5.1.1" in bounces[0]["data"]


def test_sigkill_after_250_loses_nothing(coexd_factory, sink_factory, certs):
    hop_port = free_port()
    port = free_port()
    d = coexd_factory(smtp_hop_config(certs, port, hop_port), wait_ports=[port])
    accepted = 0
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        for i in range(40):
            msg = MSG.replace(b"Subject: hello", b"Subject: n%d" % i)
            s.sendmail("alexw@target.example", ["partner@external1.example"], msg)
            accepted += 1
    d.proc.send_signal(signal.SIGKILL)                   # right after the last 250
    d.proc.wait()
    d.proc = None
    hop = sink_factory(port=hop_port, tls_context=server_tls_context(certs))
    d.start([port])
    assert hop.wait(accepted, timeout=60), d.log_text()
    subjects = {email.message_from_bytes(m["data"])["Subject"].split()[0] for m in hop.messages}
    assert subjects == {f"n{i}" for i in range(accepted)}
    time.sleep(2)
    assert len(hop.messages) == accepted                 # and none twice


SMUGGLING = [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r", b"\r\n.\r"]


@pytest.mark.parametrize("eod", SMUGGLING, ids=["lf.crlf", "crlf.lf", "lf.lf", "cr.cr", "crlf.cr"])
def test_smuggling_cannot_make_a_second_message(coexd_factory, sink_factory, certs, eod):
    hop = sink_factory(tls_context=server_tls_context(certs))
    port = free_port()
    d = coexd_factory(smtp_hop_config(certs, port, hop.port), wait_ports=[port])
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = c.makefile("rb")

    def cmd(line):
        c.sendall(line + b"\r\n")
        while True:
            r = f.readline()
            if r[3:4] != b"-":
                return r

    assert f.readline().startswith(b"220")
    assert cmd(b"EHLO x").startswith(b"250")
    assert cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert cmd(b"DATA").startswith(b"354")
    c.sendall(b"From: alexw@target.example\r\n\r\nfirst" + eod +
              b"MAIL FROM:<ceo@target.example>\r\nRCPT TO:<victim@external1.example>\r\n"
              b"DATA\r\nFrom: ceo@target.example\r\n\r\nsmuggled\r\n.\r\n")
    reply = f.readline()
    assert reply.startswith(b"550 5.6.11"), reply
    # the session is still in sync: a clean message goes through
    assert cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert cmd(b"DATA").startswith(b"354")
    c.sendall(b"From: alexw@target.example\r\nSubject: clean\r\n\r\nok\r\n.\r\n")
    assert f.readline().startswith(b"250")
    cmd(b"QUIT")
    c.close()
    assert hop.wait(1)
    time.sleep(1)
    assert len(hop.messages) == 1
    assert b"smuggled" not in hop.messages[0]["data"]
    assert hop.messages[0]["to"] == ["partner@external1.example"]


def test_limits(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port, extra_global="message_size_limit = 2k\nmax_recipients = 3\n"),
                      wait_ports=[port])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.mail("alexw@target.example", ["SIZE=999999"])[0] == 552
        s.rset()
        s.mail("alexw@target.example")
        for i in range(3):
            assert s.rcpt(f"r{i}@external1.example")[0] == 250
        code, reply = s.rcpt("r4@external1.example")
        assert code == 452 and reply.startswith(b"4.5.3")
        code, reply = s.data(MSG + b"x" * 4000 + b"\r\n")
        assert code == 552 and reply.startswith(b"5.3.4")
        # an over-long command line
        s.send(b"NOOP " + b"x" * 5000 + b"\r\n")
        code, reply = s.getreply()
        assert code == 500 and reply.startswith(b"5.5.2")
        assert s.noop()[0] == 250
    assert d.outbox() == []


def test_directory_change_applies_without_restart(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    send(port)
    d.ctl("mailbox", "disable", "alexw@target.example")
    assert wait_for(lambda: "generation 3" in d.log_text() or "generation 4" in d.log_text(), 6)
    send(port)
    d.ctl("coexistence", "off")
    time.sleep(2.5)
    send(port)
    files = wait_for(lambda: len(d.outbox()) >= 3 and d.outbox())
    froms = [email.message_from_bytes(f.read_bytes())["From"] for f in files]
    assert sorted(froms) == sorted(["Alex Wilber <alex.wilber@source.example>",
                                    "Alex Wilber <alexw@target.example>",
                                    "Alex Wilber <alexw@target.example>"])
    assert "coexistence is off: relayed without rewriting" in d.log_text()


def test_loop_and_hop_limit(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port, extra_global="hop_limit = 3\n"), wait_ports=[port])
    looped = b"X-Coex-Loop: coex.test/out\r\n" + MSG
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(port, msg=looped)
    assert e.value.smtp_code == 554 and b"5.4.6" in e.value.smtp_error
    hops = b"Received: a\r\nReceived: b\r\nReceived: c\r\n" + MSG
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(port, msg=hops)
    assert e.value.smtp_code == 554
    assert d.outbox() == []


def test_bdat_chunking(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = c.makefile("rb")
    f.readline()
    c.sendall(b"EHLO x\r\nMAIL FROM:<alexw@target.example>\r\nRCPT TO:<p@external1.example>\r\n")
    while not f.readline().startswith(b"250 "):      # the end of the EHLO reply
        pass
    assert f.readline().startswith(b"250")             # MAIL
    assert f.readline().startswith(b"250")             # RCPT
    part1, part2 = MSG[:40], MSG[40:]
    c.sendall(b"BDAT %d\r\n" % len(part1) + part1)
    assert f.readline().startswith(b"250")
    c.sendall(b"BDAT %d LAST\r\n" % len(part2) + part2)
    assert f.readline().startswith(b"250 2.0.0 Ok: queued")
    c.sendall(b"QUIT\r\n")
    c.close()
    files = wait_for(d.outbox)
    assert email.message_from_bytes(files[0].read_bytes())["From"] == \
        "Alex Wilber <alex.wilber@source.example>"


def test_config_check(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("hostname = x\n[connector a]\nlisten = 127.0.0.1:1\nnetworks = 10.0.0.1/8\n")
    p = subprocess.run([COEXD, "-c", str(bad), "-t"], capture_output=True, text=True)
    assert p.returncode == 1
    assert f"{bad}:4: bad network '10.0.0.1/8'" in p.stderr
    bad.write_text("[connector a]\nlisten = 127.0.0.1:1\nnetworks = 10.0.0.0/8\nroute = nope\n")
    p = subprocess.run([COEXD, "-c", str(bad), "-t"], capture_output=True, text=True)
    assert p.returncode == 1 and f"{bad}:1: [connector a] names route 'nope'" in p.stderr
    good = tmp_path / "good.conf"
    good.write_text(config(2525))
    p = subprocess.run([COEXD, "-c", str(good), "-t"], capture_output=True, text=True)
    assert p.returncode == 0 and "configuration ok" in p.stdout


def test_sigterm_finishes_and_exits(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    send(port)
    wait_for(d.outbox)
    assert d.stop(signal.SIGTERM) == 0
    assert "coexd stopped" in d.log_text()


@pytest.mark.parametrize("eod", SMUGGLING, ids=["lf.crlf", "crlf.lf", "lf.lf", "cr.cr", "crlf.cr"])
def test_smuggling_through_coexd_to_postfix(coexd_factory, postfix_hop, eod):
    """The same payloads with a real Postfix smtpd as coexd's next hop: what
    reaches the far side is one clean message, never the smuggled one."""
    hop, sink = postfix_hop
    port = free_port()
    d = coexd_factory(config(port, next_hop=f"smtp:[127.0.0.1]:{hop.port}",
                             route="tls_required = no\n"), wait_ports=[port])
    c = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = c.makefile("rb")
    f.readline()
    c.sendall(b"EHLO x\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    c.sendall(b"MAIL FROM:<alexw@target.example>\r\nRCPT TO:<partner@external1.example>\r\n"
              b"DATA\r\n")
    for _ in range(3):
        f.readline()
    c.sendall(b"From: alexw@target.example\r\nSubject: first\r\n\r\nfirst" + eod +
              b"MAIL FROM:<ceo@target.example>\r\nRCPT TO:<victim@external1.example>\r\n"
              b"DATA\r\nFrom: ceo@target.example\r\nSubject: smuggled\r\n\r\nsmuggled\r\n"
              b".\r\n")
    assert f.readline().startswith(b"550 5.6.11")
    c.sendall(b"MAIL FROM:<alexw@target.example>\r\nRCPT TO:<partner@external1.example>\r\n"
              b"DATA\r\n")
    for _ in range(3):
        f.readline()
    c.sendall(b"From: alexw@target.example\r\nSubject: clean\r\n\r\nok\r\n.\r\nQUIT\r\n")
    assert f.readline().startswith(b"250")
    c.close()
    assert sink.wait(1, timeout=30), d.log_text() + hop.log.read_text()
    time.sleep(2)
    assert len(sink.messages) == 1
    msg = email.message_from_bytes(sink.messages[0]["data"])
    assert msg["Subject"] == "clean"
    assert sink.messages[0]["to"] == ["partner@external1.example"]
    assert b"smuggled" not in sink.messages[0]["data"]


def test_per_ip_limit_and_timeouts(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port, extra_global="max_connections_per_ip = 2\ncommand_timeout = 2s\n"),
                      wait_ports=[port])
    time.sleep(0.5)                                     # the start-up probe has gone
    a = socket.create_connection(("127.0.0.1", port), timeout=10)
    b = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert a.recv(100).startswith(b"220") and b.recv(100).startswith(b"220")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        assert c.recv(200).startswith(b"421 4.7.0")
    # idle past command_timeout: 421 4.4.2 and the connection closes
    data = a.recv(200)
    assert data.startswith(b"421 4.4.2"), data
    assert a.recv(100) == b""
    a.close()
    b.close()
    assert "timeout in command state" in d.log_text()


def test_simple_commands(coexd_factory):
    port = free_port()
    coexd_factory(config(port), wait_ports=[port])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.command_encoding = "utf-8"
        assert s.docmd("MAIL FROM:<a@b.example>")[0] == 503        # before EHLO
        s.ehlo("client.test")
        assert s.docmd("VRFY ceo@target.example")[0] == 252
        assert s.docmd("HELP")[0] == 214
        assert s.docmd("NOOP")[0] == 250
        assert s.docmd("RCPT TO:<a@b.example>")[0] == 503          # before MAIL
        assert s.docmd("MAIL FROM:<not an address>")[0] == 501
        assert s.docmd("MAIL FROM:<a@b.example> FOO=BAR")[0] == 555
        assert s.docmd("MAIL FROM:<jörg@b.example>")[0] == 553      # UTF-8 needs SMTPUTF8
        assert s.docmd("MAIL FROM:<jörg@b.example> SMTPUTF8")[0] == 250
        assert s.docmd("RCPT TO:<x@y.example> NOTIFY=SUCCESS,NEVER")[0] == 555
        assert s.docmd("RCPT TO:<x@y.example> NOTIFY=FAILURE ORCPT=rfc822;x@y.example")[0] == 250
        assert s.docmd("RSET")[0] == 250
        assert s.docmd("DATA")[0] == 503
        assert s.docmd("FROB")[0] == 502


def test_sighup_reload_keeps_sessions(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("alexw@target.example")
        d.conf.write_text(config(port, extra_global="max_recipients = 7\n"))
        d.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: "reload done" in d.log_text(), 10), d.log_text()
        s.rcpt("partner@external1.example")
        assert s.data(MSG)[0] == 250                    # the session survived the reload
    # a reload that would move a listener is refused, the daemon keeps running
    d.conf.write_text(config(free_port()))
    d.proc.send_signal(signal.SIGHUP)
    assert wait_for(lambda: "Keeping the running configuration" in d.log_text(), 10)
    send(port)
    assert len(wait_for(lambda: len(d.outbox()) >= 2 and d.outbox())) == 2


def test_spool_disk_full_is_a_temporary_failure(coexd_factory, tmp_path):
    """The spool on a 1 MiB tmpfs: a message that does not fit gets 452 4.3.1
    (never a 250), and mail flows again once there is room."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    assert r.returncode == 0, f"this test needs root to mount a tmpfs: {r.stderr}"
    try:
        port = free_port()
        cfg = config(port, extra_global="message_size_limit = 8M\n").replace(
            "spool = spool", f"spool = {mnt}/spool")
        d = coexd_factory(cfg, wait_ports=[port])
        big = MSG + (b"x" * 998 + b"\r\n") * 2000          # 2 MB: cannot fit
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("client.test")
            s.mail("alexw@target.example")
            s.rcpt("partner@external1.example")
            code, reply = s.data(big)
            assert code in (451, 452), (code, reply)
            assert reply.startswith(b"4.3."), reply
            s.rset()
            code, _ = s.sendmail("alexw@target.example", ["partner@external1.example"], MSG) \
                or (250, b"")
        assert wait_for(lambda: len(d.outbox()) == 1)
        d.stop()
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_no_bounce_for_a_bounce(coexd_factory, sink_factory, certs):
    # the next hop refuses the recipient and then the bounce too
    hop = sink_factory(tls_context=server_tls_context(certs),
                       reject={"nobody@external1.example": "550 5.1.1 no such user",
                               "alex.wilber@source.example": "550 5.1.1 sender unknown"})
    port = free_port()
    d = coexd_factory(smtp_hop_config(certs, port, hop.port), wait_ports=[port])
    send(port, rcpts=("nobody@external1.example",))
    assert wait_for(lambda: d.log_text().count("status=bounced") >= 2, 30), d.log_text()
    time.sleep(3)
    log = d.log_text()
    assert log.count("sender non-delivery notification") == 1, log
    assert log.count("status=bounced") == 2, log
    assert hop.messages == []
