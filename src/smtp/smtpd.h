/*
 * smtpd - the ESMTP server side: one session per client connection on a
 * connector, from greeting to QUIT.
 *
 * Implements RFC 5321 (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, VRFY
 * answered 252, HELP), RFC 3207 STARTTLS, RFC 1870 SIZE, RFC 2920 PIPELINING,
 * RFC 6152 8BITMIME, RFC 6531 SMTPUTF8, RFC 2034 ENHANCEDSTATUSCODES,
 * RFC 3461 DSN parameters (kept and passed on), RFC 3030 CHUNKING (BDAT).
 *
 * A message is rewritten (rewrite_header and the envelope) before it is
 * accepted, then handed to the spool; "250 2.0.0 Ok: queued as ID" is sent
 * only from the spool's commit callback, after fdatasync. While a message is
 * being committed the session reads no further commands.
 *
 * Security: a client outside the connector's networks gets 554 5.7.1 and is
 * disconnected; a connector that requires a client certificate refuses MAIL
 * (554 5.7.1) until STARTTLS with a verified certificate whose name matches;
 * input pipelined after STARTTLS is discarded; DATA ends only at CRLF.CRLF
 * and a bare LF or CR anywhere in DATA or BDAT fails the message with
 * 550 5.6.11 (SMTP smuggling).
 */
#ifndef COEX_SMTPD_H
#define COEX_SMTPD_H

#include <openssl/ssl.h>

#include "cfg.h"
#include "dir.h"
#include "spool.h"

struct event_base;
struct qmgr;
struct dnstxt;
struct smtpd_server;

/* what every session of one daemon shares; coexd owns it */
struct smtpd_env {
    struct event_base *base;
    const struct coex_config *cfg; /* swapped on reload */
    struct spool *spool;
    struct qmgr *qmgr;
    struct dir_snapshot *dir; /* current directory; sessions take references */
    struct dnstxt *dnstxt;    /* DKIM/ARC key lookups (dkim_verify routes); may be NULL */
    unsigned long sessions;   /* open sessions */
    int stopping;             /* SIGTERM: refuse new transactions */
};

/*
 * smtpd_listener_new - start accepting on the connector's address; ssl_ctx
 * (may be NULL when STARTTLS is off) is borrowed. NULL + err on failure.
 */
struct smtpd_server *smtpd_listener_new(struct smtpd_env *env, const struct cfg_connector *conn,
                                        SSL_CTX *ssl_ctx, char *err, size_t errlen);
/* smtpd_listener_set - point a listener at a reloaded connector and TLS context */
void smtpd_listener_set(struct smtpd_server *srv, const struct cfg_connector *conn,
                        SSL_CTX *ssl_ctx);
/* smtpd_listener_disable - stop accepting (shutdown); sessions continue */
void smtpd_listener_disable(struct smtpd_server *srv);
/* smtpd_listener_free - close the listening socket; NULL is fine */
void smtpd_listener_free(struct smtpd_server *srv);
/* smtpd_close_all - end every open session with 421 (shutdown timeout) */
void smtpd_close_all(struct smtpd_env *env);

#endif
