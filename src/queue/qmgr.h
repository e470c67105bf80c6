/*
 * qmgr - the queue manager: decides when each queued message is delivered,
 * to which next hop, retries with backoff, and bounces. Only qmgr decides when
 * to deliver; only spool writes queue files.
 *
 * Per route: next hop file:DIR (atomic ID.eml files + ID.env envelope),
 * smtp:[host]:port (static) or mx:DOMAIN (MX lookup with the system resolver
 * on a thread, addresses through evdns; see smtpc.h); a concurrency limit per
 * next hop; the route's retry schedule (the last delay repeats) until the
 * queue lifetime (default 5 days) is over. A recipient is final on 2xx
 * (delivered) or on 5xx / lifetime exceeded (failed): then one DSN (RFC 3464)
 * goes to the envelope sender, unless the message is itself a bounce, the
 * sender is null, or NOTIFY says otherwise. Every outcome is written to the
 * spool with spool_mark before it is forgotten.
 *
 * Log lines (one per event, Postfix-like, for admins who grep):
 *   ID: to=<rcpt>, relay=host[ip]:port, delay=1.2, tries=1, status=sent (250 ...)
 *   ID: to=<rcpt>, relay=..., delay=..., status=deferred (451 ...)
 *   ID: to=<rcpt>, relay=..., status=bounced (550 ...)
 *   ID: sender non-delivery notification: BOUNCEID
 *   ID: removed
 * docs/delivery.md describes the whole path.
 */
#ifndef COEX_QMGR_H
#define COEX_QMGR_H

#include "cfg.h"
#include "spool.h"

struct event_base;
struct evdns_base;
struct qmgr;

/*
 * qmgr_new - a queue manager on base, delivering the routes of cfg (borrowed:
 * it must outlive qmgr or be replaced with qmgr_set_config first). dns
 * (borrowed) may be NULL: host names are then resolved with the blocking
 * getaddrinfo, which suits tests only. Caller owns.
 */
struct qmgr *qmgr_new(struct event_base *base, struct evdns_base *dns,
                      const struct coex_config *cfg, struct spool *spool);

/* qmgr_add - a message just committed or recovered: deliver it now (m is copied) */
void qmgr_add(struct qmgr *q, const struct spool_msg *m);

/*
 * qmgr_set_config - switch to a reloaded configuration (routes are found by
 * name; a message whose route vanished stays queued and is logged). The old
 * cfg may be freed once this returns.
 */
void qmgr_set_config(struct qmgr *q, const struct coex_config *cfg);

/* qmgr_kick - retry every deferred message now (tests, `coexctl queue flush`) */
void qmgr_kick(struct qmgr *q);

struct qmgr_stats {
    unsigned long queued;    /* messages with pending recipients */
    unsigned long active;    /* deliveries in progress */
    unsigned long delivered; /* recipients delivered since start */
    unsigned long deferred;  /* delivery attempts deferred since start */
    unsigned long bounced;   /* recipients failed since start */
};
void qmgr_get_stats(const struct qmgr *q, struct qmgr_stats *st);

/*
 * qmgr_free - stop: no new deliveries; connections in progress are closed
 * (their messages stay queued and are retried after restart). NULL is fine.
 */
void qmgr_free(struct qmgr *q);

#endif
