/*
 * dnstxt_wire - one name on the wire: UDP attempts, then TCP when the answer
 * is truncated.
 *
 * RFC 1035 §4.2.1 (UDP) and §4.2.2 (TCP, 2-byte length prefix; RFC 7766
 * §6.2.1 for the retry over TCP on TC), RFC 6891 §7 (a FORMERR to an EDNS
 * query: ask again without EDNS), RFC 5452 §9.1 (a new socket, so a new
 * random source port, and a random ID per attempt; replies checked for
 * source address, ID and question, anything else ignored while waiting),
 * RFC 2308 §5 (the negative TTL: the SOA's when lower than ours).
 *
 * An answer with a record longer than DNSTXT_RECORD_MAX, or more than
 * DNSTXT_ANSWER_MAX bytes of records, is refused (DNSTXT_TOOBIG) and
 * that refusal is cached for our negative TTL, whatever SOA came with it:
 * otherwise every message naming the selector would fetch it again.
 *
 * Does not: keep TCP connections open between queries, or retry over TCP.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "dnstxt_int.h"

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
void dnstxt_xfer_free(struct dnstxt_xfer *x)
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

/*
 * dnstxt_answer_too_big - 1 with the reason in why when the records of a
 * are longer than we keep (DNSTXT_RECORD_MAX each, DNSTXT_ANSWER_MAX in all)
 */
static int dnstxt_answer_too_big(const struct dnsmsg_answer *a, char *why, size_t size)
{
    size_t total = 0;
    for (size_t i = 0; i < a->count; i++) {
        if (a->lens[i] > DNSTXT_RECORD_MAX) {
            snprintf(why, size, "TXT record of %zu bytes, longer than the %d kept", a->lens[i],
                     DNSTXT_RECORD_MAX);
            return 1;
        }
        total += a->lens[i];
    }
    if (total > DNSTXT_ANSWER_MAX) {
        snprintf(why, size, "%zu TXT records of %zu bytes in all, more than the %d kept", a->count,
                 total, DNSTXT_ANSWER_MAX);
        return 1;
    }
    return 0;
}

/* dnstxt_xfer_answer - a parsed response to our query: finish with it */
static void dnstxt_xfer_answer(struct dnstxt_xfer *x, const struct dnsmsg_answer *a)
{
    struct dnstxt *r = x->r;
    char why[DNSTXT_WHY_SIZE];
    long neg = r->neg_ttl;
    if (a->have_neg_ttl && (long)a->neg_ttl < neg)
        neg = (long)a->neg_ttl;
    switch (a->result) {
    case DNSMSG_ANSWER:
        if (dnstxt_answer_too_big(a, why, sizeof(why))) {
            /* our negative TTL, not the SOA's: an SOA of 0 would have it fetched each time */
            dnstxt_xfer_finish(x, dnstxt_result_new(DNSTXT_TOOBIG, why), r->neg_ttl);
            return;
        }
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
void dnstxt_timeout(evutil_socket_t fd, short what, void *arg)
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
void dnstxt_udp_start(struct dnstxt_xfer *x)
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
