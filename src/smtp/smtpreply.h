/*
 * smtpreply - what the SMTP client reads from the network, parsed: server
 * replies (one reply line with its code and continuation, a multi-line
 * reply gathered into one line of text, the RFC 3463 enhanced status code
 * in it, the EHLO keywords the client uses) and the DNS answer to its MX
 * query. Pure: bytes in, values out; no connection, no resolver, no clock,
 * no state beyond the struct the caller embeds.
 *
 * Implements: RFC 5321 §4.2 (reply lines "ddd text" / "ddd-text", §4.2.1
 * multi-line replies; the code of the first line is the reply's code),
 * RFC 2034 / RFC 3463 (class.subject.detail, 1-3 digits each, whose class
 * must match the code's), RFC 5321 §4.1.1.1 EHLO keywords (STARTTLS,
 * PIPELINING, SIZE [n], 8BITMIME, SMTPUTF8, DSN); RFC 1035 §4.1 / §3.3.9
 * MX answers with name compression (dn_expand), RFC 7505 null MX.
 *
 * Does not: decide what a reply means (smtpc_tx.c does), check that the
 * lines of one reply carry the same code, or keep more than
 * SMTPREPLY_TEXT_SIZE - 1 bytes of text (the rest is cut, for logs and
 * bounces only).
 */
#ifndef COEX_SMTPREPLY_H
#define COEX_SMTPREPLY_H

#include <stddef.h>

#define SMTPREPLY_TEXT_SIZE 1024  /* reply text kept (with the NUL); = SMTPC_TEXT_SIZE */
#define SMTPREPLY_LIMIT_LINES 100 /* lines in one multi-line reply; = SMTPC_LIMIT_REPLY_LINES */
#define SMTPREPLY_STATUS_SIZE 16  /* "5.1.1" and the longest "5.123.123" fit */
#define SMTPREPLY_MX_MAX 32       /* MX records kept from one answer (max is cut to this) */

/* EHLO keywords we use */
#define SMTPREPLY_EXT_STARTTLS 0x01
#define SMTPREPLY_EXT_PIPELINING 0x02
#define SMTPREPLY_EXT_SIZE 0x04
#define SMTPREPLY_EXT_8BITMIME 0x08
#define SMTPREPLY_EXT_SMTPUTF8 0x10
#define SMTPREPLY_EXT_DSN 0x20

/* one reply line, as smtpreply_parse_line reads it */
struct smtpreply_line {
    int code; /* 200..599 */
    int more; /* "ddd-": another line of the same reply follows */
};

/*
 * the reply being read (embedded in the connection; _init, no _cleanup).
 * code and text are the result once smtpreply_add says the reply is done.
 */
struct smtpreply {
    int code;                       /* the first line's code */
    size_t lines;                   /* lines so far; 0 between replies */
    size_t len;                     /* bytes of text */
    char text[SMTPREPLY_TEXT_SIZE]; /* "250 first line second line", NUL-terminated */
};

/* smtpreply_init - no reply in progress */
void smtpreply_init(struct smtpreply *r);

/*
 * smtpreply_parse_line - line[0..len) (CRLF removed; borrowed) as "ddd",
 * "ddd text" or "ddd-text" with the first digit 2 to 5; 0 and *out, or -1
 */
int smtpreply_parse_line(const char *line, size_t len, struct smtpreply_line *out);

/*
 * smtpreply_add - add a line parsed by smtpreply_parse_line to the reply:
 * the text after the code, joined with single spaces. 1 when the reply is
 * complete (r->code, r->text; the next line starts a new reply), 0 when more
 * lines follow, -1 when the reply has more than SMTPREPLY_LIMIT_LINES lines
 * (r is reset: the next line starts a new reply).
 */
int smtpreply_add(struct smtpreply *r, const char *line, size_t len,
                  const struct smtpreply_line *parsed);

/*
 * smtpreply_status - the enhanced status code of a reply text ("550 5.1.1
 * user unknown" -> "5.1.1") when there is one of the code's class, else the
 * class alone ("5.0.0"). text is a NUL-terminated reply text starting with
 * the code; out holds SMTPREPLY_STATUS_SIZE bytes (caller owns).
 */
void smtpreply_status(const char *text, char out[SMTPREPLY_STATUS_SIZE]);

/*
 * smtpreply_ehlo_keyword - one EHLO reply line's text after "250-" / "250 "
 * (borrowed): sets its SMTPREPLY_EXT_* bit in *ext, and *size_max from
 * "SIZE n" (as strtoul reads its first 23 bytes). Unknown keywords are
 * ignored.
 */
void smtpreply_ehlo_keyword(const char *kw, size_t len, unsigned *ext, unsigned long *size_max);

/*
 * smtpreply_mx_parse - the MX records of a DNS answer (RFC 1035 §4.1, MX
 * RDATA §3.3.9) ans[0..len) (borrowed): their exchange names, lowest
 * preference first, equal preferences in an order drawn from seed. Only
 * the first max (at most SMTPREPLY_MX_MAX) MX records count; their names
 * go to hosts (caller owns each string), their number to *count. 0; 1 for a null MX (RFC 7505: a
 * single MX with the root name; nothing stored); -1 for a malformed answer (nothing stored).
 */
int smtpreply_mx_parse(const unsigned char *ans, size_t len, unsigned seed, char **hosts,
                       size_t max, size_t *count);

#endif
