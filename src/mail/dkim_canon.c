/*
 * dkim_canon - DKIM canonicalisation and the two hashes.
 *
 * RFC 6376 §3.4.1 (simple header), §3.4.2 (relaxed header), §3.4.3 (simple
 * body), §3.4.4 (relaxed body), §3.7 (computing the hashes), §5.4.2 (header
 * fields signed bottom up; a name listed more often than it occurs adds
 * nothing, which is what makes oversigning work).
 *
 * The body canonicaliser is a byte-at-a-time state machine so that a chunk
 * boundary may fall anywhere (inside a CRLF, a white-space run, a run of
 * trailing empty lines): trailing empty lines are counted, not buffered,
 * and written only when more content follows them.
 *
 * Does not: treat a bare LF as a line end. The wire form is CRLF; a bare
 * LF or CR is an ordinary byte, as in OpenDKIM.
 */
#include "dkim_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "hdr.h"
#include "util.h"

/* canonical body bytes are staged here and hashed in blocks */
#define DKIM_BODY_STAGE 4096

struct dkim_body {
    enum dkim_canon canon;
    EVP_MD
    *sha256; /* fetched once: an implicit fetch per message costs more than 4 KiB of SHA-256 */
    EVP_MD_CTX *md;
    int failed;
    int cr_pending;                 /* the previous byte was CR: a CRLF may be starting */
    int wsp_pending;                /* relaxed: white space in the line, not yet written */
    int line_has_content;           /* canonical bytes written for the current line */
    unsigned long long written;     /* canonical bytes so far */
    unsigned long long empty_lines; /* complete empty lines held back */
    size_t stage_len;
    unsigned char stage[DKIM_BODY_STAGE];
};

/* dkim_body_flush - hash the staged bytes */
static void dkim_body_flush(struct dkim_body *body)
{
    if (body->stage_len && EVP_DigestUpdate(body->md, body->stage, body->stage_len) != 1)
        body->failed = 1;
    body->stage_len = 0;
}

/* dkim_body_put - one canonical byte */
static inline void dkim_body_put(struct dkim_body *body, unsigned char c)
{
    if (body->stage_len == sizeof(body->stage))
        dkim_body_flush(body);
    body->stage[body->stage_len++] = c;
    body->written++;
}

/* dkim_body_content - a byte that is neither white space (relaxed) nor a line end */
static inline void dkim_body_content(struct dkim_body *body, unsigned char c)
{
    for (; body->empty_lines; body->empty_lines--) {
        dkim_body_put(body, '\r');
        dkim_body_put(body, '\n');
    }
    if (body->wsp_pending) {
        dkim_body_put(body, ' ');
        body->wsp_pending = 0;
    }
    dkim_body_put(body, c);
    body->line_has_content = 1;
}

/* dkim_body_content_run - bytes that are all plain content (no CR; relaxed: no WSP) */
static inline void dkim_body_content_run(struct dkim_body *body, const unsigned char *run,
                                         size_t len)
{
    dkim_body_content(body, run[0]);
    run++;
    len--;
    body->written += len;
    while (len) {
        if (body->stage_len == sizeof(body->stage))
            dkim_body_flush(body);
        size_t n = sizeof(body->stage) - body->stage_len;
        if (n > len)
            n = len;
        memcpy(body->stage + body->stage_len, run, n);
        body->stage_len += n;
        run += n;
        len -= n;
    }
}

/* dkim_body_line_end - a CRLF: end a line with content, hold back an empty one */
static inline void dkim_body_line_end(struct dkim_body *body)
{
    body->wsp_pending = 0; /* relaxed: white space at the end of a line is dropped */
    if (body->line_has_content) {
        dkim_body_put(body, '\r');
        dkim_body_put(body, '\n');
        body->line_has_content = 0;
    } else {
        body->empty_lines++;
    }
}

/* dkim_body_start - the state of an empty body */
static int dkim_body_start(struct dkim_body *body)
{
    body->failed = 0;
    body->cr_pending = body->wsp_pending = body->line_has_content = 0;
    body->written = body->empty_lines = 0;
    body->stage_len = 0;
    return EVP_DigestInit_ex(body->md, body->sha256, NULL) == 1 ? 0 : -1;
}

/* dkim_body_new - allocate and start */
struct dkim_body *dkim_body_new(enum dkim_canon canon)
{
    struct dkim_body *body = xcalloc(1, sizeof(*body));
    body->canon = canon;
    body->md = EVP_MD_CTX_new();
    body->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (body->md == NULL || body->sha256 == NULL || dkim_body_start(body) < 0) {
        dkim_body_free(body);
        return NULL;
    }
    return body;
}

/* dkim_body_free - release */
void dkim_body_free(struct dkim_body *body)
{
    if (body == NULL)
        return;
    EVP_MD_CTX_free(body->md);
    EVP_MD_free(body->sha256);
    free(body);
}

/* bytes that need the state machine; runs of other bytes are copied whole */
static const unsigned char dkim_special_simple[256] = {['\r'] = 1};
static const unsigned char dkim_special_relaxed[256] = {['\r'] = 1, [' '] = 1, ['\t'] = 1};
/* dkim_body_update - run the state machine over one chunk */
void dkim_body_update(struct dkim_body *body, const void *data, size_t len)
{
    const unsigned char *p = data;
    int relaxed = body->canon == DKIM_CANON_RELAXED;
    const unsigned char *special = relaxed ? dkim_special_relaxed : dkim_special_simple;

    for (size_t i = 0; i < len; i++) {
        if (!body->cr_pending && !special[p[i]]) {
            size_t run = i + 1;
            if (relaxed) {
                /* a single SP between two plain bytes is already canonical */
                while (run < len) {
                    if (!special[p[run]])
                        run++;
                    else if (p[run] == ' ' && run + 1 < len && !special[p[run + 1]])
                        run += 2;
                    else
                        break;
                }
            } else {
                const unsigned char *cr = memchr(p + run, '\r', len - run);
                run = cr ? (size_t)(cr - p) : len;
            }
            dkim_body_content_run(body, p + i, run - i);
            i = run - 1;
            continue;
        }
        unsigned char c = p[i];
        if (body->cr_pending) {
            body->cr_pending = 0;
            if (c == '\n') {
                dkim_body_line_end(body);
                continue;
            }
            dkim_body_content(body, '\r'); /* a bare CR is data */
        }
        if (c == '\r')
            body->cr_pending = 1;
        else if (relaxed && (c == ' ' || c == '\t'))
            body->wsp_pending = 1;
        else
            dkim_body_content(body, c);
    }
}

/* dkim_body_final - the end-of-body rules, then the digest */
int dkim_body_final(struct dkim_body *body, struct dkim_body_hash *out)
{
    unsigned int md_len = 0;
    int rc = -1;

    if (body->cr_pending)
        dkim_body_content(body, '\r');
    body->wsp_pending = 0;
    /* a last line without CRLF gets one; simple: an empty body is one CRLF (§3.4.3) */
    if (body->line_has_content || (body->canon == DKIM_CANON_SIMPLE && body->written == 0)) {
        dkim_body_put(body, '\r');
        dkim_body_put(body, '\n');
    }
    dkim_body_flush(body);
    if (body->failed)
        goto fail;
    if (EVP_DigestFinal_ex(body->md, out->hash, &md_len) != 1 || md_len != DKIM_HASH_LEN)
        goto fail;
    out->canon = body->canon;
    rc = 0;
fail:
    if (dkim_body_start(body) < 0)
        body->failed = 1;
    return rc;
}

/* dkim_is_wsp - SP or HTAB */
static inline int dkim_is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

/* dkim_canon_header_field - one field, simple (as is) or relaxed (§3.4.2) */
int dkim_canon_header_field(enum dkim_canon canon, const char *field, size_t len, struct buf *out)
{
    if (canon == DKIM_CANON_SIMPLE) {
        if (buf_append(out, field, len) < 0)
            return -1;
        if (len < 2 || field[len - 2] != '\r' || field[len - 1] != '\n')
            return buf_append(out, "\r\n", 2);
        return 0;
    }

    const char *colon = memchr(field, ':', len);
    if (colon == NULL)
        return -1;
    size_t name_len = (size_t)(colon - field);
    while (name_len && dkim_is_wsp(field[name_len - 1]))
        name_len--;
    char lower[256];
    size_t done = 0;
    while (done < name_len) {
        size_t n = name_len - done < sizeof(lower) ? name_len - done : sizeof(lower);
        for (size_t i = 0; i < n; i++)
            lower[i] = (char)util_lower((unsigned char)field[done + i]);
        if (buf_append(out, lower, n) < 0)
            return -1;
        done += n;
    }
    if (buf_append(out, ":", 1) < 0)
        return -1;

    /* value: unfold (drop CRLF and LF), runs of WSP to one SP, none at either end */
    const char *p = colon + 1, *end = field + len;
    int wsp = 0, started = 0;
    while (p < end) {
        const char *run = p;
        while (p < end && *p != '\r' && *p != '\n' && !dkim_is_wsp(*p))
            p++;
        if (p > run) {
            if (wsp && started && buf_append(out, " ", 1) < 0)
                return -1;
            if (buf_append(out, run, (size_t)(p - run)) < 0)
                return -1;
            started = 1;
            wsp = 0;
            continue;
        }
        if (*p == '\r' && p + 1 < end && p[1] == '\n')
            p += 2;
        else if (*p == '\n')
            p++;
        else if (*p == '\r') { /* a bare CR is data */
            if (wsp && started && buf_append(out, " ", 1) < 0)
                return -1;
            if (buf_append(out, "\r", 1) < 0)
                return -1;
            started = 1;
            wsp = 0;
            p++;
        } else {
            wsp = 1;
            p++;
        }
    }
    return buf_append(out, "\r\n", 2);
}

/* dkim_hash_ctx_init - SHA-256 fetched once, scratch buffers kept between messages */
int dkim_hash_ctx_init(struct dkim_hash_ctx *hc)
{
    memset(hc, 0, sizeof(*hc));
    buf_init(&hc->canon, LIMIT_DKIM_HEADER_BLOCK + LIMIT_DKIM_FIELD);
    hc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    hc->md = EVP_MD_CTX_new();
    if (hc->sha256 == NULL || hc->md == NULL) {
        dkim_hash_ctx_cleanup(hc);
        return -1;
    }
    return 0;
}

/* dkim_hash_ctx_cleanup - release */
void dkim_hash_ctx_cleanup(struct dkim_hash_ctx *hc)
{
    EVP_MD_free(hc->sha256);
    EVP_MD_CTX_free(hc->md);
    buf_cleanup(&hc->canon);
    free(hc->fields);
    free(hc->used);
    memset(hc, 0, sizeof(*hc));
}

/* dkim_header_hash_ctx - §3.7 step 2: the chosen fields, then the signature field */
int dkim_header_hash_ctx(struct dkim_hash_ctx *hc, const char *hdr, size_t len,
                         const char *const *names, const size_t *name_lens, size_t count,
                         enum dkim_canon canon, const char *sig_field, size_t sig_len,
                         unsigned char hash[DKIM_HASH_LEN])
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t nfields = 0;
    unsigned int md_len = 0;

    buf_reset(&hc->canon);
    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        if (f.name_len == 0)
            continue;
        if (nfields == hc->cap) {
            hc->cap = hc->cap ? hc->cap * 2 : 32;
            hc->fields = xrealloc(hc->fields, hc->cap * sizeof(*hc->fields));
            hc->used = xrealloc(hc->used, hc->cap);
        }
        hc->fields[nfields] = f;
        hc->used[nfields++] = 0;
    }
    for (size_t n = 0; n < count; n++) {
        for (size_t i = nfields; i-- > 0;) {
            const struct hdr_field *field = &hc->fields[i];
            if (hc->used[i] || !hdr_name_is(hdr, field, names[n], name_lens[n]))
                continue;
            hc->used[i] = 1;
            if (dkim_canon_header_field(canon, hdr + field->off, field->end - field->off,
                                        &hc->canon) < 0)
                return -1;
            break;
        }
    }
    if (dkim_canon_header_field(canon, sig_field, sig_len, &hc->canon) < 0)
        return -1;
    /* the signature field is hashed without its final CRLF (§3.7) */
    hc->canon.len -= 2;
    if (EVP_DigestInit_ex(hc->md, hc->sha256, NULL) != 1 ||
        EVP_DigestUpdate(hc->md, hc->canon.data, hc->canon.len) != 1 ||
        EVP_DigestFinal_ex(hc->md, hash, &md_len) != 1 || md_len != DKIM_HASH_LEN)
        return -1;
    return 0;
}

/* dkim_header_hash - the same with a context of its own */
int dkim_header_hash(const char *hdr, size_t len, const char *const *names, const size_t *name_lens,
                     size_t count, enum dkim_canon canon, const char *sig_field, size_t sig_len,
                     unsigned char hash[DKIM_HASH_LEN])
{
    struct dkim_hash_ctx hc;
    if (dkim_hash_ctx_init(&hc) < 0)
        return -1;
    int rc = dkim_header_hash_ctx(&hc, hdr, len, names, name_lens, count, canon, sig_field, sig_len,
                                  hash);
    dkim_hash_ctx_cleanup(&hc);
    return rc;
}

/* dkim_base64 - RFC 4648 §4 with padding, no line breaks */
int dkim_base64(const unsigned char *data, size_t len, struct buf *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char quad[4];
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned long v =
            (unsigned long)data[i] << 16 | (unsigned long)data[i + 1] << 8 | data[i + 2];
        quad[0] = alphabet[v >> 18 & 63];
        quad[1] = alphabet[v >> 12 & 63];
        quad[2] = alphabet[v >> 6 & 63];
        quad[3] = alphabet[v & 63];
        if (buf_append(out, quad, 4) < 0)
            return -1;
    }
    if (i < len) {
        unsigned long v = (unsigned long)data[i] << 16;
        if (i + 1 < len)
            v |= (unsigned long)data[i + 1] << 8;
        quad[0] = alphabet[v >> 18 & 63];
        quad[1] = alphabet[v >> 12 & 63];
        quad[2] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        quad[3] = '=';
        if (buf_append(out, quad, 4) < 0)
            return -1;
    }
    return 0;
}
