/*
 * dnstxt - asynchronous TXT lookups on libevent (see dnstxt.h).
 *
 * One transfer (struct dnstxt_xfer) per name on the wire, with the queries
 * waiting for it; a finished transfer turns into one immutable, reference
 * counted result shared by those queries and the cache. Every query is
 * answered from its own event (a zero timeout: the next loop pass, even when
 * the lookup was made from a callback), never from the call that made
 * it, and a callback may cancel other queries or free the resolver.
 *
 * RFC 1035 §4.2.1 (UDP) and §4.2.2 (TCP, 2-byte length prefix; RFC 7766
 * §6.2.1 for the retry over TCP on TC), RFC 6891 §7 (a FORMERR to an EDNS
 * query: ask again without EDNS), RFC 2308 §5 (negative caching), RFC 5452
 * §9.1 (new socket and random ID per attempt, replies checked for source
 * address, ID and question; anything else ignored while waiting).
 *
 * Does not: keep TCP connections open between queries, or cache temporary
 * failures.
 */
#include "dnstxt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <openssl/rand.h>

#include "dnsmsg.h"

#define DNSTXT_CACHE_BUCKETS_MAX ((size_t)1 << 20)
#define DNSTXT_ATTEMPTS_MAX 10
#define DNSTXT_WHY_SIZE 160
#define DNSTXT_TCP_PREFIX 2
#define DNSTXT_RESOLV_LINE 512 /* longer resolv.conf lines are read in pieces */

/* a finished lookup: immutable, shared by the cache and the queries it answers */
struct dnstxt_result {
    int refs;
    enum dnstxt_status status;
    size_t count;
    const char **txt; /* into text */
    size_t *lens;
    char *text;
    char why[DNSTXT_WHY_SIZE];
};

struct dnstxt_entry {
    struct dnstxt_entry *hnext;         /* hash chain */
    struct dnstxt_entry *older, *newer; /* insertion order: the oldest goes first */
    char *name;                         /* lower case, no final dot */
    unsigned long long hash;
    long long expires_ms;
    struct dnstxt_result *res;
};

struct dnstxt_query {
    struct dnstxt *r;
    struct dnstxt_xfer *xfer;         /* waiting for it; NULL once res is set */
    struct dnstxt_query *prev, *next; /* in xfer->waiters, or in r->ready */
    struct event *ev;                 /* delivers res */
    struct dnstxt_result *res;
    dnstxt_fn *done;
    void *arg;
};

/* one name on the wire */
struct dnstxt_xfer {
    struct dnstxt *r;
    struct dnstxt_xfer *prev, *next;
    char *name;
    struct dnstxt_query *waiters;
    int attempt, edns, tcp;
    uint16_t id;
    unsigned char query[DNSTXT_TCP_PREFIX + DNSMSG_QUERY_MAX]; /* room for the TCP prefix */
    size_t query_len;
    int fd;
    struct event *io;
    struct event *timer;
    unsigned char *tcp_buf; /* TCP: the length prefix and the response */
    size_t tcp_sent, tcp_have;
};

struct dnstxt {
    struct event_base *base;
    struct sockaddr_storage server;
    socklen_t server_len;
    struct timeval timeout;
    int attempts, min_ttl, max_ttl, neg_ttl;
    size_t cache_max, cache_count, nbuckets;
    struct dnstxt_entry **buckets;
    struct dnstxt_entry *oldest, *newest;
    struct dnstxt_xfer *xfers;
    struct dnstxt_query *ready;
    struct dnstxt_stats stats;
    unsigned char *rx; /* one UDP datagram */
};

/* dnstxt_now_ms - the monotonic clock */
static long long dnstxt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ results */

/* dnstxt_result_new - a result without records; refs 1 */
static struct dnstxt_result *dnstxt_result_new(enum dnstxt_status st, const char *why)
{
    struct dnstxt_result *res = xcalloc(1, sizeof(*res));
    res->refs = 1;
    res->status = st;
    snprintf(res->why, sizeof(res->why), "%s", why);
    return res;
}

/* dnstxt_result_from_answer - copy the records of a parsed answer */
static struct dnstxt_result *dnstxt_result_from_answer(const struct dnsmsg_answer *a)
{
    struct dnstxt_result *res = dnstxt_result_new(DNSTXT_OK, "answer");
    res->text = xmalloc(a->text.len + 1);
    memcpy(res->text, a->text.data, a->text.len);
    res->text[a->text.len] = '\0';
    res->txt = xcalloc(a->count, sizeof(*res->txt));
    res->lens = xcalloc(a->count, sizeof(*res->lens));
    for (size_t i = 0; i < a->count; i++) {
        res->txt[i] = res->text + a->offs[i];
        res->lens[i] = a->lens[i];
    }
    res->count = a->count;
    return res;
}

/* dnstxt_result_unref - drop one reference */
static void dnstxt_result_unref(struct dnstxt_result *res)
{
    if (res == NULL || --res->refs > 0)
        return;
    free(res->txt);
    free(res->lens);
    free(res->text);
    free(res);
}

/* ------------------------------------------------------------------ cache */

/* dnstxt_cache_remove - take e out of the table and the age list, and free it */
static void dnstxt_cache_remove(struct dnstxt *r, struct dnstxt_entry *e)
{
    struct dnstxt_entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        r->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        r->newest = e->older;
    r->cache_count--;
    dnstxt_result_unref(e->res);
    free(e->name);
    free(e);
}

/* dnstxt_cache_get - the live entry for name (lower case), or NULL; expired ones go */
static struct dnstxt_entry *dnstxt_cache_get(struct dnstxt *r, const char *name)
{
    unsigned long long hash = util_hash_lower(name, strlen(name));
    for (struct dnstxt_entry *e = r->buckets[hash & (r->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash != hash || strcmp(e->name, name) != 0)
            continue;
        if (e->expires_ms <= dnstxt_now_ms()) {
            dnstxt_cache_remove(r, e);
            return NULL;
        }
        return e;
    }
    return NULL;
}

/* dnstxt_cache_put - keep res for ttl seconds (takes a reference) */
static void dnstxt_cache_put(struct dnstxt *r, const char *name, struct dnstxt_result *res,
                             long ttl)
{
    long long now = dnstxt_now_ms();
    struct dnstxt_entry *old = dnstxt_cache_get(r, name);
    if (old)
        dnstxt_cache_remove(r, old);
    while (r->oldest && (r->cache_count >= r->cache_max || r->oldest->expires_ms <= now))
        dnstxt_cache_remove(r, r->oldest);
    struct dnstxt_entry *e = xcalloc(1, sizeof(*e));
    e->name = xstrdup(name);
    e->hash = util_hash_lower(name, strlen(name));
    e->expires_ms = now + (long long)ttl * 1000;
    e->res = res;
    res->refs++;
    struct dnstxt_entry **bucket = &r->buckets[e->hash & (r->nbuckets - 1)];
    e->hnext = *bucket;
    *bucket = e;
    e->older = r->newest;
    if (r->newest)
        r->newest->newer = e;
    else
        r->oldest = e;
    r->newest = e;
    r->cache_count++;
}

/* ------------------------------------------------------------------ queries */

/* dnstxt_deliver - the query's event: run its callback once, after freeing the query */
static void dnstxt_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct dnstxt_query *q = arg;
    struct dnstxt *r = q->r;
    struct dnstxt_result *res = q->res;
    dnstxt_fn *done = q->done;
    void *done_arg = q->arg;
    (void)fd;
    (void)what;
    if (q->prev)
        q->prev->next = q->next;
    else
        r->ready = q->next;
    if (q->next)
        q->next->prev = q->prev;
    event_free(q->ev);
    free(q);
    done(done_arg, res->status, res->txt, res->lens, res->count, res->why);
    dnstxt_result_unref(res);
}

/* dnstxt_query_ready - give q its result (a new reference) and schedule the callback */
static void dnstxt_query_ready(struct dnstxt *r, struct dnstxt_query *q, struct dnstxt_result *res)
{
    q->xfer = NULL;
    q->res = res;
    res->refs++;
    q->prev = NULL;
    q->next = r->ready;
    if (r->ready)
        r->ready->prev = q;
    r->ready = q;
    /*
     * a zero timeout, not event_active: an event activated from a callback
     * would run in the same pass, and a caller looking up cached names from
     * its callbacks could keep the loop from ever polling
     */
    static const struct timeval now = {0, 0};
    if (evtimer_add(q->ev, &now) < 0)
        event_active(q->ev, EV_TIMEOUT, 1);
}

/* dnstxt_query_free - a query that will not be delivered */
static void dnstxt_query_free(struct dnstxt_query *q)
{
    event_free(q->ev);
    dnstxt_result_unref(q->res);
    free(q);
}

/* ------------------------------------------------------------------ transfers */

/* dnstxt_xfer_close_io - close the socket of the current attempt */
static void dnstxt_xfer_close_io(struct dnstxt_xfer *x)
{
    if (x->io) {
        event_free(x->io);
        x->io = NULL;
    }
    if (x->fd >= 0) {
        close(x->fd);
        x->fd = -1;
    }
    evtimer_del(x->timer);
}

/* dnstxt_xfer_free - unlink and free a transfer that has no waiters left */
static void dnstxt_xfer_free(struct dnstxt_xfer *x)
{
    struct dnstxt *r = x->r;
    dnstxt_xfer_close_io(x);
    if (x->prev)
        x->prev->next = x->next;
    else
        r->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    event_free(x->timer);
    free(x->tcp_buf);
    free(x->name);
    free(x);
}

/* dnstxt_xfer_finish - hand res (consumed) to every waiter, cache it when ttl > 0, free x */
static void dnstxt_xfer_finish(struct dnstxt_xfer *x, struct dnstxt_result *res, long ttl)
{
    struct dnstxt *r = x->r;
    if (ttl > 0)
        dnstxt_cache_put(r, x->name, res, ttl);
    while (x->waiters) {
        struct dnstxt_query *q = x->waiters;
        x->waiters = q->next;
        dnstxt_query_ready(r, q, res);
    }
    dnstxt_result_unref(res);
    dnstxt_xfer_free(x);
}

/* dnstxt_xfer_fail - finish with a failure that is not cached */
static void dnstxt_xfer_fail(struct dnstxt_xfer *x, enum dnstxt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dnstxt_xfer_fail(struct dnstxt_xfer *x, enum dnstxt_status st, const char *fmt, ...)
{
    char why[DNSTXT_WHY_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    dnstxt_xfer_finish(x, dnstxt_result_new(st, why), 0);
}

/* dnstxt_clamp - v within [lo, hi] */
static long dnstxt_clamp(long v, long lo, long hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* dnstxt_xfer_answer - a parsed response to our query: finish with it */
static void dnstxt_xfer_answer(struct dnstxt_xfer *x, const struct dnsmsg_answer *a)
{
    struct dnstxt *r = x->r;
    long neg = r->neg_ttl;
    if (a->have_neg_ttl && (long)a->neg_ttl < neg)
        neg = (long)a->neg_ttl;
    switch (a->result) {
    case DNSMSG_ANSWER:
        dnstxt_xfer_finish(x, dnstxt_result_from_answer(a),
                           dnstxt_clamp((long)a->ttl, r->min_ttl, r->max_ttl));
        return;
    case DNSMSG_NXDOMAIN:
        dnstxt_xfer_finish(x, dnstxt_result_new(DNSTXT_NOTFOUND, "no such name (NXDOMAIN)"), neg);
        return;
    case DNSMSG_NODATA:
        dnstxt_xfer_finish(x, dnstxt_result_new(DNSTXT_NOTFOUND, "no TXT record (NODATA)"), neg);
        return;
    case DNSMSG_SERVFAIL:
    case DNSMSG_REFUSED:
    case DNSMSG_RCODE:
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "server answered %s", a->why);
        return;
    case DNSMSG_MALFORMED:
    case DNSMSG_TRUNCATED: /* only over TCP */
    case DNSMSG_MISMATCH:  /* only over TCP */
        dnstxt_xfer_fail(x, DNSTXT_BADANSWER, "bad response: %s", a->why);
        return;
    }
}

static void dnstxt_udp_start(struct dnstxt_xfer *x);
static void dnstxt_tcp_start(struct dnstxt_xfer *x);

/* dnstxt_udp_next - this attempt failed: the next one, or give up */
static void dnstxt_udp_next(struct dnstxt_xfer *x, const char *why)
{
    if (++x->attempt < x->r->attempts) {
        dnstxt_udp_start(x);
        return;
    }
    char detail[DNSTXT_WHY_SIZE];
    snprintf(detail, sizeof(detail), "%s after %d attempt(s)", why, x->attempt);
    dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "%s", detail);
}

/* dnstxt_same_addr - is from the server's address and port? */
static int dnstxt_same_addr(const struct dnstxt *r, const struct sockaddr_storage *from,
                            socklen_t from_len)
{
    if (from->ss_family != r->server.ss_family)
        return 0;
    if (from->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const void *)from, *b = (const void *)&r->server;
        return from_len >= (socklen_t)sizeof(*a) && a->sin_port == b->sin_port &&
               a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *a = (const void *)from, *b = (const void *)&r->server;
    return from_len >= (socklen_t)sizeof(*a) && a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0;
}

/* dnstxt_udp_read - datagrams on the attempt's socket */
static void dnstxt_udp_read(evutil_socket_t fd, short what, void *arg)
{
    struct dnstxt_xfer *x = arg;
    struct dnstxt *r = x->r;
    struct dnsmsg_answer a;
    (void)what;
    dnsmsg_answer_init(&a);
    for (;;) {
        struct sockaddr_storage from;
        socklen_t from_len = sizeof(from);
        ssize_t n = recvfrom(fd, r->rx, DNSMSG_PACKET_MAX, 0, (struct sockaddr *)&from, &from_len);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                break;
            dnstxt_udp_next(x, strerror(errno)); /* ECONNREFUSED: ICMP port unreachable */
            break;
        }
        if (!dnstxt_same_addr(r, &from, from_len)) {
            r->stats.ignored++;
            continue;
        }
        enum dnsmsg_result res = dnsmsg_parse_txt(r->rx, (size_t)n, x->id, x->name, &a);
        if (res == DNSMSG_MISMATCH) {
            r->stats.ignored++;
            continue;
        }
        if (res == DNSMSG_TRUNCATED) {
            dnstxt_tcp_start(x);
            break;
        }
        if (res == DNSMSG_RCODE && a.rcode == DNSMSG_RCODE_FORMERR && x->edns) {
            x->edns = 0; /* RFC 6891 §7: a server that does not know EDNS */
            dnstxt_udp_start(x);
            break;
        }
        dnstxt_xfer_answer(x, &a);
        break;
    }
    dnsmsg_answer_cleanup(&a);
}

/* dnstxt_timeout - the attempt's time is up */
static void dnstxt_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct dnstxt_xfer *x = arg;
    (void)fd;
    (void)what;
    if (x->tcp) {
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "%s", "timeout over TCP");
        return;
    }
    dnstxt_udp_next(x, "timeout");
}

/* dnstxt_new_query - a random ID and the query that carries it; -1 with the reason in why */
static int dnstxt_new_query(struct dnstxt_xfer *x, const char **why)
{
    unsigned char rnd[2];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
        *why = "no random numbers";
        return -1;
    }
    x->id = (uint16_t)(rnd[0] << 8 | rnd[1]);
    if (dnsmsg_build_query(x->name, x->id, x->edns, x->query + DNSTXT_TCP_PREFIX, DNSMSG_QUERY_MAX,
                           &x->query_len) < 0) {
        *why = "cannot build the query";
        return -1;
    }
    return 0;
}

/* dnstxt_socket - a non-blocking socket connected (or connecting) to the server */
static int dnstxt_socket(struct dnstxt *r, int type)
{
    int fd = socket(r->server.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&r->server, r->server_len) < 0 &&
        errno != EINPROGRESS) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* dnstxt_udp_start - attempt x->attempt: new socket, new ID, send, wait */
static void dnstxt_udp_start(struct dnstxt_xfer *x)
{
    struct dnstxt *r = x->r;
    const char *why;
    dnstxt_xfer_close_io(x);
    if (dnstxt_new_query(x, &why) < 0) {
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "%s", why);
        return;
    }
    /* a connected socket: the kernel picks a random port and drops other sources */
    if ((x->fd = dnstxt_socket(r, SOCK_DGRAM)) < 0 ||
        send(x->fd, x->query + DNSTXT_TCP_PREFIX, x->query_len, 0) != (ssize_t)x->query_len) {
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "cannot send the query: %s", strerror(errno));
        return;
    }
    r->stats.queries_sent++;
    x->io = event_new(r->base, x->fd, EV_READ | EV_PERSIST, dnstxt_udp_read, x);
    if (x->io == NULL || event_add(x->io, NULL) < 0 || evtimer_add(x->timer, &r->timeout) < 0)
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "%s", "cannot add an event");
}

/* dnstxt_tcp_io - write the query, then read the length prefix and the response */
static void dnstxt_tcp_io(evutil_socket_t fd, short what, void *arg)
{
    struct dnstxt_xfer *x = arg;
    struct dnstxt *r = x->r;
    size_t total = DNSTXT_TCP_PREFIX + x->query_len;
    if ((what & EV_WRITE) && x->tcp_sent < total) {
        ssize_t n = send(fd, x->query + x->tcp_sent, total - x->tcp_sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n < 0) {
            dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "TCP: %s", strerror(errno));
            return;
        }
        x->tcp_sent += (size_t)n;
        if (x->tcp_sent == total) {
            event_free(x->io);
            x->io = event_new(r->base, fd, EV_READ | EV_PERSIST, dnstxt_tcp_io, x);
            if (x->io == NULL || event_add(x->io, NULL) < 0)
                dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "%s", "cannot add an event");
        }
        return;
    }
    if (!(what & EV_READ))
        return;
    for (;;) {
        size_t need = DNSTXT_TCP_PREFIX;
        if (x->tcp_have >= DNSTXT_TCP_PREFIX)
            need += (size_t)x->tcp_buf[0] << 8 | x->tcp_buf[1];
        if (x->tcp_have == need && need > DNSTXT_TCP_PREFIX)
            break;
        ssize_t n = recv(fd, x->tcp_buf + x->tcp_have, need - x->tcp_have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0) {
            dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "TCP: %s",
                             n == 0 ? "connection closed before the response" : strerror(errno));
            return;
        }
        x->tcp_have += (size_t)n;
        if (x->tcp_have == DNSTXT_TCP_PREFIX && x->tcp_buf[0] == 0 && x->tcp_buf[1] == 0) {
            dnstxt_xfer_fail(x, DNSTXT_BADANSWER, "%s", "TCP: empty response");
            return;
        }
    }
    struct dnsmsg_answer a;
    dnsmsg_answer_init(&a);
    dnsmsg_parse_txt(x->tcp_buf + DNSTXT_TCP_PREFIX, x->tcp_have - DNSTXT_TCP_PREFIX, x->id,
                     x->name, &a);
    dnstxt_xfer_answer(x, &a);
    dnsmsg_answer_cleanup(&a);
}

/* dnstxt_tcp_start - the UDP answer was truncated: the same query over TCP */
static void dnstxt_tcp_start(struct dnstxt_xfer *x)
{
    struct dnstxt *r = x->r;
    dnstxt_xfer_close_io(x);
    x->tcp = 1;
    x->query[0] = (unsigned char)(x->query_len >> 8);
    x->query[1] = (unsigned char)x->query_len;
    x->tcp_buf = xmalloc(DNSTXT_TCP_PREFIX + DNSMSG_PACKET_MAX);
    if ((x->fd = dnstxt_socket(r, SOCK_STREAM)) < 0) {
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "TCP: %s", strerror(errno));
        return;
    }
    r->stats.queries_sent++;
    r->stats.tcp_queries++;
    x->io = event_new(r->base, x->fd, EV_WRITE | EV_PERSIST, dnstxt_tcp_io, x);
    if (x->io == NULL || event_add(x->io, NULL) < 0 || evtimer_add(x->timer, &r->timeout) < 0)
        dnstxt_xfer_fail(x, DNSTXT_TEMPFAIL, "%s", "cannot add an event");
}

/* ------------------------------------------------------------------ set-up */

/* dnstxt_parse_server - "A", "A:PORT", "[A6]:PORT", "A6" into *ss */
static int dnstxt_parse_server(const char *s, struct sockaddr_storage *ss, socklen_t *ss_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text = NULL, *h = s, *close_br;
    size_t host_len;
    long port = DNSTXT_PORT;

    if (s[0] == '[') {
        if ((close_br = strchr(s, ']')) == NULL || (close_br[1] != '\0' && close_br[1] != ':'))
            return -1;
        h = s + 1;
        host_len = (size_t)(close_br - h);
        if (close_br[1] == ':')
            port_text = close_br + 2;
    } else {
        const char *colon = strchr(s, ':');
        host_len = strlen(s);
        if (colon && strchr(colon + 1, ':') == NULL) { /* one colon: IPv4 with a port */
            host_len = (size_t)(colon - s);
            port_text = colon + 1;
        }
    }
    if (host_len == 0 || host_len >= sizeof(host))
        return -1;
    memcpy(host, h, host_len);
    host[host_len] = '\0';
    if (port_text) {
        char *end;
        errno = 0;
        port = strtol(port_text, &end, 10);
        if (errno || end == port_text || *end || port < 1 || port > 65535)
            return -1;
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ss_len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ss_len = sizeof(*v6);
        return 0;
    }
    return -1;
}

/*
 * dnstxt_resolv_conf - the first "nameserver ADDR" of path into server;
 * 1 found, 0 none (resolv.conf(5): then the local machine), -1 unreadable
 */
static int dnstxt_resolv_conf(const char *path, char *server, size_t size)
{
    char line[DNSTXT_RESOLV_LINE];
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    int found = 0;
    while (!found && fgets(line, sizeof(line), fp)) {
        char *p = line + strspn(line, " \t");
        if (strncmp(p, "nameserver", 10) != 0 || (p[10] != ' ' && p[10] != '\t'))
            continue;
        p += 10;
        p += strspn(p, " \t");
        size_t n = strcspn(p, " \t\r\n#;");
        if (n == 0 || n >= size)
            continue;
        memcpy(server, p, n);
        server[n] = '\0';
        found = 1;
    }
    fclose(fp);
    return found;
}

/* dnstxt_new - see dnstxt.h */
struct dnstxt *dnstxt_new(struct event_base *base, const struct dnstxt_opts *o, char *err,
                          size_t errlen)
{
    static const struct dnstxt_opts defaults;
    char server[INET6_ADDRSTRLEN + 16];
    if (o == NULL)
        o = &defaults;
    struct dnstxt *r = xcalloc(1, sizeof(*r));
    r->base = base;
    if (o->server) {
        if (dnstxt_parse_server(o->server, &r->server, &r->server_len) < 0) {
            snprintf(err, errlen, "bad DNS server \"%s\" (want ADDR, ADDR:PORT or [ADDR6]:PORT)",
                     o->server);
            goto fail;
        }
    } else {
        const char *path = o->resolv_conf ? o->resolv_conf : DNSTXT_RESOLV_CONF;
        int found = dnstxt_resolv_conf(path, server, sizeof(server));
        if (found < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (found == 0)
            snprintf(server, sizeof(server), "127.0.0.1");
        if (dnstxt_parse_server(server, &r->server, &r->server_len) < 0) {
            snprintf(err, errlen, "%s: cannot use nameserver %s", path, server);
            goto fail;
        }
    }
    int timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : DNSTXT_DEFAULT_TIMEOUT_MS;
    if (timeout_ms > DNSTXT_TIMEOUT_MAX_MS)
        timeout_ms = DNSTXT_TIMEOUT_MAX_MS;
    r->timeout.tv_sec = timeout_ms / 1000;
    r->timeout.tv_usec = (timeout_ms % 1000) * 1000;
    r->attempts = o->attempts > 0 ? o->attempts : DNSTXT_DEFAULT_ATTEMPTS;
    if (r->attempts > DNSTXT_ATTEMPTS_MAX)
        r->attempts = DNSTXT_ATTEMPTS_MAX;
    r->min_ttl = o->min_ttl > 0 ? o->min_ttl : DNSTXT_DEFAULT_MIN_TTL;
    r->max_ttl = o->max_ttl > 0 ? o->max_ttl : DNSTXT_DEFAULT_MAX_TTL;
    if (r->max_ttl < r->min_ttl)
        r->max_ttl = r->min_ttl;
    r->neg_ttl = o->neg_ttl > 0 ? o->neg_ttl : DNSTXT_DEFAULT_NEG_TTL;
    r->cache_max = o->cache_max > 0 ? o->cache_max : DNSTXT_DEFAULT_CACHE_MAX;
    for (r->nbuckets = 16; r->nbuckets < r->cache_max && r->nbuckets < DNSTXT_CACHE_BUCKETS_MAX;)
        r->nbuckets *= 2;
    r->buckets = xcalloc(r->nbuckets, sizeof(*r->buckets));
    r->rx = xmalloc(DNSMSG_PACKET_MAX);
    return r;
fail:
    free(r);
    return NULL;
}

/* dnstxt_free - see dnstxt.h */
void dnstxt_free(struct dnstxt *r)
{
    if (r == NULL)
        return;
    while (r->xfers) {
        struct dnstxt_xfer *x = r->xfers;
        while (x->waiters) {
            struct dnstxt_query *q = x->waiters;
            x->waiters = q->next;
            dnstxt_query_free(q);
        }
        dnstxt_xfer_free(x);
    }
    while (r->ready) {
        struct dnstxt_query *q = r->ready;
        r->ready = q->next;
        dnstxt_query_free(q);
    }
    while (r->oldest)
        dnstxt_cache_remove(r, r->oldest);
    free(r->buckets);
    free(r->rx);
    free(r);
}

/* dnstxt_lookup - see dnstxt.h */
struct dnstxt_query *dnstxt_lookup(struct dnstxt *r, const char *name, dnstxt_fn *done, void *arg)
{
    char key[DNSMSG_NAME_MAX + 2];
    struct dnstxt_query *q = xcalloc(1, sizeof(*q));
    q->r = r;
    q->done = done;
    q->arg = arg;
    if ((q->ev = event_new(r->base, -1, 0, dnstxt_deliver, q)) == NULL) {
        free(q);
        return NULL;
    }
    if (dnsmsg_name_check(name) < 0) {
        struct dnstxt_result *res = dnstxt_result_new(DNSTXT_BADANSWER, "not a valid DNS name");
        dnstxt_query_ready(r, q, res);
        dnstxt_result_unref(res);
        return q;
    }
    size_t len = strlen(name);
    if (name[len - 1] == '.')
        len--;
    for (size_t i = 0; i < len; i++)
        key[i] = (char)util_lower((unsigned char)name[i]);
    key[len] = '\0';

    struct dnstxt_entry *e = dnstxt_cache_get(r, key);
    if (e) {
        r->stats.cache_hits++;
        dnstxt_query_ready(r, q, e->res);
        return q;
    }
    struct dnstxt_xfer *x = r->xfers;
    while (x && strcmp(x->name, key) != 0)
        x = x->next;
    if (x == NULL) {
        x = xcalloc(1, sizeof(*x));
        x->r = r;
        x->name = xstrdup(key);
        x->fd = -1;
        x->edns = 1;
        x->timer = evtimer_new(r->base, dnstxt_timeout, x);
        if (x->timer == NULL) {
            free(x->name);
            free(x);
            event_free(q->ev);
            free(q);
            return NULL;
        }
        x->next = r->xfers;
        if (r->xfers)
            r->xfers->prev = x;
        r->xfers = x;
    }
    q->xfer = x;
    q->next = x->waiters;
    if (x->waiters)
        x->waiters->prev = q;
    x->waiters = q;
    if (q->next == NULL) /* the first waiter: start; a failure here is delivered later */
        dnstxt_udp_start(x);
    return q;
}

/* dnstxt_cancel - see dnstxt.h */
void dnstxt_cancel(struct dnstxt_query *q)
{
    if (q == NULL)
        return;
    struct dnstxt *r = q->r;
    struct dnstxt_xfer *x = q->xfer;
    struct dnstxt_query **head = x ? &x->waiters : &r->ready;
    if (q->prev)
        q->prev->next = q->next;
    else
        *head = q->next;
    if (q->next)
        q->next->prev = q->prev;
    dnstxt_query_free(q);
    if (x && x->waiters == NULL)
        dnstxt_xfer_free(x); /* nobody waits: stop asking */
}

/* dnstxt_base - see dnstxt.h */
struct event_base *dnstxt_base(const struct dnstxt *r)
{
    return r->base;
}

/* dnstxt_get_stats - see dnstxt.h */
void dnstxt_get_stats(const struct dnstxt *r, struct dnstxt_stats *st)
{
    *st = r->stats;
    st->cached = r->cache_count;
}

/* dnstxt_status_name - see dnstxt.h */
const char *dnstxt_status_name(enum dnstxt_status st)
{
    switch (st) {
    case DNSTXT_OK:
        return "ok";
    case DNSTXT_NOTFOUND:
        return "notfound";
    case DNSTXT_TEMPFAIL:
        return "tempfail";
    case DNSTXT_BADANSWER:
        return "badanswer";
    }
    return "?";
}
