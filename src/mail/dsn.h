/*
 * dsn - build a delivery status notification (a bounce): RFC 3464
 * message/delivery-status inside an RFC 6522 multipart/report, with the
 * returned message (RFC 3462 message/rfc822, or text/rfc822-headers for
 * RET=HDRS and for messages over the size limit).
 *
 * Pure: bytes in, bytes out. The caller passes the date and a unique
 * Message-ID; nothing here reads a clock, a file or the network. The result
 * has CRLF line ends only, no line of our own longer than DSN_LINE_MAX
 * (long diagnostics are folded at spaces, cut where there are none), and a
 * MIME boundary that does not occur in the returned bytes.
 *
 * Does not: generate delay or success notices (Action: failed only), or
 * message/global-delivery-status (RFC 6533) for UTF-8 addresses; those are
 * written as they are.
 */
#ifndef COEX_DSN_H
#define COEX_DSN_H

#include <stddef.h>

#include "buf.h"

/* returned messages larger than this get their header block only */
#define DSN_FULL_LIMIT_DEFAULT ((size_t)1 << 20)
/* longest line we generate, not counting CRLF (RFC 5322 §2.1.1: 998) */
#define DSN_LINE_MAX 998
/* fold generated text at spaces near this width */
#define DSN_FOLD_WIDTH 76
/* limit for the output buffer a caller should give (headroom over the message) */
#define DSN_OVERHEAD_LIMIT ((size_t)256 << 10)

/* one failed recipient; every pointer borrowed */
struct dsn_rcpt {
    const char *addr;       /* final recipient (envelope, after rewriting) */
    const char *orcpt;      /* DSN ORCPT as received ("rfc822;a+2Bb@x", xtext) or NULL */
    const char *status;     /* RFC 3463 code, "5.1.1" */
    const char *remote_mta; /* next hop host name, or NULL when none answered */
    const char *diagnostic; /* the reply ("550 5.1.1 user unknown") or our reason; may be NULL */
};

/* what the notice reports; every pointer borrowed */
struct dsn_info {
    const char *reporting_mta; /* our host name */
    const char *queue_id;      /* the failed message's queue ID */
    const char *message_id;    /* unique id for the notice, without <>: "ID.1700000000@host" */
    const char *date;          /* RFC 5322 date of the notice */
    const char *arrival_date;  /* RFC 5322 date the message arrived, or NULL */
    const char *sender;        /* envelope sender of the failed message: the notice's To */
    const char *envid;         /* DSN ENVID as received (xtext) or NULL */
    const struct dsn_rcpt *rcpts;
    size_t rcpt_count; /* at least 1 */
    int ret_full;      /* 1 RET=FULL, -1 not given: the whole message; 0 RET=HDRS: headers only */
    size_t full_limit; /* bigger messages are returned as headers; 0: DSN_FULL_LIMIT_DEFAULT */
    const char *msg;   /* the failed message's bytes */
    size_t msg_len;
};

/*
 * dsn_build - append the whole notice (header and body) to out (caller owns;
 * its limit should allow the returned part + DSN_OVERHEAD_LIMIT). 0, or -1
 * when out's limit is reached or info is incomplete (out is then reset).
 */
int dsn_build(struct buf *out, const struct dsn_info *info);

/*
 * dsn_xtext_decode - RFC 3461 §4 xtext ("a+2Bb") into out (caller owns, its
 * limit applies); 0, or -1 on a bad "+XX" or at the limit
 */
int dsn_xtext_decode(struct buf *out, const char *xtext);

#endif
