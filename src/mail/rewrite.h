/*
 * rewrite - rewrite the addresses of enabled mailbox pairs in a header block
 * and in the envelope, in one direction.
 *
 * Fields: From, Sender, Reply-To, To, Cc, Bcc, Resent-From, Resent-Sender,
 * Resent-To, Resent-Cc, Resent-Bcc, Disposition-Notification-To,
 * Return-Receipt-To. Only the addr-spec bytes of a matching mailbox change
 * (and a display name that is exactly the old address, as Outlook writes
 * it); every other byte is copied. A message with nothing to rewrite comes out
 * byte-identical; rewriting twice in one direction changes nothing more.
 *
 * Matching order for one address: exception list (address, base address of a
 * sub-address, domain) -> mailbox pair (disabled pair: leave it, no fallback)
 * -> sub-address base pair -> domain pair.
 *
 * Does not: touch Subject, the body or any other field; decode RFC 2047; do
 * I/O. An unparseable mailbox is left untouched and reported in the trace.
 */
#ifndef COEX_REWRITE_H
#define COEX_REWRITE_H

#include <stddef.h>

#include "addr.h"
#include "buf.h"
#include "dir.h"

enum rewrite_direction {
    REWRITE_TO_SOURCE, /* target addresses become source addresses */
    REWRITE_TO_TARGET, /* source addresses become target addresses */
};

enum rewrite_rule {
    RULE_NONE,
    RULE_MAILBOX_PAIR,
    RULE_SUBADDRESS,   /* a sub-address of a mailbox pair (alexw+news@...) */
    RULE_DOMAIN_PAIR,
};

enum rewrite_event {
    EVENT_REWRITTEN,   /* old -> new */
    EVENT_UNPARSEABLE, /* a mailbox that could not be parsed; left untouched */
    EVENT_DISABLED,    /* a mailbox pair with address rewrite off; left untouched */
    EVENT_EXCEPTION,   /* on the exception list; left untouched */
};

struct rewrite_opts {
    enum rewrite_direction direction;
    const char *subaddress_separators; /* e.g. "+"; NULL or "" turns sub-addressing off */
};

struct rewrite_change {
    enum rewrite_event event;
    enum rewrite_rule rule;
    int display_name;              /* 1 when the change is in the display name */
    char field[64];                /* field name as written, or "MAIL FROM" / "RCPT TO" */
    char old_addr[LIMIT_ADDRESS];  /* for EVENT_UNPARSEABLE: the raw element (may be cut) */
    char new_addr[LIMIT_ADDRESS];
};

struct rewrite_trace {
    struct rewrite_change *changes; /* owned by the trace */
    size_t count, cap;
    int coexistence_off; /* 1 when the switch was off and nothing was rewritten */
};

/* rewrite_trace_init / _cleanup - an empty trace; cleanup frees the changes */
void rewrite_trace_init(struct rewrite_trace *t);
void rewrite_trace_cleanup(struct rewrite_trace *t);
/* rewrite_rule_name - "mailbox-pair", "subaddress", "domain-pair" */
const char *rewrite_rule_name(enum rewrite_rule rule);
/* rewrite_direction_parse - "to-source" / "to-target"; -1 for anything else */
int rewrite_direction_parse(const char *s, enum rewrite_direction *out);

/*
 * rewrite_address - map one bare address (local@domain, borrowed) in the
 * direction. Returns 1 with the new address in out (NUL-terminated) and the
 * rule, 0 when it stays (*event says why when not just "no match": EVENT_DISABLED,
 * EVENT_EXCEPTION, else EVENT_REWRITTEN), -1 when the result would not fit.
 * Ignores the coexistence switch: the caller decides.
 */
int rewrite_address(const struct dir_snapshot *d, const struct rewrite_opts *o, const char *addr,
                    size_t len, char *out, size_t outsize, enum rewrite_rule *rule,
                    enum rewrite_event *event);

/*
 * rewrite_header - rewrite the header block hdr[0..len) (borrowed; the body
 * is not passed) and append the result to out. trace may be NULL. When the
 * coexistence switch is off the block is copied unchanged. Returns 0, or -1
 * when out reaches its limit (reason in err).
 */
int rewrite_header(const struct dir_snapshot *d, const struct rewrite_opts *o, const char *hdr,
                   size_t len, struct buf *out, struct rewrite_trace *trace, char *err,
                   size_t errlen);

/*
 * rewrite_envelope - rewrite one envelope address (MAIL FROM or RCPT TO,
 * without angle brackets; "" is the null sender and stays). field names it in
 * the trace. Returns 1 rewritten (out filled), 0 unchanged (out holds the
 * input), -1 when the address is not a valid addr-spec or too long.
 */
int rewrite_envelope(const struct dir_snapshot *d, const struct rewrite_opts *o, const char *field,
                     const char *addr, size_t len, char *out, size_t outsize,
                     struct rewrite_trace *trace);

#endif
