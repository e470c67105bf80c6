/*
 * dkim_int - what the dkim_*.c files share: the key structures, the
 * OpenSSL signing primitives, the h= list and folding of a field being
 * written, and the tag readers of a field being checked. Only src/mail/dkim*.c
 * and src/mail/arc*.c (ARC fields are DKIM fields under other names)
 * include it.
 */
#ifndef COEX_DKIM_INT_H
#define COEX_DKIM_INT_H

#include <stdatomic.h>

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
    atomic_int refs; /* dkim_pubkey_ref / dkim_pubkey_free */
    EVP_PKEY *pkey;  /* owned; NULL for a revoked key (empty p=) */
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
/* dkim_body_memo_get - the body hash with canon (into m): made now or earlier; NULL on failure */
const unsigned char *dkim_body_memo_get(struct dkim_body_memo *m, enum dkim_canon canon) WUR;

/* dkim_name_ok - a domain or a selector: LDH labels joined by dots */
int dkim_name_ok(const char *name);
/* dkim_errf - format a reason into err[0..errlen) */
void dkim_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* dkim_alg_name - "rsa-sha256" or "ed25519-sha256" */
const char *dkim_alg_name(enum dkim_alg alg);

/* dkim_span_is - span equals a C string exactly */
int dkim_span_is(const char *s, size_t len, const char *want);

/* the h= list of a field being written: borrowed spans (header block, the caller's names) */
struct dkim_hlist {
    size_t count;
    const char *names[LIMIT_DKIM_SIGN_HEADERS];
    size_t lens[LIMIT_DKIM_SIGN_HEADERS];
    size_t name_room; /* bytes of distinct names it may still take */
};
/* dkim_hlist_reset - empty h, allowing name_room bytes of names (SIZE_MAX: no cap) */
void dkim_hlist_reset(struct dkim_hlist *h, size_t name_room);
/* dkim_hlist_add - name[0..len) (borrowed) times times; -1 empty, no room, or full */
int dkim_hlist_add(struct dkim_hlist *h, const char *name, size_t len, size_t times) WUR;
/*
 * dkim_hlist_default - RFC 6376 §5.4 for hdr[0..len) (borrowed): the default
 * names present (from once more than it occurs), then extra (NULL: none; a
 * static lower-case name) as often as it occurs, then each list-* name as
 * often as it occurs. need_from: no From field is an error. 0, or -1 with err.
 */
int dkim_hlist_default(struct dkim_hlist *h, const char *hdr, size_t len, const char *extra,
                       int need_from, char *err, size_t errlen) WUR;

/* a field being folded at DKIM_FOLD_COLUMNS (RFC 5322 §2.2.3): out borrowed */
struct dkim_fold {
    struct buf *out;
    size_t column;
};
/* dkim_fold_put - a token, after " " (or glued) when it fits, else after CRLF SP */
int dkim_fold_put(struct dkim_fold *f, const char *token, size_t len, int glued) WUR;
/* dkim_fold_tag - "name=value;" as one token */
int dkim_fold_tag(struct dkim_fold *f, const char *name, const char *value) WUR;
/* dkim_fold_hlist - "h=a:b:c;" in lower case, folded between names */
int dkim_fold_hlist(struct dkim_fold *f, const struct dkim_hlist *h) WUR;
/* dkim_fold_fill - text that may break anywhere (a b= value): fill each line */
int dkim_fold_fill(struct dkim_fold *f, const char *text, size_t len) WUR;

/* a parsed h= list of a field being checked: spans into the field */
struct dkim_hspans {
    size_t count;
    const char *names[LIMIT_DKIM_SIGN_HEADERS];
    size_t lens[LIMIT_DKIM_SIGN_HEADERS];
};
/* dkim_parse_h - split h[0..len) on ":", FWS around names dropped; -1 empty name or too many */
int dkim_parse_h(const char *h, size_t len, struct dkim_hspans *out) WUR;
/* dkim_hspans_has - name (any case) is in the list */
int dkim_hspans_has(const struct dkim_hspans *hs, const char *name);
/* dkim_parse_canon - c= "relaxed/simple", "simple", ... (RFC 6376 §3.5); 0 or -1 */
int dkim_parse_canon(const char *c, size_t len, enum dkim_canon *hc, enum dkim_canon *bc) WUR;
/* dkim_parse_expiry - the x= value (digits read while they fit 2^40) */
long long dkim_parse_expiry(const char *x, size_t len);
/*
 * dkim_field_without_b - append field f of hdr ("Name:value", no final CRLF)
 * with the b= value emptied, from after "=" to the next ";" (RFC 6376
 * §3.7), to out; -1 without a b= tag or when out is full
 */
int dkim_field_without_b(const char *hdr, const struct hdr_field *f, struct buf *out) WUR;

#endif
