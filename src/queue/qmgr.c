/*
 * qmgr - the queue manager's scheduler: the messages it knows, one ready
 * queue and a set of SMTP connections per next hop, and the timers that
 * bring deferred messages back.
 *
 * A next hop is a route (its next_hop, TLS settings and max_concurrency are
 * per route), found by name so a reload takes effect for new connections.
 * A ready message goes to an idle connection of its hop; a new connection is
 * opened only while fewer are being set up than messages wait, up to the
 * route's max_concurrency. A connection that carried a message is RSET and
 * kept for the next one; smtpc closes it after SMTPC_IDLE_TIMEOUT seconds.
 * When a connection cannot be set up and its hop has no other connection,
 * the hop is taken as unreachable: every message waiting for it is deferred
 * (or bounced, when the failure was permanent) with that reason, as Postfix
 * does for a dead destination, instead of opening connection after connection.
 *
 * Does not: write queue files (spool), judge replies (qmgr_outcome.c), or
 * write file: deliveries (qmgr_file.c).
 */
#include "qmgr_int.h"

#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "log.h"
#include "tls.h"
#include "util.h"

static void qmgr_hop_dispatch(struct qmgr_hop *hop);

/* qmgr_message_limit - the largest message we read back from the spool */
size_t qmgr_message_limit(const struct qmgr *q)
{
    if (q->cfg->message_size_limit <= 0)
        return QMGR_LIMIT_MESSAGE;
    return (size_t)q->cfg->message_size_limit + QMGR_LIMIT_HEADROOM;
}

/* qmgr_msg_free - unlink and free */
static void qmgr_msg_free(struct qmgr_msg *qm)
{
    struct qmgr *q = qm->q;
    if (qm->prev)
        qm->prev->next = qm->next;
    else
        q->msgs = qm->next;
    if (qm->next)
        qm->next->prev = qm->prev;
    if (qm->timer)
        event_free(qm->timer);
    buf_cleanup(&qm->data);
    free(qm->idx);
    free(qm->rcpts);
    free(qm->busy);
    spool_msg_free(qm->m);
    free(qm);
    q->stats.queued--;
}

/* qmgr_msg_schedule - try again in delay seconds (0: at once, from the loop) */
void qmgr_msg_schedule(struct qmgr_msg *qm, long delay_seconds)
{
    struct timeval tv = {delay_seconds, 0};
    qm->state = QMGR_MSG_WAIT;
    event_add(qm->timer, &tv);
}

/* qmgr_msg_finish - after an attempt: drop its buffers; remove the message when all is final */
void qmgr_msg_finish(struct qmgr_msg *qm)
{
    buf_cleanup(&qm->data);
    free(qm->idx);
    free(qm->rcpts);
    qm->idx = NULL;
    qm->rcpts = NULL;
    qm->attempt_count = 0;
    for (size_t i = 0; i < qm->m->rcpt_count; i++)
        if (qm->m->rcpts[i].state == SPOOL_RCPT_PENDING)
            return;
    if (qm->bounces_in_flight > 0)
        return;
    log_info("%s: removed", qm->id);
    qmgr_msg_free(qm);
}

/*
 * qmgr_msg_attempt - read the bytes and list the recipients still to try;
 * 0, 1 when there is nobody to try, -1 when the spool cannot give the bytes
 */
int qmgr_msg_attempt(struct qmgr_msg *qm)
{
    struct spool_msg *m = qm->m;
    qm->idx = xcalloc(m->rcpt_count, sizeof(*qm->idx));
    qm->rcpts = xcalloc(m->rcpt_count, sizeof(*qm->rcpts));
    qm->attempt_count = 0;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        if (m->rcpts[i].state != SPOOL_RCPT_PENDING || qm->busy[i])
            continue;
        qm->idx[qm->attempt_count] = i;
        qm->rcpts[qm->attempt_count] = (struct smtpc_rcpt){
            .addr = m->rcpts[i].addr, .orcpt = m->rcpts[i].orcpt, .notify = m->rcpts[i].notify};
        qm->attempt_count++;
    }
    if (qm->attempt_count == 0)
        return 1;
    buf_cleanup(&qm->data);
    buf_init(&qm->data, qmgr_message_limit(qm->q));
    if (spool_read_data(qm->q->spool, m->id, &qm->data) < 0) {
        log_error("%s: cannot read the message from the spool", qm->id);
        return -1;
    }
    qm->tx = (struct smtpc_tx){.mail_from = m->mail_from,
                               .envid = m->envid,
                               .ret_full = m->ret_full,
                               .rcpts = qm->rcpts,
                               .rcpt_count = qm->attempt_count,
                               .data = qm->data.data,
                               .len = qm->data.len};
    return 0;
}

/* qmgr_hop_get - the hop of a route, made on first use */
static struct qmgr_hop *qmgr_hop_get(struct qmgr *q, const struct cfg_route *route)
{
    for (struct qmgr_hop *hop = q->hops; hop; hop = hop->next)
        if (strcmp(hop->route_name, route->name) == 0)
            return hop;
    struct qmgr_hop *hop = xcalloc(1, sizeof(*hop));
    hop->q = q;
    hop->route_name = xstrdup(route->name);
    hop->route = route;
    hop->next = q->hops;
    q->hops = hop;
    return hop;
}

/* qmgr_hop_tls - the route's client TLS context, made on first use; NULL when none */
static SSL_CTX *qmgr_hop_tls(struct qmgr_hop *hop)
{
    char err[512];
    const struct cfg_route *r = hop->route;
    if (!hop->tls_loaded) {
        hop->tls_loaded = 1;
        hop->tls =
            tls_client_ctx(r->tls_ca, r->tls_cert, r->tls_key, r->tls_verify, err, sizeof(err));
        if (hop->tls == NULL)
            log_error("route %s: no TLS for %s: %s", r->name, r->next_hop, err);
    }
    return hop->tls;
}

/* qmgr_msg_start - the message's delivery attempt begins: READY -> ACTIVE */
static void qmgr_msg_start(struct qmgr_conn *conn, struct qmgr_msg *qm)
{
    struct qmgr *q = qm->q;
    qm->state = QMGR_MSG_ACTIVE;
    q->stats.active++;
    int rc = qmgr_msg_attempt(qm);
    if (rc == 0) {
        conn->msg = qm;
        conn->idle = 0;
        if (smtpc_send(conn->c, &qm->tx) == 0)
            return;
        conn->msg = NULL;
        conn->idle = 1;
    }
    q->stats.active--;
    if (rc == 1) {
        qm->state = QMGR_MSG_IDLE;
        qmgr_msg_finish(qm);
        return;
    }
    struct smtpc_reply why;
    smtpc_local(&why, "4.3.0", "cannot start the delivery (queue read error)");
    qmgr_outcome_all(qm, "none", &why);
}

/* qmgr_hop_pop - the first ready message */
static struct qmgr_msg *qmgr_hop_pop(struct qmgr_hop *hop)
{
    struct qmgr_msg *qm = hop->ready_head;
    if (qm) {
        hop->ready_head = qm->ready_next;
        if (hop->ready_head == NULL)
            hop->ready_tail = NULL;
        qm->ready_next = NULL;
        hop->ready_count--;
    }
    return qm;
}

/* qmgr_hop_defer_all - the hop is unreachable: every waiting message gets the reason */
static void qmgr_hop_defer_all(struct qmgr_hop *hop, const char *relay,
                               const struct smtpc_reply *why)
{
    struct qmgr_msg *qm;
    while ((qm = qmgr_hop_pop(hop)) != NULL) {
        qm->state = QMGR_MSG_ACTIVE;
        if (qmgr_msg_attempt(qm) == 1) {
            qm->state = QMGR_MSG_IDLE;
            qmgr_msg_finish(qm);
            continue;
        }
        qmgr_outcome_all(qm, relay, why);
    }
}

static void qmgr_conn_free(struct qmgr_conn *conn)
{
    struct qmgr_hop *hop = conn->hop;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        hop->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    hop->conn_count--;
    if (!conn->established)
        hop->connecting--;
    smtpc_free(conn->c);
    free(conn);
}

/* qmgr_conn_cb - what a connection reports */
static void qmgr_conn_cb(void *arg, struct smtpc *c, enum smtpc_event ev,
                         const struct smtpc_result *res)
{
    struct qmgr_conn *conn = arg;
    struct qmgr_hop *hop = conn->hop;
    (void)c;
    switch (ev) {
    case SMTPC_READY:
        if (!conn->established) {
            conn->established = 1;
            hop->connecting--;
            if (res->tls)
                log_info("%s TLS connection established to %s: %s",
                         hop->route && hop->route->tls_verify ? "Verified" : "Untrusted",
                         res->relay, res->tls);
        }
        conn->idle = 1;
        qmgr_hop_dispatch(hop);
        return;
    case SMTPC_DONE: {
        struct qmgr_msg *qm = conn->msg;
        conn->msg = NULL;
        if (qm) {
            hop->q->stats.active--;
            qmgr_outcome(qm, res->relay, res->rcpts);
        }
        return;
    }
    case SMTPC_CLOSED: {
        int established = conn->established;
        qmgr_conn_free(conn);
        if (!established && hop->conn_count == 0)
            qmgr_hop_defer_all(hop, res->relay, &res->session);
        qmgr_hop_dispatch(hop);
        return;
    }
    }
}

/* qmgr_hop_open - one more connection to the hop */
static int qmgr_hop_open(struct qmgr_hop *hop)
{
    const struct cfg_route *r = hop->route;
    struct qmgr *q = hop->q;
    struct smtpc_params p = {.hop = r->hop_kind == CFG_HOP_MX ? SMTPC_HOP_MX : SMTPC_HOP_HOST,
                             .host = r->hop_host,
                             .port = r->hop_port,
                             .helo_name = q->cfg->hostname,
                             .tls = qmgr_hop_tls(hop),
                             .tls_required = r->tls_required,
                             .tls_verify = r->tls_verify,
                             .verify_name = r->tls_verify_name};
    struct qmgr_conn *conn = xcalloc(1, sizeof(*conn));
    conn->hop = hop;
    conn->c = smtpc_new(q->base, q->dns, &p, qmgr_conn_cb, conn);
    if (conn->c == NULL) {
        free(conn);
        return -1;
    }
    conn->next = hop->conns;
    if (hop->conns)
        hop->conns->prev = conn;
    hop->conns = conn;
    hop->conn_count++;
    hop->connecting++;
    return 0;
}

/* qmgr_hop_dispatch - ready messages onto idle connections; open more when allowed */
static void qmgr_hop_dispatch(struct qmgr_hop *hop)
{
    if (hop->route == NULL) { /* removed by a reload: back to the timer, which logs it */
        struct qmgr_msg *qm;
        while ((qm = qmgr_hop_pop(hop)) != NULL)
            qmgr_msg_schedule(qm, 0);
        return;
    }
    while (hop->ready_head) {
        struct qmgr_conn *idle = NULL;
        for (struct qmgr_conn *conn = hop->conns; conn && !idle; conn = conn->next)
            if (conn->idle && conn->msg == NULL)
                idle = conn;
        if (idle) {
            qmgr_msg_start(idle, qmgr_hop_pop(hop));
            continue;
        }
        if (hop->conn_count >= (size_t)hop->route->max_concurrency ||
            hop->connecting >= hop->ready_count)
            return;
        if (qmgr_hop_open(hop) < 0) {
            struct smtpc_reply why;
            smtpc_local(&why, "4.3.0", "cannot open a connection");
            if (hop->conn_count == 0)
                qmgr_hop_defer_all(hop, "none", &why);
            return;
        }
    }
}

/* qmgr_msg_go - the timer fired: deliver to the message's route */
static void qmgr_msg_go(evutil_socket_t fd, short what, void *arg)
{
    struct qmgr_msg *qm = arg;
    struct qmgr *q = qm->q;
    (void)fd;
    (void)what;
    const struct cfg_route *route = cfg_find_route(q->cfg, qm->m->route);
    if (route == NULL) {
        log_warn("%s: route %s is not configured; the message stays queued", qm->id, qm->m->route);
        qmgr_msg_schedule(qm, QMGR_NO_ROUTE_RETRY);
        return;
    }
    if (route->hop_kind == CFG_HOP_FILE) {
        qm->state = QMGR_MSG_ACTIVE;
        qmgr_file_deliver(qm, route);
        return;
    }
    struct qmgr_hop *hop = qmgr_hop_get(q, route);
    qm->state = QMGR_MSG_READY;
    if (hop->ready_tail)
        hop->ready_tail->ready_next = qm;
    else
        hop->ready_head = qm;
    hop->ready_tail = qm;
    hop->ready_count++;
    qmgr_hop_dispatch(hop);
}

/* qmgr_new - an empty manager */
struct qmgr *qmgr_new(struct event_base *base, struct evdns_base *dns,
                      const struct coex_config *cfg, struct spool *spool)
{
    struct qmgr *q = xcalloc(1, sizeof(*q));
    q->base = base;
    q->dns = dns;
    q->cfg = cfg;
    q->spool = spool;
    return q;
}

/* qmgr_add - copy the message and deliver it from the loop, at once */
void qmgr_add(struct qmgr *q, const struct spool_msg *m)
{
    size_t pending = 0;
    for (size_t i = 0; i < m->rcpt_count; i++)
        pending += m->rcpts[i].state == SPOOL_RCPT_PENDING;
    if (pending == 0)
        return;
    struct qmgr_msg *qm = xcalloc(1, sizeof(*qm));
    qm->q = q;
    qm->m = spool_msg_dup(m);
    spool_format_id(m->id, qm->id);
    qm->busy = xcalloc(m->rcpt_count, 1);
    buf_init(&qm->data, 0);
    qm->timer = evtimer_new(q->base, qmgr_msg_go, qm);
    if (qm->timer == NULL) { /* cannot happen short of memory: it stays for the next start */
        log_error("%s: cannot schedule the delivery", qm->id);
        spool_msg_free(qm->m);
        free(qm->busy);
        free(qm);
        return;
    }
    qm->next = q->msgs;
    if (q->msgs)
        q->msgs->prev = qm;
    q->msgs = qm;
    q->stats.queued++;
    qmgr_msg_schedule(qm, 0);
}

/* qmgr_set_config - routes by name; TLS contexts rebuilt on next use */
void qmgr_set_config(struct qmgr *q, const struct coex_config *cfg)
{
    q->cfg = cfg;
    for (struct qmgr_hop *hop = q->hops; hop; hop = hop->next) {
        hop->route = cfg_find_route(cfg, hop->route_name);
        SSL_CTX_free(hop->tls);
        hop->tls = NULL;
        hop->tls_loaded = 0;
    }
}

/* qmgr_kick - every waiting message now */
void qmgr_kick(struct qmgr *q)
{
    for (struct qmgr_msg *qm = q->msgs; qm; qm = qm->next)
        if (qm->state == QMGR_MSG_WAIT && event_pending(qm->timer, EV_TIMEOUT, NULL))
            qmgr_msg_schedule(qm, 0);
}

void qmgr_get_stats(const struct qmgr *q, struct qmgr_stats *st)
{
    *st = q->stats;
}

/* qmgr_free - close every connection, forget every message (they stay in the spool) */
void qmgr_free(struct qmgr *q)
{
    if (q == NULL)
        return;
    while (q->hops) {
        struct qmgr_hop *hop = q->hops;
        q->hops = hop->next;
        while (hop->conns)
            qmgr_conn_free(hop->conns);
        SSL_CTX_free(hop->tls);
        free(hop->route_name);
        free(hop);
    }
    while (q->msgs)
        qmgr_msg_free(q->msgs);
    qmgr_bounces_orphan(q);
    free(q);
}
