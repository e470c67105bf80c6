"""A small DNS server on loopback for tests: TXT records from a dict, UDP and TCP.

It answers like an authoritative server for whatever names it is given, with
Debian's python3-dnslib doing the packets (run the tests with /usr/bin/python3).

    from dnsserver import DNSServer

    srv = DNSServer({"sel._domainkey.example.com": ["v=DKIM1; k=ed25519; p=..."]})
    srv.start()                       # 127.0.0.1, a free port: srv.port (UDP and TCP)
    ... "--resolver", f"127.0.0.1:{srv.port}" ...
    srv.queries("sel._domainkey.example.com")         # queries seen for the name
    srv.queries("sel._domainkey.example.com", "tcp")  # ... over TCP only
    srv.stop()

or as a context manager: `with DNSServer(records) as srv: ...`.

records: name -> list of TXT records. Names compare case-insensitively, with
or without the final dot. Each record is a str or bytes (split into
character-strings of at most 255 bytes, as a zone file would; the client joins
them again) or a list/tuple of str/bytes taken as the character-strings
themselves. A name mapped to [] exists without TXT records (NODATA); a name
that is not in the dict gets NXDOMAIN. Negative answers carry an SOA whose
MINIMUM is `neg_ttl` (RFC 2308).

cnames: name -> target name (a CNAME; the target's TXT records are added to the
answer when the server has them, as a recursive server would).

Per-name modes (`modes` argument or set_mode(name, mode)):
    "drop"      no reply at all, over UDP or TCP (a timeout for the client)
    "servfail"  RCODE SERVFAIL
    "refused"   RCODE REFUSED
    "nxdomain"  RCODE NXDOMAIN even if the name has records
    "tc"        over UDP an empty answer with the TC flag; TCP answers normally
    "badid"     over UDP a reply with a wrong ID first, then the right reply
Without a mode, a UDP answer larger than the client's EDNS0 payload size (512
without EDNS) is sent truncated (TC, no records), so long records move to TCP
by themselves, as with a real server.

The records, cnames and modes may be changed while the server runs (they are
read for each query). Every query is counted, also dropped ones.
"""
import socket
import struct
import threading

from dnslib import CNAME, QTYPE, RCODE, RR, SOA, TXT, DNSRecord

__all__ = ["DNSServer", "split_strings"]


def _norm(name):
    return str(name).rstrip(".").lower()


def split_strings(text, size=255):
    """bytes or str -> list of bytes chunks of at most `size` bytes (at least one)"""
    data = text.encode() if isinstance(text, str) else bytes(text)
    return [data[i:i + size] for i in range(0, len(data), size)] or [b""]


class DNSServer:
    """Loopback DNS server (UDP + TCP on one port); see the module docstring."""

    def __init__(self, records=None, host="127.0.0.1", port=0, ttl=300, neg_ttl=60,
                 cnames=None, modes=None):
        self.records = {_norm(k): v for k, v in (records or {}).items()}
        self.cnames = {_norm(k): _norm(v) for k, v in (cnames or {}).items()}
        self.modes = {_norm(k): v for k, v in (modes or {}).items()}
        self.host, self.port, self.ttl, self.neg_ttl = host, port, ttl, neg_ttl
        self.log = []  # (name, qtype, transport) for every query, in order
        self._lock = threading.Lock()
        self._threads = []
        self._udp = self._tcp = None
        self._running = False

    # ------------------------------------------------------------ control

    def start(self):
        """Bind UDP and TCP on the same port (a free one when port is 0) and serve."""
        for _ in range(20):  # the free UDP port may be taken for TCP: try another
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((self.host, self.port))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind((self.host, port))
            except OSError:
                udp.close()
                tcp.close()
                if self.port:
                    raise
                continue
            break
        else:
            raise OSError("no free port for UDP and TCP")
        tcp.listen(16)
        udp.settimeout(0.2)
        tcp.settimeout(0.2)
        self._udp, self._tcp, self.port = udp, tcp, port
        self._running = True
        for target in (self._serve_udp, self._serve_tcp):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        """Stop serving and close the sockets (waits for the server threads)."""
        self._running = False
        for t in self._threads:
            t.join(timeout=5)
        self._threads = []
        for s in (self._udp, self._tcp):
            if s is not None:
                s.close()
        self._udp = self._tcp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def set_mode(self, name, mode):
        """Set (or with None clear) the mode of one name."""
        with self._lock:
            if mode is None:
                self.modes.pop(_norm(name), None)
            else:
                self.modes[_norm(name)] = mode

    def queries(self, name=None, transport=None):
        """How many queries arrived (for name, over "udp" or "tcp"; None: all)."""
        with self._lock:
            return sum(1 for n, _, t in self.log
                       if (name is None or n == _norm(name)) and (transport is None or t == transport))

    def reset_counts(self):
        """Forget the queries seen so far."""
        with self._lock:
            self.log = []

    # ------------------------------------------------------------ answers

    def _soa(self, name):
        zone = ".".join(name.split(".")[-2:]) + "."
        return RR(zone, QTYPE.SOA, ttl=self.neg_ttl,
                  rdata=SOA("ns." + zone, "hostmaster." + zone,
                            (1, 3600, 600, 86400, self.neg_ttl)))

    def answer(self, query, transport):
        """The reply (a DNSRecord) to a parsed query, or None to drop it."""
        name = _norm(query.q.qname)
        with self._lock:
            self.log.append((name, QTYPE.get(query.q.qtype), transport))
            mode = self.modes.get(name)
            records = dict(self.records)
            cnames = dict(self.cnames)
        reply = query.reply()
        reply.header.ra = 1
        if mode == "drop":
            return None
        if mode in ("servfail", "refused"):
            reply.header.rcode = RCODE.SERVFAIL if mode == "servfail" else RCODE.REFUSED
            return reply
        if mode == "tc" and transport == "udp":
            reply.header.tc = 1
            return reply
        owner, hops = name, 0
        while owner in cnames and hops < 16:
            reply.add_answer(RR(owner + ".", QTYPE.CNAME, ttl=self.ttl,
                                rdata=CNAME(cnames[owner] + ".")))
            owner, hops = cnames[owner], hops + 1
        if mode == "nxdomain" or owner not in records:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa(owner))
            return reply
        if query.q.qtype != QTYPE.TXT or not records[owner]:
            reply.add_auth(self._soa(owner))  # NODATA
            return reply
        for rec in records[owner]:
            strings = ([s.encode() if isinstance(s, str) else bytes(s) for s in rec]
                       if isinstance(rec, (list, tuple)) else split_strings(rec))
            reply.add_answer(RR(owner + ".", QTYPE.TXT, ttl=self.ttl, rdata=TXT(strings)))
        return reply

    @staticmethod
    def _payload(query):
        for rr in query.ar:
            if rr.rtype == QTYPE.OPT:
                return max(512, rr.rclass)
        return 512

    # ------------------------------------------------------------ transports

    def _serve_udp(self):
        while self._running:
            try:
                data, peer = self._udp.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                query = DNSRecord.parse(data)
            except Exception:  # not DNS: ignore, as a server would
                continue
            reply = self.answer(query, "udp")
            if reply is None:
                continue
            if self.modes.get(_norm(query.q.qname)) == "badid":
                wrong = DNSRecord.parse(reply.pack())
                wrong.header.id = (query.header.id + 1) & 0xFFFF
                self._udp.sendto(wrong.pack(), peer)
            packet = reply.pack()
            if len(packet) > self._payload(query):
                cut = query.reply()
                cut.header.tc = 1
                packet = cut.pack()
            self._udp.sendto(packet, peer)

    def _serve_tcp(self):
        while self._running:
            try:
                conn, _ = self._tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve_conn, args=(conn,), daemon=True)
            t.start()

    def _serve_conn(self, conn):
        conn.settimeout(5)
        try:
            while self._running:
                head = self._recv_exact(conn, 2)
                if head is None:
                    return
                data = self._recv_exact(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                reply = self.answer(DNSRecord.parse(data), "tcp")
                if reply is None:
                    continue
                packet = reply.pack()
                conn.sendall(struct.pack("!H", len(packet)) + packet)
        except (OSError, Exception):
            return
        finally:
            conn.close()

    @staticmethod
    def _recv_exact(conn, n):
        out = b""
        while len(out) < n:
            chunk = conn.recv(n - len(out))
            if not chunk:
                return None
            out += chunk
        return out
