/*
 * keyfetch - the public keys a message's signatures need, fetched from DNS.
 *
 * Collects the distinct (d=, s=) pairs of the DKIM-Signature,
 * ARC-Message-Signature and ARC-Seal fields of a header block (RFC 6376
 * §3.5, RFC 8617 §4.1), looks up each "s._domainkey.d" TXT record through
 * dnstxt (RFC 6376 §3.6.2), and parses the answers with dkim_pubkey_new.
 * The outcome of each lookup follows RFC 6376 §6.1.2: a name with no record
 * (NXDOMAIN, NODATA), a record that does not parse and a revoked key (empty
 * p=) are permanent (KEYFETCH_NOKEY); a timeout or a server failure is
 * temporary. With several TXT records the first one that parses is used
 * (§3.6.2.2 lets the verifier choose).
 *
 * Used by coexd and `coexctl dkim verify --dns`; on the loop's thread.
 *
 * The ARC fields are collected first, with a budget of their own, so that
 * a message carrying many DKIM signatures cannot starve the chain of its
 * keys; then the DKIM-Signature fields.
 *
 * Does not: verify anything (dkim_verify and the ARC verifier do, with the
 * keys from keyfetch_keys), or look up more than LIMIT_KEYFETCH_ARC_PAIRS +
 * LIMIT_KEYFETCH_DKIM_PAIRS pairs.
 */
#ifndef COEX_KEYFETCH_H
#define COEX_KEYFETCH_H

#include <stddef.h>

#include "dkim.h"
#include "dnstxt.h"

#define LIMIT_KEYFETCH_ARC_PAIRS 16  /* distinct pairs of ARC-Seal/ARC-Message-Signature fields */
#define LIMIT_KEYFETCH_DKIM_PAIRS 16 /* and of DKIM-Signature fields, looked up per message */
#define LIMIT_KEYFETCH_PAIRS (LIMIT_KEYFETCH_ARC_PAIRS + LIMIT_KEYFETCH_DKIM_PAIRS)

enum keyfetch_status {
    KEYFETCH_OK,
    KEYFETCH_NOKEY,   /* NXDOMAIN, NODATA, unparsable or revoked record: a permanent error */
    KEYFETCH_TEMPFAIL, /* timeout, SERVFAIL, network, a malformed DNS response: try later */
    KEYFETCH_SKIPPED   /* not looked up: the message names more pairs than the limits */
};

struct keyfetch;

/* keyfetch_fn - every lookup is answered; kf is still the caller's to free */
typedef void keyfetch_fn(void *arg, struct keyfetch *kf);

/*
 * keyfetch_start - look up the keys of the signatures in hdr[0..hdr_len)
 * (the header block, borrowed during the call only) through r (borrowed:
 * it must outlive kf). Fields whose d= or s= cannot be read are skipped
 * (the verifier reports them); pairs compare case-insensitively. done(arg,
 * kf) runs once, from the loop, never from inside this call: also for a
 * header without signatures (on the next loop pass). NULL only when an
 * event cannot be made. Caller owns the result (keyfetch_cancel before done,
 * keyfetch_free after).
 */
struct keyfetch *keyfetch_start(struct dnstxt *r, const char *hdr, size_t hdr_len,
                                keyfetch_fn *done, void *arg) WUR;
/*
 * keyfetch_cancel - before done ran: no callback, every lookup cancelled,
 * all freed (the same as keyfetch_free, which may also be used); NULL ok
 */
void keyfetch_cancel(struct keyfetch *kf);
/* keyfetch_free - after done ran (done does not free kf); NULL does nothing */
void keyfetch_free(struct keyfetch *kf);

/*
 * keyfetch_keys - the keys found (one per pair with status KEYFETCH_OK),
 * ready for dkim_verify; *count set. Owned by kf and immutable: another
 * thread may read them until keyfetch_free.
 */
struct dkim_pubkey *const *keyfetch_keys(const struct keyfetch *kf, size_t *count);

/*
 * keyfetch_status - the outcome for domain and selector (ASCII
 * case-insensitive); *why (may be NULL) gets a reason borrowed from kf,
 * e.g. "no key for s._domainkey.d: no such name (NXDOMAIN)". A pair that
 * was not looked up is KEYFETCH_SKIPPED when a budget ran out, else (not in
 * the header, or not a valid DNS name) KEYFETCH_NOKEY.
 */
enum keyfetch_status keyfetch_status(const struct keyfetch *kf, const char *domain,
                                     const char *selector, const char **why);

/*
 * keyfetch_arc_tempfail - 1 when the lookup of a key that an ARC-Seal or
 * ARC-Message-Signature names failed temporarily (the chain cannot be
 * judged now), else 0
 */
int keyfetch_arc_tempfail(const struct keyfetch *kf);

/*
 * keyfetch_cache_clear - release the keys kept from earlier lookups
 * (KEYFETCH_CACHE_SLOTS of them, made from records seen before; keys still
 * held by a keyfetch stay valid). coexd and coexctl call it at the end.
 */
void keyfetch_cache_clear(void);

/* keyfetch_pair_count - the pairs collected from the header */
size_t keyfetch_pair_count(const struct keyfetch *kf);

#endif
