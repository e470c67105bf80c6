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
 * The body hash is computed by the worker over the complete body, once: smtpd
 * buffers the whole message anyway, so streaming it through the hasher
 * while DATA arrives would not save memory, and hashing on the worker keeps
 * that CPU off the loop too.
 *
 * Does not: read DNS, verify signatures, or touch sessions or the spool.
 */
#ifndef COEX_SIGNPOOL_H
#define COEX_SIGNPOOL_H

#include <stddef.h>

#include "buf.h"
#include "cfg.h"

struct event_base;
struct signpool;        /* the worker threads */
struct signpool_domain; /* one route's keys for one signing domain */

/* the outcome of one job, borrowed by the callback */
struct signpool_result {
    int ok;            /* 1: fields holds the signatures */
    struct buf fields; /* DKIM-Signature fields, CRLF-terminated, to put on top */
    char info[256];    /* "d=D s=S a=A[, s=S a=A]" for the log */
    char err[160];     /* why not, when ok is 0 */
};

/*
 * signpool_done_fn - runs on the event loop when the job is done; res is
 * NULL when the pool was freed before the job ran (shutdown): the caller
 * only releases what it holds
 */
typedef void signpool_done_fn(void *arg, const struct signpool_result *res);

/*
 * signpool_keys_load - read and check the key file of every dkim_key line of
 * every route of cfg (RSA of 2048 bits or more, or Ed25519) and set
 * route->dkim; pool (borrowed, may be NULL: coexd -t) is where those
 * routes' messages will be signed. -1 with "FILE:LINE: reason" in err;
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
 * signpool_submit - sign msg[0..len) (borrowed until done runs: the whole
 * message, CRLF line ends) with the keys of dom at time now. done(arg, res)
 * runs later on the event loop, never from inside this call. -1 when dom's
 * route has no pool.
 */
int signpool_submit(struct signpool_domain *dom, const char *msg, size_t len, long long now,
                    signpool_done_fn *done, void *arg);

#endif
