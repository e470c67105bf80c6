/*
 * coexctl_util - what the `coexctl dkim` and `coexctl arc` subcommands
 * share: reading message and key files, DOMAIN:SELECTOR:FILE key options,
 * numbers on the command line. Errors go to stderr as
 * "coexctl: CMD: ...", CMD being the caller's subcommand ("dkim", "arc").
 */
#ifndef COEX_COEXCTL_UTIL_H
#define COEX_COEXCTL_UTIL_H

#include <stdio.h>

#include "buf.h"
#include "dkim.h"

#define LIMIT_COEXCTL_KEY_FILE ((size_t)64 << 10) /* a PEM key or a DNS record */

/*
 * coexctl_read_stream - all of fp (borrowed) into b, whose limit the caller
 * set; bare LF read as CRLF (the wire form) when crlf. what names fp in
 * errors. 0, or -1 reported.
 */
int coexctl_read_stream(const char *cmd, FILE *fp, const char *what, struct buf *b, int crlf) WUR;
/* coexctl_read_file - coexctl_read_stream of the file path ("-": standard input) */
int coexctl_read_file(const char *cmd, const char *path, struct buf *b, int crlf) WUR;
/*
 * coexctl_key_spec - split "DOMAIN:SELECTOR:FILE" in place (the file name
 * may hold colons): the outputs point into spec. -1 reported as
 * "coexctl: WHAT DOMAIN:SELECTOR:FILE, not SPEC", what being e.g.
 * "dkim: --key wants".
 */
int coexctl_key_spec(const char *what, char *spec, const char **domain, const char **selector,
                     const char **file) WUR;
/* coexctl_zone_text - a zone line (as `dkim dns` prints it) in b becomes the record */
void coexctl_zone_text(struct buf *b);
/*
 * coexctl_load_key - the private key file path for signing as domain and
 * selector; caller owns the key (dkim_key_free). NULL reported.
 */
struct dkim_key *coexctl_load_key(const char *cmd, const char *domain, const char *selector,
                                  const char *path);
/*
 * coexctl_load_pubkey - a public key file: a PEM public or private key, or
 * the DNS record (also as a zone line); caller owns the key
 * (dkim_pubkey_free). NULL with err[0] == '\0' when the file could not be
 * read (reported), NULL with the reason in err when the key is refused.
 */
struct dkim_pubkey *coexctl_load_pubkey(const char *cmd, const char *domain, const char *selector,
                                        const char *path, char *err, size_t errlen);
/*
 * coexctl_write_message - the new fields (head), then the message, to
 * standard output; 0, or -1 reported under cmd (e.g. "dkim sign")
 */
int coexctl_write_message(const char *cmd, const struct buf *head, const struct buf *msg) WUR;
/* coexctl_parse_ll - a non-negative decimal number, the whole of s; 0 or -1 */
int coexctl_parse_ll(const char *s, long long *out) WUR;

#endif
