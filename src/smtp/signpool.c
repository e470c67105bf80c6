/*
 * signpool - DKIM keys per route and the signing worker pool of coexd
 * (RFC 6376 §5 signer actions, after the rewrite; see signpool.h and
 * docs/dkim.md "In coexd").
 *
 * Threads: the event loop thread submits jobs and runs the callbacks; a
 * worker only reads the job's message and its domain's keys, and writes its
 * own slot of the domain's signers (signers[worker index]) and the job's
 * result. Keys and signers live until signpool_keys_free, which coexd calls
 * after signpool_free has joined the workers.
 */
#include "signpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "arc.h"
#include "dkim.h"
#include "hdr.h"
#include "keyfetch.h"
#include "util.h"

#define LIMIT_DKIM_KEY_FILE (64 * 1024) /* a PEM key of RSA-8192 is about 6 KiB */
#define LIMIT_VERIFY_SIGNATURES 16     /* DKIM-Signature fields checked per message */
#define SIGNPOOL_COMMENT_ROOM 512      /* kept in the results text for the two comments */

struct signpool_domain {
    struct signpool_route *route;
    char *name; /* the signing domain, lower case */
    struct dkim_key *keys[LIMIT_DKIM_KEYS];
    size_t key_count;
    struct dkim_opts opts;
    char info[256]; /* "d=D s=S a=A, s=S a=A" */
    /* one signer per worker (dkim.h: a signer is used by one thread at a time) */
    struct dkim_signer *signers[CFG_MAX_DKIM_WORKERS];
};

struct signpool_route {
    struct signpool *pool; /* borrowed; NULL until attached */
    struct signpool_domain *domains;
    size_t domain_count;
    int verify;               /* dkim_verify */
    struct dkim_key *arc_key; /* NULL: the route does not seal */
    char *authserv_id;        /* for ARC-Authentication-Results */
    /* one sealer per worker, like the signers */
    struct arc_sealer *sealers[CFG_MAX_DKIM_WORKERS];
};

struct signpool_job {
    struct signpool_job *next;
    struct signpool_route *route;
    struct signpool_req req; /* facts points into the job */
    char facts[300];
    signpool_done_fn *done;
    void *arg;
    struct signpool_result res;
};

_Static_assert(sizeof(((struct signpool_job *)0)->facts) < SIGNPOOL_COMMENT_ROOM - 64,
               "the facts comment fits in the room kept for it");

struct signpool_worker {
    struct signpool *pool;
    int index;
    pthread_t thread;
    struct dkim_body *body[2]; /* by enum dkim_canon, made on first use */
};

struct signpool {
    struct event *done_ev; /* made active by workers; runs signpool_done_cb on the loop */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct signpool_job *queue_head, *queue_tail; /* waiting for a worker */
    struct signpool_job *done_head, *done_tail;   /* waiting for the loop */
    int stopping;
    struct signpool_worker workers[CFG_MAX_DKIM_WORKERS];
    int worker_count;
};

/* signpool_read_file - the whole key file into out (caller cleans up) */
static int signpool_read_file(const char *path, struct buf *out, char *err, size_t errlen)
{
    char chunk[4096];
    size_t n;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (buf_append(out, chunk, n) < 0) {
            snprintf(err, errlen, "%s: larger than %d bytes: not a key", path, LIMIT_DKIM_KEY_FILE);
            fclose(fp);
            return -1;
        }
    int failed = ferror(fp);
    fclose(fp);
    if (failed) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    return 0;
}

/* signpool_domain_of - the route's entry for domain, made when missing */
static struct signpool_domain *signpool_domain_of(struct signpool_route *sr,
                                                  const struct cfg_route *r, const char *domain)
{
    for (size_t i = 0; i < sr->domain_count; i++)
        if (strcmp(sr->domains[i].name, domain) == 0)
            return &sr->domains[i];
    struct signpool_domain *d = &sr->domains[sr->domain_count++];
    memset(d, 0, sizeof(*d));
    d->route = sr;
    d->name = xstrdup(domain);
    d->opts.header_canon =
        r->dkim_header_canon == CFG_CANON_SIMPLE ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    d->opts.body_canon =
        r->dkim_body_canon == CFG_CANON_SIMPLE ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    d->opts.expire_after = r->dkim_expire;
    return d;
}

/* signpool_route_load - the keys of one route; -1 with "FILE:LINE: reason" */
static int signpool_route_load(const struct coex_config *cfg, struct cfg_route *r,
                               struct signpool *pool, char *err, size_t errlen)
{
    char why[300];
    unsigned long line = 0;
    struct buf pem;
    struct signpool_route *sr = xcalloc(1, sizeof(*sr));
    sr->pool = pool;
    sr->domains = xcalloc(r->dkim_key_count, sizeof(*sr->domains)); /* at most one per line */
    sr->verify = r->dkim_verify;
    sr->authserv_id = xstrdup(cfg->authserv_id ? cfg->authserv_id : cfg->hostname);
    r->dkim = sr;
    buf_init(&pem, LIMIT_DKIM_KEY_FILE);
    if (r->arc_key.domain) {
        const struct cfg_dkim_key *k = &r->arc_key;
        char kerr[200];
        line = k->line;
        if (!arc_authserv_id_ok(sr->authserv_id)) {
            snprintf(why, sizeof(why),
                     "authserv_id '%.80s' must be one token of letters, digits, '.', '-', '_' "
                     "(the hostname when authserv_id is not set)",
                     sr->authserv_id);
            goto fail_arc;
        }
        if (signpool_read_file(k->file, &pem, why, sizeof(why)) < 0)
            goto fail_arc;
        sr->arc_key = dkim_key_new(pem.data, pem.len, k->domain, k->selector, kerr, sizeof(kerr));
        if (sr->arc_key == NULL) {
            snprintf(why, sizeof(why), "%s: %s", k->file, kerr);
            goto fail_arc;
        }
    }
    for (size_t i = 0; i < r->dkim_key_count; i++) {
        const struct cfg_dkim_key *k = &r->dkim_keys[i];
        struct signpool_domain *d = signpool_domain_of(sr, r, k->domain);
        line = k->line;
        buf_reset(&pem);
        if (d->key_count == LIMIT_DKIM_KEYS) {
            snprintf(why, sizeof(why), "more than %d keys for %s", LIMIT_DKIM_KEYS, k->domain);
            goto fail;
        }
        if (signpool_read_file(k->file, &pem, why, sizeof(why)) < 0)
            goto fail;
        char kerr[200];
        struct dkim_key *key =
            dkim_key_new(pem.data, pem.len, k->domain, k->selector, kerr, sizeof(kerr));
        if (key == NULL) {
            snprintf(why, sizeof(why), "%s: %s", k->file, kerr);
            goto fail;
        }
        d->keys[d->key_count++] = key;
        size_t used = strlen(d->info);
        const char *alg =
            dkim_key_alg(key) == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
        if (used)
            snprintf(d->info + used, sizeof(d->info) - used, ", s=%s a=%s", k->selector, alg);
        else
            snprintf(d->info, sizeof(d->info), "d=%s s=%s a=%s", k->domain, k->selector, alg);
    }
    buf_cleanup(&pem);
    return 0;
fail:
    buf_cleanup(&pem);
    snprintf(err, errlen, "%s:%lu: dkim_key: %s", cfg->source, line, why);
    return -1;
fail_arc:
    buf_cleanup(&pem);
    snprintf(err, errlen, "%s:%lu: arc_key: %s", cfg->source, line, why);
    return -1;
}

/* signpool_keys_load - every route with dkim_key lines */
int signpool_keys_load(struct coex_config *cfg, struct signpool *pool, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->route_count; i++) {
        struct cfg_route *r = &cfg->routes[i];
        if (r->dkim_key_count == 0 && r->arc_key.domain == NULL && !r->dkim_verify)
            continue;
        if (signpool_route_load(cfg, r, pool, err, errlen) < 0)
            goto fail;
    }
    return 0;
fail:
    signpool_keys_free(cfg);
    return -1;
}

void signpool_keys_attach(struct coex_config *cfg, struct signpool *pool)
{
    for (size_t i = 0; i < cfg->route_count; i++)
        if (cfg->routes[i].dkim)
            cfg->routes[i].dkim->pool = pool;
}

/* signpool_keys_free - keys, signers, entries */
void signpool_keys_free(struct coex_config *cfg)
{
    for (size_t i = 0; i < cfg->route_count; i++) {
        struct signpool_route *sr = cfg->routes[i].dkim;
        if (sr == NULL)
            continue;
        for (size_t k = 0; k < sr->domain_count; k++) {
            struct signpool_domain *d = &sr->domains[k];
            for (size_t w = 0; w < CFG_MAX_DKIM_WORKERS; w++)
                dkim_signer_free(d->signers[w]);
            for (size_t n = 0; n < d->key_count; n++)
                dkim_key_free(d->keys[n]);
            free(d->name);
        }
        for (size_t w = 0; w < CFG_MAX_DKIM_WORKERS; w++)
            arc_sealer_free(sr->sealers[w]);
        dkim_key_free(sr->arc_key);
        free(sr->authserv_id);
        free(sr->domains);
        free(sr);
        cfg->routes[i].dkim = NULL;
    }
}

/* signpool_find - linear: a route signs for a handful of domains */
struct signpool_domain *signpool_find(const struct cfg_route *route, const char *domain, size_t len)
{
    const struct signpool_route *sr = route->dkim;
    for (size_t i = 0; sr && i < sr->domain_count; i++)
        if (strlen(sr->domains[i].name) == len &&
            strncasecmp(sr->domains[i].name, domain, len) == 0)
            return &sr->domains[i];
    return NULL;
}

/*
 * signpool_body_hash - the body hash of q's message with canon: the one made
 * while the body streamed in, else hashed here on worker w
 */
static int signpool_body_hash(struct signpool_worker *w, enum dkim_canon canon,
                              const struct signpool_req *q, struct dkim_body_hash *out)
{
    const char *msg = q->msg;
    size_t len = q->len, header_end, body_off;
    if (q->body_mask & (1u << canon)) {
        *out = q->body[canon];
        return 0;
    }
    if (w->body[canon] == NULL)
        w->body[canon] = dkim_body_new(canon);
    hdr_split(msg, len, &header_end, &body_off);
    dkim_body_update(w->body[canon], msg + body_off, len - body_off);
    return dkim_body_final(w->body[canon], out);
}

/* signpool_count_signatures - the DKIM-Signature fields of msg's header */
static size_t signpool_count_signatures(const char *msg, size_t len)
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t n = 0;
    hdr_iter_init(&it, msg, len);
    while (hdr_iter_next(&it, &f))
        n += hdr_name_is(msg, &f, "DKIM-Signature", 14);
    return n;
}

/*
 * signpool_verify - the DKIM signatures and the ARC chain of the message as
 * received, against the keys from DNS; the results text (RFC 8601 resinfo
 * list) into res->auth. A signature whose key was not found is permerror,
 * one whose lookup failed temporarily temperror (RFC 6376 §6.1.2), one not
 * looked up (too many) neutral. Only the first LIMIT_VERIFY_SIGNATURES are
 * verified; when the text would be too long, the last of those are left
 * out; a comment counts what is not listed; arc= always stays.
 */
static void signpool_verify(const struct signpool_req *q, struct arc_chain *chain,
                            struct signpool_result *res)
{
    struct dkim_result results[LIMIT_VERIFY_SIGNATURES];
    const char *status[LIMIT_VERIFY_SIGNATURES];
    size_t count = 0, nkeys = 0;
    struct dkim_pubkey *const *keys = keyfetch_keys(q->keys, &nkeys);
    struct buf text;
    buf_init(&text, LIMIT_ARC_RESULTS - SIGNPOOL_COMMENT_ROOM);
    /*
     * one body hash per canonicalisation for every signature and the AMS,
     * and none at all for those hashed while the body streamed in: coexd
     * does not change the body, so it is the same bytes
     */
    struct dkim_body_memo memo;
    size_t header_end, body_off;
    hdr_split(q->orig, q->orig_len, &header_end, &body_off);
    dkim_body_memo_init(&memo, q->orig + body_off, q->orig_len - body_off);
    for (int c = 0; c < 2; c++)
        if (q->body_mask & (1u << c))
            dkim_body_memo_seed(&memo, &q->body[c]);
    if (dkim_verify_memo(q->orig, q->orig_len, keys, nkeys, q->now, &memo, results,
                         LIMIT_VERIFY_SIGNATURES, &count) < 0)
        count = 0;
    for (size_t i = 0; i < count; i++) {
        status[i] = NULL;
        if (results[i].status != DKIM_NEUTRAL)
            continue;
        const char *why = NULL;
        enum keyfetch_status ks =
            keyfetch_status(q->keys, results[i].domain, results[i].selector, &why);
        status[i] = ks == KEYFETCH_TEMPFAIL  ? "temperror"
                    : ks == KEYFETCH_SKIPPED ? "neutral"
                                             : "permerror";
        if (why && *why)
            snprintf(results[i].reason, sizeof(results[i].reason), "%s", why);
    }
    /* passes first, so that a text cut short still names them (the order means nothing) */
    for (size_t i = 0, next = 0; i < count; i++)
        if (results[i].status == DKIM_PASS) {
            struct dkim_result r = results[i];
            memmove(&results[next + 1], &results[next], (i - next) * sizeof(results[0]));
            memmove(&status[next + 1], &status[next], (i - next) * sizeof(status[0]));
            results[next] = r;
            status[next++] = NULL;
        }
    if (arc_chain_validate_memo(q->orig, q->orig_len, keys, nkeys, q->now, &memo, chain) < 0) {
        memset(chain, 0, sizeof(*chain));
        chain->cv = ARC_CV_FAIL;
        snprintf(chain->reason, sizeof(chain->reason), "the chain cannot be read");
    }
    size_t shown = count;
    while (arc_results_text(results, shown, status, chain, &text) < 0 && shown > 0)
        shown--; /* out is left as it was: try with one signature fewer */
    text.limit = LIMIT_ARC_RESULTS; /* the room kept for the comments */
    size_t total = signpool_count_signatures(q->orig, q->orig_len);
    size_t unlisted = (count - shown) + (total > count ? total - count : 0);
    if (unlisted && buf_printf(&text, " (%zu more signature(s) not listed)", unlisted) < 0) {
        /* cannot happen: the room is kept */
    }
    if (q->facts && buf_printf(&text, " (%s)", q->facts) < 0) {
        /* cannot happen: facts are shorter than the room */
    }
    snprintf(res->auth, sizeof(res->auth), "%s", text.data ? text.data : "dkim=none");
    buf_cleanup(&text);
}

/* signpool_work - one job, on worker w: verify, sign, seal */
static void signpool_work(struct signpool_worker *w, struct signpool_job *job)
{
    struct signpool_route *sr = job->route;
    const struct signpool_req *q = &job->req;
    struct signpool_result *res = &job->res;
    struct signpool_domain *d = q->dom;
    struct arc_chain chain;
    struct dkim_body_hash relaxed, hash;
    struct buf dkim_fields, sealed_hdr;
    size_t header_end, body_off;
    int have_relaxed = 0;

    memset(&chain, 0, sizeof(chain));
    buf_init(&dkim_fields, (size_t)LIMIT_DKIM_FIELD * LIMIT_DKIM_KEYS);
    buf_init(&sealed_hdr, (size_t)LIMIT_DKIM_FIELD * LIMIT_DKIM_KEYS + LIMIT_DKIM_HEADER_BLOCK);
    if (q->orig && q->keys) {
        signpool_verify(q, &chain, res);
        if (sr->arc_key && chain.cv == ARC_CV_FAIL && keyfetch_arc_tempfail(q->keys)) {
            /* sealing cv=fail would end the chain for good (RFC 8617 §5.1.2): retry later */
            res->tempfail = 1;
            snprintf(res->err, sizeof(res->err), "a key of the arrived ARC chain: %.90s",
                     chain.reason);
            goto done;
        }
    }
    hdr_split(q->msg, q->len, &header_end, &body_off);
    if (d) {
        if (d->signers[w->index] == NULL) {
            d->signers[w->index] =
                dkim_signer_new(d->keys, d->key_count, &d->opts, res->err, sizeof(res->err));
            if (d->signers[w->index] == NULL)
                goto done;
        }
        struct dkim_signer *signer = d->signers[w->index];
        enum dkim_canon canon = dkim_signer_body_canon(signer);
        if (signpool_body_hash(w, canon, q, &hash) < 0) {
            snprintf(res->err, sizeof(res->err), "body hash failed");
            goto done;
        }
        if (canon == DKIM_CANON_RELAXED) {
            relaxed = hash;
            have_relaxed = 1;
        }
        if (dkim_sign_header(signer, q->msg, header_end, &hash, q->now, &dkim_fields, res->err,
                             sizeof(res->err)) < 0)
            goto done;
        snprintf(res->info, sizeof(res->info), "%s", d->info);
    }
    if (sr->arc_key && q->orig && q->keys) {
        char err[160];
        struct arc_sealer *sealer = sr->sealers[w->index];
        if (sealer == NULL)
            sealer = sr->sealers[w->index] = arc_sealer_new(sr->arc_key, NULL, err, sizeof(err));
        if (sealer == NULL)
            snprintf(res->arc, sizeof(res->arc), "not sealed: %s", err);
        else if (!chain.sealable)
            snprintf(res->arc, sizeof(res->arc), "not sealed: %s", chain.reason);
        else if (!have_relaxed &&
                 signpool_body_hash(w, DKIM_CANON_RELAXED, q, &relaxed) < 0)
            snprintf(res->arc, sizeof(res->arc), "not sealed: body hash failed");
        else if (buf_append(&sealed_hdr, dkim_fields.data, dkim_fields.len) < 0 ||
                 buf_append(&sealed_hdr, q->msg, header_end) < 0)
            snprintf(res->arc, sizeof(res->arc), "not sealed: header too large");
        else if (arc_seal(sealer, sealed_hdr.data, sealed_hdr.len, &relaxed, &chain,
                          sr->authserv_id, res->auth, q->now, &res->fields, err,
                          sizeof(err)) < 0) {
            buf_reset(&res->fields);
            snprintf(res->arc, sizeof(res->arc), "not sealed: %s", err);
        } else
            snprintf(res->arc, sizeof(res->arc), "sealed i=%d cv=%s d=%s s=%s",
                     chain.instance + 1, arc_cv_name(chain.cv), dkim_key_domain(sr->arc_key),
                     dkim_key_selector(sr->arc_key));
    }
    if (buf_append(&res->fields, dkim_fields.data, dkim_fields.len) < 0) {
        snprintf(res->err, sizeof(res->err), "signature fields too large");
        goto done;
    }
    res->ok = 1;
done:
    buf_cleanup(&dkim_fields);
    buf_cleanup(&sealed_hdr);
}

/* signpool_worker_main - take jobs until the pool stops */
static void *signpool_worker_main(void *arg)
{
    struct signpool_worker *w = arg;
    struct signpool *pool = w->pool;
    pthread_mutex_lock(&pool->lock);
    for (;;) {
        while (pool->queue_head == NULL && !pool->stopping)
            pthread_cond_wait(&pool->cond, &pool->lock);
        if (pool->stopping)
            break;
        struct signpool_job *job = pool->queue_head;
        pool->queue_head = job->next;
        if (pool->queue_head == NULL)
            pool->queue_tail = NULL;
        pthread_mutex_unlock(&pool->lock);

        signpool_work(w, job);

        pthread_mutex_lock(&pool->lock);
        job->next = NULL;
        if (pool->done_tail)
            pool->done_tail->next = job;
        else
            pool->done_head = job;
        pool->done_tail = job;
        event_active(pool->done_ev, EV_READ, 0); /* several activations run it once */
    }
    pthread_mutex_unlock(&pool->lock);
    return NULL;
}

/* signpool_job_free - release a job and its result */
static void signpool_job_free(struct signpool_job *job)
{
    buf_cleanup(&job->res.fields);
    free(job);
}

/* signpool_done_cb - on the loop: hand every finished job to its caller */
static void signpool_done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct signpool *pool = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&pool->lock);
    struct signpool_job *job = pool->done_head;
    pool->done_head = pool->done_tail = NULL;
    pthread_mutex_unlock(&pool->lock);
    while (job) {
        struct signpool_job *next = job->next;
        job->done(job->arg, &job->res);
        signpool_job_free(job);
        job = next;
    }
}

/* signpool_new - the threads wait for jobs */
struct signpool *signpool_new(struct event_base *base, int workers, char *err, size_t errlen)
{
    if (workers < 1 || workers > CFG_MAX_DKIM_WORKERS) {
        snprintf(err, errlen, "dkim_workers must be between 1 and %d", CFG_MAX_DKIM_WORKERS);
        return NULL;
    }
    struct signpool *pool = xcalloc(1, sizeof(*pool));
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->cond, NULL);
    pool->done_ev = event_new(base, -1, 0, signpool_done_cb, pool);
    if (pool->done_ev == NULL) {
        snprintf(err, errlen, "cannot make the DKIM signing event");
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        struct signpool_worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        int rc = pthread_create(&w->thread, NULL, signpool_worker_main, w);
        if (rc != 0) {
            snprintf(err, errlen, "cannot start a DKIM signing thread: %s", strerror(rc));
            goto fail;
        }
        pool->worker_count++;
    }
    return pool;
fail:
    signpool_free(pool);
    return NULL;
}

/* signpool_cancel - give back every job of a list unrun */
static void signpool_cancel(struct signpool_job *job)
{
    while (job) {
        struct signpool_job *next = job->next;
        job->done(job->arg, NULL);
        signpool_job_free(job);
        job = next;
    }
}

/* signpool_free - join, then cancel what is left */
void signpool_free(struct signpool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->worker_count; i++) {
        pthread_join(pool->workers[i].thread, NULL);
        dkim_body_free(pool->workers[i].body[DKIM_CANON_RELAXED]);
        dkim_body_free(pool->workers[i].body[DKIM_CANON_SIMPLE]);
    }
    signpool_cancel(pool->queue_head);
    signpool_cancel(pool->done_head);
    if (pool->done_ev)
        event_free(pool->done_ev);
    pthread_cond_destroy(&pool->cond);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}

unsigned signpool_body_canons(const struct cfg_route *route)
{
    const struct signpool_route *sr = route->dkim;
    unsigned mask = 0;
    if (sr == NULL || sr->pool == NULL)
        return 0;
    if (sr->domain_count)
        mask |= 1u << (route->dkim_body_canon == CFG_CANON_SIMPLE ? DKIM_CANON_SIMPLE
                                                                   : DKIM_CANON_RELAXED);
    if (sr->arc_key)
        mask |= 1u << DKIM_CANON_RELAXED;
    return mask;
}

int signpool_route_has_pool(const struct cfg_route *route)
{
    return route->dkim && route->dkim->pool;
}

/* signpool_submit - queue a job for the next free worker */
int signpool_submit(const struct cfg_route *route, const struct signpool_req *req,
                    signpool_done_fn *done, void *arg)
{
    struct signpool_route *sr = route->dkim;
    if (sr == NULL || sr->pool == NULL)
        return -1;
    struct signpool *pool = sr->pool;
    struct signpool_job *job = xcalloc(1, sizeof(*job));
    job->route = sr;
    job->req = *req;
    if (req->facts) {
        snprintf(job->facts, sizeof(job->facts), "%s", req->facts);
        job->req.facts = job->facts;
    }
    if (!sr->verify || req->keys == NULL) {
        job->req.orig = NULL;
        job->req.keys = NULL;
    }
    job->done = done;
    job->arg = arg;
    buf_init(&job->res.fields, (size_t)LIMIT_DKIM_FIELD * (LIMIT_DKIM_KEYS + 3));
    pthread_mutex_lock(&pool->lock);
    if (pool->queue_tail)
        pool->queue_tail->next = job;
    else
        pool->queue_head = job;
    pool->queue_tail = job;
    pthread_cond_signal(&pool->cond);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}
