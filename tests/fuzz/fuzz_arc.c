/*
 * fuzz_arc - libFuzzer target for ARC (src/mail/arc_*.c, RFC 8617): the
 * chain validation of arbitrary input, and seal-then-validate of it.
 *
 * Key: one fixed RSA-2048 test key (relay.example, selector arc1, made for
 * this target only), so that the seeds in tests/fuzz/corpus/arc carrying
 * its seals pass and a reproducer stays valid.
 *
 * Checks, beyond ASan/UBSan/LSan:
 * - arc_chain_validate: -1 exactly when hdr_split finds no header; the
 *   verdict is consistent (none: instance 0 and sealable; pass: instance
 *   1..50 and an empty reason; sealable: instance below 50); strings are
 *   NUL-terminated; last_domain empty or a domain name;
 * - arc_results_text over the input's dkim_verify results and the chain:
 *   one line without CR, LF or other controls;
 * - when the chain is sealable: seal it (the results above as the AAR), put
 *   the set on top, validate again: pass at instance+1 when the chain was
 *   none or pass, fail with "says cv=fail" and not sealable when it was
 *   fail. Sealing may only refuse for the documented reasons (a
 *   continuation line first, too many fields to sign, a field past its
 *   limit). Then one body byte changed (a non-white-space, non-CR/LF byte
 *   to another such): the new chain fails.
 *
 * Messages handed to the library are copied into buffers of their exact
 * size so that ASan sees any read past the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arc.h"
#include "buf.h"
#include "dkim.h"
#include "hdr.h"

#define FUZZ_MAX_INPUT (16 * 1024) /* RSA signing keeps a run to a few milliseconds */
#define FUZZ_MAX_RESULTS 8
#define FUZZ_NOW 1796378400LL
#define FUZZ_DOMAIN "relay.example"
#define FUZZ_SELECTOR "arc1"
#define FUZZ_AUTHSERV "coex.relay.example"

static const char fuzz_key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCtdVqI0p1nfu0d\n"
    "+ERnjE6LE9zRthgf8HlfDr2s7tWV5JGiK9UNZ9VZzEyuUiuxS30sbGAAoqO7LHb6\n"
    "Bt2hsbHhal1bxsIid98XfTHUAHLv/5DUicoo29b/SuCITqQnpnlyiy+6TMgzBfYw\n"
    "dIdsCSHadfnXBi4V8G1Ev5RVbnVAEiu0ifM6qdS+f6fg7Gp0QGKIaaSvm1EPgGQd\n"
    "KoMEYZ5U3SBHXpUhz4+wiEfcRJrio/pWEIzVZXno28s0a+bNP/J/0uQCXhln1k8E\n"
    "Ds5B3MmQoHHBrAnXDsx50N5QCS+YFku5BFkvx8OdDfHPce1G9HAdqEdeXDF9XL3T\n"
    "Tcs8WGFfAgMBAAECggEAAr9AIcpsQPTJHOFpmHmamiX9xyqaZo1MtSCIuVbNqy6D\n"
    "2CQexu1rNGzIIrr3sbqn5gf8L8taxqQtlSkdH7Mupq4kRDGsErGR5LuQPzLaAD+x\n"
    "BmoyXu3e/9IC8n6Ee5w0UXZFkqE3zzgFuk4SSEmK4D7S3RA2fh4TvlCxhLiBgub4\n"
    "WZqBAdRrgrwbI/sbq97OyS/54nivoIiI8sWSlgAj10+HDRJJBJBhNjAMbvkRZ9+h\n"
    "9bFnGVjqYm7VloOT2TCw3aouxrbiyhtjyXSeNclS2f2QQfG/oXh1+1V3uNxCYi+y\n"
    "eog7Thdsn+ZcSPnPMh05s7HyUJKXk+qUgWXxhN42vQKBgQDjcE1LSxvBTnHzrChG\n"
    "PHtbhzNFILyCndvdQ3pWAxgJmwpG838LF9jIbOfZ1GFurTHn0+JcZI37XWuPlJrf\n"
    "2HzD7loJONFZIeSY4xKiKTJS5xSsOv2qfNlAZQBisLyAzLq3TwVsWSDE6EAp33DJ\n"
    "c9z+p6E3QDakRJ3VLFduy/nKlQKBgQDDPbG6LYDGZf0bbsGvKJwywIWGhBgK+d8v\n"
    "1u1nv7d7ELke+0B9BmZrwx0lA2V1ZrpCFRkMzVtfdSF6kviira3+nAPUheyBS2YG\n"
    "H6kSAlpVHf1FVKcJCPz3QhuvJWz54wMHzUIeFZFUgtTWUUnNvedLVc2mpBdjNWGc\n"
    "H8pNvv4zIwKBgF0jYiPRUD5rN3MILz4ECqhCx5Ypf8kliCImPfT3M2LLoPvJP191\n"
    "losNPi0QMg420tcTCAG6FAK6ERAtVPcSGpXKCAj6wZB0tr59TuYlZLxacTbOuY6V\n"
    "rgoW0n+XzLoaHORwcdIa9bZtPcln/TIiRn/qebS8kSPYDaJ8lBmFYne5AoGAELZ1\n"
    "QkSm41TTp8eBWOcXB9knFO61yCq/ii7Rv7HPmP9DeX10db9YgR0An6x8wOH8S6/W\n"
    "pxvlGHTEWuO92N8ZJ9RfF5AnQKIdp6SKKnp9FRAuIAMxETrtvJSyHfoMLA/csIxH\n"
    "fp/GAv/4DCiFMtFwvSgpJHyja+Cj7GNkQ+d3hxUCgYEArsXQNryueaP518MSYiSU\n"
    "ma3/f7XAZ5tZqbwES5VsS5CgTZkzBjnKjimDBHvlDDk+J8YVZZ5G2dlsnNLVNZh7\n"
    "Pb6BpjQGiN97OEqV44qz6dJj4xOaPIcb1pNsb0hZ2TaqLuKLG/bDnV+C5DQm0S3N\n"
    "L8MaVh12UywamEFRFdQkvm0=\n"
    "-----END PRIVATE KEY-----\n";

static struct dkim_key *fuzz_key;
static struct dkim_pubkey *fuzz_pub;
static struct arc_sealer *fuzz_sealer;

/* fuzz_init - the key, its public half and a sealer, once */
static void fuzz_init(void)
{
    char err[256];
    fuzz_key = dkim_key_new(fuzz_key_pem, strlen(fuzz_key_pem), FUZZ_DOMAIN, FUZZ_SELECTOR, err,
                            sizeof(err));
    fuzz_pub = dkim_pubkey_new(FUZZ_DOMAIN, FUZZ_SELECTOR, fuzz_key_pem, strlen(fuzz_key_pem), err,
                               sizeof(err));
    if (fuzz_key == NULL || fuzz_pub == NULL)
        abort();
    fuzz_sealer = arc_sealer_new(fuzz_key, NULL, err, sizeof(err));
    if (fuzz_sealer == NULL)
        abort();
}

/* fuzz_cstr_ok - NUL within size */
static void fuzz_cstr_ok(const char *s, size_t size)
{
    if (memchr(s, '\0', size) == NULL)
        abort();
}

/* fuzz_check_chain - the invariants of a verdict */
static void fuzz_check_chain(const struct arc_chain *c)
{
    fuzz_cstr_ok(c->reason, sizeof(c->reason));
    fuzz_cstr_ok(c->last_domain, sizeof(c->last_domain));
    if (c->cv != ARC_CV_NONE && c->cv != ARC_CV_PASS && c->cv != ARC_CV_FAIL)
        abort();
    if (c->instance < 0)
        abort();
    if (c->cv == ARC_CV_NONE && (c->instance != 0 || !c->sealable))
        abort();
    if (c->cv == ARC_CV_PASS &&
        (c->instance < 1 || c->instance > LIMIT_ARC_SETS || c->reason[0] != '\0'))
        abort();
    if (c->sealable && c->instance >= LIMIT_ARC_SETS)
        abort();
    for (const char *p = c->last_domain; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_'))
            abort();
}

/* fuzz_validate - arc_chain_validate on an exact-size copy */
static int fuzz_validate(const char *msg, size_t len, struct arc_chain *c)
{
    char *copy = malloc(len ? len : 1);
    memcpy(copy, msg, len);
    int rc = arc_chain_validate(copy, len, &fuzz_pub, 1, 0, c);
    free(copy);
    fuzz_check_chain(c);
    return rc;
}

/* fuzz_results - the AAR text from the input's DKIM results and the chain */
static void fuzz_results(const char *msg, size_t len, const struct arc_chain *chain,
                         struct buf *out)
{
    struct dkim_result r[FUZZ_MAX_RESULTS];
    size_t count = 0;
    if (dkim_verify(msg, len, &fuzz_pub, 1, 0, r, FUZZ_MAX_RESULTS, &count) < 0)
        count = 0;
    if (arc_results_text(r, count, NULL, chain, out) < 0)
        abort(); /* 8 results fit LIMIT_ARC_RESULTS */
    for (size_t i = 0; i < out->len; i++) {
        unsigned char c = (unsigned char)out->data[i];
        if (c < 0x20 || c == 0x7f)
            abort();
    }
}

/* fuzz_refusal_ok - arc_seal may refuse for these only */
static int fuzz_refusal_ok(const char *err)
{
    return strstr(err, "continuation line") || strstr(err, "header fields to sign") ||
           strstr(err, "longer than its limit") || strstr(err, "no room");
}

/* fuzz_body_flip - change one plain body byte (not WSP, CR, LF) to another; 0 when none */
static int fuzz_body_flip(char *msg, size_t len, size_t body_off, uint8_t pick)
{
    size_t candidates = 0;
    for (size_t i = body_off; i < len; i++)
        candidates += msg[i] != ' ' && msg[i] != '\t' && msg[i] != '\r' && msg[i] != '\n';
    if (candidates == 0)
        return 0;
    size_t want = pick % candidates;
    for (size_t i = body_off; i < len; i++) {
        if (msg[i] == ' ' || msg[i] == '\t' || msg[i] == '\r' || msg[i] == '\n')
            continue;
        if (want-- == 0) {
            msg[i] = msg[i] == 'x' ? 'y' : 'x';
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    struct arc_chain chain, after;
    size_t header_end, body_off;
    struct buf results, set, sealed;
    char err[256];

    if (fuzz_key == NULL)
        fuzz_init();
    if (size > FUZZ_MAX_INPUT)
        return 0;
    hdr_split(msg, size, &header_end, &body_off);
    int rc = fuzz_validate(msg, size, &chain);
    if ((rc < 0) != (header_end == 0))
        abort();
    if (rc < 0)
        return 0;

    buf_init(&results, LIMIT_ARC_RESULTS);
    buf_init(&set, 3 * LIMIT_ARC_FIELD);
    buf_init(&sealed, 4 * LIMIT_ARC_FIELD + FUZZ_MAX_INPUT);
    fuzz_results(msg, size, &chain, &results);
    if (!chain.sealable)
        goto done;

    struct dkim_body *body = dkim_body_new(DKIM_CANON_RELAXED);
    struct dkim_body_hash bh;
    dkim_body_update(body, msg + body_off, size - body_off);
    if (dkim_body_final(body, &bh) < 0)
        abort();
    dkim_body_free(body);
    char *hdr = malloc(header_end);
    memcpy(hdr, msg, header_end);
    rc = arc_seal(fuzz_sealer, hdr, header_end, &bh, &chain, FUZZ_AUTHSERV,
                  results.data ? results.data : "", FUZZ_NOW, &set, err, sizeof(err));
    free(hdr);
    if (rc < 0) {
        if (!fuzz_refusal_ok(err) || set.len != 0)
            abort();
        goto done;
    }
    if (buf_append(&sealed, set.data, set.len) < 0 || buf_append(&sealed, msg, size) < 0)
        abort();
    if (fuzz_validate(sealed.data, sealed.len, &after) < 0)
        abort();
    if (after.instance != chain.instance + 1)
        abort();
    if (chain.cv == ARC_CV_FAIL) {
        if (after.cv != ARC_CV_FAIL || after.sealable ||
            strstr(after.reason, "says cv=fail") == NULL)
            abort();
        goto done;
    }
    if (after.cv != ARC_CV_PASS || strcmp(after.last_domain, FUZZ_DOMAIN) != 0)
        abort();
    /* a body byte changed after sealing: the AMS fails */
    if (fuzz_body_flip(sealed.data, sealed.len, set.len + body_off, size ? data[size - 1] : 0)) {
        if (fuzz_validate(sealed.data, sealed.len, &after) < 0 || after.cv != ARC_CV_FAIL)
            abort();
    }
done:
    buf_cleanup(&results);
    buf_cleanup(&set);
    buf_cleanup(&sealed);
    return 0;
}
