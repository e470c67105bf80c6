/*
 * dkim_verify - check DKIM-Signature fields against keys the caller gives.
 *
 * RFC 6376 §6.1 (verifier actions: §6.1.1 validate the field, §6.1.3 the
 * hashes), §3.5 (tags; c= defaults to simple/simple, a body canonicalisation
 * alone to header "simple"), §3.7 (b= value emptied, "including all
 * surrounding whitespace" up to the next ";"), RFC 8301 §3.1-3.2 (rsa-sha1
 * and RSA keys under 1024 bits fail), RFC 8463 §3 (ed25519-sha256).
 *
 * For `coexctl dkim verify` and for tests: offline, the keys come from the
 * caller. Does not: look keys up in DNS, honour l= (coex never signs with
 * it; a signature with l= is reported permerror), or judge t= in the future.
 *
 * The body is hashed at most once per canonicalisation and verification
 * (struct dkim_body_memo), however many signatures name it: a message with
 * the same signature copied many times costs one pass over its body, and
 * only once a signature has passed every check that needs no hash.
 */
#include "dkim_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "hdr.h"
#include "util.h"

#define DKIM_SIG_MAX 1024

/* dkim_status_name - for logs and coexctl */
const char *dkim_status_name(enum dkim_status status)
{
    switch (status) {
    case DKIM_PASS:
        return "pass";
    case DKIM_FAIL:
        return "fail";
    case DKIM_NEUTRAL:
        return "neutral";
    default:
        return "permerror";
    }
}

/* dkim_span_is - span equals a C string exactly */
int dkim_span_is(const char *s, size_t len, const char *want)
{
    return strlen(want) == len && memcmp(s, want, len) == 0;
}

/* dkim_copy_name - a d= or s= value into a result slot */
static void dkim_copy_name(char *dst, const char *s, size_t len)
{
    if (len > LIMIT_DKIM_NAME)
        len = LIMIT_DKIM_NAME;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* dkim_parse_canon - "relaxed/simple", "simple", ... (§3.5 c=) */
int dkim_parse_canon(const char *c, size_t len, enum dkim_canon *hc, enum dkim_canon *bc)
{
    const char *slash = memchr(c, '/', len);
    size_t head_len = slash ? (size_t)(slash - c) : len;
    const char *body = slash ? slash + 1 : NULL;
    size_t body_len = slash ? len - head_len - 1 : 0;

    if (dkim_span_is(c, head_len, "relaxed"))
        *hc = DKIM_CANON_RELAXED;
    else if (dkim_span_is(c, head_len, "simple"))
        *hc = DKIM_CANON_SIMPLE;
    else
        return -1;
    *bc = DKIM_CANON_SIMPLE;
    if (body && dkim_span_is(body, body_len, "relaxed"))
        *bc = DKIM_CANON_RELAXED;
    else if (body && !dkim_span_is(body, body_len, "simple"))
        return -1;
    return 0;
}

/* dkim_verify_sig - the cryptographic check of the header hash */
static int dkim_verify_sig(EVP_PKEY *pkey, enum dkim_alg alg, const unsigned char *sig,
                           size_t sig_len, const unsigned char hash[DKIM_HASH_LEN])
{
    int ok = 0;
    if (alg == DKIM_ALG_RSA_SHA256) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        ok = ctx && EVP_PKEY_verify_init(ctx) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1 &&
             EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1 &&
             EVP_PKEY_verify(ctx, sig, sig_len, hash, DKIM_HASH_LEN) == 1;
        EVP_PKEY_CTX_free(ctx);
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        ok = md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, hash, DKIM_HASH_LEN) == 1;
        EVP_MD_CTX_free(md);
    }
    ERR_clear_error();
    return ok;
}

/* dkim_verify_hash - the same check as a verified field gets, for ARC */
int dkim_verify_hash(const struct dkim_pubkey *key, enum dkim_alg alg, const unsigned char *sig,
                     size_t sig_len, const unsigned char hash[DKIM_HASH_LEN])
{
    if (key->pkey == NULL || key->alg != alg ||
        (alg == DKIM_ALG_RSA_SHA256 && EVP_PKEY_get_bits(key->pkey) < 1024))
        return 0;
    return dkim_verify_sig(key->pkey, alg, sig, sig_len, hash);
}

/* dkim_header_b - the first characters of b=, white space skipped (RFC 6008 §4) */
static void dkim_header_b(const char *b, size_t b_len, char out[DKIM_HEADER_B_LEN + 1])
{
    size_t n = 0;
    for (size_t i = 0; i < b_len && n < DKIM_HEADER_B_LEN; i++) {
        unsigned char c = (unsigned char)b[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/')) {
            n = 0; /* not base64: nothing to quote */
            break;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
}

/* dkim_parse_h - split h= on ":" with FWS around names */
int dkim_parse_h(const char *h, size_t len, struct dkim_hspans *out)
{
    size_t pos = 0;
    out->count = 0;
    while (pos <= len) {
        size_t end = pos;
        while (end < len && h[end] != ':')
            end++;
        size_t a = pos, b = end;
        while (a < b && (h[a] == ' ' || h[a] == '\t' || h[a] == '\r' || h[a] == '\n'))
            a++;
        while (b > a &&
               (h[b - 1] == ' ' || h[b - 1] == '\t' || h[b - 1] == '\r' || h[b - 1] == '\n'))
            b--;
        if (a == b || out->count == LIMIT_DKIM_SIGN_HEADERS)
            return -1;
        out->names[out->count] = h + a;
        out->lens[out->count++] = b - a;
        pos = end + 1;
    }
    return 0;
}

/* dkim_hspans_has - a name of the list, in any case */
int dkim_hspans_has(const struct dkim_hspans *hs, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < hs->count; i++)
        if (hs->lens[i] == len && util_strncaseeq(hs->names[i], name, len))
            return 1;
    return 0;
}

/* dkim_parse_expiry - x= digits, read while the value stays under 2^40 */
long long dkim_parse_expiry(const char *x, size_t len)
{
    long long expiry = 0;
    for (size_t i = 0; i < len && x[i] >= '0' && x[i] <= '9' && expiry < (1LL << 40); i++)
        expiry = expiry * 10 + (x[i] - '0');
    return expiry;
}

/* dkim_field_without_b - §3.7: from after "b=" to the next ";", white space included */
int dkim_field_without_b(const char *hdr, const struct hdr_field *f, struct buf *out)
{
    const char *b;
    size_t b_len;
    if (dkim_tag_find(hdr + f->value_off, f->value_end - f->value_off, "b", &b, &b_len) != 1)
        return -1;
    size_t b_start = (size_t)(b - hdr), b_end = b_start + b_len;
    while (b_start > f->value_off && hdr[b_start - 1] != '=')
        b_start--;
    while (b_end < f->value_end && hdr[b_end] != ';')
        b_end++;
    if (buf_append(out, hdr + f->off, b_start - f->off) < 0 ||
        buf_append(out, hdr + b_end, f->value_end - b_end) < 0)
        return -1;
    return 0;
}

/* dkim_body_memo_init - nothing hashed yet */
void dkim_body_memo_init(struct dkim_body_memo *m, const char *body, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->body = body;
    m->len = len;
}

/* dkim_body_memo_seed - take a hash made elsewhere */
void dkim_body_memo_seed(struct dkim_body_memo *m, const struct dkim_body_hash *h)
{
    m->hash[h->canon] = *h;
    m->have |= 1u << h->canon;
}

/* dkim_body_memo_get - hash the body with canon unless it was done before */
const unsigned char *dkim_body_memo_get(struct dkim_body_memo *m, enum dkim_canon canon)
{
    unsigned bit = 1u << canon;
    if (m->have & bit)
        return m->hash[canon].hash;
    struct dkim_body *body = dkim_body_new(canon);
    if (body == NULL)
        return NULL;
    m->computed++;
    dkim_body_update(body, m->body, m->len);
    int rc = dkim_body_final(body, &m->hash[canon]);
    dkim_body_free(body);
    if (rc < 0)
        return NULL;
    m->have |= bit;
    return m->hash[canon].hash;
}

/* dkim_verify_one - one DKIM-Signature field */
static void dkim_verify_one(const char *msg, size_t header_end, struct dkim_body_memo *memo,
                            const struct hdr_field *f, struct dkim_pubkey *const *keys,
                            size_t nkeys, long long now, struct dkim_result *r)
{
    const char *list = msg + f->value_off, *v, *a, *b, *bh, *d, *s, *h, *c = "simple/simple", *x;
    size_t list_len = f->value_end - f->value_off, v_len, a_len, b_len, bh_len, d_len, s_len, h_len,
           c_len = 13, x_len, sig_len, bh_raw_len;
    unsigned char sig[DKIM_SIG_MAX], bh_raw[DKIM_HASH_LEN + 4], hash[DKIM_HASH_LEN];
    const unsigned char *body_hash;
    enum dkim_canon hc, bc;
    struct dkim_hspans hs;
    struct dkim_pubkey *key = NULL;
    struct buf signed_field;

    memset(r, 0, sizeof(*r));
    r->status = DKIM_PERMERROR;
    buf_init(&signed_field, LIMIT_DKIM_FIELD);
    if (dkim_tag_find(list, list_len, "v", &v, &v_len) != 1 || !dkim_span_is(v, v_len, "1") ||
        dkim_tag_find(list, list_len, "a", &a, &a_len) != 1 ||
        dkim_tag_find(list, list_len, "b", &b, &b_len) != 1 ||
        dkim_tag_find(list, list_len, "bh", &bh, &bh_len) != 1 ||
        dkim_tag_find(list, list_len, "d", &d, &d_len) != 1 ||
        dkim_tag_find(list, list_len, "s", &s, &s_len) != 1 ||
        dkim_tag_find(list, list_len, "h", &h, &h_len) != 1 ||
        dkim_tag_find(list, list_len, "c", &c, &c_len) < 0) {
        dkim_errf(r->reason, sizeof(r->reason), "malformed field or a required tag missing");
        goto done;
    }
    dkim_copy_name(r->domain, d, d_len);
    dkim_copy_name(r->selector, s, s_len);
    dkim_header_b(b, b_len, r->header_b);
    if (dkim_span_is(a, a_len, "rsa-sha256"))
        r->alg = DKIM_ALG_RSA_SHA256;
    else if (dkim_span_is(a, a_len, "ed25519-sha256"))
        r->alg = DKIM_ALG_ED25519_SHA256;
    else {
        dkim_errf(r->reason, sizeof(r->reason), "unsupported a=%.*s", (int)a_len, a);
        goto done;
    }
    if (dkim_parse_canon(c, c_len, &hc, &bc) < 0 || dkim_parse_h(h, h_len, &hs) < 0 ||
        !dkim_hspans_has(&hs, "from")) {
        dkim_errf(r->reason, sizeof(r->reason), "bad c= or h= (h= must list from)");
        goto done;
    }
    if (dkim_tag_find(list, list_len, "l", &x, &x_len) != 0) {
        dkim_errf(r->reason, sizeof(r->reason), "l= is not supported");
        goto done;
    }
    if (now > 0 && dkim_tag_find(list, list_len, "x", &x, &x_len) == 1) {
        long long expiry = dkim_parse_expiry(x, x_len);
        if (expiry < now) {
            dkim_errf(r->reason, sizeof(r->reason), "signature expired (x=%lld)", expiry);
            goto done;
        }
    }
    for (size_t i = 0; i < nkeys && key == NULL; i++)
        if (strlen(keys[i]->domain) == d_len && util_strncaseeq(keys[i]->domain, d, d_len) &&
            strlen(keys[i]->selector) == s_len && util_strncaseeq(keys[i]->selector, s, s_len))
            key = keys[i];
    if (key == NULL) {
        r->status = DKIM_NEUTRAL;
        dkim_errf(r->reason, sizeof(r->reason), "no key given for %s._domainkey.%s", r->selector,
                  r->domain);
        goto done;
    }
    if (key->pkey == NULL || key->alg != r->alg ||
        (key->alg == DKIM_ALG_RSA_SHA256 && EVP_PKEY_get_bits(key->pkey) < 1024)) {
        dkim_errf(r->reason, sizeof(r->reason), "key revoked, too small, or of another type");
        goto done;
    }
    if (dkim_base64_decode(bh, bh_len, bh_raw, sizeof(bh_raw), &bh_raw_len) < 0 ||
        dkim_base64_decode(b, b_len, sig, sizeof(sig), &sig_len) < 0 ||
        bh_raw_len != DKIM_HASH_LEN) {
        dkim_errf(r->reason, sizeof(r->reason), "b= or bh= is not base64 of the right size");
        goto done;
    }

    /* §3.7 step 1: the body hash (the whole body: l= was refused above) */
    if ((body_hash = dkim_body_memo_get(memo, bc)) == NULL) {
        dkim_errf(r->reason, sizeof(r->reason), "cannot hash the body");
        goto done;
    }
    if (memcmp(body_hash, bh_raw, DKIM_HASH_LEN) != 0) {
        r->status = DKIM_FAIL;
        dkim_errf(r->reason, sizeof(r->reason), "body hash does not match");
        goto done;
    }

    /* §3.7 step 2: the field with b= emptied, from after "=" to the next ";" */
    if (dkim_field_without_b(msg, f, &signed_field) < 0 ||
        dkim_header_hash(msg, header_end, hs.names, hs.lens, hs.count, hc, signed_field.data,
                         signed_field.len, hash) < 0) {
        dkim_errf(r->reason, sizeof(r->reason), "cannot hash the header");
        goto done;
    }
    if (!dkim_verify_sig(key->pkey, r->alg, sig, sig_len, hash)) {
        r->status = DKIM_FAIL;
        dkim_errf(r->reason, sizeof(r->reason), "signature does not verify");
        goto done;
    }
    r->status = DKIM_PASS;
    dkim_errf(r->reason, sizeof(r->reason), "%d-bit key", EVP_PKEY_get_bits(key->pkey));
done:
    buf_cleanup(&signed_field);
}

/* dkim_verify_memo - every DKIM-Signature field, top down, body hashes from memo */
int dkim_verify_memo(const char *msg, size_t len, struct dkim_pubkey *const *keys, size_t nkeys,
                     long long now, struct dkim_body_memo *memo, struct dkim_result *results,
                     size_t max, size_t *count)
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t header_end, body_off;

    *count = 0;
    hdr_split(msg, len, &header_end, &body_off);
    if (header_end == 0)
        return -1;
    hdr_iter_init(&it, msg, len);
    while (hdr_iter_next(&it, &f) && *count < max) {
        if (!hdr_name_is(msg, &f, "DKIM-Signature", 14))
            continue;
        dkim_verify_one(msg, header_end, memo, &f, keys, nkeys, now, &results[*count]);
        (*count)++;
    }
    return 0;
}

/* dkim_verify - dkim_verify_memo with a memo of its own */
int dkim_verify(const char *msg, size_t len, struct dkim_pubkey *const *keys, size_t nkeys,
                long long now, struct dkim_result *results, size_t max, size_t *count)
{
    struct dkim_body_memo memo;
    size_t header_end, body_off;
    hdr_split(msg, len, &header_end, &body_off);
    dkim_body_memo_init(&memo, msg + body_off, len - body_off);
    return dkim_verify_memo(msg, len, keys, nkeys, now, &memo, results, max, count);
}
