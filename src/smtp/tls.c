/*
 * tls - OpenSSL 3 contexts and certificate name checks.
 *
 * Name matching follows RFC 6125 §6.4: case-insensitive, a wildcard only as
 * the whole left-most label ("*.example.com" matches "a.example.com", not
 * "example.com" nor "a.b.example.com").
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

/* tls_error - last OpenSSL error text */
void tls_error(char *out, size_t outsize)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(out, outsize, "unknown TLS error");
    else
        ERR_error_string_n(e, out, outsize);
    ERR_clear_error();
}

/* tls_base_ctx - TLS 1.2+ with sane defaults */
static SSL_CTX *tls_base_ctx(const SSL_METHOD *method, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        tls_error(err, errlen);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

/* tls_load_pair - certificate chain and key, checked against each other */
static int tls_load_pair(SSL_CTX *ctx, const char *cert, const char *key, char *err, size_t errlen)
{
    char why[256];
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_error(why, sizeof(why));
        snprintf(err, errlen, "%s: cannot load certificate: %s", cert, why);
        return -1;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_error(why, sizeof(why));
        snprintf(err, errlen, "%s: cannot load private key: %s", key, why);
        return -1;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "%s does not belong to %s", key, cert);
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* tls_load_ca - trust anchors for verifying the peer */
static int tls_load_ca(SSL_CTX *ctx, const char *ca, char *err, size_t errlen)
{
    char why[256];
    if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
        tls_error(why, sizeof(why));
        snprintf(err, errlen, "%s: cannot load CA bundle: %s", ca, why);
        return -1;
    }
    return 0;
}

/* accept any client certificate chain here; policy checks the verify result */
static int tls_verify_keep_going(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1;
}

/* tls_server_ctx - listener context */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ca, char *err, size_t errlen)
{
    SSL_CTX *ctx = tls_base_ctx(TLS_server_method(), err, errlen);
    if (ctx == NULL)
        return NULL;
    if (tls_load_pair(ctx, cert, key, err, errlen) < 0)
        goto fail;
    if (ca) {
        if (tls_load_ca(ctx, ca, err, errlen) < 0)
            goto fail;
        /* ask for a certificate; the handshake goes on without one and policy decides */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_keep_going);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    static const unsigned char sid[] = "coex";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls_client_ctx - next hop context */
SSL_CTX *tls_client_ctx(const char *ca, const char *cert, const char *key, int verify, char *err,
                        size_t errlen)
{
    SSL_CTX *ctx = tls_base_ctx(TLS_client_method(), err, errlen);
    if (ctx == NULL)
        return NULL;
    if (verify) {
        if (ca ? tls_load_ca(ctx, ca, err, errlen) < 0 : SSL_CTX_set_default_verify_paths(ctx) != 1)
            goto fail;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if (cert && tls_load_pair(ctx, cert, key, err, errlen) < 0)
        goto fail;
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls_name_match - RFC 6125 left-most label wildcard */
int tls_name_match(const char *pattern, const char *name)
{
    if (strncmp(pattern, "*.", 2) == 0) {
        const char *dot = strchr(name, '.');
        if (dot == NULL || dot == name)
            return 0;
        return strcasecmp(pattern + 1, dot) == 0;
    }
    return strcasecmp(pattern, name) == 0;
}

static int tls_any_match(char *const *patterns, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (tls_name_match(patterns[i], name))
            return 1;
    return 0;
}

/* tls_peer_matches - verified certificate with an allowed name */
int tls_peer_matches(SSL *ssl, char *const *patterns, size_t count, char *name_out,
                     size_t name_size)
{
    int found = 0;
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (name_size)
        name_out[0] = '\0';
    if (cert == NULL)
        return 0;
    if (SSL_get_verify_result(ssl) != X509_V_OK)
        goto done;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (sans) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans) && !found; i++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type != GEN_DNS)
                continue;
            const char *dns = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
            if ((size_t)ASN1_STRING_length(gn->d.dNSName) != strlen(dns))
                continue; /* embedded NUL: never a match */
            if (name_size && name_out[0] == '\0')
                snprintf(name_out, name_size, "%s", dns);
            found = tls_any_match(patterns, count, dns);
        }
        GENERAL_NAMES_free(sans);
    } else {
        char cn[256];
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) >
            0) {
            if (name_size)
                snprintf(name_out, name_size, "%s", cn);
            found = tls_any_match(patterns, count, cn);
        }
    }
done:
    X509_free(cert);
    return found;
}

/* tls_describe - protocol and cipher */
void tls_describe(SSL *ssl, char *out, size_t outsize)
{
    snprintf(out, outsize, "%s %s", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
}
