/*
 * dnstxt_int - what the dnstxt_*.c files share: the resolver's structures
 * and the functions that cross files. Only src/smtp/dnstxt*.c include it.
 *
 * dnstxt.c: the public API and the delivery of answers; dnstxt_wire.c: the
 * queries on the wire (UDP attempts, TCP); dnstxt_cache.c: the shared
 * results and the cache.
 */
#ifndef COEX_DNSTXT_INT_H
#define COEX_DNSTXT_INT_H

#include <stdint.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/event.h>

#include "dnsmsg.h"
#include "dnstxt.h"

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
    size_t bytes; /* counted against cache_max_bytes: the entry, its name and res */
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
    size_t cache_max_bytes, cache_bytes;
    struct dnstxt_entry **buckets;
    struct dnstxt_entry *oldest, *newest;
    struct dnstxt_xfer *xfers;
    struct dnstxt_query *ready;
    struct dnstxt_stats stats;
    unsigned char *rx; /* one UDP datagram */
};

/* dnstxt_now_ms - the monotonic clock, in milliseconds */
long long dnstxt_now_ms(void);
/* dnstxt_result_new - a result without records, why copied; refs 1 */
struct dnstxt_result *dnstxt_result_new(enum dnstxt_status st, const char *why);
/* dnstxt_result_from_answer - a DNSTXT_OK result with a copy of the answer's records; refs 1 */
struct dnstxt_result *dnstxt_result_from_answer(const struct dnsmsg_answer *a);
/* dnstxt_result_unref - drop one reference; the last frees; NULL does nothing */
void dnstxt_result_unref(struct dnstxt_result *res);
/* dnstxt_cache_get - the live entry for name (lower case), or NULL; an expired one is removed */
struct dnstxt_entry *dnstxt_cache_get(struct dnstxt *r, const char *name);
/*
 * dnstxt_cache_put - keep res for ttl seconds (a new reference), evicting
 * the oldest entries while the cache is full in names or in bytes; an entry
 * larger than the whole byte budget is not kept
 */
void dnstxt_cache_put(struct dnstxt *r, const char *name, struct dnstxt_result *res, long ttl);
/* dnstxt_cache_remove - take an entry out and free it (its reference dropped) */
void dnstxt_cache_remove(struct dnstxt *r, struct dnstxt_entry *e);

/* dnstxt_query_ready - give q res (a new reference) and schedule its callback */
void dnstxt_query_ready(struct dnstxt *r, struct dnstxt_query *q, struct dnstxt_result *res);

/* dnstxt_udp_start - attempt x->attempt over UDP; a failure finishes (and frees) x */
void dnstxt_udp_start(struct dnstxt_xfer *x);
/* dnstxt_xfer_free - close and unlink a transfer whose waiters are gone, and free it */
void dnstxt_xfer_free(struct dnstxt_xfer *x);
/* dnstxt_timeout - the timer callback of a transfer (x is arg) */
void dnstxt_timeout(evutil_socket_t fd, short what, void *arg);

#endif
