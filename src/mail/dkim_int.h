/*
 * dkim_int - what the dkim_*.c files share: the key structures and the
 * OpenSSL signing primitives. Only src/mail/dkim*.c include it.
 */
#ifndef COEX_DKIM_INT_H
#define COEX_DKIM_INT_H

#include <openssl/evp.h>

#include "dkim.h"
#include "hdr.h"

struct dkim_key {
    EVP_PKEY *pkey; /* owned; immutable, shared by signers on any thread */
    enum dkim_alg alg;
    int bits;
    char domain[LIMIT_DKIM_NAME + 1];
    char selector[LIMIT_DKIM_NAME + 1];
};

struct dkim_pubkey {
    EVP_PKEY *pkey; /* owned; NULL for a revoked key (empty p=) */
    enum dkim_alg alg;
    char domain[LIMIT_DKIM_NAME + 1];
    char selector[LIMIT_DKIM_NAME + 1];
};

/* a key prepared for repeated signing: one thread at a time */
struct dkim_sign_ctx {
    struct dkim_key *key; /* borrowed */
    EVP_PKEY_CTX *rsa;    /* rsa: sign_init done, PKCS#1 v1.5, SHA-256 */
    EVP_MD_CTX *ed25519;  /* ed25519: DigestSignInit done (PureEdDSA) */
};

/* what header hashing keeps between messages: one thread at a time */
struct dkim_hash_ctx {
    EVP_MD *sha256; /* fetched once */
    EVP_MD_CTX *md;
    struct buf canon;         /* the canonical header fields */
    struct hdr_field *fields; /* the fields of the header block */
    unsigned char *used;      /* fields already signed (§5.4.2) */
    size_t cap;
};

/* dkim_hash_ctx_init - 0, or -1 (nothing to clean up) */
int dkim_hash_ctx_init(struct dkim_hash_ctx *hc);
/* dkim_hash_ctx_cleanup - release */
void dkim_hash_ctx_cleanup(struct dkim_hash_ctx *hc);
/* dkim_header_hash_ctx - dkim_header_hash with a reusable context */
int dkim_header_hash_ctx(struct dkim_hash_ctx *hc, const char *hdr, size_t len,
                         const char *const *names, const size_t *name_lens, size_t count,
                         enum dkim_canon canon, const char *sig_field, size_t sig_len,
                         unsigned char hash[DKIM_HASH_LEN]);

/* dkim_sign_ctx_init - prepare key for signing; 0 or -1 with err */
int dkim_sign_ctx_init(struct dkim_sign_ctx *ctx, struct dkim_key *key, char *err, size_t errlen);
/* dkim_sign_ctx_cleanup - release the OpenSSL contexts */
void dkim_sign_ctx_cleanup(struct dkim_sign_ctx *ctx);
/* dkim_sign_ctx_sign - sign the header hash (RFC 6376 §3.7, RFC 8463 §3); base64 to out */
int dkim_sign_ctx_sign(struct dkim_sign_ctx *ctx, const unsigned char hash[DKIM_HASH_LEN],
                       struct buf *out, char *err, size_t errlen);
/*
 * dkim_verify_hash - 1 when sig[0..sig_len) is key's alg signature over the
 * header hash (RFC 6376 §3.7, RFC 8463 §3), 0 otherwise: a revoked key, a key
 * of another type, or RSA under 1024 bits (RFC 8301 §3.2) verifies nothing.
 * ARC (src/mail/arc*) checks its AMS and AS with it.
 */
int dkim_verify_hash(const struct dkim_pubkey *key, enum dkim_alg alg, const unsigned char *sig,
                     size_t sig_len, const unsigned char hash[DKIM_HASH_LEN]);
/* dkim_name_ok - a domain or a selector: LDH labels joined by dots */
int dkim_name_ok(const char *name);
/* dkim_errf - format a reason into err[0..errlen) */
void dkim_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* dkim_alg_name - "rsa-sha256" or "ed25519-sha256" */
const char *dkim_alg_name(enum dkim_alg alg);

#endif
