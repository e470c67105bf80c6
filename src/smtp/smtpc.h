/*
 * smtpc - the SMTP client: one connection to a next hop on the event loop,
 * carrying one transaction at a time and kept open between them.
 *
 * RFC 5321 (session, §4.5.3.2 timeouts, §5.1 MX with implicit MX), RFC 3207
 * (STARTTLS; certificate and host name verified, SNI sent), RFC 2920
 * (PIPELINING: MAIL, every RCPT and DATA in one write), RFC 1870 (SIZE),
 * RFC 6152 (8BITMIME), RFC 6531 (SMTPUTF8), RFC 3461 (DSN parameters passed
 * on), RFC 2034 (enhanced status codes read from replies).
 *
 * Life of a connection: smtpc_new resolves (MX first for mx:), connects, reads
 * the greeting, EHLO (HELO on 5xx), STARTTLS, EHLO again, then reports
 * SMTPC_READY. smtpc_send runs one transaction and reports SMTPC_DONE with a
 * reply per recipient; the client then sends RSET and reports SMTPC_READY
 * again. An idle connection sends QUIT after SMTPC_IDLE_TIMEOUT seconds.
 * SMTPC_CLOSED ends every connection (after DONE when a transaction was in
 * progress). Set-up failures try the next address, then the next MX host.
 *
 * Callbacks always run from their own event, never from inside smtpc_new,
 * smtpc_send or smtpc_free, so a callback may call smtpc_free or smtpc_send.
 *
 * Does not: queue, retry or decide what a reply means for a message (qmgr
 * does); DANE or MTA-STS; cache MX answers; downgrade 8-bit bodies (sent as
 * they are when the peer lacks 8BITMIME, as Postfix does).
 */
#ifndef COEX_SMTPC_H
#define COEX_SMTPC_H

#include <stddef.h>

#include <openssl/ssl.h>

struct event_base;
struct evdns_base;
struct smtpc;

/* RFC 5321 §4.5.3.2 timeouts, in seconds */
#define SMTPC_TIMEOUT_CONNECT 30
#define SMTPC_TIMEOUT_GREETING 300
#define SMTPC_TIMEOUT_COMMAND 300   /* EHLO, STARTTLS, MAIL, RCPT, RSET */
#define SMTPC_TIMEOUT_DATA_INIT 120 /* the 354 to DATA */
#define SMTPC_TIMEOUT_DATA_BLOCK 180
#define SMTPC_TIMEOUT_DATA_END 600 /* the reply to the final "." */
#define SMTPC_TIMEOUT_TLS 60       /* the TLS handshake */
#define SMTPC_IDLE_TIMEOUT 5       /* a reusable connection waits this long for a message */
#define SMTPC_TIMEOUT_QUIT 10
#define SMTPC_MX_TIMEOUT 60 /* an MX lookup (the resolver retries inside) */

#define SMTPC_LIMIT_LINE 2048         /* a reply line (RFC 5321 says 512; be lenient) */
#define SMTPC_LIMIT_REPLY_LINES 100   /* lines in one multi-line reply */
#define SMTPC_TEXT_SIZE 1024          /* reply text kept for logs and bounces */
#define SMTPC_RELAY_SIZE 320          /* "host[address]:port" */
#define SMTPC_MAX_MX 10               /* MX hosts tried per connection */
#define SMTPC_MAX_ADDRS 4             /* addresses tried per host */
#define SMTPC_DATA_CHUNK (256 * 1024) /* dot-stuffed bytes queued at a time */

enum smtpc_hop {
    SMTPC_HOP_HOST, /* host is a name or a numeric address */
    SMTPC_HOP_MX,   /* host is a domain: its MX hosts, or itself without MX */
};

/* where to connect and how; strings are copied, tls is referenced (SSL_CTX_up_ref) */
struct smtpc_params {
    enum smtpc_hop hop;
    const char *host;
    int port;
    const char *helo_name;   /* our name for EHLO/HELO */
    SSL_CTX *tls;            /* client context (tls_client_ctx); NULL: no STARTTLS */
    int tls_required;        /* fail (temporarily) when STARTTLS is not offered */
    int tls_verify;          /* check the certificate's name (the chain is checked by tls) */
    const char *verify_name; /* name the certificate must carry; NULL: the host connected to */
};

/* one recipient of a transaction (borrowed until SMTPC_DONE) */
struct smtpc_rcpt {
    const char *addr;
    const char *orcpt; /* passed on as ORCPT= when the peer offers DSN; NULL: none */
    unsigned notify;   /* SPOOL_NOTIFY_* bits; 0: no NOTIFY */
};

/* one transaction (everything borrowed until SMTPC_DONE) */
struct smtpc_tx {
    const char *mail_from; /* "" for the null sender */
    const char *envid;     /* passed on as ENVID= with DSN; NULL: none */
    int ret_full;          /* with DSN: 1 RET=FULL, 0 RET=HDRS, -1 no RET parameter */
    const struct smtpc_rcpt *rcpts;
    size_t rcpt_count;
    const char *data; /* final message bytes, CRLF line ends, not dot-stuffed */
    size_t len;
};

/*
 * the outcome for one recipient, or for the session: code is the peer's
 * reply code (250, 451, 550), or 0 for a local failure (no connection, TLS,
 * timeout); status is the RFC 3463 code (from the reply, derived from the
 * code, or ours: 4.4.1 no answer, 4.4.2 connection lost, 4.7.5 TLS, 5.3.4
 * too big, 5.6.7 SMTPUTF8 not offered); text is the reply on one line
 * ("550 5.1.1 user unknown") or our reason
 */
struct smtpc_reply {
    int code;
    char status[16];
    char text[SMTPC_TEXT_SIZE];
};

/* smtpc_reply_permanent - 1 when the outcome is final (5xx, or a local 5.x.x) */
int smtpc_reply_permanent(const struct smtpc_reply *r);
/* smtpc_local - fill r with a local outcome (code 0, status, formatted text) */
void smtpc_local(struct smtpc_reply *r, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum smtpc_event {
    SMTPC_READY,  /* idle: smtpc_send may be called */
    SMTPC_DONE,   /* the transaction ended: result->rcpts[i] for every recipient */
    SMTPC_CLOSED, /* the connection is gone; result->session says why (code 221 for QUIT) */
};

struct smtpc_result {
    const char *relay;               /* "host[address]:port", or "host" before a connection */
    const char *tls;                 /* "TLSv1.3 TLS_AES_256_GCM_SHA384", or NULL for plain text */
    int was_ready;                   /* CLOSED: the connection had reached READY once */
    struct smtpc_reply session;      /* CLOSED: why; DONE: the reply that ended the transaction */
    const struct smtpc_reply *rcpts; /* DONE: one per recipient, in order */
    size_t rcpt_count;
};

/*
 * smtpc_fn - what happened; result is borrowed for the call. The callback may
 * call smtpc_free(c) (always after SMTPC_CLOSED) or smtpc_send(c, ...).
 */
typedef void smtpc_fn(void *arg, struct smtpc *c, enum smtpc_event ev,
                      const struct smtpc_result *result);

/*
 * smtpc_new - start a connection (params copied; dns borrowed and must
 * outlive c). Caller owns: smtpc_free, at the latest after SMTPC_CLOSED.
 */
struct smtpc *smtpc_new(struct event_base *base, struct evdns_base *dns,
                        const struct smtpc_params *params, smtpc_fn *cb, void *arg);

/* smtpc_send - start a transaction on a READY connection (tx borrowed until DONE); 0 or -1 */
int smtpc_send(struct smtpc *c, const struct smtpc_tx *tx);

/* smtpc_free - close at once (no QUIT, no more callbacks); NULL is fine */
void smtpc_free(struct smtpc *c);

/*
 * smtpc_mx_lookup - the MX hosts of domain, best first (equal preferences in
 * random order), or the domain itself when it has no MX (RFC 5321 §5.1).
 * Runs res_nquery on a thread and calls done on base's loop. hosts is
 * borrowed for the call. status: 0 found, 1 domain does not exist or has a
 * null MX (RFC 7505: permanent), -1 temporary failure.
 */
struct smtpc_mx;
typedef void smtpc_mx_fn(void *arg, int status, char *const *hosts, size_t count);
struct smtpc_mx *smtpc_mx_lookup(struct event_base *base, const char *domain, smtpc_mx_fn *done,
                                 void *arg);
/* smtpc_mx_cancel - done will not be called; NULL is fine */
void smtpc_mx_cancel(struct smtpc_mx *mx);

#endif
