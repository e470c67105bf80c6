"""coexd's BDAT (RFC 3030) edge cases found while moving the parsers to
src/smtp/smtpproto*.c: a refused BDAT chunk must not leave anything behind
(DATA refused afterwards, a bare line end charged to the next message, a
way around EHLO), a CR at the very end of the LAST chunk is a bare CR, and
"BDAT 0 LAST" is answered at once (it waited for the client's next bytes).
"""
import socket

from conftest import free_port, wait_for

MSG = (b"From: Alex Wilber <alexw@target.example>\r\n"
       b"To: partner@external1.example\r\n"
       b"Subject: bdat\r\n"
       b"\r\n"
       b"body\r\n")


def config(port):
    return f"""hostname = coex.test
directory = coex.db
spool = spool
[connector main]
listen = 127.0.0.1:{port}
networks = 127.0.0.0/8
route = out
[route out]
direction = to-source
next_hop = file:outbox
"""


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.sock.makefile("rb")
        assert self.f.readline().startswith(b"220")

    def send(self, data):
        self.sock.sendall(data)

    def reply(self):
        while True:
            line = self.f.readline()
            if line[3:4] != b"-":
                return line

    def cmd(self, line):
        self.send(line + b"\r\n")
        return self.reply()

    def bdat(self, chunk, last=False):
        self.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
        return self.reply()

    def close(self):
        self.cmd(b"QUIT")
        self.sock.close()


def test_refused_bdat_chunk_leaves_nothing_behind(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    c = Client(port)
    assert c.cmd(b"EHLO x").startswith(b"250")
    # a chunk without a transaction, with a bare LF and a CR at its end
    assert c.bdat(b"a\nb\r").startswith(b"503 5.5.1")
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert c.cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert c.cmd(b"DATA").startswith(b"354")            # was 503: "DATA after BDAT"
    c.send(MSG + b".\r\n")
    assert c.reply().startswith(b"250 2.0.0 Ok: queued")
    # MAIL without RCPT, then BDAT: refused; the next transaction is clean
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert c.bdat(b"x\ny").startswith(b"503 5.5.1")
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert c.cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert c.bdat(MSG, last=True).startswith(b"250 2.0.0 Ok: queued")  # was 550 5.6.11
    c.close()
    assert wait_for(lambda: len(d.outbox()) == 2)


def test_bdat_before_ehlo_does_not_skip_it(coexd_factory):
    port = free_port()
    coexd_factory(config(port), wait_ports=[port])
    c = Client(port)
    assert c.bdat(b"", last=True).startswith(b"503 5.5.1")
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"503 5.5.1 Error: send HELO")
    c.close()


def test_bdat_cr_at_the_end_is_bare(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    c = Client(port)
    assert c.cmd(b"EHLO x").startswith(b"250")
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert c.cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert c.bdat(MSG + b"tail\r", last=True).startswith(b"550 5.6.11")  # was 250
    # a CRLF split across two chunks is fine
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert c.cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert c.bdat(MSG[:-1]).startswith(b"250 2.0.0 Ok: ")
    assert c.bdat(b"\n", last=True).startswith(b"250 2.0.0 Ok: queued")
    c.close()
    assert wait_for(lambda: len(d.outbox()) == 1)


def test_bdat_zero_last_is_answered_at_once(coexd_factory):
    port = free_port()
    d = coexd_factory(config(port), wait_ports=[port])
    c = Client(port)
    assert c.cmd(b"EHLO x").startswith(b"250")
    assert c.cmd(b"MAIL FROM:<alexw@target.example>").startswith(b"250")
    assert c.cmd(b"RCPT TO:<partner@external1.example>").startswith(b"250")
    assert c.bdat(MSG).startswith(b"250 2.0.0 Ok: ")
    assert c.bdat(b"", last=True).startswith(b"250 2.0.0 Ok: queued")  # was: no reply
    c.close()
    assert wait_for(lambda: len(d.outbox()) == 1)
