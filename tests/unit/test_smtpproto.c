/*
 * test_smtpproto - the server side's SMTP parsers: verbs, paths (source
 * routes, quoted local parts holding ">"), every MAIL and RCPT parameter
 * valid and invalid, xtext, NOTIFY, numbers as strtol reads them, BDAT
 * arguments, and the DATA decoder over every split of its input into two
 * and three chunks (the smuggling line ends, dot-stuffing, a terminator split
 * across chunks, the empty message), and BDAT's bare CR / LF checks.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtpproto.h"

#define NO_END ((size_t)-1)

/* --- verbs ------------------------------------------------------------------------------ */

struct verb_case {
    const char *line;
    enum smtpproto_verb want;
    const char *want_arg;
};

static const struct verb_case verb_cases[] = {
    {"EHLO client.test", SMTPPROTO_EHLO, "client.test"},
    {"ehlo   client.test", SMTPPROTO_EHLO, "client.test"},
    {"HELO x", SMTPPROTO_HELO, "x"},
    {"MAIL FROM:<a@b>", SMTPPROTO_MAIL, "FROM:<a@b>"},
    {"mail from:<a@b>", SMTPPROTO_MAIL, "from:<a@b>"},
    {"RCPT TO:<a@b>", SMTPPROTO_RCPT, "TO:<a@b>"},
    {"DATA", SMTPPROTO_DATA, ""},
    {"DATA   ", SMTPPROTO_DATA, ""},
    {"DATA x", SMTPPROTO_DATA, "x"},
    {"BDAT 10 LAST", SMTPPROTO_BDAT, "10 LAST"},
    {"RSET", SMTPPROTO_RSET, ""},
    {"NOOP hello", SMTPPROTO_NOOP, "hello"},
    {"QUIT", SMTPPROTO_QUIT, ""},
    {"VRFY postmaster", SMTPPROTO_VRFY, "postmaster"},
    {"HELP", SMTPPROTO_HELP, ""},
    {"StartTLS", SMTPPROTO_STARTTLS, ""},
    {"MAILX FROM:<a@b>", SMTPPROTO_UNKNOWN, ""},
    {"MAI", SMTPPROTO_UNKNOWN, ""},
    {"", SMTPPROTO_UNKNOWN, ""},
    {" MAIL FROM:<a@b>", SMTPPROTO_UNKNOWN, ""},
    {"MAIL\tFROM:<a@b>", SMTPPROTO_UNKNOWN, ""},
    {"STARTTLSX", SMTPPROTO_UNKNOWN, ""},
    {"AUTH PLAIN", SMTPPROTO_UNKNOWN, ""},
};

static void test_verbs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(verb_cases) / sizeof(verb_cases[0]); i++) {
        const struct verb_case *c = &verb_cases[i];
        size_t off;
        print_message("verb: \"%s\"\n", c->line);
        assert_int_equal(smtpproto_command(c->line, strlen(c->line), &off), c->want);
        if (c->want != SMTPPROTO_UNKNOWN)
            assert_string_equal(c->line + off, c->want_arg);
    }
    const char nul[] = "NOOP a\0b";
    size_t off;
    assert_int_equal(smtpproto_command(nul, sizeof(nul) - 1, &off), SMTPPROTO_NUL);
}

/* --- paths ------------------------------------------------------------------------------ */

struct path_case {
    const char *name;
    const char *input;
    int want_rc;
    const char *want_addr;
    const char *want_rest;
};

static const struct path_case path_cases[] = {
    {"plain", "<a@b.example>", 0, "a@b.example", ""},
    {"spaces before", "   <a@b>", 0, "a@b", ""},
    {"parameters after", "<a@b> SIZE=10", 0, "a@b", " SIZE=10"},
    {"parameters glued", "<a@b>SIZE=10", 0, "a@b", "SIZE=10"},
    {"null path", "<>", 0, "", ""},
    {"null path with params", "<> RET=HDRS", 0, "", " RET=HDRS"},
    {"source route", "<@r1.example,@r2.example:user@host.example>", 0, "user@host.example", ""},
    {"source route one hop", "<@r1:u@h> X", 0, "u@h", " X"},
    {"source route without colon", "<@r1.example>", -1, NULL, NULL},
    {"source route, empty address", "<@r1:>", 0, "", ""},
    {"quoted > inside", "<\"a>b\"@h.example>", 0, "\"a>b\"@h.example", ""},
    {"quoted > and params", "<\"x>y\"@h> SIZE=1", 0, "\"x>y\"@h", " SIZE=1"},
    {"escaped quote inside quotes", "<\"a\\\">b\"@h>", 0, "\"a\\\">b\"@h", ""},
    {"escaped backslash then quote", "<\"a\\\\\">x@h>", 0, "\"a\\\\\"", "x@h>"},
    {"backslash outside quotes", "<a\\>@h>", 0, "a\\", "@h>"},
    {"unterminated quote", "<\"a>b@h>", -1, NULL, NULL},
    {"quote escape at the end", "<\"a\\", -1, NULL, NULL},
    {"no brackets", "a@b", -1, NULL, NULL},
    {"no closing bracket", "<a@b", -1, NULL, NULL},
    {"empty", "", -1, NULL, NULL},
    {"only spaces", "   ", -1, NULL, NULL},
    {"tab is not a space", "\t<a@b>", -1, NULL, NULL},
    {"two paths: the first counts", "<a@b> <c@d>", 0, "a@b", " <c@d>"},
    {"utf8", "<j\xc3\xb6rg@h>", 0, "j\xc3\xb6rg@h", ""},
};

static void test_paths(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
        const struct path_case *c = &path_cases[i];
        struct smtpproto_span addr;
        size_t rest;
        print_message("path: %s\n", c->name);
        int rc = smtpproto_parse_path(c->input, strlen(c->input), &addr, &rest);
        assert_int_equal(rc, c->want_rc);
        if (rc < 0)
            continue;
        assert_int_equal(addr.len, strlen(c->want_addr));
        assert_memory_equal(c->input + addr.off, c->want_addr, addr.len);
        assert_string_equal(c->input + rest, c->want_rest);
    }
}

struct addr_case {
    const char *input;
    int smtputf8;
    enum smtpproto_addr want;
};

static const struct addr_case addr_cases[] = {
    {"a@b.example", 0, SMTPPROTO_ADDR_OK},
    {"\"a b\"@b.example", 0, SMTPPROTO_ADDR_OK},
    {"\"a>b\"@h.example", 0, SMTPPROTO_ADDR_OK},
    {"a@[192.0.2.1]", 0, SMTPPROTO_ADDR_OK},
    {"a", 0, SMTPPROTO_ADDR_BAD},
    {"a@", 0, SMTPPROTO_ADDR_BAD},
    {"@b", 0, SMTPPROTO_ADDR_BAD},
    {"a@b@c", 0, SMTPPROTO_ADDR_BAD},
    {"Name <a@b>", 0, SMTPPROTO_ADDR_BAD},
    {"j\xc3\xb6rg@h.example", 0, SMTPPROTO_ADDR_NEEDS_UTF8},
    {"j\xc3\xb6rg@h.example", 1, SMTPPROTO_ADDR_OK},
    {"j\xc3\xb6rg@", 1, SMTPPROTO_ADDR_BAD},
    {"\xff@", 0, SMTPPROTO_ADDR_NEEDS_UTF8},
};

static void test_addr_check(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]); i++) {
        const struct addr_case *c = &addr_cases[i];
        print_message("addr: %s\n", c->input);
        assert_int_equal(smtpproto_addr_check(c->input, strlen(c->input), c->smtputf8), c->want);
    }
    /* LIMIT_ADDRESS: 511 bytes pass, 512 do not */
    char long_addr[600];
    for (size_t len = 510; len <= 513; len++) {
        memset(long_addr, 'a', len - 4);
        memcpy(long_addr + len - 4, "@b.c", 4);
        enum smtpproto_addr got = smtpproto_addr_check(long_addr, len, 0);
        if (len < 512)
            assert_int_not_equal(got, SMTPPROTO_ADDR_NEEDS_UTF8);
        else
            assert_int_equal(got, SMTPPROTO_ADDR_BAD);
    }
}

/* --- MAIL and RCPT parameters ------------------------------------------------------------ */

struct mail_case {
    const char *params;
    enum smtpproto_result want;
    long size;
    int body_8bit, smtputf8, ret_full;
    const char *envid; /* NULL: none */
    const char *bad;   /* UNSUPPORTED: the name reported */
    int ret_given;     /* 0: RET absent, want -1 */
};

#define LIMIT 10000

static const struct mail_case mail_cases[] = {
    {"", SMTPPROTO_OK, .bad = NULL},
    {"   ", SMTPPROTO_OK, .bad = NULL},
    {" SIZE=1000", SMTPPROTO_OK, .size = 1000},
    {" size=1000", SMTPPROTO_OK, .size = 1000},
    {" SIZE=10000", SMTPPROTO_OK, .size = 10000},
    {" SIZE=10001", SMTPPROTO_SIZE_EXCEEDED, .bad = NULL},
    {" SIZE=99999999999999999999999", SMTPPROTO_SIZE_EXCEEDED, .bad = NULL},
    {" SIZE=0", SMTPPROTO_OK, .size = 0},
    {" SIZE=", SMTPPROTO_OK, .size = 0}, /* strtol reads "" as 0: kept as it was */
    {" SIZE=-0", SMTPPROTO_OK, .size = 0},
    {" SIZE=+12", SMTPPROTO_OK, .size = 12},
    {" SIZE=\t12", SMTPPROTO_OK, .size = 12},
    {" SIZE=-1", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SIZE=-99999999999999999999999", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SIZE=12k", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SIZE=x", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SIZE=+", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SIZE=0x10", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SIZE", SMTPPROTO_UNSUPPORTED, .bad = "SIZE"},
    {" SIZE=1 SIZE=2", SMTPPROTO_OK, .size = 2},
    {" BODY=8BITMIME", SMTPPROTO_OK, .body_8bit = 1},
    {" body=8bitmime", SMTPPROTO_OK, .body_8bit = 1},
    {" BODY=7BIT", SMTPPROTO_OK, .body_8bit = 0},
    {" BODY=8BITMIME BODY=7BIT", SMTPPROTO_OK, .body_8bit = 0},
    {" BODY=BINARYMIME", SMTPPROTO_UNSUPPORTED, .bad = "BODY"},
    {" BODY", SMTPPROTO_UNSUPPORTED, .bad = "BODY"},
    {" BODY=", SMTPPROTO_UNSUPPORTED, .bad = "BODY"},
    {" SMTPUTF8", SMTPPROTO_OK, .smtputf8 = 1},
    {" smtputf8", SMTPPROTO_OK, .smtputf8 = 1},
    {" SMTPUTF8=yes", SMTPPROTO_UNSUPPORTED, .bad = "SMTPUTF8"},
    {" SMTPUTF8=", SMTPPROTO_UNSUPPORTED, .bad = "SMTPUTF8"},
    {" RET=FULL", SMTPPROTO_OK, .ret_full = 1, .ret_given = 1},
    {" RET=hdrs", SMTPPROTO_OK, .ret_full = 0, .ret_given = 1},
    {" RET=FULL RET=HDRS", SMTPPROTO_OK, .ret_full = 0, .ret_given = 1},
    {" RET=ALL", SMTPPROTO_UNSUPPORTED, .bad = "RET"},
    {" RET", SMTPPROTO_UNSUPPORTED, .bad = "RET"},
    {" ENVID=QQ314159", SMTPPROTO_OK, .envid = "QQ314159"},
    {" ENVID=a+2Bb", SMTPPROTO_OK, .envid = "a+2Bb"},
    {" ENVID=", SMTPPROTO_OK, .envid = ""},
    {" ENVID=a ENVID=b", SMTPPROTO_OK, .envid = "b"},
    {" ENVID=a=b", SMTPPROTO_UNSUPPORTED, .bad = "ENVID"},
    {" ENVID=a+2", SMTPPROTO_UNSUPPORTED, .bad = "ENVID"},
    {" ENVID=a+zz", SMTPPROTO_UNSUPPORTED, .bad = "ENVID"},
    {" ENVID=\xc3\xa9", SMTPPROTO_UNSUPPORTED, .bad = "ENVID"},
    {" ENVID", SMTPPROTO_UNSUPPORTED, .bad = "ENVID"},
    {" AUTH=<>", SMTPPROTO_UNSUPPORTED, .bad = "AUTH"},
    {" X-UNKNOWN", SMTPPROTO_UNSUPPORTED, .bad = "X-UNKNOWN"},
    {" =x", SMTPPROTO_UNSUPPORTED, .bad = ""},
    {" SIZE=5 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=e1", SMTPPROTO_OK, 5, 1, 1, 1, "e1", .ret_given = 1,
     .bad = NULL},
    {"  SIZE=5    SMTPUTF8  ", SMTPPROTO_OK, .size = 5, .smtputf8 = 1},
    /* the first bad parameter decides */
    {" FOO SIZE=99999999", SMTPPROTO_UNSUPPORTED, .bad = "FOO"},
    {" SIZE=99999999 FOO", SMTPPROTO_SIZE_EXCEEDED, .bad = NULL},
    {" SIZE=x FOO", SMTPPROTO_BAD_SIZE, .bad = NULL},
    {" SMTPUTF8 BODY=9BIT", SMTPPROTO_UNSUPPORTED, .bad = "BODY"},
    {" SIZE=1\tBODY=7BIT", SMTPPROTO_BAD_SIZE, .bad = NULL}, /* only spaces separate parameters */
};

static void test_mail_params(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(mail_cases) / sizeof(mail_cases[0]); i++) {
        const struct mail_case *c = &mail_cases[i];
        struct smtpproto_mail m;
        print_message("MAIL params: \"%s\"\n", c->params);
        enum smtpproto_result got = smtpproto_mail_params(c->params, strlen(c->params), LIMIT, &m);
        assert_int_equal(got, c->want);
        if (got == SMTPPROTO_UNSUPPORTED) {
            assert_int_equal(m.bad.len, strlen(c->bad));
            assert_memory_equal(c->params + m.bad.off, c->bad, m.bad.len);
        }
        if (got != SMTPPROTO_OK)
            continue;
        assert_int_equal(m.size, c->size);
        assert_int_equal(m.body_8bit, c->body_8bit);
        assert_int_equal(m.smtputf8, c->smtputf8);
        assert_int_equal(m.ret_full, c->ret_given ? c->ret_full : -1);
        assert_int_equal(m.has_envid, c->envid != NULL);
        if (c->envid) {
            assert_int_equal(m.envid.len, strlen(c->envid));
            assert_memory_equal(c->params + m.envid.off, c->envid, m.envid.len);
        }
    }
}

struct rcpt_case {
    const char *params;
    enum smtpproto_result want;
    unsigned notify;
    const char *orcpt;
    const char *bad;
};

#define N_NEVER SMTPPROTO_NOTIFY_NEVER
#define N_SUCCESS SMTPPROTO_NOTIFY_SUCCESS
#define N_FAILURE SMTPPROTO_NOTIFY_FAILURE
#define N_DELAY SMTPPROTO_NOTIFY_DELAY

static const struct rcpt_case rcpt_cases[] = {
    {"", SMTPPROTO_OK, .bad = NULL},
    {" NOTIFY=NEVER", SMTPPROTO_OK, N_NEVER, .bad = NULL},
    {" notify=never", SMTPPROTO_OK, N_NEVER, .bad = NULL},
    {" NOTIFY=SUCCESS", SMTPPROTO_OK, N_SUCCESS, .bad = NULL},
    {" NOTIFY=SUCCESS,FAILURE,DELAY", SMTPPROTO_OK, N_SUCCESS | N_FAILURE | N_DELAY, .bad = NULL},
    {" NOTIFY=delay,Failure", SMTPPROTO_OK, N_FAILURE | N_DELAY, .bad = NULL},
    {" NOTIFY=SUCCESS,,FAILURE,", SMTPPROTO_OK, N_SUCCESS | N_FAILURE, .bad = NULL},
    {" NOTIFY=SUCCESS NOTIFY=DELAY", SMTPPROTO_OK, N_DELAY, .bad = NULL},
    {" NOTIFY=NEVER,SUCCESS", SMTPPROTO_UNSUPPORTED, .bad = "NOTIFY"},
    {" NOTIFY=NEVER,NEVER", SMTPPROTO_OK, N_NEVER, .bad = NULL},
    {" NOTIFY=", SMTPPROTO_UNSUPPORTED, .bad = "NOTIFY"},
    {" NOTIFY=,", SMTPPROTO_UNSUPPORTED, .bad = "NOTIFY"},
    {" NOTIFY=ALWAYS", SMTPPROTO_UNSUPPORTED, .bad = "NOTIFY"},
    {" NOTIFY=SUCCESSX", SMTPPROTO_UNSUPPORTED, .bad = "NOTIFY"},
    {" NOTIFY", SMTPPROTO_UNSUPPORTED, .bad = "NOTIFY"},
    {" ORCPT=rfc822;a@b.example", SMTPPROTO_OK, .orcpt = "rfc822;a@b.example"},
    {" ORCPT=rfc822;a+2Bb@c", SMTPPROTO_OK, .orcpt = "rfc822;a+2Bb@c"},
    {" ORCPT=rfc822;", SMTPPROTO_OK, .orcpt = "rfc822;"},
    {" ORCPT=anything=;x", SMTPPROTO_OK, .orcpt = "anything=;x"}, /* the type is not checked */
    {" ORCPT=rfc822;a;b", SMTPPROTO_OK, .orcpt = "rfc822;a;b"},
    {" ORCPT=rfc822;a=b", SMTPPROTO_UNSUPPORTED, .bad = "ORCPT"},
    {" ORCPT=rfc822;a+", SMTPPROTO_UNSUPPORTED, .bad = "ORCPT"},
    {" ORCPT=rfc822a@b", SMTPPROTO_UNSUPPORTED, .bad = "ORCPT"},
    {" ORCPT", SMTPPROTO_UNSUPPORTED, .bad = "ORCPT"},
    {" ORCPT=rfc822;a ORCPT=rfc822;b", SMTPPROTO_OK, .orcpt = "rfc822;b"},
    {" NOTIFY=FAILURE ORCPT=rfc822;x@y", SMTPPROTO_OK, N_FAILURE, "rfc822;x@y", .bad = NULL},
    {" SIZE=10", SMTPPROTO_UNSUPPORTED, .bad = "SIZE"},
    {" FOO", SMTPPROTO_UNSUPPORTED, .bad = "FOO"},
    {" NOTIFY=NEVER FOO=1", SMTPPROTO_UNSUPPORTED, .bad = "FOO"},
};

static void test_rcpt_params(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rcpt_cases) / sizeof(rcpt_cases[0]); i++) {
        const struct rcpt_case *c = &rcpt_cases[i];
        struct smtpproto_rcpt r;
        print_message("RCPT params: \"%s\"\n", c->params);
        enum smtpproto_result got = smtpproto_rcpt_params(c->params, strlen(c->params), &r);
        assert_int_equal(got, c->want);
        if (got == SMTPPROTO_UNSUPPORTED) {
            assert_int_equal(r.bad.len, strlen(c->bad));
            assert_memory_equal(c->params + r.bad.off, c->bad, r.bad.len);
            continue;
        }
        assert_int_equal(r.notify, c->notify);
        assert_int_equal(r.has_orcpt, c->orcpt != NULL);
        if (c->orcpt) {
            assert_int_equal(r.orcpt.len, strlen(c->orcpt));
            assert_memory_equal(c->params + r.orcpt.off, c->orcpt, r.orcpt.len);
        }
    }
}

/* DSN values at and past LIMIT_DSN_PARAM, NOTIFY past LIMIT_NOTIFY */
static void test_dsn_limits(void **state)
{
    (void)state;
    char params[LIMIT_DSN_PARAM + 64];
    struct smtpproto_mail m;
    struct smtpproto_rcpt r;
    for (size_t n = LIMIT_DSN_PARAM; n <= LIMIT_DSN_PARAM + 1; n++) {
        memcpy(params, " ENVID=", 7);
        memset(params + 7, 'e', n);
        int want = n <= LIMIT_DSN_PARAM ? SMTPPROTO_OK : SMTPPROTO_UNSUPPORTED;
        assert_int_equal(smtpproto_mail_params(params, 7 + n, LIMIT, &m), want);
        memcpy(params, " ORCPT=rfc822;", 14);
        memset(params + 14, 'o', n - 7);
        assert_int_equal(smtpproto_rcpt_params(params, 7 + n, &r), want);
    }
    unsigned bits;
    char notify[80] = "";
    while (strlen(notify) + 8 <= LIMIT_NOTIFY)
        strncat(notify, "SUCCESS,", sizeof(notify) - strlen(notify) - 1);
    assert_int_equal(smtpproto_notify(notify, strlen(notify), &bits), 0);
    memset(notify, ',', sizeof(notify));
    memcpy(notify, "DELAY", 5);
    assert_int_equal(smtpproto_notify(notify, LIMIT_NOTIFY, &bits), 0);
    assert_int_equal(smtpproto_notify(notify, LIMIT_NOTIFY + 1, &bits), -1);
}

struct xtext_case {
    const char *v;
    int want;
};

static const struct xtext_case xtext_cases[] = {
    {"", 1},    {"abc", 1}, {"+2B", 1},  {"a+2bc", 1}, {"+", 0},        {"+2", 0},     {"+G0", 0},
    {"a=b", 0}, {"a b", 0}, {"\x7f", 0}, {"~!#", 1},   {"\xc3\xa9", 0}, {"+2B+3D", 1}, {"a\tb", 0},
};

static void test_xtext(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(xtext_cases) / sizeof(xtext_cases[0]); i++) {
        print_message("xtext: \"%s\"\n", xtext_cases[i].v);
        assert_int_equal(smtpproto_xtext_ok(xtext_cases[i].v, strlen(xtext_cases[i].v)),
                         xtext_cases[i].want);
    }
    /* the span ends the value: "+2" then "B" beyond it does not count */
    assert_int_equal(smtpproto_xtext_ok("a+2B", 3), 0);
}

/* smtpproto_number agrees with strtol, which smtpd used before */
static void test_number(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "",
        "0",
        "12",
        "+12",
        "-12",
        " 12",
        "\t\n\v\f\r7",
        "12x",
        "x",
        "+",
        "-",
        "+-1",
        " ",
        "-0",
        "00000000000000000000000000000042",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "1 2",
        "0x1f",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        long value;
        size_t used;
        char *end;
        print_message("number: \"%s\"\n", inputs[i]);
        errno = 0;
        long want = strtol(inputs[i], &end, 10);
        smtpproto_number(inputs[i], strlen(inputs[i]), &value, &used);
        assert_int_equal(value, want);
        assert_int_equal(used, (size_t)(end - inputs[i]));
    }
}

struct bdat_case {
    const char *arg;
    int want_rc;
    long size;
    int last;
};

static const struct bdat_case bdat_cases[] = {
    {.arg = "10", .want_rc = 0, .size = 10},
    {.arg = "10 LAST", .want_rc = 0, .size = 10, .last = 1},
    {.arg = "10 last", .want_rc = 0, .size = 10, .last = 1},
    {.arg = "0 LAST", .want_rc = 0, .size = 0, .last = 1},
    {.arg = "10   LAST", .want_rc = 0, .size = 10, .last = 1},
    {.arg = "10 ", .want_rc = 0, .size = 10},
    {.arg = "+5", .want_rc = 0, .size = 5},
    {.arg = "-0", .want_rc = 0, .size = 0},
    {.arg = "", .want_rc = -1},
    {.arg = "LAST", .want_rc = -1},
    {.arg = "-1", .want_rc = -1},
    {.arg = "10 LASTX", .want_rc = -1},
    {.arg = "10 LAST x", .want_rc = -1},
    {.arg = "10x", .want_rc = -1},
    {.arg = "10\tLAST", .want_rc = -1},
    {.arg = " ", .want_rc = -1},
};

static void test_bdat_args(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bdat_cases) / sizeof(bdat_cases[0]); i++) {
        const struct bdat_case *c = &bdat_cases[i];
        long size;
        int last;
        print_message("BDAT \"%s\"\n", c->arg);
        assert_int_equal(smtpproto_bdat_args(c->arg, strlen(c->arg), &size, &last), c->want_rc);
        if (c->want_rc == 0) {
            assert_int_equal(size, c->size);
            assert_int_equal(last, c->last);
        }
    }
}

/* --- the DATA decoder ------------------------------------------------------------------- */

struct data_case {
    const char *name;
    const char *input;
    size_t want_end; /* bytes used up to and including CRLF.CRLF, or NO_END */
    int want_bare;
    const char *want_out; /* for accepted messages */
    size_t len;           /* input bytes when they hold a NUL (else strlen) */
    size_t out_len;       /* want_out bytes when they hold a NUL (else strlen) */
};

static const struct data_case data_cases[] = {
    {"simple", "Subject: x\r\n\r\nhello\r\n.\r\n", 24, 0, "Subject: x\r\n\r\nhello\r\n", .len = 0},
    {"empty message", ".\r\n", 3, 0, "", .len = 0},
    {"empty line only", "\r\n.\r\n", 5, 0, "\r\n", .len = 0},
    {"dot-stuffed", "a\r\n..\r\n.\r\n", 10, 0, "a\r\n.\r\n", .len = 0},
    {"dot-stuffed text", "..leading dot\r\n.\r\n", 18, 0, ".leading dot\r\n", .len = 0},
    {"single dot dropped", ".x\r\n.\r\n", 7, 0, "x\r\n", .len = 0},
    {"dots inside a line", "a.b..c\r\n.\r\n", 11, 0, "a.b..c\r\n", .len = 0},
    {"commands after the end", "a\r\n.\r\nQUIT\r\n", 6, 0, "a\r\n", .len = 0},
    {"no end yet", "a\r\nb\r\n", NO_END, 0, NULL, .len = 0},
    {"no end: dot line pending", "a\r\n.", NO_END, 0, NULL, .len = 0},
    {"no end: dot CR pending", "a\r\n.\r", NO_END, 0, NULL, .len = 0},
    {"nothing", "", NO_END, 0, NULL, .len = 0},
    /* smuggling: none of these ends DATA; all of them refuse the message */
    {"smuggle lf.crlf", "first\n.\r\nMAIL FROM:<x@y>\r\n.\r\n", 29, 1, NULL, .len = 0},
    {"smuggle crlf.lf", "first\r\n.\nMAIL FROM:<x@y>\r\n.\r\n", 29, 1, NULL, .len = 0},
    {"smuggle lf.lf", "first\n.\nMAIL FROM:<x@y>\r\n.\r\n", 28, 1, NULL, .len = 0},
    {"smuggle cr.cr", "first\r.\rMAIL FROM:<x@y>\r\n.\r\n", 28, 1, NULL, .len = 0},
    {"smuggle crlf.cr", "first\r\n.\rMAIL FROM:<x@y>\r\n.\r\n", 29, 1, NULL, .len = 0},
    {"smuggle cr.crlf", "first\r.\r\nMAIL\r\n.\r\n", 18, 1, NULL, .len = 0},
    {"bare lf at start", "\n.\r\n\r\n.\r\n", 9, 1, NULL, .len = 0},
    {"bare cr before crlf", "a\r\r\n.\r\n", 7, 1, NULL, .len = 0},
    {"bare lf only, never ends", "a\n.\n", NO_END, 1, NULL, .len = 0},
    {"dot cr then text", ".\rx\r\n.\r\n", 8, 1, NULL, .len = 0},
    {"dot lf at line start", "a\r\n.\nb\r\n.\r\n", 11, 1, NULL, .len = 0},
    {"crlf crlf dot crlf", "a\r\n\r\n.\r\n", 8, 0, "a\r\n\r\n", .len = 0},
    {"8bit and nul bytes", "\xc3\xa9\0x\r\n.\r\n", 9, 0, "\xc3\xa9\0x\r\n", 9, 6},
};

struct data_result {
    size_t end; /* NO_END when not done */
    int bare_eol, too_big;
    char out[256];
    size_t out_len;
};

/* decode input cut at the given points (sorted, between 0 and len) */
static void data_decode(const char *input, size_t len, const size_t *cuts, size_t ncuts,
                        size_t limit, struct data_result *r)
{
    struct smtpproto_data d;
    struct buf out;
    size_t pos = 0;
    buf_init(&out, limit);
    smtpproto_data_init(&d);
    r->end = NO_END;
    for (size_t k = 0; k <= ncuts && r->end == NO_END; k++) {
        size_t stop = k < ncuts ? cuts[k] : len;
        int done = 0;
        size_t used = smtpproto_data_consume(&d, input + pos, stop - pos, &out, &done);
        if (done)
            r->end = pos + used;
        else
            assert_int_equal(used, stop - pos); /* not done: everything is used */
        pos = stop;
    }
    r->bare_eol = d.bare_eol;
    r->too_big = d.too_big;
    assert_true(out.len < sizeof(r->out));
    r->out_len = out.len;
    if (out.len)
        memcpy(r->out, out.data, out.len);
    buf_cleanup(&out);
}

static size_t data_case_len(const struct data_case *c)
{
    return c->len ? c->len : strlen(c->input);
}

static void data_check(const struct data_case *c, const struct data_result *r)
{
    assert_int_equal(r->end, c->want_end);
    assert_int_equal(r->bare_eol, c->want_bare);
    assert_false(r->too_big);
    if (c->want_out) {
        size_t want_len = c->out_len ? c->out_len : strlen(c->want_out);
        assert_int_equal(r->out_len, want_len);
        assert_memory_equal(r->out, c->want_out, want_len);
    }
}

static void test_data_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(data_cases) / sizeof(data_cases[0]); i++) {
        const struct data_case *c = &data_cases[i];
        size_t len = data_case_len(c);
        struct data_result r;
        size_t cuts[2];
        print_message("DATA: %s\n", c->name);
        data_decode(c->input, len, NULL, 0, 1 << 20, &r);
        data_check(c, &r);
        for (cuts[0] = 0; cuts[0] <= len; cuts[0]++) { /* every split into two */
            data_decode(c->input, len, cuts, 1, 1 << 20, &r);
            data_check(c, &r);
        }
        for (cuts[0] = 0; cuts[0] <= len; cuts[0]++) /* and into three */
            for (cuts[1] = cuts[0]; cuts[1] <= len; cuts[1]++) {
                data_decode(c->input, len, cuts, 2, 1 << 20, &r);
                data_check(c, &r);
            }
        size_t bytes[64]; /* one byte at a time */
        assert_true(len < 64);
        for (size_t k = 0; k < len; k++)
            bytes[k] = k + 1;
        data_decode(c->input, len, bytes, len, 1 << 20, &r);
        data_check(c, &r);
    }
}

/*
 * the terminator split at each of its bytes, across three chunks; {7, 7}
 * is an empty chunk after ".\r", which once underflowed to a 2^64-byte
 * append and refused the message as too big
 */
static void test_data_terminator_split(void **state)
{
    (void)state;
    const char *input = "abc\r\n.\r\n";
    static const size_t cuts[][2] = {{3, 4}, {4, 5}, {5, 6}, {6, 7}, {3, 7},
                                     {4, 6}, {5, 7}, {7, 7}, {6, 6}, {5, 5}};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        struct data_result r;
        data_decode(input, 8, cuts[i], 2, 100, &r);
        assert_int_equal(r.end, 8);
        assert_false(r.bare_eol);
        assert_int_equal(r.out_len, 5);
        assert_memory_equal(r.out, "abc\r\n", 5);
    }
}

/* the output limit: exactly full is fine, one byte over refuses and empties */
static void test_data_too_big(void **state)
{
    (void)state;
    const char *input = "hello\r\n.\r\n";
    struct data_result r;
    size_t cut = 3;
    data_decode(input, 10, NULL, 0, 7, &r);
    assert_int_equal(r.end, 10);
    assert_false(r.too_big);
    assert_int_equal(r.out_len, 7);
    data_decode(input, 10, NULL, 0, 6, &r);
    assert_int_equal(r.end, 10); /* reading goes on to the real end */
    assert_true(r.too_big);
    assert_int_equal(r.out_len, 0);
    data_decode(input, 10, &cut, 1, 6, &r);
    assert_int_equal(r.end, 10);
    assert_true(r.too_big);
}

/* --- BDAT ------------------------------------------------------------------------------- */

struct bdat_data_case {
    const char *name;
    const char *chunks[4]; /* NULL-terminated */
    int want_bare;
};

static const struct bdat_data_case bdat_data_cases[] = {
    {"crlf lines", {"a\r\nb\r\n", NULL}, 0},
    {"no final line end", {"a\r\nb", NULL}, 0},
    {"crlf across chunks", {"a\r", "\nb\r\n", NULL}, 0},
    {"empty chunks", {"", "a\r\n", "", NULL}, 0},
    {"dots are data", {".\r\n..\r\n", NULL}, 0},
    {"bare lf", {"a\nb", NULL}, 1},
    {"bare cr", {"a\rb", NULL}, 1},
    {"cr then other chunk", {"a\r", "b", NULL}, 1},
    {"cr cr lf", {"a\r\r\n", NULL}, 1},
    {"lf at chunk start", {"a", "\nb", NULL}, 1},
    {"cr at the very end", {"a\r\nb\r", NULL}, 1}, /* the bug smtpproto_bdat_end fixes */
    {"cr at the end of the last chunk", {"a\r\n", "b\r", NULL}, 1},
};

static void test_bdat_data(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bdat_data_cases) / sizeof(bdat_data_cases[0]); i++) {
        const struct bdat_data_case *c = &bdat_data_cases[i];
        struct smtpproto_data d;
        struct buf out, want;
        print_message("BDAT data: %s\n", c->name);
        buf_init(&out, 1024);
        buf_init(&want, 1024);
        smtpproto_data_init(&d);
        for (size_t k = 0; c->chunks[k]; k++) {
            smtpproto_bdat_consume(&d, c->chunks[k], strlen(c->chunks[k]), &out);
            assert_int_equal(buf_append_str(&want, c->chunks[k]), 0);
        }
        smtpproto_bdat_end(&d);
        assert_int_equal(d.bare_eol, c->want_bare);
        if (!c->want_bare) /* kept as they are, dots included */
            assert_string_equal(buf_str(&out), buf_str(&want));
        buf_cleanup(&out);
        buf_cleanup(&want);
    }
    /* NULL output: checked, nothing kept */
    struct smtpproto_data d;
    smtpproto_data_init(&d);
    smtpproto_bdat_consume(&d, "a\nb", 3, NULL);
    assert_true(d.bare_eol);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_addr_check),
        cmocka_unit_test(test_mail_params),
        cmocka_unit_test(test_rcpt_params),
        cmocka_unit_test(test_dsn_limits),
        cmocka_unit_test(test_xtext),
        cmocka_unit_test(test_number),
        cmocka_unit_test(test_bdat_args),
        cmocka_unit_test(test_data_cases),
        cmocka_unit_test(test_data_terminator_split),
        cmocka_unit_test(test_data_too_big),
        cmocka_unit_test(test_bdat_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
