/*
 * signpool - DKIM signing in coexd: the keys each route signs with, and a
 * small pool of worker threads that sign off the event loop.
 *
 * A route signs for the domain of the rewritten From when it has a key for
 * that domain (dkim_key lines, docs/configuration.md); one rsa and one
 * ed25519 key for a domain give two signatures (dual signing). The keys
 * belong to one loaded configuration: a reload loads new ones, and a message
 * is signed with the keys of the configuration its session started with.
 *
 * The pool: dkim_workers threads, each with its own struct dkim_signer per
 * signing domain (dkim.h: one signer per thread) and its own body hashers.
 * Jobs go to the workers through a mutex and a condition variable; results
 * come back to the event loop with event_active (libevent's pthreads
 * locking must be on: evthread_use_pthreads before event_base_new), where the
 * caller's callback runs.
 *
 * The body hashes come with the job, made by smtpd while the body streamed
 * in (signpool_body_canons says which); the worker hashes the body itself
 * only for one it did not get.
 *
 * Verification and ARC (RFC 8617): a route with dkim_verify hands the
 * message as received and the keys its signatures name (keyfetch.h, fetched
 * on the loop) too; the worker verifies every DKIM-Signature and the ARC
 * chain, and when the route has an arc_key, adds one ARC set over the
 * rewritten and signed message whose ARC-Authentication-Results carry those
 * results (docs/arc.md).
 *
 * Does not: read DNS, or touch sessions or the spool.
 */
#ifndef COEX_SIGNPOOL_H
#define COEX_SIGNPOOL_H

#include <stddef.h>

#include "arc.h"
#include "buf.h"
#include "cfg.h"
#include "dkim.h"

struct event_base;
struct signpool;        /* the worker threads */
struct signpool_domain; /* one route's keys for one signing domain */
struct keyfetch;        /* keyfetch.h */

/* the outcome of one job, borrowed by the callback */
struct signpool_result {
    int ok;            /* 1: fields holds what to put on top (maybe nothing) */
    int tempfail;      /* with ok 0: a key of the arrived ARC chain could not be looked up */
    struct buf fields; /* the ARC set, then the DKIM-Signature fields, CRLF-terminated */
    char info[256];    /* signed: "d=D s=S a=A[, s=S a=A]"; empty when not signed */
    char auth[LIMIT_ARC_RESULTS + 1]; /* verified: "dkim=pass header.d=...; arc=none", or "" */
    char arc[256];     /* sealed: "i=N cv=C d=D s=S"; not sealed: "not sealed: reason"; else empty */
    char err[160];     /* why not, when ok is 0 */
};

/* one message's work: verify what arrived, sign and seal what goes out */
struct signpool_req {
    struct signpool_domain *dom; /* DKIM keys for the rewritten From domain, or NULL */
    const char *msg;             /* the rewritten message, CRLF line ends (borrowed until done) */
    size_t len;
    const char *orig; /* the message as received (borrowed until done); NULL: verify nothing */
    size_t orig_len;
    const struct keyfetch *keys; /* orig's signing keys from DNS (borrowed until done) */
    const char *facts;           /* appended to the results as a comment, or NULL (copied) */
    long long now;
    /*
     * body hashes made while the body streamed in (bit 1 << enum dkim_canon
     * set for each one given); the worker hashes the body itself for a
     * canonicalisation it needs that is not here
     */
    unsigned body_mask;
    struct dkim_body_hash body[2];
};

typedef void signpool_done_fn(void *arg, const struct signpool_result *res);

/*
 * signpool_keys_load - read and check the key file of every dkim_key and
 * arc_key line of every route of cfg (RSA of 2048 bits or more, or Ed25519)
 * and set route->dkim for every route that signs, seals or verifies; pool
 * (borrowed, may be NULL: coexd -t) is where those routes' messages will be
 * handled. -1 with "FILE:LINE: reason" in err;
 * then nothing stays loaded.
 */
int signpool_keys_load(struct coex_config *cfg, struct signpool *pool, char *err, size_t errlen);
/* signpool_keys_attach - set the pool of keys loaded with pool NULL (coexd start-up) */
void signpool_keys_attach(struct coex_config *cfg, struct signpool *pool);
/*
 * signpool_keys_free - release the keys of cfg (route->dkim back to NULL).
 * Only when no job that uses them is pending: after signpool_free, or for
 * a configuration that never served a message.
 */
void signpool_keys_free(struct coex_config *cfg);

/*
 * signpool_find - the keys of route for the signing domain domain[0..len)
 * (ASCII case ignored), or NULL; borrowed from the route (its worker
 * slots change, hence not const)
 */
struct signpool_domain *signpool_find(const struct cfg_route *route, const char *domain,
                                      size_t len);

/*
 * signpool_new - start workers threads (1..CFG_MAX_DKIM_WORKERS) whose
 * results come back on base (borrowed). Caller owns the pool. NULL + err.
 */
struct signpool *signpool_new(struct event_base *base, int workers, char *err, size_t errlen);
/*
 * signpool_free - stop and join the workers; jobs not yet reported get
 * done(arg, NULL) here. NULL does nothing.
 */
void signpool_free(struct signpool *pool);

/*
 * signpool_body_canons - the body canonicalisations route's messages are
 * hashed with (bit 1 << enum dkim_canon): its DKIM keys' and relaxed for
 * ARC; 0 when it neither signs nor seals
 */
unsigned signpool_body_canons(const struct cfg_route *route);

/* signpool_route_has_pool - 1 when route has keys or verifies, and a pool to run on */
int signpool_route_has_pool(const struct cfg_route *route);

/*
 * signpool_submit - run req (copied; what it points to borrowed until done
 * runs) on the pool of route. done(arg, res) runs later on the event loop,
 * never from inside this call. -1 when the route has no pool.
 */
int signpool_submit(const struct cfg_route *route, const struct signpool_req *req,
                    signpool_done_fn *done, void *arg);

#endif
