/*
 * tls - OpenSSL contexts for the listener (STARTTLS, RFC 3207) and for the
 * client side, and the checks coex makes on a peer certificate.
 *
 * TLS 1.2 or newer only. A server context that is given a CA bundle asks for
 * a client certificate and verifies it against that bundle; whether a
 * certificate is required, and which names it must carry, is policy's job.
 */
#ifndef COEX_TLS_H
#define COEX_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* tls_server_ctx - context for a listener; caller owns (SSL_CTX_free); NULL + err */
SSL_CTX *tls_server_ctx(const char *cert, const char *key, const char *ca, char *err,
                        size_t errlen);
/*
 * tls_client_ctx - context for connections to a next hop: verify against ca
 * (NULL: the system store) when verify is set, present cert/key when given.
 * Caller owns; NULL + err.
 */
SSL_CTX *tls_client_ctx(const char *ca, const char *cert, const char *key, int verify, char *err,
                        size_t errlen);
/* tls_name_match - does name (from a certificate) match pattern ("*.x.example" allowed)? */
int tls_name_match(const char *pattern, const char *name);
/*
 * tls_peer_matches - 1 when the peer presented a certificate that verified and
 * whose SAN DNS names (or, without SANs, the subject CN) match one of the
 * patterns; 0 otherwise. The first name seen goes into name_out for logs.
 */
int tls_peer_matches(SSL *ssl, char *const *patterns, size_t count, char *name_out,
                     size_t name_size);
/* tls_describe - "TLSv1.3 TLS_AES_256_GCM_SHA384" for logs and Received */
void tls_describe(SSL *ssl, char *out, size_t outsize);
/* tls_error - the last OpenSSL error as text, clearing the queue */
void tls_error(char *out, size_t outsize);

#endif
