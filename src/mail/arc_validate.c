/*
 * arc_validate - ARC chain validation, RFC 8617 §5.2.
 *
 * Steps: 1 (no ARC field: none; more than 50 sets: fail), 2 (the newest
 * ARC-Seal says cv=fail: fail), 3 (structure: one AAR, AMS and AS per set,
 * instances 1..N without gap or repetition, cv=none at i=1 and cv=pass
 * above), 4 (the AMS of set N validates, as a DKIM signature would: RFC
 * 6376 §3.7 with the AMS in place of DKIM-Signature, i= being the instance,
 * §4.1.2), 8 (every AS, N down to 1, validates over sets 1..i in increasing
 * order, AAR, AMS, AS within a set, relaxed canonicalisation, its own b=
 * emptied: §4.1.3, §5.1.1), 9 (pass). Steps 5-7 (oldest-pass, and the AMS
 * of older sets, which may legitimately fail after changes) are optional
 * and not done.
 *
 * The AMS body hash comes from a struct dkim_body_memo: one that
 * dkim_verify_memo filled for the same message is reused, so DKIM and ARC
 * together hash the body once per canonicalisation.
 *
 * Does not: look keys up (the caller passes them), judge t= (only an AMS
 * x= in the past fails when a time is given), or accept l= in an AMS.
 */
#include "arc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "util.h"

/* RSA-8192 signatures are 1024 bytes */
#define ARC_SIG_MAX 1024

/* scratch space of one validation */
struct arc_work {
    const char *msg;
    size_t header_end, body_off, len;
    struct dkim_pubkey *const *keys;
    size_t nkeys;
    long long now;
    struct dkim_body_memo *memo; /* the body hashes, borrowed */
    struct arc_sets sets;
    struct buf canon, field;
    char *reason; /* out->reason */
};

/* arc_why - set the reason */
static void arc_why(struct arc_work *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void arc_why(struct arc_work *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->reason, LIMIT_ARC_REASON, fmt, ap);
    va_end(ap);
}

/* arc_key_for - the key for d= and s= of field f, or NULL (reason set) */
static struct dkim_pubkey *arc_key_for(struct arc_work *w, const struct hdr_field *f,
                                       const char *what, int instance, enum dkim_alg *alg)
{
    const char *a, *d, *s;
    size_t a_len, d_len, s_len;
    if (arc_tag(w->msg, f, "a", &a, &a_len) != 1 || arc_tag(w->msg, f, "d", &d, &d_len) != 1 ||
        arc_tag(w->msg, f, "s", &s, &s_len) != 1) {
        arc_why(w, "%s i=%d: malformed, or a=, d= or s= missing", what, instance);
        return NULL;
    }
    if (dkim_span_is(a, a_len, "rsa-sha256"))
        *alg = DKIM_ALG_RSA_SHA256;
    else if (dkim_span_is(a, a_len, "ed25519-sha256"))
        *alg = DKIM_ALG_ED25519_SHA256;
    else {
        arc_why(w, "%s i=%d: unsupported a=%.*s", what, instance, (int)(a_len > 32 ? 32 : a_len),
                a);
        return NULL;
    }
    for (size_t i = 0; i < w->nkeys; i++) {
        struct dkim_pubkey *k = w->keys[i];
        if (strlen(k->domain) == d_len && util_strncaseeq(k->domain, d, d_len) &&
            strlen(k->selector) == s_len && util_strncaseeq(k->selector, s, s_len))
            return k;
    }
    arc_why(w, "no key given for %.*s._domainkey.%.*s (%s i=%d)", (int)(s_len > 63 ? 63 : s_len), s,
            (int)(d_len > 63 ? 63 : d_len), d, what, instance);
    return NULL;
}

/* arc_b_decode - the b= of field f */
static int arc_b_decode(struct arc_work *w, const struct hdr_field *f, unsigned char *sig,
                        size_t *sig_len)
{
    const char *b;
    size_t b_len;
    return arc_tag(w->msg, f, "b", &b, &b_len) == 1 &&
                   dkim_base64_decode(b, b_len, sig, ARC_SIG_MAX, sig_len) == 0 && *sig_len > 0
               ? 0
               : -1;
}

/* arc_check_ams - §5.2 step 4: the AMS of the newest set, as DKIM checks a signature */
static int arc_check_ams(struct arc_work *w, int instance)
{
    const struct hdr_field *f = &w->sets.set[instance].field[ARC_AMS];
    const char *h, *bh, *c = "simple/simple", *x;
    size_t h_len, bh_len, c_len = 13, x_len, sig_len, bh_raw_len;
    unsigned char sig[ARC_SIG_MAX], bh_raw[DKIM_HASH_LEN + 4], hash[DKIM_HASH_LEN];
    const unsigned char *body_hash;
    enum dkim_canon hc, bc;
    enum dkim_alg alg;
    struct dkim_hspans hs;

    struct dkim_pubkey *key = arc_key_for(w, f, "ARC-Message-Signature", instance, &alg);
    if (key == NULL)
        return -1;
    if (arc_tag(w->msg, f, "h", &h, &h_len) != 1 || arc_tag(w->msg, f, "bh", &bh, &bh_len) != 1 ||
        arc_tag(w->msg, f, "c", &c, &c_len) < 0 || dkim_parse_canon(c, c_len, &hc, &bc) < 0 ||
        dkim_parse_h(h, h_len, &hs) < 0 || dkim_hspans_has(&hs, "arc-seal")) { /* §4.1.2 */
        arc_why(w, "ARC-Message-Signature i=%d: bad or missing h=, bh= or c=", instance);
        return -1;
    }
    if (arc_tag(w->msg, f, "l", &x, &x_len) != 0) {
        arc_why(w, "ARC-Message-Signature i=%d: l= is not supported", instance);
        return -1;
    }
    if (w->now > 0 && arc_tag(w->msg, f, "x", &x, &x_len) == 1) {
        long long expiry = dkim_parse_expiry(x, x_len);
        if (expiry < w->now) {
            arc_why(w, "ARC-Message-Signature i=%d: expired (x=%lld)", instance, expiry);
            return -1;
        }
    }
    if (dkim_base64_decode(bh, bh_len, bh_raw, sizeof(bh_raw), &bh_raw_len) < 0 ||
        bh_raw_len != DKIM_HASH_LEN || arc_b_decode(w, f, sig, &sig_len) < 0) {
        arc_why(w, "ARC-Message-Signature i=%d: b= or bh= is not base64 of the right size",
                instance);
        return -1;
    }
    if ((body_hash = dkim_body_memo_get(w->memo, bc)) == NULL)
        goto internal;
    if (memcmp(body_hash, bh_raw, DKIM_HASH_LEN) != 0) {
        arc_why(w, "ARC-Message-Signature i=%d: body hash does not match", instance);
        return -1;
    }
    buf_reset(&w->field);
    if (dkim_field_without_b(w->msg, f, &w->field) < 0 ||
        dkim_header_hash(w->msg, w->header_end, hs.names, hs.lens, hs.count, hc, w->field.data,
                         w->field.len, hash) < 0)
        goto internal;
    if (!dkim_verify_hash(key, alg, sig, sig_len, hash)) {
        arc_why(w, "ARC-Message-Signature i=%d: signature does not verify", instance);
        return -1;
    }
    return 0;
internal:
    arc_why(w, "ARC-Message-Signature i=%d: cannot hash the message", instance);
    return -1;
}

/* arc_check_as - §5.2 step 8 for one seal: sets 1..instance, §5.1.1 order */
static int arc_check_as(struct arc_work *w, int instance)
{
    const struct hdr_field *f = &w->sets.set[instance].field[ARC_AS];
    unsigned char sig[ARC_SIG_MAX], hash[DKIM_HASH_LEN];
    unsigned int hash_len = 0;
    size_t sig_len;
    enum dkim_alg alg;
    const char *h;
    size_t h_len;

    struct dkim_pubkey *key = arc_key_for(w, f, "ARC-Seal", instance, &alg);
    if (key == NULL)
        return -1;
    if (arc_tag(w->msg, f, "h", &h, &h_len) != 0) {
        arc_why(w, "ARC-Seal i=%d: h= is not allowed in a seal (RFC 8617 §4.1.3)", instance);
        return -1;
    }
    if (arc_b_decode(w, f, sig, &sig_len) < 0) {
        arc_why(w, "ARC-Seal i=%d: b= is not base64", instance);
        return -1;
    }
    buf_reset(&w->canon);
    for (int i = 1; i <= instance; i++)
        for (int k = 0; k < ARC_KINDS; k++) {
            const struct hdr_field *g = &w->sets.set[i].field[k];
            if (i == instance && k == ARC_AS)
                break;
            if (dkim_canon_header_field(DKIM_CANON_RELAXED, w->msg + g->off, g->end - g->off,
                                        &w->canon) < 0)
                goto internal;
        }
    buf_reset(&w->field);
    if (dkim_field_without_b(w->msg, f, &w->field) < 0 ||
        dkim_canon_header_field(DKIM_CANON_RELAXED, w->field.data, w->field.len, &w->canon) < 0)
        goto internal;
    w->canon.len -= 2; /* the seal itself without its CRLF, as in RFC 6376 §3.7 */
    if (EVP_Digest(w->canon.data, w->canon.len, hash, &hash_len, EVP_sha256(), NULL) != 1 ||
        hash_len != DKIM_HASH_LEN)
        goto internal;
    if (!dkim_verify_hash(key, alg, sig, sig_len, hash)) {
        arc_why(w, "ARC-Seal i=%d: signature does not verify", instance);
        return -1;
    }
    return 0;
internal:
    arc_why(w, "ARC-Seal i=%d: cannot hash the ARC sets", instance);
    return -1;
}

/* arc_chain_steps - §5.2 steps 1-9 over w->sets; the verdict goes to out */
static void arc_chain_steps(struct arc_work *w, struct arc_chain *out)
{
    struct arc_sets *sets = &w->sets;
    int n = sets->max_instance;
    enum arc_cv cv;

    out->instance = n;
    out->sealable = n < LIMIT_ARC_SETS;
    out->cv = ARC_CV_FAIL;
    if (n > LIMIT_ARC_SETS) { /* step 1 */
        arc_why(w, "more than %d ARC sets (i=%d)", LIMIT_ARC_SETS, n);
        return;
    }
    if (n > 0 && sets->set[n].count[ARC_AS] > 0) {
        const struct hdr_field *seal = &sets->set[n].field[ARC_AS];
        const char *d;
        size_t d_len;
        if (arc_tag(w->msg, seal, "d", &d, &d_len) == 1 && d_len <= LIMIT_DKIM_NAME) {
            memcpy(out->last_domain, d, d_len);
            out->last_domain[d_len] = '\0';
            if (!dkim_name_ok(out->last_domain))
                out->last_domain[0] = '\0';
        }
        if (arc_cv_read(w->msg, seal, &cv) == 0 && cv == ARC_CV_FAIL) { /* step 2 */
            out->sealable = 0; /* §5.1 step 1: nothing to add after a fail */
            arc_why(w, "the newest ARC-Seal (i=%d) says cv=fail", n);
            return;
        }
    }
    if (sets->problem[0]) { /* step 3.1, 3.2 */
        arc_why(w, "%s", sets->problem);
        return;
    }
    if (n == 0) {
        arc_why(w, "no ARC set with a readable i=");
        return;
    }
    for (int i = 1; i <= n; i++) { /* step 3.3 */
        if (arc_cv_read(w->msg, &sets->set[i].field[ARC_AS], &cv) < 0 ||
            cv != (i == 1 ? ARC_CV_NONE : ARC_CV_PASS)) {
            arc_why(w, "ARC-Seal i=%d: cv= must be %s", i, i == 1 ? "none" : "pass");
            return;
        }
    }
    if (arc_check_ams(w, n) < 0) /* step 4 */
        return;
    for (int i = n; i >= 1; i--) /* step 8 */
        if (arc_check_as(w, i) < 0)
            return;
    out->cv = ARC_CV_PASS; /* step 9 */
    w->reason[0] = '\0';
}

/* arc_chain_validate_memo - collect the sets, run the steps */
int arc_chain_validate_memo(const char *msg, size_t len, struct dkim_pubkey *const *keys,
                            size_t nkeys, long long now, struct dkim_body_memo *memo,
                            struct arc_chain *out)
{
    struct arc_work *w;

    memset(out, 0, sizeof(*out));
    w = xcalloc(1, sizeof(*w));
    w->msg = msg;
    w->len = len;
    w->keys = keys;
    w->nkeys = nkeys;
    w->now = now;
    w->memo = memo;
    w->reason = out->reason;
    hdr_split(msg, len, &w->header_end, &w->body_off);
    if (w->header_end == 0) {
        out->cv = ARC_CV_FAIL;
        arc_why(w, "no header block");
        free(w);
        return -1;
    }
    buf_init(&w->canon, LIMIT_DKIM_HEADER_BLOCK + LIMIT_ARC_FIELD);
    buf_init(&w->field, LIMIT_DKIM_HEADER_BLOCK);
    arc_sets_collect(msg, w->header_end, &w->sets);
    if (!w->sets.any) {
        out->cv = ARC_CV_NONE; /* step 1 */
        out->sealable = 1;
    } else {
        arc_chain_steps(w, out);
    }
    buf_cleanup(&w->canon);
    buf_cleanup(&w->field);
    free(w);
    return 0;
}

/* arc_chain_validate - arc_chain_validate_memo with a memo of its own */
int arc_chain_validate(const char *msg, size_t len, struct dkim_pubkey *const *keys, size_t nkeys,
                       long long now, struct arc_chain *out)
{
    struct dkim_body_memo memo;
    size_t header_end, body_off;
    hdr_split(msg, len, &header_end, &body_off);
    dkim_body_memo_init(&memo, msg + body_off, len - body_off);
    return arc_chain_validate_memo(msg, len, keys, nkeys, now, &memo, out);
}
