/*
 * dnsmsg - build TXT queries and parse their responses (RFC 1035, RFC 6891
 * EDNS0, RFC 2308 negative answers, RFC 6376 §3.6.2.2 joined strings).
 *
 * A response is trusted only as far as it proves to be ours: anything that
 * goes wrong before the ID, QR, opcode and the echoed question have matched
 * is a MISMATCH (the caller ignores it and keeps waiting, as RFC 5452 §9.1
 * asks), anything after that is MALFORMED. Names are read into their wire
 * form folded to lower case, so comparing two names is one memcmp.
 *
 * Does not: keep RR types other than TXT, look at the additional section, or
 * check DNSSEC.
 */
#include "dnsmsg.h"

#include <stdio.h>
#include <string.h>

#define DNSMSG_HEADER_LEN 12
#define DNSMSG_RR_FIXED 10      /* type, class, TTL, RDLENGTH after the owner name */
#define DNSMSG_QUESTION_FIXED 4 /* QTYPE, QCLASS after the name */
#define DNSMSG_OPT_LEN 11       /* root owner, type, class, TTL, RDLENGTH 0 */
#define DNSMSG_SOA_FIXED 20     /* SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM */
#define DNSMSG_FLAG_QR 0x8000u
#define DNSMSG_FLAG_TC 0x0200u
#define DNSMSG_FLAG_RD 0x0100u
#define DNSMSG_OPCODE_MASK 0x7800u
#define DNSMSG_RCODE_MASK 0x000fu
#define DNSMSG_TTL_MAX 0x7fffffffu /* RFC 2181 §8: a TTL with the top bit set means 0 */

/* a resource record found in a section */
struct dnsmsg_rr {
    unsigned char owner[DNSMSG_WIRE_NAME_MAX];
    size_t owner_len;
    uint16_t type, class;
    uint32_t ttl;
    size_t rdata_off, rdata_len;
};

/* dnsmsg_get16 - big-endian 16 bits at p */
static uint16_t dnsmsg_get16(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

/* dnsmsg_get32 - big-endian 32 bits at p */
static uint32_t dnsmsg_get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* dnsmsg_put16 - big-endian 16 bits to p */
static void dnsmsg_put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* dnsmsg_name_check - can this name be put in a query? */
int dnsmsg_name_check(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > DNSMSG_NAME_MAX)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return -1;
            label = 0;
            continue;
        }
        if (c <= ' ' || c >= 0x7f || c == '"' || c == '\\' || ++label > DNSMSG_LABEL_MAX)
            return -1;
    }
    return label == 0 ? -1 : 0;
}

/*
 * dnsmsg_name_wire - the wire form of a checked name, lower case, root label
 * included, into out[0..DNSMSG_WIRE_NAME_MAX); its length
 */
static size_t dnsmsg_name_wire(const char *name, unsigned char *out)
{
    size_t len = strlen(name), w = 0;
    if (len > 0 && name[len - 1] == '.')
        len--;
    for (size_t start = 0; start < len;) {
        const char *dot = memchr(name + start, '.', len - start);
        size_t end = dot ? (size_t)(dot - name) : len;
        out[w++] = (unsigned char)(end - start);
        for (size_t i = start; i < end; i++)
            out[w++] = util_lower((unsigned char)name[i]);
        start = end + 1;
    }
    out[w++] = 0;
    return w;
}

/* dnsmsg_build_query - header, question, optional OPT RR */
int dnsmsg_build_query(const char *name, uint16_t id, int edns, unsigned char *out, size_t max,
                       size_t *len)
{
    unsigned char wire[DNSMSG_WIRE_NAME_MAX];
    if (dnsmsg_name_check(name) < 0)
        return -1;
    size_t wire_len = dnsmsg_name_wire(name, wire);
    size_t need =
        DNSMSG_HEADER_LEN + wire_len + DNSMSG_QUESTION_FIXED + (edns ? DNSMSG_OPT_LEN : 0);
    if (need > max)
        return -1;
    memset(out, 0, need);
    dnsmsg_put16(out, id);
    dnsmsg_put16(out + 2, DNSMSG_FLAG_RD);
    dnsmsg_put16(out + 4, 1);               /* QDCOUNT */
    dnsmsg_put16(out + 10, edns ? 1u : 0u); /* ARCOUNT */
    /* lower case: the response's question is compared case-insensitively anyway */
    memcpy(out + DNSMSG_HEADER_LEN, wire, wire_len);
    size_t p = DNSMSG_HEADER_LEN + wire_len;
    dnsmsg_put16(out + p, DNSMSG_TYPE_TXT);
    dnsmsg_put16(out + p + 2, DNSMSG_CLASS_IN);
    p += DNSMSG_QUESTION_FIXED;
    if (edns) { /* RFC 6891 §6.1.2: root owner, type OPT, CLASS = payload size, TTL 0, RDLEN 0 */
        out[p] = 0;
        dnsmsg_put16(out + p + 1, DNSMSG_TYPE_OPT);
        dnsmsg_put16(out + p + 3, DNSMSG_UDP_PAYLOAD);
        p += DNSMSG_OPT_LEN;
    }
    *len = p;
    return 0;
}

/*
 * dnsmsg_read_name - the name at pkt[off..] into out (wire form, lower
 * case): 0 with *out_len and *next (the offset after the name where it
 * started), or -1. Every pointer must point below the start of the run of
 * labels it ends (so the walk always moves backwards and ends), and there
 * are at most DNSMSG_POINTERS_MAX of them.
 */
static int dnsmsg_read_name(const unsigned char *pkt, size_t len, size_t off, unsigned char *out,
                            size_t *out_len, size_t *next)
{
    size_t pos = off, run_start = off, w = 0, pointers = 0;
    int jumped = 0;
    for (;;) {
        if (pos >= len)
            return -1;
        unsigned c = pkt[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len || ++pointers > DNSMSG_POINTERS_MAX)
                return -1;
            size_t target = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
            if (target >= run_start)
                return -1;
            if (!jumped)
                *next = pos + 2;
            jumped = 1;
            pos = run_start = target;
            continue;
        }
        if (c & 0xc0) /* 01 and 10: extended label types, obsolete (RFC 6891 §5) */
            return -1;
        if (w + 1 + c > DNSMSG_WIRE_NAME_MAX || pos + 1 + c > len)
            return -1;
        out[w++] = (unsigned char)c;
        if (c == 0)
            break;
        for (size_t i = 0; i < c; i++)
            out[w++] = util_lower(pkt[pos + 1 + i]);
        pos += 1 + c;
    }
    if (!jumped)
        *next = pos + 1;
    *out_len = w;
    return 0;
}

/* dnsmsg_read_rr - the RR at *pos; *pos moves past it. 0 or -1 */
static int dnsmsg_read_rr(const unsigned char *pkt, size_t len, size_t *pos, struct dnsmsg_rr *rr)
{
    size_t p;
    if (dnsmsg_read_name(pkt, len, *pos, rr->owner, &rr->owner_len, &p) < 0 ||
        p + DNSMSG_RR_FIXED > len)
        return -1;
    rr->type = dnsmsg_get16(pkt + p);
    rr->class = dnsmsg_get16(pkt + p + 2);
    rr->ttl = dnsmsg_get32(pkt + p + 4);
    if (rr->ttl > DNSMSG_TTL_MAX)
        rr->ttl = 0;
    rr->rdata_len = dnsmsg_get16(pkt + p + 8);
    rr->rdata_off = p + DNSMSG_RR_FIXED;
    if (rr->rdata_off + rr->rdata_len > len)
        return -1;
    *pos = rr->rdata_off + rr->rdata_len;
    return 0;
}

/* dnsmsg_fail - set the result and the reason */
static enum dnsmsg_result dnsmsg_fail(struct dnsmsg_answer *a, enum dnsmsg_result r,
                                      const char *why)
{
    a->result = r;
    a->count = 0;
    snprintf(a->why, sizeof(a->why), "%s", why);
    return r;
}

/* dnsmsg_answer_init - empty */
void dnsmsg_answer_init(struct dnsmsg_answer *a)
{
    memset(a, 0, sizeof(*a));
    a->result = DNSMSG_MALFORMED;
    buf_init(&a->text, DNSMSG_TEXT_LIMIT);
}

/* dnsmsg_answer_cleanup - free the text */
void dnsmsg_answer_cleanup(struct dnsmsg_answer *a)
{
    buf_cleanup(&a->text);
}

/* dnsmsg_txt_add - join the character-strings of one TXT RR into a->text */
static int dnsmsg_txt_add(const unsigned char *pkt, const struct dnsmsg_rr *rr,
                          struct dnsmsg_answer *a)
{
    size_t p = rr->rdata_off, end = rr->rdata_off + rr->rdata_len, start = a->text.len;
    while (p < end) {
        size_t n = pkt[p];
        if (p + 1 + n > end)
            return -1;
        if (buf_append(&a->text, pkt + p + 1, n) < 0)
            return -1;
        p += 1 + n;
    }
    if (a->count == DNSMSG_TXT_MAX) { /* checked, not kept */
        a->text.len = start;
        a->text.data[start] = '\0';
        return 0;
    }
    if (buf_append(&a->text, "", 1) < 0)
        return -1;
    a->offs[a->count] = start;
    a->lens[a->count++] = a->text.len - 1 - start;
    return 0;
}

/* dnsmsg_soa_ttl - RFC 2308 §5: min(TTL of the SOA RR, its MINIMUM field) */
static int dnsmsg_soa_ttl(const unsigned char *pkt, const struct dnsmsg_rr *rr, uint32_t *ttl)
{
    unsigned char name[DNSMSG_WIRE_NAME_MAX];
    size_t name_len, p = rr->rdata_off, end = rr->rdata_off + rr->rdata_len;
    for (int i = 0; i < 2; i++) /* MNAME, RNAME */
        if (dnsmsg_read_name(pkt, end, p, name, &name_len, &p) < 0)
            return -1;
    if (p + DNSMSG_SOA_FIXED != end)
        return -1;
    uint32_t minimum = dnsmsg_get32(pkt + p + DNSMSG_SOA_FIXED - 4);
    if (minimum > DNSMSG_TTL_MAX)
        minimum = 0;
    *ttl = rr->ttl < minimum ? rr->ttl : minimum;
    return 0;
}

/* dnsmsg_parse_txt - see dnsmsg.h */
enum dnsmsg_result dnsmsg_parse_txt(const unsigned char *pkt, size_t len, uint16_t id,
                                    const char *name, struct dnsmsg_answer *a)
{
    unsigned char want[DNSMSG_WIRE_NAME_MAX], qname[DNSMSG_WIRE_NAME_MAX];
    unsigned char current[DNSMSG_WIRE_NAME_MAX], target[DNSMSG_WIRE_NAME_MAX];
    size_t want_len, qname_len, current_len, target_len, pos;
    struct dnsmsg_rr rr;

    buf_reset(&a->text);
    a->count = 0;
    a->ttl = 0;
    a->rcode = 0;
    a->have_neg_ttl = 0;
    a->neg_ttl = 0;
    a->why[0] = '\0';
    if (dnsmsg_name_check(name) < 0)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "bad query name");
    want_len = dnsmsg_name_wire(name, want);

    /* is it ours? */
    if (len < DNSMSG_HEADER_LEN)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "shorter than a DNS header");
    unsigned flags = dnsmsg_get16(pkt + 2);
    unsigned qdcount = dnsmsg_get16(pkt + 4), ancount = dnsmsg_get16(pkt + 6),
             nscount = dnsmsg_get16(pkt + 8);
    if (dnsmsg_get16(pkt) != id)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "wrong ID");
    if (!(flags & DNSMSG_FLAG_QR) || (flags & DNSMSG_OPCODE_MASK) != 0)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "not a response to a standard query");
    a->rcode = (int)(flags & DNSMSG_RCODE_MASK);
    if (qdcount == 0 && a->rcode == DNSMSG_RCODE_FORMERR) /* a server that could not read it */
        return dnsmsg_fail(a, DNSMSG_RCODE, "FORMERR without a question");
    if (qdcount != 1)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "not one question");
    pos = DNSMSG_HEADER_LEN;
    if (dnsmsg_read_name(pkt, len, pos, qname, &qname_len, &pos) < 0 ||
        pos + DNSMSG_QUESTION_FIXED > len)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "unreadable question");
    if (qname_len != want_len || memcmp(qname, want, want_len) != 0 ||
        dnsmsg_get16(pkt + pos) != DNSMSG_TYPE_TXT ||
        dnsmsg_get16(pkt + pos + 2) != DNSMSG_CLASS_IN)
        return dnsmsg_fail(a, DNSMSG_MISMATCH, "another question");
    pos += DNSMSG_QUESTION_FIXED;

    /* ours: what does it say? */
    if (flags & DNSMSG_FLAG_TC)
        return dnsmsg_fail(a, DNSMSG_TRUNCATED, "truncated (TC)");
    switch (a->rcode) {
    case DNSMSG_RCODE_NOERROR:
    case DNSMSG_RCODE_NXDOMAIN:
        break;
    case DNSMSG_RCODE_SERVFAIL:
        return dnsmsg_fail(a, DNSMSG_SERVFAIL, "SERVFAIL");
    case DNSMSG_RCODE_REFUSED:
        return dnsmsg_fail(a, DNSMSG_REFUSED, "REFUSED");
    default:
        snprintf(a->why, sizeof(a->why), "RCODE %d", a->rcode);
        a->result = DNSMSG_RCODE;
        return a->result;
    }

    /* every RR of the answer and authority sections must be readable */
    size_t answer_off = pos;
    for (unsigned i = 0; i < ancount + nscount; i++) {
        if (dnsmsg_read_rr(pkt, len, &pos, &rr) < 0)
            return dnsmsg_fail(a, DNSMSG_MALFORMED, "truncated or malformed record");
        if (i >= ancount && rr.type == DNSMSG_TYPE_SOA && rr.class == DNSMSG_CLASS_IN &&
            !a->have_neg_ttl && dnsmsg_soa_ttl(pkt, &rr, &a->neg_ttl) == 0)
            a->have_neg_ttl = 1;
    }

    /* follow CNAMEs from the question name, in any order (RFC 1034 §3.6.2) */
    memcpy(current, qname, qname_len);
    current_len = qname_len;
    uint32_t ttl = DNSMSG_TTL_MAX;
    for (size_t hops = 0;; hops++) {
        int found = 0;
        pos = answer_off;
        for (unsigned i = 0; i < ancount && !found; i++) {
            size_t next;
            if (dnsmsg_read_rr(pkt, len, &pos, &rr) < 0) /* checked above */
                return dnsmsg_fail(a, DNSMSG_MALFORMED, "malformed record");
            if (rr.type != DNSMSG_TYPE_CNAME || rr.class != DNSMSG_CLASS_IN ||
                rr.owner_len != current_len || memcmp(rr.owner, current, current_len) != 0)
                continue;
            if (dnsmsg_read_name(pkt, rr.rdata_off + rr.rdata_len, rr.rdata_off, target,
                                 &target_len, &next) < 0 ||
                next != rr.rdata_off + rr.rdata_len)
                return dnsmsg_fail(a, DNSMSG_MALFORMED, "malformed CNAME");
            found = 1;
        }
        if (!found)
            break;
        if (hops == DNSMSG_CNAME_MAX)
            return dnsmsg_fail(a, DNSMSG_MALFORMED, "CNAME chain too long or a loop");
        memcpy(current, target, target_len);
        current_len = target_len;
        if (rr.ttl < ttl)
            ttl = rr.ttl;
    }

    /* the TXT RRs of the final name */
    pos = answer_off;
    for (unsigned i = 0; i < ancount; i++) {
        if (dnsmsg_read_rr(pkt, len, &pos, &rr) < 0)
            return dnsmsg_fail(a, DNSMSG_MALFORMED, "malformed record");
        if (rr.type != DNSMSG_TYPE_TXT || rr.class != DNSMSG_CLASS_IN ||
            rr.owner_len != current_len || memcmp(rr.owner, current, current_len) != 0)
            continue;
        if (dnsmsg_txt_add(pkt, &rr, a) < 0)
            return dnsmsg_fail(a, DNSMSG_MALFORMED, "malformed TXT record");
        if (rr.ttl < ttl)
            ttl = rr.ttl;
    }
    if (a->rcode == DNSMSG_RCODE_NXDOMAIN) { /* RFC 6604: about the last name of the chain */
        a->count = 0;
        buf_reset(&a->text);
        a->result = DNSMSG_NXDOMAIN;
        return a->result;
    }
    if (a->count == 0) {
        a->result = DNSMSG_NODATA;
        return a->result;
    }
    a->ttl = ttl;
    a->result = DNSMSG_ANSWER;
    return a->result;
}

/* dnsmsg_result_name - for logs and tests */
const char *dnsmsg_result_name(enum dnsmsg_result r)
{
    switch (r) {
    case DNSMSG_ANSWER:
        return "answer";
    case DNSMSG_NODATA:
        return "nodata";
    case DNSMSG_NXDOMAIN:
        return "nxdomain";
    case DNSMSG_SERVFAIL:
        return "servfail";
    case DNSMSG_REFUSED:
        return "refused";
    case DNSMSG_RCODE:
        return "rcode";
    case DNSMSG_TRUNCATED:
        return "truncated";
    case DNSMSG_MISMATCH:
        return "mismatch";
    case DNSMSG_MALFORMED:
        return "malformed";
    }
    return "?";
}
