/*
 * coexctl_util - files, key options and numbers for the `coexctl dkim` and
 * `coexctl arc` subcommands.
 *
 * Message files may have bare LF line ends: they are read as CRLF, the wire
 * form that is signed, sealed and verified. Key files are wiped from memory
 * once the key is made (a public key file may hold a private key).
 *
 * Does not: parse the options of a subcommand (each does its own).
 */
#include "coexctl_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* coexctl_read_stream - chunks of fp, each bare LF turned into CRLF when crlf */
int coexctl_read_stream(const char *cmd, FILE *fp, const char *what, struct buf *b, int crlf)
{
    char chunk[65536];
    size_t n;
    char prev = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
        size_t start = 0;
        for (size_t i = 0; crlf && i < n; i++) {
            char before = i ? chunk[i - 1] : prev;
            if (chunk[i] == '\n' && before != '\r') {
                if (buf_append(b, chunk + start, i - start) < 0 || buf_append(b, "\r\n", 2) < 0)
                    goto too_big;
                start = i + 1;
            }
        }
        if (buf_append(b, chunk + start, n - start) < 0)
            goto too_big;
        prev = chunk[n - 1];
    }
    if (ferror(fp)) {
        fprintf(stderr, "coexctl: %s: %s: read error: %s\n", cmd, what, strerror(errno));
        return -1;
    }
    return 0;
too_big:
    fprintf(stderr, "coexctl: %s: %s: larger than %zu bytes\n", cmd, what, b->limit);
    return -1;
}

/* coexctl_read_file - open path (or take stdin), read it, close it */
int coexctl_read_file(const char *cmd, const char *path, struct buf *b, int crlf)
{
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (fp == NULL) {
        fprintf(stderr, "coexctl: %s: %s: %s\n", cmd, path, strerror(errno));
        return -1;
    }
    int rc = coexctl_read_stream(cmd, fp, path, b, crlf);
    if (fp != stdin)
        fclose(fp);
    return rc;
}

/* coexctl_key_spec - the first two colons end the domain and the selector */
int coexctl_key_spec(const char *what, char *spec, const char **domain, const char **selector,
                     const char **file)
{
    char *c1 = strchr(spec, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
    if (c2 == NULL) {
        fprintf(stderr, "coexctl: %s DOMAIN:SELECTOR:FILE, not %s\n", what, spec);
        return -1;
    }
    *c1 = *c2 = '\0';
    *domain = spec;
    *selector = c1 + 1;
    *file = c2 + 1;
    return 0;
}

/* coexctl_zone_text - the quoted strings joined; text without quotes is left alone */
void coexctl_zone_text(struct buf *b)
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

/* coexctl_load_key - read, make the key, wipe the PEM */
struct dkim_key *coexctl_load_key(const char *cmd, const char *domain, const char *selector,
                                  const char *path)
{
    struct buf pem;
    char err[256];
    struct dkim_key *key = NULL;
    buf_init(&pem, LIMIT_COEXCTL_KEY_FILE);
    if (coexctl_read_file(cmd, path, &pem, 0) == 0 &&
        (key = dkim_key_new(pem.data ? pem.data : "", pem.len, domain, selector, err,
                            sizeof(err))) == NULL)
        fprintf(stderr, "coexctl: %s: %s: %s\n", cmd, path, err);
    OPENSSL_cleanse(pem.data, pem.cap);
    buf_cleanup(&pem);
    return key;
}

/* coexctl_load_pubkey - read, unwrap a zone line, make the key, wipe the text */
struct dkim_pubkey *coexctl_load_pubkey(const char *cmd, const char *domain, const char *selector,
                                        const char *path, char *err, size_t errlen)
{
    struct buf text;
    struct dkim_pubkey *key = NULL;
    err[0] = '\0';
    buf_init(&text, LIMIT_COEXCTL_KEY_FILE);
    if (coexctl_read_file(cmd, path, &text, 0) == 0) {
        coexctl_zone_text(&text);
        key = dkim_pubkey_new(domain, selector, text.data ? text.data : "", text.len, err, errlen);
        if (key == NULL && err[0] == '\0')
            snprintf(err, errlen, "not a key");
    }
    OPENSSL_cleanse(text.data, text.cap); /* it may be a private key */
    buf_cleanup(&text);
    return key;
}

/* coexctl_write_message - both, flushed, so that a full disk is an error */
int coexctl_write_message(const char *cmd, const struct buf *head, const struct buf *msg)
{
    if (fwrite(head->data, 1, head->len, stdout) != head->len ||
        fwrite(msg->data, 1, msg->len, stdout) != msg->len || fflush(stdout) != 0) {
        fprintf(stderr, "coexctl: %s: cannot write standard output: %s\n", cmd, strerror(errno));
        return -1;
    }
    return 0;
}

/* coexctl_parse_ll - strtoll, the whole string, no sign, no overflow */
int coexctl_parse_ll(const char *s, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}
