/*
 * smtpd_int - what smtpd.c (session, commands) and smtpd_data.c (DATA/BDAT,
 * the message) share. Only src/smtp/smtpd*.c include it.
 */
#ifndef COEX_SMTPD_INT_H
#define COEX_SMTPD_INT_H

#include <netinet/in.h>

#include "addr.h"
#include "buf.h"
#include "smtpd.h"
#include "smtpproto.h" /* the parsers; LIMIT_SMTP_LINE, LIMIT_HELO, LIMIT_DSN_PARAM */

enum smtpd_state {
    SMTPD_GREETED, /* waiting for EHLO/HELO */
    SMTPD_READY,   /* after EHLO: MAIL allowed */
    SMTPD_MAIL,    /* after MAIL: RCPT allowed */
    SMTPD_DATA,    /* reading DATA */
    SMTPD_BDAT,    /* reading a BDAT chunk */
    SMTPD_TLS,     /* TLS handshake in progress */
};

struct smtpd_rcpt {
    char *addr;  /* as received */
    char *orcpt; /* DSN ORCPT or NULL */
    unsigned notify;
};

struct smtpd_tx {
    char *mail_from; /* "" for the null sender */
    char *envid;
    int ret_full;
    int smtputf8;
    int body_8bit;
    long size_declared;
    struct smtpd_rcpt *rcpts;
    size_t rcpt_count, rcpt_cap;
    struct dir_snapshot *dir;   /* taken at MAIL, released with the transaction */
    const struct cfg_route *route; /* from DATA/BDAT on: the route the message takes */
    struct buf msg;             /* the message as received (dot-unstuffed) */
    struct smtpproto_data data; /* the DATA/BDAT decoder: bare_eol, too_big */
    long bdat_left;             /* bytes still to read of the current BDAT chunk */
    int bdat_last;              /* the current chunk is the LAST one */
    int bdat_used;              /* BDAT was used: DATA is not allowed any more */
    int bdat_failed;            /* BDAT before a valid transaction: consume and refuse */
    int bdat_greeted;           /* that BDAT came before EHLO/HELO: go back to SMTPD_GREETED */
    /*
     * the DKIM/ARC body hashes, computed while the body streams in: the
     * canonicalisations hashed (bit 1 << enum dkim_canon; 0: none), whether
     * the header/body boundary was seen, where the body starts, and how far
     * msg has been fed (or, before the boundary, where the search resumes)
     */
    unsigned bh_mask;
    int bh_found;
    size_t bh_off, bh_pos;
};

struct smtpd_session;
struct dkim_body;

struct smtpd_server {
    struct smtpd_env *env;
    const struct cfg_connector *conn;
    SSL_CTX *ssl_ctx;
    struct evconnlistener *listener;
};

struct smtpd_session {
    struct smtpd_server *srv;
    struct smtpd_env *env;
    const struct cfg_connector *conn;
    struct bufferevent *bev;
    struct smtpd_session *next, *prev; /* all sessions of the process */
    char client_ip[INET6_ADDRSTRLEN];
    int family;
    unsigned char addr[16];
    char helo[LIMIT_HELO + 1];
    int esmtp;
    enum smtpd_state state;
    int tls;
    char tls_info[128];
    int cert_ok; /* a verified client certificate with an allowed name */
    char cert_name[256];
    int closing;   /* close once the output is flushed */
    int busy;      /* inside smtpd_process: smtpd_close must not free */
    int waiting;   /* a message is being committed: read nothing */
    int skip_line; /* discarding the rest of an over-long line */
    unsigned long messages;
    struct smtpd_tx tx;
    struct smtpd_commit *commit; /* the commit in flight, or NULL */
    struct dkim_body *bh[2];     /* body hashers by enum dkim_canon, made on first use */
    int bh_dirty;                /* bh hold bytes of a message not finished */
};

/* smtpd_reply - queue one reply line (printf-style, without CRLF) */
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* smtpd_close - flush the output, then close the session */
void smtpd_close(struct smtpd_session *s);
/* smtpd_tx_reset - forget the transaction (RSET, after a message) */
void smtpd_tx_reset(struct smtpd_session *s);
/* smtpd_resume - after a commit: read and process input again */
void smtpd_resume(struct smtpd_session *s);

/* smtpd_data_begin - DATA or the first BDAT accepted: a fresh decoder, an empty message */
void smtpd_data_begin(struct smtpd_session *s);
/*
 * smtpd_data_consume - feed bytes of DATA (borrowed) to the decoder; returns
 * how many were used, and sets *done when the terminating CRLF.CRLF was seen
 */
size_t smtpd_data_consume(struct smtpd_session *s, const char *p, size_t len, int *done);
/* smtpd_bdat_consume - feed bytes of a BDAT chunk (no dot-stuffing; borrowed) */
void smtpd_bdat_consume(struct smtpd_session *s, const char *p, size_t len);
/* smtpd_message_end - the whole message is in: check, rewrite, spool, reply */
void smtpd_message_end(struct smtpd_session *s);
/* smtpd_commit_detach - the session goes away: its commit must not touch it */
void smtpd_commit_detach(struct smtpd_session *s);
/* smtpd_data_free - the session goes away: what smtpd_data keeps per session */
void smtpd_data_free(struct smtpd_session *s);

#endif
