/*
 * dsn - delivery status notifications (bounces).
 *
 * RFC 3464 (message/delivery-status fields), RFC 6522 (multipart/report),
 * RFC 3462 (text/rfc822-headers), RFC 3461 §4 (xtext in ORCPT and ENVID),
 * RFC 3834 §5 (Auto-Submitted: auto-replied), RFC 5322 §2.1.1 (998-byte
 * lines, CRLF). Field values we take from the wire (diagnostics, ENVID) are
 * made US-ASCII printable: control bytes become spaces, 8-bit bytes '?'.
 *
 * Does not: parse the returned message beyond finding its header block, or
 * re-encode it; its bytes are returned as they are, with bare CR or LF turned
 * into CRLF so the notice itself never carries a bare line end.
 */
#include "dsn.h"

#include <string.h>

#include "hdr.h"

/* a line that starts with this can only be ours */
#define DSN_BOUNDARY_PREFIX "=_coex_dsn_"
#define DSN_BOUNDARY_TRIES 1000

/* dsn_put - append, remembering the first failure in *rc */
static void dsn_put(struct buf *out, int *rc, const char *s, size_t len)
{
    if (*rc == 0 && buf_append(out, s, len) < 0)
        *rc = -1;
}

static void dsn_puts(struct buf *out, int *rc, const char *s)
{
    dsn_put(out, rc, s, strlen(s));
}

/* dsn_sanitize - printable US-ASCII copy of text (control -> space, 8-bit -> '?') */
static void dsn_sanitize(struct buf *out, int *rc, const char *text, int keep_8bit)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char c = (char)*p;
        if (*p < 0x20 || *p == 0x7f)
            c = ' ';
        else if (*p >= 0x80 && !keep_8bit)
            c = '?';
        dsn_put(out, rc, &c, 1);
    }
}

/*
 * dsn_fold - "prefix" + text as one field or paragraph: words are separated by
 * one space, lines broken before a word that would pass DSN_FOLD_WIDTH, and a
 * word longer than a whole line cut at DSN_LINE_MAX. Continuation lines start
 * with indent (a space for header fields, RFC 5322 §2.2.3).
 */
static void dsn_fold(struct buf *out, int *rc, const char *prefix, const char *text,
                     const char *indent, int keep_8bit)
{
    struct buf clean;
    buf_init(&clean, DSN_OVERHEAD_LIMIT);
    dsn_sanitize(&clean, rc, text ? text : "", keep_8bit);
    size_t col = strlen(prefix), indent_len = strlen(indent);
    int line_has_word = 0;
    dsn_puts(out, rc, prefix);
    const char *p = buf_str(&clean);
    while (*p) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            break;
        size_t word_len = strcspn(p, " ");
        if (line_has_word && col + 1 + word_len > DSN_FOLD_WIDTH) {
            dsn_puts(out, rc, "\r\n");
            dsn_puts(out, rc, indent);
            col = indent_len;
        } else if (line_has_word) {
            dsn_puts(out, rc, " ");
            col++;
        }
        while (col + word_len > DSN_LINE_MAX) {
            size_t piece = DSN_LINE_MAX - col;
            dsn_put(out, rc, p, piece);
            dsn_puts(out, rc, "\r\n");
            dsn_puts(out, rc, indent);
            col = indent_len;
            p += piece;
            word_len -= piece;
        }
        dsn_put(out, rc, p, word_len);
        col += word_len;
        p += word_len;
        line_has_word = 1;
    }
    dsn_puts(out, rc, "\r\n");
    buf_cleanup(&clean);
}

/* dsn_xtext_decode - "+XX" hex escapes */
int dsn_xtext_decode(struct buf *out, const char *xtext)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const char *p = xtext; *p; p++) {
        char c = *p;
        if (c == '+') {
            const char *hi = p[1] ? strchr(hex, p[1]) : NULL;
            const char *lo = hi && p[2] ? strchr(hex, p[2]) : NULL;
            if (hi == NULL || lo == NULL)
                return -1;
            c = (char)((hi - hex) * 16 + (lo - hex));
            p += 2;
        }
        if (buf_append(out, &c, 1) < 0)
            return -1;
    }
    return 0;
}

/* dsn_has_8bit - any byte >= 0x80 */
static int dsn_has_8bit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 1;
    return 0;
}

/* dsn_contains - needle somewhere in hay[0..len) */
static int dsn_contains(const char *hay, size_t len, const char *needle)
{
    size_t needle_len = strlen(needle);
    if (hay == NULL || needle_len > len)
        return 0;
    for (size_t i = 0; i + needle_len <= len; i++) {
        const char *hit = memchr(hay + i, needle[0], len - needle_len - i + 1);
        if (hit == NULL)
            return 0;
        i = (size_t)(hit - hay);
        if (memcmp(hit, needle, needle_len) == 0)
            return 1;
    }
    return 0;
}

/* dsn_boundary - a boundary that occurs nowhere in what the notice carries */
static int dsn_boundary(const struct dsn_info *info, char *out, size_t outsize)
{
    for (unsigned n = 0; n < DSN_BOUNDARY_TRIES; n++) {
        struct buf b;
        buf_init(&b, outsize - 1);
        if (buf_printf(&b, DSN_BOUNDARY_PREFIX "%s_%u", info->queue_id, n) < 0) {
            buf_cleanup(&b);
            return -1;
        }
        memcpy(out, buf_str(&b), b.len + 1);
        buf_cleanup(&b);
        int clash = dsn_contains(info->msg, info->msg_len, out);
        for (size_t i = 0; i < info->rcpt_count && !clash; i++) {
            const char *d = info->rcpts[i].diagnostic;
            clash = d && dsn_contains(d, strlen(d), out);
        }
        if (!clash)
            return 0;
    }
    return -1;
}

/* dsn_put_crlf_text - bytes with every bare CR or LF made CRLF, ending in CRLF */
static void dsn_put_crlf_text(struct buf *out, int *rc, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\r' && i + 1 < len && s[i + 1] == '\n') {
            i++;
            continue;
        }
        if (s[i] == '\r' || s[i] == '\n') {
            dsn_put(out, rc, s + start, i - start);
            dsn_puts(out, rc, "\r\n");
            start = i + 1;
        }
    }
    dsn_put(out, rc, s + start, len - start);
    if (len > 0 && s[len - 1] != '\n' && s[len - 1] != '\r')
        dsn_puts(out, rc, "\r\n");
}

/* dsn_header - the notice's own header fields */
static void dsn_header(struct buf *out, int *rc, const struct dsn_info *info, const char *boundary,
                       int part_8bit)
{
    dsn_puts(out, rc, "From: MAILER-DAEMON@");
    dsn_sanitize(out, rc, info->reporting_mta, 0);
    dsn_puts(out, rc, " (Mail Delivery System)\r\nTo: <");
    dsn_sanitize(out, rc, info->sender, 1);
    dsn_puts(out, rc, ">\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: ");
    dsn_sanitize(out, rc, info->date, 0);
    dsn_puts(out, rc, "\r\nMessage-ID: <");
    dsn_sanitize(out, rc, info->message_id, 0);
    dsn_puts(out, rc,
             ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
             "Content-Type: multipart/report; report-type=delivery-status;\r\n"
             "\tboundary=\"");
    dsn_puts(out, rc, boundary);
    dsn_puts(out, rc, "\"\r\n");
    if (part_8bit)
        dsn_puts(out, rc, "Content-Transfer-Encoding: 8bit\r\n");
    dsn_puts(out, rc, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");
}

/* dsn_human - the text/plain part */
static void dsn_human(struct buf *out, int *rc, const struct dsn_info *info)
{
    dsn_puts(out, rc,
             "Content-Description: Notification\r\n"
             "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    dsn_puts(out, rc, "This is the mail system at host ");
    dsn_sanitize(out, rc, info->reporting_mta, 0);
    dsn_puts(out, rc,
             ".\r\n\r\n"
             "I'm sorry to have to inform you that your message could not\r\n"
             "be delivered to one or more recipients. It's attached below.\r\n\r\n"
             "For further assistance, please send mail to postmaster.\r\n\r\n");
    for (size_t i = 0; i < info->rcpt_count; i++) {
        const struct dsn_rcpt *r = &info->rcpts[i];
        struct buf line;
        buf_init(&line, DSN_OVERHEAD_LIMIT);
        int lrc = 0;
        dsn_puts(&line, &lrc, "<");
        dsn_sanitize(&line, &lrc, r->addr, 0);
        dsn_puts(&line, &lrc, ">: ");
        if (r->remote_mta) {
            dsn_puts(&line, &lrc, "host ");
            dsn_sanitize(&line, &lrc, r->remote_mta, 0);
            dsn_puts(&line, &lrc, " said: ");
        }
        dsn_sanitize(&line, &lrc, r->diagnostic ? r->diagnostic : r->status, 0);
        if (lrc < 0)
            *rc = -1;
        dsn_fold(out, rc, "", buf_str(&line), "    ", 0);
        dsn_puts(out, rc, "\r\n");
        buf_cleanup(&line);
    }
}

/* dsn_status_ok - "5.1.1": class 2, 4 or 5, then two numbers (RFC 3463) */
static int dsn_status_ok(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    size_t a = strspn(s + 2, "0123456789");
    if (a == 0 || a > 3 || s[2 + a] != '.')
        return 0;
    size_t b = strspn(s + 3 + a, "0123456789");
    return b > 0 && b <= 3 && s[3 + a + b] == '\0';
}

/* dsn_report - the message/delivery-status part */
static void dsn_report(struct buf *out, int *rc, const struct dsn_info *info)
{
    dsn_puts(out, rc,
             "Content-Description: Delivery report\r\n"
             "Content-Type: message/delivery-status\r\n\r\n");
    dsn_fold(out, rc, "Reporting-MTA: dns; ", info->reporting_mta, " ", 0);
    dsn_fold(out, rc, "X-Coex-Queue-ID: ", info->queue_id, " ", 0);
    if (info->envid) {
        struct buf id;
        buf_init(&id, DSN_OVERHEAD_LIMIT);
        if (dsn_xtext_decode(&id, info->envid) == 0)
            dsn_fold(out, rc, "Original-Envelope-Id: ", buf_str(&id), " ", 0);
        buf_cleanup(&id);
    }
    if (info->arrival_date)
        dsn_fold(out, rc, "Arrival-Date: ", info->arrival_date, " ", 0);
    for (size_t i = 0; i < info->rcpt_count; i++) {
        const struct dsn_rcpt *r = &info->rcpts[i];
        dsn_puts(out, rc, "\r\n");
        dsn_fold(out, rc, "Final-Recipient: rfc822; ", r->addr, " ", 1);
        const char *semi = r->orcpt ? strchr(r->orcpt, ';') : NULL;
        if (semi) {
            struct buf orcpt;
            buf_init(&orcpt, DSN_OVERHEAD_LIMIT);
            int orc = buf_append(&orcpt, r->orcpt, (size_t)(semi - r->orcpt + 1));
            if (orc == 0 && dsn_xtext_decode(&orcpt, semi + 1) == 0)
                dsn_fold(out, rc, "Original-Recipient: ", buf_str(&orcpt), " ", 1);
            buf_cleanup(&orcpt);
        }
        dsn_puts(out, rc, "Action: failed\r\n");
        dsn_fold(out, rc, "Status: ", dsn_status_ok(r->status) ? r->status : "5.0.0", " ", 0);
        if (r->remote_mta) {
            dsn_fold(out, rc, "Remote-MTA: dns; ", r->remote_mta, " ", 0);
            if (r->diagnostic)
                dsn_fold(out, rc, "Diagnostic-Code: smtp; ", r->diagnostic, " ", 0);
        } else if (r->diagnostic) {
            dsn_fold(out, rc, "Diagnostic-Code: X-Coex; ", r->diagnostic, " ", 0);
        }
    }
    dsn_puts(out, rc, "\r\n");
}

/* dsn_returned - the original message, or its header block */
static void dsn_returned(struct buf *out, int *rc, const struct dsn_info *info, int full,
                         size_t len, int part_8bit)
{
    dsn_puts(out, rc, "Content-Description: ");
    dsn_puts(out, rc,
             full ? "Undelivered Message\r\nContent-Type: message/rfc822\r\n"
                  : "Undelivered Message Headers\r\n"
                    "Content-Type: text/rfc822-headers\r\n");
    if (part_8bit)
        dsn_puts(out, rc, "Content-Transfer-Encoding: 8bit\r\n");
    dsn_puts(out, rc, "\r\n");
    dsn_put_crlf_text(out, rc, info->msg, len);
}

/* dsn_build - the whole notice */
int dsn_build(struct buf *out, const struct dsn_info *info)
{
    char boundary[128];
    size_t start = out->len;
    int rc = 0;
    if (info->reporting_mta == NULL || info->queue_id == NULL || info->message_id == NULL ||
        info->date == NULL || info->sender == NULL || info->sender[0] == '\0' ||
        info->rcpt_count == 0 || (info->msg == NULL && info->msg_len > 0))
        goto fail;
    for (size_t i = 0; i < info->rcpt_count; i++)
        if (info->rcpts[i].addr == NULL)
            goto fail;
    if (dsn_boundary(info, boundary, sizeof(boundary)) < 0)
        goto fail;

    size_t limit = info->full_limit ? info->full_limit : DSN_FULL_LIMIT_DEFAULT;
    /* RET not given (-1): the whole message, as Postfix does; RFC 3461 §4.3 leaves it open */
    int full = info->ret_full != 0 && info->msg_len <= limit;
    size_t returned_len = info->msg_len;
    if (!full) {
        size_t header_end, body_off;
        hdr_split(info->msg ? info->msg : "", info->msg_len, &header_end, &body_off);
        returned_len = header_end;
    }
    int part_8bit = dsn_has_8bit(info->msg, returned_len);

    dsn_header(out, &rc, info, boundary, part_8bit);
    dsn_puts(out, &rc, "--");
    dsn_puts(out, &rc, boundary);
    dsn_puts(out, &rc, "\r\n");
    dsn_human(out, &rc, info);
    dsn_puts(out, &rc, "--");
    dsn_puts(out, &rc, boundary);
    dsn_puts(out, &rc, "\r\n");
    dsn_report(out, &rc, info);
    dsn_puts(out, &rc, "--");
    dsn_puts(out, &rc, boundary);
    dsn_puts(out, &rc, "\r\n");
    dsn_returned(out, &rc, info, full, returned_len, part_8bit);
    dsn_puts(out, &rc, "\r\n--");
    dsn_puts(out, &rc, boundary);
    dsn_puts(out, &rc, "--\r\n");
    if (rc < 0)
        goto fail;
    return 0;
fail:
    out->len = start;
    if (out->data)
        out->data[start] = '\0';
    return -1;
}
