/*
 * dkim_sign - make DKIM-Signature fields (RFC 6376 §3.5, §5; RFC 8463 §3).
 *
 * RFC 6376 §5.4 / §5.4.2 (which fields to sign; from listed once more than
 * it occurs so that no From can be added later without breaking the
 * signature), §3.5 (tags: v a c d s t x h bh b; i= and q= left to their
 * defaults, l= never), §3.7 (the header hash covers the new field with an
 * empty b=), RFC 5322 §2.2.3 (folding: the field is folded at
 * DKIM_FOLD_COLUMNS between tags, between h= names and inside b=).
 * RFC 8301 §3.1: rsa-sha256 only (no rsa-sha1). RFC 8463 §3: Ed25519 signs
 * the SHA-256 header hash (PureEdDSA over those 32 bytes).
 *
 * The default h= list and the folding are dkim_field.c's (ARC uses them too).
 *
 * Does not: choose the key by From domain (the caller builds a signer for
 * the domain), or place the fields (the caller puts them on top).
 */
#include "dkim_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rsa.h>

#include "hdr.h"
#include "util.h"

/* RSA-8192 signatures are 1024 bytes */
#define DKIM_SIG_MAX 1024

/*
 * bytes of distinct names one h= list may take (the names were once copied
 * into a buffer of this size): a longer list is refused as before
 */
#define DKIM_HLIST_NAME_ROOM (LIMIT_DKIM_SIGN_HEADERS * 64)

struct dkim_signer {
    struct dkim_opts opts; /* sign_headers points at names below, or NULL */
    size_t nkeys;
    struct dkim_sign_ctx ctx[LIMIT_DKIM_KEYS];
    struct dkim_hash_ctx hash;            /* header hashing, reused */
    struct buf field, sig;                /* one field being made, reused */
    struct dkim_hlist hlist;              /* the h= list being made, reused */
    char *names[LIMIT_DKIM_SIGN_HEADERS]; /* owned copies of opts->sign_headers */
};

/* dkim_sign_ctx_init - one prepared OpenSSL context per key */
int dkim_sign_ctx_init(struct dkim_sign_ctx *ctx, struct dkim_key *key, char *err, size_t errlen)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->key = key;
    if (key->alg == DKIM_ALG_RSA_SHA256) {
        ctx->rsa = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
        if (ctx->rsa == NULL || EVP_PKEY_sign_init(ctx->rsa) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(ctx->rsa, RSA_PKCS1_PADDING) != 1 ||
            EVP_PKEY_CTX_set_signature_md(ctx->rsa, EVP_sha256()) != 1)
            goto fail;
    } else {
        ctx->ed25519 = EVP_MD_CTX_new();
        if (ctx->ed25519 == NULL ||
            EVP_DigestSignInit(ctx->ed25519, NULL, NULL, NULL, key->pkey) != 1)
            goto fail;
    }
    return 0;
fail:
    ERR_clear_error();
    dkim_errf(err, errlen, "cannot prepare the %s key for %s", dkim_alg_name(key->alg),
              key->domain);
    dkim_sign_ctx_cleanup(ctx);
    return -1;
}

/* dkim_sign_ctx_cleanup - free the contexts */
void dkim_sign_ctx_cleanup(struct dkim_sign_ctx *ctx)
{
    EVP_PKEY_CTX_free(ctx->rsa);
    EVP_MD_CTX_free(ctx->ed25519);
    ctx->rsa = NULL;
    ctx->ed25519 = NULL;
}

/* dkim_sign_ctx_sign - PKCS#1 v1.5 with SHA-256, or Ed25519 over the hash */
int dkim_sign_ctx_sign(struct dkim_sign_ctx *ctx, const unsigned char hash[DKIM_HASH_LEN],
                       struct buf *out, char *err, size_t errlen)
{
    unsigned char sig[DKIM_SIG_MAX];
    size_t sig_len = sizeof(sig);
    int ok;

    if (ctx->rsa)
        ok = EVP_PKEY_sign(ctx->rsa, sig, &sig_len, hash, DKIM_HASH_LEN) == 1;
    else
        ok = EVP_DigestSign(ctx->ed25519, sig, &sig_len, hash, DKIM_HASH_LEN) == 1;
    if (!ok) {
        unsigned long e = ERR_get_error();
        ERR_clear_error();
        dkim_errf(err, errlen, "%s signing failed: %s", dkim_alg_name(ctx->key->alg),
                  e ? ERR_reason_error_string(e) : "?");
        return -1;
    }
    return dkim_base64(sig, sig_len, out);
}

/* dkim_sign_hash - one-off signature with a fresh context */
int dkim_sign_hash(struct dkim_key *key, const unsigned char hash[DKIM_HASH_LEN], struct buf *out,
                   char *err, size_t errlen)
{
    struct dkim_sign_ctx ctx;
    if (dkim_sign_ctx_init(&ctx, key, err, errlen) < 0)
        return -1;
    int rc = dkim_sign_ctx_sign(&ctx, hash, out, err, errlen);
    dkim_sign_ctx_cleanup(&ctx);
    return rc;
}

/* dkim_signer_new - prepare each key, copy the options */
struct dkim_signer *dkim_signer_new(struct dkim_key *const *keys, size_t nkeys,
                                    const struct dkim_opts *opts, char *err, size_t errlen)
{
    struct dkim_signer *signer;

    if (nkeys == 0 || nkeys > LIMIT_DKIM_KEYS) {
        dkim_errf(err, errlen, "a signer needs 1 to %d keys", LIMIT_DKIM_KEYS);
        return NULL;
    }
    if (opts && opts->sign_headers && opts->sign_headers_count > LIMIT_DKIM_SIGN_HEADERS) {
        dkim_errf(err, errlen, "more than %d header names to sign", LIMIT_DKIM_SIGN_HEADERS);
        return NULL;
    }
    signer = xcalloc(1, sizeof(*signer));
    buf_init(&signer->field, LIMIT_DKIM_FIELD);
    buf_init(&signer->sig, LIMIT_DKIM_FIELD);
    if (dkim_hash_ctx_init(&signer->hash) < 0) {
        dkim_errf(err, errlen, "SHA-256 is not available");
        goto fail;
    }
    if (opts)
        signer->opts = *opts;
    if (opts && opts->sign_headers) {
        for (size_t i = 0; i < opts->sign_headers_count; i++) {
            signer->names[i] = xstrdup(opts->sign_headers[i]);
            for (char *c = signer->names[i]; *c; c++)
                *c = (char)util_lower((unsigned char)*c);
        }
        signer->opts.sign_headers = (const char *const *)signer->names;
    }
    for (size_t i = 0; i < nkeys; i++) {
        if (dkim_sign_ctx_init(&signer->ctx[i], keys[i], err, errlen) < 0)
            goto fail;
        signer->nkeys++;
    }
    return signer;
fail:
    dkim_signer_free(signer);
    return NULL;
}

/* dkim_signer_free - release contexts and names */
void dkim_signer_free(struct dkim_signer *signer)
{
    if (signer == NULL)
        return;
    for (size_t i = 0; i < signer->nkeys; i++)
        dkim_sign_ctx_cleanup(&signer->ctx[i]);
    dkim_hash_ctx_cleanup(&signer->hash);
    buf_cleanup(&signer->field);
    buf_cleanup(&signer->sig);
    for (size_t i = 0; i < LIMIT_DKIM_SIGN_HEADERS; i++)
        free(signer->names[i]);
    free(signer);
}

/* dkim_signer_body_canon - for dkim_body_new */
enum dkim_canon dkim_signer_body_canon(const struct dkim_signer *signer)
{
    return signer->opts.body_canon;
}

/* dkim_sign_one - build, hash and sign the field for one key; append it to out */
static int dkim_sign_one(struct dkim_signer *signer, struct dkim_sign_ctx *ctx,
                         const struct dkim_hlist *h, const char *hdr, size_t len, const char *bh,
                         long long now, struct buf *out, char *err, size_t errlen)
{
    struct buf *field = &signer->field, *sig = &signer->sig;
    struct dkim_fold fold = {.out = field, .column = 0};
    unsigned char hash[DKIM_HASH_LEN];
    char number[32];
    const char *canon[2][2] = {{"relaxed/relaxed", "relaxed/simple"},
                               {"simple/relaxed", "simple/simple"}};

    buf_reset(field);
    buf_reset(sig);
    if (buf_append_str(field, "DKIM-Signature:") < 0)
        goto overflow;
    fold.column = field->len;
    if (dkim_fold_tag(&fold, "v", "1") < 0 ||
        dkim_fold_tag(&fold, "a", dkim_alg_name(ctx->key->alg)) < 0 ||
        dkim_fold_tag(&fold, "c", canon[signer->opts.header_canon][signer->opts.body_canon]) < 0 ||
        dkim_fold_tag(&fold, "d", ctx->key->domain) < 0 ||
        dkim_fold_tag(&fold, "s", ctx->key->selector) < 0)
        goto overflow;
    snprintf(number, sizeof(number), "%lld", now);
    if (dkim_fold_tag(&fold, "t", number) < 0)
        goto overflow;
    if (signer->opts.expire_after > 0) {
        snprintf(number, sizeof(number), "%lld", now + signer->opts.expire_after);
        if (dkim_fold_tag(&fold, "x", number) < 0)
            goto overflow;
    }
    if (dkim_fold_hlist(&fold, h) < 0)
        goto overflow;
    if (dkim_fold_tag(&fold, "bh", bh) < 0 || dkim_fold_put(&fold, "b=", 2, 0) < 0)
        goto overflow;

    /* §3.7: the field is hashed as it will be sent, with an empty b= */
    if (dkim_header_hash_ctx(&signer->hash, hdr, len, h->names, h->lens, h->count,
                             signer->opts.header_canon, field->data, field->len, hash) < 0) {
        dkim_errf(err, errlen, "cannot hash the header block");
        return -1;
    }
    if (dkim_sign_ctx_sign(ctx, hash, sig, err, errlen) < 0)
        return -1;
    /* b= value: fill each line to the fold column */
    if (dkim_fold_fill(&fold, sig->data, sig->len) < 0)
        goto overflow;
    if (buf_append(field, "\r\n", 2) < 0 || buf_append(out, field->data, field->len) < 0)
        goto overflow;
    return 0;
overflow:
    dkim_errf(err, errlen, "DKIM-Signature field longer than its limit");
    return -1;
}

/* dkim_sign_header - one field per key, all over the same header block */
int dkim_sign_header(struct dkim_signer *signer, const char *hdr, size_t len,
                     const struct dkim_body_hash *body_hash, long long now, struct buf *out,
                     char *err, size_t errlen)
{
    struct dkim_hlist *h = &signer->hlist;
    /* bh= on the stack: limit + 1 == cap, so the buffer never reallocates */
    char bh[64];
    struct buf bh_buf = {.data = bh, .len = 0, .cap = sizeof(bh), .limit = sizeof(bh) - 1};
    size_t out_len = out->len;

    dkim_hlist_reset(h, DKIM_HLIST_NAME_ROOM);
    if (body_hash->canon != signer->opts.body_canon) {
        dkim_errf(err, errlen, "body hashed with the other canonicalisation");
        goto fail;
    }
    if (signer->opts.sign_headers) {
        for (size_t i = 0; i < signer->opts.sign_headers_count; i++)
            if (dkim_hlist_add(h, signer->opts.sign_headers[i],
                               strlen(signer->opts.sign_headers[i]), 1) < 0) {
                dkim_errf(err, errlen, "bad list of header names to sign");
                goto fail;
            }
    } else if (dkim_hlist_default(h, hdr, len, NULL, 1, err, errlen) < 0) {
        goto fail;
    }
    if (dkim_base64(body_hash->hash, DKIM_HASH_LEN, &bh_buf) < 0)
        goto fail;
    for (size_t i = 0; i < signer->nkeys; i++)
        if (dkim_sign_one(signer, &signer->ctx[i], h, hdr, len, bh, now, out, err, errlen) < 0)
            goto fail;
    return 0;
fail:
    if (out->len > out_len) { /* nothing half-made is left in out */
        out->len = out_len;
        out->data[out_len] = '\0';
    }
    return -1;
}
