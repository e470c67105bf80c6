/*
 * smtpc_mx - MX lookup for mx: next hops (RFC 5321 §5.1, RFC 7505 null MX).
 *
 * libevent 2.1's evdns resolves A, AAAA and PTR only, so the MX query runs
 * the system resolver (res_nquery: search list, retries, TCP on truncation)
 * on a short-lived thread, one per lookup, and hands the answer back to the
 * loop with event_active (evthread_use_pthreads is required, as for spool).
 * A lookup that takes longer than SMTPC_MX_TIMEOUT is reported as a temporary
 * failure; its thread finishes on its own and frees what it holds.
 * The answer is parsed here with dn_expand, without libresolv's ns_* parser
 * (which would add -lresolv to the link).
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
#include "util.h"

#define SMTPC_MX_ANSWER_SIZE 8192

struct smtpc_mx_host {
    unsigned pref;
    unsigned tiebreak;
    char *name;
};

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

static int smtpc_mx_cmp(const void *a, const void *b)
{
    const struct smtpc_mx_host *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->tiebreak < y->tiebreak ? -1 : x->tiebreak > y->tiebreak;
}

/* smtpc_mx_get16 - network-order 16 bits */
static unsigned smtpc_mx_get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/*
 * smtpc_mx_parse - MX records of the answer into mx->hosts, best first;
 * 0, 1 for a null MX, -1 for a malformed answer
 */
static int smtpc_mx_parse(struct smtpc_mx *mx, const unsigned char *ans, int len)
{
    struct smtpc_mx_host found[SMTPC_MAX_MX];
    size_t count = 0;
    char name[NS_MAXDNAME];
    const unsigned char *end = ans + len, *p = ans + NS_HFIXEDSZ;
    if (len < NS_HFIXEDSZ)
        return -1;
    unsigned qd = smtpc_mx_get16(ans + 4), an = smtpc_mx_get16(ans + 6);
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)mx;
    for (unsigned i = 0; i < qd; i++) {
        int n = dn_expand(ans, end, p, name, sizeof(name));
        if (n < 0 || p + n + 4 > end)
            return -1;
        p += n + 4;
    }
    for (unsigned i = 0; i < an; i++) {
        int n = dn_expand(ans, end, p, name, sizeof(name));
        if (n < 0 || p + n + 10 > end)
            return -1;
        p += n;
        unsigned type = smtpc_mx_get16(p), rdlen = smtpc_mx_get16(p + 8);
        p += 10;
        if (p + rdlen > end)
            return -1;
        if (type == ns_t_mx && rdlen >= 3 && count < SMTPC_MAX_MX) {
            if (dn_expand(ans, end, p + 2, name, sizeof(name)) < 0)
                return -1;
            seed = seed * 1103515245u + 12345u;
            found[count].pref = smtpc_mx_get16(p);
            found[count].tiebreak = seed >> 8;
            found[count].name = xstrdup(name);
            count++;
        }
        p += rdlen;
    }
    qsort(found, count, sizeof(found[0]), smtpc_mx_cmp);
    int null_mx = count == 1 && found[0].name[0] == '\0';
    for (size_t i = 0; i < count; i++) {
        if (found[i].name[0] == '\0' || null_mx) {
            free(found[i].name);
            continue;
        }
        mx->hosts[mx->host_count++] = found[i].name;
    }
    return null_mx ? 1 : 0;
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
            mx->status =
                smtpc_mx_parse(mx, answer, len < SMTPC_MX_ANSWER_SIZE ? len : SMTPC_MX_ANSWER_SIZE);
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
