/*
 * addr - RFC 5322 address-list / mailbox-list tokenizer (with RFC 6532 UTF-8).
 *
 * The parser works on a field body exactly as it arrived on the wire and
 * returns byte spans into it: for every mailbox the span of its addr-spec,
 * local part, domain and display name. The rewriter replaces exactly those
 * bytes and copies everything else, so comments, quoting, RFC 2047 encoded
 * words and folding stay byte-exact.
 *
 * Implements: RFC 5322 §3.4 (address, mailbox, group, angle-addr, addr-spec,
 * quoted-string, domain-literal, CFWS with nested comments), §4.4 obsolete
 * forms (obs-route, obs-local-part, obs-domain, obs-phrase, empty list
 * elements, CFWS inside an addr-spec), RFC 6532 §3.2 UTF-8 in atoms and
 * quoted strings.
 *
 * Does not: decode RFC 2047 words, validate UTF-8 sequences, or change any
 * byte. An element it cannot parse is reported with ADDR_F_BAD and its span,
 * and nothing else about it is trusted.
 */
#ifndef COEX_ADDR_H
#define COEX_ADDR_H

#include <stddef.h>

/* an address key (local@domain without CFWS) is at most this many bytes */
#define LIMIT_ADDRESS 512
/* tokens in one list element; a longer element is reported as bad */
#define LIMIT_ELEMENT_TOKENS 256

/* a span of bytes: input[off .. off+len) */
struct addr_span {
    size_t off;
    size_t len;
};

#define ADDR_F_ANGLE 0x01   /* name-addr or bare <addr-spec> */
#define ADDR_F_GROUP 0x02   /* a member of a group (display-name: ... ;) */
#define ADDR_F_ROUTE 0x04   /* obs-route before the addr-spec (<@relay:a@b>) */
#define ADDR_F_QUOTED 0x08  /* the local part has a quoted-string */
#define ADDR_F_LITERAL 0x10 /* the domain is a domain-literal */
#define ADDR_F_OBS 0x20     /* CFWS inside the addr-spec (obsolete syntax) */
#define ADDR_F_LAX_NAME 0x40 /* a bare "@" in the display name (Outlook's 'a@b' <a@b>) */
#define ADDR_F_BAD 0x80     /* unparseable element: only `whole` is set */

struct addr_mailbox {
    struct addr_span whole;  /* the list element without surrounding white space */
    struct addr_span name;   /* display name (phrase, quotes included); len 0 if none */
    struct addr_span spec;   /* addr-spec: local-part "@" domain */
    struct addr_span local;  /* local part */
    struct addr_span domain; /* domain */
    unsigned flags;          /* ADDR_F_* */
};

/*
 * addr_parse_list - tokenize an address-list or mailbox-list field body.
 * in[0..len) is borrowed (the field body after the colon, folding included).
 * Stores up to max mailboxes in out (caller owns) and returns how many
 * mailboxes the field holds; a return value above max means the rest were
 * not stored. Groups contribute their members; empty elements and empty
 * groups contribute nothing. Never fails: bad elements carry ADDR_F_BAD.
 */
size_t addr_parse_list(const char *in, size_t len, struct addr_mailbox *out, size_t max);

/*
 * addr_parse_list_general - addr_parse_list without its one-pass fast path for
 * the common forms; the results must be identical (the fuzzer checks it)
 */
size_t addr_parse_list_general(const char *in, size_t len, struct addr_mailbox *out, size_t max);

/*
 * addr_parse_spec - parse in[0..len) as exactly one addr-spec (an envelope
 * address or a directory entry: no display name, no angle brackets, no CFWS).
 * Returns 0 and fills out, or -1 when it is not a valid addr-spec.
 */
int addr_parse_spec(const char *in, size_t len, struct addr_mailbox *out);

/*
 * addr_key - write the mailbox's address as local@domain with CFWS removed and
 * a quoted local part unquoted when it is a plain dot-atom, for lookups and
 * traces. Case is kept. Returns the length (out is NUL-terminated) or -1 when
 * it does not fit in outsize or the mailbox is bad.
 */
int addr_key(const char *in, const struct addr_mailbox *m, char *out, size_t outsize);

#endif
