/*
 * dnstxt - asynchronous DNS TXT lookups on a libevent loop (a stub client
 * talking to one recursive server).
 *
 * libevent 2.1's evdns resolves A, AAAA and PTR only; DKIM needs TXT
 * (RFC 6376 §3.6.2), so this is a small stub of our own: UDP with EDNS0,
 * TCP when the answer is truncated (RFC 1035 §4.2.2, RFC 7766), a cache with
 * negative caching (RFC 2308), and the spoofing defences of RFC 5452 §9: a
 * fresh socket per attempt (random source port from the kernel), a random ID
 * from RAND_bytes, and a reply accepted only from the server's address with
 * the right ID and question. Packets are built and read by src/core/dnsmsg.
 *
 * Callbacks never run from inside dnstxt_lookup, not even for a cache hit:
 * each comes from its own event, on the loop. Concurrent lookups of one name
 * share one query. All on one thread (the loop's).
 *
 * Does not: search lists or ndots (names are absolute), rotate between
 * several servers, or validate DNSSEC.
 */
#ifndef COEX_DNSTXT_H
#define COEX_DNSTXT_H

#include <stddef.h>

#include "util.h"

struct event_base;

#define DNSTXT_DEFAULT_TIMEOUT_MS 2000 /* per attempt */
#define DNSTXT_DEFAULT_ATTEMPTS 2      /* UDP attempts; then one over TCP if truncated */
#define DNSTXT_DEFAULT_CACHE_MAX 4096  /* cached names */
#define DNSTXT_DEFAULT_CACHE_BYTES ((size_t)8 << 20) /* bytes the cached answers may take */
#define DNSTXT_DEFAULT_MIN_TTL 60                    /* seconds */
#define DNSTXT_DEFAULT_MAX_TTL 86400
#define DNSTXT_DEFAULT_NEG_TTL 300  /* NXDOMAIN/NODATA; lowered by the SOA (RFC 2308 §5) */
#define DNSTXT_TIMEOUT_MAX_MS 60000 /* a longer timeout_ms is cut to this */
#define DNSTXT_PORT 53
#define DNSTXT_RESOLV_CONF "/etc/resolv.conf"
/*
 * The largest answer kept. A DKIM key record is short (RSA-8192: about
 * 1.5 KB; Ed25519: 60 bytes), while a zone may serve 64 KB per name, and an
 * attacker's zone as many names as it likes: a longer record, or more text
 * in one answer, is DNSTXT_TOOBIG (cached for the negative TTL).
 */
#define DNSTXT_RECORD_MAX 4096 /* bytes of one TXT record, its strings joined */
#define DNSTXT_ANSWER_MAX 8192 /* bytes of all the TXT records of one answer */

/* options; a field left at 0 (or NULL) takes its default */
struct dnstxt_opts {
    /*
     * "127.0.0.1", "127.0.0.1:5353", "[::1]:5353" or "::1" (borrowed for
     * dnstxt_new only); NULL: the first nameserver line of resolv_conf
     */
    const char *server;
    int timeout_ms;   /* per attempt */
    int attempts;     /* UDP attempts */
    size_t cache_max; /* names kept; the oldest entry goes when it is full */
    /*
     * bytes kept (records, names and bookkeeping; default
     * DNSTXT_DEFAULT_CACHE_BYTES): the oldest entries go until a new one fits
     */
    size_t cache_max_bytes;
    int min_ttl; /* a positive answer is kept max(min_ttl, min(TTL, max_ttl)) s */
    int max_ttl;
    int neg_ttl; /* NXDOMAIN and NODATA: kept min(neg_ttl, SOA TTL) s (0 with an SOA of 0) */
    const char *resolv_conf; /* NULL: DNSTXT_RESOLV_CONF (borrowed for dnstxt_new only) */
};

enum dnstxt_status {
    DNSTXT_OK,
    DNSTXT_NOTFOUND,  /* NXDOMAIN, or the name has no TXT record (NODATA) */
    DNSTXT_TEMPFAIL,  /* timeout, SERVFAIL, REFUSED, another RCODE, a network error */
    DNSTXT_BADANSWER, /* the response cannot be read */
    DNSTXT_TOOBIG,    /* the records are longer than DNSTXT_RECORD_MAX / DNSTXT_ANSWER_MAX */
};

/*
 * dnstxt_fn - a lookup's result. With DNSTXT_OK, txt[0..count) are the TXT
 * records (each record's character-strings joined, NUL-terminated, lens[i]
 * bytes; a record may hold NUL bytes); otherwise count is 0. txt, lens and
 * why (a short reason, never NULL) are borrowed for the call only. The
 * query is finished when the callback runs: do not cancel it.
 */
typedef void dnstxt_fn(void *arg, enum dnstxt_status st, const char *const *txt, const size_t *lens,
                       size_t count, const char *why);

struct dnstxt;
struct dnstxt_query;

/*
 * dnstxt_new - a resolver on base (borrowed: it must outlive the resolver)
 * with opts (NULL: all defaults; copied). NULL with a reason in err when the
 * server string is not an address, or resolv.conf cannot be read or names
 * an address that is not one (no nameserver line: 127.0.0.1, as
 * resolv.conf(5) says). Opens nothing yet. Caller owns the result.
 */
struct dnstxt *dnstxt_new(struct event_base *base, const struct dnstxt_opts *o, char *err,
                          size_t errlen) WUR;
/*
 * dnstxt_free - close every socket and free everything; lookups still
 * pending are dropped (their callbacks are not run). NULL does nothing.
 * May be called from a callback.
 */
void dnstxt_free(struct dnstxt *r);

/*
 * dnstxt_lookup - look up the TXT records of name (borrowed for the call;
 * absolute, a final dot optional, case-insensitive). done(arg, ...) runs
 * exactly once, later, from the loop, unless the query is cancelled (or the
 * resolver freed) first. A name that fails dnsmsg_name_check is answered
 * DNSTXT_BADANSWER the same way. NULL only when an event cannot be made.
 * The query handle belongs to the resolver; it is valid until done runs.
 */
struct dnstxt_query *dnstxt_lookup(struct dnstxt *r, const char *name, dnstxt_fn *done,
                                   void *arg) WUR;
/*
 * dnstxt_cancel - forget a query whose callback has not run: it never will.
 * The network query goes on while other lookups wait for the same name,
 * and stops when none do. NULL does nothing.
 */
void dnstxt_cancel(struct dnstxt_query *q);

/* dnstxt_base - the loop the resolver runs on (borrowed) */
struct event_base *dnstxt_base(const struct dnstxt *r);

/* dnstxt_stats - counters for tests and logs */
struct dnstxt_stats {
    unsigned long queries_sent; /* UDP and TCP queries put on the wire */
    unsigned long tcp_queries;  /* of which over TCP */
    unsigned long cache_hits;
    unsigned long ignored; /* datagrams that were not the reply (RFC 5452) */
    size_t cached;         /* names in the cache now */
    size_t cached_bytes;   /* what they take, as counted against cache_max_bytes */
};
/* dnstxt_get_stats - fill *st */
void dnstxt_get_stats(const struct dnstxt *r, struct dnstxt_stats *st);

/* dnstxt_status_name - "ok", "notfound", "tempfail", "badanswer" */
const char *dnstxt_status_name(enum dnstxt_status st);

#endif
