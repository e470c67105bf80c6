/*
 * smtpd_data - DATA and BDAT bytes, and what happens to a complete message:
 * checks (size, bare line ends, hop count, loop), rewriting, the Received
 * field, the spool, and the reply after commit.
 *
 * SMTP smuggling (CVE-2023-51766 and kin): the end of DATA is only
 * CRLF "." CRLF. A bare LF or a bare CR does not end a line; it marks the
 * message as refused (550 5.6.11) and reading goes on to the real end, so
 * "\n.\r\n" or "\r\n.\n" can never split one message into two. The byte
 * decoder that does this is pure and fuzzed: smtpproto_data.c.
 *
 * DKIM (RFC 6376, issue 4): when the route has a key for the domain of the
 * rewritten From, the finished message goes to the signing pool
 * (signpool.h) and comes back with its DKIM-Signature fields on top before
 * it is spooled; the session reads nothing meanwhile, as while the spool
 * commits. The body hashes the pool needs are made here while the body
 * streams in (smtpd_body_stream), so no second pass reads the body. A
 * session that has ended before the pool finished (shutdown) has no
 * reply, so its message is dropped, not queued. Earlier DKIM-Signature fields stay,
 * except those whose d= the route lists in dkim_remove_target_signatures
 * (the rewrite broke them).
 *
 * Verification and ARC (RFC 6376 §6, RFC 8617): on a route with
 * dkim_verify, the keys that the arrived DKIM-Signature and ARC fields name
 * are first fetched from DNS (keyfetch.h, on the loop, cached); then the
 * pool verifies the message as received, and seals the rewritten one when
 * the route has an arc_key. A key lookup that fails is a result
 * (temperror/permerror in the ARC-Authentication-Results), not a refusal.
 *
 * Stages of a struct smtpd_commit: fetching keys (kf pending), in the pool
 * (out and orig read by a worker), committing (spool). Only the first can
 * be cancelled; in the others a client that leaves just loses its reply.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "dkim.h"
#include "hdr.h"
#include "keyfetch.h"
#include "log.h"
#include "qmgr.h"
#include "rewrite.h"
#include "signpool.h"
#include "smtpd_int.h"

/* the field coexd adds to recognise its own messages coming back (loop guard) */
#define SMTPD_LOOP_FIELD "X-Coex-Loop"

/* a message on its way: its keys fetched, then signed (out holds it), then committed */
struct smtpd_commit {
    struct smtpd_session *sess; /* NULL once the client went away */
    struct spool_msg *msg;
    struct qmgr *qmgr;
    struct spool *spool;
    struct buf out;      /* in the pool: the rewritten message the job reads */
    struct buf orig;     /* in the pool: the message as received, to verify */
    struct keyfetch *kf; /* the keys of orig's signatures; NULL: not verified */
    int fetching;        /* kf is still looking up: nothing else is set yet */
};

/* smtpd_body_reset - forget what the hashers hold of an unfinished message */
static void smtpd_body_reset(struct smtpd_session *s)
{
    struct dkim_body_hash discard;
    if (!s->bh_dirty)
        return;
    for (int c = 0; c < 2; c++)
        if (s->bh[c] && dkim_body_final(s->bh[c], &discard) < 0) {
            /* the hasher is reset either way */
        }
    s->bh_dirty = 0;
}

/* smtpd_data_free - the session's body hashers */
void smtpd_data_free(struct smtpd_session *s)
{
    for (int c = 0; c < 2; c++) {
        dkim_body_free(s->bh[c]);
        s->bh[c] = NULL;
    }
}

/* smtpd_find_blank_line - offset of the first CRLF CRLF in p[from..len), or len */
static size_t smtpd_find_blank_line(const char *p, size_t from, size_t len)
{
    while (from + 4 <= len) {
        const char *cr = memchr(p + from, '\r', len - from - 3);
        if (cr == NULL)
            return len;
        if (memcmp(cr, "\r\n\r\n", 4) == 0)
            return (size_t)(cr - p);
        from = (size_t)(cr - p) + 1;
    }
    return len;
}

/*
 * smtpd_body_stream - feed the body bytes the decoder kept since the last
 * call to the hashers (RFC 6376 §3.7: the body hash needs the body only,
 * and coexd never changes the body). The boundary is the one hdr_split
 * finds in a message without bare CR or LF: a first line that is empty, or
 * the first CRLF CRLF; smtpd_body_finish checks that they agree.
 */
static void smtpd_body_stream(struct smtpd_session *s)
{
    struct smtpd_tx *tx = &s->tx;
    const char *m = tx->msg.data;
    size_t len = tx->msg.len;
    if (tx->bh_mask == 0)
        return;
    if (len < tx->bh_pos || tx->data.bare_eol) {
        tx->bh_mask = 0; /* dropped (too big) or refused: nothing to sign */
        return;
    }
    if (!tx->bh_found) {
        size_t off;
        if (len < 2)
            return;
        if (m[0] == '\r' && m[1] == '\n') {
            off = 2; /* an empty header block */
        } else {
            size_t blank = smtpd_find_blank_line(m, tx->bh_pos, len);
            if (blank == len) {
                tx->bh_pos = len > 3 ? len - 3 : 0; /* a CRLF CRLF may straddle the next bytes */
                return;
            }
            off = blank + 4;
        }
        tx->bh_found = 1;
        tx->bh_off = tx->bh_pos = off;
    }
    if (len > tx->bh_pos) {
        for (int c = 0; c < 2; c++)
            if (tx->bh_mask & (1u << c))
                dkim_body_update(s->bh[c], m + tx->bh_pos, len - tx->bh_pos);
        s->bh_dirty = 1;
        tx->bh_pos = len;
    }
}

/*
 * smtpd_body_finish - the body hashes of the complete message into out,
 * by canonicalisation; returns the mask of those made (0: the worker hashes)
 */
static unsigned smtpd_body_finish(struct smtpd_session *s, struct dkim_body_hash out[2])
{
    struct smtpd_tx *tx = &s->tx;
    size_t header_end, body_off;
    smtpd_body_stream(s);
    unsigned mask = tx->bh_mask;
    tx->bh_mask = 0;
    if (mask == 0) {
        smtpd_body_reset(s);
        return 0;
    }
    hdr_split(tx->msg.data, tx->msg.len, &header_end, &body_off);
    if (body_off != (tx->bh_found ? tx->bh_off : tx->msg.len)) {
        smtpd_body_reset(s); /* cannot happen for an accepted message; be safe */
        return 0;
    }
    for (int c = 0; c < 2; c++)
        if ((mask & (1u << c)) && dkim_body_final(s->bh[c], &out[c]) < 0)
            mask &= ~(1u << c);
    s->bh_dirty = 0;
    return mask;
}

/* smtpd_data_begin - first byte of DATA is at the start of a line */
void smtpd_data_begin(struct smtpd_session *s)
{
    struct smtpd_tx *tx = &s->tx;
    smtpproto_data_init(&tx->data);
    buf_reset(&tx->msg);
    smtpd_body_reset(s);
    tx->route = s->conn->route; /* a reload during the message does not change it */
    tx->bh_mask = signpool_body_canons(tx->route);
    tx->bh_found = 0;
    tx->bh_off = tx->bh_pos = 0;
    for (int c = 0; c < 2; c++)
        if ((tx->bh_mask & (1u << c)) && s->bh[c] == NULL)
            s->bh[c] = dkim_body_new((enum dkim_canon)c);
}

/* smtpd_data_consume - the DATA decoder (smtpproto_data.c) into the message */
size_t smtpd_data_consume(struct smtpd_session *s, const char *p, size_t len, int *done)
{
    size_t used = smtpproto_data_consume(&s->tx.data, p, len, &s->tx.msg, done);
    smtpd_body_stream(s);
    return used;
}

/* smtpd_bdat_consume - chunk bytes; a BDAT without a transaction is checked, not kept */
void smtpd_bdat_consume(struct smtpd_session *s, const char *p, size_t len)
{
    struct smtpd_tx *tx = &s->tx;
    smtpproto_bdat_consume(&tx->data, p, len, tx->bdat_failed ? NULL : &tx->msg);
    if (!tx->bdat_failed)
        smtpd_body_stream(s);
}

/* smtpd_count_fields - Received fields and our loop marker for this route */
static void smtpd_count_fields(const char *msg, size_t len, const char *marker, long *hops,
                               int *loop)
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t mlen = strlen(marker);
    *hops = 0;
    *loop = 0;
    hdr_iter_init(&it, msg, len);
    while (hdr_iter_next(&it, &f)) {
        if (hdr_name_is(msg, &f, "Received", 8))
            (*hops)++;
        else if (hdr_name_is(msg, &f, SMTPD_LOOP_FIELD, sizeof(SMTPD_LOOP_FIELD) - 1)) {
            const char *v = msg + f.value_off;
            size_t vlen = f.value_end - f.value_off;
            while (vlen && (*v == ' ' || *v == '\t'))
                v++, vlen--;
            if (vlen == mlen && memcmp(v, marker, mlen) == 0)
                *loop = 1;
        }
    }
}

/* smtpd_commit_free - a message done with (queued or not) */
static void smtpd_commit_free(struct smtpd_commit *c)
{
    if (c->fetching)
        keyfetch_cancel(c->kf);
    else
        keyfetch_free(c->kf);
    spool_msg_free(c->msg);
    buf_cleanup(&c->out);
    buf_cleanup(&c->orig);
    free(c);
}

/* smtpd_commit_cb - the spool made the message durable (or could not) */
static void smtpd_commit_cb(void *arg, int ok)
{
    struct smtpd_commit *c = arg;
    char id[SPOOL_ID_SIZE];
    spool_format_id(c->msg->id, id);
    if (ok) {
        qmgr_add(c->qmgr, c->msg);
        if (c->sess)
            smtpd_reply(c->sess, "250 2.0.0 Ok: queued as %s", id);
        else
            log_info("%s: queued, but the client left before the reply", id);
    } else {
        log_error("%s: spool write failed: message not accepted", id);
        if (c->sess)
            smtpd_reply(c->sess, "452 4.3.1 Error: queue file write failed (insufficient system "
                                 "storage?); try again later");
    }
    if (c->sess) {
        c->sess->commit = NULL;
        c->sess->messages++;
        smtpd_resume(c->sess);
    }
    smtpd_commit_free(c);
}

/* smtpd_commit_detach - the session ends while its message is being committed */
void smtpd_commit_detach(struct smtpd_session *s)
{
    if (s->commit && s->commit->fetching) {
        log_info("connector=%s client=[%s]: the client left during the key lookup: message "
                 "not queued",
                 s->conn->name, s->client_ip);
        smtpd_commit_free(s->commit); /* no callback will come */
    }
    else if (s->commit)
        s->commit->sess = NULL;
    s->commit = NULL;
}

/* smtpd_rfc5322_date - "Fri, 04 Dec 2026 10:00:00 +0000" */
static void smtpd_rfc5322_date(char *out, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(out, size, "%s, %02d %s %d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* smtpd_log_trace - one log line per rewrite decision */
static void smtpd_log_trace(const char *id, const struct rewrite_trace *t)
{
    for (size_t i = 0; i < t->count; i++) {
        const struct rewrite_change *c = &t->changes[i];
        if (c->event == EVENT_REWRITTEN)
            log_info("%s: rewrite %s: %s -> %s (%s%s)", id, c->field, c->old_addr, c->new_addr,
                     rewrite_rule_name(c->rule), c->display_name ? ", display name" : "");
        else if (c->event == EVENT_UNPARSEABLE)
            log_warn("%s: rewrite %s: unparseable mailbox left untouched: %s", id, c->field,
                     c->old_addr);
    }
}

/* smtpd_refuse - end the transaction with a reply */
static void smtpd_refuse(struct smtpd_session *s, const char *reply, const char *why)
{
    log_info("connector=%s client=[%s]: message refused: %s", s->conn->name, s->client_ip, why);
    smtpd_reply(s, "%s", reply);
    smtpd_tx_reset(s);
    struct timeval tv = {s->env->cfg->command_timeout, 0};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* smtpd_remove_domain - 1 when the DKIM-Signature field f has a d= the route removes */
static int smtpd_remove_domain(const char *hdr, const struct hdr_field *f,
                               const struct cfg_route *route)
{
    const char *d;
    size_t dlen;
    if (dkim_tag_find(hdr + f->value_off, f->value_end - f->value_off, "d", &d, &dlen) != 1)
        return 0; /* no d= or a malformed tag list: not ours to judge */
    for (size_t i = 0; i < route->dkim_remove_count; i++)
        if (strlen(route->dkim_remove_domains[i]) == dlen &&
            strncasecmp(route->dkim_remove_domains[i], d, dlen) == 0)
            return 1;
    return 0;
}

/*
 * smtpd_strip_signatures - copy hdr[0..len) to out without the
 * DKIM-Signature fields of the route's target domains; *removed counts them
 */
static int smtpd_strip_signatures(const char *hdr, size_t len, const struct cfg_route *route,
                                  struct buf *out, size_t *removed)
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t copied = 0;
    *removed = 0;
    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        if (!hdr_name_is(hdr, &f, "DKIM-Signature", 14) || !smtpd_remove_domain(hdr, &f, route))
            continue;
        if (buf_append(out, hdr + copied, f.off - copied) < 0)
            return -1;
        copied = f.end;
        (*removed)++;
    }
    return buf_append(out, hdr + copied, len - copied);
}

/* smtpd_from_domain - the domain of the first From mailbox: 1 found, 0 none */
static int smtpd_from_domain(const char *msg, size_t len, const char **domain, size_t *domain_len)
{
    struct hdr_iter it;
    struct hdr_field f;
    struct addr_mailbox mb;
    hdr_iter_init(&it, msg, len);
    while (hdr_iter_next(&it, &f)) {
        if (!hdr_name_is(msg, &f, "From", 4))
            continue;
        const char *value = msg + f.value_off;
        if (addr_parse_list(value, f.value_end - f.value_off, &mb, 1) == 0 ||
            (mb.flags & ADDR_F_BAD) || mb.domain.len == 0)
            return 0;
        *domain = value + mb.domain.off;
        *domain_len = mb.domain.len;
        return 1;
    }
    return 0;
}

/* smtpd_build - rewrite and assemble the queued bytes; 0 or -1 (reply sent) */
static int smtpd_build(struct smtpd_session *s, struct spool_msg *m, struct buf *out,
                       const struct cfg_route *route)
{
    const struct coex_config *cfg = s->env->cfg;
    struct smtpd_tx *tx = &s->tx;
    struct rewrite_opts o = {route->direction == CFG_TO_SOURCE ? REWRITE_TO_SOURCE
                                                               : REWRITE_TO_TARGET,
                             cfg->subaddress_separators};
    struct rewrite_trace trace;
    char id[SPOOL_ID_SIZE], date[64], err[160], env_addr[LIMIT_ADDRESS];
    size_t header_end, body_off;
    int rc = -1;

    struct buf kept; /* the header without the removed DKIM-Signature fields */
    size_t removed = 0;
    buf_init(&kept, (size_t)cfg->header_size_limit);
    rewrite_trace_init(&trace);
    spool_format_id(m->id, id);
    hdr_split(tx->msg.data, tx->msg.len, &header_end, &body_off);
    const char *header = tx->msg.data;
    size_t header_len = header_end;
    if (route->dkim_remove_count) {
        if (smtpd_strip_signatures(header, header_len, route, &kept, &removed) < 0)
            goto too_big;
        if (removed) {
            log_info("%s: dkim: removed %zu DKIM-Signature field(s) of target domains", id,
                     removed);
            header = kept.data;
            header_len = kept.len;
        }
    }
    smtpd_rfc5322_date(date, sizeof(date));
    int utf8 = tx->smtputf8;
    const char *proto =
        s->esmtp ? (s->tls ? (utf8 ? "UTF8SMTPS" : "ESMTPS") : (utf8 ? "UTF8SMTP" : "ESMTP"))
                 : "SMTP";
    /* RFC 5321 §4.4 trace field; one recipient is named, more are not */
    if (buf_printf(out,
                   "Received: from %s ([%s])\r\n\tby %s (coex, connector %s) with %s%s%s%s\r\n"
                   "\tid %s%s%s%s; %s\r\n",
                   s->helo, s->client_ip, cfg->hostname, s->conn->name, proto, s->tls ? " (" : "",
                   s->tls ? s->tls_info : "", s->tls ? ")" : "", id,
                   tx->rcpt_count == 1 ? "\r\n\tfor <" : "",
                   tx->rcpt_count == 1 ? tx->rcpts[0].addr : "", tx->rcpt_count == 1 ? ">" : "",
                   date) < 0 ||
        buf_printf(out, "%s: %s/%s\r\n", SMTPD_LOOP_FIELD, cfg->hostname, route->name) < 0)
        goto too_big;
    if (rewrite_header(tx->dir, &o, header, header_len, out, &trace, err, sizeof(err)) < 0 ||
        buf_append(out, tx->msg.data + header_end, tx->msg.len - header_end) < 0)
        goto too_big;

    if (rewrite_envelope(tx->dir, &o, "MAIL FROM", tx->mail_from, strlen(tx->mail_from), env_addr,
                         sizeof(env_addr), &trace) < 0)
        goto bad_address;
    m->mail_from = xstrdup(env_addr);
    for (size_t i = 0; i < tx->rcpt_count; i++) {
        const char *a = tx->rcpts[i].addr;
        if (route->rewrite_rcpt) {
            if (rewrite_envelope(tx->dir, &o, "RCPT TO", a, strlen(a), env_addr, sizeof(env_addr),
                                 &trace) < 0)
                goto bad_address;
            a = env_addr;
        }
        m->rcpts[i].addr = xstrdup(a);
    }
    if (trace.coexistence_off)
        log_info("%s: coexistence is off: relayed without rewriting", id);
    smtpd_log_trace(id, &trace);
    rc = 0;
    goto done;
too_big:
    smtpd_refuse(s, "552 5.3.4 Error: message too large after processing", "too large");
    goto done;
bad_address:
    smtpd_refuse(s, "501 5.1.3 Error: envelope address cannot be rewritten", "bad address");
done:
    rewrite_trace_cleanup(&trace);
    buf_cleanup(&kept);
    return rc;
}

/*
 * smtpd_spool - hand the final bytes data[0..len) (borrowed) to the spool;
 * the reply comes from smtpd_commit_cb. -1 after replying 452 (c is freed).
 */
static int smtpd_spool(struct smtpd_session *s, struct smtpd_commit *c, const char *data,
                       size_t len)
{
    char id[SPOOL_ID_SIZE];
    spool_format_id(c->msg->id, id);
    if (spool_submit(c->spool, c->msg, data, len, smtpd_commit_cb, c) < 0) {
        log_error("%s: spool refused the message", id);
        smtpd_reply(s, "452 4.3.1 Error: insufficient system storage");
        smtpd_commit_free(c);
        return -1;
    }
    log_info("%s: from=<%s>, size=%zu, nrcpt=%zu", id, c->msg->mail_from, len, c->msg->rcpt_count);
    s->commit = c;
    return 0;
}

/*
 * smtpd_signing_domain - the route's keys for the rewritten From domain of
 * msg, or NULL (relayed unsigned; logged when the route signs at all)
 */
static struct signpool_domain *smtpd_signing_domain(const struct cfg_route *route, const char *id,
                                                    const struct buf *msg)
{
    const char *domain;
    size_t len;
    if (route->dkim == NULL)
        return NULL;
    if (!smtpd_from_domain(msg->data, msg->len, &domain, &len)) {
        log_info("%s: dkim: not signed: no From address to sign for", id);
        return NULL;
    }
    struct signpool_domain *dom = signpool_find(route, domain, len);
    if (dom == NULL)
        log_info("%s: dkim: not signed: no key for the From domain %.*s (route %s)", id, (int)len,
                 domain, route->name);
    return dom;
}

/* smtpd_signed_cb - on the loop: verified, signed, sealed (or not); spool the message */
static void smtpd_signed_cb(void *arg, const struct signpool_result *res)
{
    struct smtpd_commit *c = arg;
    struct smtpd_session *s = c->sess;
    char id[SPOOL_ID_SIZE];
    struct buf signed_msg;
    spool_format_id(c->msg->id, id);
    if (s)
        s->commit = NULL;
    if (res == NULL || s == NULL) {
        log_info("%s: %s before signing finished: message not queued", id,
                 s ? "coexd stopped" : "the client left");
        smtpd_commit_free(c);
        return;
    }
    if (res->auth[0])
        log_info("%s: auth: %s", id, res->auth);
    if (!res->ok && res->tempfail) {
        log_error("%s: arc: chain not judged (%s): message not accepted", id, res->err);
        smtpd_reply(s, "451 4.4.3 Error: DNS lookup for the message's ARC chain failed; try "
                       "again later");
        smtpd_commit_free(c);
        smtpd_resume(s);
        return;
    }
    if (!res->ok) {
        log_error("%s: dkim: signing failed (%s): message not accepted", id, res->err);
        smtpd_reply(s, "451 4.3.0 Error: DKIM signing failed; try again later");
        smtpd_commit_free(c);
        smtpd_resume(s);
        return;
    }
    if (res->info[0])
        log_info("%s: dkim: signed %s", id, res->info);
    if (res->arc[0])
        log_info("%s: arc: %s", id, res->arc);
    buf_init(&signed_msg, res->fields.len + c->out.len);
    if (buf_append(&signed_msg, res->fields.data, res->fields.len) < 0 ||
        buf_append(&signed_msg, c->out.data, c->out.len) < 0) {
        buf_cleanup(&signed_msg); /* cannot happen: the limit is the sum */
        smtpd_reply(s, "452 4.3.1 Error: insufficient system storage");
        smtpd_commit_free(c);
        smtpd_resume(s);
        return;
    }
    buf_cleanup(&c->out);
    buf_cleanup(&c->orig);
    if (smtpd_spool(s, c, signed_msg.data, signed_msg.len) < 0)
        smtpd_resume(s);
    buf_cleanup(&signed_msg);
}

/*
 * smtpd_accept - rewrite, then sign/verify/seal on the pool or spool
 * directly. c (may be NULL) holds the fetched keys of a verifying route and
 * is taken over. The transaction is over when this returns.
 */
static void smtpd_accept(struct smtpd_session *s, struct smtpd_commit *c)
{
    const struct coex_config *cfg = s->env->cfg;
    struct smtpd_tx *tx = &s->tx;
    const struct cfg_route *route = tx->route ? tx->route : s->conn->route;
    struct dkim_body_hash body[2] = {0};
    unsigned body_mask = smtpd_body_finish(s, body); /* before msg moves or goes */
    struct spool_msg *m = xcalloc(1, sizeof(*m));
    struct buf out;
    buf_init(&out, (size_t)cfg->message_size_limit + (size_t)cfg->header_size_limit + 4096);
    m->id = spool_new_id(s->env->spool);
    m->arrival = time(NULL);
    m->route = xstrdup(route->name);
    m->envid = tx->envid ? xstrdup(tx->envid) : NULL;
    m->ret_full = tx->ret_full;
    m->rcpt_count = tx->rcpt_count;
    m->rcpts = xcalloc(tx->rcpt_count, sizeof(*m->rcpts));
    for (size_t i = 0; i < tx->rcpt_count; i++) {
        m->rcpts[i].orcpt = tx->rcpts[i].orcpt ? xstrdup(tx->rcpts[i].orcpt) : NULL;
        m->rcpts[i].notify = tx->rcpts[i].notify;
    }
    char id[SPOOL_ID_SIZE];
    spool_format_id(m->id, id);
    log_info("%s: client=[%s], connector=%s%s%s", id, s->client_ip, s->conn->name,
             s->tls ? ", tls=" : "", s->tls ? s->tls_info : "");
    if (c == NULL)
        c = xcalloc(1, sizeof(*c));
    c->sess = s;
    c->msg = m;
    c->qmgr = s->env->qmgr;
    c->spool = s->env->spool;
    if (smtpd_build(s, m, &out, route) < 0) {
        smtpd_commit_free(c);
        buf_cleanup(&out);
        return;
    }
    struct signpool_domain *dom = smtpd_signing_domain(route, id, &out);
    if (dom || c->kf) {
        char facts[300];
        snprintf(facts, sizeof(facts), "connector %s, client [%s]%s%s", s->conn->name,
                 s->client_ip, s->tls ? ", " : "", s->tls ? s->tls_info : "");
        c->out = out; /* the job reads it until smtpd_signed_cb */
        if (c->kf) {
            c->orig = tx->msg; /* moved: the job reads it too */
            buf_init(&tx->msg, c->orig.limit);
        }
        struct signpool_req req = {.dom = dom,
                                   .msg = c->out.data,
                                   .len = c->out.len,
                                   .orig = c->kf ? c->orig.data : NULL,
                                   .orig_len = c->orig.len,
                                   .keys = c->kf,
                                   .facts = facts,
                                   .now = (long long)time(NULL),
                                   .body_mask = body_mask};
        memcpy(req.body, body, sizeof(body));
        if (signpool_submit(route, &req, smtpd_signed_cb, c) == 0) {
            smtpd_tx_reset(s);
            s->commit = c;
            s->waiting = 1;
            bufferevent_disable(s->bev, EV_READ);
            return;
        }
        log_error("%s: dkim: no signing pool for route %s: message not accepted", id, route->name);
        smtpd_reply(s, "451 4.3.0 Error: DKIM signing unavailable; try again later");
        smtpd_commit_free(c);
        smtpd_tx_reset(s);
        return;
    }
    int rc = smtpd_spool(s, c, out.data, out.len);
    buf_cleanup(&out);
    smtpd_tx_reset(s);
    if (rc == 0) {
        s->waiting = 1;
        bufferevent_disable(s->bev, EV_READ);
    }
}

/* smtpd_keys_cb - on the loop: the keys of the arrived signatures are looked up */
static void smtpd_keys_cb(void *arg, struct keyfetch *kf)
{
    struct smtpd_commit *c = arg;
    struct smtpd_session *s = c->sess; /* set: a session that leaves cancels the lookup */
    c->kf = kf;
    c->fetching = 0;
    s->commit = NULL;
    s->waiting = 0;
    if (s->closing) { /* shutdown answered 421 meanwhile: no 250 may follow it */
        log_info("connector=%s client=[%s]: closing during the key lookup: message not queued",
                 s->conn->name, s->client_ip);
        smtpd_commit_free(c);
        smtpd_tx_reset(s);
        return;
    }
    smtpd_accept(s, c);
    if (s->commit == NULL) /* refused or replied: nothing in flight */
        smtpd_resume(s);
}

/* smtpd_message_end - a DATA message or a BDAT chunk is complete */
void smtpd_message_end(struct smtpd_session *s)
{
    const struct coex_config *cfg = s->env->cfg;
    struct smtpd_tx *tx = &s->tx;

    if (s->state == SMTPD_BDAT && tx->bdat_failed) {
        /*
         * LAST or not, nothing of a refused chunk may linger: not bdat_used
         * (DATA would be refused), not the decoder's bare_eol (the next
         * message would be), not a MAIL without RCPT (its sender and
         * directory reference would leak on the next MAIL), not the way
         * around EHLO/HELO
         */
        int greeted = tx->bdat_greeted;
        smtpd_reply(s, "503 5.5.1 Error: BDAT without a valid transaction");
        smtpd_tx_reset(s);
        if (greeted)
            s->state = SMTPD_GREETED;
        return;
    }
    if (s->state == SMTPD_BDAT && !tx->bdat_last) {
        smtpd_reply(s, "250 2.0.0 Ok: %zu octets received", tx->msg.len);
        s->state = SMTPD_MAIL;
        return;
    }
    if (s->state == SMTPD_BDAT)
        smtpproto_bdat_end(&tx->data); /* "BDAT 3 LAST" + "ab\r": the CR is bare */
    if (tx->data.bare_eol) {
        smtpd_refuse(s,
                     "550 5.6.11 Error: bare CR or LF in message data (SMTP smuggling "
                     "protection): use CRLF line ends",
                     "bare CR or LF in DATA");
        return;
    }
    if (tx->data.too_big) {
        smtpd_refuse(s, "552 5.3.4 Error: message size exceeds fixed limit", "too large");
        return;
    }
    size_t header_end, body_off;
    hdr_split(tx->msg.data, tx->msg.len, &header_end, &body_off);
    if ((long)header_end > cfg->header_size_limit) {
        smtpd_refuse(s, "552 5.3.4 Error: message header exceeds fixed limit", "header too large");
        return;
    }
    const struct cfg_route *route = tx->route ? tx->route : s->conn->route;
    char marker[512];
    long hops;
    int loop;
    snprintf(marker, sizeof(marker), "%s/%s", cfg->hostname, route->name);
    smtpd_count_fields(tx->msg.data, header_end, marker, &hops, &loop);
    if (loop || hops >= cfg->hop_limit) {
        smtpd_refuse(s,
                     loop ? "554 5.4.6 Error: mail loop detected (this message passed here)"
                          : "554 5.4.6 Error: too many hops",
                     loop ? "loop" : "hop limit");
        return;
    }
    if (!route->dkim_verify) {
        smtpd_accept(s, NULL);
        return;
    }
    if (s->env->dnstxt == NULL || !signpool_route_has_pool(route)) {
        log_error("connector=%s client=[%s]: route %s verifies DKIM but coexd has no resolver "
                  "or pool (restart coexd after enabling dkim_verify)",
                  s->conn->name, s->client_ip, route->name);
        smtpd_reply(s, "451 4.3.0 Error: DKIM verification unavailable; try again later");
        smtpd_tx_reset(s);
        return;
    }
    /* fetch the keys first; the session reads nothing until smtpd_keys_cb */
    struct smtpd_commit *c = xcalloc(1, sizeof(*c));
    c->sess = s;
    c->fetching = 1;
    c->kf = keyfetch_start(s->env->dnstxt, tx->msg.data, header_end, smtpd_keys_cb, c);
    if (c->kf == NULL) {
        free(c);
        log_error("connector=%s client=[%s]: cannot start the key lookup", s->conn->name,
                  s->client_ip);
        smtpd_reply(s, "451 4.3.0 Error: DKIM verification unavailable; try again later");
        smtpd_tx_reset(s);
        return;
    }
    s->commit = c;
    s->waiting = 1;
    bufferevent_disable(s->bev, EV_READ);
}
