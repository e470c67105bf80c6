/*
 * smtpc - the SMTP client's connection: resolving (MX, then addresses through
 * evdns), connecting, STARTTLS (RFC 3207) with certificate and name checks,
 * timeouts, falling over to the next address and MX host, and delivering the
 * callbacks from their own event so the caller may free us from one.
 *
 * TLS: the route's SSL_CTX (tls_client_ctx) checks the chain; here SNI is set
 * to the host we connect to and SSL_set1_host (or the IP address for a
 * numeric host) makes OpenSSL check the name: the route's tls_verify_name when
 * set, else that host (for mx: the MX host name, as Postfix's "verify" level).
 * Data the server sends after its 220 to STARTTLS and before the handshake is
 * refused (the STARTTLS command injection of CVE-2011-0411).
 *
 * Does not: parse replies or run transactions (smtpc_tx.c), look up MX
 * records (smtpc_mx.c).
 */
#include "smtpc_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "util.h"

/* a pending evdns_getaddrinfo: outlives us when cancelled, as evdns calls back later */
struct smtpc_gai {
    struct smtpc *c; /* NULL once cancelled */
    struct evdns_getaddrinfo_request *req;
};

static void smtpc_next_host(struct smtpc *c);
static void smtpc_next_addr(struct smtpc *c);

/* smtpc_local - a reply of our own (no answer from the peer) */
void smtpc_local(struct smtpc_reply *r, const char *status, const char *fmt, ...)
{
    va_list ap;
    r->code = 0;
    snprintf(r->status, sizeof(r->status), "%s", status);
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
}

/* smtpc_reply_permanent - the class of the status decides */
int smtpc_reply_permanent(const struct smtpc_reply *r)
{
    return r->status[0] == '5';
}

/* smtpc_timeouts - read and write timeouts of the current bufferevent (0: none) */
void smtpc_timeouts(struct smtpc *c, int read_seconds, int write_seconds)
{
    struct timeval rt = {read_seconds, 0}, wt = {write_seconds, 0};
    bufferevent_set_timeouts(c->bev, read_seconds ? &rt : NULL, write_seconds ? &wt : NULL);
}

/* smtpc_notify - schedule callbacks (run from notify_ev) */
void smtpc_notify(struct smtpc *c, unsigned what)
{
    c->pending |= what;
    event_active(c->notify_ev, EV_TIMEOUT, 1);
}

static void smtpc_destroy(struct smtpc *c)
{
    smtpc_mx_cancel(c->mx);
    if (c->gai) {
        c->gai->c = NULL;
        if (c->gai->req)
            evdns_getaddrinfo_cancel(c->gai->req);
    }
    if (c->bev)
        bufferevent_free(c->bev);
    event_free(c->notify_ev);
    SSL_CTX_free(c->tls);
    for (size_t i = 0; i < c->host_count; i++)
        free(c->hosts[i]);
    free(c->host);
    free(c->helo_name);
    free(c->verify_name);
    free(c->results);
    free(c->accepted);
    free(c->final);
    free(c);
}

/* smtpc_notify_cb - run the pending callbacks: DONE first, then READY or CLOSED */
static void smtpc_notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtpc *c = arg;
    (void)fd;
    (void)what;
    unsigned pending = c->pending;
    c->pending = 0;
    struct smtpc_result res = {.relay = c->relay,
                               .tls = c->tls_on ? c->tls_desc : NULL,
                               .was_ready = c->was_ready,
                               .session = c->session};
    c->in_callback = 1;
    if (pending & SMTPC_N_DONE) {
        res.rcpts = c->results;
        res.rcpt_count = c->tx ? c->tx->rcpt_count : 0;
        c->tx = NULL;
        c->cb(c->arg, c, SMTPC_DONE, &res);
        res.rcpts = NULL;
        res.rcpt_count = 0;
    }
    if (!c->free_requested && (pending & SMTPC_N_CLOSED))
        c->cb(c->arg, c, SMTPC_CLOSED, &res);
    else if (!c->free_requested && (pending & SMTPC_N_READY) && c->state == SMTPC_S_READY &&
             c->tx == NULL)
        c->cb(c->arg, c, SMTPC_READY, &res);
    c->in_callback = 0;
    if (c->free_requested)
        smtpc_destroy(c);
}

/* smtpc_close - drop the connection and report CLOSED (session says why) */
void smtpc_close(struct smtpc *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->state = SMTPC_S_DEAD;
    smtpc_notify(c, SMTPC_N_CLOSED);
}

/* smtpc_setup_failed - this address did not work out (session says why): try the next */
void smtpc_setup_failed(struct smtpc *c)
{
    if (c->bev)
        bufferevent_free(c->bev);
    c->bev = NULL;
    c->tls_on = 0;
    c->ext = 0;
    c->size_max = 0;
    if (c->addr_next < c->addr_count || c->host_next < c->host_count)
        log_info("%s; trying the next address", c->session.text);
    smtpc_next_addr(c);
}

/* smtpc_read_cb - replies arrived */
static void smtpc_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    smtpc_read(arg);
}

/* smtpc_write_cb - the output drained: more of the message, if we are sending it */
static void smtpc_write_cb(struct bufferevent *bev, void *arg)
{
    struct smtpc *c = arg;
    (void)bev;
    if (c->state == SMTPC_S_BODY)
        smtpc_pump(c);
}

/* smtpc_tls_reason - why the handshake failed, for logs and bounces */
static void smtpc_tls_reason(struct smtpc *c, char *out, size_t outsize)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    long verify = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (verify != X509_V_OK)
        snprintf(out, outsize, "certificate verification failed: %s",
                 X509_verify_cert_error_string(verify));
    else if (e != 0)
        ERR_error_string_n(e, out, outsize);
    else
        snprintf(out, outsize, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    while (bufferevent_get_openssl_error(c->bev) != 0)
        ;
    ERR_clear_error();
}

/* smtpc_tls_done - handshake complete: EHLO again (RFC 3207 §4.2) */
static void smtpc_tls_done(struct smtpc *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    if (c->tls_verify && SSL_get_verify_result(ssl) != X509_V_OK) {
        smtpc_local(&c->session, "4.7.5", "TLS with %s: certificate not verified", c->relay);
        smtpc_setup_failed(c);
        return;
    }
    c->tls_on = 1;
    tls_describe(ssl, c->tls_desc, sizeof(c->tls_desc));
    c->ext = 0;
    c->size_max = 0;
    c->state = SMTPC_S_EHLO_TLS;
    smtpc_timeouts(c, SMTPC_TIMEOUT_COMMAND, SMTPC_TIMEOUT_COMMAND);
    smtpc_write(c, "EHLO %s\r\n", c->helo_name);
}

/* smtpc_is_numeric - an IPv4 or IPv6 address, not a name */
static int smtpc_is_numeric(const char *host)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
}

static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg);

/* smtpc_start_tls - wrap the connection in a TLS filter; 0 or -1 (session says why) */
int smtpc_start_tls(struct smtpc *c)
{
    const char *name = c->verify_name ? c->verify_name : c->cur_host;
    SSL *ssl = SSL_new(c->tls);
    if (ssl == NULL)
        goto fail;
    if (!smtpc_is_numeric(c->cur_host) && SSL_set_tlsext_host_name(ssl, c->cur_host) != 1)
        goto fail;
    if (c->tls_verify) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int ok = smtpc_is_numeric(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name)
                                        : SSL_set1_host(ssl, name);
        if (ok != 1)
            goto fail;
    }
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    struct bufferevent *tls_bev = bufferevent_openssl_filter_new(
        c->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (tls_bev == NULL)
        goto fail;
    c->bev = tls_bev; /* owns ssl and the plain bufferevent now */
    bufferevent_openssl_set_allow_dirty_shutdown(tls_bev, 1);
    bufferevent_setcb(tls_bev, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
    bufferevent_enable(tls_bev, EV_READ | EV_WRITE);
    smtpc_timeouts(c, SMTPC_TIMEOUT_TLS, SMTPC_TIMEOUT_TLS);
    c->state = SMTPC_S_HANDSHAKE;
    return 0;
fail:
    SSL_free(ssl);
    char why[256];
    tls_error(why, sizeof(why));
    smtpc_local(&c->session, "4.7.5", "cannot start TLS with %s: %s", c->relay, why);
    return -1;
}

/* smtpc_phase - what we were doing, for "lost connection ... while ..." */
static const char *smtpc_phase(enum smtpc_state s)
{
    switch (s) {
    case SMTPC_S_GREETING:
        return "receiving the initial server greeting";
    case SMTPC_S_EHLO:
    case SMTPC_S_HELO:
    case SMTPC_S_EHLO_TLS:
        return "performing the EHLO handshake";
    case SMTPC_S_STARTTLS:
        return "sending STARTTLS";
    case SMTPC_S_TX:
        return "sending the envelope";
    case SMTPC_S_BODY:
        return "sending the message";
    case SMTPC_S_DOT:
        return "sending end of data -- message may be sent more than once";
    case SMTPC_S_RSET:
        return "sending RSET";
    default:
        return "idle";
    }
}

/* smtpc_event_cb - connected, handshake done, timeout, error or end of file */
static void smtpc_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtpc *c = arg;
    struct smtpc_reply why;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->state == SMTPC_S_HANDSHAKE) {
            smtpc_tls_done(c);
        } else if (c->state == SMTPC_S_CONNECT) {
            c->state = SMTPC_S_GREETING;
            smtpc_timeouts(c, SMTPC_TIMEOUT_GREETING, SMTPC_TIMEOUT_COMMAND);
            bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        }
        return;
    }
    int timeout = (what & BEV_EVENT_TIMEOUT) != 0;
    switch (c->state) {
    case SMTPC_S_READY:
        if (timeout) { /* idle long enough: say goodbye */
            c->state = SMTPC_S_QUIT;
            smtpc_timeouts(c, SMTPC_TIMEOUT_QUIT, SMTPC_TIMEOUT_QUIT);
            bufferevent_enable(c->bev, EV_READ);
            smtpc_write(c, "QUIT\r\n");
            return;
        }
        smtpc_local(&c->session, "4.4.2", "connection closed by %s while idle", c->relay);
        smtpc_close(c);
        return;
    case SMTPC_S_QUIT:
        smtpc_local(&c->session, "2.0.0", "QUIT");
        c->session.code = 221;
        smtpc_close(c);
        return;
    case SMTPC_S_CONNECT:
        if (timeout)
            smtpc_local(&c->session, "4.4.1", "connect to %s: timed out", c->relay);
        else
            smtpc_local(&c->session, "4.4.1", "connect to %s: %s", c->relay,
                        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        smtpc_setup_failed(c);
        return;
    case SMTPC_S_HANDSHAKE: {
        char reason[256] = "timed out";
        if (!timeout)
            smtpc_tls_reason(c, reason, sizeof(reason));
        smtpc_local(&c->session, "4.7.5", "TLS handshake with %s failed: %s", c->relay, reason);
        smtpc_setup_failed(c);
        return;
    }
    default:
        break;
    }
    smtpc_local(&why, "4.4.2", "%s with %s while %s", timeout ? "timeout" : "lost connection",
                c->relay, smtpc_phase(c->state));
    smtpc_abort(c, &why);
}

/* smtpc_abort - the connection cannot go on: next address, or end the transaction and close */
void smtpc_abort(struct smtpc *c, const struct smtpc_reply *why)
{
    c->session = *why;
    if (c->state < SMTPC_S_READY) {
        smtpc_setup_failed(c);
        return;
    }
    if (c->state == SMTPC_S_TX || c->state == SMTPC_S_BODY || c->state == SMTPC_S_DOT)
        smtpc_lost_tx(c, why);
    smtpc_close(c);
}

/* smtpc_next_addr - connect to the next address of this host, or move to the next host */
static void smtpc_next_addr(struct smtpc *c)
{
    while (c->addr_next < c->addr_count) {
        size_t i = c->addr_next++;
        const struct sockaddr *sa = (const struct sockaddr *)&c->addrs[i];
        char ip[INET6_ADDRSTRLEN] = "?";
        const void *raw = sa->sa_family == AF_INET6
                              ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                              : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
        inet_ntop(sa->sa_family, raw, ip, sizeof(ip));
        snprintf(c->relay, sizeof(c->relay), "%s[%s]:%d", c->cur_host, ip, c->port);
        c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (c->bev == NULL) {
            smtpc_local(&c->session, "4.3.0", "cannot create a socket for %s", c->relay);
            continue;
        }
        bufferevent_setcb(c->bev, smtpc_read_cb, smtpc_write_cb, smtpc_event_cb, c);
        /* a reply cut off by the last address (lost, malformed, too long) is not this one's */
        smtpreply_init(&c->reply);
        c->state = SMTPC_S_CONNECT;
        smtpc_timeouts(c, SMTPC_TIMEOUT_CONNECT, SMTPC_TIMEOUT_CONNECT);
        if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&c->addrs[i],
                                       (int)c->addr_lens[i]) == 0)
            return;
        smtpc_local(&c->session, "4.4.1", "connect to %s: %s", c->relay, strerror(errno));
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    smtpc_next_host(c);
}

/* smtpc_addrs - addresses of the current host arrived (or not) */
static void smtpc_addrs(struct smtpc *c, int err, struct evutil_addrinfo *res)
{
    c->addr_count = c->addr_next = 0;
    if (err != 0) {
        smtpc_local(&c->session, "4.4.3", "cannot find the address of %s: %s", c->cur_host,
                    evutil_gai_strerror(err));
    }
    for (struct evutil_addrinfo *ai = res; ai && c->addr_count < SMTPC_MAX_ADDRS;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(c->addrs[0]))
            continue;
        memcpy(&c->addrs[c->addr_count], ai->ai_addr, ai->ai_addrlen);
        c->addr_lens[c->addr_count++] = (socklen_t)ai->ai_addrlen;
    }
    if (res)
        evutil_freeaddrinfo(res);
    smtpc_next_addr(c);
}

/* smtpc_gai_done - evdns answered */
static void smtpc_gai_done(int err, struct evutil_addrinfo *res, void *arg)
{
    struct smtpc_gai *ticket = arg;
    struct smtpc *c = ticket->c;
    free(ticket);
    if (c == NULL) { /* cancelled */
        if (res)
            evutil_freeaddrinfo(res);
        return;
    }
    c->gai = NULL;
    smtpc_addrs(c, err, res);
}

/* smtpc_next_host - resolve the next host, or report that none worked */
static void smtpc_next_host(struct smtpc *c)
{
    if (c->host_next >= c->host_count) {
        if (c->session.status[0] == '\0')
            smtpc_local(&c->session, "4.4.1", "no host to connect to for %s", c->host);
        c->state = SMTPC_S_DEAD;
        smtpc_notify(c, SMTPC_N_CLOSED);
        return;
    }
    c->cur_host = c->hosts[c->host_next++];
    snprintf(c->relay, sizeof(c->relay), "%s", c->cur_host);
    c->state = SMTPC_S_RESOLVE;
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    char port[16];
    snprintf(port, sizeof(port), "%d", c->port);
    if (c->dns == NULL) { /* no resolver given: the blocking one (numeric hosts, tests) */
        struct evutil_addrinfo *res = NULL;
        int err = evutil_getaddrinfo(c->cur_host, port, &hints, &res);
        smtpc_addrs(c, err, res);
        return;
    }
    struct smtpc_gai *ticket = xcalloc(1, sizeof(*ticket));
    ticket->c = c;
    c->gai = ticket;
    struct evdns_getaddrinfo_request *req =
        evdns_getaddrinfo(c->dns, c->cur_host, port, &hints, smtpc_gai_done, ticket);
    if (c->gai == ticket) /* not answered at once */
        ticket->req = req;
}

/* smtpc_mx_done - the MX hosts, best first */
static void smtpc_mx_done(void *arg, int status, char *const *hosts, size_t count)
{
    struct smtpc *c = arg;
    c->mx = NULL;
    if (status == 1)
        smtpc_local(&c->session, "5.4.4", "%s does not accept mail (no such domain, or null MX)",
                    c->host);
    else if (status < 0)
        smtpc_local(&c->session, "4.4.3", "MX lookup for %s failed (temporary)", c->host);
    for (size_t i = 0; status == 0 && i < count && c->host_count < SMTPC_MAX_MX; i++)
        c->hosts[c->host_count++] = xstrdup(hosts[i]);
    smtpc_next_host(c);
}

/* smtpc_new - copy the parameters and start */
struct smtpc *smtpc_new(struct event_base *base, struct evdns_base *dns,
                        const struct smtpc_params *params, smtpc_fn *cb, void *arg)
{
    struct smtpc *c = xcalloc(1, sizeof(*c));
    c->base = base;
    c->dns = dns;
    c->hop = params->hop;
    c->host = xstrdup(params->host);
    c->port = params->port;
    c->helo_name = xstrdup(params->helo_name);
    c->tls = params->tls;
    if (c->tls)
        SSL_CTX_up_ref(c->tls);
    c->tls_required = params->tls_required;
    c->tls_verify = params->tls_verify;
    c->verify_name = params->verify_name ? xstrdup(params->verify_name) : NULL;
    c->cb = cb;
    c->arg = arg;
    snprintf(c->relay, sizeof(c->relay), "%s", c->host);
    c->notify_ev = event_new(base, -1, 0, smtpc_notify_cb, c);
    if (c->notify_ev == NULL) {
        log_error("smtpc: cannot create an event");
        smtpc_destroy(c);
        return NULL;
    }
    c->state = SMTPC_S_RESOLVE;
    if (c->hop == SMTPC_HOP_MX) {
        c->mx = smtpc_mx_lookup(base, c->host, smtpc_mx_done, c);
        if (c->mx == NULL) {
            smtpc_local(&c->session, "4.3.0", "cannot look up the MX hosts of %s", c->host);
            c->state = SMTPC_S_DEAD;
            smtpc_notify(c, SMTPC_N_CLOSED);
        }
        return c;
    }
    c->hosts[c->host_count++] = xstrdup(c->host);
    smtpc_next_host(c);
    return c;
}

/* smtpc_free - close now; from a callback, once it returns */
void smtpc_free(struct smtpc *c)
{
    if (c == NULL)
        return;
    if (c->in_callback) {
        c->free_requested = 1;
        return;
    }
    smtpc_destroy(c);
}
