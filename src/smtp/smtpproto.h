/*
 * smtpproto - the server side's parsers of SMTP bytes: command lines (verb,
 * reverse-path / forward-path, MAIL and RCPT parameters, BDAT arguments) and
 * the DATA / BDAT byte decoders. Pure: bytes in, spans and values out; no
 * sockets, no session, no configuration (limits come in as arguments).
 *
 * Implements: RFC 5321 §4.1.1 command verbs, §4.1.2 paths (the obs-route
 * "@a,@b:" of a source route is skipped, a quoted local part may hold ">"),
 * §4.5.2 dot-stuffing and the CRLF "." CRLF end of DATA; RFC 1870 SIZE,
 * RFC 6152 BODY, RFC 6531 SMTPUTF8, RFC 3461 §4 xtext, RET, ENVID, NOTIFY,
 * ORCPT; RFC 3030 BDAT size [LAST].
 *
 * SMTP smuggling (CVE-2023-51766 and kin): the DATA decoder ends a message
 * only at CRLF "." CRLF. A bare LF or a bare CR does not end a line; it
 * marks the message as refused (bare_eol) and decoding goes on to the real
 * end, so "\n.\r\n" or "\r\n.\n" can never split one message into two.
 *
 * Does not: write replies, keep transaction state, or check an address
 * against the directory (smtpd does). Numbers are read as strtol would in
 * the C locale (leading white space, a sign), so SIZE= and BDAT accept what
 * they always accepted.
 */
#ifndef COEX_SMTPPROTO_H
#define COEX_SMTPPROTO_H

#include <stddef.h>

#include "buf.h"

/* RFC 5321 §4.5.3.1.4 says 512 for a command line; extensions make it longer */
#define LIMIT_SMTP_LINE 2048
#define LIMIT_HELO 255
/* ENVID and ORCPT values (RFC 3461 §4.4, §4.2: 100 and 500 xtext bytes; be lenient) */
#define LIMIT_DSN_PARAM 500
/* a NOTIFY value longer than this is refused (the longest valid one is 21 bytes) */
#define LIMIT_NOTIFY 63

/* DSN NOTIFY bits (RFC 3461 §4.1), the same values as SPOOL_NOTIFY_* */
#define SMTPPROTO_NOTIFY_NEVER 0x1
#define SMTPPROTO_NOTIFY_SUCCESS 0x2
#define SMTPPROTO_NOTIFY_FAILURE 0x4
#define SMTPPROTO_NOTIFY_DELAY 0x8

/* a span of bytes: input[off .. off+len) */
struct smtpproto_span {
    size_t off;
    size_t len;
};

enum smtpproto_verb {
    SMTPPROTO_UNKNOWN, /* 502 */
    SMTPPROTO_NUL,     /* the line holds a NUL byte: 500 */
    SMTPPROTO_EHLO,
    SMTPPROTO_HELO,
    SMTPPROTO_MAIL,
    SMTPPROTO_RCPT,
    SMTPPROTO_DATA,
    SMTPPROTO_BDAT,
    SMTPPROTO_RSET,
    SMTPPROTO_NOOP,
    SMTPPROTO_QUIT,
    SMTPPROTO_VRFY,
    SMTPPROTO_HELP,
    SMTPPROTO_STARTTLS,
};

/* results of the parameter parsers (each maps to one reply of smtpd) */
enum smtpproto_result {
    SMTPPROTO_OK = 0,
    SMTPPROTO_BAD_SIZE,      /* SIZE= not a number >= 0: 501 5.5.4 */
    SMTPPROTO_SIZE_EXCEEDED, /* SIZE= above the limit: 552 5.3.4 */
    SMTPPROTO_UNSUPPORTED,   /* unknown or invalid parameter: 555 5.5.4 (name in `bad`) */
};

/* results of smtpproto_addr_check */
enum smtpproto_addr {
    SMTPPROTO_ADDR_OK = 0,
    SMTPPROTO_ADDR_BAD,        /* not one addr-spec, or too long */
    SMTPPROTO_ADDR_NEEDS_UTF8, /* non-ASCII without SMTPUTF8: 553 5.6.7 */
};

/* MAIL FROM parameters; spans are into the parameter string */
struct smtpproto_mail {
    long size;                   /* SIZE=, 0 when not given */
    int body_8bit;               /* BODY=8BITMIME (the last BODY= wins) */
    int smtputf8;                /* SMTPUTF8 */
    int ret_full;                /* RET=FULL (1), RET=HDRS (0), not given (-1) */
    int has_envid;               /* ENVID= was given (it may be empty) */
    struct smtpproto_span envid; /* the last ENVID= value, xtext as received */
    struct smtpproto_span bad;   /* UNSUPPORTED: the parameter's name, without "=value" */
};

/* RCPT TO parameters; spans are into the parameter string */
struct smtpproto_rcpt {
    unsigned notify;             /* SMTPPROTO_NOTIFY_* of the last NOTIFY=, 0 when none */
    int has_orcpt;               /* ORCPT= was given */
    struct smtpproto_span orcpt; /* the last ORCPT= value ("rfc822;" xtext) */
    struct smtpproto_span bad;   /* UNSUPPORTED: the parameter's name */
};

/*
 * smtpproto_command - the verb of a command line (CRLF removed). line is
 * borrowed; *arg_off is where the argument starts (after the verb and its
 * spaces). A verb matches case-insensitively when followed by the end or a
 * space ("MAILX" is unknown).
 */
enum smtpproto_verb smtpproto_command(const char *line, size_t len, size_t *arg_off);

/*
 * smtpproto_parse_path - "<addr>" after "FROM:" / "TO:" (spaces before "<"
 * skipped). arg is borrowed; *addr is the address inside the brackets
 * without a source route ("<>" gives len 0), *rest the offset just past
 * ">" where the parameters start. 0, or -1 when there is no complete path.
 */
int smtpproto_parse_path(const char *arg, size_t len, struct smtpproto_span *addr, size_t *rest);

/*
 * smtpproto_addr_check - is addr[0..len) one addr-spec shorter than
 * LIMIT_ADDRESS, and ASCII unless smtputf8? (borrowed)
 */
enum smtpproto_addr smtpproto_addr_check(const char *addr, size_t len, int smtputf8);

/*
 * smtpproto_mail_params - the parameters after MAIL FROM:<...>, in order,
 * stopping at the first bad one. params is borrowed; out (caller owns) is
 * filled. A SIZE above size_limit is SIZE_EXCEEDED.
 */
enum smtpproto_result smtpproto_mail_params(const char *params, size_t len, long size_limit,
                                            struct smtpproto_mail *out);

/* smtpproto_rcpt_params - the parameters after RCPT TO:<...>; OK or UNSUPPORTED */
enum smtpproto_result smtpproto_rcpt_params(const char *params, size_t len,
                                            struct smtpproto_rcpt *out);

/* smtpproto_xtext_ok - 1 when v[0..len) is RFC 3461 xtext (printable ASCII, "+XX" escapes) */
int smtpproto_xtext_ok(const char *v, size_t len);

/*
 * smtpproto_notify - NOTIFY=NEVER or a list of SUCCESS, FAILURE, DELAY
 * (case-insensitive, empty list elements skipped); 0 and *out, or -1
 */
int smtpproto_notify(const char *v, size_t len, unsigned *out);

/*
 * smtpproto_number - a decimal number as strtol(v, &end, 10) reads it:
 * *used is how many bytes it took (0 when there are no digits), *value
 * saturates at LONG_MAX / LONG_MIN
 */
void smtpproto_number(const char *v, size_t len, long *value, size_t *used);

/* smtpproto_bdat_args - "size [LAST]"; 0, or -1 when the size cannot be read */
int smtpproto_bdat_args(const char *arg, size_t len, long *size, int *last);

/* --- DATA and BDAT bytes ------------------------------------------------------------- */

enum smtpproto_data_state {
    SMTPPROTO_DATA_LINE_START = 0, /* a zeroed decoder is at the start of a line */
    SMTPPROTO_DATA_IN_LINE,
    SMTPPROTO_DATA_CR,
    SMTPPROTO_DATA_DOT,    /* "." at the start of a line */
    SMTPPROTO_DATA_DOT_CR, /* ".\r" at the start of a line */
};

/*
 * the DATA / BDAT decoder, embedded in the transaction (_init, no _cleanup:
 * it owns nothing). Callers read bare_eol and too_big; the rest is private.
 */
struct smtpproto_data {
    enum smtpproto_data_state state;
    int bare_eol; /* a bare CR or LF was seen: the message must be refused */
    int too_big;  /* the output buffer hit its limit: refused, and out was emptied */
};

/* smtpproto_data_init - the first byte is at the start of a line */
void smtpproto_data_init(struct smtpproto_data *d);

/*
 * smtpproto_data_consume - decode p[0..len) of DATA (borrowed) into out
 * (borrowed; its limit is the message size limit): dot-stuffing removed,
 * the terminator not included. Returns how many bytes were used; *done is
 * set when they end with the terminating CRLF "." CRLF (the rest belongs to
 * the next command). Once bare_eol or too_big is set nothing more is kept;
 * on too_big out is released (buf_cleanup).
 */
size_t smtpproto_data_consume(struct smtpproto_data *d, const char *p, size_t len, struct buf *out,
                              int *done);

/*
 * smtpproto_bdat_consume - bytes of a BDAT chunk: kept as they are into out
 * (NULL: check only, keep nothing), bare CR / LF tracked across chunks
 */
void smtpproto_bdat_consume(struct smtpproto_data *d, const char *p, size_t len, struct buf *out);

/*
 * smtpproto_bdat_end - the LAST chunk is in: a CR at its very end had no LF
 * after it, so it is a bare CR (sets bare_eol)
 */
void smtpproto_bdat_end(struct smtpproto_data *d);

#endif
