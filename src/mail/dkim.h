/*
 * dkim - DKIM signing (and an offline verifier) over message bytes.
 *
 * Implements RFC 6376 §3.4 (simple and relaxed canonicalisation, header and
 * body), §3.5 (the DKIM-Signature tag list), §3.7 (the hashes), §5.4
 * (choosing header fields, oversigning), §6.1 (verification against a key
 * the caller supplies); RFC 8463 (ed25519-sha256); RFC 8301 (rsa-sha256
 * only, RSA keys of 2048 bits or more: coex refuses smaller ones, a stricter
 * rule than the RFC's MUST of 1024).
 *
 * Input is the wire form: CRLF line ends. The body is hashed while it
 * streams (dkim_body_*); the header block is signed afterwards, once it is
 * final (dkim_sign_header), so the signature covers the rewritten fields.
 *
 * Pure: no files, no sockets, no clocks (the signing time is passed in), no
 * DNS (the verifier takes the key records from the caller). Never emits l=
 * (a body length limit lets anyone append to a signed body).
 *
 * Threads: a struct dkim_key and a struct dkim_pubkey are immutable once
 * made and may be shared; a struct dkim_signer and a struct dkim_body are
 * used by one thread at a time (make one signer per worker thread).
 */
#ifndef COEX_DKIM_H
#define COEX_DKIM_H

#include <stddef.h>

#include "buf.h"

#define DKIM_HASH_LEN 32       /* SHA-256 */
#define DKIM_RSA_MIN_BITS 2048 /* smaller RSA keys are refused */
#define DKIM_RSA_MAX_BITS 8192
#define LIMIT_DKIM_KEYS 8          /* signatures per message */
#define LIMIT_DKIM_SIGN_HEADERS 64 /* names in h= */
#define LIMIT_DKIM_NAME 255        /* a domain or a selector */
#define LIMIT_DKIM_FIELD 8192      /* one DKIM-Signature field, folded */
#define LIMIT_DKIM_HEADER_BLOCK ((size_t)1 << 20)
#define DKIM_FOLD_COLUMNS 78 /* RFC 5322 §2.1.1 SHOULD */
#define DKIM_HEADER_B_LEN 8  /* RFC 6008 §4: header.b carries at least 8 characters of b= */

enum dkim_alg { DKIM_ALG_RSA_SHA256, DKIM_ALG_ED25519_SHA256 };

/* relaxed is 0 so that a zeroed struct dkim_opts means relaxed/relaxed */
enum dkim_canon { DKIM_CANON_RELAXED, DKIM_CANON_SIMPLE };

/* ---------------------------------------------------------------- keys */

/* a private key with its signing domain (d=) and selector (s=) */
struct dkim_key;

/*
 * dkim_key_new - parse a PEM private key (PKCS#8 or traditional RSA) from
 * pem[0..len) (borrowed). RSA of DKIM_RSA_MIN_BITS or more, or Ed25519;
 * anything else fails with a reason in err. Caller owns the result.
 */
struct dkim_key *dkim_key_new(const char *pem, size_t len, const char *domain, const char *selector,
                              char *err, size_t errlen);
/* dkim_key_free - release a key; NULL does nothing */
void dkim_key_free(struct dkim_key *key);
/* dkim_key_alg - the algorithm the key signs with */
enum dkim_alg dkim_key_alg(const struct dkim_key *key);
/* dkim_key_bits - the key size in bits (256 for Ed25519) */
int dkim_key_bits(const struct dkim_key *key);
/* dkim_key_domain, dkim_key_selector - borrowed from the key */
const char *dkim_key_domain(const struct dkim_key *key);
const char *dkim_key_selector(const struct dkim_key *key);
/*
 * dkim_key_dns_txt - append the key record "v=DKIM1; k=rsa; p=BASE64" (RFC
 * 6376 §3.6.1, RFC 8463 §4.2) to out, unquoted and unsplit; see
 * dkim_dns_zone_line for the zone-file form
 */
int dkim_key_dns_txt(const struct dkim_key *key, struct buf *out) WUR;
/*
 * dkim_dns_zone_line - append `S._domainkey.D. IN TXT ( "..." "..." )` for
 * the record txt[0..len), split into quoted strings of at most 255 bytes
 * (RFC 1035 §3.3 character-strings)
 */
int dkim_dns_zone_line(const char *domain, const char *selector, const char *txt, size_t len,
                       struct buf *out) WUR;

/* ---------------------------------------------------------------- body */

/* the finished body hash and the canonicalisation it was made with */
struct dkim_body_hash {
    enum dkim_canon canon;
    unsigned char hash[DKIM_HASH_LEN];
};

/* streaming body canonicaliser + SHA-256 (RFC 6376 §3.4.3, §3.4.4, §3.7) */
struct dkim_body;

/* dkim_body_new - a body hasher for canon; caller owns it */
struct dkim_body *dkim_body_new(enum dkim_canon canon);
/* dkim_body_free - release; NULL does nothing */
void dkim_body_free(struct dkim_body *body);
/*
 * dkim_body_update - feed the next len bytes of the body (data borrowed).
 * Chunks may split lines, CRLF pairs and white-space runs anywhere: the hash
 * depends on the bytes only. An internal error is reported by dkim_body_final.
 */
void dkim_body_update(struct dkim_body *body, const void *data, size_t len);
/*
 * dkim_body_final - finish (trailing empty lines dropped; simple: an empty
 * body is one CRLF) and fill *out; the hasher may then be reused, as new
 */
int dkim_body_final(struct dkim_body *body, struct dkim_body_hash *out) WUR;

/* ---------------------------------------------------------------- signing */

struct dkim_opts {
    enum dkim_canon header_canon; /* default (0) relaxed */
    enum dkim_canon body_canon;   /* default (0) relaxed */
    long long expire_after;       /* x= is t= plus this many seconds; 0: no x= */
    /*
     * h= list as given (lower case, in order, no automatic oversigning);
     * NULL: the default list (see dkim_sign_header). Borrowed for the call
     * of dkim_signer_new only.
     */
    const char *const *sign_headers;
    size_t sign_headers_count;
};

struct dkim_signer;

/*
 * dkim_signer_new - a signer with keys[0..nkeys) (1..LIMIT_DKIM_KEYS; each
 * key borrowed: it must outlive the signer) and opts (copied; NULL: the
 * defaults). Dual signing is two keys, rsa and ed25519. Caller owns it.
 */
struct dkim_signer *dkim_signer_new(struct dkim_key *const *keys, size_t nkeys,
                                    const struct dkim_opts *opts, char *err, size_t errlen);
/* dkim_signer_free - release; NULL does nothing */
void dkim_signer_free(struct dkim_signer *signer);
/* dkim_signer_body_canon - the body canonicalisation dkim_body_new needs */
enum dkim_canon dkim_signer_body_canon(const struct dkim_signer *signer);

/*
 * dkim_sign_header - sign the header block hdr[0..len) (borrowed: every
 * field with its CRLF, the empty line optional) and the body hash, at time
 * now (t=): append one DKIM-Signature field per key, folded at
 * DKIM_FOLD_COLUMNS and ending in CRLF, to out. The caller puts them on
 * top of the header block. Signs by default: from, sender, reply-to,
 * subject, date, message-id, to, cc, mime-version, content-type,
 * content-transfer-encoding, in-reply-to, references and list-*, as many
 * times as each occurs, and from once more (oversigned). Fails without a
 * From field, or when the body hash was made with another canonicalisation.
 */
int dkim_sign_header(struct dkim_signer *signer, const char *hdr, size_t len,
                     const struct dkim_body_hash *body_hash, long long now, struct buf *out,
                     char *err, size_t errlen) WUR;

/* ---------------------------------------------------------------- low level (ARC reuses it) */

/*
 * dkim_header_hash - SHA-256 over the header fields named by the h= list
 * names[0..count) (RFC 6376 §5.4.2: each name takes the last unused
 * instance, bottom up; a name with none left adds nothing), canonicalised
 * with canon, followed by sig_field[0..sig_len) (the signature field itself
 * with an empty b= value, canonicalised, without its final CRLF)
 */
int dkim_header_hash(const char *hdr, size_t len, const char *const *names, const size_t *name_lens,
                     size_t count, enum dkim_canon canon, const char *sig_field, size_t sig_len,
                     unsigned char hash[DKIM_HASH_LEN]) WUR;
/* dkim_sign_hash - sign a header hash with key; append the base64 signature to out */
int dkim_sign_hash(struct dkim_key *key, const unsigned char hash[DKIM_HASH_LEN], struct buf *out,
                   char *err, size_t errlen) WUR;
/* dkim_canon_header_field - append one field (name + ":" + value), canonicalised, CRLF included */
int dkim_canon_header_field(enum dkim_canon canon, const char *field, size_t len,
                            struct buf *out) WUR;
/* dkim_base64 - append the base64 of data[0..len) to out */
int dkim_base64(const unsigned char *data, size_t len, struct buf *out) WUR;
/*
 * dkim_base64_decode - decode text[0..len), white space (FWS) ignored, into
 * out[0..max); *out_len set. -1 on a bad character, bad padding, or overflow.
 */
int dkim_base64_decode(const char *text, size_t len, unsigned char *out, size_t max,
                       size_t *out_len) WUR;
/*
 * dkim_tag_find - the value of tag in the tag-list list[0..len) (RFC 6376
 * §3.2), white space around it trimmed: 1 found (*val, *val_len point into
 * list), 0 not found, -1 malformed list or the tag given twice
 */
int dkim_tag_find(const char *list, size_t len, const char *tag, const char **val,
                  size_t *val_len) WUR;

/* ---------------------------------------------------------------- verification */

/* a public key for d= and s=, from a key record or a PEM key */
struct dkim_pubkey;

/*
 * dkim_pubkey_new - parse text[0..len) (borrowed): a DNS key record
 * ("v=DKIM1; k=ed25519; p=..."), a PEM public key, or a PEM private key
 * (its public half). Caller owns the result.
 */
struct dkim_pubkey *dkim_pubkey_new(const char *domain, const char *selector, const char *text,
                                    size_t len, char *err, size_t errlen);
/*
 * dkim_pubkey_ref - one more holder of key (returned); each holder calls
 * dkim_pubkey_free once. The count is atomic: holders on any thread.
 */
struct dkim_pubkey *dkim_pubkey_ref(struct dkim_pubkey *key);
/* dkim_pubkey_free - release one holder (the last frees); NULL does nothing */
void dkim_pubkey_free(struct dkim_pubkey *key);

enum dkim_status {
    DKIM_PASS,
    DKIM_FAIL,      /* the body hash or the signature does not match */
    DKIM_NEUTRAL,   /* no key given for d= and s= (a verifier would look it up) */
    DKIM_PERMERROR, /* the field is malformed, expired or unsupported */
};

struct dkim_result {
    enum dkim_status status;
    enum dkim_alg alg;
    char domain[LIMIT_DKIM_NAME + 1];
    char selector[LIMIT_DKIM_NAME + 1];
    char reason[128];
    /* the first DKIM_HEADER_B_LEN characters of b= (RFC 6008 header.b), "" when unreadable */
    char header_b[DKIM_HEADER_B_LEN + 1];
};

/*
 * dkim_verify - check every DKIM-Signature field of msg[0..len) (borrowed,
 * the whole message) against keys[0..nkeys) (borrowed); now (0: do not
 * check x=). Fills results[0..*count) in field order, at most max. -1 only
 * when the message has no header/body boundary it can read.
 */
int dkim_verify(const char *msg, size_t len, struct dkim_pubkey *const *keys, size_t nkeys,
                long long now, struct dkim_result *results, size_t max, size_t *count) WUR;
/*
 * the body hashes of one message for one verification: each
 * canonicalisation is hashed on first use and then reused, so N signatures
 * (or an AMS after them) cost one pass over the body per canonicalisation,
 * not N. Signatures with l= are refused before their body is hashed, so the
 * whole body is all there is to hash. One thread at a time.
 */
struct dkim_body_memo {
    const char *body; /* borrowed */
    size_t len;
    unsigned have;                 /* bit (1u << canon): hash[canon] is made */
    struct dkim_body_hash hash[2]; /* by enum dkim_canon */
    unsigned long computed;        /* passes over the body so far (tests count them) */
};
/* dkim_body_memo_init - no hash yet for body[0..len) (borrowed) */
void dkim_body_memo_init(struct dkim_body_memo *m, const char *body, size_t len);
/*
 * dkim_body_memo_seed - a hash of the same body made elsewhere (coexd
 * hashes the body while it streams in): used instead of a pass of its own
 */
void dkim_body_memo_seed(struct dkim_body_memo *m, const struct dkim_body_hash *h);
/*
 * dkim_verify_memo - dkim_verify with the body hashes taken from and kept
 * in memo (initialised by the caller for the body of msg); dkim_verify is
 * this with a memo of its own. A caller that also validates ARC passes the
 * same memo to arc_chain_validate_memo.
 */
int dkim_verify_memo(const char *msg, size_t len, struct dkim_pubkey *const *keys, size_t nkeys,
                     long long now, struct dkim_body_memo *memo, struct dkim_result *results,
                     size_t max, size_t *count) WUR;

/* dkim_status_name - "pass", "fail", "neutral", "permerror" */
const char *dkim_status_name(enum dkim_status status);

#endif
