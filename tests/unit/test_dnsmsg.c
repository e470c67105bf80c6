/*
 * test_dnsmsg - the DNS TXT query builder and response parser over packets
 * built byte by byte: plain answers, several strings and several RRs,
 * CNAME chains (in any order, too long, a loop), compression (and pointer
 * loops, forward pointers), every truncation of a good packet, wrong ID /
 * question / QR / opcode, the RCODEs, NODATA vs NXDOMAIN with the RFC 2308
 * negative TTL, TC, minimum TTL, and the query name check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dnsmsg.h"

#define QNAME "sel._domainkey.example.com"
#define QID 0x4a7b
#define FLAGS_OK 0x8180 /* QR, RD, RA, NOERROR */
#define T_TXT 16
#define T_CNAME 5
#define T_SOA 6
#define T_A 1

/* --- a tiny packet writer ------------------------------------------------------------------ */

struct pkt {
    unsigned char b[8192];
    size_t len;
};

static void put8(struct pkt *p, unsigned v)
{
    p->b[p->len++] = (unsigned char)v;
}

static void put16(struct pkt *p, unsigned v)
{
    put8(p, v >> 8);
    put8(p, v & 0xff);
}

static void put32(struct pkt *p, uint32_t v)
{
    put16(p, v >> 16);
    put16(p, v & 0xffff);
}

/* put_name - "a.b.c" as labels, root included; "" is the root */
static void put_name(struct pkt *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        put8(p, (unsigned)n);
        memcpy(p->b + p->len, name, n);
        p->len += n;
        name += n + (dot ? 1 : 0);
    }
    put8(p, 0);
}

static void put_header(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an,
                       unsigned ns)
{
    p->len = 0;
    put16(p, id);
    put16(p, flags);
    put16(p, qd);
    put16(p, an);
    put16(p, ns);
    put16(p, 0);
}

static void put_question(struct pkt *p, const char *name, unsigned type)
{
    put_name(p, name);
    put16(p, type);
    put16(p, 1);
}

/* put_rr - RR head (owner NULL: a pointer to the question); returns where RDLENGTH goes */
static size_t put_rr(struct pkt *p, const char *owner, unsigned type, uint32_t ttl)
{
    if (owner)
        put_name(p, owner);
    else
        put16(p, 0xc00c); /* the question name */
    put16(p, type);
    put16(p, 1);
    put32(p, ttl);
    size_t at = p->len;
    put16(p, 0);
    return at;
}

/* end_rr - fill in RDLENGTH */
static void end_rr(struct pkt *p, size_t at)
{
    size_t n = p->len - at - 2;
    p->b[at] = (unsigned char)(n >> 8);
    p->b[at + 1] = (unsigned char)n;
}

/* put_txt - a TXT RR with strings separated by '|' in spec */
static void put_txt(struct pkt *p, const char *owner, uint32_t ttl, const char *spec)
{
    size_t at = put_rr(p, owner, T_TXT, ttl);
    for (const char *s = spec;;) {
        const char *bar = strchr(s, '|');
        size_t n = bar ? (size_t)(bar - s) : strlen(s);
        put8(p, (unsigned)n);
        memcpy(p->b + p->len, s, n);
        p->len += n;
        if (!bar)
            break;
        s = bar + 1;
    }
    end_rr(p, at);
}

static void put_cname(struct pkt *p, const char *owner, uint32_t ttl, const char *target)
{
    size_t at = put_rr(p, owner, T_CNAME, ttl);
    put_name(p, target);
    end_rr(p, at);
}

static void put_soa(struct pkt *p, uint32_t ttl, uint32_t minimum)
{
    size_t at = put_rr(p, "example.com", T_SOA, ttl);
    put_name(p, "ns.example.com");
    put_name(p, "hostmaster.example.com");
    put32(p, 1);
    put32(p, 3600);
    put32(p, 600);
    put32(p, 86400);
    put32(p, minimum);
    end_rr(p, at);
}

/* --- the packets --------------------------------------------------------------------------- */

static void pk_plain(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    put_txt(p, NULL, 300, "v=DKIM1; k=ed25519; p=abc");
}

static void pk_strings(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    put_txt(p, NULL, 300, "v=DKIM1; k=rsa; |p=MIIB|IjAN||Bg");
}

static void pk_two_rrs(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 3, 0);
    put_question(p, QNAME, T_TXT);
    put_txt(p, NULL, 300, "first");
    put_txt(p, "other.example.com", 5, "not ours");
    put_txt(p, QNAME, 200, "sec|ond");
}

static void pk_literal_owner_upper(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, "SEL._DomainKey.Example.COM", T_TXT);
    put_txt(p, "Sel._domainkey.EXAMPLE.com", 300, "x");
}

static void pk_cname_chain(struct pkt *p)
{
    /* out of order: the TXT first, then the second hop, then the first */
    put_header(p, QID, FLAGS_OK, 1, 3, 0);
    put_question(p, QNAME, T_TXT);
    put_txt(p, "key.provider.example", 900, "v=DKIM1; p=zz");
    put_cname(p, "hop.provider.example", 100, "key.provider.example");
    put_cname(p, NULL, 600, "hop.provider.example");
}

static void pk_cname_no_target(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 2, 0);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 600, "key.provider.example");
    put_txt(p, NULL, 300, "the old name's TXT does not count");
}

static void pk_cname_nxdomain(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 3, 1, 1, 1);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 600, "gone.provider.example");
    put_soa(p, 3600, 120);
}

static void pk_cname_loop(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 2, 0);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 60, "a.example");
    put_cname(p, "a.example", 60, QNAME);
}

static void pk_cname_long(struct pkt *p)
{
    char owner[32], target[32];
    put_header(p, QID, FLAGS_OK, 1, DNSMSG_CNAME_MAX + 2, 0);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 60, "c0.example");
    for (int i = 0; i < DNSMSG_CNAME_MAX; i++) {
        snprintf(owner, sizeof(owner), "c%d.example", i);
        snprintf(target, sizeof(target), "c%d.example", i + 1);
        put_cname(p, owner, 60, target);
    }
    snprintf(owner, sizeof(owner), "c%d.example", DNSMSG_CNAME_MAX);
    put_txt(p, owner, 60, "too far");
}

static void pk_cname_max(struct pkt *p)
{
    char owner[32], target[32];
    put_header(p, QID, FLAGS_OK, 1, DNSMSG_CNAME_MAX + 1, 0);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 60, "c0.example");
    for (int i = 0; i < DNSMSG_CNAME_MAX - 1; i++) {
        snprintf(owner, sizeof(owner), "c%d.example", i);
        snprintf(target, sizeof(target), "c%d.example", i + 1);
        put_cname(p, owner, 60, target);
    }
    snprintf(owner, sizeof(owner), "c%d.example", DNSMSG_CNAME_MAX - 1);
    put_txt(p, owner, 60, "just in reach");
}

static void pk_compressed_suffix(struct pkt *p)
{
    /* owner "other" + a pointer to "_domainkey.example.com" inside the question,
     * then our TXT with the owner as a pointer to the question */
    put_header(p, QID, FLAGS_OK, 1, 2, 0);
    put_question(p, QNAME, T_TXT);
    put8(p, 5);
    memcpy(p->b + p->len, "other", 5);
    p->len += 5;
    put16(p, 0xc000 | (12 + 4)); /* "_domainkey.example.com" in the question */
    put16(p, T_TXT);
    put16(p, 1);
    put32(p, 10);
    put16(p, 2);
    put8(p, 1);
    put8(p, 'o');
    put_txt(p, NULL, 10, "ours");
}

static void pk_pointer_self(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    put16(p, 0xc000 | (unsigned)p->len); /* points at itself */
    put16(p, T_TXT);
    put16(p, 1);
    put32(p, 10);
    put16(p, 2);
    put8(p, 1);
    put8(p, 'x');
}

static void pk_pointer_forward(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    put16(p, 0xc000 | (unsigned)(p->len + 2)); /* forward, to a name right after */
    put_name(p, QNAME);
}

static void pk_pointer_loop_pair(struct pkt *p)
{
    /* label "a" + pointer back to itself through a label: a -> a -> ... */
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    size_t here = p->len;
    put8(p, 1);
    put8(p, 'a');
    put16(p, 0xc000 | (unsigned)here);
    put16(p, T_TXT);
    put16(p, 1);
    put32(p, 10);
    put16(p, 0);
}

static void pk_question_pointer_loop(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 0, 0);
    put16(p, 0xc00c);
    put16(p, T_TXT);
    put16(p, 1);
}

static void pk_nxdomain(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 3, 1, 0, 1);
    put_question(p, QNAME, T_TXT);
    put_soa(p, 3600, 120);
}

static void pk_nodata(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 1);
    put_question(p, QNAME, T_TXT);
    size_t at = put_rr(p, NULL, T_A, 60); /* another type for the name does not count */
    put32(p, 0x7f000001);
    end_rr(p, at);
    put_soa(p, 30, 900);
}

static void pk_nodata_no_soa(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 0, 0);
    put_question(p, QNAME, T_TXT);
}

static void pk_servfail(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 2, 1, 0, 0);
    put_question(p, QNAME, T_TXT);
}

static void pk_refused(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 5, 1, 0, 0);
    put_question(p, QNAME, T_TXT);
}

static void pk_notimp(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 4, 1, 0, 0);
    put_question(p, QNAME, T_TXT);
}

static void pk_formerr_no_question(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 1, 0, 0, 0);
}

static void pk_tc(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK | 0x0200, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    /* a TC answer may stop anywhere: a partial RR */
    put_name(p, QNAME);
    put16(p, T_TXT);
}

static void pk_wrong_id(struct pkt *p)
{
    pk_plain(p);
    p->b[1] ^= 1;
}

static void pk_query_not_response(struct pkt *p)
{
    pk_plain(p);
    p->b[2] &= 0x7f;
}

static void pk_opcode(struct pkt *p)
{
    pk_plain(p);
    p->b[2] |= 0x10; /* opcode 2 (STATUS) */
}

static void pk_wrong_name(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, "sel._domainkey.example.org", T_TXT);
    put_txt(p, NULL, 300, "x");
}

static void pk_wrong_type(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_A);
    put_txt(p, NULL, 300, "x");
}

static void pk_two_questions(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 2, 0, 0);
    put_question(p, QNAME, T_TXT);
    put_question(p, QNAME, T_TXT);
}

static void pk_string_overrun(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    size_t at = put_rr(p, NULL, T_TXT, 300);
    put8(p, 9); /* says 9, has 3 inside RDLENGTH */
    put8(p, 'a');
    put8(p, 'b');
    put8(p, 'c');
    end_rr(p, at);
    put8(p, 'd'); /* bytes after the RR must not be read as its string */
    put8(p, 'e');
}

static void pk_ttl_min(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 3, 0);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 500, "k.example");
    put_txt(p, "k.example", 0x80000000u, "top bit set: 0"); /* RFC 2181 §8 */
    put_txt(p, "k.example", 40, "b");
}

static void pk_ttl_cname(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 2, 0);
    put_question(p, QNAME, T_TXT);
    put_cname(p, NULL, 7, "k.example");
    put_txt(p, "k.example", 40, "b");
}

static void pk_many_rrs(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, DNSMSG_TXT_MAX + 4, 0);
    put_question(p, QNAME, T_TXT);
    for (int i = 0; i < DNSMSG_TXT_MAX + 4; i++)
        put_txt(p, NULL, 60, "r");
}

static void pk_empty_rdata(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    end_rr(p, put_rr(p, NULL, T_TXT, 60));
}

static void pk_rdlen_past_end(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    size_t at = put_rr(p, NULL, T_TXT, 60);
    put8(p, 3);
    put8(p, 'a');
    put8(p, 'b');
    put8(p, 'c');
    end_rr(p, at);
    p->b[at + 1] = 0xff; /* RDLENGTH 255, 4 bytes there */
}

static void pk_label_type(struct pkt *p)
{
    put_header(p, QID, FLAGS_OK, 1, 1, 0);
    put_question(p, QNAME, T_TXT);
    put8(p, 0x41); /* extended label type 01 */
    put8(p, 0);
}

struct parse_case {
    const char *name;
    void (*build)(struct pkt *p);
    enum dnsmsg_result want;
    size_t count;
    const char *text0, *text1;
    uint32_t ttl;
    int have_neg_ttl;
    uint32_t neg_ttl;
};

static const struct parse_case parse_cases[] = {
    {.name = "plain",
     .build = pk_plain,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "v=DKIM1; k=ed25519; p=abc",
     .ttl = 300},
    {.name = "strings joined",
     .build = pk_strings,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "v=DKIM1; k=rsa; p=MIIBIjANBg",
     .ttl = 300},
    {.name = "two RRs of the name",
     .build = pk_two_rrs,
     .want = DNSMSG_ANSWER,
     .count = 2,
     .text0 = "first",
     .text1 = "second",
     .ttl = 200},
    {.name = "case-insensitive names",
     .build = pk_literal_owner_upper,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "x",
     .ttl = 300},
    {.name = "CNAME chain out of order",
     .build = pk_cname_chain,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "v=DKIM1; p=zz",
     .ttl = 100},
    {.name = "CNAME without the target's TXT",
     .build = pk_cname_no_target,
     .want = DNSMSG_NODATA,
     .count = 0},
    {.name = "CNAME to NXDOMAIN",
     .build = pk_cname_nxdomain,
     .want = DNSMSG_NXDOMAIN,
     .count = 0,
     .have_neg_ttl = 1,
     .neg_ttl = 120},
    {.name = "CNAME loop", .build = pk_cname_loop, .want = DNSMSG_MALFORMED, .count = 0},
    {.name = "CNAME chain too long", .build = pk_cname_long, .want = DNSMSG_MALFORMED, .count = 0},
    {.name = "CNAME chain at the limit",
     .build = pk_cname_max,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "just in reach",
     .ttl = 60},
    {.name = "compression: suffix pointer",
     .build = pk_compressed_suffix,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "ours",
     .ttl = 10},
    {.name = "pointer to itself", .build = pk_pointer_self, .want = DNSMSG_MALFORMED, .count = 0},
    {.name = "forward pointer", .build = pk_pointer_forward, .want = DNSMSG_MALFORMED, .count = 0},
    {.name = "pointer loop through a label",
     .build = pk_pointer_loop_pair,
     .want = DNSMSG_MALFORMED,
     .count = 0},
    {.name = "pointer loop in the question",
     .build = pk_question_pointer_loop,
     .want = DNSMSG_MISMATCH,
     .count = 0},
    {.name = "NXDOMAIN",
     .build = pk_nxdomain,
     .want = DNSMSG_NXDOMAIN,
     .count = 0,
     .have_neg_ttl = 1,
     .neg_ttl = 120},
    {.name = "NODATA (an A RR only)",
     .build = pk_nodata,
     .want = DNSMSG_NODATA,
     .count = 0,
     .have_neg_ttl = 1,
     .neg_ttl = 30},
    {.name = "NODATA without SOA", .build = pk_nodata_no_soa, .want = DNSMSG_NODATA, .count = 0},
    {.name = "SERVFAIL", .build = pk_servfail, .want = DNSMSG_SERVFAIL, .count = 0},
    {.name = "REFUSED", .build = pk_refused, .want = DNSMSG_REFUSED, .count = 0},
    {.name = "NOTIMP", .build = pk_notimp, .want = DNSMSG_RCODE, .count = 0},
    {.name = "FORMERR without question",
     .build = pk_formerr_no_question,
     .want = DNSMSG_RCODE,
     .count = 0},
    {.name = "TC", .build = pk_tc, .want = DNSMSG_TRUNCATED, .count = 0},
    {.name = "wrong ID", .build = pk_wrong_id, .want = DNSMSG_MISMATCH, .count = 0},
    {.name = "QR clear", .build = pk_query_not_response, .want = DNSMSG_MISMATCH, .count = 0},
    {.name = "opcode STATUS", .build = pk_opcode, .want = DNSMSG_MISMATCH, .count = 0},
    {.name = "another name", .build = pk_wrong_name, .want = DNSMSG_MISMATCH, .count = 0},
    {.name = "another type", .build = pk_wrong_type, .want = DNSMSG_MISMATCH, .count = 0},
    {.name = "two questions", .build = pk_two_questions, .want = DNSMSG_MISMATCH, .count = 0},
    {.name = "string past RDLENGTH",
     .build = pk_string_overrun,
     .want = DNSMSG_MALFORMED,
     .count = 0},
    {.name = "TTL: minimum, top bit = 0",
     .build = pk_ttl_min,
     .want = DNSMSG_ANSWER,
     .count = 2,
     .text0 = "top bit set: 0",
     .text1 = "b",
     .ttl = 0},
    {.name = "TTL: the CNAME's counts",
     .build = pk_ttl_cname,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "b",
     .ttl = 7},
    {.name = "more RRs than kept",
     .build = pk_many_rrs,
     .want = DNSMSG_ANSWER,
     .count = DNSMSG_TXT_MAX,
     .text0 = "r",
     .text1 = "r",
     .ttl = 60},
    {.name = "empty RDATA",
     .build = pk_empty_rdata,
     .want = DNSMSG_ANSWER,
     .count = 1,
     .text0 = "",
     .ttl = 60},
    {.name = "RDLENGTH past the end",
     .build = pk_rdlen_past_end,
     .want = DNSMSG_MALFORMED,
     .count = 0},
    {.name = "extended label type", .build = pk_label_type, .want = DNSMSG_MALFORMED, .count = 0},
};

static void test_parse(void **state)
{
    (void)state;
    struct dnsmsg_answer a;
    struct pkt p;
    dnsmsg_answer_init(&a);
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        print_message("parse: %s\n", c->name);
        c->build(&p);
        enum dnsmsg_result r = dnsmsg_parse_txt(p.b, p.len, QID, QNAME, &a);
        if (r != c->want)
            print_error("got %s (%s)\n", dnsmsg_result_name(r), a.why);
        assert_int_equal(r, c->want);
        assert_int_equal(a.result, c->want);
        assert_int_equal(a.count, c->count);
        if (c->text0) {
            assert_int_equal(a.lens[0], strlen(c->text0));
            assert_memory_equal(a.text.data + a.offs[0], c->text0, a.lens[0] + 1);
        }
        if (c->text1) {
            assert_int_equal(a.lens[1], strlen(c->text1));
            assert_memory_equal(a.text.data + a.offs[1], c->text1, a.lens[1] + 1);
        }
        if (c->want == DNSMSG_ANSWER)
            assert_int_equal(a.ttl, c->ttl);
        assert_int_equal(a.have_neg_ttl, c->have_neg_ttl);
        if (c->have_neg_ttl)
            assert_int_equal(a.neg_ttl, c->neg_ttl);
    }
    dnsmsg_answer_cleanup(&a);
}

/* every prefix of a good packet: never an answer, never out of bounds (ASan) */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    void (*builders[])(struct pkt *) = {pk_plain,    pk_strings,           pk_cname_chain,
                                        pk_nxdomain, pk_compressed_suffix, pk_two_rrs};
    struct dnsmsg_answer a;
    dnsmsg_answer_init(&a);
    for (size_t b = 0; b < sizeof(builders) / sizeof(builders[0]); b++) {
        struct pkt p;
        builders[b](&p);
        size_t question_end = 12 + strlen(QNAME) + 2 + 4;
        for (size_t len = 0; len < p.len; len++) {
            unsigned char *copy = malloc(len ? len : 1); /* exact size: ASan sees overreads */
            memcpy(copy, p.b, len);
            enum dnsmsg_result r = dnsmsg_parse_txt(copy, len, QID, QNAME, &a);
            free(copy);
            if (len < question_end)
                assert_int_equal(r, DNSMSG_MISMATCH);
            else
                assert_true(r == DNSMSG_MALFORMED);
        }
    }
    dnsmsg_answer_cleanup(&a);
}

struct name_case {
    const char *name;
    int want;
};

static const char label63[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
static const char label64[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

static void test_name_check(void **state)
{
    (void)state;
    static const struct name_case cases[] = {
        {"sel._domainkey.example.com", 0},
        {"sel._domainkey.example.com.", 0},
        {"a", 0},
        {"", -1},
        {".", -1},
        {"a..b", -1},
        {".a", -1},
        {"a.b..", -1},
        {"a b.example", -1},
        {"a\"b.example", -1},
        {"a\\b.example", -1},
        {"caf\xc3\xa9.example", -1},
        {"tab\t.example", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("name: \"%s\"\n", cases[i].name);
        assert_int_equal(dnsmsg_name_check(cases[i].name), cases[i].want);
    }
    char name[512];
    snprintf(name, sizeof(name), "%s.example", label63);
    assert_int_equal(dnsmsg_name_check(name), 0);
    snprintf(name, sizeof(name), "%s.example", label64);
    assert_int_equal(dnsmsg_name_check(name), -1);
    /* 253 characters pass, 254 do not (a final dot is not counted) */
    snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63, label63);
    name[253] = '\0';
    assert_int_equal(strlen(name), 253);
    assert_int_equal(dnsmsg_name_check(name), 0);
    name[253] = '.';
    name[254] = '\0';
    assert_int_equal(dnsmsg_name_check(name), 0);
    snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63, label63);
    name[254] = '\0';
    assert_int_equal(dnsmsg_name_check(name), -1);
}

static void test_build_query(void **state)
{
    (void)state;
    unsigned char q[DNSMSG_QUERY_MAX];
    size_t len;
    static const unsigned char want[] = {
        0x12, 0x34, 0x01, 0x00, 0,    1,   0, 0,   0,   0,   0,   1, /* ID, RD, QD=1, AR=1 */
        3,    's',  'e',  'l',  1,    'x', 7, 'e', 'x', 'a', 'm', 'p',
        'l',  'e',  0,    0,    16,   0,   1,                   /* TXT IN */
        0,    0,    41,   0x04, 0xd0, 0,   0, 0,   0,   0,   0, /* OPT, 1232, TTL 0, RDLEN 0 */
    };
    assert_int_equal(dnsmsg_build_query("SEL.x.Example.", 0x1234, 1, q, sizeof(q), &len), 0);
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(q, want, sizeof(want));
    /* without EDNS: no OPT, ARCOUNT 0 */
    assert_int_equal(dnsmsg_build_query("sel.x.example", 0x1234, 0, q, sizeof(q), &len), 0);
    assert_int_equal(len, sizeof(want) - 11);
    assert_int_equal(q[11], 0);
    /* too small a buffer, a bad name */
    assert_int_equal(dnsmsg_build_query("sel.x.example", 1, 1, q, 20, &len), -1);
    assert_int_equal(dnsmsg_build_query("a..b", 1, 1, q, sizeof(q), &len), -1);
    /* the longest name fits DNSMSG_QUERY_MAX */
    char name[300];
    snprintf(name, sizeof(name), "%s.%s.%s.%s", label63, label63, label63, label63);
    name[253] = '\0';
    assert_int_equal(dnsmsg_build_query(name, 1, 1, q, sizeof(q), &len), 0);
    assert_true(len <= DNSMSG_QUERY_MAX);
}

/* a query we build, answered by echoing it with QR set, parses as NODATA */
static void test_round_trip(void **state)
{
    (void)state;
    unsigned char q[DNSMSG_QUERY_MAX];
    size_t len;
    struct dnsmsg_answer a;
    dnsmsg_answer_init(&a);
    assert_int_equal(dnsmsg_build_query("K._domainkey.Example.com", 77, 1, q, sizeof(q), &len), 0);
    q[2] |= 0x80;
    assert_int_equal(dnsmsg_parse_txt(q, len, 77, "k._domainkey.example.COM.", &a), DNSMSG_NODATA);
    assert_int_equal(dnsmsg_parse_txt(q, len, 78, "k._domainkey.example.com", &a), DNSMSG_MISMATCH);
    dnsmsg_answer_cleanup(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),      cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_name_check), cmocka_unit_test(test_build_query),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
