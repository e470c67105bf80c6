/*
 * coexctl_dkim - `coexctl dkim keygen|dns|sign|verify|bench`.
 *
 * Argument parsing and the clock; the DKIM work is in src/mail/dkim
 * (RFC 6376, RFC 8463, RFC 8301), files and keys are read by coexctl_util.
 * Message files may have bare LF line ends: they are read as CRLF, the wire
 * form that is signed and verified.
 * `verify --dns` fetches the keys through src/smtp/keyfetch on a private
 * event loop (RFC 6376 §6.1.2: a failed lookup is temperror, a missing or
 * unusable key permerror).
 */
#include "coexctl_dkim.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "buf.h"
#include "cfg.h"
#include "coexctl_util.h"
#include "dkim.h"
#include "dnstxt.h"
#include "hdr.h"
#include "keyfetch.h"
#include "util.h"

#define LIMIT_DKIM_MESSAGE ((size_t)64 << 20)
#define DKIM_DEFAULT_CHUNK 65536
#define DKIM_DNS_ATTEMPTS 2 /* UDP attempts of --dns-timeout each */
#define LIMIT_DKIM_VERIFY_RESULTS 16

static const char dkim_usage_text[] =
    "usage: coexctl dkim COMMAND ...\n"
    "  keygen --domain D --selector S [--type rsa|ed25519] [--bits 2048] [--out DIR]\n"
    "  dns --key FILE --domain D --selector S    the record for one key file\n"
    "  dns --domain D                           the records of the configured dkim_key lines\n"
    "  sign --key D:S:FILE [--key D:S:FILE] [--canon relaxed|simple|H/B] [--time T]\n"
    "       [--expire SECONDS] [--headers a:b:c] [--chunk BYTES] < in.eml > out.eml\n"
    "  verify FILE|- --key D:S:KEYFILE [--key ...] [--time T]\n"
    "       KEYFILE: a PEM public or private key, or the DNS record (as `dns` prints it)\n"
    "  verify FILE|- --dns [--resolver ADDR[:PORT]] [--dns-timeout MS] [--key ...] [--time T]\n"
    "       keys from DNS (S._domainkey.D TXT); --key keys are used first for their D and S;\n"
    "       ADDR: 127.0.0.1, 127.0.0.1:5353, ::1, [::1]:5353 (default: /etc/resolv.conf)\n"
    "  bench --key D:S:FILE [--key ...] [--canon ...] [--count N] < message.eml\n";

static int dkim_usage(void)
{
    fputs(dkim_usage_text, stderr);
    return 2;
}

/* parse_canon - "relaxed", "simple" or "H/B" */
static int parse_canon(const char *s, struct dkim_opts *o)
{
    char head[16], body[16];
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    const char *b = slash ? slash + 1 : s;
    if (hl >= sizeof(head) || strlen(b) >= sizeof(body))
        return -1;
    memcpy(head, s, hl);
    head[hl] = '\0';
    memcpy(body, b, strlen(b) + 1);
    const char *parts[2] = {head, body};
    enum dkim_canon *dst[2] = {&o->header_canon, &o->body_canon};
    for (int i = 0; i < 2; i++) {
        if (strcmp(parts[i], "relaxed") == 0)
            *dst[i] = DKIM_CANON_RELAXED;
        else if (strcmp(parts[i], "simple") == 0)
            *dst[i] = DKIM_CANON_SIMPLE;
        else
            return -1;
    }
    return 0;
}

/*
 * dkim_mkdirs - create dir and its missing parents, mode 0700 (private
 * keys live there); existing ones are left as they are. 0 or -1 (errno).
 */
static int dkim_mkdirs(const char *dir)
{
    char partial[PATH_MAX];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof(partial)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (size_t i = 1; i <= len; i++) {
        if (dir[i] != '/' && dir[i] != '\0')
            continue;
        memcpy(partial, dir, i);
        partial[i] = '\0';
        if (mkdir(partial, 0700) < 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* cmd_keygen - new key file (0600, never overwritten) and its DNS record */
static int cmd_keygen(int argc, char **argv)
{
    const char *domain = NULL, *selector = NULL, *type = "rsa", *dir = ".";
    long long bits = DKIM_RSA_MIN_BITS;
    char path[4096], err[256];
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    struct dkim_key *key = NULL;
    struct buf txt, zone;
    int fd = -1, rc = 1;

    buf_init(&txt, LIMIT_DKIM_FIELD);
    buf_init(&zone, LIMIT_DKIM_FIELD);
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
            domain = argv[++i];
        else if (strcmp(argv[i], "--selector") == 0 && i + 1 < argc)
            selector = argv[++i];
        else if (strcmp(argv[i], "--type") == 0 && i + 1 < argc)
            type = argv[++i];
        else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc) {
            if (coexctl_parse_ll(argv[++i], &bits) < 0)
                return dkim_usage();
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            dir = argv[++i];
        else
            return dkim_usage();
    }
    if (domain == NULL || selector == NULL || (strcmp(type, "rsa") && strcmp(type, "ed25519")))
        return dkim_usage();
    if (strcmp(type, "rsa") == 0 && (bits < DKIM_RSA_MIN_BITS || bits > DKIM_RSA_MAX_BITS)) {
        fprintf(stderr, "coexctl: dkim keygen: RSA keys have %d to %d bits (RFC 8301 §3.2)\n",
                DKIM_RSA_MIN_BITS, DKIM_RSA_MAX_BITS);
        goto done;
    }
    if (strchr(selector, '/') || strchr(domain, '/') ||
        snprintf(path, sizeof(path), "%s/%s._domainkey.%s.key", dir, selector, domain) >=
            (int)sizeof(path)) {
        fprintf(stderr, "coexctl: dkim keygen: bad domain, selector or directory\n");
        goto done;
    }
    pkey = strcmp(type, "rsa") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
                                    : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    bio = BIO_new(BIO_s_mem());
    char *pem = NULL;
    long pem_len;
    if (pkey == NULL || bio == NULL ||
        PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pem_len = BIO_get_mem_data(bio, &pem)) <= 0) {
        fprintf(stderr, "coexctl: dkim keygen: key generation failed\n");
        goto done;
    }
    /* validate before writing: the same checks as the signer's */
    if ((key = dkim_key_new(pem, (size_t)pem_len, domain, selector, err, sizeof(err))) == NULL) {
        fprintf(stderr, "coexctl: dkim keygen: %s\n", err);
        goto done;
    }
    if (dkim_mkdirs(dir) < 0) {
        fprintf(stderr, "coexctl: dkim keygen: cannot create %s: %s\n", dir, strerror(errno));
        goto done;
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "coexctl: dkim keygen: %s: %s\n", path, strerror(errno));
        goto done;
    }
    for (long off = 0; off < pem_len;) {
        ssize_t n = write(fd, pem + off, (size_t)(pem_len - off));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "coexctl: dkim keygen: %s: %s\n", path, strerror(errno));
            goto done;
        }
        off += n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        fprintf(stderr, "coexctl: dkim keygen: %s: %s\n", path, strerror(errno));
        goto done;
    }
    fd = -1;
    if (dkim_key_dns_txt(key, &txt) < 0 ||
        dkim_dns_zone_line(domain, selector, txt.data, txt.len, &zone) < 0)
        goto done;
    fprintf(stderr, "coexctl: dkim keygen: wrote %s (%s, %d bits); publish:\n", path, type,
            dkim_key_bits(key));
    fputs(zone.data, stdout);
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    dkim_key_free(key);
    BIO_free(bio);
    EVP_PKEY_free(pkey);
    buf_cleanup(&txt);
    buf_cleanup(&zone);
    return rc;
}

/* dns_print - the zone line for one key file; 0 or -1 */
static int dns_print(const char *domain, const char *selector, const char *file)
{
    struct buf txt, zone;
    int rc = -1;
    struct dkim_key *key = coexctl_load_key("dkim", domain, selector, file);
    buf_init(&txt, LIMIT_DKIM_FIELD);
    buf_init(&zone, LIMIT_DKIM_FIELD);
    if (key && dkim_key_dns_txt(key, &txt) == 0 &&
        dkim_dns_zone_line(domain, selector, txt.data, txt.len, &zone) == 0) {
        fputs(zone.data, stdout);
        rc = 0;
    }
    dkim_key_free(key);
    buf_cleanup(&txt);
    buf_cleanup(&zone);
    return rc;
}

/*
 * cmd_dns_configured - `dns --domain D` without --key: the records of every
 * dkim_key line of the configuration whose domain is D
 */
static int cmd_dns_configured(const struct coex_config *cfg, const char *domain)
{
    int found = 0, rc = 0;
    for (size_t r = 0; r < cfg->route_count; r++)
        for (size_t k = 0; k < cfg->routes[r].dkim_key_count; k++) {
            const struct cfg_dkim_key *key = &cfg->routes[r].dkim_keys[k];
            if (strcasecmp(key->domain, domain) != 0)
                continue;
            found = 1;
            if (dns_print(key->domain, key->selector, key->file) < 0)
                rc = 1;
        }
    if (!found) {
        fprintf(stderr, "coexctl: dkim dns: %s configures no dkim_key for %s\n", cfg->source,
                domain);
        return 1;
    }
    return rc;
}

/* cmd_dns - the record to publish for an existing key, or for the configured ones */
static int cmd_dns(const struct coex_config *cfg, int argc, char **argv)
{
    const char *domain = NULL, *selector = NULL, *file = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--domain") == 0 && i + 1 < argc)
            domain = argv[++i];
        else if (strcmp(argv[i], "--selector") == 0 && i + 1 < argc)
            selector = argv[++i];
        else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            file = argv[++i];
        else
            return dkim_usage();
    }
    if (domain && file == NULL && selector == NULL)
        return cmd_dns_configured(cfg, domain);
    if (domain == NULL || selector == NULL || file == NULL)
        return dkim_usage();
    return dns_print(domain, selector, file) < 0 ? 1 : 0;
}

/* sign options shared by sign and bench */
struct sign_args {
    struct dkim_key *keys[LIMIT_DKIM_KEYS];
    size_t nkeys;
    struct dkim_opts opts;
    const char *headers[LIMIT_DKIM_SIGN_HEADERS];
    long long now, count, chunk;
};

/* parse_sign_args - --key, --canon, --time, --expire, --headers, --chunk, --count */
static int parse_sign_args(int argc, char **argv, struct sign_args *a)
{
    const char *domain, *selector, *file;
    a->now = (long long)time(NULL);
    a->count = 1000;
    a->chunk = DKIM_DEFAULT_CHUNK;
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL)
            return -2;
        i++;
        if (strcmp(opt, "--key") == 0) {
            if (a->nkeys == LIMIT_DKIM_KEYS ||
                coexctl_key_spec("dkim: --key wants", argv[i], &domain, &selector, &file) < 0 ||
                (a->keys[a->nkeys] = coexctl_load_key("dkim", domain, selector, file)) == NULL)
                return -1;
            a->nkeys++;
        } else if (strcmp(opt, "--canon") == 0) {
            if (parse_canon(val, &a->opts) < 0)
                return -2;
        } else if (strcmp(opt, "--time") == 0) {
            if (coexctl_parse_ll(val, &a->now) < 0)
                return -2;
        } else if (strcmp(opt, "--expire") == 0) {
            if (coexctl_parse_ll(val, &a->opts.expire_after) < 0)
                return -2;
        } else if (strcmp(opt, "--count") == 0) {
            if (coexctl_parse_ll(val, &a->count) < 0 || a->count == 0)
                return -2;
        } else if (strcmp(opt, "--chunk") == 0) {
            if (coexctl_parse_ll(val, &a->chunk) < 0 || a->chunk == 0)
                return -2;
        } else if (strcmp(opt, "--headers") == 0) {
            char *s = argv[i];
            a->opts.sign_headers = a->headers;
            for (char *name = s; name && a->opts.sign_headers_count < LIMIT_DKIM_SIGN_HEADERS;) {
                char *colon = strchr(name, ':');
                if (colon)
                    *colon = '\0';
                a->headers[a->opts.sign_headers_count++] = name;
                name = colon ? colon + 1 : NULL;
            }
        } else {
            return -2;
        }
    }
    return a->nkeys ? 0 : -2;
}

/* sign_message - body hashed in chunks (as the relay does), then the header */
static int sign_message(struct dkim_signer *signer, struct dkim_body *body, const struct buf *msg,
                        long long now, size_t chunk, struct buf *sigs, char *err, size_t errlen)
{
    size_t header_end, body_off;
    struct dkim_body_hash bh;
    hdr_split(msg->data, msg->len, &header_end, &body_off);
    for (size_t off = body_off; off < msg->len; off += chunk)
        dkim_body_update(body, msg->data + off, msg->len - off < chunk ? msg->len - off : chunk);
    if (dkim_body_final(body, &bh) < 0) {
        snprintf(err, errlen, "body hash failed");
        return -1;
    }
    return dkim_sign_header(signer, msg->data, header_end, &bh, now, sigs, err, errlen);
}

/* sign_args_cleanup - free the keys */
static void sign_args_cleanup(struct sign_args *a)
{
    for (size_t i = 0; i < a->nkeys; i++)
        dkim_key_free(a->keys[i]);
}

/* cmd_sign_or_bench - sign standard input once (sign) or count times (bench) */
static int cmd_sign_or_bench(int argc, char **argv, int bench)
{
    struct sign_args a = {0};
    struct dkim_signer *signer = NULL;
    struct dkim_body *body = NULL;
    struct buf msg, sigs;
    char err[256];
    int rc = 1, parsed;

    buf_init(&msg, LIMIT_DKIM_MESSAGE);
    buf_init(&sigs, (size_t)LIMIT_DKIM_KEYS * LIMIT_DKIM_FIELD);
    if ((parsed = parse_sign_args(argc, argv, &a)) < 0) {
        rc = parsed == -2 ? dkim_usage() : 1;
        goto done;
    }
    if (coexctl_read_stream("dkim", stdin, "standard input", &msg, 1) < 0)
        goto done;
    if ((signer = dkim_signer_new(a.keys, a.nkeys, &a.opts, err, sizeof(err))) == NULL ||
        (body = dkim_body_new(dkim_signer_body_canon(signer))) == NULL) {
        fprintf(stderr, "coexctl: dkim: %s\n", signer ? "out of memory" : err);
        goto done;
    }
    /* wall time, and user CPU time as `openssl speed` measures by default (per core) */
    struct timespec t0, t1;
    struct rusage u0, u1;
    long long rounds = bench ? a.count : 1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    getrusage(RUSAGE_SELF, &u0);
    for (long long i = 0; i < rounds; i++) {
        buf_reset(&sigs);
        if (sign_message(signer, body, &msg, a.now, (size_t)a.chunk, &sigs, err, sizeof(err)) < 0) {
            fprintf(stderr, "coexctl: dkim sign: %s\n", err);
            goto done;
        }
    }
    getrusage(RUSAGE_SELF, &u1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (bench) {
        double wall = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        double user = (double)(u1.ru_utime.tv_sec - u0.ru_utime.tv_sec) +
                      (double)(u1.ru_utime.tv_usec - u0.ru_utime.tv_usec) / 1e6;
        printf("dkim bench: %lld messages of %zu bytes, %zu signature(s) each: "
               "%.1f messages/s per CPU second (user %.3f s), %.1f messages/s wall (%.3f s)\n",
               rounds, msg.len, a.nkeys, (double)rounds / user, user, (double)rounds / wall, wall);
    } else if (coexctl_write_message("dkim sign", &sigs, &msg) < 0) {
        goto done;
    }
    rc = 0;
done:
    dkim_body_free(body);
    dkim_signer_free(signer);
    sign_args_cleanup(&a);
    buf_cleanup(&msg);
    buf_cleanup(&sigs);
    return rc;
}

/* verify options */
struct verify_args {
    struct dkim_pubkey *keys[LIMIT_DKIM_KEYS + LIMIT_KEYFETCH_PAIRS]; /* --key, then DNS */
    size_t nkeys;
    const char *path, *resolver;
    long long now, dns_timeout;
    int dns;
};

/* parse_verify_args - FILE, --key, --time, --dns, --resolver, --dns-timeout; -2 usage, -1 error */
static int parse_verify_args(int argc, char **argv, struct verify_args *a)
{
    const char *domain, *selector, *file;
    char err[256];
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--key") == 0 && val && a->nkeys < LIMIT_DKIM_KEYS) {
            if (coexctl_key_spec("dkim: --key wants", argv[++i], &domain, &selector, &file) < 0) {
                rc = -1;
                break;
            }
            a->keys[a->nkeys] =
                coexctl_load_pubkey("dkim", domain, selector, file, err, sizeof(err));
            if (a->keys[a->nkeys] == NULL) {
                if (err[0])
                    fprintf(stderr, "coexctl: dkim verify: %s: %s\n", file, err);
                rc = -1;
                break;
            }
            a->nkeys++;
        } else if (strcmp(argv[i], "--time") == 0 && val) {
            rc = coexctl_parse_ll(argv[++i], &a->now) < 0 ? -2 : 0;
        } else if (strcmp(argv[i], "--dns") == 0) {
            a->dns = 1;
        } else if (strcmp(argv[i], "--resolver") == 0 && val) {
            a->resolver = argv[++i];
        } else if (strcmp(argv[i], "--dns-timeout") == 0 && val) {
            rc = coexctl_parse_ll(argv[++i], &a->dns_timeout) < 0 || a->dns_timeout == 0 ||
                         a->dns_timeout > DNSTXT_TIMEOUT_MAX_MS
                     ? -2
                     : 0;
        } else if (a->path == NULL && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) {
            a->path = argv[i];
        } else {
            rc = -2;
        }
    }
    if (rc == 0 && (a->path == NULL || (a->nkeys == 0 && !a->dns) ||
                    (!a->dns && (a->resolver || a->dns_timeout))))
        rc = -2;
    return rc;
}

/* verify_fetched - keyfetch is done: stop the private loop */
static void verify_fetched(void *arg, struct keyfetch *kf)
{
    (void)kf;
    event_base_loopexit(arg, NULL);
}

/*
 * verify_fetch_keys - the keys of msg's signatures from DNS, on a private
 * loop; *kf_out (caller frees) holds them. 0, or -1 when the resolver
 * cannot be set up.
 */
static int verify_fetch_keys(const struct verify_args *a, const struct buf *msg,
                             struct keyfetch **kf_out)
{
    struct dnstxt_opts opts = {.server = a->resolver,
                               .timeout_ms = (int)a->dns_timeout,
                               .attempts = DKIM_DNS_ATTEMPTS};
    struct event_base *base = event_base_new();
    struct dnstxt *r = NULL;
    size_t header_end, body_off;
    char err[256];
    int rc = -1;
    *kf_out = NULL;
    if (base == NULL) {
        fprintf(stderr, "coexctl: dkim verify: cannot make an event loop\n");
        return -1;
    }
    if ((r = dnstxt_new(base, &opts, err, sizeof(err))) == NULL) {
        fprintf(stderr, "coexctl: dkim verify: %s\n", err);
        goto done;
    }
    hdr_split(msg->data ? msg->data : "", msg->len, &header_end, &body_off);
    *kf_out = keyfetch_start(r, msg->data ? msg->data : "", header_end, verify_fetched, base);
    if (*kf_out == NULL) {
        fprintf(stderr, "coexctl: dkim verify: cannot start the key lookups\n");
        goto done;
    }
    if (event_base_dispatch(base) < 0) {
        fprintf(stderr, "coexctl: dkim verify: event loop failed\n");
        goto done;
    }
    rc = 0;
done:
    dnstxt_free(r);
    event_base_free(base);
    return rc;
}

/* cmd_verify - every DKIM-Signature of FILE against the given keys and/or DNS */
static int cmd_verify(int argc, char **argv)
{
    struct verify_args a = {0};
    struct dkim_result results[LIMIT_DKIM_VERIFY_RESULTS];
    struct keyfetch *kf = NULL;
    size_t count = 0, nkeys;
    struct buf msg;
    int rc = 1, parsed;

    buf_init(&msg, LIMIT_DKIM_MESSAGE);
    if ((parsed = parse_verify_args(argc, argv, &a)) < 0) {
        rc = parsed == -2 ? dkim_usage() : 1;
        goto done;
    }
    if (coexctl_read_file("dkim", a.path, &msg, 1) < 0)
        goto done;
    nkeys = a.nkeys;
    if (a.dns) {
        size_t fetched;
        if (verify_fetch_keys(&a, &msg, &kf) < 0)
            goto done;
        struct dkim_pubkey *const *dns_keys = keyfetch_keys(kf, &fetched);
        for (size_t i = 0; i < fetched && nkeys < ARRAY_LEN(a.keys); i++)
            a.keys[nkeys++] = dns_keys[i]; /* borrowed from kf: not freed below */
    }
    if (dkim_verify(msg.data ? msg.data : "", msg.len, a.keys, nkeys, a.now, results,
                    ARRAY_LEN(results), &count) < 0) {
        fprintf(stderr, "coexctl: dkim verify: %s: not a message\n", a.path);
        goto done;
    }
    if (count == 0)
        printf("dkim=none (no DKIM-Signature field)\n");
    int all_pass = count > 0;
    for (size_t i = 0; i < count; i++) {
        const struct dkim_result *res = &results[i];
        const char *status = dkim_status_name(res->status), *why = res->reason;
        if (res->status == DKIM_NEUTRAL && kf) { /* no --key key: what did DNS say? */
            enum keyfetch_status ks = keyfetch_status(kf, res->domain, res->selector, &why);
            status = ks == KEYFETCH_TEMPFAIL ? "temperror"
                     : ks == KEYFETCH_SKIPPED ? "neutral"
                                              : "permerror";
        }
        printf("dkim=%s d=%s s=%s a=%s (%s)\n", status, res->domain, res->selector,
               res->alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256", why);
        all_pass &= res->status == DKIM_PASS;
    }
    rc = all_pass ? 0 : 1;
done:
    for (size_t i = 0; i < a.nkeys; i++)
        dkim_pubkey_free(a.keys[i]);
    keyfetch_free(kf);
    keyfetch_cache_clear();
    buf_cleanup(&msg);
    return rc;
}

/* coexctl_dkim_main - dispatch */
int coexctl_dkim_main(const struct coex_config *cfg, int argc, char **argv)
{
    if (argc < 1)
        return dkim_usage();
    if (strcmp(argv[0], "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(argv[0], "dns") == 0)
        return cmd_dns(cfg, argc - 1, argv + 1);
    if (strcmp(argv[0], "sign") == 0)
        return cmd_sign_or_bench(argc - 1, argv + 1, 0);
    if (strcmp(argv[0], "bench") == 0)
        return cmd_sign_or_bench(argc - 1, argv + 1, 1);
    if (strcmp(argv[0], "verify") == 0)
        return cmd_verify(argc - 1, argv + 1);
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "help") == 0) {
        fputs(dkim_usage_text, stdout);
        return 0;
    }
    return dkim_usage();
}
