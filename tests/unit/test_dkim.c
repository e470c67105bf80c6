/*
 * test_dkim - DKIM canonicalisation (RFC 6376 §3.4, the §3.4.6 example),
 * empty-body hashes (RFC 4871 errata 1376, kept in RFC 6376), body hashing
 * across any chunk boundary (against a plain reference canonicaliser),
 * header field choice and oversigning (§5.4.2), folding, key checks (RFC
 * 8301 §3.2), the tag-list and base64 helpers, the RFC 8463 Appendix A
 * ed25519-sha256 example signature reproduced byte for byte, and that one
 * verification hashes the body at most once per canonicalisation, however
 * many signatures it carries (struct dkim_body_memo, dkim.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "dkim.h"
#include "dkim_int.h"

/* ---------------------------------------------------------------- helpers */

static void sha256(const void *data, size_t len, unsigned char out[DKIM_HASH_LEN])
{
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
}

/* body_hash - hash body[0..len) fed in chunks of chunk bytes (0: one call) */
static void body_hash(enum dkim_canon canon, const char *body, size_t len, size_t chunk,
                      unsigned char out[DKIM_HASH_LEN])
{
    struct dkim_body *b = dkim_body_new(canon);
    struct dkim_body_hash h;
    assert_non_null(b);
    if (chunk == 0)
        dkim_body_update(b, body, len);
    for (size_t off = 0; chunk && off < len; off += chunk)
        dkim_body_update(b, body + off, len - off < chunk ? len - off : chunk);
    assert_int_equal(dkim_body_final(b, &h), 0);
    assert_int_equal(h.canon, canon);
    memcpy(out, h.hash, DKIM_HASH_LEN);
    dkim_body_free(b);
}

static char *pem_of(EVP_PKEY *pkey)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    assert_int_equal(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL), 1);
    long n = BIO_get_mem_data(bio, &data);
    char *copy = calloc(1, (size_t)n + 1);
    memcpy(copy, data, (size_t)n);
    BIO_free(bio);
    return copy;
}

static struct dkim_key *new_key(const char *type, size_t bits, const char *domain, const char *sel)
{
    EVP_PKEY *pkey = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits)
                                              : EVP_PKEY_Q_keygen(NULL, NULL, type);
    char err[256], *pem = pem_of(pkey);
    struct dkim_key *key = dkim_key_new(pem, strlen(pem), domain, sel, err, sizeof(err));
    free(pem);
    EVP_PKEY_free(pkey);
    return key;
}

/* ---------------------------------------------------------------- body canonicalisation */

struct body_case {
    const char *name;
    enum dkim_canon canon;
    const char *body;
    const char *want; /* the canonical body */
};

#define S DKIM_CANON_SIMPLE
#define R DKIM_CANON_RELAXED
static const struct body_case body_cases[] = {
    /* RFC 6376 §3.4.6 */
    {"rfc6376 3.4.6 relaxed", R, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"},
    {"rfc6376 3.4.6 simple", S, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n"},
    {"empty simple", S, "", "\r\n"},
    {"empty relaxed", R, "", ""},
    {"only crlfs simple", S, "\r\n\r\n\r\n", "\r\n"},
    {"only crlfs relaxed", R, "\r\n\r\n\r\n", ""},
    {"one crlf simple", S, "\r\n", "\r\n"},
    {"one crlf relaxed", R, "\r\n", ""},
    {"white space lines relaxed", R, " \t \r\n  \r\n\t\r\n", ""},
    {"white space lines simple", S, " \t \r\n  \r\n\t\r\n", " \t \r\n  \r\n\t\r\n"},
    {"no final crlf simple", S, "abc", "abc\r\n"},
    {"no final crlf relaxed", R, "abc", "abc\r\n"},
    {"partial line of white space relaxed", R, "a\r\n  ", "a\r\n"},
    {"partial white space tail relaxed", R, "abc \t ", "abc\r\n"},
    {"partial white space tail simple", S, "abc \t ", "abc \t \r\n"},
    {"trailing ws then blank lines relaxed", R, "a\r\n \r\n\t\r\n", "a\r\n"},
    {"trailing ws then blank lines simple", S, "a\r\n \r\n\t\r\n", "a\r\n \r\n\t\r\n"},
    {"blank lines inside kept", R, "a\r\n\r\n\r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n"},
    {"leading white space reduced", R, "  a\r\n\tb\r\n", " a\r\n b\r\n"},
    {"bare cr is data", S, "a\rb\r\n", "a\rb\r\n"},
    {"bare cr is data relaxed", R, "a \rb\r\n", "a \rb\r\n"},
    {"cr at the very end", S, "a\r", "a\r\r\n"},
    {"bare lf is data", R, "a\nb\r\n", "a\nb\r\n"},
    {"crcrlf", R, "a\r\r\n", "a\r\r\n"},
    {"8-bit bytes", R, "Gr\xfc\xdf  e\r\n", "Gr\xfc\xdf e\r\n"},
};
#undef S
#undef R

static void test_body_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(body_cases); i++) {
        const struct body_case *c = &body_cases[i];
        unsigned char want[DKIM_HASH_LEN], got[DKIM_HASH_LEN];
        print_message("case: %s\n", c->name);
        sha256(c->want, strlen(c->want), want);
        for (size_t chunk = 0; chunk <= 5; chunk++) {
            body_hash(c->canon, c->body, strlen(c->body), chunk, got);
            assert_memory_equal(got, want, DKIM_HASH_LEN);
        }
    }
}

/* RFC 4871 errata 1376 (carried into RFC 6376 §3.4.3, §3.4.4) */
static void test_empty_body_hashes(void **state)
{
    (void)state;
    struct {
        enum dkim_canon canon;
        const char *want;
    } cases[] = {
        {DKIM_CANON_SIMPLE, "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY="},
        {DKIM_CANON_RELAXED, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        unsigned char h[DKIM_HASH_LEN];
        struct buf b64;
        buf_init(&b64, 64);
        body_hash(cases[i].canon, "", 0, 0, h);
        assert_int_equal(dkim_base64(h, sizeof(h), &b64), 0);
        assert_string_equal(b64.data, cases[i].want);
        buf_cleanup(&b64);
    }
}

/* reference_canon - the RFC's rules written plainly, on the whole body */
static size_t reference_canon(enum dkim_canon canon, const char *in, size_t len, char *out)
{
    size_t n = 0, pos = 0;
    if (canon == DKIM_CANON_RELAXED) {
        while (pos < len) { /* one line, CRLF-terminated or the last partial one */
            size_t end = pos;
            while (end < len && !(in[end] == '\r' && end + 1 < len && in[end + 1] == '\n'))
                end++;
            size_t line_start = n;
            for (size_t i = pos; i < end; i++) {
                if (in[i] == ' ' || in[i] == '\t') {
                    if (n == line_start || out[n - 1] != ' ')
                        out[n++] = ' ';
                } else {
                    out[n++] = in[i];
                }
            }
            while (n > line_start && out[n - 1] == ' ')
                n--;
            if (end < len || n > line_start) {
                out[n++] = '\r';
                out[n++] = '\n';
            }
            pos = end + 2;
        }
        while (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0)
            n -= 2;
        if (n == 2 && memcmp(out, "\r\n", 2) == 0)
            n = 0;
        return n;
    }
    memcpy(out, in, len);
    n = len;
    if (n == 0 || n < 2 || memcmp(out + n - 2, "\r\n", 2) != 0) {
        out[n++] = '\r';
        out[n++] = '\n';
    }
    while (n >= 4 && memcmp(out + n - 4, "\r\n\r\n", 4) == 0)
        n -= 2;
    return n;
}

/* random bodies over the bytes that matter, any chunking, against the reference */
static void test_body_chunk_independence(void **state)
{
    (void)state;
    static const char alphabet[] = {' ', '\t', '\r', '\n', 'a', '\r', '\n', 'b'};
    char body[64], canon_buf[256];
    unsigned seed = 12345;
    for (int round = 0; round < 4000; round++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % sizeof(body);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            body[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
        }
        for (int c = 0; c < 2; c++) {
            enum dkim_canon canon = c ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED;
            unsigned char want[DKIM_HASH_LEN], got[DKIM_HASH_LEN];
            size_t n = reference_canon(canon, body, len, canon_buf);
            sha256(canon_buf, n, want);
            for (size_t chunk = 0; chunk <= 4; chunk++) {
                body_hash(canon, body, len, chunk, got);
                assert_memory_equal(got, want, DKIM_HASH_LEN);
            }
        }
    }
}

/* ---------------------------------------------------------------- header canonicalisation */

struct header_case {
    const char *name;
    enum dkim_canon canon;
    const char *field;
    const char *want;
};

static const struct header_case header_cases[] = {
    {"rfc6376 3.4.6 A", DKIM_CANON_RELAXED, "A: X\r\n", "a:X\r\n"},
    {"rfc6376 3.4.6 B", DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"},
    {"rfc6376 3.4.6 B simple", DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n", "B : Y\t\r\n\tZ  \r\n"},
    {"name lower-cased", DKIM_CANON_RELAXED, "SuBjEcT: Hi There\r\n", "subject:Hi There\r\n"},
    {"no space after colon", DKIM_CANON_RELAXED, "Subject:x\r\n", "subject:x\r\n"},
    {"fold right after colon", DKIM_CANON_RELAXED, "Message-ID:\r\n <a@b>\r\n",
     "message-id:<a@b>\r\n"},
    {"runs of white space", DKIM_CANON_RELAXED, "To:  a \t b  \r\n", "to:a b\r\n"},
    {"empty value", DKIM_CANON_RELAXED, "X-Empty:\r\n", "x-empty:\r\n"},
    {"only white space value", DKIM_CANON_RELAXED, "X-Empty: \t \r\n", "x-empty:\r\n"},
    {"utf-8 kept", DKIM_CANON_RELAXED, "Subject: Gr\xc3\xbc\xc3\x9f  e\r\n",
     "subject:Gr\xc3\xbc\xc3\x9f e\r\n"},
    {"simple adds missing crlf", DKIM_CANON_SIMPLE, "X: y", "X: y\r\n"},
    {"value case kept", DKIM_CANON_RELAXED, "From: Joe <JOE@Example.COM>\r\n",
     "from:Joe <JOE@Example.COM>\r\n"},
};

static void test_header_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(header_cases); i++) {
        const struct header_case *c = &header_cases[i];
        struct buf out;
        print_message("case: %s\n", c->name);
        buf_init(&out, 4096);
        assert_int_equal(dkim_canon_header_field(c->canon, c->field, strlen(c->field), &out), 0);
        assert_int_equal(out.len, strlen(c->want));
        assert_memory_equal(out.data, c->want, out.len);
        buf_cleanup(&out);
    }
}

/* §5.4.2: bottom up; a name listed once more than it occurs adds nothing */
static void test_header_hash_selection(void **state)
{
    (void)state;
    const char *hdr = "X: first\r\nFrom: a@b\r\nX: second\r\nY: y\r\n";
    const char *names[] = {"x", "x", "x", "from", "z"};
    size_t lens[] = {1, 1, 1, 4, 1};
    const char *sig = "DKIM-Signature: v=1; b=";
    const char *want = "x:second\r\nx:first\r\nfrom:a@b\r\ndkim-signature:v=1; b=";
    unsigned char got[DKIM_HASH_LEN], expect[DKIM_HASH_LEN];
    assert_int_equal(dkim_header_hash(hdr, strlen(hdr), names, lens, 5, DKIM_CANON_RELAXED, sig,
                                      strlen(sig), got),
                     0);
    sha256(want, strlen(want), expect);
    assert_memory_equal(got, expect, DKIM_HASH_LEN);
}

/* ---------------------------------------------------------------- signing */

/* unfold - a field without its folds, for looking at tags */
static void unfold(const char *field, size_t len, char *out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < max; i++) {
        if (field[i] == '\r' && i + 2 < len && field[i + 1] == '\n' &&
            (field[i + 2] == ' ' || field[i + 2] == '\t')) {
            i++; /* drop CRLF, keep the white space after it */
            continue;
        }
        out[n++] = field[i];
    }
    out[n] = '\0';
}

static const char *SIGN_HDR = "Received: from x by y; Fri, 4 Dec 2026 10:00:00 +0000\r\n"
                              "From: Alex <alex@source.example>\r\n"
                              "To: bob@partner.example\r\n"
                              "Cc: c1@partner.example\r\n"
                              "List-Id: <l.source.example>\r\n"
                              "Subject: hi\r\n"
                              "Cc: c2@partner.example\r\n"
                              "list-unsubscribe: <mailto:x@source.example>\r\n"
                              "X-Other: not signed\r\n"
                              "Date: Fri, 4 Dec 2026 10:00:00 +0000\r\n";

static void test_sign_default_headers_and_folding(void **state)
{
    (void)state;
    struct dkim_key *key = new_key("ED25519", 0, "source.example", "sel");
    struct dkim_signer *signer;
    struct dkim_body_hash bh;
    struct buf out;
    char err[256], flat[4096];
    assert_non_null(key);
    signer = dkim_signer_new(&key, 1, NULL, err, sizeof(err));
    assert_non_null(signer);
    body_hash(DKIM_CANON_RELAXED, "x\r\n", 3, 0, bh.hash);
    bh.canon = DKIM_CANON_RELAXED;
    buf_init(&out, 65536);
    assert_int_equal(dkim_sign_header(signer, SIGN_HDR, strlen(SIGN_HDR), &bh, 1796378400, &out,
                                      err, sizeof(err)),
                     0);
    /* folded at 78 columns, continuation lines start with SP, ends in CRLF */
    assert_true(out.len > 2 && memcmp(out.data + out.len - 2, "\r\n", 2) == 0);
    for (const char *line = out.data; line < out.data + out.len;) {
        const char *end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end - line <= DKIM_FOLD_COLUMNS);
        if (line != out.data)
            assert_true(line[0] == ' ');
        line = end + 2;
    }
    unfold(out.data, out.len, flat, sizeof(flat));
    char nospace[4096];
    size_t k = 0;
    for (const char *p = flat; *p; p++)
        if (*p != ' ')
            nospace[k++] = *p;
    nospace[k] = '\0';
    /* the default list's order, each as often as it occurs, from once more, then list-* */
    assert_non_null(
        strstr(nospace, ";h=from:from:subject:date:to:cc:cc:list-id:list-unsubscribe;"));
    assert_non_null(strstr(flat, "t=1796378400;"));
    assert_non_null(strstr(flat, "a=ed25519-sha256; c=relaxed/relaxed; d=source.example; s=sel;"));
    assert_null(strstr(flat, " l="));
    assert_null(strstr(flat, " x="));
    buf_cleanup(&out);

    /* no From: nothing signed, nothing written */
    buf_init(&out, 65536);
    assert_int_equal(dkim_sign_header(signer, "To: b@x\r\n", 9, &bh, 1, &out, err, sizeof(err)),
                     -1);
    assert_int_equal(out.len, 0);
    assert_non_null(strstr(err, "no From"));
    /* a body hashed with the other canonicalisation is refused */
    bh.canon = DKIM_CANON_SIMPLE;
    assert_int_equal(
        dkim_sign_header(signer, SIGN_HDR, strlen(SIGN_HDR), &bh, 1, &out, err, sizeof(err)), -1);
    buf_cleanup(&out);
    dkim_signer_free(signer);
    dkim_key_free(key);
}

/* dual signing, both canonicalisations, x=; the offline verifier passes them and fails tampering */
static void test_sign_verify_round_trip(void **state)
{
    (void)state;
    struct dkim_key *keys[2] = {new_key("RSA", 2048, "source.example", "rsa"),
                                new_key("ED25519", 0, "source.example", "ed")};
    struct dkim_pubkey *pubs[2];
    const char *body = "Hello  Bob,\r\n\r\nthe numbers.\r\n\r\n\r\n";
    char err[256];
    assert_non_null(keys[0]);
    assert_non_null(keys[1]);
    for (int k = 0; k < 2; k++) {
        struct buf txt;
        buf_init(&txt, 4096);
        assert_int_equal(dkim_key_dns_txt(keys[k], &txt), 0);
        pubs[k] = dkim_pubkey_new("source.example", k ? "ed" : "rsa", txt.data, txt.len, err,
                                  sizeof(err));
        assert_non_null(pubs[k]);
        buf_cleanup(&txt);
    }
    for (int c = 0; c < 2; c++) {
        struct dkim_opts opts = {.header_canon = c ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
                                 .body_canon = c ? DKIM_CANON_SIMPLE : DKIM_CANON_RELAXED,
                                 .expire_after = 3600};
        struct dkim_signer *signer = dkim_signer_new(keys, 2, &opts, err, sizeof(err));
        struct dkim_body_hash bh;
        struct dkim_result res[4];
        size_t count;
        struct buf msg;
        assert_non_null(signer);
        body_hash(dkim_signer_body_canon(signer), body, strlen(body), 3, bh.hash);
        bh.canon = dkim_signer_body_canon(signer);
        buf_init(&msg, 1 << 20);
        assert_int_equal(dkim_sign_header(signer, SIGN_HDR, strlen(SIGN_HDR), &bh, 1796378400, &msg,
                                          err, sizeof(err)),
                         0);
        assert_int_equal(buf_append_str(&msg, SIGN_HDR), 0);
        assert_int_equal(buf_append_str(&msg, "\r\n"), 0);
        assert_int_equal(buf_append_str(&msg, body), 0);
        assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 2, 1796378400, res, 4, &count), 0);
        assert_int_equal(count, 2);
        assert_int_equal(res[0].status, DKIM_PASS);
        assert_int_equal(res[0].alg, DKIM_ALG_RSA_SHA256);
        assert_int_equal(res[1].status, DKIM_PASS);
        assert_int_equal(res[1].alg, DKIM_ALG_ED25519_SHA256);
        /* expired */
        assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 2, 1796378400 + 7200, res, 4, &count),
                         0);
        assert_int_equal(res[0].status, DKIM_PERMERROR);
        /* one body byte changed */
        char *numbers = strstr(msg.data, "numbers");
        numbers[0] = 'N';
        assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 2, 0, res, 4, &count), 0);
        assert_int_equal(res[0].status, DKIM_FAIL);
        assert_int_equal(res[1].status, DKIM_FAIL);
        numbers[0] = 'n';
        /* a header changed */
        char *subject = strstr(msg.data, "Subject: hi");
        subject[9] = 'H';
        assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 2, 0, res, 4, &count), 0);
        assert_int_equal(res[0].status, DKIM_FAIL);
        assert_int_equal(res[1].status, DKIM_FAIL);
        /* no key given: neutral */
        assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 1, 0, res, 4, &count), 0);
        assert_int_equal(res[1].status, DKIM_NEUTRAL);
        buf_cleanup(&msg);
        dkim_signer_free(signer);
    }
    for (int k = 0; k < 2; k++) {
        dkim_pubkey_free(pubs[k]);
        dkim_key_free(keys[k]);
    }
}

/* sign_fields - the DKIM-Signature fields of keys over SIGN_HDR and body, canon for both */
static void sign_fields(struct dkim_key **keys, size_t nkeys, enum dkim_canon canon,
                        const char *body, struct buf *out)
{
    struct dkim_opts opts = {.header_canon = canon, .body_canon = canon};
    struct dkim_body_hash bh;
    char err[256];
    struct dkim_signer *signer = dkim_signer_new(keys, nkeys, &opts, err, sizeof(err));
    assert_non_null(signer);
    body_hash(canon, body, strlen(body), 0, bh.hash);
    bh.canon = canon;
    assert_int_equal(dkim_sign_header(signer, SIGN_HDR, strlen(SIGN_HDR), &bh, 1796378400, out, err,
                                      sizeof(err)),
                     0);
    dkim_signer_free(signer);
}

#define COPIES 16 /* copies of one signature, as the attack in the review sent */

/* many signatures, two canonicalisations: the body is hashed once for each, and all pass */
static void test_verify_hashes_body_once(void **state)
{
    (void)state;
    struct dkim_key *ed = new_key("ED25519", 0, "source.example", "ed");
    struct dkim_key *rsa = new_key("RSA", 2048, "source.example", "rsa");
    struct dkim_pubkey *pubs[2];
    struct dkim_result res[COPIES + 4];
    struct dkim_body_memo memo;
    struct buf relaxed, simple, msg, txt;
    const char *body = "Hello  Bob,\r\n\r\nthe numbers.\r\n\r\n";
    size_t count, header_end, body_off;
    char err[256];
    assert_true(ed && rsa);
    for (int k = 0; k < 2; k++) {
        buf_init(&txt, 4096);
        assert_int_equal(dkim_key_dns_txt(k ? rsa : ed, &txt), 0);
        pubs[k] = dkim_pubkey_new("source.example", k ? "rsa" : "ed", txt.data, txt.len, err,
                                  sizeof(err));
        assert_non_null(pubs[k]);
        buf_cleanup(&txt);
    }
    buf_init(&relaxed, 65536);
    buf_init(&simple, 65536);
    sign_fields(&ed, 1, DKIM_CANON_RELAXED, body, &relaxed);
    sign_fields(&rsa, 1, DKIM_CANON_SIMPLE, body, &simple);
    buf_init(&msg, 1 << 20);
    for (int i = 0; i < COPIES; i++)
        assert_int_equal(buf_append(&msg, relaxed.data, relaxed.len), 0);
    assert_int_equal(buf_append(&msg, simple.data, simple.len), 0);
    /* refused before any hashing: l=, and a key nobody gave */
    assert_int_equal(buf_append_str(&msg, "DKIM-Signature: v=1; a=ed25519-sha256; d=source.example;"
                                          " s=ed; h=from; l=3; bh=x; b=y\r\n"),
                     0);
    assert_int_equal(buf_append_str(&msg, "DKIM-Signature: v=1; a=ed25519-sha256; d=other.example;"
                                          " s=ed; h=from; bh=x; b=y\r\n"),
                     0);
    assert_int_equal(buf_append_str(&msg, SIGN_HDR), 0);
    assert_int_equal(buf_append_str(&msg, "\r\n"), 0);
    assert_int_equal(buf_append_str(&msg, body), 0);

    hdr_split(msg.data, msg.len, &header_end, &body_off);
    dkim_body_memo_init(&memo, msg.data + body_off, msg.len - body_off);
    assert_int_equal(
        dkim_verify_memo(msg.data, msg.len, pubs, 2, 0, &memo, res, COPIES + 4, &count), 0);
    assert_int_equal(count, COPIES + 3);
    for (int i = 0; i < COPIES; i++)
        assert_int_equal(res[i].status, DKIM_PASS);
    assert_int_equal(res[COPIES].status, DKIM_PASS);
    assert_int_equal(res[COPIES].alg, DKIM_ALG_RSA_SHA256);
    assert_int_equal(res[COPIES + 1].status, DKIM_PERMERROR);
    assert_non_null(strstr(res[COPIES + 1].reason, "l="));
    assert_int_equal(res[COPIES + 2].status, DKIM_NEUTRAL);
    assert_int_equal(memo.computed, 2); /* relaxed once, simple once: not COPIES + 1 */
    /* a memo already made is used as it is: a second pass hashes nothing */
    assert_int_equal(
        dkim_verify_memo(msg.data, msg.len, pubs, 2, 0, &memo, res, COPIES + 4, &count), 0);
    assert_int_equal(memo.computed, 2);
    assert_int_equal(res[0].status, DKIM_PASS);
    /* the public entry point gives the same verdicts */
    assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 2, 0, res, COPIES + 4, &count), 0);
    assert_int_equal(count, COPIES + 3);
    for (int i = 0; i <= COPIES; i++)
        assert_int_equal(res[i].status, DKIM_PASS);
    /* one body byte changed: every copy fails, still from one hash per canonicalisation */
    char *numbers = strstr(msg.data + body_off, "numbers");
    numbers[0] = 'N';
    dkim_body_memo_init(&memo, msg.data + body_off, msg.len - body_off);
    assert_int_equal(
        dkim_verify_memo(msg.data, msg.len, pubs, 2, 0, &memo, res, COPIES + 4, &count), 0);
    for (int i = 0; i <= COPIES; i++) {
        assert_int_equal(res[i].status, DKIM_FAIL);
        assert_non_null(strstr(res[i].reason, "body hash"));
    }
    assert_int_equal(memo.computed, 2);
    /* no key for any signature: the body is never hashed */
    dkim_body_memo_init(&memo, msg.data + body_off, msg.len - body_off);
    assert_int_equal(
        dkim_verify_memo(msg.data, msg.len, NULL, 0, 0, &memo, res, COPIES + 4, &count), 0);
    assert_int_equal(count, COPIES + 3);
    assert_int_equal(memo.computed, 0);
    /*
     * seeded hashes (coexd's, made while the body streamed in) are used
     * instead of a pass: the hashes of the original body make the changed
     * body pass (proving no pass of its own was made), and are not recomputed
     */
    struct dkim_body_hash seed[2];
    for (int c = 0; c < 2; c++) { /* of the original body text, not of msg's changed one */
        body_hash((enum dkim_canon)c, body, strlen(body), 0, seed[c].hash);
        seed[c].canon = (enum dkim_canon)c;
    }
    dkim_body_memo_init(&memo, msg.data + body_off, msg.len - body_off);
    dkim_body_memo_seed(&memo, &seed[DKIM_CANON_RELAXED]);
    assert_int_equal(
        dkim_verify_memo(msg.data, msg.len, pubs, 2, 0, &memo, res, COPIES + 4, &count), 0);
    for (int i = 0; i < COPIES; i++)
        assert_int_equal(res[i].status, DKIM_PASS); /* relaxed: the seed */
    assert_int_equal(res[COPIES].status, DKIM_FAIL); /* simple: hashed here, changed body */
    assert_int_equal(memo.computed, 1);
    buf_cleanup(&msg);
    buf_cleanup(&relaxed);
    buf_cleanup(&simple);
    for (int k = 0; k < 2; k++)
        dkim_pubkey_free(pubs[k]);
    dkim_key_free(ed);
    dkim_key_free(rsa);
}

/* ---------------------------------------------------------------- keys */

static void test_key_refusals(void **state)
{
    (void)state;
    char err[256];
    struct dkim_key *key = new_key("RSA", 1024, "d.example", "s");
    assert_null(key);
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *pem = pem_of(small);
    assert_null(dkim_key_new(pem, strlen(pem), "d.example", "s", err, sizeof(err)));
    assert_non_null(strstr(err, "1024 bits refused"));
    free(pem);
    EVP_PKEY_free(small);

    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    pem = pem_of(ec);
    assert_null(dkim_key_new(pem, strlen(pem), "d.example", "s", err, sizeof(err)));
    assert_non_null(strstr(err, "unsupported key type"));
    free(pem);
    EVP_PKEY_free(ec);

    assert_null(dkim_key_new("garbage", 7, "d.example", "s", err, sizeof(err)));
    key = new_key("RSA", 2048, "d.example", "s");
    assert_non_null(key);
    assert_int_equal(dkim_key_bits(key), 2048);
    dkim_key_free(key);
    key = new_key("ED25519", 0, "d.example", "bad selector");
    assert_null(key);
}

static void test_zone_line_split(void **state)
{
    (void)state;
    char record[600];
    struct buf out;
    memset(record, 'A', sizeof(record));
    buf_init(&out, 4096);
    assert_int_equal(dkim_dns_zone_line("d.example", "s", record, sizeof(record), &out), 0);
    assert_true(strncmp(out.data, "s._domainkey.d.example IN TXT \"", 31) == 0);
    /* three strings: 255 + 255 + 90 */
    size_t quotes = 0, run = 0, max_run = 0;
    for (size_t i = 0; i < out.len; i++) {
        if (out.data[i] == '"') {
            quotes++;
            run = 0;
        } else if (out.data[i] == 'A' && ++run > max_run)
            max_run = run;
    }
    assert_int_equal(quotes, 6);
    assert_int_equal(max_run, 255);
    buf_cleanup(&out);
}

struct tag_case {
    const char *list, *tag;
    int want;
    const char *want_value;
};

static const struct tag_case tag_cases[] = {
    {"v=1; a=rsa-sha256; d=x", "a", 1, "rsa-sha256"},
    {"v=1;a = rsa-sha256 ;d=x", "a", 1, "rsa-sha256"},
    {" v=1;\r\n\ta=x", "a", 1, "x"},
    {"v=1; b=", "b", 1, ""},
    {"v=1; bh=abc; b=def", "b", 1, "def"},
    {"v=1; a=x", "b", 0, NULL},
    {"v=1; a=x; a=y", "a", -1, NULL},
    {"v=1; garbage; a=x", "a", -1, NULL},
    {"v=1;", "v", 1, "1"},
};

static void test_tag_find(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(tag_cases); i++) {
        const char *v = NULL;
        size_t n = 0;
        print_message("case: %s / %s\n", tag_cases[i].list, tag_cases[i].tag);
        int rc =
            dkim_tag_find(tag_cases[i].list, strlen(tag_cases[i].list), tag_cases[i].tag, &v, &n);
        assert_int_equal(rc, tag_cases[i].want);
        if (rc == 1) {
            assert_int_equal(n, strlen(tag_cases[i].want_value));
            assert_memory_equal(v, tag_cases[i].want_value, n);
        }
    }
}

static void test_base64(void **state)
{
    (void)state;
    struct {
        const char *text;
        int rc;
        const char *want;
    } cases[] = {
        {"", 0, ""},
        {"Zg==", 0, "f"},
        {"Zm8=", 0, "fo"},
        {"Zm9v", 0, "foo"},
        {"Zm9v\r\n YmFy", 0, "foobar"},
        {"Zg", 0, "f"},
        {"Zm8", 0, "fo"},
        {"Z", -1, NULL},
        {"Zm9v=", -1, NULL},
        {"Zg=a", -1, NULL},
        {"Z!==", -1, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        unsigned char out[16];
        size_t n = 99;
        print_message("case: %s\n", cases[i].text);
        int rc = dkim_base64_decode(cases[i].text, strlen(cases[i].text), out, sizeof(out), &n);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(n, strlen(cases[i].want));
            assert_memory_equal(out, cases[i].want, n);
            struct buf b;
            buf_init(&b, 64);
            assert_int_equal(dkim_base64(out, n, &b), 0);
            unsigned char again[16];
            size_t m;
            assert_int_equal(
                dkim_base64_decode(b.data ? b.data : "", b.len, again, sizeof(again), &m), 0);
            assert_int_equal(m, n);
            buf_cleanup(&b);
        }
    }
}

/* ---------------------------------------------------------------- RFC 8463 Appendix A */

/*
 * Source: RFC 8463, "A New Cryptographic Signature Method for DomainKeys
 * Identified Mail (DKIM)", Appendix A (A.1 the Ed25519 secret key, the RFC
 * 8032 §7.1 TEST 1 key; A.2 the DNS key records; A.3 the signed message,
 * which is the RFC 6376 Appendix A.1 example message).
 * https://www.rfc-editor.org/rfc/rfc8463#appendix-A
 */
static const char *rfc8463_seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
static const char *rfc8463_ed_record =
    "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
static const char *rfc8463_rsa_record =
    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
    "iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
    "DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
    "Ip3G+2kryOTIKT+l/K4w3QIDAQAB";
static const char *rfc8463_header =
    "From: Joe SixPack <joe@football.example.com>\r\n"
    "To: Suzie Q <suzie@shopping.example.net>\r\n"
    "Subject: Is dinner ready?\r\n"
    "Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    "Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n";
static const char *rfc8463_body =
    "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n";
static const char *rfc8463_ed_field_unsigned =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=";
static const char *rfc8463_ed_b =
    "/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11BusFa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==";
static const char *rfc8463_signed_fields =
    "DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    " subject : date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    " Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    " d=football.example.com; i=@football.example.com;\r\n"
    " q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    " date : message-id : from : subject : date;\r\n"
    " bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    " b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    " DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    " dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n";

static void test_rfc8463_example(void **state)
{
    (void)state;
    unsigned char seed[32], hash[DKIM_HASH_LEN];
    size_t seed_len;
    char err[256];
    struct buf b, txt, msg;

    /* A.1: the key, from its 32-byte seed */
    assert_int_equal(
        dkim_base64_decode(rfc8463_seed, strlen(rfc8463_seed), seed, sizeof(seed), &seed_len), 0);
    assert_int_equal(seed_len, 32);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
    char *pem = pem_of(pkey);
    struct dkim_key *key =
        dkim_key_new(pem, strlen(pem), "football.example.com", "brisbane", err, sizeof(err));
    assert_non_null(key);
    /* A.2: the record it publishes */
    buf_init(&txt, 1024);
    assert_int_equal(dkim_key_dns_txt(key, &txt), 0);
    assert_string_equal(txt.data, rfc8463_ed_record);

    /* A.3: bh= from the streaming body hasher */
    struct dkim_body_hash bh;
    struct dkim_body *body = dkim_body_new(DKIM_CANON_RELAXED);
    dkim_body_update(body, rfc8463_body, strlen(rfc8463_body));
    assert_int_equal(dkim_body_final(body, &bh), 0);
    dkim_body_free(body);
    buf_init(&b, 1024);
    assert_int_equal(dkim_base64(bh.hash, DKIM_HASH_LEN, &b), 0);
    assert_string_equal(b.data, "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");

    /* A.3: b= over the RFC's own field (Ed25519 is deterministic: the same bytes) */
    const char *names[] = {"from",       "to",   "subject", "date",
                           "message-id", "from", "subject", "date"};
    size_t lens[] = {4, 2, 7, 4, 10, 4, 7, 4};
    assert_int_equal(dkim_header_hash(rfc8463_header, strlen(rfc8463_header), names, lens, 8,
                                      DKIM_CANON_RELAXED, rfc8463_ed_field_unsigned,
                                      strlen(rfc8463_ed_field_unsigned), hash),
                     0);
    buf_reset(&b);
    assert_int_equal(dkim_sign_hash(key, hash, &b, err, sizeof(err)), 0);
    assert_string_equal(b.data, rfc8463_ed_b);

    /* and the verifier passes both of the RFC's signatures (its RSA key has 1024 bits:
     * verifiable per RFC 8301, though coex would not sign with it) */
    struct dkim_pubkey *pubs[2] = {
        dkim_pubkey_new("football.example.com", "brisbane", rfc8463_ed_record,
                        strlen(rfc8463_ed_record), err, sizeof(err)),
        dkim_pubkey_new("football.example.com", "test", rfc8463_rsa_record,
                        strlen(rfc8463_rsa_record), err, sizeof(err)),
    };
    assert_non_null(pubs[0]);
    assert_non_null(pubs[1]);
    buf_init(&msg, 8192);
    assert_int_equal(buf_append_str(&msg, rfc8463_signed_fields), 0);
    assert_int_equal(buf_append_str(&msg, rfc8463_header), 0);
    assert_int_equal(buf_append_str(&msg, "\r\n"), 0);
    assert_int_equal(buf_append_str(&msg, rfc8463_body), 0);
    struct dkim_result res[2];
    size_t count;
    assert_int_equal(dkim_verify(msg.data, msg.len, pubs, 2, 0, res, 2, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(res[0].status, DKIM_PASS);
    assert_int_equal(res[1].status, DKIM_PASS);

    dkim_pubkey_free(pubs[0]);
    dkim_pubkey_free(pubs[1]);
    buf_cleanup(&msg);
    buf_cleanup(&b);
    buf_cleanup(&txt);
    dkim_key_free(key);
    free(pem);
    EVP_PKEY_free(pkey);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_cases),
        cmocka_unit_test(test_empty_body_hashes),
        cmocka_unit_test(test_body_chunk_independence),
        cmocka_unit_test(test_header_cases),
        cmocka_unit_test(test_header_hash_selection),
        cmocka_unit_test(test_sign_default_headers_and_folding),
        cmocka_unit_test(test_sign_verify_round_trip),
        cmocka_unit_test(test_verify_hashes_body_once),
        cmocka_unit_test(test_key_refusals),
        cmocka_unit_test(test_zone_line_split),
        cmocka_unit_test(test_tag_find),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_rfc8463_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
