/*
 * dkim_key - DKIM keys: private keys from PEM, public keys from key records
 * or PEM, the key record to publish, and the tag-list and base64 helpers.
 *
 * RFC 6376 §3.2 (tag=value lists), §3.6.1 (the key record: v=, k=, p=, h=,
 * s=, t=), RFC 8463 §4.2 (k=ed25519, p= the raw 32-byte key), RFC 8301 §3.2
 * (RSA sizes; coex signs only with 2048 bits or more), RFC 1035 §3.3
 * (character-strings of at most 255 bytes in a TXT record).
 *
 * Does not: read files (the caller hands over the PEM bytes), query DNS,
 * or ask for a passphrase (an encrypted PEM is refused, never prompted for).
 */
#include "dkim_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util.h"

/* an RSA-8192 SubjectPublicKeyInfo is about 1.1 KB */
#define DKIM_PUBKEY_DER_MAX 2048
#define DKIM_TXT_STRING_MAX 255

/* dkim_errf - format a reason */
void dkim_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* dkim_alg_name - the a= value */
const char *dkim_alg_name(enum dkim_alg alg)
{
    return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

/* dkim_name_ok - letters, digits, hyphens, dots; no empty label */
int dkim_name_ok(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || len > LIMIT_DKIM_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            label++;
        } else {
            return 0;
        }
    }
    return label > 0;
}

/* dkim_no_passphrase - a PEM password callback that refuses (never prompts) */
static int dkim_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return -1;
}

/* dkim_key_classify - algorithm and size of pkey, or -1 with a reason */
static int dkim_key_classify(EVP_PKEY *pkey, enum dkim_alg *alg, int *bits, char *err,
                             size_t errlen)
{
    if (EVP_PKEY_is_a(pkey, "ED25519")) {
        *alg = DKIM_ALG_ED25519_SHA256;
        *bits = 256;
        return 0;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        *alg = DKIM_ALG_RSA_SHA256;
        *bits = EVP_PKEY_get_bits(pkey);
        return 0;
    }
    dkim_errf(err, errlen, "unsupported key type %s: DKIM keys are RSA or Ed25519",
              EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
    return -1;
}

/* dkim_key_new - parse, classify, check the size */
struct dkim_key *dkim_key_new(const char *pem, size_t len, const char *domain, const char *selector,
                              char *err, size_t errlen)
{
    struct dkim_key *key = NULL;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    enum dkim_alg alg;
    int bits;

    if (!dkim_name_ok(domain) || !dkim_name_ok(selector)) {
        dkim_errf(err, errlen, "bad domain or selector \"%s\" / \"%s\"", domain, selector);
        goto fail;
    }
    if (len > (size_t)1 << 20 || (bio = BIO_new_mem_buf(pem, (int)len)) == NULL) {
        dkim_errf(err, errlen, "key too large");
        goto fail;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase, NULL);
    ERR_clear_error();
    if (pkey == NULL) {
        dkim_errf(err, errlen, "not a PEM private key (or an encrypted one)");
        goto fail;
    }
    if (dkim_key_classify(pkey, &alg, &bits, err, errlen) < 0)
        goto fail;
    if (alg == DKIM_ALG_RSA_SHA256 && (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
        dkim_errf(err, errlen,
                  "RSA key of %d bits refused: coex signs with %d to %d bits (RFC 8301 §3.2)", bits,
                  DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
        goto fail;
    }
    key = xcalloc(1, sizeof(*key));
    key->pkey = pkey;
    key->alg = alg;
    key->bits = bits;
    memcpy(key->domain, domain, strlen(domain) + 1);
    memcpy(key->selector, selector, strlen(selector) + 1);
    BIO_free(bio);
    return key;
fail:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return NULL;
}

/* dkim_key_free - release */
void dkim_key_free(struct dkim_key *key)
{
    if (key == NULL)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}

enum dkim_alg dkim_key_alg(const struct dkim_key *key)
{
    return key->alg;
}
int dkim_key_bits(const struct dkim_key *key)
{
    return key->bits;
}
const char *dkim_key_domain(const struct dkim_key *key)
{
    return key->domain;
}
const char *dkim_key_selector(const struct dkim_key *key)
{
    return key->selector;
}

/* dkim_key_dns_txt - p= is the SubjectPublicKeyInfo (rsa) or the raw key (ed25519) */
int dkim_key_dns_txt(const struct dkim_key *key, struct buf *out)
{
    unsigned char der[DKIM_PUBKEY_DER_MAX], *p = der;
    size_t der_len = sizeof(der);

    if (key->alg == DKIM_ALG_ED25519_SHA256) {
        if (EVP_PKEY_get_raw_public_key(key->pkey, der, &der_len) != 1)
            return -1;
    } else {
        int n = i2d_PUBKEY(key->pkey, NULL);
        if (n <= 0 || (size_t)n > sizeof(der) || i2d_PUBKEY(key->pkey, &p) != n)
            return -1;
        der_len = (size_t)n;
    }
    if (buf_printf(out, "v=DKIM1; k=%s; p=", key->alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519") <
        0)
        return -1;
    return dkim_base64(der, der_len, out);
}

/* dkim_dns_zone_line - quoted character-strings of at most 255 bytes */
int dkim_dns_zone_line(const char *domain, const char *selector, const char *txt, size_t len,
                       struct buf *out)
{
    if (buf_printf(out, "%s._domainkey.%s IN TXT", selector, domain) < 0)
        return -1;
    for (size_t off = 0; off < len || off == 0; off += DKIM_TXT_STRING_MAX) {
        size_t n = len - off < DKIM_TXT_STRING_MAX ? len - off : DKIM_TXT_STRING_MAX;
        if (buf_append(out, " \"", 2) < 0 || buf_append(out, txt + off, n) < 0 ||
            buf_append(out, "\"", 1) < 0)
            return -1;
        if (len == 0)
            break;
    }
    return buf_append(out, "\n", 1);
}

/* dkim_base64_value - the 6-bit value of c, or -1 */
static int dkim_base64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* dkim_base64_decode - strict alphabet, FWS skipped, padding checked */
int dkim_base64_decode(const char *text, size_t len, unsigned char *out, size_t max,
                       size_t *out_len)
{
    unsigned long acc = 0;
    size_t bits = 0, n = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = dkim_base64_value(c);
        if (v < 0 || pad)
            return -1;
        acc = (acc << 6 | (unsigned long)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == max)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* leftover bits: 0 (no padding), 4 ("==" optional), 2 ("=" optional), 6 (invalid) */
    if (bits == 6 || (bits == 0 && pad) || (bits == 4 && pad != 0 && pad != 2) ||
        (bits == 2 && pad > 1))
        return -1;
    *out_len = n;
    return 0;
}

/* dkim_tag_find - scan "tag = value ;" pairs */
int dkim_tag_find(const char *list, size_t len, const char *tag, const char **val, size_t *val_len)
{
    size_t tag_len = strlen(tag), pos = 0;
    int found = 0;
    while (pos < len) {
        size_t end = pos;
        while (end < len && list[end] != ';')
            end++;
        size_t a = pos, b = end;
        while (a < b && (list[a] == ' ' || list[a] == '\t' || list[a] == '\r' || list[a] == '\n'))
            a++;
        if (a < b) {
            const char *eq = memchr(list + a, '=', b - a);
            if (eq == NULL)
                return -1;
            size_t name_end = (size_t)(eq - list);
            while (name_end > a && (list[name_end - 1] == ' ' || list[name_end - 1] == '\t' ||
                                    list[name_end - 1] == '\r' || list[name_end - 1] == '\n'))
                name_end--;
            size_t v = (size_t)(eq - list) + 1, ve = b;
            while (v < ve &&
                   (list[v] == ' ' || list[v] == '\t' || list[v] == '\r' || list[v] == '\n'))
                v++;
            while (ve > v && (list[ve - 1] == ' ' || list[ve - 1] == '\t' || list[ve - 1] == '\r' ||
                              list[ve - 1] == '\n'))
                ve--;
            if (name_end - a == tag_len && memcmp(list + a, tag, tag_len) == 0) {
                if (found)
                    return -1; /* §3.2: a tag given twice makes the whole list invalid */
                found = 1;
                *val = list + v;
                *val_len = ve - v;
            }
        }
        pos = end + 1;
    }
    return found;
}

/* dkim_pubkey_from_record - "v=DKIM1; k=...; p=..." (§3.6.1) */
static int dkim_pubkey_from_record(struct dkim_pubkey *key, const char *text, size_t len, char *err,
                                   size_t errlen)
{
    const char *v, *k = "rsa", *p;
    size_t v_len, k_len = 3, p_len, der_len;
    unsigned char der[DKIM_PUBKEY_DER_MAX];
    const unsigned char *q = der;

    if (dkim_tag_find(text, len, "v", &v, &v_len) == 1 &&
        !(v_len == 5 && memcmp(v, "DKIM1", 5) == 0)) {
        dkim_errf(err, errlen, "key record: v= is not DKIM1");
        return -1;
    }
    if (dkim_tag_find(text, len, "k", &k, &k_len) < 0 ||
        dkim_tag_find(text, len, "p", &p, &p_len) != 1) {
        dkim_errf(err, errlen, "key record: no p= tag, or a malformed tag list");
        return -1;
    }
    key->alg =
        k_len == 7 && memcmp(k, "ed25519", 7) == 0 ? DKIM_ALG_ED25519_SHA256 : DKIM_ALG_RSA_SHA256;
    if (key->alg == DKIM_ALG_RSA_SHA256 && !(k_len == 3 && memcmp(k, "rsa", 3) == 0)) {
        dkim_errf(err, errlen, "key record: unknown k=%.*s", (int)k_len, k);
        return -1;
    }
    if (p_len == 0)
        return 0; /* revoked: verifies nothing */
    if (dkim_base64_decode(p, p_len, der, sizeof(der), &der_len) < 0) {
        dkim_errf(err, errlen, "key record: p= is not base64");
        return -1;
    }
    if (key->alg == DKIM_ALG_ED25519_SHA256)
        key->pkey =
            der_len == 32 ? EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, der, 32) : NULL;
    else if ((key->pkey = d2i_PUBKEY(NULL, &q, (long)der_len)) == NULL) {
        q = der; /* some publish the bare PKCS#1 RSAPublicKey */
        key->pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)der_len);
    }
    ERR_clear_error();
    if (key->pkey == NULL) {
        dkim_errf(err, errlen, "key record: p= is not a %s public key",
                  key->alg == DKIM_ALG_RSA_SHA256 ? "rsa" : "ed25519");
        return -1;
    }
    return 0;
}

/* dkim_pubkey_new - a key record, a PEM public key or a PEM private key */
struct dkim_pubkey *dkim_pubkey_new(const char *domain, const char *selector, const char *text,
                                    size_t len, char *err, size_t errlen)
{
    struct dkim_pubkey *key = xcalloc(1, sizeof(*key));
    BIO *bio = NULL;
    int bits;

    atomic_init(&key->refs, 1);
    if (!dkim_name_ok(domain) || !dkim_name_ok(selector)) {
        dkim_errf(err, errlen, "bad domain or selector \"%s\" / \"%s\"", domain, selector);
        goto fail;
    }
    memcpy(key->domain, domain, strlen(domain) + 1);
    memcpy(key->selector, selector, strlen(selector) + 1);
    if (len >= 10 && memcmp(text, "-----BEGIN", 10) == 0) {
        if (len > (size_t)1 << 20 || (bio = BIO_new_mem_buf(text, (int)len)) == NULL)
            goto fail;
        key->pkey = PEM_read_bio_PUBKEY(bio, NULL, dkim_no_passphrase, NULL);
        if (key->pkey == NULL && BIO_reset(bio) > 0) /* a memory BIO answers 1 */
            key->pkey = PEM_read_bio_PrivateKey(bio, NULL, dkim_no_passphrase, NULL);
        ERR_clear_error();
        if (key->pkey == NULL) {
            dkim_errf(err, errlen, "not a PEM public or private key");
            goto fail;
        }
        if (dkim_key_classify(key->pkey, &key->alg, &bits, err, errlen) < 0)
            goto fail;
    } else if (dkim_pubkey_from_record(key, text, len, err, errlen) < 0) {
        goto fail;
    }
    BIO_free(bio);
    return key;
fail:
    BIO_free(bio);
    dkim_pubkey_free(key);
    return NULL;
}

/* dkim_pubkey_ref - one more holder */
struct dkim_pubkey *dkim_pubkey_ref(struct dkim_pubkey *key)
{
    atomic_fetch_add(&key->refs, 1);
    return key;
}

/* dkim_pubkey_free - one holder less; the last one frees */
void dkim_pubkey_free(struct dkim_pubkey *key)
{
    if (key == NULL || atomic_fetch_sub(&key->refs, 1) > 1)
        return;
    EVP_PKEY_free(key->pkey);
    free(key);
}
