/*
 * arc_seal - add coex's ARC set to a message, RFC 8617 §5.1.
 *
 * §5.1 step 1 (no set after a chain whose newest seal says cv=fail; none
 * past i=50, §4.2.1), step 2 (i = highest + 1), step 3 (AAR, then AMS, then
 * AS). §4.1.1 (AAR: "i=N; authserv-id; resinfo", RFC 8601 §2.2), §4.1.2
 * (AMS: a DKIM-Signature under another name with i= for the instance and no
 * v=; it covers the DKIM-Signature fields present, never ARC-Seal),
 * §4.1.3 and §5.1.1 (AS: sets 1..i in increasing order, AAR, AMS, AS within
 * a set, relaxed canonicalisation, the new seal with an empty b= last, no
 * bh= and no h=), §5.1.2 (a cv=fail seal covers only its own set).
 *
 * The AMS h= list is dkim_field.c's default list plus the DKIM-Signature
 * fields; folding is dkim_field.c's too, so AMS and DKIM-Signature fold alike.
 *
 * Does not: validate the incoming chain (the caller passes the
 * arc_chain_validate verdict), choose the results (arc_results_text), or
 * place the fields (the caller puts them on top).
 */
#include "arc_int.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "util.h"

#define ARC_AUTHSERV_ID_MAX 255

/* the DKIM-Signature fields present are signed too (§4.1.2) */
#define ARC_EXTRA_HEADER "dkim-signature"

struct arc_sealer {
    struct dkim_key *key; /* borrowed */
    struct dkim_sign_ctx sign;
    int sign_ready;
    struct dkim_hash_ctx hash;
    struct buf aar, ams, seal, canon, sig; /* reused between messages */
    char *names[LIMIT_DKIM_SIGN_HEADERS];  /* owned copies of opts->sign_headers */
    size_t nnames;
    struct dkim_hlist hlist;
};

/* arc_sealer_new - check the key, prepare its context, copy the h= list */
struct arc_sealer *arc_sealer_new(struct dkim_key *key, const struct dkim_opts *opts, char *err,
                                  size_t errlen)
{
    struct arc_sealer *s;

    if (key == NULL || dkim_key_alg(key) != DKIM_ALG_RSA_SHA256) {
        dkim_errf(err, errlen, "ARC seals with an rsa-sha256 key only (see docs/arc.md)");
        return NULL;
    }
    if (opts && opts->sign_headers && opts->sign_headers_count > LIMIT_DKIM_SIGN_HEADERS) {
        dkim_errf(err, errlen, "more than %d header names to sign", LIMIT_DKIM_SIGN_HEADERS);
        return NULL;
    }
    s = xcalloc(1, sizeof(*s));
    s->key = key;
    buf_init(&s->aar, LIMIT_ARC_FIELD);
    buf_init(&s->ams, LIMIT_ARC_FIELD);
    buf_init(&s->seal, LIMIT_ARC_FIELD);
    buf_init(&s->sig, LIMIT_ARC_FIELD);
    buf_init(&s->canon, LIMIT_DKIM_HEADER_BLOCK + 4 * LIMIT_ARC_FIELD);
    if (dkim_hash_ctx_init(&s->hash) < 0) {
        dkim_errf(err, errlen, "SHA-256 is not available");
        goto fail;
    }
    for (size_t i = 0; opts && opts->sign_headers && i < opts->sign_headers_count; i++) {
        const char *name = opts->sign_headers[i];
        if (name == NULL || name[0] == '\0' || strcasecmp(name, "arc-seal") == 0 ||
            strpbrk(name, ": \t\r\n;") != NULL) {
            dkim_errf(err, errlen, "cannot sign \"%s\" in an ARC-Message-Signature",
                      name ? name : "");
            goto fail;
        }
        s->names[i] = xstrdup(name);
        for (char *c = s->names[i]; *c; c++)
            *c = (char)util_lower((unsigned char)*c);
        s->nnames++;
    }
    if (opts && opts->sign_headers && s->nnames == 0) {
        dkim_errf(err, errlen, "an empty list of header names to sign");
        goto fail;
    }
    if (dkim_sign_ctx_init(&s->sign, key, err, errlen) < 0)
        goto fail;
    s->sign_ready = 1;
    return s;
fail:
    arc_sealer_free(s);
    return NULL;
}

/* arc_sealer_free - release contexts, buffers and names */
void arc_sealer_free(struct arc_sealer *s)
{
    if (s == NULL)
        return;
    if (s->sign_ready)
        dkim_sign_ctx_cleanup(&s->sign);
    dkim_hash_ctx_cleanup(&s->hash);
    buf_cleanup(&s->aar);
    buf_cleanup(&s->ams);
    buf_cleanup(&s->seal);
    buf_cleanup(&s->sig);
    buf_cleanup(&s->canon);
    for (size_t i = 0; i < s->nnames; i++)
        free(s->names[i]);
    free(s);
}

/* arc_hlist_build - the configured list, or the default names present (from once more) */
static int arc_hlist_build(struct arc_sealer *s, const char *hdr, size_t len, char *err,
                           size_t errlen)
{
    struct dkim_hlist *h = &s->hlist;

    dkim_hlist_reset(h, SIZE_MAX);
    if (s->nnames == 0)
        return dkim_hlist_default(h, hdr, len, ARC_EXTRA_HEADER, 0, err, errlen);
    for (size_t i = 0; i < s->nnames; i++)
        if (dkim_hlist_add(h, s->names[i], strlen(s->names[i]), 1) < 0) {
            dkim_errf(err, errlen, "more than %d header fields to sign", LIMIT_DKIM_SIGN_HEADERS);
            return -1;
        }
    return 0;
}

/* arc_authserv_id_ok - see arc.h */
int arc_authserv_id_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > ARC_AUTHSERV_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* arc_text_ok - one line of text: no CR, LF or other control byte */
static int arc_text_ok(const char *s)
{
    size_t len = strlen(s);
    if (len > LIMIT_ARC_RESULTS)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/*
 * arc_make_aar - §4.1.1: "i=N; authserv-id; resinfo" (or "; none"), folded
 * at white space; bytes of 0x80 and above in results become '?' (as
 * arc_results_text does in comments): the field stays ASCII whoever wrote
 * the text
 */
static int arc_make_aar(struct arc_sealer *s, int instance, const char *authserv_id,
                        const char *results)
{
    struct dkim_fold fold = {.out = &s->aar, .column = 0};
    char token[ARC_AUTHSERV_ID_MAX + 32];
    char word[LIMIT_ARC_RESULTS]; /* arc_text_ok: results are no longer */
    int n;

    buf_reset(&s->aar);
    if (buf_append_str(&s->aar, "ARC-Authentication-Results:") < 0)
        return -1;
    fold.column = s->aar.len;
    n = snprintf(token, sizeof(token), "i=%d;", instance);
    if (dkim_fold_put(&fold, token, (size_t)n, 0) < 0)
        return -1;
    n = snprintf(token, sizeof(token), "%s;", authserv_id);
    if (n < 0 || (size_t)n >= sizeof(token) || dkim_fold_put(&fold, token, (size_t)n, 0) < 0)
        return -1;
    int words = 0;
    for (const char *p = results; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = p;
        while (*end && *end != ' ' && *end != '\t')
            end++;
        if (end > p) {
            size_t word_len = (size_t)(end - p);
            for (size_t i = 0; i < word_len; i++)
                word[i] = (unsigned char)p[i] >= 0x80 ? '?' : p[i];
            if (dkim_fold_put(&fold, word, word_len, 0) < 0)
                return -1;
            words++;
        }
        p = end;
    }
    if (words == 0 && dkim_fold_put(&fold, "none", 4, 0) < 0) /* RFC 8601 §2.2 no-result */
        return -1;
    return buf_append(&s->aar, "\r\n", 2);
}

/* arc_make_ams - §4.1.2 over the header block; relaxed/relaxed */
static int arc_make_ams(struct arc_sealer *s, const char *hdr, size_t header_end, int instance,
                        const char *bh, long long now, char *err, size_t errlen)
{
    const struct dkim_hlist *h = &s->hlist;
    struct dkim_fold fold = {.out = &s->ams, .column = 0};
    unsigned char hash[DKIM_HASH_LEN];
    char number[32];

    buf_reset(&s->ams);
    buf_reset(&s->sig);
    if (buf_append_str(&s->ams, "ARC-Message-Signature:") < 0)
        goto overflow;
    fold.column = s->ams.len;
    snprintf(number, sizeof(number), "%d", instance);
    if (dkim_fold_tag(&fold, "i", number) < 0 || dkim_fold_tag(&fold, "a", "rsa-sha256") < 0 ||
        dkim_fold_tag(&fold, "c", "relaxed/relaxed") < 0 ||
        dkim_fold_tag(&fold, "d", dkim_key_domain(s->key)) < 0 ||
        dkim_fold_tag(&fold, "s", dkim_key_selector(s->key)) < 0)
        goto overflow;
    snprintf(number, sizeof(number), "%lld", now);
    if (dkim_fold_tag(&fold, "t", number) < 0)
        goto overflow;
    if (dkim_fold_hlist(&fold, h) < 0)
        goto overflow;
    if (dkim_fold_tag(&fold, "bh", bh) < 0 || dkim_fold_put(&fold, "b=", 2, 0) < 0)
        goto overflow;
    if (dkim_header_hash_ctx(&s->hash, hdr, header_end, h->names, h->lens, h->count,
                             DKIM_CANON_RELAXED, s->ams.data, s->ams.len, hash) < 0) {
        dkim_errf(err, errlen, "cannot hash the header block");
        return -1;
    }
    if (dkim_sign_ctx_sign(&s->sign, hash, &s->sig, err, errlen) < 0)
        return -1;
    if (dkim_fold_fill(&fold, s->sig.data, s->sig.len) < 0 || buf_append(&s->ams, "\r\n", 2) < 0)
        goto overflow;
    return 0;
overflow:
    dkim_errf(err, errlen, "ARC-Message-Signature longer than its limit");
    return -1;
}

/* arc_make_seal - §4.1.3, §5.1.1, §5.1.2 */
static int arc_make_seal(struct arc_sealer *s, const char *hdr, const struct arc_sets *sets,
                         int instance, enum arc_cv cv, long long now, char *err, size_t errlen)
{
    struct dkim_fold fold = {.out = &s->seal, .column = 0};
    unsigned char hash[DKIM_HASH_LEN];
    unsigned int hash_len = 0;
    char number[32];

    buf_reset(&s->seal);
    buf_reset(&s->sig);
    buf_reset(&s->canon);
    if (buf_append_str(&s->seal, "ARC-Seal:") < 0)
        goto overflow;
    fold.column = s->seal.len;
    snprintf(number, sizeof(number), "%d", instance);
    if (dkim_fold_tag(&fold, "i", number) < 0 || dkim_fold_tag(&fold, "a", "rsa-sha256") < 0)
        goto overflow;
    snprintf(number, sizeof(number), "%lld", now);
    if (dkim_fold_tag(&fold, "t", number) < 0 || dkim_fold_tag(&fold, "cv", arc_cv_name(cv)) < 0 ||
        dkim_fold_tag(&fold, "d", dkim_key_domain(s->key)) < 0 ||
        dkim_fold_tag(&fold, "s", dkim_key_selector(s->key)) < 0 ||
        dkim_fold_put(&fold, "b=", 2, 0) < 0)
        goto overflow;
    /* §5.1.2: after a failed chain the seal covers its own set only */
    for (int i = 1; cv != ARC_CV_FAIL && i < instance; i++)
        for (int k = 0; k < ARC_KINDS; k++) {
            const struct hdr_field *f = &sets->set[i].field[k];
            if (dkim_canon_header_field(DKIM_CANON_RELAXED, hdr + f->off, f->end - f->off,
                                        &s->canon) < 0)
                goto overflow;
        }
    if (dkim_canon_header_field(DKIM_CANON_RELAXED, s->aar.data, s->aar.len, &s->canon) < 0 ||
        dkim_canon_header_field(DKIM_CANON_RELAXED, s->ams.data, s->ams.len, &s->canon) < 0 ||
        dkim_canon_header_field(DKIM_CANON_RELAXED, s->seal.data, s->seal.len, &s->canon) < 0)
        goto overflow;
    s->canon.len -= 2; /* the seal without its CRLF (RFC 6376 §3.7) */
    if (EVP_Digest(s->canon.data, s->canon.len, hash, &hash_len, EVP_sha256(), NULL) != 1 ||
        hash_len != DKIM_HASH_LEN) {
        dkim_errf(err, errlen, "cannot hash the ARC sets");
        return -1;
    }
    if (dkim_sign_ctx_sign(&s->sign, hash, &s->sig, err, errlen) < 0)
        return -1;
    if (dkim_fold_fill(&fold, s->sig.data, s->sig.len) < 0 || buf_append(&s->seal, "\r\n", 2) < 0)
        goto overflow;
    return 0;
overflow:
    dkim_errf(err, errlen, "ARC-Seal longer than its limit");
    return -1;
}

/* arc_seal - check the arguments against the chain, make the three fields */
int arc_seal(struct arc_sealer *s, const char *hdr, size_t len,
             const struct dkim_body_hash *body_hash, const struct arc_chain *chain,
             const char *authserv_id, const char *results, long long now, struct buf *out,
             char *err, size_t errlen)
{
    struct arc_sets *sets = NULL;
    size_t header_end, body_off, out_len = out->len;
    char bh[64];
    struct buf bh_buf = {.data = bh, .len = 0, .cap = sizeof(bh), .limit = sizeof(bh) - 1};
    int instance = chain->instance + 1;

    if (!chain->sealable || chain->instance < 0 || instance > LIMIT_ARC_SETS) {
        dkim_errf(err, errlen, "the chain is not sealable (%s)",
                  chain->reason[0] ? chain->reason : "RFC 8617 §5.1");
        return -1;
    }
    /* cv=fail may come with instance 0: ARC fields arrived, none with a readable i= */
    if ((chain->cv == ARC_CV_NONE) != (chain->instance == 0 && chain->cv != ARC_CV_FAIL)) {
        dkim_errf(err, errlen, "cv=%s does not go with %d earlier ARC sets", arc_cv_name(chain->cv),
                  chain->instance);
        return -1;
    }
    if (body_hash->canon != DKIM_CANON_RELAXED) {
        dkim_errf(err, errlen, "the ARC-Message-Signature needs the relaxed body hash");
        return -1;
    }
    if (authserv_id == NULL || !arc_authserv_id_ok(authserv_id)) {
        dkim_errf(err, errlen, "bad authserv-id (letters, digits, \".\", \"-\", \"_\")");
        return -1;
    }
    if (results == NULL)
        results = "";
    if (!arc_text_ok(results)) {
        dkim_errf(err, errlen, "results: one line of text, at most %d bytes", LIMIT_ARC_RESULTS);
        return -1;
    }
    if (len > 0 && (hdr[0] == ' ' || hdr[0] == '\t')) {
        /* it would continue our AAR once the set is on top */
        dkim_errf(err, errlen, "the header block starts with a continuation line");
        return -1;
    }
    hdr_split(hdr, len, &header_end, &body_off);
    sets = xmalloc(sizeof(*sets));
    arc_sets_collect(hdr, header_end, sets);
    if (sets->max_instance != chain->instance ||
        (chain->cv == ARC_CV_PASS && sets->problem[0] != '\0')) {
        dkim_errf(err, errlen, "the header block does not hold the chain that was validated");
        goto fail;
    }
    if (arc_hlist_build(s, hdr, header_end, err, errlen) < 0)
        goto fail;
    if (dkim_base64(body_hash->hash, DKIM_HASH_LEN, &bh_buf) < 0)
        goto fail;
    if (arc_make_aar(s, instance, authserv_id, results) < 0) {
        dkim_errf(err, errlen, "ARC-Authentication-Results longer than its limit");
        goto fail;
    }
    if (arc_make_ams(s, hdr, header_end, instance, bh, now, err, errlen) < 0 ||
        arc_make_seal(s, hdr, sets, instance, chain->cv, now, err, errlen) < 0)
        goto fail;
    /* §5.1 step 3: AAR, AMS, AS, each attached on top of the one before */
    if (buf_append(out, s->seal.data, s->seal.len) < 0 ||
        buf_append(out, s->ams.data, s->ams.len) < 0 ||
        buf_append(out, s->aar.data, s->aar.len) < 0) {
        dkim_errf(err, errlen, "no room for the ARC set");
        goto fail;
    }
    free(sets);
    return 0;
fail:
    free(sets);
    if (out->len > out_len) {
        out->len = out_len;
        out->data[out_len] = '\0';
    }
    return -1;
}
