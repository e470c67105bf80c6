/*
 * smtpc_mx - MX lookup for mx: next hops (RFC 5321 §5.1, RFC 7505 null MX).
 *
 * libevent 2.1's evdns resolves A, AAAA and PTR only, so the MX query runs
 * the system resolver (res_nquery: search list, retries, TCP on truncation)
 * on a short-lived thread, one per lookup, and hands the answer back to the
 * loop with event_active (evthread_use_pthreads is required, as for spool).
 * A lookup that takes longer than SMTPC_MX_TIMEOUT is reported as a temporary
 * failure; its thread finishes on its own and frees what it holds.
 * The answer is parsed by smtpreply_mx_parse (pure, fuzzed) with dn_expand,
 * without libresolv's ns_* parser (which would add -lresolv to the link).
 *
 * Does not: cache answers, or look up the hosts' addresses (smtpc does that
 * through evdns).
 */
#include "smtpc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>

#include <event2/event.h>

#include "log.h"
#include "smtpreply.h"
#include "util.h"

#define SMTPC_MX_ANSWER_SIZE 8192

_Static_assert(SMTPC_MAX_MX <= SMTPREPLY_MX_MAX, "MX hosts kept");

struct smtpc_mx {
    pthread_mutex_t lock;
    int finished;  /* the thread is done and the event is active */
    int cancelled; /* the loop gave up: the thread frees everything */
    struct event *ev;
    char *domain;
    smtpc_mx_fn *done;
    void *arg;
    int status;
    char *hosts[SMTPC_MAX_MX];
    size_t host_count;
};

/* smtpc_mx_destroy - free the lookup (its event is already gone) */
static void smtpc_mx_destroy(struct smtpc_mx *mx)
{
    for (size_t i = 0; i < mx->host_count; i++)
        free(mx->hosts[i]);
    free(mx->domain);
    pthread_mutex_destroy(&mx->lock);
    free(mx);
}

/* smtpc_mx_thread - the blocking query */
static void *smtpc_mx_thread(void *arg)
{
    struct smtpc_mx *mx = arg;
    struct __res_state res;
    unsigned char *answer = xmalloc(SMTPC_MX_ANSWER_SIZE);
    memset(&res, 0, sizeof(res));
    mx->status = -1;
    if (res_ninit(&res) == 0) {
        int len = res_nquery(&res, mx->domain, ns_c_in, ns_t_mx, answer, SMTPC_MX_ANSWER_SIZE);
        if (len >= 0) {
            unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)mx;
            mx->status = smtpreply_mx_parse(
                answer, (size_t)(len < SMTPC_MX_ANSWER_SIZE ? len : SMTPC_MX_ANSWER_SIZE), seed,
                mx->hosts, SMTPC_MAX_MX, &mx->host_count);
            if (mx->status == 0 && mx->host_count == 0)
                mx->hosts[mx->host_count++] = xstrdup(mx->domain); /* implicit MX */
        } else if (res.res_h_errno == NO_DATA) {
            mx->hosts[mx->host_count++] = xstrdup(mx->domain);
            mx->status = 0;
        } else if (res.res_h_errno == HOST_NOT_FOUND) {
            mx->status = 1;
        }
        res_nclose(&res);
    }
    free(answer);
    pthread_mutex_lock(&mx->lock);
    int cancelled = mx->cancelled;
    if (!cancelled) {
        mx->finished = 1;
        event_active(mx->ev, EV_READ, 1);
    }
    pthread_mutex_unlock(&mx->lock);
    if (cancelled)
        smtpc_mx_destroy(mx);
    return NULL;
}

/* smtpc_mx_ready - back on the loop (or out of time): report and free */
static void smtpc_mx_ready(evutil_socket_t fd, short what, void *arg)
{
    struct smtpc_mx *mx = arg;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&mx->lock);
    int finished = mx->finished;
    if (!finished) /* timed out: the thread frees the lookup when it returns */
        mx->cancelled = 1;
    event_free(mx->ev);
    mx->ev = NULL;
    pthread_mutex_unlock(&mx->lock);
    if (!finished) {
        mx->done(mx->arg, -1, NULL, 0);
        return;
    }
    mx->done(mx->arg, mx->status, mx->hosts, mx->host_count);
    smtpc_mx_destroy(mx);
}

/* smtpc_mx_lookup - start a lookup thread */
struct smtpc_mx *smtpc_mx_lookup(struct event_base *base, const char *domain, smtpc_mx_fn *done,
                                 void *arg)
{
    pthread_t tid;
    pthread_attr_t attr;
    struct smtpc_mx *mx = xcalloc(1, sizeof(*mx));
    pthread_mutex_init(&mx->lock, NULL);
    mx->domain = xstrdup(domain);
    mx->done = done;
    mx->arg = arg;
    mx->ev = event_new(base, -1, 0, smtpc_mx_ready, mx);
    struct timeval limit = {SMTPC_MX_TIMEOUT, 0};
    if (mx->ev == NULL)
        goto fail;
    event_add(mx->ev, &limit); /* keeps the loop running, and bounds a slow resolver */
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&tid, &attr, smtpc_mx_thread, mx);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_error("MX lookup for %s: cannot start a thread", domain);
        event_free(mx->ev);
        goto fail;
    }
    return mx;
fail:
    smtpc_mx_destroy(mx);
    return NULL;
}

/* smtpc_mx_cancel - forget a lookup; whoever is last frees it */
void smtpc_mx_cancel(struct smtpc_mx *mx)
{
    if (mx == NULL)
        return;
    pthread_mutex_lock(&mx->lock);
    int finished = mx->finished;
    mx->cancelled = 1;
    event_free(mx->ev); /* also when active: the thread no longer touches it */
    mx->ev = NULL;
    pthread_mutex_unlock(&mx->lock);
    if (finished)
        smtpc_mx_destroy(mx);
}
