/*
 * coexctl_arc - `coexctl arc seal|verify`: ARC (RFC 8617) offline.
 *
 * Argument parsing, files and the clock; the ARC work is in src/mail/arc
 * (validation RFC 8617 §5.2, sealing §5.1). Message files may have bare LF
 * line ends: they are read as CRLF, the wire form. Keys are the files
 * `coexctl dkim keygen` writes; public keys may be PEM (public or private)
 * or the DNS record as `coexctl dkim dns` prints it.
 */
#include "coexctl_arc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "arc.h"
#include "buf.h"
#include "dkim.h"
#include "hdr.h"
#include "util.h"

#define LIMIT_ARC_MESSAGE ((size_t)64 << 20)
#define LIMIT_ARC_KEY_FILE ((size_t)64 << 10)
#define LIMIT_ARC_PUBKEYS 16      /* --pub options */
#define LIMIT_ARC_DKIM_RESULTS 16 /* DKIM-Signature fields reported in the default results */

static const char arc_usage_text[] =
    "usage: coexctl arc COMMAND ...\n"
    "  seal FILE|- --key D:S:KEYFILE --authserv-id ID [--results TEXT] [--time T]\n"
    "       [--pub D:S:PUBFILE ...]      validate the chain with the --pub keys, add a set,\n"
    "                                    print the sealed message\n"
    "  verify FILE|- --pub D:S:PUBFILE [--pub ...] [--time T]\n"
    "       prints arc=none|pass|fail and the reason; exit 0 only on pass\n"
    "  KEYFILE: a PEM private key (rsa); PUBFILE: a PEM key or the DNS record\n";

/* arc_usage - to stderr, status 2 */
static int arc_usage(void)
{
    fputs(arc_usage_text, stderr);
    return 2;
}

/* arc_read_file - a whole file ("-" is standard input); LF read as CRLF when crlf */
static int arc_read_file(const char *path, struct buf *b, int crlf)
{
    char chunk[65536];
    size_t n;
    char prev = 0;
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "coexctl: arc: %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        size_t start = 0;
        for (size_t i = 0; crlf && i < n && rc == 0; i++) {
            char before = i ? chunk[i - 1] : prev;
            if (chunk[i] == '\n' && before != '\r') {
                if (buf_append(b, chunk + start, i - start) < 0 || buf_append(b, "\r\n", 2) < 0)
                    rc = -1;
                start = i + 1;
            }
        }
        if (rc == 0 && buf_append(b, chunk + start, n - start) < 0)
            rc = -1;
        prev = chunk[n - 1];
    }
    if (rc < 0)
        fprintf(stderr, "coexctl: arc: %s: larger than %zu bytes\n", path, b->limit);
    else if (ferror(fp)) {
        fprintf(stderr, "coexctl: arc: %s: read error: %s\n", path, strerror(errno));
        rc = -1;
    }
    if (fp != stdin)
        fclose(fp);
    return rc;
}

/* arc_key_spec - split "DOMAIN:SELECTOR:FILE" in place (the file name may hold colons) */
static int arc_key_spec(char *spec, const char **domain, const char **selector, const char **file)
{
    char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) {
        fprintf(stderr, "coexctl: arc: a key is DOMAIN:SELECTOR:FILE, not %s\n", spec);
        return -1;
    }
    *c1 = *c2 = '\0';
    *domain = spec;
    *selector = c1 + 1;
    *file = c2 + 1;
    return 0;
}

/* arc_zone_text - a zone line (`dkim dns` output) becomes the record: its quoted strings joined */
static void arc_zone_text(struct buf *b)
{
    if (b->len == 0 || memchr(b->data, '"', b->len) == NULL)
        return;
    size_t w = 0;
    int inside = 0;
    for (size_t r = 0; r < b->len; r++) {
        if (b->data[r] == '"')
            inside = !inside;
        else if (inside)
            b->data[w++] = b->data[r];
    }
    b->len = w;
    b->data[w] = '\0';
}

/* the options of both commands */
struct arc_args {
    const char *path, *authserv_id, *results;
    struct dkim_key *key;
    struct dkim_pubkey *pubs[LIMIT_ARC_PUBKEYS];
    size_t npubs;
    long long now;
    int time_given;
};

/* arc_load_pub - --pub D:S:FILE */
static int arc_load_pub(struct arc_args *a, char *spec)
{
    const char *domain, *selector, *file;
    char err[256];
    struct buf text;
    int rc = -1;
    if (a->npubs == LIMIT_ARC_PUBKEYS) {
        fprintf(stderr, "coexctl: arc: at most %d --pub keys\n", LIMIT_ARC_PUBKEYS);
        return -1;
    }
    if (arc_key_spec(spec, &domain, &selector, &file) < 0)
        return -1;
    buf_init(&text, LIMIT_ARC_KEY_FILE);
    if (arc_read_file(file, &text, 0) == 0) {
        arc_zone_text(&text);
        a->pubs[a->npubs] = dkim_pubkey_new(domain, selector, text.data ? text.data : "", text.len,
                                            err, sizeof(err));
        if (a->pubs[a->npubs] == NULL)
            fprintf(stderr, "coexctl: arc: %s: %s\n", file, err);
        else
            a->npubs++, rc = 0;
    }
    OPENSSL_cleanse(text.data, text.cap); /* it may be a private key */
    buf_cleanup(&text);
    return rc;
}

/* arc_load_key - --key D:S:FILE, a private key */
static int arc_load_key(struct arc_args *a, char *spec)
{
    const char *domain, *selector, *file;
    char err[256];
    struct buf pem;
    if (a->key != NULL || arc_key_spec(spec, &domain, &selector, &file) < 0)
        return -1;
    buf_init(&pem, LIMIT_ARC_KEY_FILE);
    if (arc_read_file(file, &pem, 0) == 0 &&
        (a->key = dkim_key_new(pem.data ? pem.data : "", pem.len, domain, selector, err,
                               sizeof(err))) == NULL)
        fprintf(stderr, "coexctl: arc: %s: %s\n", file, err);
    OPENSSL_cleanse(pem.data, pem.cap);
    buf_cleanup(&pem);
    return a->key ? 0 : -1;
}

/* arc_parse_args - -2 usage, -1 failed (reported), 0 ok */
static int arc_parse_args(int argc, char **argv, struct arc_args *a)
{
    a->now = (long long)time(NULL);
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i];
        if (opt[0] != '-' || strcmp(opt, "-") == 0) {
            if (a->path)
                return -2;
            a->path = opt;
            continue;
        }
        if (i + 1 == argc)
            return -2;
        char *val = argv[++i];
        if (strcmp(opt, "--key") == 0) {
            if (arc_load_key(a, val) < 0)
                return -1;
        } else if (strcmp(opt, "--pub") == 0) {
            if (arc_load_pub(a, val) < 0)
                return -1;
        } else if (strcmp(opt, "--authserv-id") == 0) {
            a->authserv_id = val;
        } else if (strcmp(opt, "--results") == 0) {
            a->results = val;
        } else if (strcmp(opt, "--time") == 0) {
            char *end;
            errno = 0;
            a->now = strtoll(val, &end, 10);
            if (errno || end == val || *end || a->now < 0)
                return -2;
            a->time_given = 1;
        } else {
            return -2;
        }
    }
    return a->path ? 0 : -2;
}

/* arc_args_cleanup - free the keys */
static void arc_args_cleanup(struct arc_args *a)
{
    dkim_key_free(a->key);
    for (size_t i = 0; i < a->npubs; i++)
        dkim_pubkey_free(a->pubs[i]);
}

/* arc_print_chain - "arc=pass i=2 (reason)" */
static void arc_print_chain(FILE *fp, const struct arc_chain *c)
{
    fprintf(fp, "arc=%s i=%d%s%s%s%s\n", arc_cv_name(c->cv), c->instance, c->reason[0] ? " (" : "",
            c->reason, c->reason[0] ? ")" : "", c->sealable ? "" : " not sealable");
}

/* cmd_verify - validate the chain of FILE */
static int cmd_verify(int argc, char **argv)
{
    struct arc_args a = {0};
    struct arc_chain chain;
    struct buf msg;
    int rc = 1, parsed;

    buf_init(&msg, LIMIT_ARC_MESSAGE);
    if ((parsed = arc_parse_args(argc, argv, &a)) < 0 || a.key || a.authserv_id || a.results) {
        rc = parsed == -1 ? 1 : arc_usage();
        goto done;
    }
    if (arc_read_file(a.path, &msg, 1) < 0)
        goto done;
    if (arc_chain_validate(msg.data ? msg.data : "", msg.len, a.pubs, a.npubs,
                           a.time_given ? a.now : 0, &chain) < 0) {
        fprintf(stderr, "coexctl: arc verify: %s: not a message\n", a.path);
        goto done;
    }
    arc_print_chain(stdout, &chain);
    rc = chain.cv == ARC_CV_PASS ? 0 : 1;
done:
    arc_args_cleanup(&a);
    buf_cleanup(&msg);
    return rc;
}

/* arc_default_results - dkim= of every DKIM-Signature (with the --pub keys), arc= of the chain */
static int arc_default_results(const struct buf *msg, const struct arc_args *a,
                               const struct arc_chain *chain, struct buf *results)
{
    struct dkim_result r[LIMIT_ARC_DKIM_RESULTS];
    size_t count = 0;
    if (dkim_verify(msg->data, msg->len, a->pubs, a->npubs, a->time_given ? a->now : 0, r,
                    ARRAY_LEN(r), &count) < 0)
        return -1;
    return arc_results_text(r, count, NULL, chain, results);
}

/* cmd_seal - validate, then add a set and print the message */
static int cmd_seal(int argc, char **argv)
{
    struct arc_args a = {0};
    struct arc_chain chain;
    struct arc_sealer *sealer = NULL;
    struct dkim_body *body = NULL;
    struct dkim_body_hash bh;
    struct buf msg, set, results;
    size_t header_end, body_off;
    char err[256];
    int rc = 1, parsed;

    buf_init(&msg, LIMIT_ARC_MESSAGE);
    buf_init(&set, 3 * LIMIT_ARC_FIELD);
    buf_init(&results, LIMIT_ARC_RESULTS);
    if ((parsed = arc_parse_args(argc, argv, &a)) < 0 || a.key == NULL || a.authserv_id == NULL) {
        rc = parsed == -1 ? 1 : arc_usage();
        goto done;
    }
    if (arc_read_file(a.path, &msg, 1) < 0)
        goto done;
    if (arc_chain_validate(msg.data ? msg.data : "", msg.len, a.pubs, a.npubs,
                           a.time_given ? a.now : 0, &chain) < 0) {
        fprintf(stderr, "coexctl: arc seal: %s: not a message\n", a.path);
        goto done;
    }
    fputs("coexctl: arc seal: incoming chain: ", stderr);
    arc_print_chain(stderr, &chain);
    if (a.results == NULL) {
        if (arc_default_results(&msg, &a, &chain, &results) < 0) {
            fprintf(stderr, "coexctl: arc seal: cannot build the results\n");
            goto done;
        }
        a.results = results.data ? results.data : "";
    }
    if ((sealer = arc_sealer_new(a.key, NULL, err, sizeof(err))) == NULL) {
        fprintf(stderr, "coexctl: arc seal: %s\n", err);
        goto done;
    }
    hdr_split(msg.data, msg.len, &header_end, &body_off);
    if ((body = dkim_body_new(DKIM_CANON_RELAXED)) == NULL)
        goto done;
    dkim_body_update(body, msg.data + body_off, msg.len - body_off);
    if (dkim_body_final(body, &bh) < 0)
        goto done;
    if (arc_seal(sealer, msg.data, header_end, &bh, &chain, a.authserv_id, a.results, a.now, &set,
                 err, sizeof(err)) < 0) {
        fprintf(stderr, "coexctl: arc seal: %s\n", err);
        goto done;
    }
    if (fwrite(set.data, 1, set.len, stdout) != set.len ||
        fwrite(msg.data, 1, msg.len, stdout) != msg.len || fflush(stdout) != 0) {
        fprintf(stderr, "coexctl: arc seal: cannot write standard output: %s\n", strerror(errno));
        goto done;
    }
    rc = 0;
done:
    dkim_body_free(body);
    arc_sealer_free(sealer);
    arc_args_cleanup(&a);
    buf_cleanup(&msg);
    buf_cleanup(&set);
    buf_cleanup(&results);
    return rc;
}

/* coexctl_arc_main - dispatch */
int coexctl_arc_main(int argc, char **argv)
{
    if (argc < 1)
        return arc_usage();
    if (strcmp(argv[0], "seal") == 0)
        return cmd_seal(argc - 1, argv + 1);
    if (strcmp(argv[0], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
        fputs(arc_usage_text, stdout);
        return 0;
    }
    return arc_usage();
}
