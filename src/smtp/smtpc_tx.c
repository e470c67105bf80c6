/*
 * smtpc_tx - the client's side of the SMTP dialogue: reading replies
 * (RFC 5321 §4.2, multi-line, enhanced codes of RFC 2034/3463; the parsing
 * itself is pure and fuzzed, in smtpreply.c), the EHLO keywords, STARTTLS,
 * one transaction (MAIL, RCPT..., DATA; with PIPELINING all in one write,
 * RFC 2920 §3.1), the message with dot-stuffing (RFC 5321 §4.5.2), RSET
 * between messages and QUIT.
 *
 * A transaction's outcome is per recipient: a RCPT reply that is not 2xx is
 * final for that recipient; an accepted recipient gets the reply to DATA (if
 * not 354) or to the final "."; a MAIL refusal is every recipient's reply.
 *
 * Does not: connect or do TLS (smtpc.c).
 */
#include "smtpc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "buf.h"
#include "spool.h"
#include "util.h"

#define SMTPC_LIMIT_COMMAND 4096 /* MAIL/RCPT with parameters */

_Static_assert(SMTPREPLY_TEXT_SIZE == SMTPC_TEXT_SIZE &&
                   SMTPREPLY_LIMIT_LINES == SMTPC_LIMIT_REPLY_LINES &&
                   SMTPREPLY_STATUS_SIZE == sizeof(((struct smtpc_reply *)0)->status),
               "smtpreply and smtpc limits");

static void smtpc_tx_end(struct smtpc *c, int need_rset);

/* smtpc_write - a command to the peer */
void smtpc_write(struct smtpc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
    va_end(ap);
}

/* smtpc_ready - idle and reusable: tell the owner, QUIT after the idle timeout */
void smtpc_ready(struct smtpc *c)
{
    c->state = SMTPC_S_READY;
    c->was_ready = 1;
    smtpc_timeouts(c, SMTPC_IDLE_TIMEOUT, SMTPC_TIMEOUT_COMMAND);
    smtpc_notify(c, SMTPC_N_READY);
}

/* smtpc_protocol_error - the peer said something we cannot read */
static void smtpc_protocol_error(struct smtpc *c, const char *what, const char *line, size_t len)
{
    struct smtpc_reply why;
    smtpc_local(&why, "4.5.0", "protocol error from %s: %s: %.*s", c->relay, what,
                (int)(len > 100 ? 100 : len), line);
    smtpc_abort(c, &why);
}

/* smtpc_after_ehlo - STARTTLS when we can, else ready (or fail when TLS is required) */
static void smtpc_after_ehlo(struct smtpc *c)
{
    if (!c->tls_on && c->tls && (c->ext & SMTPREPLY_EXT_STARTTLS)) {
        c->state = SMTPC_S_STARTTLS;
        smtpc_write(c, "STARTTLS\r\n");
        return;
    }
    if (!c->tls_on && c->tls_required) {
        smtpc_local(&c->session, "4.7.10", "TLS is required, but was not offered by %s", c->relay);
        smtpc_setup_failed(c);
        return;
    }
    smtpc_ready(c);
}

/* smtpc_starttls_reply - 220: start the handshake; else plain text if allowed */
static void smtpc_starttls_reply(struct smtpc *c, const struct smtpc_reply *r)
{
    if (r->code == 220) {
        size_t extra = evbuffer_get_length(bufferevent_get_input(c->bev));
        if (extra > 0) {
            smtpc_local(&c->session, "4.7.5", "%s sent %zu bytes after its reply to STARTTLS",
                        c->relay, extra);
            smtpc_setup_failed(c);
        } else if (smtpc_start_tls(c) < 0) {
            smtpc_setup_failed(c);
        }
        return;
    }
    if (c->tls_required) {
        c->session = *r;
        snprintf(c->session.status, sizeof(c->session.status), "4.7.10"); /* ours, not theirs */
        smtpc_setup_failed(c);
        return;
    }
    smtpc_ready(c);
}

/* smtpc_send_step - MAIL (0), RCPT (1..n) or DATA (n+1) */
static void smtpc_send_step(struct smtpc *c, size_t step)
{
    const struct smtpc_tx *tx = c->tx;
    struct buf cmd;
    int rc = 0;
    buf_init(&cmd, SMTPC_LIMIT_COMMAND);
    if (step == 0) {
        int utf8 = 0, eight_bit = 0;
        for (const char *p = tx->mail_from; *p; p++)
            utf8 |= (unsigned char)*p >= 0x80;
        for (size_t i = 0; i < tx->rcpt_count; i++)
            for (const char *p = tx->rcpts[i].addr; *p; p++)
                utf8 |= (unsigned char)*p >= 0x80;
        for (size_t i = 0; i < tx->len && !eight_bit; i++)
            eight_bit = (unsigned char)tx->data[i] >= 0x80;
        rc |= buf_printf(&cmd, "MAIL FROM:<%s>", tx->mail_from);
        if (c->ext & SMTPREPLY_EXT_SIZE)
            rc |= buf_printf(&cmd, " SIZE=%zu", tx->len);
        if (eight_bit && (c->ext & SMTPREPLY_EXT_8BITMIME))
            rc |= buf_append_str(&cmd, " BODY=8BITMIME");
        if (utf8)
            rc |= buf_append_str(&cmd, " SMTPUTF8");
        if ((c->ext & SMTPREPLY_EXT_DSN) && tx->ret_full >= 0)
            rc |= buf_append_str(&cmd, tx->ret_full ? " RET=FULL" : " RET=HDRS");
        if ((c->ext & SMTPREPLY_EXT_DSN) && tx->envid)
            rc |= buf_printf(&cmd, " ENVID=%s", tx->envid);
    } else if (step <= tx->rcpt_count) {
        const struct smtpc_rcpt *r = &tx->rcpts[step - 1];
        rc |= buf_printf(&cmd, "RCPT TO:<%s>", r->addr);
        if ((c->ext & SMTPREPLY_EXT_DSN) && r->notify) {
            if (r->notify & SPOOL_NOTIFY_NEVER) {
                rc |= buf_append_str(&cmd, " NOTIFY=NEVER");
            } else {
                const char *sep = " NOTIFY=";
                static const char *const names[] = {"SUCCESS", "FAILURE", "DELAY"};
                static const unsigned bits[] = {SPOOL_NOTIFY_SUCCESS, SPOOL_NOTIFY_FAILURE,
                                                SPOOL_NOTIFY_DELAY};
                for (size_t i = 0; i < ARRAY_LEN(bits); i++)
                    if (r->notify & bits[i]) {
                        rc |= buf_printf(&cmd, "%s%s", sep, names[i]);
                        sep = ",";
                    }
            }
        }
        if ((c->ext & SMTPREPLY_EXT_DSN) && r->orcpt)
            rc |= buf_printf(&cmd, " ORCPT=%s", r->orcpt);
    } else {
        rc |= buf_append_str(&cmd, "DATA");
        if (!c->pipelined)
            smtpc_timeouts(c, SMTPC_TIMEOUT_DATA_INIT, SMTPC_TIMEOUT_COMMAND);
    }
    if (rc == 0 && buf_append_str(&cmd, "\r\n") == 0)
        evbuffer_add(bufferevent_get_output(c->bev), cmd.data, cmd.len);
    else /* a parameter too long for any server: the peer will see a short line and refuse */
        smtpc_write(c, "%s\r\n", step == 0 ? "MAIL FROM:<>" : "NOOP");
    buf_cleanup(&cmd);
    c->step_sent = step + 1;
}

/* smtpc_fail_all - every recipient not yet final gets r */
static void smtpc_fail_all(struct smtpc *c, const struct smtpc_reply *r)
{
    for (size_t i = 0; c->tx && i < c->tx->rcpt_count; i++)
        if (!c->final[i]) {
            c->results[i] = *r;
            c->final[i] = 1;
        }
}

/* smtpc_lost_tx - the connection failed during a transaction */
void smtpc_lost_tx(struct smtpc *c, const struct smtpc_reply *why)
{
    smtpc_fail_all(c, why);
    smtpc_notify(c, SMTPC_N_DONE);
}

/*
 * smtpc_tx_end - report; then the connection carries the next message. After
 * the reply to the final dot the transaction is over (RFC 5321 §4.1.1.4) and
 * the next MAIL may follow at once; a transaction cut short needs RSET first.
 */
static void smtpc_tx_end(struct smtpc *c, int need_rset)
{
    struct smtpc_reply none;
    smtpc_local(&none, "4.3.0", "no reply for this recipient from %s", c->relay);
    smtpc_fail_all(c, &none);
    smtpc_notify(c, SMTPC_N_DONE);
    if (!need_rset) {
        smtpc_ready(c);
        return;
    }
    c->state = SMTPC_S_RSET;
    smtpc_timeouts(c, SMTPC_TIMEOUT_COMMAND, SMTPC_TIMEOUT_COMMAND);
    smtpc_write(c, "RSET\r\n");
}

/* smtpc_tx_reply - the reply to step step_replied */
static void smtpc_tx_reply(struct smtpc *c, const struct smtpc_reply *r)
{
    size_t step = c->step_replied++, n = c->tx->rcpt_count;
    int ok = r->code / 100 == 2;
    if (step == 0) {
        c->mail_ok = ok;
        if (!ok)
            smtpc_fail_all(c, r);
    } else if (step <= n) {
        if (c->mail_ok && ok) {
            c->accepted[step - 1] = 1;
            c->rcpt_ok++;
        } else if (c->mail_ok) {
            c->results[step - 1] = *r;
            c->final[step - 1] = 1;
        }
    } else {
        if (r->code == 354 && c->mail_ok && c->rcpt_ok > 0) {
            c->state = SMTPC_S_BODY;
            c->data_off = 0;
            c->at_line_start = 1;
            smtpc_timeouts(c, 0, SMTPC_TIMEOUT_DATA_BLOCK);
            smtpc_pump(c);
        } else if (r->code == 354) { /* RFC 2920 §3.1: nobody to deliver to, end it empty */
            c->discard_dot = 1;
            c->state = SMTPC_S_DOT;
            smtpc_timeouts(c, SMTPC_TIMEOUT_DATA_END, SMTPC_TIMEOUT_COMMAND);
            smtpc_write(c, ".\r\n");
        } else {
            smtpc_fail_all(c, r);
            smtpc_tx_end(c, 1);
        }
        return;
    }
    if (c->pipelined)
        return; /* every command is out already; DATA's reply ends it */
    if (!c->mail_ok || (step == n && c->rcpt_ok == 0))
        smtpc_tx_end(c, 1);
    else
        smtpc_send_step(c, step + 1);
}

/* smtpc_pump - queue dot-stuffed message bytes up to SMTPC_DATA_CHUNK, then the final "." */
void smtpc_pump(struct smtpc *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    const char *data = c->tx->data;
    size_t len = c->tx->len;
    while (c->data_off < len && evbuffer_get_length(out) < SMTPC_DATA_CHUNK) {
        size_t off = c->data_off;
        if (c->at_line_start && data[off] == '.')
            evbuffer_add(out, ".", 1);
        const char *nl = memchr(data + off, '\n', len - off);
        size_t line_end = nl ? (size_t)(nl - data) : len;
        if (nl && (line_end == off || data[line_end - 1] != '\r')) {
            evbuffer_add(out, data + off, line_end - off); /* bare LF: never sent as such */
            evbuffer_add(out, "\r\n", 2);
        } else {
            evbuffer_add(out, data + off, (nl ? line_end + 1 : len) - off);
        }
        c->data_off = nl ? line_end + 1 : len;
        c->at_line_start = nl != NULL;
    }
    if (c->data_off < len)
        return;
    if (!c->at_line_start)
        evbuffer_add(out, "\r\n", 2);
    evbuffer_add(out, ".\r\n", 3);
    c->state = SMTPC_S_DOT;
    smtpc_timeouts(c, SMTPC_TIMEOUT_DATA_END, SMTPC_TIMEOUT_DATA_BLOCK);
    smtpc_read(c); /* a reply may have arrived while we were sending */
}

/* smtpc_reply_done - a complete reply: the state decides what it means */
static void smtpc_reply_done(struct smtpc *c)
{
    struct smtpc_reply r;
    r.code = c->reply.code;
    snprintf(r.text, sizeof(r.text), "%s", c->reply.text);
    smtpreply_status(r.text, r.status);
    int ok = r.code / 100 == 2;
    switch (c->state) {
    case SMTPC_S_GREETING:
        if (ok) {
            c->state = SMTPC_S_EHLO;
            smtpc_timeouts(c, SMTPC_TIMEOUT_COMMAND, SMTPC_TIMEOUT_COMMAND);
            smtpc_write(c, "EHLO %s\r\n", c->helo_name);
            return;
        }
        break;
    case SMTPC_S_EHLO:
        if (r.code / 100 == 5) { /* RFC 5321 §3.2: an old server; try HELO */
            c->state = SMTPC_S_HELO;
            smtpc_write(c, "HELO %s\r\n", c->helo_name);
            return;
        }
        /* fall through */
    case SMTPC_S_HELO:
    case SMTPC_S_EHLO_TLS:
        if (ok) {
            if (c->state == SMTPC_S_HELO)
                c->ext = 0;
            smtpc_after_ehlo(c);
            return;
        }
        break;
    case SMTPC_S_STARTTLS:
        smtpc_starttls_reply(c, &r);
        return;
    case SMTPC_S_TX:
        smtpc_tx_reply(c, &r);
        return;
    case SMTPC_S_DOT:
        if (!c->discard_dot) {
            for (size_t i = 0; i < c->tx->rcpt_count; i++)
                if (c->accepted[i] && !c->final[i]) {
                    c->results[i] = r;
                    c->final[i] = 1;
                }
        }
        smtpc_tx_end(c, c->discard_dot);
        return;
    case SMTPC_S_RSET:
        if (ok) {
            smtpc_ready(c);
            return;
        }
        c->session = r;
        smtpc_close(c);
        return;
    case SMTPC_S_QUIT:
        c->session = r;
        smtpc_close(c);
        return;
    default: /* READY: unsolicited, such as 421 before the server hangs up */
        c->session = r;
        smtpc_close(c);
        return;
    }
    c->session = r; /* set-up refused: the next address may do better */
    smtpc_setup_failed(c);
}

/* smtpc_line - one reply line */
static void smtpc_line(struct smtpc *c, const char *line, size_t len)
{
    struct smtpreply_line parsed;
    if (smtpreply_parse_line(line, len, &parsed) < 0) {
        smtpc_protocol_error(c, "malformed reply", line, len);
        return;
    }
    int first = c->reply.lines == 0;
    int complete = smtpreply_add(&c->reply, line, len, &parsed);
    if (complete < 0) {
        smtpc_protocol_error(c, "reply too long", line, len);
        return;
    }
    if ((c->state == SMTPC_S_EHLO || c->state == SMTPC_S_EHLO_TLS) && !first &&
        parsed.code / 100 == 2 && len > 4)
        smtpreply_ehlo_keyword(line + 4, len - 4, &c->ext, &c->size_max);
    if (complete)
        smtpc_reply_done(c);
}

/* smtpc_read - every complete reply line in the input, while the state allows */
void smtpc_read(struct smtpc *c)
{
    struct bufferevent *bev = c->bev;
    if (bev == NULL)
        return;
    struct evbuffer *in = bufferevent_get_input(bev);
    while (c->bev == bev && c->state != SMTPC_S_DEAD && c->state != SMTPC_S_HANDSHAKE &&
           c->state != SMTPC_S_BODY && c->state != SMTPC_S_CONNECT) {
        size_t len;
        char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
        if (line == NULL) {
            if (evbuffer_get_length(in) > SMTPC_LIMIT_LINE)
                smtpc_protocol_error(c, "reply line too long", "", 0);
            return;
        }
        if (len > SMTPC_LIMIT_LINE)
            smtpc_protocol_error(c, "reply line too long", line, len);
        else
            smtpc_line(c, line, len);
        free(line);
    }
}

/* smtpc_send - start a transaction */
int smtpc_send(struct smtpc *c, const struct smtpc_tx *tx)
{
    if (c->state != SMTPC_S_READY || c->tx != NULL || tx->rcpt_count == 0)
        return -1;
    if (c->results_cap < tx->rcpt_count) {
        c->results = xrealloc(c->results, tx->rcpt_count * sizeof(*c->results));
        c->accepted = xrealloc(c->accepted, tx->rcpt_count);
        c->final = xrealloc(c->final, tx->rcpt_count);
        c->results_cap = tx->rcpt_count;
    }
    memset(c->accepted, 0, tx->rcpt_count);
    memset(c->final, 0, tx->rcpt_count);
    c->tx = tx;
    c->mail_ok = 0;
    c->rcpt_ok = 0;
    c->step_sent = c->step_replied = 0;
    c->steps = tx->rcpt_count + 2;
    c->discard_dot = 0;
    int utf8 = 0;
    for (const char *p = tx->mail_from; *p; p++)
        utf8 |= (unsigned char)*p >= 0x80;
    for (size_t i = 0; i < tx->rcpt_count; i++)
        for (const char *p = tx->rcpts[i].addr; *p; p++)
            utf8 |= (unsigned char)*p >= 0x80;
    struct smtpc_reply refuse;
    if (utf8 && !(c->ext & SMTPREPLY_EXT_SMTPUTF8)) {
        smtpc_local(&refuse, "5.6.7", "SMTPUTF8 is required, but was not offered by %s", c->relay);
        goto refused;
    }
    if ((c->ext & SMTPREPLY_EXT_SIZE) && c->size_max > 0 && tx->len > c->size_max) {
        smtpc_local(&refuse, "5.3.4", "message size %zu exceeds the limit %lu of %s", tx->len,
                    c->size_max, c->relay);
        goto refused;
    }
    c->state = SMTPC_S_TX;
    c->pipelined = (c->ext & SMTPREPLY_EXT_PIPELINING) != 0;
    smtpc_timeouts(c, SMTPC_TIMEOUT_COMMAND, SMTPC_TIMEOUT_COMMAND);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (c->pipelined) /* RFC 2920: one write for the whole envelope and DATA */
        for (size_t step = 0; step < c->steps; step++)
            smtpc_send_step(c, step);
    else
        smtpc_send_step(c, 0);
    return 0;
refused: /* nothing was sent: the connection stays ready */
    smtpc_fail_all(c, &refuse);
    smtpc_notify(c, SMTPC_N_DONE | SMTPC_N_READY);
    return 0;
}
