/*
 * test_dnstxt - the asynchronous TXT resolver against a real peer in the
 * same process: a small DNS responder on 127.0.0.1 (UDP and TCP on one
 * port) served by the same event loop. It counts the queries it gets, so
 * the tests prove caching (one query for two lookups), coalescing (one query
 * for concurrent lookups), negative caching (NXDOMAIN, NODATA) and no
 * caching of SERVFAIL, the per-attempt timeout and the attempt count, the
 * TCP retry on TC, replies with a wrong ID or from another port being
 * ignored, cancel, freeing
 * with lookups pending and from inside a callback, a bounded cache, TTL
 * expiry, and that no callback ever runs from inside dnstxt_lookup.
 * Long answers: a record up to DNSTXT_RECORD_MAX and answers up to
 * DNSTXT_ANSWER_MAX are kept, a longer one is TOOBIG and that refusal is
 * cached; the cache keeps to its byte budget (cache_max_bytes).
 * Also: server strings and resolv.conf; and keyfetch over the same peer
 * (distinct pairs of DKIM-Signature/ARC fields, OK / NOKEY / TEMPFAIL,
 * revoked and unusable records, a header without signatures, cancel, the
 * pair limit).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>

#include "dnstxt.h"
#include "keyfetch.h"

#define NAME_OK "sel._domainkey.example.com"
#define NAME_TWO "two._domainkey.example.com"
#define NAME_NX "missing._domainkey.example.com"
#define NAME_NODATA "nodata._domainkey.example.com"
#define NAME_FAIL "servfail._domainkey.example.com"
#define NAME_DROP "drop._domainkey.example.com"
#define NAME_TC "tc._domainkey.example.com"
#define NAME_BADID "badid._domainkey.example.com"
#define NAME_SHORT "short._domainkey.example.com"
#define NAME_SPOOF "spoof._domainkey.example.com"
#define NAME_RFC8463 "brisbane._domainkey.football.example.com"
#define NAME_REVOKED "revoked._domainkey.example.com"
#define NAME_REC_MAX "recmax._domainkey.example.com"
#define NAME_REC_OVER "recover._domainkey.example.com"
#define NAME_ANS_MAX "ansmax._domainkey.example.com"
#define NAME_ANS_OVER "ansover._domainkey.example.com"
#define NAME_HUGE "huge._domainkey.example.com"
#define NAME_BIG1 "big1._domainkey.example.com"
#define NAME_BIG2 "big2._domainkey.example.com"
#define NAME_BIG3 "big3._domainkey.example.com"
#define MAX_CONNS 4
#define RESPONSE_MAX 65535 /* the largest response the peer builds (over TCP) */
#define FILL_STRING 255    /* character-string length of generated records */

enum mode { M_TXT, M_NX, M_NODATA, M_SERVFAIL, M_DROP, M_TC, M_BADID, M_SPOOF, M_FILL };

struct record {
    const char *name;
    enum mode mode;
    uint32_t ttl;
    const char *text; /* strings split at '|' */
    size_t fill;      /* M_FILL: each record is this many bytes ('a'..'z' repeated) */
    int copies;       /* M_FILL: this many records; over UDP the reply is truncated (TC) */
};

static const struct record records[] = {
    {NAME_OK, M_TXT, 300, "v=DKIM1; k=ed25519; |p=abc", 0, 0},
    {NAME_TWO, M_TXT, 300, "second", 0, 0},
    {NAME_NX, M_NX, 0, NULL, 0, 0},
    {NAME_NODATA, M_NODATA, 0, NULL, 0, 0},
    {NAME_FAIL, M_SERVFAIL, 0, NULL, 0, 0},
    {NAME_DROP, M_DROP, 0, NULL, 0, 0},
    {NAME_TC, M_TC, 300, "over tcp", 0, 0},
    {NAME_BADID, M_BADID, 300, "right id", 0, 0},
    {NAME_SHORT, M_TXT, 1, "one second", 0, 0},
    {NAME_SPOOF, M_SPOOF, 300, "from another port", 0, 0},
    /* RFC 8463 Appendix A's key */
    {NAME_RFC8463, M_TXT, 300,
     "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", 0, 0},
    {NAME_REVOKED, M_TXT, 300, "v=DKIM1; k=rsa; p=", 0, 0},
    {NAME_REC_MAX, M_FILL, 300, NULL, DNSTXT_RECORD_MAX, 1},
    {NAME_REC_OVER, M_FILL, 300, NULL, DNSTXT_RECORD_MAX + 1, 1},
    {NAME_ANS_MAX, M_FILL, 300, NULL, DNSTXT_ANSWER_MAX / 2, 2},
    {NAME_ANS_OVER, M_FILL, 300, NULL, DNSTXT_ANSWER_MAX / 2 - 100, 3},
    {NAME_HUGE, M_FILL, 300, NULL, 60000, 1}, /* what an attacker's zone can serve */
    {NAME_BIG1, M_FILL, 300, NULL, 3000, 1},
    {NAME_BIG2, M_FILL, 300, NULL, 3000, 1},
    {NAME_BIG3, M_FILL, 300, NULL, 3000, 1},
};

/* the in-process DNS server */
struct peer {
    struct event_base *base;
    int udp, tcp;
    struct event *udp_ev, *tcp_ev;
    struct event *conn_ev[MAX_CONNS];
    int conn_fd[MAX_CONNS];
    unsigned short port;
    int udp_queries, tcp_queries;
    int per_name[sizeof(records) / sizeof(records[0])];
};

/* what the resolver's callbacks saw */
struct seen {
    int calls;
    enum dnstxt_status st;
    size_t count;
    size_t total; /* bytes of all the records */
    char text[2][128];
    char why[160];
};

static int in_lookup; /* set around dnstxt_lookup: a callback must not see it */

/* --- the responder ------------------------------------------------------------------------ */

/* question_name - dotted lower-case name of the query's question; its end offset */
static size_t question_name(const unsigned char *q, size_t len, char *out, size_t max)
{
    size_t pos = 12, w = 0;
    while (pos < len && q[pos] != 0) {
        size_t n = q[pos];
        if (w)
            out[w++] = '.';
        for (size_t i = 0; i < n && w + 1 < max; i++) {
            unsigned char c = q[pos + 1 + i];
            out[w++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        pos += 1 + n;
    }
    out[w] = '\0';
    return pos + 1 + 4;
}

/* put_rr_head - a TXT RR for the question name with ttl; where its RDLENGTH goes */
static size_t put_rr_head(unsigned char *out, size_t *w, uint32_t ttl)
{
    static const unsigned char head[] = {0xc0, 0x0c, 0, 16, 0, 1};
    memcpy(out + *w, head, sizeof(head));
    *w += sizeof(head);
    out[(*w)++] = (unsigned char)(ttl >> 24);
    out[(*w)++] = (unsigned char)(ttl >> 16);
    out[(*w)++] = (unsigned char)(ttl >> 8);
    out[(*w)++] = (unsigned char)ttl;
    size_t rdlen_at = *w;
    *w += 2;
    return rdlen_at;
}

/* respond_fill - rec->copies records of rec->fill bytes each, after the question at out[0..w) */
static size_t respond_fill(const struct record *rec, unsigned char *out, size_t w)
{
    out[6] = (unsigned char)(rec->copies >> 8);
    out[7] = (unsigned char)rec->copies;
    for (int c = 0; c < rec->copies; c++) {
        size_t rdlen_at = put_rr_head(out, &w, rec->ttl);
        for (size_t done = 0; done < rec->fill;) {
            size_t n = rec->fill - done < FILL_STRING ? rec->fill - done : FILL_STRING;
            assert_true(w + 1 + n <= RESPONSE_MAX);
            out[w++] = (unsigned char)n;
            for (size_t i = 0; i < n; i++)
                out[w++] = (unsigned char)('a' + (done + i) % 26);
            done += n;
        }
        out[rdlen_at] = (unsigned char)((w - rdlen_at - 2) >> 8);
        out[rdlen_at + 1] = (unsigned char)(w - rdlen_at - 2);
    }
    return w;
}

/* respond - the reply to query q[0..len) for transport tcp; 0 = no reply */
static size_t respond(struct peer *p, const unsigned char *q, size_t len, int tcp,
                      unsigned char *out, int *bad_id_first)
{
    char name[300];
    size_t qend = question_name(q, len, name, sizeof(name));
    const struct record *rec = NULL;
    *bad_id_first = 0;
    if (qend > len)
        return 0;
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        if (strcmp(records[i].name, name) == 0) {
            rec = &records[i];
            p->per_name[i]++;
        }
    memcpy(out, q, qend);
    out[2] = 0x81; /* QR, RD */
    out[3] = 0x80; /* RA, NOERROR */
    memset(out + 6, 0, 6);
    size_t w = qend;
    if (rec == NULL || rec->mode == M_NX) {
        out[3] |= 3;
        return w;
    }
    switch (rec->mode) {
    case M_DROP:
        return 0;
    case M_SERVFAIL:
        out[3] |= 2;
        return w;
    case M_NODATA:
        return w;
    case M_TC:
        if (!tcp) {
            out[2] |= 0x02;
            return w;
        }
        break;
    case M_BADID:
        *bad_id_first = !tcp;
        break;
    case M_SPOOF:
        *bad_id_first = -1; /* the right reply, from another port only */
        break;
    case M_FILL:
        if (!tcp) {
            out[2] |= 0x02;
            return w;
        }
        return respond_fill(rec, out, w);
    default:
        break;
    }
    out[7] = 1; /* ANCOUNT */
    static const unsigned char head[] = {0xc0, 0x0c, 0, 16, 0, 1};
    memcpy(out + w, head, sizeof(head));
    w += sizeof(head);
    out[w++] = (unsigned char)(rec->ttl >> 24);
    out[w++] = (unsigned char)(rec->ttl >> 16);
    out[w++] = (unsigned char)(rec->ttl >> 8);
    out[w++] = (unsigned char)rec->ttl;
    size_t rdlen_at = w;
    w += 2;
    for (const char *s = rec->text;;) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        out[w++] = (unsigned char)n;
        memcpy(out + w, s, n);
        w += n;
        if (!bar)
            break;
        s = bar + 1;
    }
    out[rdlen_at] = (unsigned char)((w - rdlen_at - 2) >> 8);
    out[rdlen_at + 1] = (unsigned char)(w - rdlen_at - 2);
    return w;
}

static void peer_udp(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    unsigned char q[1024], out[2048];
    struct sockaddr_storage from;
    socklen_t from_len = sizeof(from);
    int bad_id;
    (void)what;
    ssize_t n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &from_len);
    if (n < 12)
        return;
    p->udp_queries++;
    size_t len = respond(p, q, (size_t)n, 0, out, &bad_id);
    if (len == 0)
        return;
    if (bad_id < 0) {
        struct sockaddr_in other = {.sin_family = AF_INET};
        other.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int spoofer = socket(AF_INET, SOCK_DGRAM, 0);
        assert_int_equal(bind(spoofer, (struct sockaddr *)&other, sizeof(other)), 0);
        assert_true(sendto(spoofer, out, len, 0, (struct sockaddr *)&from, from_len) > 0);
        close(spoofer);
        return;
    }
    if (bad_id) {
        out[1] ^= 0x55;
        assert_true(sendto(fd, out, len, 0, (struct sockaddr *)&from, from_len) > 0);
        out[1] ^= 0x55;
    }
    assert_true(sendto(fd, out, len, 0, (struct sockaddr *)&from, from_len) > 0);
}

static void peer_conn(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    static unsigned char out[RESPONSE_MAX + 2];
    unsigned char q[1024];
    size_t have = 0;
    int bad_id;
    (void)what;
    /* loopback and a small query: wait for the whole of it */
    while (have < 2 || have < 2 + ((size_t)q[0] << 8 | q[1])) {
        ssize_t n = recv(fd, q + have, sizeof(q) - have, 0);
        if (n <= 0) {
            if (n < 0 && errno == EAGAIN)
                continue;
            break;
        }
        have += (size_t)n;
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (p->conn_fd[i] == fd) {
            event_free(p->conn_ev[i]);
            p->conn_ev[i] = NULL;
            p->conn_fd[i] = -1;
        }
    if (have >= 2) {
        p->tcp_queries++;
        size_t len = respond(p, q + 2, have - 2, 1, out + 2, &bad_id);
        if (len) {
            out[0] = (unsigned char)(len >> 8);
            out[1] = (unsigned char)len;
            assert_true(send(fd, out, len + 2, 0) == (ssize_t)(len + 2));
        }
    }
    close(fd);
}

static void peer_accept(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    (void)what;
    int c = accept(fd, NULL, NULL);
    if (c < 0)
        return;
    for (int i = 0; i < MAX_CONNS; i++)
        if (p->conn_fd[i] < 0) {
            p->conn_fd[i] = c;
            p->conn_ev[i] = event_new(p->base, c, EV_READ, peer_conn, p);
            event_add(p->conn_ev[i], NULL);
            return;
        }
    close(c);
}

static void peer_start(struct peer *p, struct event_base *base)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    memset(p, 0, sizeof(*p));
    p->base = base;
    for (int i = 0; i < MAX_CONNS; i++)
        p->conn_fd[i] = -1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int tries = 0; tries < 20; tries++) { /* one port free for both */
        p->udp = socket(AF_INET, SOCK_DGRAM, 0);
        sin.sin_port = 0;
        assert_int_equal(bind(p->udp, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(getsockname(p->udp, (struct sockaddr *)&sin, &sl), 0);
        p->tcp = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(p->tcp, (struct sockaddr *)&sin, sizeof(sin)) == 0)
            break;
        close(p->udp);
        close(p->tcp);
        p->udp = p->tcp = -1;
    }
    assert_true(p->udp >= 0);
    assert_int_equal(listen(p->tcp, 8), 0);
    p->port = ntohs(sin.sin_port);
    p->udp_ev = event_new(base, p->udp, EV_READ | EV_PERSIST, peer_udp, p);
    p->tcp_ev = event_new(base, p->tcp, EV_READ | EV_PERSIST, peer_accept, p);
    event_add(p->udp_ev, NULL);
    event_add(p->tcp_ev, NULL);
}

static void peer_stop(struct peer *p)
{
    for (int i = 0; i < MAX_CONNS; i++)
        if (p->conn_fd[i] >= 0) {
            event_free(p->conn_ev[i]);
            close(p->conn_fd[i]);
        }
    event_free(p->udp_ev);
    event_free(p->tcp_ev);
    close(p->udp);
    close(p->tcp);
}

/* --- the fixture -------------------------------------------------------------------------- */

struct fixture {
    struct event_base *base;
    struct peer peer;
    struct dnstxt *r;
};

static void got(void *arg, enum dnstxt_status st, const char *const *txt, const size_t *lens,
                size_t count, const char *why)
{
    struct seen *s = arg;
    assert_false(in_lookup);
    s->calls++;
    s->st = st;
    s->count = count;
    s->total = 0;
    for (size_t i = 0; i < count; i++)
        s->total += lens[i];
    for (size_t i = 0; i < count && i < 2; i++) {
        assert_int_equal(strlen(txt[i]), lens[i]);
        snprintf(s->text[i], sizeof(s->text[i]), "%s", txt[i]);
    }
    snprintf(s->why, sizeof(s->why), "%s", why);
}

static struct dnstxt_query *lookup(struct fixture *f, const char *name, struct seen *s)
{
    in_lookup = 1;
    struct dnstxt_query *q = dnstxt_lookup(f->r, name, got, s);
    in_lookup = 0;
    assert_non_null(q);
    return q;
}

static struct dnstxt *resolver(struct fixture *f, int timeout_ms, size_t cache_max, int min_ttl)
{
    char server[64], err[256];
    snprintf(server, sizeof(server), "127.0.0.1:%u", f->peer.port);
    struct dnstxt_opts o = {.server = server,
                            .timeout_ms = timeout_ms,
                            .attempts = 2,
                            .cache_max = cache_max,
                            .min_ttl = min_ttl,
                            .neg_ttl = 60};
    struct dnstxt *r = dnstxt_new(f->base, &o, err, sizeof(err));
    assert_non_null(r);
    return r;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->base = event_base_new();
    peer_start(&f->peer, f->base);
    f->r = resolver(f, 300, 0, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    dnstxt_free(f->r);
    peer_stop(&f->peer);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* run - the loop until every seen[] got its call (the peer keeps the loop alive) */
static void run(struct fixture *f, struct seen *const *wait, size_t n)
{
    for (int i = 0; i < 400; i++) {
        size_t done = 0;
        for (size_t k = 0; k < n; k++)
            done += wait[k]->calls > 0;
        if (done == n)
            return;
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    fail_msg("callbacks did not come");
}

/* spin - a few loop passes (for what must not happen) */
static void spin(struct fixture *f, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
}

static int peer_count(const struct fixture *f, const char *name)
{
    for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
        if (strcmp(records[i].name, name) == 0)
            return f->peer.per_name[i];
    return -1;
}

/* --- the tests ---------------------------------------------------------------------------- */

static void test_answer_then_cache(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0}, b = {0};
    lookup(f, NAME_OK, &a);
    assert_int_equal(a.calls, 0); /* not from inside the lookup */
    run(f, (struct seen *[]){&a}, 1);
    assert_int_equal(a.st, DNSTXT_OK);
    assert_int_equal(a.count, 1);
    assert_string_equal(a.text[0], "v=DKIM1; k=ed25519; p=abc");
    lookup(f, "SEL._DomainKey.Example.com.", &b); /* a cache hit, still later */
    assert_int_equal(b.calls, 0);
    run(f, (struct seen *[]){&b}, 1);
    assert_int_equal(b.st, DNSTXT_OK);
    assert_string_equal(b.text[0], "v=DKIM1; k=ed25519; p=abc");
    assert_int_equal(peer_count(f, NAME_OK), 1);
    struct dnstxt_stats st;
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.cache_hits, 1);
    assert_int_equal(st.queries_sent, 1);
    assert_int_equal(st.cached, 1);
}

static void test_coalesced(void **state)
{
    struct fixture *f = *state;
    struct seen s[3] = {{0}};
    lookup(f, NAME_OK, &s[0]);
    lookup(f, "sel._domainkey.EXAMPLE.com", &s[1]);
    lookup(f, NAME_TWO, &s[2]);
    run(f, (struct seen *[]){&s[0], &s[1], &s[2]}, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(s[i].st, DNSTXT_OK);
    assert_string_equal(s[2].text[0], "second");
    assert_int_equal(peer_count(f, NAME_OK), 1);
    assert_int_equal(peer_count(f, NAME_TWO), 1);
    assert_int_equal(f->peer.udp_queries, 2);
}

static void test_negative_cached(void **state)
{
    struct fixture *f = *state;
    const char *names[] = {NAME_NX, NAME_NODATA};
    for (int i = 0; i < 2; i++) {
        struct seen a = {0}, b = {0};
        lookup(f, names[i], &a);
        run(f, (struct seen *[]){&a}, 1);
        assert_int_equal(a.st, DNSTXT_NOTFOUND);
        assert_int_equal(a.count, 0);
        lookup(f, names[i], &b);
        run(f, (struct seen *[]){&b}, 1);
        assert_int_equal(b.st, DNSTXT_NOTFOUND);
        assert_int_equal(peer_count(f, names[i]), 1);
    }
}

static void test_servfail_not_cached(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0}, b = {0};
    lookup(f, NAME_FAIL, &a);
    run(f, (struct seen *[]){&a}, 1);
    assert_int_equal(a.st, DNSTXT_TEMPFAIL);
    assert_non_null(strstr(a.why, "SERVFAIL"));
    lookup(f, NAME_FAIL, &b);
    run(f, (struct seen *[]){&b}, 1);
    assert_int_equal(b.st, DNSTXT_TEMPFAIL);
    assert_int_equal(peer_count(f, NAME_FAIL), 2); /* asked again: not cached */
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lookup(f, NAME_DROP, &a);
    run(f, (struct seen *[]){&a}, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_int_equal(a.st, DNSTXT_TEMPFAIL);
    assert_non_null(strstr(a.why, "timeout"));
    assert_int_equal(peer_count(f, NAME_DROP), 2); /* two attempts of 300 ms */
    assert_true(ms >= 590 && ms < 1500);
    struct seen b = {0}; /* a failure is not cached */
    lookup(f, NAME_DROP, &b);
    run(f, (struct seen *[]){&b}, 1);
    assert_int_equal(peer_count(f, NAME_DROP), 4);
}

static void test_tcp_fallback(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0};
    lookup(f, NAME_TC, &a);
    run(f, (struct seen *[]){&a}, 1);
    assert_int_equal(a.st, DNSTXT_OK);
    assert_string_equal(a.text[0], "over tcp");
    assert_int_equal(f->peer.udp_queries, 1);
    assert_int_equal(f->peer.tcp_queries, 1);
    struct dnstxt_stats st;
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.tcp_queries, 1);
}

static void test_wrong_id_ignored(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0};
    lookup(f, NAME_BADID, &a);
    run(f, (struct seen *[]){&a}, 1);
    assert_int_equal(a.st, DNSTXT_OK);
    assert_string_equal(a.text[0], "right id");
    struct dnstxt_stats st;
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.ignored, 1);
}

static void test_other_source_ignored(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0};
    lookup(f, NAME_SPOOF, &a);
    run(f, (struct seen *[]){&a}, 1);
    assert_int_equal(a.st, DNSTXT_TEMPFAIL); /* the right answer, from the wrong port */
    assert_non_null(strstr(a.why, "timeout"));
    assert_int_equal(peer_count(f, NAME_SPOOF), 2);
}

static void test_cancel(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0}, b = {0}, c = {0}, d = {0};
    dnstxt_cancel(lookup(f, NAME_OK, &a)); /* alone: the query stops */
    struct dnstxt_query *qb = lookup(f, NAME_TWO, &b);
    lookup(f, NAME_TWO, &c);
    dnstxt_cancel(qb); /* the other one still gets its answer */
    run(f, (struct seen *[]){&c}, 1);
    assert_int_equal(c.st, DNSTXT_OK);
    dnstxt_cancel(lookup(f, NAME_TWO, &d)); /* a cached answer, cancelled before delivery */
    spin(f, 50);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 0);
    assert_int_equal(d.calls, 0);
    assert_int_equal(c.calls, 1);
    dnstxt_cancel(NULL);
}

static void test_bad_name(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0};
    lookup(f, "a..b", &a);
    run(f, (struct seen *[]){&a}, 1);
    assert_int_equal(a.st, DNSTXT_BADANSWER);
    assert_int_equal(f->peer.udp_queries, 0);
}

static void test_free_pending(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0}, b = {0}, c = {0};
    lookup(f, NAME_OK, &a);
    run(f, (struct seen *[]){&a}, 1);
    lookup(f, NAME_OK, &b);   /* ready (cached), not yet delivered */
    lookup(f, NAME_DROP, &c); /* on the wire */
    dnstxt_free(f->r);
    f->r = NULL;
    spin(f, 50);
    assert_int_equal(b.calls, 0);
    assert_int_equal(c.calls, 0);
}

static struct dnstxt **free_target;

static void got_and_free(void *arg, enum dnstxt_status st, const char *const *txt,
                         const size_t *lens, size_t count, const char *why)
{
    got(arg, st, txt, lens, count, why);
    dnstxt_free(*free_target);
    *free_target = NULL;
}

static void test_free_from_callback(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0}, b = {0}, c = {0};
    lookup(f, NAME_OK, &a);
    lookup(f, NAME_TWO, &a);
    run(f, (struct seen *[]){&a}, 1);
    while (a.calls < 2)
        event_base_loop(f->base, EVLOOP_ONCE);
    free_target = &f->r;
    in_lookup = 1;
    struct dnstxt_query *qb = dnstxt_lookup(f->r, NAME_OK, got_and_free, &b); /* both cached */
    struct dnstxt_query *qc = dnstxt_lookup(f->r, NAME_TWO, got_and_free, &c);
    assert_true(qb && qc);
    in_lookup = 0;
    spin(f, 50);
    assert_int_equal(b.calls + c.calls, 1); /* the second never comes */
    assert_null(f->r);
}

static void test_cache_bounded(void **state)
{
    struct fixture *f = *state;
    dnstxt_free(f->r);
    f->r = resolver(f, 300, 2, 0);
    const char *names[] = {NAME_OK, NAME_TWO, NAME_TC, NAME_OK};
    for (int i = 0; i < 4; i++) {
        struct seen a = {0};
        lookup(f, names[i], &a);
        run(f, (struct seen *[]){&a}, 1);
        assert_int_equal(a.st, DNSTXT_OK);
    }
    struct dnstxt_stats st;
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.cached, 2);
    assert_int_equal(peer_count(f, NAME_OK), 2); /* the oldest entry went */
}

static void test_long_records(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *name;
        enum dnstxt_status want;
        size_t count, total;
        const char *why;
    } cases[] = {
        {NAME_REC_MAX, DNSTXT_OK, 1, DNSTXT_RECORD_MAX, NULL},
        {NAME_REC_OVER, DNSTXT_TOOBIG, 0, 0, "longer than the 4096 kept"},
        {NAME_ANS_MAX, DNSTXT_OK, 2, DNSTXT_ANSWER_MAX, NULL},
        {NAME_ANS_OVER, DNSTXT_TOOBIG, 0, 0, "more than the 8192 kept"},
        {NAME_HUGE, DNSTXT_TOOBIG, 0, 0, "TXT record of 60000 bytes"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct seen a = {0}, b = {0};
        print_message("%s\n", cases[i].name);
        lookup(f, cases[i].name, &a);
        run(f, (struct seen *[]){&a}, 1);
        assert_int_equal(a.st, cases[i].want);
        assert_int_equal(a.count, cases[i].count);
        assert_int_equal(a.total, cases[i].total);
        if (cases[i].why)
            assert_non_null(strstr(a.why, cases[i].why));
        lookup(f, cases[i].name, &b); /* kept, a refusal too: not fetched again */
        run(f, (struct seen *[]){&b}, 1);
        assert_int_equal(b.st, cases[i].want);
        assert_string_equal(b.why, a.why);
        assert_int_equal(peer_count(f, cases[i].name), 2); /* UDP (TC), then TCP: once */
    }
    struct dnstxt_stats st;
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.cached, 5);
    assert_true(st.cached_bytes > DNSTXT_RECORD_MAX + DNSTXT_ANSWER_MAX);
    assert_true(st.cached_bytes < DNSTXT_RECORD_MAX + DNSTXT_ANSWER_MAX + 4096);
}

static void test_cache_byte_budget(void **state)
{
    struct fixture *f = *state;
    char server[64], err[256];
    dnstxt_free(f->r);
    snprintf(server, sizeof(server), "127.0.0.1:%u", f->peer.port);
    struct dnstxt_opts o = {.server = server, .timeout_ms = 300, .cache_max_bytes = 8000};
    f->r = dnstxt_new(f->base, &o, err, sizeof(err));
    assert_non_null(f->r);
    /* two answers of 3000 bytes fit in 8000, with the small one too; three do not */
    const char *names[] = {NAME_BIG1, NAME_BIG2, NAME_BIG3, NAME_OK, NAME_BIG1};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct seen a = {0};
        lookup(f, names[i], &a);
        run(f, (struct seen *[]){&a}, 1);
        assert_int_equal(a.st, DNSTXT_OK);
        assert_int_equal(a.total, strcmp(names[i], NAME_OK) == 0 ? 25 : 3000);
        struct dnstxt_stats st;
        dnstxt_get_stats(f->r, &st);
        assert_true(st.cached_bytes <= 8000);
    }
    assert_int_equal(peer_count(f, NAME_BIG1), 4); /* evicted by the third: UDP+TCP twice */
    struct seen b = {0}, c = {0}; /* the newest entries are kept, the oldest went */
    lookup(f, NAME_OK, &b);
    lookup(f, NAME_BIG3, &c);
    run(f, (struct seen *[]){&b, &c}, 2);
    assert_int_equal(peer_count(f, NAME_OK), 1);
    assert_int_equal(peer_count(f, NAME_BIG3), 2);
    assert_int_equal(peer_count(f, NAME_BIG2), 2);
    struct dnstxt_stats st;
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.cached, 3); /* BIG3, OK, BIG1: BIG2 went for BIG1 */
    assert_int_equal(st.cache_hits, 2);
    dnstxt_free(f->r); /* and an answer larger than the whole budget is not kept */
    o.cache_max_bytes = 1000;
    f->r = dnstxt_new(f->base, &o, err, sizeof(err));
    assert_non_null(f->r);
    struct seen d = {0};
    lookup(f, NAME_BIG2, &d);
    run(f, (struct seen *[]){&d}, 1);
    assert_int_equal(d.st, DNSTXT_OK);
    dnstxt_get_stats(f->r, &st);
    assert_int_equal(st.cached, 0);
    assert_int_equal(st.cached_bytes, 0);
}

static void test_ttl_expiry(void **state)
{
    struct fixture *f = *state;
    dnstxt_free(f->r);
    f->r = resolver(f, 300, 0, 1); /* min_ttl 1: the record's TTL of 1 s is kept */
    struct seen a = {0}, b = {0}, c = {0};
    lookup(f, NAME_SHORT, &a);
    run(f, (struct seen *[]){&a}, 1);
    lookup(f, NAME_SHORT, &b);
    run(f, (struct seen *[]){&b}, 1);
    assert_int_equal(peer_count(f, NAME_SHORT), 1);
    spin(f, 1100);
    lookup(f, NAME_SHORT, &c);
    run(f, (struct seen *[]){&c}, 1);
    assert_int_equal(c.st, DNSTXT_OK);
    assert_int_equal(peer_count(f, NAME_SHORT), 2);
}

static void test_servers(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char err[256], path[] = "/tmp/test_dnstxt_resolv.XXXXXX";
    static const struct {
        const char *server;
        int ok;
    } cases[] = {
        {"127.0.0.1", 1},   {"127.0.0.1:5353", 1}, {"[::1]:5353", 1},    {"::1", 1},
        {"[::1]", 1},       {"1.2.3.4:0", 0},      {"1.2.3.4:65536", 0}, {"[::1", 0},
        {"[::1]x", 0},      {"ns.example", 0},     {"1.2.3.4:", 0},      {"", 0},
        {"1.2.3.4:53x", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct dnstxt_opts o = {.server = cases[i].server};
        struct dnstxt *r = dnstxt_new(base, &o, err, sizeof(err));
        print_message("server \"%s\"\n", cases[i].server);
        assert_int_equal(r != NULL, cases[i].ok);
        dnstxt_free(r);
    }
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static const char conf[] = "# comment\nsearch example.com\nnameserver   192.0.2.1 # x\n"
                               "nameserver 192.0.2.2\n";
    assert_int_equal(write(fd, conf, sizeof(conf) - 1), (ssize_t)sizeof(conf) - 1);
    close(fd);
    struct dnstxt_opts o = {.resolv_conf = path};
    struct dnstxt *r = dnstxt_new(base, &o, err, sizeof(err));
    assert_non_null(r);
    dnstxt_free(r);
    unlink(path);
    r = dnstxt_new(base, &o, err, sizeof(err)); /* gone */
    assert_null(r);
    assert_non_null(strstr(err, path));
    dnstxt_free(NULL);
    event_base_free(base);
}

static struct fixture *chain_fixture;
static struct seen chain_second;

static void got_and_look_again(void *arg, enum dnstxt_status st, const char *const *txt,
                               const size_t *lens, size_t count, const char *why)
{
    got(arg, st, txt, lens, count, why);
    lookup(chain_fixture, NAME_OK, &chain_second); /* cached: must wait for the next pass */
}

static void test_lookup_from_callback(void **state)
{
    struct fixture *f = *state;
    struct seen a = {0}, b = {0};
    lookup(f, NAME_OK, &a);
    run(f, (struct seen *[]){&a}, 1);
    chain_fixture = f;
    memset(&chain_second, 0, sizeof(chain_second));
    in_lookup = 1;
    struct dnstxt_query *q = dnstxt_lookup(f->r, NAME_OK, got_and_look_again, &b);
    in_lookup = 0;
    assert_non_null(q);
    for (int i = 0; i < 100 && b.calls == 0; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(b.calls, 1);
    assert_int_equal(chain_second.calls, 0); /* not in the same loop pass */
    event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(chain_second.calls, 1);
    assert_int_equal(chain_second.st, DNSTXT_OK);
}

/* --- keyfetch ----------------------------------------------------------------------------- */

static int kf_done_calls;

static void kf_done(void *arg, struct keyfetch *kf)
{
    assert_false(in_lookup);
    kf_done_calls++;
    *(struct keyfetch **)arg = kf;
}

static struct keyfetch *kf_start(struct fixture *f, const char *hdr, struct keyfetch **out)
{
    kf_done_calls = 0;
    *out = NULL;
    in_lookup = 1;
    struct keyfetch *kf = keyfetch_start(f->r, hdr, strlen(hdr), kf_done, out);
    in_lookup = 0;
    assert_non_null(kf);
    assert_int_equal(kf_done_calls, 0);
    return kf;
}

static void kf_run(struct fixture *f)
{
    for (int i = 0; i < 400 && kf_done_calls == 0; i++)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(kf_done_calls, 1);
}

static void test_keyfetch(void **state)
{
    struct fixture *f = *state;
    struct keyfetch *done_kf;
    static const char hdr[] =
        "DKIM-Signature: v=1; a=ed25519-sha256; d=football.example.com;\r\n"
        " s=brisbane; h=from; bh=x; b=y\r\n"
        "ARC-Seal: i=1; a=ed25519-sha256; cv=none; d=Football.Example.COM; s=Brisbane; b=z\r\n"
        "ARC-Message-Signature: i=1; d=example.com; s=missing; h=from; bh=x; b=y\r\n"
        "DKIM-Signature: d=example.com; s=servfail; b=1\r\n"
        "DKIM-Signature: d=example.com; s=revoked; b=1\r\n"
        "DKIM-Signature: d=example.com; s=sel; b=1\r\n"
        "DKIM-Signature: d=example.com; s=nodata; d=twice.example; b=1\r\n"
        "DKIM-Signature: s=no-domain; b=1\r\n"
        "DKIM-Signature: d=bad name.example; s=x; b=1\r\n"
        "From: a@football.example.com\r\n"
        "Subject: keys\r\n";
    struct keyfetch *kf = kf_start(f, hdr, &done_kf);
    kf_run(f);
    assert_ptr_equal(done_kf, kf);
    assert_int_equal(keyfetch_pair_count(kf), 5);
    size_t count;
    struct dkim_pubkey *const *keys = keyfetch_keys(kf, &count);
    assert_int_equal(count, 1);
    assert_non_null(keys[0]);
    const char *why;
    assert_int_equal(keyfetch_status(kf, "FOOTBALL.example.com", "brisbane", &why), KEYFETCH_OK);
    assert_int_equal(keyfetch_status(kf, "example.com", "missing", &why), KEYFETCH_NOKEY);
    assert_non_null(strstr(why, "no key for missing._domainkey.example.com"));
    assert_int_equal(keyfetch_status(kf, "example.com", "servfail", &why), KEYFETCH_TEMPFAIL);
    assert_non_null(strstr(why, "SERVFAIL"));
    assert_int_equal(keyfetch_status(kf, "example.com", "revoked", &why), KEYFETCH_NOKEY);
    assert_non_null(strstr(why, "revoked"));
    assert_int_equal(keyfetch_status(kf, "example.com", "sel", &why), KEYFETCH_NOKEY);
    assert_non_null(strstr(why, "no usable key"));
    assert_int_equal(keyfetch_status(kf, "example.com", "nodata", NULL), KEYFETCH_NOKEY);
    assert_int_equal(peer_count(f, NAME_NODATA), 0);  /* that field was skipped */
    assert_int_equal(peer_count(f, NAME_RFC8463), 1); /* one query for the two fields */
    keyfetch_free(kf);
}

/*
 * keys made from a record are kept: the next message with the same record
 * gets the same key without parsing it again; after keyfetch_cache_clear a
 * new one is made, and the keys still held by a keyfetch stay valid
 */
static void test_keyfetch_key_cache(void **state)
{
    struct fixture *f = *state;
    struct keyfetch *done_kf;
    static const char hdr[] = "DKIM-Signature: v=1; a=ed25519-sha256; d=football.example.com;\r\n"
                              " s=brisbane; h=from; bh=x; b=y\r\n";
    size_t count;
    keyfetch_cache_clear();
    struct keyfetch *kf1 = kf_start(f, hdr, &done_kf);
    kf_run(f);
    struct dkim_pubkey *k1 = keyfetch_keys(kf1, &count)[0];
    assert_int_equal(count, 1);
    struct keyfetch *kf2 = kf_start(f, hdr, &done_kf);
    kf_run(f);
    assert_ptr_equal(keyfetch_keys(kf2, &count)[0], k1); /* the same key, not parsed again */
    keyfetch_free(kf1);
    keyfetch_cache_clear(); /* kf2 still holds k1 */
    struct keyfetch *kf3 = kf_start(f, hdr, &done_kf);
    kf_run(f);
    struct dkim_pubkey *k3 = keyfetch_keys(kf3, &count)[0];
    assert_int_equal(count, 1);
    assert_ptr_not_equal(k3, k1);
    assert_int_equal(keyfetch_status(kf2, "football.example.com", "brisbane", NULL), KEYFETCH_OK);
    keyfetch_free(kf2); /* the last holder of k1 */
    keyfetch_free(kf3);
    keyfetch_cache_clear();
    assert_int_equal(peer_count(f, NAME_RFC8463), 1); /* dnstxt answered the rest from its cache */
}

static void test_keyfetch_no_signature(void **state)
{
    struct fixture *f = *state;
    struct keyfetch *done_kf;
    struct keyfetch *kf = kf_start(f, "From: a@b.example\r\nSubject: x\r\n", &done_kf);
    kf_run(f);
    assert_int_equal(keyfetch_pair_count(kf), 0);
    size_t count;
    keyfetch_keys(kf, &count);
    assert_int_equal(count, 0);
    keyfetch_free(kf);
    keyfetch_free(NULL);
}

static void test_keyfetch_cancel(void **state)
{
    struct fixture *f = *state;
    struct keyfetch *done_kf;
    struct keyfetch *kf = kf_start(
        f, "DKIM-Signature: d=example.com; s=drop; b=1\r\nDKIM-Signature: d=example.com; s=sel\r\n",
        &done_kf);
    keyfetch_cancel(kf);
    kf = kf_start(f, "Subject: none\r\n", &done_kf); /* cancelled before its event ran */
    keyfetch_cancel(kf);
    spin(f, 100);
    assert_int_equal(kf_done_calls, 0);
    keyfetch_cancel(NULL);
}

static void test_keyfetch_limit(void **state)
{
    struct fixture *f = *state;
    struct keyfetch *done_kf;
    char hdr[4096];
    size_t w = 0;
    for (int i = 0; i < LIMIT_KEYFETCH_DKIM_PAIRS + 4; i++)
        w += (size_t)snprintf(hdr + w, sizeof(hdr) - w, "DKIM-Signature: d=example.com; s=s%d\r\n",
                              i);
    struct keyfetch *kf = kf_start(f, hdr, &done_kf);
    kf_run(f);
    assert_int_equal(keyfetch_pair_count(kf), LIMIT_KEYFETCH_DKIM_PAIRS); /* DKIM's budget */
    const char *why;
    assert_int_equal(keyfetch_status(kf, "example.com", "s0", &why), KEYFETCH_NOKEY);
    assert_int_equal(keyfetch_status(kf, "example.com", "s19", &why), KEYFETCH_SKIPPED);
    assert_non_null(strstr(why, "more keys than coex looks up"));
    assert_int_equal(f->peer.udp_queries, LIMIT_KEYFETCH_DKIM_PAIRS);
    keyfetch_free(kf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_answer_then_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_coalesced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_servfail_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tcp_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_id_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_source_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lookup_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfetch_key_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfetch_no_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfetch_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keyfetch_limit, setup, teardown),
        cmocka_unit_test(test_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
