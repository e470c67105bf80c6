/*
 * dkim_field - what DKIM-Signature and the ARC fields built on it (RFC 8617
 * §4.1.2, §4.1.3) share when they are written: the h= list and folding.
 *
 * RFC 6376 §5.4 / §5.4.2 (the default fields to sign; from listed once more
 * than it occurs so that no From can be added later without breaking the
 * signature; list-* fields of RFC 2369 and RFC 2919 as often as they
 * occur), §3.2 (h= is a tag value: names go in lower case, only those made
 * of letters, digits and "-"), RFC 5322 §2.2.3 (folding at
 * DKIM_FOLD_COLUMNS between tags, between h= names and inside b=).
 *
 * Does not: hash or sign (dkim_canon.c, dkim_sign.c), or choose the tags
 * of a field (dkim_sign.c and arc_seal.c do, in their order).
 */
#include "dkim_int.h"

#include <string.h>

#include "util.h"

static const char *const dkim_default_headers[] = {
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "in-reply-to",
    "references",
};

/* dkim_hlist_reset - an empty list that may take name_room bytes of names */
void dkim_hlist_reset(struct dkim_hlist *h, size_t name_room)
{
    h->count = 0;
    h->name_room = name_room;
}

/* dkim_hlist_add - one name (a borrowed span), times times; the span counts once */
int dkim_hlist_add(struct dkim_hlist *h, const char *name, size_t len, size_t times)
{
    if (times == 0)
        return 0;
    if (len == 0 || len > h->name_room)
        return -1;
    h->name_room -= len;
    for (size_t t = 0; t < times; t++) {
        if (h->count == LIMIT_DKIM_SIGN_HEADERS)
            return -1;
        h->names[h->count] = name;
        h->lens[h->count++] = len;
    }
    return 0;
}

/* dkim_plain_name - letters, digits and "-" only: safe inside h= */
static int dkim_plain_name(const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return 0;
    }
    return len > 0;
}

/* dkim_hlist_default - the default names present (from once more), extra, then list-* */
int dkim_hlist_default(struct dkim_hlist *h, const char *hdr, size_t len, const char *extra,
                       int need_from, char *err, size_t errlen)
{
    struct hdr_iter it, again;
    struct hdr_field f, g;
    size_t counts[ARRAY_LEN(dkim_default_headers)] = {0}, extra_count = 0;
    size_t extra_len = extra ? strlen(extra) : 0;

    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        for (size_t i = 0; i < ARRAY_LEN(dkim_default_headers); i++)
            counts[i] += (size_t)hdr_name_is(hdr, &f, dkim_default_headers[i],
                                             strlen(dkim_default_headers[i]));
        if (extra)
            extra_count += (size_t)hdr_name_is(hdr, &f, extra, extra_len);
    }
    if (need_from && counts[0] == 0) {
        dkim_errf(err, errlen, "no From field: nothing to sign for (RFC 6376 §5.4)");
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(dkim_default_headers); i++)
        if (dkim_hlist_add(h, dkim_default_headers[i], strlen(dkim_default_headers[i]),
                           counts[i] + (i == 0)) < 0) /* from: once more than it occurs */
            goto too_many;
    if (extra && dkim_hlist_add(h, extra, extra_len, extra_count) < 0)
        goto too_many;
    /* list-* (RFC 2369, RFC 2919): each distinct name, as often as it occurs */
    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        /*
         * h= is a tag value (RFC 6376 §3.2): a name holding ";" or white space
         * would end or split the tag, so such a field cannot be signed by name.
         * Only letters, digits and "-" go in (every registered list-* name).
         */
        if (f.name_len <= 5 || !util_strncaseeq(hdr + f.off, "list-", 5) ||
            !dkim_plain_name(hdr + f.off, f.name_len))
            continue;
        int seen = 0;
        for (size_t i = 0; i < h->count && !seen; i++)
            seen =
                h->lens[i] == f.name_len && util_strncaseeq(h->names[i], hdr + f.off, f.name_len);
        if (seen)
            continue;
        size_t times = 0;
        hdr_iter_init(&again, hdr, len);
        while (hdr_iter_next(&again, &g))
            times += (size_t)hdr_name_is(hdr, &g, hdr + f.off, f.name_len);
        if (dkim_hlist_add(h, hdr + f.off, f.name_len, times) < 0)
            goto too_many;
    }
    return 0;
too_many:
    dkim_errf(err, errlen, "more than %d header fields to sign", LIMIT_DKIM_SIGN_HEADERS);
    return -1;
}

/* dkim_fold_put - a token, after " " (or glued) when it fits, else after CRLF SP */
int dkim_fold_put(struct dkim_fold *f, const char *token, size_t len, int glued)
{
    size_t need = len + (glued ? 0 : 1);
    if (f->column + need > DKIM_FOLD_COLUMNS && f->column > 1) {
        if (buf_append(f->out, "\r\n ", 3) < 0)
            return -1;
        f->column = 1;
    } else if (!glued) {
        if (buf_append(f->out, " ", 1) < 0)
            return -1;
        f->column++;
    }
    if (buf_append(f->out, token, len) < 0)
        return -1;
    f->column += len;
    return 0;
}

/* dkim_fold_tag - "name=value;" as one token */
int dkim_fold_tag(struct dkim_fold *f, const char *name, const char *value)
{
    char token[LIMIT_DKIM_NAME + 16];
    size_t name_len = strlen(name), value_len = strlen(value);
    if (name_len + value_len + 2 > sizeof(token))
        return -1;
    memcpy(token, name, name_len);
    token[name_len] = '=';
    memcpy(token + name_len + 1, value, value_len);
    token[name_len + 1 + value_len] = ';';
    return dkim_fold_put(f, token, name_len + value_len + 2, 0);
}

/* dkim_fold_hlist - "h=a:b:c;" in lower case, folded after a colon when the line is full */
int dkim_fold_hlist(struct dkim_fold *f, const struct dkim_hlist *h)
{
    for (size_t i = 0; i < h->count; i++) {
        char token[LIMIT_DKIM_NAME + 4];
        size_t n = 0;
        if (h->lens[i] > LIMIT_DKIM_NAME)
            return -1;
        if (i == 0) {
            memcpy(token, "h=", 2);
            n = 2;
        }
        for (size_t c = 0; c < h->lens[i]; c++)
            token[n++] = (char)util_lower((unsigned char)h->names[i][c]);
        token[n++] = i + 1 == h->count ? ';' : ':';
        if (dkim_fold_put(f, token, n, i > 0) < 0)
            return -1;
    }
    return 0;
}

/* dkim_fold_fill - text that may break anywhere (a b= value): fill each line */
int dkim_fold_fill(struct dkim_fold *f, const char *text, size_t len)
{
    for (size_t off = 0; off < len;) {
        if (f->column >= DKIM_FOLD_COLUMNS) {
            if (buf_append(f->out, "\r\n ", 3) < 0)
                return -1;
            f->column = 1;
        }
        size_t n = DKIM_FOLD_COLUMNS - f->column;
        if (n > len - off)
            n = len - off;
        if (buf_append(f->out, text + off, n) < 0)
            return -1;
        f->column += n;
        off += n;
    }
    return 0;
}
