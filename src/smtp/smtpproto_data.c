/*
 * smtpproto_data - the bytes after DATA (RFC 5321 §4.5.2 dot-stuffing, the
 * CRLF "." CRLF terminator) and after BDAT (RFC 3030: counted, no stuffing).
 *
 * SMTP smuggling (CVE-2023-51766 and kin): only CR LF ends a line. A bare
 * LF stays inside its line and a bare CR is a byte of its line, and either
 * sets bare_eol, which refuses the message (550 5.6.11 in smtpd) while
 * decoding goes on to the real CRLF "." CRLF. So "\n.\r\n", "\r\n.\n",
 * "\n.\n" and "\r.\r" never end DATA, and what follows them can never be
 * read as a second message or as commands.
 *
 * The decoder is incremental: any split of the stream into chunks gives the
 * same end, the same bare_eol and, for a message that is accepted, the same
 * bytes. Plain bytes are copied in runs (memchr-like scan to the next CR or
 * LF), not one by one.
 *
 * Does not: check the size against anything but out's limit, look at the
 * header, or keep anything once the message is refused.
 */
#include "smtpproto.h"

#include <string.h>

/* smtpproto_data_init - DATA starts at the start of a line */
void smtpproto_data_init(struct smtpproto_data *d)
{
    d->state = SMTPPROTO_DATA_LINE_START;
    d->bare_eol = 0;
    d->too_big = 0;
}

/* smtpproto_keep - append to the message unless it is already refused */
static void smtpproto_keep(struct smtpproto_data *d, struct buf *out, const char *p, size_t len)
{
    if (out == NULL || d->bare_eol || d->too_big || len == 0)
        return;
    if (buf_append(out, p, len) < 0) {
        d->too_big = 1;
        buf_cleanup(out); /* keep reading to the end, keep nothing */
    }
}

/* smtpproto_data_consume - the DATA state machine over p[0..len) */
size_t smtpproto_data_consume(struct smtpproto_data *d, const char *p, size_t len, struct buf *out,
                              int *done)
{
    size_t i = 0, run = 0; /* run: start of plain bytes not yet kept */
    *done = 0;
    while (i < len) {
        char c = p[i];
        switch (d->state) {
        case SMTPPROTO_DATA_LINE_START:
            if (c == '.') {
                smtpproto_keep(d, out, p + run, i - run);
                d->state = SMTPPROTO_DATA_DOT;
                i++;
                run = i;
                continue;
            }
            d->state = SMTPPROTO_DATA_IN_LINE;
            continue; /* look at c again in IN_LINE */
        case SMTPPROTO_DATA_IN_LINE: {
            /* fast path: skip to the next CR or LF */
            const char *q = p + i;
            while (q < p + len && *q != '\r' && *q != '\n')
                q++;
            i = (size_t)(q - p);
            if (i == len)
                continue;
            if (*q == '\n')
                d->bare_eol = 1; /* bare LF: stays inside the line */
            else
                d->state = SMTPPROTO_DATA_CR;
            i++;
            continue;
        }
        case SMTPPROTO_DATA_CR:
            if (c == '\n') {
                d->state = SMTPPROTO_DATA_LINE_START;
                i++;
                continue;
            }
            d->bare_eol = 1; /* bare CR */
            d->state = SMTPPROTO_DATA_IN_LINE;
            continue;
        case SMTPPROTO_DATA_DOT:
            if (c == '\r') {
                d->state = SMTPPROTO_DATA_DOT_CR;
                i++;
                continue;
            }
            /* dot-stuffing (RFC 5321 §4.5.2): the leading dot was dropped */
            d->state = SMTPPROTO_DATA_IN_LINE;
            continue;
        case SMTPPROTO_DATA_DOT_CR:
            if (c == '\n') {
                if (i > run) /* the "\r" sits at i - 1 unless it came in the last chunk */
                    smtpproto_keep(d, out, p + run, i - 1 - run);
                *done = 1; /* the next message starts with smtpproto_data_init */
                return i + 1;
            }
            d->bare_eol = 1; /* ".\r" then something else */
            d->state = SMTPPROTO_DATA_IN_LINE;
            continue;
        }
    }
    /*
     * keep what is certain; a pending "." or ".\r" is decided by the next
     * bytes (".\r" + anything but LF is refused anyway). The "\r" is only
     * in this chunk when the chunk is not empty: len - 1 - run underflowed
     * for an empty chunk after ".\r" and refused a good message as too big.
     */
    size_t keep_end = len;
    if (d->state == SMTPPROTO_DATA_DOT_CR && len > run)
        keep_end = len - 1;
    smtpproto_keep(d, out, p + run, keep_end - run);
    return len;
}

/* smtpproto_bdat_consume - chunk bytes, checked for bare CR / LF across chunks */
void smtpproto_bdat_consume(struct smtpproto_data *d, const char *p, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len; i++) {
        if (d->state == SMTPPROTO_DATA_CR) {
            if (p[i] != '\n')
                d->bare_eol = 1;
            d->state = SMTPPROTO_DATA_IN_LINE;
            if (p[i] == '\n')
                continue;
        }
        if (p[i] == '\r')
            d->state = SMTPPROTO_DATA_CR;
        else if (p[i] == '\n')
            d->bare_eol = 1;
    }
    smtpproto_keep(d, out, p, len);
}

/* smtpproto_bdat_end - no more bytes: a pending CR stays bare */
void smtpproto_bdat_end(struct smtpproto_data *d)
{
    if (d->state == SMTPPROTO_DATA_CR)
        d->bare_eol = 1;
}
