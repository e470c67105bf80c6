/*
 * test_smtpreply - the client side's parsers: reply lines, multi-line
 * replies gathered into one text (cut at SMTPREPLY_TEXT_SIZE, at most
 * SMTPREPLY_LIMIT_LINES lines, a fresh start after too many), enhanced
 * status codes, EHLO keywords, and MX answers built byte by byte
 * (compression, null MX, CNAME, truncation, no leak on a malformed answer).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpreply.h"

/* --- reply lines ------------------------------------------------------------------------ */

struct line_case {
    const char *line;
    int want_rc;
    int code, more;
};

static const struct line_case line_cases[] = {
    {.line = "250 ok", .want_rc = 0, .code = 250},
    {.line = "250-PIPELINING", .want_rc = 0, .code = 250, .more = 1},
    {.line = "250", .want_rc = 0, .code = 250},
    {.line = "250 ", .want_rc = 0, .code = 250},
    {.line = "250-", .want_rc = 0, .code = 250, .more = 1},
    {.line = "599 x", .want_rc = 0, .code = 599},
    {.line = "200 x", .want_rc = 0, .code = 200},
    {.line = "199 x", .want_rc = -1},
    {.line = "600 x", .want_rc = -1},
    {.line = "25", .want_rc = -1},
    {.line = "", .want_rc = -1},
    {.line = "2500", .want_rc = -1},
    {.line = "250\tok", .want_rc = -1},
    {.line = "25a ok", .want_rc = -1},
    {.line = "hello", .want_rc = -1},
};

static void test_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
        const struct line_case *c = &line_cases[i];
        struct smtpreply_line l;
        print_message("line: \"%s\"\n", c->line);
        assert_int_equal(smtpreply_parse_line(c->line, strlen(c->line), &l), c->want_rc);
        if (c->want_rc == 0) {
            assert_int_equal(l.code, c->code);
            assert_int_equal(l.more, c->more);
        }
    }
}

struct reply_case {
    const char *name;
    const char *lines[6]; /* NULL-terminated; the last one completes the reply */
    int code;
    const char *text;
};

static const struct reply_case reply_cases[] = {
    {"one line", {"250 2.1.0 Ok", NULL}, 250, "250 2.1.0 Ok"},
    {"code only", {"354", NULL}, 354, "354"},
    {"code and space", {"221 ", NULL}, 221, "221 "},
    {"multi-line",
     {"550-5.1.1 user", "550-unknown", "550 5.1.1 here", NULL},
     550,
     "550 5.1.1 user unknown 5.1.1 here"},
    {"empty continuation lines", {"250-a", "250-", "250-x", "250 b", NULL}, 250, "250 a x b"},
    {"first line empty", {"250-", "250 x", NULL}, 250, "250  x"},
    {"other codes later are not checked", {"250-a", "451 b", NULL}, 250, "250 a b"},
};

static void test_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(reply_cases) / sizeof(reply_cases[0]); i++) {
        const struct reply_case *c = &reply_cases[i];
        struct smtpreply r;
        print_message("reply: %s\n", c->name);
        smtpreply_init(&r);
        for (size_t k = 0; c->lines[k]; k++) {
            struct smtpreply_line l;
            const char *line = c->lines[k];
            assert_int_equal(smtpreply_parse_line(line, strlen(line), &l), 0);
            int want = c->lines[k + 1] == NULL;
            assert_int_equal(smtpreply_add(&r, line, strlen(line), &l), want);
        }
        assert_int_equal(r.code, c->code);
        assert_string_equal(r.text, c->text);
        assert_int_equal(r.len, strlen(c->text));
        assert_int_equal(r.lines, 0);
    }
}

/* text is cut at SMTPREPLY_TEXT_SIZE - 1 bytes */
static void test_reply_text_cut(void **state)
{
    (void)state;
    char line[700];
    struct smtpreply r;
    struct smtpreply_line l;
    memset(line, 'x', sizeof(line));
    memcpy(line, "250-", 4);
    smtpreply_init(&r);
    assert_int_equal(smtpreply_parse_line(line, sizeof(line), &l), 0);
    assert_int_equal(smtpreply_add(&r, line, sizeof(line), &l), 0);
    assert_int_equal(smtpreply_add(&r, line, sizeof(line), &l), 0);
    line[3] = ' ';
    assert_int_equal(smtpreply_parse_line(line, sizeof(line), &l), 0);
    assert_int_equal(smtpreply_add(&r, line, sizeof(line), &l), 1);
    assert_int_equal(r.len, SMTPREPLY_TEXT_SIZE - 1);
    assert_int_equal(strlen(r.text), SMTPREPLY_TEXT_SIZE - 1);
}

/*
 * SMTPREPLY_LIMIT_LINES: one line more is an error, and the reply starts
 * afresh. smtpc used to keep the count, so the next server's greeting (on
 * the next MX host) was read as line 102 of the old reply and refused too.
 */
static void test_reply_too_long(void **state)
{
    (void)state;
    struct smtpreply r;
    struct smtpreply_line l;
    smtpreply_init(&r);
    assert_int_equal(smtpreply_parse_line("250-x", 5, &l), 0);
    for (size_t i = 0; i < SMTPREPLY_LIMIT_LINES; i++)
        assert_int_equal(smtpreply_add(&r, "250-x", 5, &l), 0);
    assert_int_equal(smtpreply_add(&r, "250-x", 5, &l), -1);
    assert_int_equal(r.lines, 0);
    assert_int_equal(smtpreply_parse_line("220 next", 8, &l), 0);
    assert_int_equal(smtpreply_add(&r, "220 next", 8, &l), 1);
    assert_int_equal(r.code, 220);
    assert_string_equal(r.text, "220 next");
}

struct status_case {
    const char *text;
    const char *want;
};

static const struct status_case status_cases[] = {
    {"550 5.1.1 user unknown", "5.1.1"},
    {"250 2.0.0", "2.0.0"},
    {"451 4.7.650 throttled", "4.7.650"},
    {"451 4.123.123 x", "4.123.123"},
    {"451 4.1234.1 x", "4.0.0"},
    {"451 4.1.1234 x", "4.0.0"},
    {"250 5.0.0 ok", "2.0.0"}, /* the class must be the code's */
    {"550 5.1.1x", "5.0.0"},
    {"550 5..1 x", "5.0.0"},
    {"550 5.1. x", "5.0.0"},
    {"550 user unknown", "5.0.0"},
    {"550 ", "5.0.0"},
    {"550", "5.0.0"},
    {"421-4.3.2 x", "4.3.2"}, /* the separator after the code is not looked at */
    {"550 5.1.1\tx", "5.0.0"},
};

static void test_status(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        char status[SMTPREPLY_STATUS_SIZE];
        print_message("status: \"%s\"\n", status_cases[i].text);
        smtpreply_status(status_cases[i].text, status);
        assert_string_equal(status, status_cases[i].want);
    }
}

struct ehlo_case {
    const char *kw;
    unsigned ext;
    unsigned long size_max;
};

static const struct ehlo_case ehlo_cases[] = {
    {.kw = "PIPELINING", .ext = SMTPREPLY_EXT_PIPELINING},
    {.kw = "pipelining", .ext = SMTPREPLY_EXT_PIPELINING},
    {.kw = "STARTTLS", .ext = SMTPREPLY_EXT_STARTTLS},
    {.kw = "8BITMIME", .ext = SMTPREPLY_EXT_8BITMIME},
    {.kw = "SMTPUTF8", .ext = SMTPREPLY_EXT_SMTPUTF8},
    {.kw = "DSN", .ext = SMTPREPLY_EXT_DSN},
    {.kw = "SIZE", .ext = SMTPREPLY_EXT_SIZE},
    {.kw = "SIZE 10240000", .ext = SMTPREPLY_EXT_SIZE, .size_max = 10240000},
    {.kw = "SIZE  77", .ext = SMTPREPLY_EXT_SIZE, .size_max = 77},
    {.kw = "SIZE abc", .ext = SMTPREPLY_EXT_SIZE, .size_max = 0},
    {.kw = "SIZE 000000000000000000000000001", .ext = SMTPREPLY_EXT_SIZE}, /* 23 bytes read */
    {.kw = "SIZEX", .ext = 0},
    {.kw = "DSNX", .ext = 0},
    {.kw = "ENHANCEDSTATUSCODES", .ext = 0},
    {.kw = "AUTH PLAIN LOGIN", .ext = 0},
    {.kw = "", .ext = 0},
};

static void test_ehlo(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ehlo_cases) / sizeof(ehlo_cases[0]); i++) {
        unsigned ext = 0;
        unsigned long size_max = 0;
        print_message("EHLO keyword: \"%s\"\n", ehlo_cases[i].kw);
        smtpreply_ehlo_keyword(ehlo_cases[i].kw, strlen(ehlo_cases[i].kw), &ext, &size_max);
        assert_int_equal(ext, ehlo_cases[i].ext);
        assert_int_equal(size_max, ehlo_cases[i].size_max);
    }
}

/* --- MX answers ------------------------------------------------------------------------- */

struct packet {
    unsigned char b[512];
    size_t len;
};

static void put(struct packet *p, const void *data, size_t len)
{
    assert_true(p->len + len <= sizeof(p->b));
    memcpy(p->b + p->len, data, len);
    p->len += len;
}

static void put16(struct packet *p, unsigned v)
{
    unsigned char b[2] = {(unsigned char)(v >> 8), (unsigned char)v};
    put(p, b, 2);
}

/* put_name - "a.b.c" as labels; "" is the root */
static void put_name(struct packet *p, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        unsigned char len = (unsigned char)n;
        put(p, &len, 1);
        put(p, name, n);
        name += n + (dot != NULL);
    }
    put(p, "", 1);
}

/* put_start - header and the question for example.com (at offset 12) */
static void put_start(struct packet *p, unsigned answers)
{
    p->len = 0;
    put16(p, 0x1234);
    put16(p, 0x8180);
    put16(p, 1);
    put16(p, answers);
    put16(p, 0);
    put16(p, 0);
    put_name(p, "example.com");
    put16(p, 15);
    put16(p, 1);
}

/* put_rr - an answer for the question's name (a pointer to offset 12) */
static void put_rr(struct packet *p, unsigned type, unsigned pref, const char *target)
{
    struct packet rdata = {.len = 0};
    if (type == 15)
        put16(&rdata, pref);
    put_name(&rdata, target);
    put(p, "\xc0\x0c", 2);
    put16(p, type);
    put16(p, 1);
    put16(p, 0);
    put16(p, 300);
    put16(p, (unsigned)rdata.len);
    put(p, rdata.b, rdata.len);
}

static void test_mx(void **state)
{
    (void)state;
    struct packet p;
    char *hosts[10];
    size_t count;

    /* sorted by preference; ties in some order */
    put_start(&p, 3);
    put_rr(&p, 15, 20, "mx2.example.com");
    put_rr(&p, 15, 10, "mx1.example.com");
    put_rr(&p, 15, 30, "backup.example.net");
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), 0);
    assert_int_equal(count, 3);
    assert_string_equal(hosts[0], "mx1.example.com");
    assert_string_equal(hosts[1], "mx2.example.com");
    assert_string_equal(hosts[2], "backup.example.net");
    for (size_t i = 0; i < count; i++)
        free(hosts[i]);

    /* a compressed exchange name: "mx" + pointer to example.com */
    put_start(&p, 1);
    put(&p, "\xc0\x0c\x00\x0f\x00\x01\x00\x00\x01\x2c\x00\x07\x00\x05\x02mx\xc0\x0c", 19);
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(hosts[0], "mx.example.com");
    free(hosts[0]);

    /* a CNAME before the MX is skipped */
    put_start(&p, 2);
    put_rr(&p, 5, 0, "alias.example.com");
    put_rr(&p, 15, 5, "mx.alias.example.com");
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), 0);
    assert_int_equal(count, 1);
    free(hosts[0]);

    /* RFC 7505 null MX; "." among others is skipped */
    put_start(&p, 1);
    put_rr(&p, 15, 0, "");
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), 1);
    assert_int_equal(count, 0);
    put_start(&p, 2);
    put_rr(&p, 15, 0, "");
    put_rr(&p, 15, 10, "mx.example.com");
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(hosts[0], "mx.example.com");
    free(hosts[0]);

    /* no answers: 0 and nothing (smtpc falls back to the domain) */
    put_start(&p, 0);
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), 0);
    assert_int_equal(count, 0);

    /* only max records count */
    put_start(&p, 3);
    put_rr(&p, 15, 30, "c.example");
    put_rr(&p, 15, 20, "b.example");
    put_rr(&p, 15, 10, "a.example");
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 2, &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(hosts[0], "b.example");
    assert_string_equal(hosts[1], "c.example");
    free(hosts[0]);
    free(hosts[1]);

    /*
     * malformed after a good record: -1, nothing stored, and (checked by
     * LeakSanitizer in unit-san) the good record's name is not leaked, as it
     * was before
     */
    put_start(&p, 2);
    put_rr(&p, 15, 10, "mx1.example.com");
    put_rr(&p, 15, 20, "mx2.example.com");
    assert_int_equal(smtpreply_mx_parse(p.b, p.len - 5, 1, hosts, 10, &count), -1);
    assert_int_equal(count, 0);

    /* too short for a header; a pointer loop */
    assert_int_equal(smtpreply_mx_parse(p.b, 11, 1, hosts, 10, &count), -1);
    put_start(&p, 1);
    put(&p, "\xc0\x0c\x00\x0f\x00\x01\x00\x00\x01\x2c\x00\x04\x00\x05\xc0\x2b",
        16); /* points at itself */
    assert_int_equal(smtpreply_mx_parse(p.b, p.len, 1, hosts, 10, &count), -1);
    assert_int_equal(count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_reply_text_cut),
        cmocka_unit_test(test_reply_too_long),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_ehlo),
        cmocka_unit_test(test_mx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
