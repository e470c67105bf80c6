/*
 * fuzz_dkim - libFuzzer target for the DKIM module (src/mail/dkim_*.c): the
 * parts that read bytes from the network, a message's DKIM-Signature fields
 * and its body, and the signer run over such a message.
 *
 * Keys: the RFC 8463 Appendix A keys (the Ed25519 key "brisbane" and the
 * 1024-bit RSA key "test" of football.example.com), built once, so that the
 * seeds carrying the RFC's signatures pass and a reproducer stays valid.
 *
 * Checks, beyond ASan/UBSan/LSan:
 * - dkim_verify of the input: returns -1 exactly when hdr_split finds no
 *   header; one result per DKIM-Signature field (at most max); every result
 *   has a known status and NUL-terminated strings;
 * - dkim_tag_find on each DKIM-Signature field body (and on the first line)
 *   agrees with a plain reference parser for every tag a verifier asks for;
 *   a value lies inside the list, holds no ";" and no white space at either end;
 * - every header field, canonicalised simple (the bytes, CRLF added when
 *   missing) and relaxed (against a reference: lower-case name, unfold, WSP
 *   runs to one SP, none at either end); relaxed is idempotent and
 *   relaxed(simple(f)) == relaxed(f);
 * - the body hash of the input, both canonicalisations: fed whole to a new
 *   hasher, in random-size chunks (empty ones included; sizes drawn from the
 *   input) to one hasher reused across runs, and a reference canonicaliser
 *   over the whole buffer: the same hash;
 * - base64: decode(encode(x)) == x; what decodes re-encodes and decodes the
 *   same; a buffer one byte short fails;
 * - when the input has a From: sign it (Ed25519; relaxed and simple headers,
 *   each with a body canonicalisation chosen by the input), put the field on
 *   top, verify: pass; one body byte changed to another non-white-space,
 *   non-CR/LF byte: fail; then (one or the other, drawn from the input) one
 *   such byte changed in a From value: fail, or a From added on top: fail
 *   (from is oversigned). Signing may only refuse for the documented
 *   reasons (no From, too many fields, field too long).
 *
 * Messages handed to dkim_verify are copied into buffers of their exact size
 * so that ASan sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkim.h"
#include "hdr.h"

#define FUZZ_MAX_INPUT (16 * 1024) /* keeps a run to a few milliseconds */
#define FUZZ_MAX_RESULTS 8         /* DKIM-Signature fields of the input verified */
#define FUZZ_MAX_TAGS 128          /* segments the reference tag parser keeps */
#define FUZZ_NOW 1528637909LL      /* t= of the RFC 8463 example */
#define FUZZ_DOMAIN "football.example.com"
#define FUZZ_SELECTOR "brisbane"
#define FUZZ_EVIL_FROM "From: mallory@evil.example\r\n"

/* the references and helpers: no coverage feedback (it is the library's that counts), faster */
#define FUZZ_NOCOV __attribute__((no_sanitize("coverage")))

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* RFC 8463 Appendix A.1 (the RFC 8032 §7.1 TEST 1 secret key) and A.2 */
static const char fuzz_ed_seed[] = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char fuzz_ed_record[] =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char fuzz_rsa_record[] =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";

/* the tags a verifier asks for, and a few it does not know */
static const char *const fuzz_tags[] = {"v", "a", "b", "bh", "c", "d", "s",
                                        "h", "l", "x", "k",  "p", "z"};

struct fuzz_keys {
    struct dkim_key *key;             /* Ed25519, d=FUZZ_DOMAIN s=FUZZ_SELECTOR */
    struct dkim_pubkey *pubs[2];      /* its record, and the RFC's RSA record */
    struct dkim_signer *signer[2][2]; /* [header canon][body canon] */
};

/* fuzz_keys_get - the keys and signers, built at the first call and kept */
static const struct fuzz_keys *fuzz_keys_get(void)
{
    static struct fuzz_keys keys;
    static int ready;
    unsigned char seed[32];
    size_t seed_len;
    char err[256], *pem;
    struct buf txt;

    if (ready)
        return &keys;
    int rc = dkim_base64_decode(fuzz_ed_seed, strlen(fuzz_ed_seed), seed, sizeof(seed), &seed_len);
    CHECK(rc == 0 && seed_len == 32);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    BIO *bio = BIO_new(BIO_s_mem());
    CHECK(pkey && bio && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1);
    long pem_len = BIO_get_mem_data(bio, &pem);
    CHECK(pem_len > 0);
    keys.key = dkim_key_new(pem, (size_t)pem_len, FUZZ_DOMAIN, FUZZ_SELECTOR, err, sizeof(err));
    CHECK(keys.key != NULL);
    /*
     * the PEM paths of dkim_pubkey_new: a public key must load; a private key
     * is documented to load too, but is only exercised here (it does not load
     * with OpenSSL 3's memory BIO: BIO_reset returns 1 there, not 0)
     */
    dkim_pubkey_free(
        dkim_pubkey_new(FUZZ_DOMAIN, FUZZ_SELECTOR, pem, (size_t)pem_len, err, sizeof(err)));
    BIO *pub = BIO_new(BIO_s_mem());
    char *pub_pem;
    CHECK(pub && PEM_write_bio_PUBKEY(pub, pkey) == 1);
    long pub_len = BIO_get_mem_data(pub, &pub_pem);
    struct dkim_pubkey *from_pem =
        dkim_pubkey_new(FUZZ_DOMAIN, FUZZ_SELECTOR, pub_pem, (size_t)pub_len, err, sizeof(err));
    CHECK(from_pem != NULL);
    dkim_pubkey_free(from_pem);
    BIO_free(pub);
    BIO_free(bio);
    EVP_PKEY_free(pkey);

    buf_init(&txt, 1024);
    CHECK(dkim_key_dns_txt(keys.key, &txt) == 0 && strcmp(txt.data, fuzz_ed_record) == 0);
    buf_cleanup(&txt);
    keys.pubs[0] = dkim_pubkey_new(FUZZ_DOMAIN, FUZZ_SELECTOR, fuzz_ed_record,
                                   strlen(fuzz_ed_record), err, sizeof(err));
    keys.pubs[1] = dkim_pubkey_new(FUZZ_DOMAIN, "test", fuzz_rsa_record, strlen(fuzz_rsa_record),
                                   err, sizeof(err));
    CHECK(keys.pubs[0] && keys.pubs[1]);
    for (int hc = 0; hc < 2; hc++)
        for (int bc = 0; bc < 2; bc++) {
            struct dkim_opts opts = {.header_canon = (enum dkim_canon)hc,
                                     .body_canon = (enum dkim_canon)bc};
            keys.signer[hc][bc] = dkim_signer_new(&keys.key, 1, &opts, err, sizeof(err));
            CHECK(keys.signer[hc][bc] != NULL);
        }
    ready = 1;
    return &keys;
}

/* fuzz_rand - xorshift32; everything random is a function of the input */
FUZZ_NOCOV static uint32_t fuzz_rand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

FUZZ_NOCOV static int fuzz_is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t';
}

FUZZ_NOCOV static int fuzz_is_fws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* fuzz_exact - a copy in a heap block of exactly len bytes (ASan sees the end) */
static char *fuzz_exact(const char *a, size_t a_len, const char *b, size_t b_len, const char *c,
                        size_t c_len)
{
    char *p = malloc(a_len + b_len + c_len + 1); /* + 1: malloc(0) may return NULL */
    CHECK(p != NULL);
    if (a_len)
        memcpy(p, a, a_len);
    if (b_len)
        memcpy(p + a_len, b, b_len);
    if (c_len)
        memcpy(p + a_len + b_len, c, c_len);
    return p;
}

/* ---------------------------------------------------------------- tag lists */

FUZZ_NOCOV static size_t fuzz_trim_left(const char *s, size_t a, size_t b)
{
    while (a < b && fuzz_is_fws((unsigned char)s[a]))
        a++;
    return a;
}

FUZZ_NOCOV static size_t fuzz_trim_right(const char *s, size_t a, size_t b)
{
    while (b > a && fuzz_is_fws((unsigned char)s[b - 1]))
        b--;
    return b;
}

/* one tag=value of the reference parse: spans into the list */
struct fuzz_tag {
    size_t name_off, name_len, val_off, val_len;
};

/*
 * fuzz_ref_tags - split on ";", then on the first "=", trim FWS: the number
 * of tags, or -1 for a non-empty segment without "=" (the whole list is bad)
 */
FUZZ_NOCOV static long fuzz_ref_tags(const char *list, size_t len, struct fuzz_tag *tags,
                                     size_t max)
{
    size_t count = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && list[i] != ';')
            continue;
        size_t a = fuzz_trim_left(list, start, i);
        start = i + 1;
        if (a == i)
            continue; /* an empty segment (";;", a final ";") is allowed */
        const char *eq = memchr(list + a, '=', i - a);
        if (eq == NULL)
            return -1;
        if (count == max)
            continue; /* still checked for "=" */
        size_t eq_off = (size_t)(eq - list), v = fuzz_trim_left(list, eq_off + 1, i);
        tags[count].name_off = a;
        tags[count].name_len = fuzz_trim_right(list, a, eq_off) - a;
        tags[count].val_off = v;
        tags[count++].val_len = fuzz_trim_right(list, v, i) - v;
    }
    return (long)count;
}

/* fuzz_check_tags - dkim_tag_find against the reference for every tag of fuzz_tags */
static void fuzz_check_tags(const char *list, size_t len)
{
    static struct fuzz_tag tags[FUZZ_MAX_TAGS];
    long count = fuzz_ref_tags(list, len, tags, FUZZ_MAX_TAGS);
    if (count == FUZZ_MAX_TAGS)
        return; /* the reference kept only some: no verdict */
    for (size_t t = 0; t < sizeof(fuzz_tags) / sizeof(fuzz_tags[0]); t++) {
        const char *val = NULL, *tag = fuzz_tags[t];
        size_t val_len = 0, tag_len = strlen(tag), hits = 0, hit = 0;
        int rc = dkim_tag_find(list, len, tag, &val, &val_len);
        for (long i = 0; i < count; i++)
            if (tags[i].name_len == tag_len && memcmp(list + tags[i].name_off, tag, tag_len) == 0)
                hit = (size_t)i, hits++;
        /* §3.2: a malformed list, or the tag twice, is -1 */
        CHECK(rc == (count < 0 || hits > 1 ? -1 : hits == 1 ? 1 : 0));
        if (rc != 1)
            continue;
        CHECK(val >= list && (size_t)(val - list) <= len && val_len <= len - (size_t)(val - list));
        CHECK((size_t)(val - list) == tags[hit].val_off && val_len == tags[hit].val_len);
        CHECK(val_len == 0 || memchr(val, ';', val_len) == NULL);
        CHECK(val_len == 0 || (!fuzz_is_fws((unsigned char)val[0]) &&
                               !fuzz_is_fws((unsigned char)val[val_len - 1])));
    }
}

/* ---------------------------------------------------------------- header canonicalisation */

/*
 * fuzz_ref_relaxed - RFC 6376 §3.4.2 into out (room for len + 2): name in
 * lower case without WSP before the colon; value unfolded (CRLF and bare LF
 * dropped, a bare CR is data), WSP runs to one SP, none at either end; CRLF
 */
FUZZ_NOCOV static size_t fuzz_ref_relaxed(const char *field, size_t len, const char *colon,
                                          char *out)
{
    size_t n = 0, name_len = (size_t)(colon - field);
    while (name_len && fuzz_is_wsp((unsigned char)field[name_len - 1]))
        name_len--;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char c = (unsigned char)field[i];
        out[n++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    out[n++] = ':';
    size_t value = n;
    for (size_t i = (size_t)(colon - field) + 1; i < len;) { /* unfold */
        if (field[i] == '\r' && i + 1 < len && field[i + 1] == '\n')
            i += 2;
        else if (field[i] == '\n')
            i++;
        else
            out[n++] = field[i++];
    }
    size_t a = value, b = n, w = value; /* squeeze in place: w never passes i */
    int in_run = 0;
    while (a < b && fuzz_is_wsp((unsigned char)out[a]))
        a++;
    while (b > a && fuzz_is_wsp((unsigned char)out[b - 1]))
        b--;
    for (size_t i = a; i < b; i++) {
        int wsp = fuzz_is_wsp((unsigned char)out[i]);
        if (!wsp)
            out[w++] = out[i];
        else if (!in_run)
            out[w++] = ' ';
        in_run = wsp;
    }
    out[w++] = '\r';
    out[w++] = '\n';
    return w;
}

/* fuzz_check_field - one field (or non-field line), both canonicalisations */
static void fuzz_check_field(const char *field, size_t len)
{
    struct buf simple, relaxed, again;
    buf_init(&simple, len + 2);
    buf_init(&relaxed, len + 2);
    buf_init(&again, len + 2);

    /* simple: the bytes as they are, a CRLF added when the field has none */
    CHECK(dkim_canon_header_field(DKIM_CANON_SIMPLE, field, len, &simple) == 0);
    int has_crlf = len >= 2 && field[len - 2] == '\r' && field[len - 1] == '\n';
    CHECK(simple.len == len + (has_crlf ? 0 : 2));
    CHECK(len == 0 || memcmp(simple.data, field, len) == 0);
    CHECK(memcmp(simple.data + simple.len - 2, "\r\n", 2) == 0);

    const char *colon = memchr(field, ':', len);
    int rc = dkim_canon_header_field(DKIM_CANON_RELAXED, field, len, &relaxed);
    if (colon == NULL) {
        CHECK(rc == -1);
        goto done;
    }
    CHECK(rc == 0);
    char *ref = malloc(len + 2);
    CHECK(ref != NULL);
    size_t ref_len = fuzz_ref_relaxed(field, len, colon, ref);
    CHECK(relaxed.len == ref_len && memcmp(relaxed.data, ref, ref_len) == 0);
    free(ref);

    /* relaxed is idempotent, and ignores what simple adds */
    CHECK(dkim_canon_header_field(DKIM_CANON_RELAXED, relaxed.data, relaxed.len, &again) == 0);
    CHECK(again.len == relaxed.len && memcmp(again.data, relaxed.data, relaxed.len) == 0);
    buf_reset(&again);
    CHECK(dkim_canon_header_field(DKIM_CANON_RELAXED, simple.data, simple.len, &again) == 0);
    CHECK(again.len == relaxed.len && memcmp(again.data, relaxed.data, relaxed.len) == 0);
done:
    buf_cleanup(&simple);
    buf_cleanup(&relaxed);
    buf_cleanup(&again);
}

/* fuzz_check_header - canonicalise every field; check the tag list of each DKIM-Signature */
static void fuzz_check_header(const char *in, size_t len)
{
    struct hdr_iter it;
    struct hdr_field f;
    hdr_iter_init(&it, in, len);
    while (hdr_iter_next(&it, &f)) {
        CHECK(f.off < f.end && f.end <= len && f.value_off <= f.value_end && f.value_end <= f.end);
        char *field = fuzz_exact(in + f.off, f.end - f.off, NULL, 0, NULL, 0);
        fuzz_check_field(field, f.end - f.off);
        free(field);
        if (hdr_name_is(in, &f, "DKIM-Signature", 14)) {
            /* without its line end, as the verifier hands the signature field over */
            field = fuzz_exact(in + f.off, f.value_end - f.off, NULL, 0, NULL, 0);
            fuzz_check_field(field, f.value_end - f.off);
            free(field);
            char *list = fuzz_exact(in + f.value_off, f.value_end - f.value_off, NULL, 0, NULL, 0);
            fuzz_check_tags(list, f.value_end - f.value_off);
            free(list);
        }
    }
}

/* ---------------------------------------------------------------- body hash */

/* fuzz_ref_body - RFC 6376 §3.4.3 / §3.4.4 over the whole body, line by line */
FUZZ_NOCOV static void fuzz_ref_body(const unsigned char *p, size_t len, enum dkim_canon canon,
                                     unsigned char hash[DKIM_HASH_LEN])
{
    unsigned char *out = malloc(2 * len + 2);
    size_t n = 0, keep = 0; /* keep: the end of the last line with content */
    CHECK(out != NULL);
    for (size_t start = 0; start < len;) {
        size_t end = start; /* the line is p[start..end), a CRLF follows or the body ends */
        while (end < len && !(p[end] == '\r' && end + 1 < len && p[end + 1] == '\n'))
            end++;
        size_t line_start = n;
        int wsp = 0;
        for (size_t i = start; i < end; i++) {
            if (canon == DKIM_CANON_RELAXED && fuzz_is_wsp(p[i])) {
                wsp = 1; /* inner runs become one SP, a run at the end goes */
                continue;
            }
            if (wsp)
                out[n++] = ' ';
            wsp = 0;
            out[n++] = p[i];
        }
        /* every line ends in CRLF, the last one too; empty ones count only before content */
        out[n++] = '\r';
        out[n++] = '\n';
        if (n - 2 > line_start)
            keep = n;
        start = end + 2; /* past the CRLF (or past the end) */
    }
    n = keep; /* trailing empty lines dropped */
    if (canon == DKIM_CANON_SIMPLE && n == 0) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    unsigned int md_len = 0;
    CHECK(EVP_Digest(out, n, hash, &md_len, EVP_sha256(), NULL) == 1 && md_len == DKIM_HASH_LEN);
    free(out);
}

/* fuzz_body_hash - the streaming hash, in chunks from the generator (whole when seed is 0) */
static void fuzz_body_hash(struct dkim_body *body, const char *p, size_t len, uint32_t seed,
                           struct dkim_body_hash *out)
{
    if (seed == 0) {
        dkim_body_update(body, p, len);
    } else {
        uint32_t x = 0;
        for (size_t pos = 0; pos < len;) {
            x = fuzz_rand(&seed);
            size_t chunk = (x & 7) == 0 ? 0 : (x & 7) == 1 ? (x >> 8) % 4096 : (x >> 8) % 9;
            if (chunk > len - pos)
                chunk = len - pos;
            dkim_body_update(body, p + pos, chunk);
            pos += chunk;
        }
        if (x & 16)
            dkim_body_update(body, p + len, 0); /* an empty update at the end changes nothing */
    }
    CHECK(dkim_body_final(body, out) == 0);
}

/* fuzz_check_body - whole, chunked (reused hasher) and reference hashes agree */
static void fuzz_check_body(const char *in, size_t len, uint32_t seed)
{
    static struct dkim_body *reused[2]; /* dkim_body_final resets: one hasher for all runs */
    for (int canon = 0; canon < 2; canon++) {
        struct dkim_body_hash whole, chunked;
        unsigned char ref[DKIM_HASH_LEN];
        struct dkim_body *body = dkim_body_new((enum dkim_canon)canon);
        CHECK(body != NULL);
        if (reused[canon] == NULL)
            CHECK((reused[canon] = dkim_body_new((enum dkim_canon)canon)) != NULL);
        fuzz_body_hash(body, in, len, 0, &whole);
        fuzz_body_hash(reused[canon], in, len, seed | 1, &chunked);
        fuzz_ref_body((const unsigned char *)in, len, (enum dkim_canon)canon, ref);
        CHECK(whole.canon == (enum dkim_canon)canon && chunked.canon == whole.canon);
        CHECK(memcmp(whole.hash, ref, DKIM_HASH_LEN) == 0);
        CHECK(memcmp(chunked.hash, whole.hash, DKIM_HASH_LEN) == 0);
        dkim_body_free(body);
    }
}

/* ---------------------------------------------------------------- base64 */

/* fuzz_check_base64 - round trips over the first bytes of the input */
static void fuzz_check_base64(const char *in, size_t len)
{
    size_t n = len < 512 ? len : 512, out_len = 0, again_len = 0;
    unsigned char decoded[512], again[512];
    struct buf enc;
    buf_init(&enc, 4 * 512 / 3 + 8);

    /* encode, then decode: the same bytes */
    CHECK(dkim_base64((const unsigned char *)in, n, &enc) == 0);
    CHECK(enc.len == (n + 2) / 3 * 4);
    CHECK(dkim_base64_decode(enc.data, enc.len, decoded, sizeof(decoded), &out_len) == 0);
    CHECK(out_len == n && (n == 0 || memcmp(decoded, in, n) == 0));

    /* the input as base64 text: what decodes, re-encodes and decodes the same */
    if (dkim_base64_decode(in, n, decoded, sizeof(decoded), &out_len) == 0) {
        CHECK(out_len <= n);
        buf_reset(&enc);
        CHECK(dkim_base64(decoded, out_len, &enc) == 0);
        CHECK(dkim_base64_decode(enc.data, enc.len, again, sizeof(again), &again_len) == 0);
        CHECK(again_len == out_len && (out_len == 0 || memcmp(again, decoded, out_len) == 0));
        if (out_len > 0) { /* one byte short of room: refused, nothing written past max */
            unsigned char small[513];
            memset(small, 0xa5, sizeof(small));
            CHECK(dkim_base64_decode(in, n, small, out_len - 1, &again_len) == -1);
            CHECK(small[out_len - 1] == 0xa5);
        }
    }
    buf_cleanup(&enc);
}

/* ---------------------------------------------------------------- verification */

/* fuzz_check_verify - dkim_verify of the input as it is */
static void fuzz_check_verify(const char *in, size_t len, long long now)
{
    const struct fuzz_keys *keys = fuzz_keys_get();
    struct dkim_result results[FUZZ_MAX_RESULTS + 1];
    size_t count = 99, header_end, body_off, sigs = 0;
    struct hdr_iter it;
    struct hdr_field f;

    memset(results, 0x5a, sizeof(results));
    hdr_split(in, len, &header_end, &body_off);
    hdr_iter_init(&it, in, len);
    while (hdr_iter_next(&it, &f))
        sigs += hdr_name_is(in, &f, "DKIM-Signature", 14);
    int rc = dkim_verify(in, len, keys->pubs, 2, now, results, FUZZ_MAX_RESULTS, &count);
    if (header_end == 0) {
        CHECK(rc == -1 && count == 0);
        return;
    }
    CHECK(rc == 0);
    CHECK(count == (sigs < FUZZ_MAX_RESULTS ? sigs : FUZZ_MAX_RESULTS));
    for (size_t i = 0; i < count; i++) {
        const struct dkim_result *r = &results[i];
        CHECK(r->status == DKIM_PASS || r->status == DKIM_FAIL || r->status == DKIM_NEUTRAL ||
              r->status == DKIM_PERMERROR);
        CHECK(memchr(r->domain, '\0', sizeof(r->domain)) != NULL);
        CHECK(memchr(r->selector, '\0', sizeof(r->selector)) != NULL);
        CHECK(memchr(r->reason, '\0', sizeof(r->reason)) != NULL);
        CHECK(strcmp(dkim_status_name(r->status), "permerror") != 0 || r->status == DKIM_PERMERROR);
    }
    const unsigned char *past = (const unsigned char *)&results[count];
    for (size_t i = 0; i < sizeof(results[0]); i++)
        CHECK(past[i] == 0x5a);
}

/* fuzz_verify_top - status of the topmost field of a + b + c, copied to an exact buffer */
static enum dkim_status fuzz_verify_top(const char *a, size_t a_len, const char *b, size_t b_len,
                                        const char *c, size_t c_len)
{
    const struct fuzz_keys *keys = fuzz_keys_get();
    struct dkim_result result;
    size_t count = 0;
    char *msg = fuzz_exact(a, a_len, b, b_len, c, c_len);
    CHECK(dkim_verify(msg, a_len + b_len + c_len, keys->pubs, 2, 0, &result, 1, &count) == 0);
    CHECK(count == 1);
    free(msg);
    return result.status;
}

/* fuzz_flip - a byte that is not SP, HTAB, CR or LF, and not old */
FUZZ_NOCOV static char fuzz_flip(char old, uint32_t *seed)
{
    unsigned char c = (unsigned char)(old + 1 + fuzz_rand(seed) % 255);
    while (c == (unsigned char)old || fuzz_is_fws(c))
        c++;
    return (char)c;
}

/* fuzz_pick - the position of a random byte of p[from..to) that fuzz_flip may change, or to */
FUZZ_NOCOV static size_t fuzz_pick(const char *p, size_t from, size_t to, uint32_t *seed)
{
    size_t eligible = 0;
    for (size_t i = from; i < to; i++)
        eligible += !fuzz_is_fws((unsigned char)p[i]);
    if (eligible == 0)
        return to;
    size_t want = fuzz_rand(seed) % eligible;
    for (size_t i = from; i < to; i++)
        if (!fuzz_is_fws((unsigned char)p[i]) && want-- == 0)
            return i;
    return to;
}

/* fuzz_refusal_ok - the reasons dkim_sign_header may give for a message */
static int fuzz_refusal_ok(const char *err)
{
    return strstr(err, "no From field") != NULL || strstr(err, "more than") != NULL ||
           strstr(err, "longer than its limit") != NULL;
}

/* fuzz_sign_verify - sign with hc/bc, verify, tamper, verify again */
static void fuzz_sign_verify(const char *in, size_t len, enum dkim_canon hc, enum dkim_canon bc,
                             uint32_t seed)
{
    const struct fuzz_keys *keys = fuzz_keys_get();
    struct dkim_signer *signer = keys->signer[hc][bc];
    size_t header_end, body_off;
    struct hdr_iter it;
    struct hdr_field f;
    struct dkim_body_hash bh;
    struct buf sig;
    char err[256] = "";
    int has_from = 0;

    hdr_split(in, len, &header_end, &body_off);
    /* a first line starting with WSP would continue the field put on top */
    if (header_end == 0 || in[0] == ' ' || in[0] == '\t')
        return;
    hdr_iter_init(&it, in, header_end);
    while (hdr_iter_next(&it, &f))
        has_from |= hdr_name_is(in, &f, "from", 4);

    CHECK(dkim_signer_body_canon(signer) == bc);
    struct dkim_body *body = dkim_body_new(bc);
    CHECK(body != NULL);
    fuzz_body_hash(body, in + body_off, len - body_off, seed | 1, &bh);
    dkim_body_free(body);

    buf_init(&sig, 2 * LIMIT_DKIM_FIELD);
    int rc = dkim_sign_header(signer, in, header_end, &bh, FUZZ_NOW, &sig, err, sizeof(err));
    if (rc < 0) {
        CHECK(sig.len == 0);
        CHECK(has_from ? fuzz_refusal_ok(err) && strstr(err, "no From") == NULL
                       : strstr(err, "no From") != NULL);
        goto done;
    }
    CHECK(has_from);
    CHECK(sig.len > 16 && memcmp(sig.data, "DKIM-Signature:", 15) == 0);
    CHECK(memcmp(sig.data + sig.len - 2, "\r\n", 2) == 0);

    /* signed as it is: pass */
    CHECK(fuzz_verify_top(sig.data, sig.len, in, len, NULL, 0) == DKIM_PASS);

    /* one body byte changed: fail */
    size_t at = fuzz_pick(in, body_off, len, &seed);
    if (at < len) {
        char *copy = fuzz_exact(in, len, NULL, 0, NULL, 0);
        copy[at] = fuzz_flip(copy[at], &seed);
        CHECK(fuzz_verify_top(sig.data, sig.len, copy, len, NULL, 0) == DKIM_FAIL);
        free(copy);
    }

    /* the header: one byte of a From value changed, or (the input decides, to keep
     * a run short) a From added on top: fail */
    if (fuzz_rand(&seed) & 1) {
        /* a From added on top (below the signature): from is oversigned */
        CHECK(fuzz_verify_top(sig.data, sig.len, FUZZ_EVIL_FROM, strlen(FUZZ_EVIL_FROM), in, len) ==
              DKIM_FAIL);
    } else {
        size_t froms = 0, which;
        hdr_iter_init(&it, in, header_end);
        while (hdr_iter_next(&it, &f))
            froms += hdr_name_is(in, &f, "from", 4);
        which = fuzz_rand(&seed) % froms;
        hdr_iter_init(&it, in, header_end);
        while (hdr_iter_next(&it, &f))
            if (hdr_name_is(in, &f, "from", 4) && which-- == 0)
                break;
        at = fuzz_pick(in, f.value_off, f.value_end, &seed);
        if (at < f.value_end) {
            char *copy = fuzz_exact(in, len, NULL, 0, NULL, 0);
            copy[at] = fuzz_flip(copy[at], &seed);
            CHECK(fuzz_verify_top(sig.data, sig.len, copy, len, NULL, 0) == DKIM_FAIL);
            free(copy);
        }
    }
done:
    buf_cleanup(&sig);
}

/* fuzz_check_record - the first line as a key record (DNS TXT bytes) */
static void fuzz_check_record(const char *in, size_t len)
{
    const char *lf = memchr(in, '\n', len);
    size_t line = lf ? (size_t)(lf - in) : len;
    char err[256];
    if (line > 1024)
        return;
    char *copy = fuzz_exact(in, line, NULL, 0, NULL, 0);
    struct dkim_pubkey *key =
        dkim_pubkey_new(FUZZ_DOMAIN, FUZZ_SELECTOR, copy, line, err, sizeof(err));
    dkim_pubkey_free(key);
    fuzz_check_tags(copy, line);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    uint32_t seed = 2166136261u;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    fuzz_keys_get();
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    seed |= 1;

    fuzz_check_record(in, size);
    fuzz_check_header(in, size);
    fuzz_check_body(in, size, seed);
    fuzz_check_base64(in, size);
    fuzz_check_verify(in, size, (seed & 2) ? FUZZ_NOW : 0);
    /* both header canonicalisations; the body one drawn from the input, both covered */
    enum dkim_canon bc = (seed & 4) ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
    fuzz_sign_verify(in, size, DKIM_CANON_RELAXED, bc, seed);
    fuzz_sign_verify(in, size, DKIM_CANON_SIMPLE,
                     bc == DKIM_CANON_SIMPLE ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
                     seed >> 5 | 1);
    return 0;
}
