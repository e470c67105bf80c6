/*
 * test_dsn - bounce building: header fields, the three MIME parts, ORCPT and
 * ENVID decoding, RET=HDRS and the size limit, folding of long diagnostics,
 * a boundary that is not in the returned message, and the invariants every
 * notice keeps (CRLF only, lines <= 998 bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dsn.h"

#define MSG_PLAIN "From: a@x.example\r\nTo: b@y.example\r\nSubject: hi\r\n\r\nbody line\r\n.dot\r\n"
#define LONG_WORD                                                                                  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"  \
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
    "x"
#define MAX_WANT 8

struct dsn_case {
    const char *name;
    const char *msg;
    int ret_full;
    size_t full_limit;
    const char *envid;
    const char *orcpt;
    const char *remote_mta;
    const char *diagnostic;
    const char *status;
    int two_rcpts;
    int want_rc;
    const char *want[MAX_WANT];   /* substrings that must occur */
    const char *absent[MAX_WANT]; /* substrings that must not */
};

static char long_diag[4096];
static char long_word_diag[4096];
static char clash_msg[512];

static const struct dsn_case dsn_cases[] = {
    {.name = "basic structure",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .remote_mta = "mx.y.example",
     .diagnostic = "550 5.1.1 <b@y.example>: user unknown",
     .status = "5.1.1",
     .want = {"From: MAILER-DAEMON@relay.example (Mail Delivery System)\r\n",
              "To: <a@x.example>\r\n", "Subject: Undelivered Mail Returned to Sender\r\n",
              "Date: Tue, 14 Nov 2023 10:00:00 +0000\r\n",
              "Message-ID: <Q1.1700000000@relay.example>\r\n", "Auto-Submitted: auto-replied\r\n",
              "Content-Type: multipart/report; report-type=delivery-status;\r\n"},
     .absent = {"Original-Recipient", "Original-Envelope-Id", "Content-Transfer-Encoding"}},
    {.name = "delivery-status fields",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .remote_mta = "mx.y.example",
     .diagnostic = "550 5.1.1 <b@y.example>: Recipient address rejected: user unknown",
     .status = "5.1.1",
     .want = {"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n",
              "Arrival-Date: Mon, 13 Nov 2023 09:00:00 +0000\r\n",
              "\r\n\r\nFinal-Recipient: rfc822; b@y.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
              "Remote-MTA: dns; mx.y.example\r\n",
              "Diagnostic-Code: smtp; 550 5.1.1 <b@y.example>: Recipient address rejected:\r\n"
              " user unknown\r\n",
              "<b@y.example>: host mx.y.example said: 550 5.1.1 <b@y.example>: Recipient\r\n"
              "    address rejected: user unknown\r\n"}},
    {.name = "full message returned",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .status = "5.1.1",
     .want = {"Content-Type: message/rfc822\r\n\r\n" MSG_PLAIN "\r\n--=_coex_dsn_Q1_0--\r\n"},
     .absent = {"text/rfc822-headers"}},
    {.name = "RET=HDRS returns the header block",
     .msg = MSG_PLAIN,
     .ret_full = 0,
     .status = "5.1.1",
     .want = {"Content-Type: text/rfc822-headers\r\n\r\nFrom: a@x.example\r\nTo: b@y.example\r\n"
              "Subject: hi\r\n\r\n--=_coex_dsn_Q1_0--\r\n"},
     .absent = {"body line", "message/rfc822"}},
    {.name = "over the size limit: headers only",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .full_limit = 10,
     .status = "5.1.1",
     .want = {"Content-Type: text/rfc822-headers\r\n"},
     .absent = {"body line"}},
    {.name = "ORCPT and ENVID decoded",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .orcpt = "rfc822;b+2Btag@y.example",
     .envid = "QQ+3D1",
     .status = "5.1.1",
     .want = {"Original-Recipient: rfc822;b+tag@y.example\r\n", "Original-Envelope-Id: QQ=1\r\n"}},
    {.name = "bad xtext ORCPT is left out",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .orcpt = "rfc822;b+zz@y.example",
     .status = "5.1.1",
     .absent = {"Original-Recipient"}},
    {.name = "long diagnostic folded",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .remote_mta = "mx.y.example",
     .diagnostic = long_diag,
     .status = "5.7.1",
     .want = {"Diagnostic-Code: smtp; 550 5.7.1 word0 word1", "\r\n word"}},
    {.name = "word longer than a line is cut",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .remote_mta = "mx.y.example",
     .diagnostic = long_word_diag,
     .status = "5.7.1",
     .want = {"Diagnostic-Code: smtp; 550\r\n xxxx"}},
    {.name = "control bytes and 8-bit in diagnostics",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .remote_mta = "mx",
     .diagnostic = "550 bad\r\nInjected: yes \xc3\xa9",
     .status = "5.0.0",
     .want = {"Diagnostic-Code: smtp; 550 bad Injected: yes ??\r\n"},
     .absent = {"\r\nInjected"}},
    {.name = "no remote MTA: local diagnostic",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .diagnostic = "delivery time expired",
     .status = "4.4.7",
     .want = {"Status: 4.4.7\r\nDiagnostic-Code: X-Coex; delivery time expired\r\n"},
     .absent = {"Remote-MTA"}},
    {.name = "bad status becomes 5.0.0",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .status = "550",
     .want = {"Status: 5.0.0\r\n"}},
    {.name = "two recipients",
     .msg = MSG_PLAIN,
     .ret_full = 1,
     .status = "5.1.1",
     .two_rcpts = 1,
     .want = {"Final-Recipient: rfc822; b@y.example\r\n",
              "Final-Recipient: rfc822; c@y.example\r\n", "<c@y.example>: 5.2.2"}},
    {.name = "boundary in the message is avoided",
     .msg = clash_msg,
     .ret_full = 1,
     .status = "5.1.1",
     .want = {"boundary=\"=_coex_dsn_Q1_2\""}},
    {.name = "bare LF in the returned message",
     .msg = "From: a@x\nSubject: s\n\nline\nx\r",
     .ret_full = 1,
     .status = "5.1.1",
     .want = {"\r\n\r\nFrom: a@x\r\nSubject: s\r\n\r\nline\r\nx\r\n\r\n--"}},
    {.name = "8-bit returned message",
     .msg = "Subject: caf\xc3\xa9\r\n\r\nx\r\n",
     .ret_full = 1,
     .status = "5.1.1",
     .want = {"delivery-status;\r\n\tboundary=\"=_coex_dsn_Q1_0\"\r\nContent-Transfer-Encoding: "
              "8bit\r\n",
              "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n"}},
    {.name = "empty message",
     .msg = "",
     .ret_full = 1,
     .status = "5.1.1",
     .want = {"Content-Type: message/rfc822\r\n\r\n\r\n--=_coex_dsn_Q1_0--\r\n"}},
};

/* check_invariants - CRLF only, no line over 998 bytes, one closing boundary at the end */
static void check_invariants(const char *out, size_t len, const char *msg)
{
    size_t line_start = 0;
    for (size_t i = 0; i < len; i++) {
        if (out[i] == '\n') {
            assert_true(i > 0 && out[i - 1] == '\r');
            assert_true(i - 1 - line_start <= DSN_LINE_MAX);
            line_start = i + 1;
        } else if (out[i] == '\r') {
            assert_true(i + 1 < len && out[i + 1] == '\n');
        }
    }
    assert_int_equal(line_start, len); /* ends with CRLF */
    const char *b = strstr(out, "boundary=\"");
    assert_non_null(b);
    b += strlen("boundary=\"");
    char boundary[128];
    size_t blen = strcspn(b, "\"");
    assert_true(blen < sizeof(boundary));
    memcpy(boundary, b, blen);
    boundary[blen] = '\0';
    assert_null(strstr(msg, boundary));
    char closing[160];
    snprintf(closing, sizeof(closing), "\r\n--%s--\r\n", boundary);
    assert_true(len > strlen(closing));
    assert_string_equal(out + len - strlen(closing), closing);
}

static void test_dsn_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(dsn_cases); i++) {
        const struct dsn_case *c = &dsn_cases[i];
        struct dsn_rcpt rcpts[2] = {
            {.addr = "b@y.example",
             .orcpt = c->orcpt,
             .status = c->status,
             .remote_mta = c->remote_mta,
             .diagnostic = c->diagnostic},
            {.addr = "c@y.example", .status = "5.2.2"},
        };
        struct dsn_info info = {.reporting_mta = "relay.example",
                                .queue_id = "Q1",
                                .message_id = "Q1.1700000000@relay.example",
                                .date = "Tue, 14 Nov 2023 10:00:00 +0000",
                                .arrival_date = "Mon, 13 Nov 2023 09:00:00 +0000",
                                .sender = "a@x.example",
                                .envid = c->envid,
                                .rcpts = rcpts,
                                .rcpt_count = c->two_rcpts ? 2 : 1,
                                .ret_full = c->ret_full,
                                .full_limit = c->full_limit,
                                .msg = c->msg,
                                .msg_len = strlen(c->msg)};
        struct buf out;
        buf_init(&out, DSN_OVERHEAD_LIMIT + info.msg_len);
        print_message("case: %s\n", c->name);
        assert_int_equal(dsn_build(&out, &info), c->want_rc);
        if (c->want_rc == 0)
            check_invariants(out.data, out.len, c->msg);
        for (size_t w = 0; w < MAX_WANT && c->want[w]; w++) {
            if (strstr(buf_str(&out), c->want[w]) == NULL)
                fail_msg("%s: missing [%s] in:\n%s", c->name, c->want[w], buf_str(&out));
        }
        for (size_t w = 0; w < MAX_WANT && c->absent[w]; w++) {
            if (strstr(buf_str(&out), c->absent[w]) != NULL)
                fail_msg("%s: unexpected [%s] in:\n%s", c->name, c->absent[w], buf_str(&out));
        }
        buf_cleanup(&out);
    }
}

struct bad_case {
    const char *name;
    const char *sender;
    size_t rcpt_count;
    size_t limit;
};

static const struct bad_case bad_cases[] = {
    {.name = "null sender", .sender = "", .rcpt_count = 1, .limit = DSN_OVERHEAD_LIMIT},
    {.name = "no sender", .sender = NULL, .rcpt_count = 1, .limit = DSN_OVERHEAD_LIMIT},
    {.name = "no recipient", .sender = "a@x", .rcpt_count = 0, .limit = DSN_OVERHEAD_LIMIT},
    {.name = "output limit", .sender = "a@x", .rcpt_count = 1, .limit = 100},
};

static void test_dsn_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct dsn_rcpt rcpt = {.addr = "b@y", .status = "5.1.1"};
        struct dsn_info info = {.reporting_mta = "h",
                                .queue_id = "Q",
                                .message_id = "m@h",
                                .date = "d",
                                .sender = c->sender,
                                .rcpts = &rcpt,
                                .rcpt_count = c->rcpt_count,
                                .ret_full = 1,
                                .msg = MSG_PLAIN,
                                .msg_len = strlen(MSG_PLAIN)};
        struct buf out;
        buf_init(&out, c->limit);
        assert_int_equal(buf_append_str(&out, "keep"), 0);
        print_message("case: %s\n", c->name);
        assert_int_equal(dsn_build(&out, &info), -1);
        assert_string_equal(buf_str(&out), "keep"); /* what was there before stays */
        buf_cleanup(&out);
    }
}

struct xtext_case {
    const char *in;
    int want_rc;
    const char *want;
};

static const struct xtext_case xtext_cases[] = {
    {"plain", 0, "plain"}, {"a+2Bb", 0, "a+b"},    {"+3D+20", 0, "= "}, {"bad+2", -1, NULL},
    {"bad+zz", -1, NULL},  {"lower+2b", -1, NULL}, {"", 0, ""},
};

static void test_dsn_xtext(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(xtext_cases); i++) {
        struct buf out;
        buf_init(&out, 64);
        assert_int_equal(dsn_xtext_decode(&out, xtext_cases[i].in), xtext_cases[i].want_rc);
        if (xtext_cases[i].want)
            assert_string_equal(buf_str(&out), xtext_cases[i].want);
        buf_cleanup(&out);
    }
}

/* make_fixtures - long diagnostics and a message that contains the first boundaries */
static void make_fixtures(void)
{
    size_t off = 0;
    off += (size_t)snprintf(long_diag, sizeof(long_diag), "550 5.7.1");
    for (int i = 0; off < 3000; i++)
        off += (size_t)snprintf(long_diag + off, sizeof(long_diag) - off, " word%d", i);
    off = (size_t)snprintf(long_word_diag, sizeof(long_word_diag), "550 ");
    while (off + sizeof(LONG_WORD) < 3000)
        off +=
            (size_t)snprintf(long_word_diag + off, sizeof(long_word_diag) - off, "%s", LONG_WORD);
    snprintf(clash_msg, sizeof(clash_msg),
             "Subject: x\r\n\r\n--=_coex_dsn_Q1_0\r\n--=_coex_dsn_Q1_1--\r\n");
}

int main(void)
{
    make_fixtures();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dsn_table),
        cmocka_unit_test(test_dsn_refused),
        cmocka_unit_test(test_dsn_xtext),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
