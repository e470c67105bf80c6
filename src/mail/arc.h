/*
 * arc - Authenticated Received Chain (RFC 8617): validate the chain a
 * message arrived with, and add coex's own ARC set after rewriting and DKIM
 * signing, so that a receiver that trusts coex as a sealer (Microsoft 365:
 * Set-ArcConfig -ArcTrustedSealers) can rely on the results coex recorded.
 *
 * Implements RFC 8617 §4.1 (the three fields and their tags, i= 1..50),
 * §4.1.3 (the ARC-Seal signs the ARC sets only, relaxed header
 * canonicalisation, no body hash), §5.1 (sealing: no new set after a
 * cv=fail seal or past i=50), §5.1.1 (the fields hashed by a seal, in
 * increasing instance order, AAR, AMS, AS within a set), §5.1.2 (a cv=fail
 * seal covers only its own set), §5.2 (validation: structure, the newest
 * AMS, every AS; steps 5-7, oldest-pass, are optional and not done), and
 * RFC 8601 (the Authentication-Results payload of the AAR).
 *
 * The cryptography is DKIM's (src/mail/dkim*): the AMS is a DKIM signature
 * under another name, the AS a DKIM signature over the ARC fields.
 *
 * Pure: no files, no DNS, no clock (keys and the time are passed in).
 * Seals with rsa-sha256 only: dkimpy (python3-dkim 1.1.4) accepts nothing
 * else in ARC fields, and an Ed25519 seal would be a broken chain for it.
 * The validator accepts what dkim_verify accepts (rsa-sha256,
 * ed25519-sha256).
 *
 * Threads: a struct arc_sealer is used by one thread at a time (like a
 * dkim_signer: make one per worker); struct arc_chain is plain data;
 * arc_chain_validate and arc_results_text keep no state.
 */
#ifndef COEX_ARC_H
#define COEX_ARC_H

#include <stddef.h>

#include "buf.h"
#include "dkim.h"

#define LIMIT_ARC_SETS 50      /* RFC 8617 §4.2.1: i= is 1..50 */
#define LIMIT_ARC_FIELD 16384  /* one ARC field, folded (an AAR can be long) */
#define LIMIT_ARC_REASON 160   /* struct arc_chain reason */
#define LIMIT_ARC_RESULTS 8192 /* the resinfo text of an AAR */

/* RFC 8617 §4.1.3 cv=, and the result of a validation (§5.2) */
enum arc_cv { ARC_CV_NONE, ARC_CV_PASS, ARC_CV_FAIL };

/* the validation of the chain that arrived, RFC 8617 §5.2 */
struct arc_chain {
    /* none: no ARC fields at all */
    enum arc_cv cv;
    /* highest i= present (0 when none); the new set is instance+1 */
    int instance;
    /* 0: do not add a set (the newest seal says cv=fail, or i would pass 50) */
    int sealable;
    /* why fail ("" on pass and none), for logs and the AAR comment */
    char reason[LIMIT_ARC_REASON];
    /* d= of the newest ARC-Seal when it is a domain name; may be empty */
    char last_domain[LIMIT_DKIM_NAME + 1];
};

/*
 * arc_chain_validate - RFC 8617 §5.2 over msg[0..len) (borrowed, the whole
 * message, CRLF line ends), with the public keys keys[0..nkeys) (borrowed;
 * as for dkim_verify: matched by d= and s=; a missing key makes the chain
 * fail with reason "no key ..."). now: 0 does not check time, else an AMS
 * whose x= is before now fails. Fills *out; -1 only when msg has no header
 * block (then *out says fail, not sealable).
 */
int arc_chain_validate(const char *msg, size_t len, struct dkim_pubkey *const *keys, size_t nkeys,
                       long long now, struct arc_chain *out) WUR;

/*
 * arc_chain_validate_memo - arc_chain_validate with the AMS body hash taken
 * from and kept in memo (see dkim_verify_memo: the same memo, for the same
 * message, hashes the body once for DKIM and ARC)
 */
int arc_chain_validate_memo(const char *msg, size_t len, struct dkim_pubkey *const *keys,
                            size_t nkeys, long long now, struct dkim_body_memo *memo,
                            struct arc_chain *out) WUR;

struct arc_sealer;

/*
 * arc_sealer_new - a sealer signing with key (borrowed: it must outlive the
 * sealer; rsa-sha256 only, see above; d= and s= of the AMS and AS are the
 * key's). opts (copied; NULL: defaults): only sign_headers is used, as the
 * h= list of the AMS (lower-cased, in order, no automatic oversigning;
 * arc-seal may not be in it, RFC 8617 §4.1.2); canonicalisation is always
 * relaxed/relaxed and there is no x=. The default h= list is DKIM's (from
 * oversigned, see dkim_sign_header) plus every DKIM-Signature field present
 * (RFC 8617 §4.1.2: the AMS SHOULD cover them). Caller owns the result.
 */
struct arc_sealer *arc_sealer_new(struct dkim_key *key, const struct dkim_opts *opts, char *err,
                                  size_t errlen);
/* arc_sealer_free - release; NULL does nothing */
void arc_sealer_free(struct arc_sealer *s);

/*
 * arc_seal - append the three fields of the new set (i = chain->instance+1)
 * to out, each folded and CRLF-terminated. They are generated in the order
 * of RFC 8617 §5.1 step 3, AAR, then AMS, then AS, each going on top of the
 * one before, so out reads ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results from top to bottom (as Gmail, Exchange Online
 * and dkimpy write them); the caller puts out on top of hdr.
 * hdr[0..len) (borrowed): the header block exactly as it will be sent,
 * including the earlier ARC sets and coex's fresh DKIM-Signature fields.
 * body_hash: the relaxed body hash of the body. chain: the validation of
 * the chain in hdr (arc_chain_validate); the new seal's cv= is chain->cv,
 * and a cv=fail seal covers only its own set (§5.1.2; with instance 0, ARC
 * fields without a readable i= arrived, it is i=1 cv=fail). authserv_id: the
 * AAR's authserv-id (a token: no white space, ";", "(", ")", quotes or
 * controls). results: the resinfo text after "authserv-id;" (one line, no
 * CR or LF; see arc_results_text). now: t=. -1 with err when the chain is
 * not sealable, an argument is malformed (hdr starting with white space
 * included: it would continue the AAR), a limit is reached (more than
 * LIMIT_DKIM_SIGN_HEADERS names to sign, a field past LIMIT_ARC_FIELD) or
 * signing fails; out is then left as it was.
 */
int arc_seal(struct arc_sealer *s, const char *hdr, size_t len,
             const struct dkim_body_hash *body_hash, const struct arc_chain *chain,
             const char *authserv_id, const char *results, long long now, struct buf *out,
             char *err, size_t errlen) WUR;

/*
 * arc_authserv_id_ok - 1 when s can be the AAR's authserv-id as arc_seal
 * writes it, unquoted: 1..255 letters, digits, ".", "-", "_" (a subset of
 * RFC 8601 §2.5's token); configuration checks use this same rule
 */
int arc_authserv_id_ok(const char *s);

/* arc_cv_name - "none", "pass", "fail" */
const char *arc_cv_name(enum arc_cv cv);

/*
 * arc_results_text - append RFC 8601 resinfo text for an AAR (and for the
 * caller's own Authentication-Results field) to out, without the
 * authserv-id: one "dkim=RESULT [(reason)] header.d=D header.s=S
 * header.b=B" per r[0..n) (n == 0: "dkim=none"), then "arc=RESULT
 * (comment)" from chain (NULL: no arc= part), joined by "; ".
 * RESULT is pass, fail, neutral or permerror from r[i].status, unless
 * override is not NULL and override[i] is not NULL: then override[i], one of
 * none, pass, fail, policy, neutral, temperror, permerror (RFC 8601 §2.7.1;
 * a caller turns DKIM_NEUTRAL, "no key given", into temperror or permerror
 * from its DNS answer). Reasons go into comments with "(", ")" and "\"
 * replaced; a d= or s= that is not a domain name is left out rather than
 * quoted. -1 on a bad override word or when out is full (out then as it was).
 */
int arc_results_text(const struct dkim_result *r, size_t n, const char *const *override,
                     const struct arc_chain *chain, struct buf *out) WUR;

#endif
