/*
 * dnsmsg - DNS messages for TXT lookups: build a query, parse the response.
 *
 * Implements RFC 1035 §4.1 (header, question, resource records), §4.1.4
 * (name compression), §3.3.14 (TXT: one or more character-strings), RFC 6891
 * §6 (the EDNS0 OPT pseudo-RR, UDP payload size DNSMSG_UDP_PAYLOAD as DNS
 * Flag Day 2020 suggests), RFC 2308 §3/§5 (NXDOMAIN vs NODATA, the negative
 * TTL from the SOA of the authority section), RFC 4343 (names compare ASCII
 * case-insensitively), RFC 6604 (the RCODE of a CNAME chain belongs to its
 * last name) and RFC 6376 §3.6.2.2 (the character-strings of one TXT RR are
 * joined without separator).
 *
 * Pure: bytes in, bytes out; no sockets, no clocks. Every read is
 * bounds-checked against the packet; compression pointers must point
 * strictly backwards (a loop is impossible) and are counted as well.
 *
 * Does not: validate DNSSEC, use the extended RCODE of the OPT RR, or keep
 * any record type other than TXT (CNAMEs are followed, SOA read for its TTL).
 */
#ifndef COEX_DNSMSG_H
#define COEX_DNSMSG_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define DNSMSG_NAME_MAX 253      /* presentation form, without the final dot */
#define DNSMSG_WIRE_NAME_MAX 255 /* RFC 1035 §3.1: the wire form, root label included */
#define DNSMSG_LABEL_MAX 63      /* RFC 1035 §2.3.4 */
#define DNSMSG_UDP_PAYLOAD 1232  /* EDNS0 UDP payload size we advertise */
#define DNSMSG_QUERY_MAX 300     /* header + question (name <= 255) + OPT RR */
#define DNSMSG_PACKET_MAX 65535  /* the largest message (TCP length prefix) */
#define DNSMSG_CNAME_MAX 8       /* CNAMEs followed inside one answer */
#define DNSMSG_POINTERS_MAX 32   /* compression pointers in one name */
#define DNSMSG_TXT_MAX 16        /* TXT RRs kept from one answer; more are ignored */
#define DNSMSG_TEXT_LIMIT ((size_t)DNSMSG_PACKET_MAX + DNSMSG_TXT_MAX) /* joined text + NULs */

#define DNSMSG_TYPE_CNAME 5
#define DNSMSG_TYPE_SOA 6
#define DNSMSG_TYPE_TXT 16
#define DNSMSG_TYPE_OPT 41
#define DNSMSG_CLASS_IN 1

enum dnsmsg_rcode {
    DNSMSG_RCODE_NOERROR = 0,
    DNSMSG_RCODE_FORMERR = 1,
    DNSMSG_RCODE_SERVFAIL = 2,
    DNSMSG_RCODE_NXDOMAIN = 3,
    DNSMSG_RCODE_NOTIMP = 4,
    DNSMSG_RCODE_REFUSED = 5,
};

/* what a response says about the question */
enum dnsmsg_result {
    DNSMSG_ANSWER,    /* NOERROR with TXT RRs for the (final) name: count >= 1 */
    DNSMSG_NODATA,    /* NOERROR, the name exists but has no TXT RR */
    DNSMSG_NXDOMAIN,  /* the (final) name does not exist */
    DNSMSG_SERVFAIL,  /* RCODE SERVFAIL */
    DNSMSG_REFUSED,   /* RCODE REFUSED */
    DNSMSG_RCODE,     /* any other RCODE (FORMERR, NOTIMP, ...): see rcode */
    DNSMSG_TRUNCATED, /* TC set: ask again over TCP; nothing else was read */
    DNSMSG_MISMATCH,  /* not the response to this query (ID, QR, opcode, question): ignore it */
    DNSMSG_MALFORMED, /* the response to this query, but it cannot be read */
};

/* the parsed response; dnsmsg_answer_init before use, dnsmsg_answer_cleanup after */
struct dnsmsg_answer {
    enum dnsmsg_result result;
    int rcode;                   /* the header RCODE (when the question matched) */
    uint32_t ttl;                /* ANSWER: the smallest TTL of the CNAMEs and TXT RRs used */
    int have_neg_ttl;            /* NXDOMAIN/NODATA: an SOA was in the authority section */
    uint32_t neg_ttl;            /* then: min(SOA TTL, SOA MINIMUM) (RFC 2308 §5) */
    size_t count;                /* TXT RRs kept, at most DNSMSG_TXT_MAX */
    size_t offs[DNSMSG_TXT_MAX]; /* each RR's joined strings start at text.data + offs[i] */
    size_t lens[DNSMSG_TXT_MAX]; /* ... and are lens[i] bytes long (NUL-terminated too) */
    struct buf text;             /* owned */
    char why[96];                /* MALFORMED, MISMATCH: a short reason */
};

/*
 * dnsmsg_name_check - 0 when name (a C string, borrowed) can be queried:
 * labels of 1..DNSMSG_LABEL_MAX bytes, DNSMSG_NAME_MAX in all, no empty
 * label (one final dot allowed), printable ASCII other than space, '"' and
 * '\\' (a U-label must be converted to its A-label first); -1 otherwise
 */
int dnsmsg_name_check(const char *name) WUR;

/*
 * dnsmsg_build_query - a TXT/IN query for name with ID id, RD=1, and with
 * edns an OPT RR (UDP payload DNSMSG_UDP_PAYLOAD, no options), into
 * out[0..max) (max >= DNSMSG_QUERY_MAX is always enough); *len set.
 * -1 when the name fails dnsmsg_name_check or out is too small.
 */
int dnsmsg_build_query(const char *name, uint16_t id, int edns, unsigned char *out, size_t max,
                       size_t *len) WUR;

/* dnsmsg_answer_init - an empty answer */
void dnsmsg_answer_init(struct dnsmsg_answer *a);
/* dnsmsg_answer_cleanup - free the text; the answer may be initialised again */
void dnsmsg_answer_cleanup(struct dnsmsg_answer *a);

/*
 * dnsmsg_parse_txt - read pkt[0..len) (borrowed) as the response to the TXT
 * query for name (borrowed, as given to dnsmsg_build_query) with ID id.
 * Fills *a (its earlier contents are dropped) and returns a->result.
 * CNAMEs in the answer section are followed from the question name, up to
 * DNSMSG_CNAME_MAX, in whatever order they come; the TXT RRs of the final
 * name are kept, each RR's character-strings joined.
 */
enum dnsmsg_result dnsmsg_parse_txt(const unsigned char *pkt, size_t len, uint16_t id,
                                    const char *name, struct dnsmsg_answer *a);

/* dnsmsg_result_name - "answer", "nodata", "nxdomain", "servfail", ... */
const char *dnsmsg_result_name(enum dnsmsg_result r);

#endif
