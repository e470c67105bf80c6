/*
 * hdr - header block splitter (RFC 5322 §2.1, §2.2, §4.5).
 *
 * One pass with memchr over line ends: a line that starts with SP or HTAB
 * continues the previous field (folding); an empty line ends the header.
 */
#include "hdr.h"

#include <string.h>

#include "util.h"

/* ftext (RFC 5322 §3.6.8): printable US-ASCII except ":" */
#define HDR_R8(v) v, v, v, v, v, v, v, v
#define HDR_R32(v) HDR_R8(v), HDR_R8(v), HDR_R8(v), HDR_R8(v)
static const unsigned char hdr_ftext[256] = {
    HDR_R32(0), /* 0x00-0x1f */
    0,          HDR_R8(1),  HDR_R8(1),  1,          1,          1, 1,
    1,          1,          1,          1,          1,                /* 0x20 SP, 0x21-0x39 */
    0,          HDR_R32(1), HDR_R32(1), 1,          1,          1, 1, /* 0x3a ":", 0x3b-0x7e */
    0,          HDR_R32(0), HDR_R32(0), HDR_R32(0), HDR_R32(0),       /* 0x7f DEL, 0x80-0xff */
};

/* hdr_iter_init - start at the first byte */
void hdr_iter_init(struct hdr_iter *it, const char *msg, size_t len)
{
    it->msg = msg;
    it->len = len;
    it->pos = 0;
    it->body_off = len;
    it->header_end = len;
}

/* hdr_line_end - one past the LF ending the line at pos, or len */
static size_t hdr_line_end(const char *msg, size_t len, size_t pos)
{
    const char *lf = memchr(msg + pos, '\n', len - pos);
    return lf ? (size_t)(lf - msg) + 1 : len;
}

/* hdr_content_end - end of a line without its CRLF / LF */
static size_t hdr_content_end(const char *msg, size_t start, size_t end)
{
    if (end > start && msg[end - 1] == '\n')
        end--;
    if (end > start && msg[end - 1] == '\r')
        end--;
    return end;
}

/* hdr_iter_next - next field or end of header */
int hdr_iter_next(struct hdr_iter *it, struct hdr_field *f)
{
    const char *msg = it->msg;
    size_t pos = it->pos;

    if (pos >= it->len) {
        it->header_end = it->body_off = it->len;
        return 0;
    }
    /* the empty line: LF or CRLF alone */
    if (msg[pos] == '\n' || (msg[pos] == '\r' && pos + 1 < it->len && msg[pos + 1] == '\n')) {
        it->header_end = pos;
        it->body_off = pos + (msg[pos] == '\r' ? 2 : 1);
        it->pos = it->len;
        return 0;
    }
    size_t end = hdr_line_end(msg, it->len, pos);
    /* continuation lines */
    while (end < it->len && (msg[end] == ' ' || msg[end] == '\t'))
        end = hdr_line_end(msg, it->len, end);

    f->off = pos;
    f->end = end;
    f->value_end = hdr_content_end(msg, pos, end);
    f->name_len = 0;
    f->value_off = pos;
    /* name: printable US-ASCII except colon (RFC 5322 §3.6.8), then obs WSP, then ":" */
    size_t i = pos;
    while (i < f->value_end && hdr_ftext[(unsigned char)msg[i]])
        i++;
    size_t name_end = i;
    while (i < f->value_end && (msg[i] == ' ' || msg[i] == '\t'))
        i++;
    if (name_end > pos && i < f->value_end && msg[i] == ':') {
        f->name_len = name_end - pos;
        f->value_off = i + 1;
    }
    it->pos = end;
    return 1;
}

/* hdr_split - find the header/body boundary */
void hdr_split(const char *msg, size_t len, size_t *header_end, size_t *body_off)
{
    struct hdr_iter it;
    struct hdr_field f;
    hdr_iter_init(&it, msg, len);
    while (hdr_iter_next(&it, &f))
        ;
    *header_end = it.header_end;
    *body_off = it.body_off;
}

/* hdr_name_is - case-insensitive name comparison */
int hdr_name_is(const char *msg, const struct hdr_field *f, const char *name, size_t name_len)
{
    return f->name_len == name_len && util_strncaseeq(msg + f->off, name, name_len);
}
