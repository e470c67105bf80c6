/*
 * qmgr_int - what the queue manager's files share: qmgr.c (messages, next
 * hops, connections, scheduling), qmgr_outcome.c (what a delivery attempt
 * means: spool_mark, logs, retries, bounces) and qmgr_file.c (file: next
 * hops). Not a contract: only qmgr_*.c include it.
 */
#ifndef COEX_QMGR_INT_H
#define COEX_QMGR_INT_H

#include <stddef.h>

#include "buf.h"
#include "qmgr.h"
#include "smtpc.h"

struct event;

/* a message whose route is not configured is looked at again this often */
#define QMGR_NO_ROUTE_RETRY 300
/* room over message_size_limit for what rewriting and signing added */
#define QMGR_LIMIT_HEADROOM ((size_t)1 << 20)
/* used when message_size_limit is 0 */
#define QMGR_LIMIT_MESSAGE ((size_t)1 << 30)

enum qmgr_msg_state {
    QMGR_MSG_WAIT,   /* timer set: retry (or first try) pending */
    QMGR_MSG_READY,  /* in its hop's ready queue */
    QMGR_MSG_ACTIVE, /* an attempt is in progress */
    QMGR_MSG_IDLE,   /* only waiting for its bounces to be written */
};

struct qmgr_hop;

struct qmgr_msg {
    struct qmgr *q;
    struct spool_msg *m; /* owned copy */
    char id[SPOOL_ID_SIZE];
    enum qmgr_msg_state state;
    unsigned tries;
    unsigned bounces_in_flight;
    unsigned char *busy; /* per recipient: a bounce holding its outcome is being written */
    struct event *timer;
    struct qmgr_msg *next, *prev; /* every message */
    struct qmgr_msg *ready_next;  /* the hop's ready queue */
    /* the current attempt */
    struct buf data;
    size_t *idx; /* attempt recipient j is m->rcpts[idx[j]] */
    struct smtpc_rcpt *rcpts;
    size_t attempt_count;
    struct smtpc_tx tx;
};

struct qmgr_conn;

struct qmgr_hop {
    struct qmgr *q;
    char *route_name;
    const struct cfg_route *route; /* NULL when the route vanished in a reload */
    SSL_CTX *tls;
    int tls_loaded;
    struct qmgr_msg *ready_head, *ready_tail;
    size_t ready_count;
    struct qmgr_conn *conns;
    size_t conn_count, connecting;
    struct qmgr_hop *next;
};

struct qmgr_conn {
    struct qmgr_hop *hop;
    struct smtpc *c;
    struct qmgr_msg *msg; /* the message on it, or NULL */
    int established;      /* reached READY once */
    int idle;             /* READY and without a message */
    struct qmgr_conn *next, *prev;
};

struct qmgr_bounce;

struct qmgr {
    struct event_base *base;
    struct evdns_base *dns;
    const struct coex_config *cfg;
    struct spool *spool;
    struct qmgr_msg *msgs;
    struct qmgr_hop *hops;
    struct qmgr_bounce *bounces; /* waiting for their commit */
    unsigned long bounce_seq;
    struct qmgr_stats stats;
};

/* qmgr.c */
void qmgr_msg_schedule(struct qmgr_msg *qm, long delay_seconds);
void qmgr_msg_finish(struct qmgr_msg *qm);
int qmgr_msg_attempt(struct qmgr_msg *qm);
size_t qmgr_message_limit(const struct qmgr *q);

/* qmgr_outcome.c */
void qmgr_outcome(struct qmgr_msg *qm, const char *relay, const struct smtpc_reply *replies);
void qmgr_outcome_all(struct qmgr_msg *qm, const char *relay, const struct smtpc_reply *reply);
void qmgr_bounces_orphan(struct qmgr *q);

/* qmgr_file.c */
void qmgr_file_deliver(struct qmgr_msg *qm, const struct cfg_route *route);

#endif
