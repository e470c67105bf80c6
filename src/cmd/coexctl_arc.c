/*
 * coexctl_arc - `coexctl arc seal|verify`: ARC (RFC 8617) offline.
 *
 * Argument parsing and the clock; the ARC work is in src/mail/arc
 * (validation RFC 8617 §5.2, sealing §5.1), files and keys are read as for
 * `coexctl dkim` (coexctl_util). Message files may have bare LF line ends:
 * they are read as CRLF, the wire form. Keys are the files
 * `coexctl dkim keygen` writes; public keys may be PEM (public or private)
 * or the DNS record as `coexctl dkim dns` prints it.
 */
#include "coexctl_arc.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "arc.h"
#include "buf.h"
#include "coexctl_util.h"
#include "dkim.h"
#include "hdr.h"
#include "util.h"

#define LIMIT_ARC_MESSAGE ((size_t)64 << 20)
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
    if (a->npubs == LIMIT_ARC_PUBKEYS) {
        fprintf(stderr, "coexctl: arc: at most %d --pub keys\n", LIMIT_ARC_PUBKEYS);
        return -1;
    }
    if (coexctl_key_spec("arc: a key is", spec, &domain, &selector, &file) < 0)
        return -1;
    a->pubs[a->npubs] = coexctl_load_pubkey("arc", domain, selector, file, err, sizeof(err));
    if (a->pubs[a->npubs] == NULL) {
        if (err[0])
            fprintf(stderr, "coexctl: arc: %s: %s\n", file, err);
        return -1;
    }
    a->npubs++;
    return 0;
}

/* arc_load_key - --key D:S:FILE, a private key */
static int arc_load_key(struct arc_args *a, char *spec)
{
    const char *domain, *selector, *file;
    if (a->key != NULL || coexctl_key_spec("arc: a key is", spec, &domain, &selector, &file) < 0)
        return -1;
    a->key = coexctl_load_key("arc", domain, selector, file);
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
            if (coexctl_parse_ll(val, &a->now) < 0)
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

/*
 * arc_read_chain - the options of cmd ("verify" or "seal", which needs --key
 * and --authserv-id and is the only one to take them), FILE read and its
 * chain validated into chain; 0, or the exit status (1 failed, 2 usage)
 */
static int arc_read_chain(const char *cmd, int argc, char **argv, struct arc_args *a,
                          struct buf *msg, struct arc_chain *chain)
{
    int parsed = arc_parse_args(argc, argv, a);
    int seal = strcmp(cmd, "seal") == 0;
    if (parsed < 0 ||
        (seal ? a->key == NULL || a->authserv_id == NULL : a->key || a->authserv_id || a->results))
        return parsed == -1 ? 1 : arc_usage();
    if (coexctl_read_file("arc", a->path, msg, 1) < 0)
        return 1;
    if (arc_chain_validate(msg->data ? msg->data : "", msg->len, a->pubs, a->npubs,
                           a->time_given ? a->now : 0, chain) < 0) {
        fprintf(stderr, "coexctl: arc %s: %s: not a message\n", cmd, a->path);
        return 1;
    }
    return 0;
}

/* cmd_verify - validate the chain of FILE */
static int cmd_verify(int argc, char **argv)
{
    struct arc_args a = {0};
    struct arc_chain chain;
    struct buf msg;
    int rc;

    buf_init(&msg, LIMIT_ARC_MESSAGE);
    if ((rc = arc_read_chain("verify", argc, argv, &a, &msg, &chain)) != 0)
        goto done;
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
    int rc;

    buf_init(&msg, LIMIT_ARC_MESSAGE);
    buf_init(&set, 3 * LIMIT_ARC_FIELD);
    buf_init(&results, LIMIT_ARC_RESULTS);
    if ((rc = arc_read_chain("seal", argc, argv, &a, &msg, &chain)) != 0)
        goto done;
    rc = 1;
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
    if (coexctl_write_message("arc seal", &set, &msg) < 0)
        goto done;
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
