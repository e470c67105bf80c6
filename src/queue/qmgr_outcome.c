/*
 * qmgr_outcome - what one delivery attempt means for each recipient:
 * 2xx delivered, 5xx (or any failure once the queue lifetime is over)
 * failed, anything else deferred with the route's retry schedule (attempt k
 * waits retry[min(k, n-1)] seconds; the count lives in memory, so a restart
 * begins the schedule again). Every final outcome is written with spool_mark.
 *
 * Failed recipients get one bounce per attempt (RFC 3464, built by dsn) to
 * the envelope sender, through the message's own route: not for the null
 * sender, not for a bounce, not for NOTIFY=NEVER or a NOTIFY list without
 * FAILURE (RFC 3461 §4.1). Those recipients are marked failed only once the
 * bounce is durable in the spool; if it cannot be queued they stay pending
 * and are tried (and bounced) again, so a bounce is never silently lost.
 *
 * Log lines, one per recipient and event, in the form qmgr.h documents.
 *
 * Does not: talk SMTP or decide when to try (qmgr.c).
 */
#include "qmgr_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "dsn.h"
#include "log.h"
#include "util.h"

/* used when the route vanished before the outcome */
#define QMGR_DEFAULT_LIFETIME (5L * 86400)
#define QMGR_DEFAULT_RETRY 300

struct qmgr_bounce {
    struct qmgr *q; /* NULL once the manager is gone */
    struct qmgr_msg *qm;
    size_t *idx; /* the recipients the bounce reports */
    size_t count;
    struct spool_msg *bm; /* the bounce's envelope */
    struct qmgr_bounce *next, *prev;
};

/*
 * qmgr_delay - seconds since arrival. arrival is whole seconds; the queue ID
 * holds the arrival in microseconds (spool_new_id), so use it when it agrees.
 */
static double qmgr_delay(const struct spool_msg *m)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    double now = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    double arrival = (double)(m->id >> 8) / 1e6;
    if (arrival < (double)m->arrival || arrival >= (double)m->arrival + 1.0)
        arrival = (double)m->arrival;
    return now > arrival ? now - arrival : 0.0;
}

/* qmgr_date - RFC 5322 date-time */
static void qmgr_date(time_t t, char *out, size_t outsize)
{
    struct tm tm;
    localtime_r(&t, &tm);
    if (strftime(out, outsize, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        snprintf(out, outsize, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* qmgr_mark - a final state, in the spool and in memory */
static void qmgr_mark(struct qmgr_msg *qm, size_t i, enum spool_rcpt_state state)
{
    if (spool_mark(qm->q->spool, qm->m->id, i, state) < 0)
        log_error("%s: cannot record the outcome for <%s> in the spool", qm->id,
                  qm->m->rcpts[i].addr);
    qm->m->rcpts[i].state = state;
}

static void qmgr_bounce_free(struct qmgr_bounce *b)
{
    if (b->q) {
        if (b->prev)
            b->prev->next = b->next;
        else
            b->q->bounces = b->next;
        if (b->next)
            b->next->prev = b->prev;
    }
    spool_msg_free(b->bm);
    free(b->idx);
    free(b);
}

/* qmgr_retry_pending - pending recipients not held by a bounce: schedule them */
static void qmgr_retry_pending(struct qmgr_msg *qm)
{
    const struct cfg_route *route = cfg_find_route(qm->q->cfg, qm->m->route);
    for (size_t i = 0; i < qm->m->rcpt_count; i++) {
        if (qm->m->rcpts[i].state != SPOOL_RCPT_PENDING || qm->busy[i])
            continue;
        long delay = QMGR_DEFAULT_RETRY;
        if (route && route->retry_count > 0) {
            size_t k = qm->tries > 0 ? qm->tries - 1 : 0;
            delay = route->retry[k < route->retry_count ? k : route->retry_count - 1];
        }
        qmgr_msg_schedule(qm, delay);
        return;
    }
    qm->state = QMGR_MSG_IDLE;
}

/* qmgr_bounce_committed - the bounce is durable (or not): mark, deliver it, maybe remove */
static void qmgr_bounce_committed(void *arg, int ok)
{
    struct qmgr_bounce *b = arg;
    struct qmgr *q = b->q;
    if (q == NULL) { /* the manager is gone; the recipients stay pending in the spool */
        qmgr_bounce_free(b);
        return;
    }
    struct qmgr_msg *qm = b->qm;
    char bid[SPOOL_ID_SIZE];
    spool_format_id(b->bm->id, bid);
    for (size_t k = 0; k < b->count; k++) {
        qm->busy[b->idx[k]] = 0;
        if (ok)
            qmgr_mark(qm, b->idx[k], SPOOL_RCPT_FAILED);
    }
    qm->bounces_in_flight--;
    if (ok) {
        log_info("%s: sender non-delivery notification: %s", qm->id, bid);
        qmgr_add(q, b->bm);
    } else {
        log_error("%s: the non-delivery notification could not be written; "
                  "its recipients stay queued",
                  qm->id);
    }
    qmgr_bounce_free(b);
    if (qm->state == QMGR_MSG_IDLE) {
        qmgr_retry_pending(qm);
        qmgr_msg_finish(qm);
    }
}

/* qmgr_bounce_rcpt_due - does this recipient want a failure notice? (RFC 3461 §4.1) */
static int qmgr_bounce_rcpt_due(const struct spool_rcpt *r)
{
    if (r->notify == 0)
        return 1;
    return !(r->notify & SPOOL_NOTIFY_NEVER) && (r->notify & SPOOL_NOTIFY_FAILURE);
}

/* qmgr_bounce_queue - build the notice and submit it; 0, or -1 */
static int qmgr_bounce_queue(struct qmgr_msg *qm, struct qmgr_bounce *b, struct dsn_rcpt *rcpts)
{
    struct qmgr *q = qm->q;
    time_t now = time(NULL);
    char date[64], arrival[64], message_id[256];
    struct buf out;
    int rc = -1;
    qmgr_date(now, date, sizeof(date));
    qmgr_date(qm->m->arrival, arrival, sizeof(arrival));
    snprintf(message_id, sizeof(message_id), "%s.%lld.%lu@%s", qm->id, (long long)now,
             ++q->bounce_seq, q->cfg->hostname);
    struct dsn_info info = {.reporting_mta = q->cfg->hostname,
                            .queue_id = qm->id,
                            .message_id = message_id,
                            .date = date,
                            .arrival_date = arrival,
                            .sender = qm->m->mail_from,
                            .envid = qm->m->envid,
                            .rcpts = rcpts,
                            .rcpt_count = b->count,
                            .ret_full = qm->m->ret_full,
                            .msg = qm->data.data,
                            .msg_len = qm->data.len};
    buf_init(&out, qm->data.len + DSN_OVERHEAD_LIMIT);
    if (dsn_build(&out, &info) < 0) {
        log_error("%s: cannot build the non-delivery notification", qm->id);
        goto fail;
    }
    struct spool_msg *bm = xcalloc(1, sizeof(*bm));
    bm->arrival = now;
    bm->route = xstrdup(qm->m->route);
    bm->mail_from = xstrdup("");
    bm->is_bounce = 1;
    bm->ret_full = -1; /* no RET for a bounce */
    bm->rcpt_count = 1;
    bm->rcpts = xcalloc(1, sizeof(*bm->rcpts));
    bm->rcpts[0].addr = xstrdup(qm->m->mail_from);
    b->bm = bm;
    if (spool_submit(q->spool, bm, out.data, out.len, qmgr_bounce_committed, b) < 0) {
        log_error("%s: the spool refused the non-delivery notification", qm->id);
        goto fail;
    }
    rc = 0;
fail:
    buf_cleanup(&out);
    return rc;
}

/* qmgr_bounce - the failed recipients of one attempt: notice, or marked failed at once */
static void qmgr_bounce(struct qmgr_msg *qm, const size_t *failed, const struct smtpc_reply *why,
                        size_t count, const char *relay)
{
    struct qmgr *q = qm->q;
    struct spool_msg *m = qm->m;
    int sender_wants = m->mail_from[0] != '\0' && !m->is_bounce;
    struct qmgr_bounce *b = xcalloc(1, sizeof(*b));
    struct dsn_rcpt *rcpts = xcalloc(count, sizeof(*rcpts));
    char remote[SMTPC_RELAY_SIZE];
    snprintf(remote, sizeof(remote), "%.*s", (int)strcspn(relay, "["), relay);
    b->idx = xcalloc(count, sizeof(*b->idx));
    for (size_t k = 0; k < count; k++) {
        size_t i = failed[k];
        if (!sender_wants || !qmgr_bounce_rcpt_due(&m->rcpts[i])) {
            qmgr_mark(qm, i, SPOOL_RCPT_FAILED);
            continue;
        }
        rcpts[b->count] = (struct dsn_rcpt){.addr = m->rcpts[i].addr,
                                            .orcpt = m->rcpts[i].orcpt,
                                            .status = why[k].status,
                                            .remote_mta = why[k].code ? remote : NULL,
                                            .diagnostic = why[k].text};
        b->idx[b->count++] = i;
    }
    if (b->count == 0 || qmgr_bounce_queue(qm, b, rcpts) < 0) {
        qmgr_bounce_free(b); /* recipients left pending, if any: tried again */
        free(rcpts);
        return;
    }
    free(rcpts);
    b->q = q;
    b->qm = qm;
    b->next = q->bounces;
    if (q->bounces)
        q->bounces->prev = b;
    q->bounces = b;
    for (size_t k = 0; k < b->count; k++)
        qm->busy[b->idx[k]] = 1;
    qm->bounces_in_flight++;
}

/* qmgr_outcome - the replies of one attempt (replies[j] for recipient idx[j]) */
void qmgr_outcome(struct qmgr_msg *qm, const char *relay, const struct smtpc_reply *replies)
{
    struct qmgr *q = qm->q;
    struct spool_msg *m = qm->m;
    const struct cfg_route *route = cfg_find_route(q->cfg, m->route);
    long lifetime = route ? route->queue_lifetime : QMGR_DEFAULT_LIFETIME;
    int expired = time(NULL) - m->arrival > lifetime;
    double delay = qmgr_delay(m);
    size_t *failed = xcalloc(qm->attempt_count + 1, sizeof(*failed));
    struct smtpc_reply *why = xcalloc(qm->attempt_count + 1, sizeof(*why));
    size_t failed_count = 0, deferred = 0;
    qm->tries++;
    for (size_t j = 0; j < qm->attempt_count; j++) {
        size_t i = qm->idx[j];
        const struct smtpc_reply *r = &replies[j];
        const char *to = m->rcpts[i].addr;
        if (r->code / 100 == 2) {
            qmgr_mark(qm, i, SPOOL_RCPT_DELIVERED);
            q->stats.delivered++;
            log_info("%s: to=<%s>, relay=%s, delay=%.1f, tries=%u, status=sent (%s)", qm->id, to,
                     relay, delay, qm->tries, r->text);
        } else if (smtpc_reply_permanent(r) || expired) {
            why[failed_count] = *r;
            if (!smtpc_reply_permanent(r))
                snprintf(why[failed_count].text, sizeof(why[failed_count].text),
                         "message expired after %ld seconds in the queue: %.900s", lifetime,
                         r->text);
            failed[failed_count++] = i;
            q->stats.bounced++;
            log_info("%s: to=<%s>, relay=%s, status=bounced (%s)", qm->id, to, relay,
                     why[failed_count - 1].text);
        } else {
            deferred++;
            log_info("%s: to=<%s>, relay=%s, delay=%.1f, status=deferred (%s)", qm->id, to, relay,
                     delay, r->text);
        }
    }
    if (deferred)
        q->stats.deferred++;
    if (failed_count)
        qmgr_bounce(qm, failed, why, failed_count, relay);
    free(failed);
    free(why);
    qmgr_retry_pending(qm);
    qmgr_msg_finish(qm);
}

/* qmgr_outcome_all - the same reply for every recipient of the attempt */
void qmgr_outcome_all(struct qmgr_msg *qm, const char *relay, const struct smtpc_reply *reply)
{
    struct smtpc_reply *replies = xcalloc(qm->attempt_count + 1, sizeof(*replies));
    for (size_t j = 0; j < qm->attempt_count; j++)
        replies[j] = *reply;
    qmgr_outcome(qm, relay, replies);
    free(replies);
}

/* qmgr_bounces_orphan - the manager is going: pending commits only free themselves */
void qmgr_bounces_orphan(struct qmgr *q)
{
    for (struct qmgr_bounce *b = q->bounces, *next; b; b = next) {
        next = b->next;
        b->q = NULL;
        b->qm = NULL;
        b->next = b->prev = NULL;
    }
    q->bounces = NULL;
}
