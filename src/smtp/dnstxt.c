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
 * This file: the API, the server address (an option or resolv.conf(5)),
 * and the delivery of answers; the wire is in dnstxt_wire.c, the cache in
 * dnstxt_cache.c.
 *
 * Does not: read resolv.conf's options, search or domain lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "dnstxt_int.h"

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
void dnstxt_query_ready(struct dnstxt *r, struct dnstxt_query *q, struct dnstxt_result *res)
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
    r->cache_max_bytes = o->cache_max_bytes > 0 ? o->cache_max_bytes : DNSTXT_DEFAULT_CACHE_BYTES;
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
    st->cached_bytes = r->cache_bytes;
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
    case DNSTXT_TOOBIG:
        return "toobig";
    }
    return "?";
}
