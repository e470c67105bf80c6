/*
 * smtpd - ESMTP sessions: accepting, the command table, STARTTLS, limits.
 * DATA/BDAT and the message itself are in smtpd_data.c.
 *
 * Layout after OpenSMTPD: a state enum, a session struct and a transaction
 * struct, a command table { name, handler }, the line length checked before
 * any parsing. Replies are queued on the bufferevent; with PIPELINING they go
 * out together when the input is drained.
 *
 * The parsing itself (verbs, paths, parameters, BDAT arguments) is pure and
 * fuzzed, in smtpproto.c; here are the replies and the session state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "smtpd_int.h"
#include "tls.h"

/* smtpproto's NOTIFY bits go to the spool as they are */
_Static_assert(SMTPPROTO_NOTIFY_NEVER == SPOOL_NOTIFY_NEVER &&
                   SMTPPROTO_NOTIFY_SUCCESS == SPOOL_NOTIFY_SUCCESS &&
                   SMTPPROTO_NOTIFY_FAILURE == SPOOL_NOTIFY_FAILURE &&
                   SMTPPROTO_NOTIFY_DELAY == SPOOL_NOTIFY_DELAY,
               "NOTIFY bits");

static struct smtpd_session *smtpd_sessions; /* every open session (for limits, shutdown) */

static void smtpd_read_cb(struct bufferevent *bev, void *arg);
static void smtpd_write_cb(struct bufferevent *bev, void *arg);
static void smtpd_event_cb(struct bufferevent *bev, short what, void *arg);

/* smtpd_reply - one reply line */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    va_list ap;
    struct evbuffer *out = bufferevent_get_output(s->bev);
    va_start(ap, fmt);
    evbuffer_add_vprintf(out, fmt, ap);
    va_end(ap);
    evbuffer_add(out, "\r\n", 2);
}

/* smtpd_set_timeout - command or DATA timeout (RFC 5321 §4.5.3.2) */
static void smtpd_set_timeout(struct smtpd_session *s, long seconds)
{
    struct timeval tv = {seconds, 0};
    bufferevent_set_timeouts(s->bev, &tv, &tv);
}

/* smtpd_tx_reset - drop the transaction */
void smtpd_tx_reset(struct smtpd_session *s)
{
    struct smtpd_tx *tx = &s->tx;
    free(tx->mail_from);
    free(tx->envid);
    for (size_t i = 0; i < tx->rcpt_count; i++) {
        free(tx->rcpts[i].addr);
        free(tx->rcpts[i].orcpt);
    }
    free(tx->rcpts);
    dir_snapshot_unref(tx->dir);
    buf_cleanup(&tx->msg);
    memset(tx, 0, sizeof(*tx));
    if (s->state == SMTPD_MAIL || s->state == SMTPD_DATA || s->state == SMTPD_BDAT)
        s->state = SMTPD_READY;
}

/* smtpd_free - the end of a session */
static void smtpd_free(struct smtpd_session *s)
{
    smtpd_commit_detach(s);
    smtpd_tx_reset(s);
    smtpd_data_free(s);
    if (s->bev)
        bufferevent_free(s->bev);
    if (s->prev)
        s->prev->next = s->next;
    else
        smtpd_sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->env->sessions--;
    free(s);
}

/* smtpd_close - close once the replies are out */
void smtpd_close(struct smtpd_session *s)
{
    s->closing = 1;
    bufferevent_disable(s->bev, EV_READ);
    /* inside smtpd_process the session must live on: it frees on the way out */
    if (!s->busy && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        smtpd_free(s);
}

static void smtpd_write_cb(struct bufferevent *bev, void *arg)
{
    struct smtpd_session *s = arg;
    (void)bev;
    if (s->closing && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        smtpd_free(s);
}

static void smtpd_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtpd_session *s = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        /* the TLS handshake finished (RFC 3207 §4.2: the session starts over) */
        SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
        s->tls = 1;
        s->state = SMTPD_GREETED;
        s->helo[0] = '\0';
        tls_describe(ssl, s->tls_info, sizeof(s->tls_info));
        if (s->conn->client_cert_name_count)
            s->cert_ok =
                tls_peer_matches(ssl, s->conn->client_cert_names, s->conn->client_cert_name_count,
                                 s->cert_name, sizeof(s->cert_name));
        log_info("connector=%s client=[%s]: STARTTLS %s%s%s%s", s->conn->name, s->client_ip,
                 s->tls_info, s->cert_name[0] ? ", certificate " : "", s->cert_name,
                 s->conn->client_cert_name_count ? (s->cert_ok ? " (accepted)" : " (refused)")
                                                 : "");
        smtpd_set_timeout(s, s->env->cfg->command_timeout);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        log_info("connector=%s client=[%s]: timeout in %s", s->conn->name, s->client_ip,
                 s->state == SMTPD_DATA || s->state == SMTPD_BDAT ? "DATA" : "command state");
        bufferevent_set_timeouts(s->bev, NULL, NULL);
        if (!s->closing) {
            smtpd_reply(s, "421 4.4.2 %s Error: timeout exceeded", s->env->cfg->hostname);
            smtpd_close(s);
        } else
            smtpd_free(s);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (s->state == SMTPD_TLS) {
            char why[256];
            tls_error(why, sizeof(why));
            log_info("connector=%s client=[%s]: TLS handshake failed: %s", s->conn->name,
                     s->client_ip, why);
        } else if (!s->closing)
            log_info("connector=%s client=[%s]: lost connection%s", s->conn->name, s->client_ip,
                     s->tx.mail_from ? " in a transaction" : "");
        smtpd_free(s);
    }
}

/* smtpd_count_ip - sessions from the same address */
static unsigned long smtpd_count_ip(const struct smtpd_session *me)
{
    unsigned long n = 0;
    for (const struct smtpd_session *s = smtpd_sessions; s; s = s->next)
        if (s != me && s->family == me->family && memcmp(s->addr, me->addr, 16) == 0)
            n++;
    return n;
}

/* smtpd_allowed - is the client inside one of the connector's networks? */
static int smtpd_allowed(const struct smtpd_session *s)
{
    for (size_t i = 0; i < s->conn->network_count; i++)
        if (cfg_network_match(&s->conn->networks[i], s->family, s->addr))
            return 1;
    return 0;
}

/* smtpd_accept_cb - a new connection */
static void smtpd_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                            int salen, void *arg)
{
    struct smtpd_server *srv = arg;
    struct smtpd_env *env = srv->env;
    struct smtpd_session *s = xcalloc(1, sizeof(*s));
    (void)l;
    (void)salen;

    s->srv = srv;
    s->env = env;
    s->conn = srv->conn;
    s->family = sa->sa_family;
    if (sa->sa_family == AF_INET)
        memcpy(s->addr, &((struct sockaddr_in *)sa)->sin_addr, 4);
    else
        memcpy(s->addr, &((struct sockaddr_in6 *)sa)->sin6_addr, 16);
    inet_ntop(s->family, s->addr, s->client_ip, sizeof(s->client_ip));
    s->bev = bufferevent_socket_new(env->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (s->bev == NULL) {
        evutil_closesocket(fd);
        free(s);
        return;
    }
    s->next = smtpd_sessions;
    if (smtpd_sessions)
        smtpd_sessions->prev = s;
    smtpd_sessions = s;
    env->sessions++;
    bufferevent_setcb(s->bev, smtpd_read_cb, smtpd_write_cb, smtpd_event_cb, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    smtpd_set_timeout(s, env->cfg->command_timeout);

    const char *host = env->cfg->hostname;
    if (!smtpd_allowed(s)) {
        log_warn("connector=%s client=[%s]: refused: not in the connector's networks",
                 s->conn->name, s->client_ip);
        smtpd_reply(s, "554 5.7.1 %s Access denied: [%s] may not relay through this service", host,
                    s->client_ip);
        smtpd_close(s);
        return;
    }
    if ((long)env->sessions > env->cfg->max_connections) {
        log_warn("connector=%s client=[%s]: refused: %lu sessions", s->conn->name, s->client_ip,
                 env->sessions - 1);
        smtpd_reply(s, "421 4.7.0 %s Error: too many connections", host);
        smtpd_close(s);
        return;
    }
    if ((long)smtpd_count_ip(s) >= env->cfg->max_connections_per_ip) {
        log_warn("connector=%s client=[%s]: refused: too many connections from this address",
                 s->conn->name, s->client_ip);
        smtpd_reply(s, "421 4.7.0 %s Error: too many connections from your address", host);
        smtpd_close(s);
        return;
    }
    if (env->stopping) {
        smtpd_reply(s, "421 4.3.2 %s Service shutting down", host);
        smtpd_close(s);
        return;
    }
    log_info("connector=%s client=[%s]: connect", s->conn->name, s->client_ip);
    smtpd_reply(s, "220 %s ESMTP coex", host);
}

/* --- commands --------------------------------------------------------------------- */

static void cmd_ehlo(struct smtpd_session *s, const char *arg, int esmtp)
{
    const struct coex_config *cfg = s->env->cfg;
    if (*arg == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    /* the name goes into Received: no control bytes (a bare CR would end up in the header) */
    for (const unsigned char *c = (const unsigned char *)arg; *c; c++)
        if (*c < 0x20 || *c == 0x7f) {
            smtpd_reply(s, "501 5.5.4 Error: invalid character in %s argument",
                        esmtp ? "EHLO" : "HELO");
            return;
        }
    snprintf(s->helo, sizeof(s->helo), "%s", arg);
    s->esmtp = esmtp;
    smtpd_tx_reset(s);
    s->state = SMTPD_READY;
    if (!esmtp) {
        smtpd_reply(s, "250 %s", cfg->hostname);
        return;
    }
    smtpd_reply(s, "250-%s", cfg->hostname);
    smtpd_reply(s, "250-PIPELINING");
    smtpd_reply(s, "250-SIZE %ld", cfg->message_size_limit);
    if (s->conn->starttls != CFG_STARTTLS_OFF && !s->tls && s->srv->ssl_ctx)
        smtpd_reply(s, "250-STARTTLS");
    smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
    smtpd_reply(s, "250-8BITMIME");
    smtpd_reply(s, "250-DSN");
    smtpd_reply(s, "250-SMTPUTF8");
    smtpd_reply(s, "250 CHUNKING");
}

static void cmd_starttls(struct smtpd_session *s, const char *arg)
{
    if (s->conn->starttls == CFG_STARTTLS_OFF || s->srv->ssl_ctx == NULL) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return;
    }
    if (s->tls) {
        smtpd_reply(s, "503 5.5.1 Error: TLS already active");
        return;
    }
    if (*arg) {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return;
    }
    SSL *ssl = SSL_new(s->srv->ssl_ctx);
    if (ssl == NULL) {
        smtpd_reply(s, "454 4.7.0 TLS not available due to local problem");
        return;
    }
    smtpd_reply(s, "220 2.0.0 Ready to start TLS");
    /* RFC 3207 §4.2 / CVE-2011-0411: nothing sent before the handshake counts */
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t pending = evbuffer_get_length(in);
    if (pending)
        log_warn("connector=%s client=[%s]: discarded %zu bytes pipelined after STARTTLS",
                 s->conn->name, s->client_ip, pending);
    evbuffer_drain(in, pending);
    smtpd_tx_reset(s);
    struct bufferevent *tls = bufferevent_openssl_filter_new(
        s->env->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (tls == NULL) {
        SSL_free(ssl);
        smtpd_close(s);
        return;
    }
    s->bev = tls;
    s->state = SMTPD_TLS;
    bufferevent_setcb(s->bev, smtpd_read_cb, smtpd_write_cb, smtpd_event_cb, s);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    smtpd_set_timeout(s, s->env->cfg->command_timeout);
}

/* smtpd_may_relay - STARTTLS and certificate rules of the connector */
static int smtpd_may_relay(struct smtpd_session *s)
{
    if (s->conn->starttls == CFG_STARTTLS_REQUIRE && !s->tls) {
        smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
        return 0;
    }
    if (s->conn->client_cert_name_count && !s->cert_ok) {
        log_warn("connector=%s client=[%s]: relay refused: %s", s->conn->name, s->client_ip,
                 s->cert_name[0] ? "certificate name not allowed" : "no valid client certificate");
        smtpd_reply(s, "554 5.7.1 Relay access denied: a trusted client certificate is required");
        return 0;
    }
    return 1;
}

static void cmd_mail(struct smtpd_session *s, const char *arg)
{
    const struct coex_config *cfg = s->env->cfg;
    struct smtpd_tx *tx = &s->tx;
    struct smtpproto_span path;
    struct smtpproto_mail mp;
    size_t len = strlen(arg), rest;

    if (s->state == SMTPD_GREETED) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return;
    }
    if (s->state != SMTPD_READY) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (s->env->stopping) {
        smtpd_reply(s, "421 4.3.2 %s Service shutting down", cfg->hostname);
        smtpd_close(s);
        return;
    }
    if (!smtpd_may_relay(s))
        return;
    if (strncasecmp(arg, "FROM:", 5) != 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    if (smtpproto_parse_path(arg + 5, len - 5, &path, &rest) < 0) {
        smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
        return;
    }
    const char *addr = arg + 5 + path.off, *params = arg + 5 + rest;
    /* parameters first: SMTPUTF8 decides whether a UTF-8 address is allowed */
    switch (smtpproto_mail_params(params, len - 5 - rest, cfg->message_size_limit, &mp)) {
    case SMTPPROTO_OK:
        break;
    case SMTPPROTO_BAD_SIZE:
        smtpd_reply(s, "501 5.5.4 Bad SIZE parameter");
        return;
    case SMTPPROTO_SIZE_EXCEEDED:
        smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
        return;
    default:
        smtpd_reply(s, "555 5.5.4 Unsupported option: %.*s", (int)mp.bad.len, params + mp.bad.off);
        return;
    }
    enum smtpproto_addr check =
        path.len ? smtpproto_addr_check(addr, path.len, mp.smtputf8) : SMTPPROTO_ADDR_OK;
    if (check != SMTPPROTO_ADDR_OK) {
        if (check == SMTPPROTO_ADDR_NEEDS_UTF8)
            smtpd_reply(s, "553 5.6.7 Non-ASCII sender address requires SMTPUTF8");
        else
            smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
        return;
    }
    tx->mail_from = xstrndup(addr, path.len);
    tx->envid = mp.has_envid ? xstrndup(params + mp.envid.off, mp.envid.len) : NULL;
    tx->smtputf8 = mp.smtputf8;
    tx->body_8bit = mp.body_8bit;
    tx->ret_full = mp.ret_full;
    tx->size_declared = mp.size;
    tx->dir = dir_snapshot_ref(s->env->dir);
    buf_init(&tx->msg, (size_t)cfg->message_size_limit);
    s->state = SMTPD_MAIL;
    smtpd_reply(s, "250 2.1.0 Ok");
}

static void cmd_rcpt(struct smtpd_session *s, const char *arg)
{
    struct smtpd_tx *tx = &s->tx;
    struct smtpproto_span path;
    struct smtpproto_rcpt rp;
    size_t len = strlen(arg), rest;

    if (s->state != SMTPD_MAIL) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (strncasecmp(arg, "TO:", 3) != 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (smtpproto_parse_path(arg + 3, len - 3, &path, &rest) < 0 || path.len == 0) {
        smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    if ((long)tx->rcpt_count >= s->env->cfg->max_recipients) {
        smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        return;
    }
    const char *addr = arg + 3 + path.off, *params = arg + 3 + rest;
    if (smtpproto_rcpt_params(params, len - 3 - rest, &rp) != SMTPPROTO_OK) {
        smtpd_reply(s, "555 5.5.4 Unsupported option: %.*s", (int)rp.bad.len, params + rp.bad.off);
        return;
    }
    switch (smtpproto_addr_check(addr, path.len, tx->smtputf8)) {
    case SMTPPROTO_ADDR_OK:
        break;
    case SMTPPROTO_ADDR_NEEDS_UTF8:
        smtpd_reply(s, "553 5.6.7 Non-ASCII recipient address requires SMTPUTF8");
        return;
    default:
        smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
        return;
    }
    if (tx->rcpt_count == tx->rcpt_cap) {
        tx->rcpt_cap = tx->rcpt_cap ? tx->rcpt_cap * 2 : 8;
        tx->rcpts = xrealloc(tx->rcpts, tx->rcpt_cap * sizeof(*tx->rcpts));
    }
    tx->rcpts[tx->rcpt_count++] = (struct smtpd_rcpt){
        xstrndup(addr, path.len),
        rp.has_orcpt ? xstrndup(params + rp.orcpt.off, rp.orcpt.len) : NULL, rp.notify};
    smtpd_reply(s, "250 2.1.5 Ok");
}

static void cmd_data(struct smtpd_session *s, const char *arg)
{
    if (*arg) {
        smtpd_reply(s, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (s->state != SMTPD_MAIL) {
        smtpd_reply(s, "503 5.5.1 Error: need RCPT command");
        return;
    }
    if (s->tx.rcpt_count == 0) {
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        return;
    }
    if (s->tx.bdat_used) {
        smtpd_reply(s, "503 5.5.1 Error: DATA after BDAT");
        return;
    }
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    s->state = SMTPD_DATA;
    smtpd_data_begin(s);
    smtpd_set_timeout(s, s->env->cfg->data_timeout);
}

static void cmd_bdat(struct smtpd_session *s, const char *arg)
{
    long size;
    int last;
    if (smtpproto_bdat_args(arg, strlen(arg), &size, &last) < 0) {
        /* without a valid size the byte stream cannot be followed: close */
        smtpd_reply(s, "501 5.5.4 Syntax: BDAT size [LAST]");
        smtpd_close(s);
        return;
    }
    struct smtpd_tx *tx = &s->tx;
    tx->bdat_failed = s->state != SMTPD_MAIL || tx->rcpt_count == 0;
    tx->bdat_greeted = s->state == SMTPD_GREETED;
    if (s->state == SMTPD_MAIL && !tx->bdat_used)
        smtpd_data_begin(s);
    tx->bdat_used = 1;
    tx->bdat_left = size;
    tx->bdat_last = last;
    s->state = SMTPD_BDAT;
    smtpd_set_timeout(s, s->env->cfg->data_timeout);
}

static void cmd_rset(struct smtpd_session *s, const char *arg)
{
    (void)arg;
    smtpd_tx_reset(s);
    smtpd_reply(s, "250 2.0.0 Ok");
}

static void cmd_noop(struct smtpd_session *s, const char *arg)
{
    (void)arg;
    smtpd_reply(s, "250 2.0.0 Ok");
}

static void cmd_quit(struct smtpd_session *s, const char *arg)
{
    (void)arg;
    smtpd_reply(s, "221 2.0.0 Bye");
    smtpd_close(s);
}

static void cmd_vrfy(struct smtpd_session *s, const char *arg)
{
    (void)arg;
    smtpd_reply(s, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_help(struct smtpd_session *s, const char *arg)
{
    (void)arg;
    smtpd_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP"
                   " STARTTLS");
}

static void cmd_ehlo_cmd(struct smtpd_session *s, const char *arg)
{
    cmd_ehlo(s, arg, 1);
}

static void cmd_helo_cmd(struct smtpd_session *s, const char *arg)
{
    cmd_ehlo(s, arg, 0);
}

static const struct {
    enum smtpproto_verb verb;
    void (*handler)(struct smtpd_session *s, const char *arg);
} smtpd_commands[] = {
    {SMTPPROTO_EHLO, cmd_ehlo_cmd}, {SMTPPROTO_HELO, cmd_helo_cmd},
    {SMTPPROTO_MAIL, cmd_mail},     {SMTPPROTO_RCPT, cmd_rcpt},
    {SMTPPROTO_DATA, cmd_data},     {SMTPPROTO_BDAT, cmd_bdat},
    {SMTPPROTO_RSET, cmd_rset},     {SMTPPROTO_NOOP, cmd_noop},
    {SMTPPROTO_QUIT, cmd_quit},     {SMTPPROTO_VRFY, cmd_vrfy},
    {SMTPPROTO_HELP, cmd_help},     {SMTPPROTO_STARTTLS, cmd_starttls},
};

/* smtpd_command - one command line (CRLF removed, NUL-terminated) */
static void smtpd_command(struct smtpd_session *s, char *line, size_t len)
{
    size_t arg_off;
    enum smtpproto_verb verb = smtpproto_command(line, len, &arg_off);
    if (verb == SMTPPROTO_NUL) {
        smtpd_reply(s, "500 5.5.2 Error: NUL byte in command");
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(smtpd_commands); i++) {
        if (smtpd_commands[i].verb == verb) {
            smtpd_commands[i].handler(s, line + arg_off);
            return;
        }
    }
    smtpd_reply(s, "502 5.5.2 Error: command not recognized");
}

/* smtpd_process - run what the input buffer holds, as far as the state allows */
static void smtpd_process_input(struct smtpd_session *s);

/* smtpd_process - run the input; the session may be gone afterwards */
static void smtpd_process(struct smtpd_session *s)
{
    s->busy++;
    smtpd_process_input(s);
    s->busy--;
    if (!s->busy && s->closing && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        smtpd_free(s);
}

static void smtpd_process_input(struct smtpd_session *s)
{
    while (!s->closing && !s->waiting && s->state != SMTPD_TLS) {
        struct evbuffer *in = bufferevent_get_input(s->bev); /* STARTTLS swaps bev */
        size_t avail = evbuffer_get_length(in);
        if (s->state == SMTPD_BDAT && s->tx.bdat_left == 0) {
            smtpd_message_end(s); /* "BDAT 0 LAST" (RFC 3030 §2): no bytes to wait for */
            continue;
        }
        if (avail == 0)
            return;
        if (s->state == SMTPD_DATA) {
            int done = 0;
            struct evbuffer_iovec vec;
            if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1)
                return;
            size_t used = smtpd_data_consume(s, vec.iov_base, vec.iov_len, &done);
            evbuffer_drain(in, used);
            if (done)
                smtpd_message_end(s);
            continue;
        }
        if (s->state == SMTPD_BDAT) {
            struct evbuffer_iovec vec;
            if (evbuffer_peek(in, -1, NULL, &vec, 1) < 1)
                return;
            size_t take =
                vec.iov_len < (size_t)s->tx.bdat_left ? vec.iov_len : (size_t)s->tx.bdat_left;
            smtpd_bdat_consume(s, vec.iov_base, take);
            evbuffer_drain(in, take);
            s->tx.bdat_left -= (long)take;
            if (s->tx.bdat_left == 0)
                smtpd_message_end(s); /* a chunk is complete; LAST ends the message */
            continue;
        }
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        if (eol.pos < 0) {
            if (avail > LIMIT_SMTP_LINE) {
                /* an over-long line: refuse it once, discard until its end */
                if (!s->skip_line)
                    smtpd_reply(s, "500 5.5.2 Error: line too long");
                s->skip_line = 1;
                evbuffer_drain(in, avail);
            }
            return;
        }
        size_t len = (size_t)eol.pos;
        if (s->skip_line || len > LIMIT_SMTP_LINE) {
            if (!s->skip_line)
                smtpd_reply(s, "500 5.5.2 Error: line too long");
            s->skip_line = 0;
            evbuffer_drain(in, len + eol_len);
            continue;
        }
        char line[LIMIT_SMTP_LINE + 1];
        evbuffer_remove(in, line, len);
        evbuffer_drain(in, eol_len);
        line[len] = '\0';
        smtpd_command(s, line, len);
    }
}

static void smtpd_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    smtpd_process(arg);
}

/* smtpd_resume - a commit finished: go on with pipelined input */
void smtpd_resume(struct smtpd_session *s)
{
    s->waiting = 0;
    if (s->closing)
        return;
    bufferevent_enable(s->bev, EV_READ);
    smtpd_set_timeout(s, s->env->cfg->command_timeout);
    smtpd_process(s);
}

/* --- listeners -------------------------------------------------------------------- */

static void smtpd_accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct smtpd_server *srv = arg;
    (void)l;
    log_error("connector=%s: accept failed: %s", srv->conn->name, strerror(errno));
}

/* smtpd_listener_new - bind and listen */
struct smtpd_server *smtpd_listener_new(struct smtpd_env *env, const struct cfg_connector *conn,
                                        SSL_CTX *ssl_ctx, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char text[300];
    snprintf(text, sizeof(text), "%s%s%s:%d", strchr(conn->listen_host, ':') ? "[" : "",
             conn->listen_host, strchr(conn->listen_host, ':') ? "]" : "", conn->listen_port);
    memset(&ss, 0, sizeof(ss));
    if (evutil_parse_sockaddr_port(text, (struct sockaddr *)&ss, &sslen) < 0) {
        snprintf(err, errlen, "connector %s: bad listen address %s", conn->name, text);
        return NULL;
    }
    struct smtpd_server *srv = xcalloc(1, sizeof(*srv));
    srv->env = env;
    srv->conn = conn;
    srv->ssl_ctx = ssl_ctx;
    srv->listener = evconnlistener_new_bind(env->base, smtpd_accept_cb, srv,
                                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
                                            (struct sockaddr *)&ss, sslen);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "connector %s: cannot listen on %s: %s", conn->name, text,
                 strerror(errno));
        free(srv);
        return NULL;
    }
    evconnlistener_set_error_cb(srv->listener, smtpd_accept_error_cb);
    return srv;
}

void smtpd_listener_set(struct smtpd_server *srv, const struct cfg_connector *conn,
                        SSL_CTX *ssl_ctx)
{
    /* sessions in flight keep the connector they started with until they end */
    srv->conn = conn;
    srv->ssl_ctx = ssl_ctx;
    for (struct smtpd_session *s = smtpd_sessions; s; s = s->next)
        if (s->srv == srv)
            s->conn = conn;
}

void smtpd_listener_disable(struct smtpd_server *srv)
{
    evconnlistener_disable(srv->listener);
}

void smtpd_listener_free(struct smtpd_server *srv)
{
    if (srv == NULL)
        return;
    evconnlistener_free(srv->listener);
    free(srv);
}

/* smtpd_close_all - shutdown: tell every client and close */
void smtpd_close_all(struct smtpd_env *env)
{
    struct smtpd_session *s = smtpd_sessions, *next;
    for (; s; s = next) {
        next = s->next;
        if (s->closing)
            continue;
        smtpd_reply(s, "421 4.3.2 %s Service shutting down", env->cfg->hostname);
        smtpd_close(s);
    }
}
