/*
 * test_arc - ARC (RFC 8617): seal-then-validate round trips from i=1 to the
 * i=50 limit (§4.2.1, §5.1), the structure checks of §5.2 step 3 (a field
 * missing, two of a kind, a gap, i= outside 1..50 or unreadable, cv= out of
 * order), tampering found (a signed header field, the body, an AAR, an AS),
 * cv=fail seals (§5.1.2) and no set after them (§5.1 step 1), missing keys,
 * the refusals of arc_sealer_new and arc_seal, and the RFC 8601 results
 * text (arc_results_text), including hostile d=, s= and reasons, and bytes
 * of 0x80 and above in reasons and results (the AAR stays ASCII). Also:
 * DKIM and ARC validation of one message share one body hash
 * (dkim_verify_memo, arc_chain_validate_memo).
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

#include "arc.h"
#include "arc_int.h"
#include "buf.h"
#include "dkim.h"
#include "dkim_int.h"
#include "hdr.h"

#define NOW 1796378400LL
#define LIMIT_TEST_MESSAGE ((size_t)4 << 20)

static const char base_msg[] =
    "DKIM-Signature: v=1; a=rsa-sha256; d=source.example; s=s1; h=from;\r\n"
    " bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=; b=AAAAzzzz\r\n"
    "From: Alex Wilber <alex.wilber@source.example>\r\n"
    "To: Bob <bob@partner.example>\r\n"
    "Subject: Quarterly numbers\r\n"
    "Date: Fri, 4 Dec 2026 10:00:00 +0000\r\n"
    "Message-ID: <m1@source.example>\r\n"
    "\r\n"
    "Hello Bob,\r\n"
    "\r\n"
    "the numbers are attached.\r\n";

/* keys made once: two sealers (relay.example, fw.example) */
struct fixture {
    struct dkim_key *relay, *fw;
    struct dkim_pubkey *pubs[2];
    struct arc_sealer *relay_sealer, *fw_sealer;
};

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

/* new_key - a fresh key and its public half */
static struct dkim_key *new_key(const char *type, const char *domain, const char *sel,
                                struct dkim_pubkey **pub)
{
    EVP_PKEY *pkey = strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                              : EVP_PKEY_Q_keygen(NULL, NULL, type);
    char err[256], *pem = pem_of(pkey);
    struct dkim_key *key = dkim_key_new(pem, strlen(pem), domain, sel, err, sizeof(err));
    assert_non_null(key);
    if (pub) {
        *pub = dkim_pubkey_new(domain, sel, pem, strlen(pem), err, sizeof(err));
        assert_non_null(*pub);
    }
    free(pem);
    EVP_PKEY_free(pkey);
    return key;
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char err[256];
    fx->relay = new_key("RSA", "relay.example", "arc1", &fx->pubs[0]);
    fx->fw = new_key("RSA", "fw.example", "fw1", &fx->pubs[1]);
    fx->relay_sealer = arc_sealer_new(fx->relay, NULL, err, sizeof(err));
    fx->fw_sealer = arc_sealer_new(fx->fw, NULL, err, sizeof(err));
    assert_non_null(fx->relay_sealer);
    assert_non_null(fx->fw_sealer);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    arc_sealer_free(fx->relay_sealer);
    arc_sealer_free(fx->fw_sealer);
    dkim_key_free(fx->relay);
    dkim_key_free(fx->fw);
    dkim_pubkey_free(fx->pubs[0]);
    dkim_pubkey_free(fx->pubs[1]);
    free(fx);
    return 0;
}

/* validate - arc_chain_validate of a C string with both public keys */
static struct arc_chain validate(const struct fixture *fx, const char *msg)
{
    struct arc_chain c;
    assert_int_equal(arc_chain_validate(msg, strlen(msg), fx->pubs, 2, NOW, &c), 0);
    return c;
}

/* seal_with - validate, seal, return the new message (caller frees); NULL when arc_seal refused */
static char *seal_with(const struct fixture *fx, struct arc_sealer *sealer, const char *msg,
                       struct arc_chain *chain_out)
{
    struct arc_chain chain = validate(fx, msg);
    size_t len = strlen(msg), header_end, body_off;
    struct dkim_body *body = dkim_body_new(DKIM_CANON_RELAXED);
    struct dkim_body_hash bh;
    struct buf out, results;
    char err[256];
    char *sealed = NULL;

    if (chain_out)
        *chain_out = chain;
    hdr_split(msg, len, &header_end, &body_off);
    dkim_body_update(body, msg + body_off, len - body_off);
    assert_int_equal(dkim_body_final(body, &bh), 0);
    dkim_body_free(body);
    buf_init(&out, LIMIT_TEST_MESSAGE);
    buf_init(&results, LIMIT_ARC_RESULTS);
    assert_int_equal(arc_results_text(NULL, 0, NULL, &chain, &results), 0);
    if (arc_seal(sealer, msg, header_end, &bh, &chain, "coex.relay.example", results.data, NOW,
                 &out, err, sizeof(err)) == 0) {
        assert_int_equal(buf_append(&out, msg, len), 0);
        sealed = strdup(out.data);
    } else {
        assert_int_equal(out.len, 0);
    }
    buf_cleanup(&out);
    buf_cleanup(&results);
    return sealed;
}

/* replace - a copy of msg with the first `from` replaced by `to` (must be there) */
static char *replace(const char *msg, const char *from, const char *to)
{
    const char *at = strstr(msg, from);
    assert_non_null(at);
    size_t head = (size_t)(at - msg), from_len = strlen(from), to_len = strlen(to);
    char *out = malloc(strlen(msg) - from_len + to_len + 1);
    memcpy(out, msg, head);
    memcpy(out + head, to, to_len);
    memcpy(out + head + to_len, at + from_len, strlen(at + from_len) + 1);
    return out;
}

/* field_span - the whole field (with its folded lines) starting at `start` */
static size_t field_len(const char *start)
{
    const char *p = start;
    for (;;) {
        const char *crlf = strstr(p, "\r\n");
        assert_non_null(crlf);
        p = crlf + 2;
        if (*p != ' ' && *p != '\t')
            return (size_t)(p - start);
    }
}

/* cut - msg without the field that begins with `prefix` */
static char *cut(const char *msg, const char *prefix)
{
    const char *at = strstr(msg, prefix);
    assert_non_null(at);
    size_t len = field_len(at);
    char *field = strndup(at, len);
    char *out = replace(msg, field, "");
    free(field);
    return out;
}

/* duplicate - msg with the field that begins with `prefix` given twice */
static char *duplicate(const char *msg, const char *prefix)
{
    const char *at = strstr(msg, prefix);
    assert_non_null(at);
    size_t len = field_len(at);
    char *field = strndup(at, len), *twice = malloc(2 * len + 1);
    memcpy(twice, field, len);
    memcpy(twice + len, field, len + 1);
    char *out = replace(msg, field, twice);
    free(field);
    free(twice);
    return out;
}

/* flip_after - a copy of msg with the character after `marker` changed (base64 stays base64) */
static char *flip_after(const char *msg, const char *marker)
{
    const char *at = strstr(msg, marker);
    assert_non_null(at);
    char *out = strdup(msg);
    size_t i = (size_t)(at - msg) + strlen(marker);
    out[i] = out[i] == 'A' ? 'B' : 'A';
    return out;
}

/* two_sets - base_msg sealed by fw (i=1) then relay (i=2); caller frees */
static char *two_sets(const struct fixture *fx)
{
    char *one = seal_with(fx, fx->fw_sealer, base_msg, NULL);
    assert_non_null(one);
    char *two = seal_with(fx, fx->relay_sealer, one, NULL);
    assert_non_null(two);
    free(one);
    return two;
}

/* ---------------------------------------------------------------- round trips */

static void test_no_arc_is_none(void **state)
{
    struct arc_chain c = validate(*state, base_msg);
    assert_int_equal(c.cv, ARC_CV_NONE);
    assert_int_equal(c.instance, 0);
    assert_true(c.sealable);
    assert_string_equal(arc_cv_name(c.cv), "none");
}

static void test_seal_validate_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct arc_chain before;
    char *one = seal_with(fx, fx->relay_sealer, base_msg, &before);
    assert_non_null(one);
    assert_int_equal(before.cv, ARC_CV_NONE);
    /* AS on top, then AMS, then AAR (RFC 8617 §5.1 step 3, each on top of the last) */
    const char *top = "ARC-Seal: i=1; a=rsa-sha256; t=1796378400; cv=none; d=relay.example;";
    assert_true(strncmp(one, top, strlen(top)) == 0);
    const char *ams =
        strstr(one, "\r\nARC-Message-Signature: i=1; a=rsa-sha256; c=relaxed/relaxed;");
    const char *aar =
        strstr(one, "\r\nARC-Authentication-Results: i=1; coex.relay.example; dkim=none;");
    assert_non_null(ams);
    assert_non_null(aar);
    assert_true(ams < aar);
    /* the AMS covers the DKIM-Signature present, and from once more than it occurs */
    assert_non_null(strstr(one, "h=from:from:subject:date:message-id:to:dkim-signature;"));
    struct arc_chain c = validate(fx, one);
    assert_int_equal(c.cv, ARC_CV_PASS);
    assert_int_equal(c.instance, 1);
    assert_true(c.sealable);
    assert_string_equal(c.last_domain, "relay.example");
    assert_string_equal(c.reason, "");
    free(one);
}

static void test_instance_increments(void **state)
{
    struct fixture *fx = *state;
    char *two = two_sets(fx);
    struct arc_chain c = validate(fx, two);
    assert_int_equal(c.cv, ARC_CV_PASS);
    assert_int_equal(c.instance, 2);
    assert_non_null(strstr(two, "ARC-Seal: i=2; a=rsa-sha256; t=1796378400; cv=pass;"));
    assert_non_null(
        strstr(two, "ARC-Authentication-Results: i=2; coex.relay.example; dkim=none; arc=pass"));
    assert_non_null(strstr(two, "as.d=fw.example)"));
    char *three = seal_with(fx, fx->fw_sealer, two, NULL);
    c = validate(fx, three);
    assert_int_equal(c.cv, ARC_CV_PASS);
    assert_int_equal(c.instance, 3);
    assert_string_equal(c.last_domain, "fw.example");
    free(two);
    free(three);
}

/* fifty sets pass; the 51st is refused (RFC 8617 §4.2.1, §5.1) */
static void test_fifty_then_not_sealable(void **state)
{
    struct fixture *fx = *state;
    char *msg = strdup(base_msg);
    for (int i = 1; i <= LIMIT_ARC_SETS; i++) {
        char *next = seal_with(fx, i % 2 ? fx->fw_sealer : fx->relay_sealer, msg, NULL);
        assert_non_null(next);
        free(msg);
        msg = next;
    }
    struct arc_chain c = validate(fx, msg);
    assert_int_equal(c.cv, ARC_CV_PASS);
    assert_int_equal(c.instance, LIMIT_ARC_SETS);
    assert_false(c.sealable);
    assert_null(seal_with(fx, fx->relay_sealer, msg, NULL));
    free(msg);
}

/* ---------------------------------------------------------------- structure (§5.2 step 1, 3) */

struct structure_case {
    const char *name;
    char *(*mutate)(const char *msg);
    const char *reason; /* a part of the reason */
    int sealable;
};

static char *drop_ams1(const char *m)
{
    return cut(m, "ARC-Message-Signature: i=1;");
}
static char *drop_aar2(const char *m)
{
    return cut(m, "ARC-Authentication-Results: i=2;");
}
static char *dup_as2(const char *m)
{
    return duplicate(m, "ARC-Seal: i=2;");
}
static char *dup_aar1(const char *m)
{
    return duplicate(m, "ARC-Authentication-Results: i=1;");
}
static char *gap(const char *m)
{
    char *a = replace(m, "ARC-Seal: i=2;", "ARC-Seal: i=3;");
    char *b = replace(a, "ARC-Message-Signature: i=2;", "ARC-Message-Signature: i=3;");
    char *c = replace(b, "ARC-Authentication-Results: i=2;", "ARC-Authentication-Results: i=3;");
    free(a);
    free(b);
    return c;
}
static char *i_zero(const char *m)
{
    return replace(m, "ARC-Seal: i=1;", "ARC-Seal: i=0;");
}
static char *i_51(const char *m)
{
    return replace(m, "ARC-Seal: i=2;", "ARC-Seal: i=51;");
}
static char *i_bad(const char *m)
{
    return replace(m, "ARC-Message-Signature: i=1;", "ARC-Message-Signature: i=one;");
}
static char *aar_no_i(const char *m)
{
    return replace(m, "ARC-Authentication-Results: i=1;", "ARC-Authentication-Results: x=1;");
}
static char *cv_first_pass(const char *m)
{
    return replace(m, "cv=none;", "cv=pass;");
}
static char *cv_second_none(const char *m)
{
    return replace(m, "cv=pass;", "cv=none;");
}
static char *cv_newest_fail(const char *m)
{
    return replace(m, "cv=pass;", "cv=fail;");
}
static char *cv_unknown(const char *m)
{
    return replace(m, "cv=pass;", "cv=maybe;");
}

static const struct structure_case structure_cases[] = {
    {"missing AMS", drop_ams1, "no ARC-Message-Signature with i=1", 1},
    {"missing AAR of the newest set", drop_aar2, "no ARC-Authentication-Results with i=2", 1},
    {"two AS with i=2", dup_as2, "two ARC-Seal fields with i=2", 1},
    {"two AAR with i=1", dup_aar1, "two ARC-Authentication-Results fields with i=1", 1},
    {"gap", gap, "with i=2 (a missing field or a gap)", 1},
    {"i=0", i_zero, "ARC-Seal with i=0, outside 1..50", 1},
    {"i=51", i_51, "more than 50 ARC sets (i=51)", 0},
    {"i unreadable", i_bad, "ARC-Message-Signature field without a readable i=", 1},
    {"AAR without i=", aar_no_i, "ARC-Authentication-Results field without a readable i=", 1},
    {"cv=pass at i=1", cv_first_pass, "ARC-Seal i=1: cv= must be none", 1},
    {"cv=none at i=2", cv_second_none, "ARC-Seal i=2: cv= must be pass", 1},
    {"newest cv=fail", cv_newest_fail, "the newest ARC-Seal (i=2) says cv=fail", 0},
    {"unknown cv", cv_unknown, "ARC-Seal i=2: cv= must be pass", 1},
};

static void test_structure(void **state)
{
    struct fixture *fx = *state;
    char *two = two_sets(fx);
    for (size_t i = 0; i < ARRAY_LEN(structure_cases); i++) {
        const struct structure_case *sc = &structure_cases[i];
        print_message("case: %s\n", sc->name);
        char *bad = sc->mutate(two);
        struct arc_chain c = validate(fx, bad);
        assert_int_equal(c.cv, ARC_CV_FAIL);
        if (strstr(c.reason, sc->reason) == NULL)
            fail_msg("%s: reason \"%s\" lacks \"%s\"", sc->name, c.reason, sc->reason);
        assert_int_equal(c.sealable, sc->sealable);
        char *sealed = seal_with(fx, fx->relay_sealer, bad, NULL);
        if (sc->sealable) { /* sealed cv=fail, and then the chain ends (§5.1 step 1) */
            assert_non_null(sealed);
            assert_non_null(strstr(sealed, "cv=fail;"));
            struct arc_chain after = validate(fx, sealed);
            assert_int_equal(after.cv, ARC_CV_FAIL);
            assert_false(after.sealable);
            assert_non_null(strstr(after.reason, "says cv=fail"));
        } else {
            assert_null(sealed);
        }
        free(sealed);
        free(bad);
    }
    free(two);
}

/* ---------------------------------------------------------------- tampering (§5.2 steps 4, 8) */

struct tamper_case {
    const char *name, *from, *to, *reason;
};

static const struct tamper_case tamper_cases[] = {
    {"signed header", "Subject: Quarterly numbers", "Subject: Quarterly numbers!",
     "ARC-Message-Signature i=2: signature does not verify"},
    {"body", "the numbers are attached.", "the numbers are attached!",
     "ARC-Message-Signature i=2: body hash does not match"},
    {"From added", "To: Bob", "From: mallory@evil.example\r\nTo: Bob",
     "ARC-Message-Signature i=2: signature does not verify"},
    {"DKIM-Signature", "b=AAAAzzzz", "b=AAAAzzzy",
     "ARC-Message-Signature i=2: signature does not verify"},
    {"old AAR", "i=1; coex.relay.example; dkim=none; arc=none",
     "i=1; coex.relay.example; dkim=pass; arc=none", "ARC-Seal i=2: signature does not verify"},
    {"old AS", "cv=none; d=fw.example; s=fw1; b=", NULL, "ARC-Seal i=2: signature does not verify"},
    {"newest AS d= and s=", "cv=pass; d=relay.example; s=arc1;", "cv=pass; d=fw.example; s=fw1;",
     "ARC-Seal i=2: signature does not verify"},
};

static void test_tampering(void **state)
{
    struct fixture *fx = *state;
    char *two = two_sets(fx);
    for (size_t i = 0; i < ARRAY_LEN(tamper_cases); i++) {
        const struct tamper_case *tc = &tamper_cases[i];
        print_message("case: %s\n", tc->name);
        char *bad = tc->to ? replace(two, tc->from, tc->to) : flip_after(two, tc->from);
        struct arc_chain c = validate(fx, bad);
        assert_int_equal(c.cv, ARC_CV_FAIL);
        if (strstr(c.reason, tc->reason) == NULL)
            fail_msg("%s: reason \"%s\" lacks \"%s\"", tc->name, c.reason, tc->reason);
        assert_true(c.sealable);
        free(bad);
    }
    /* an unsigned field, and re-folding, change nothing */
    char *extra = replace(two, "To: Bob", "X-Other: 1\r\nTo: Bob");
    assert_int_equal(validate(fx, extra).cv, ARC_CV_PASS);
    char *refold = replace(two, "Subject: Quarterly numbers", "Subject:   Quarterly\r\n\tnumbers");
    assert_int_equal(validate(fx, refold).cv, ARC_CV_PASS);
    free(extra);
    free(refold);
    free(two);
}

static void test_missing_key_and_expiry(void **state)
{
    struct fixture *fx = *state;
    char *two = two_sets(fx);
    struct arc_chain c;
    assert_int_equal(arc_chain_validate(two, strlen(two), fx->pubs, 1, 0, &c), 0);
    assert_int_equal(c.cv, ARC_CV_FAIL);
    assert_string_equal(c.reason, "no key given for fw1._domainkey.fw.example (ARC-Seal i=1)");
    assert_int_equal(arc_chain_validate(two, strlen(two), fx->pubs + 1, 1, 0, &c), 0);
    assert_non_null(strstr(c.reason, "no key given for arc1._domainkey.relay.example"));
    assert_int_equal(arc_chain_validate("", 0, fx->pubs, 2, 0, &c), -1);
    assert_int_equal(c.cv, ARC_CV_FAIL);
    assert_false(c.sealable);
    free(two);
}

/* ---------------------------------------------------------------- refusals */

static void test_sealer_refusals(void **state)
{
    struct fixture *fx = *state;
    char err[256];
    struct dkim_key *ed = new_key("ED25519", "relay.example", "ed", NULL);
    assert_null(arc_sealer_new(ed, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "rsa-sha256"));
    dkim_key_free(ed);
    const char *with_seal[] = {"from", "ARC-Seal"};
    struct dkim_opts opts = {.sign_headers = with_seal, .sign_headers_count = 2};
    assert_null(arc_sealer_new(fx->relay, &opts, err, sizeof(err)));
    const char *names[] = {"From", "Subject", "X-Custom"};
    opts.sign_headers = names;
    opts.sign_headers_count = 3;
    struct arc_sealer *custom = arc_sealer_new(fx->relay, &opts, err, sizeof(err));
    assert_non_null(custom);
    char *one = seal_with(fx, custom, base_msg, NULL);
    assert_non_null(strstr(one, " h=from:subject:x-custom;"));
    assert_int_equal(validate(fx, one).cv, ARC_CV_PASS);
    free(one);
    arc_sealer_free(custom);
    arc_sealer_free(NULL);
}

static void test_seal_refusals(void **state)
{
    struct fixture *fx = *state;
    struct arc_chain none = {.cv = ARC_CV_NONE, .sealable = 1};
    struct dkim_body_hash bh = {.canon = DKIM_CANON_RELAXED};
    struct buf out;
    char err[256];
    size_t hlen = strstr(base_msg, "\r\n\r\n") + 2 - base_msg;
    buf_init(&out, LIMIT_TEST_MESSAGE);
    assert_int_equal(arc_seal(fx->relay_sealer, base_msg, hlen, &bh, &none, "coex.example",
                              "dkim=none", NOW, &out, err, sizeof(err)),
                     0);
    const struct {
        const char *name, *authserv_id, *results;
        enum dkim_canon canon;
        struct arc_chain chain;
    } cases[] = {
        {"authserv-id with ;", "a;b", "", DKIM_CANON_RELAXED, {.sealable = 1}},
        {"authserv-id with space", "a b", "", DKIM_CANON_RELAXED, {.sealable = 1}},
        {"empty authserv-id", "", "", DKIM_CANON_RELAXED, {.sealable = 1}},
        {"results with CRLF",
         "coex.example",
         "dkim=pass\r\nX-Evil: 1",
         DKIM_CANON_RELAXED,
         {.sealable = 1}},
        {"simple body hash", "coex.example", "", DKIM_CANON_SIMPLE, {.sealable = 1}},
        {"not sealable", "coex.example", "", DKIM_CANON_RELAXED, {.sealable = 0}},
        {"cv=pass without sets",
         "coex.example",
         "",
         DKIM_CANON_RELAXED,
         {.cv = ARC_CV_PASS, .sealable = 1}},
        {"a chain the header does not hold",
         "coex.example",
         "",
         DKIM_CANON_RELAXED,
         {.cv = ARC_CV_PASS, .instance = 2, .sealable = 1}},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        print_message("case: %s\n", cases[i].name);
        size_t before = out.len;
        bh.canon = cases[i].canon;
        assert_int_equal(arc_seal(fx->relay_sealer, base_msg, hlen, &bh, &cases[i].chain,
                                  cases[i].authserv_id, cases[i].results, NOW, &out, err,
                                  sizeof(err)),
                         -1);
        assert_int_equal(out.len, before);
    }
    buf_cleanup(&out);
}

/* a long results text is folded, and the AAR is the text given */
static void test_aar_folding(void **state)
{
    struct fixture *fx = *state;
    struct arc_chain none = {.cv = ARC_CV_NONE, .sealable = 1};
    struct dkim_body_hash bh = {.canon = DKIM_CANON_RELAXED};
    struct buf out;
    char err[256], results[600];
    size_t hlen = strstr(base_msg, "\r\n\r\n") + 2 - base_msg, n = 0;
    for (int i = 0; i < 8; i++)
        n += (size_t)snprintf(results + n, sizeof(results) - n,
                              "%sdkim=pass header.d=d%d.example header.s=selector%d", i ? "; " : "",
                              i, i);
    buf_init(&out, LIMIT_TEST_MESSAGE);
    assert_int_equal(arc_seal(fx->relay_sealer, base_msg, hlen, &bh, &none, "coex.example", results,
                              NOW, &out, err, sizeof(err)),
                     0);
    for (const char *line = out.data; *line;) {
        const char *end = strstr(line, "\r\n");
        assert_non_null(end);
        assert_true(end - line <= 78);
        line = end + 2;
    }
    const char *aar = strstr(out.data, "ARC-Authentication-Results:");
    assert_non_null(aar);
    struct buf unfolded;
    buf_init(&unfolded, LIMIT_TEST_MESSAGE);
    for (const char *p = aar; *p; p++) {
        if (p[0] == '\r' && p[1] == '\n' && p[2] == ' ') {
            p += 1; /* the fold: CRLF SP becomes SP */
            continue;
        }
        assert_int_equal(buf_append(&unfolded, p, 1), 0);
    }
    char want[800];
    snprintf(want, sizeof(want), "ARC-Authentication-Results: i=1; coex.example; %s\r\n", results);
    assert_string_equal(unfolded.data, want);
    buf_cleanup(&unfolded);
    buf_cleanup(&out);
}

/* ---------------------------------------------------------------- results text (RFC 8601) */

static void test_results_text(void **state)
{
    (void)state;
    struct dkim_result r[4];
    memset(r, 0, sizeof(r));
    r[0].status = DKIM_PASS;
    snprintf(r[0].domain, sizeof(r[0].domain), "a.example");
    snprintf(r[0].selector, sizeof(r[0].selector), "s1");
    snprintf(r[0].header_b, sizeof(r[0].header_b), "AbCdEf12");
    snprintf(r[0].reason, sizeof(r[0].reason), "2048-bit key");
    r[1].status = DKIM_FAIL;
    snprintf(r[1].domain, sizeof(r[1].domain), "b.example");
    snprintf(r[1].selector, sizeof(r[1].selector), "s2");
    snprintf(r[1].reason, sizeof(r[1].reason), "body hash (really) does not match \\o/");
    r[2].status = DKIM_NEUTRAL;
    snprintf(r[2].domain, sizeof(r[2].domain), "c.example");
    snprintf(r[2].selector, sizeof(r[2].selector), "s3");
    r[3].status = DKIM_PERMERROR;
    snprintf(r[3].domain, sizeof(r[3].domain), "evil.example; dkim=pass");
    snprintf(r[3].selector, sizeof(r[3].selector), "x y");
    snprintf(r[3].header_b, sizeof(r[3].header_b), "ab;c");
    const char *override[4] = {NULL, NULL, "temperror", NULL};
    struct arc_chain pass = {.cv = ARC_CV_PASS, .instance = 2, .last_domain = "fw.example"};
    struct arc_chain fail = {.cv = ARC_CV_FAIL, .instance = 1, .reason = "no key (for) x"};
    struct buf out;
    buf_init(&out, LIMIT_ARC_RESULTS);

    assert_int_equal(arc_results_text(r, 4, override, &pass, &out), 0);
    assert_string_equal(out.data,
                        "dkim=pass header.d=a.example header.s=s1 header.b=AbCdEf12; "
                        "dkim=fail (body hash 'really' does not match  o/) header.d=b.example "
                        "header.s=s2; dkim=temperror header.d=c.example header.s=s3; "
                        "dkim=permerror; arc=pass (i=2 as.d=fw.example)");
    buf_reset(&out);
    assert_int_equal(arc_results_text(NULL, 0, NULL, &fail, &out), 0);
    assert_string_equal(out.data, "dkim=none; arc=fail (no key 'for' x)");
    buf_reset(&out);
    struct arc_chain none = {.cv = ARC_CV_NONE};
    assert_int_equal(arc_results_text(r, 1, NULL, &none, &out), 0);
    assert_string_equal(out.data,
                        "dkim=pass header.d=a.example header.s=s1 header.b=AbCdEf12; arc=none");
    buf_reset(&out);
    assert_int_equal(arc_results_text(r, 1, NULL, NULL, &out), 0);
    assert_string_equal(out.data, "dkim=pass header.d=a.example header.s=s1 header.b=AbCdEf12");
    const char *bad[1] = {"pass; x=y"};
    assert_int_equal(arc_results_text(r, 1, bad, NULL, &out), -1);
    assert_string_equal(out.data, "dkim=pass header.d=a.example header.s=s1 header.b=AbCdEf12");
    buf_cleanup(&out);
}

/* all_ascii - no byte of s[0..len) is 0x80 or above */
static int all_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return 0;
    return 1;
}

/* 8-bit bytes from a= (through dkim_verify), a DNS reason or the caller: '?' in the AAR */
static void test_results_non_ascii(void **state)
{
    struct fixture *fx = *state;
    static const char msg[] = "DKIM-Signature: v=1; a=rsa-sha256\xc3\xa9; d=source.example; s=s1;"
                              " h=from; bh=x; b=y\r\n"
                              "From: a@source.example\r\n"
                              "\r\n"
                              "body\r\n";
    struct dkim_result r[2];
    size_t count = 0;
    memset(r, 0, sizeof(r));
    assert_int_equal(dkim_verify(msg, strlen(msg), NULL, 0, 0, r, 2, &count), 0);
    assert_int_equal(count, 1);
    assert_non_null(strstr(r[0].reason, "sha256\xc3\xa9")); /* the reason quotes a= as it is */
    snprintf(r[1].reason, sizeof(r[1].reason), "key lookup failed: k=\xff\x80 (from DNS)");
    r[1].status = DKIM_PERMERROR;
    struct arc_chain fail = {.cv = ARC_CV_FAIL,
                             .reason = "ARC-Seal i=1: unsupported a=\xe2\x82\xac"};
    struct buf out;
    buf_init(&out, LIMIT_ARC_RESULTS);
    assert_int_equal(arc_results_text(r, 2, NULL, &fail, &out), 0);
    assert_true(all_ascii(out.data, out.len));
    assert_string_equal(out.data,
                        "dkim=permerror (unsupported a=rsa-sha256?\?) header.d=source.example "
                        "header.s=s1 header.b=y; dkim=permerror (key lookup failed: k=?\? "
                        "'from DNS'); "
                        "arc=fail (ARC-Seal i=1: unsupported a=?\?\?)");

    /* and arc_seal keeps its AAR ASCII whatever results text it is given */
    struct arc_chain none = {.cv = ARC_CV_NONE, .sealable = 1};
    struct dkim_body_hash bh = {.canon = DKIM_CANON_RELAXED};
    char err[256];
    size_t hlen = strstr(base_msg, "\r\n\r\n") + 2 - base_msg;
    buf_reset(&out);
    struct buf sealed;
    buf_init(&sealed, LIMIT_TEST_MESSAGE);
    assert_int_equal(arc_seal(fx->relay_sealer, base_msg, hlen, &bh, &none, "coex.example",
                              "dkim=pass (caf\xc3\xa9 \xff) header.d=a.example", NOW, &sealed, err,
                              sizeof(err)),
                     0);
    assert_true(all_ascii(sealed.data, sealed.len));
    const char *aar = strstr(sealed.data, "ARC-Authentication-Results: i=1; coex.example;");
    assert_non_null(aar);
    assert_non_null(strstr(aar, "dkim=pass (caf?\? ?)"));
    buf_cleanup(&sealed);
    buf_cleanup(&out);
}

/* one message, DKIM then ARC with one memo: the relaxed body is hashed once for both */
static void test_dkim_and_arc_share_body_hash(void **state)
{
    struct fixture *fx = *state;
    const char *plain = strstr(base_msg, "From:"); /* without the made-up DKIM-Signature */
    size_t len = strlen(plain), header_end, body_off;
    struct dkim_body_hash bh;
    struct dkim_body *body = dkim_body_new(DKIM_CANON_RELAXED);
    struct buf signed_msg;
    char err[256];
    hdr_split(plain, len, &header_end, &body_off);
    dkim_body_update(body, plain + body_off, len - body_off);
    assert_int_equal(dkim_body_final(body, &bh), 0);
    dkim_body_free(body);
    struct dkim_signer *signer = dkim_signer_new(&fx->fw, 1, NULL, err, sizeof(err)); /* relaxed */
    assert_non_null(signer);
    buf_init(&signed_msg, LIMIT_TEST_MESSAGE);
    assert_int_equal(
        dkim_sign_header(signer, plain, header_end, &bh, NOW, &signed_msg, err, sizeof(err)), 0);
    assert_int_equal(buf_append(&signed_msg, plain, len), 0);
    dkim_signer_free(signer);
    char *one = seal_with(fx, fx->relay_sealer, signed_msg.data, NULL);
    assert_non_null(one);
    len = strlen(one);
    hdr_split(one, len, &header_end, &body_off);

    struct dkim_body_memo memo;
    struct dkim_result r[2];
    struct arc_chain chain;
    size_t count = 0;
    dkim_body_memo_init(&memo, one + body_off, len - body_off);
    assert_int_equal(dkim_verify_memo(one, len, fx->pubs, 2, NOW, &memo, r, 2, &count), 0);
    assert_int_equal(count, 1);
    assert_int_equal(r[0].status, DKIM_PASS);
    assert_int_equal(memo.computed, 1);
    assert_int_equal(arc_chain_validate_memo(one, len, fx->pubs, 2, NOW, &memo, &chain), 0);
    assert_int_equal(chain.cv, ARC_CV_PASS);
    assert_int_equal(memo.computed, 1); /* the AMS took the hash DKIM made */
    /* on its own, ARC hashes the body once */
    dkim_body_memo_init(&memo, one + body_off, len - body_off);
    assert_int_equal(arc_chain_validate_memo(one, len, fx->pubs, 2, NOW, &memo, &chain), 0);
    assert_int_equal(chain.cv, ARC_CV_PASS);
    assert_int_equal(memo.computed, 1);
    free(one);
    buf_cleanup(&signed_msg);
}

/* dkim_verify fills header.b from b= (RFC 6008) */
static void test_dkim_header_b(void **state)
{
    (void)state;
    struct dkim_result r[2];
    size_t count = 0;
    assert_int_equal(dkim_verify(base_msg, strlen(base_msg), NULL, 0, 0, r, 2, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(r[0].header_b, "AAAAzzzz");
    assert_int_equal(r[0].status, DKIM_NEUTRAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_arc_is_none),
        cmocka_unit_test(test_seal_validate_round_trip),
        cmocka_unit_test(test_instance_increments),
        cmocka_unit_test(test_fifty_then_not_sealable),
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_tampering),
        cmocka_unit_test(test_missing_key_and_expiry),
        cmocka_unit_test(test_sealer_refusals),
        cmocka_unit_test(test_seal_refusals),
        cmocka_unit_test(test_aar_folding),
        cmocka_unit_test(test_results_text),
        cmocka_unit_test(test_dkim_header_b),
        cmocka_unit_test(test_results_non_ascii),
        cmocka_unit_test(test_dkim_and_arc_share_body_hash),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
