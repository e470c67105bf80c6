/*
 * test_hdr - header block splitting: field boundaries, names, the
 * header/body boundary, CRLF and bare LF, folding, obs forms.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hdr.h"

struct hdr_case {
    const char *name;
    const char *input;
    /* field names separated by "|" ("?" for a line that is not a field) */
    const char *want_names;
    /* value of the last field (body after the colon, up to the final line end) */
    const char *want_last_value;
    /* the body, i.e. input + body_off */
    const char *want_body;
    /* input[0..header_end) ends with this (or "" when header_end is 0) */
    const char *want_header_tail;
};

static const struct hdr_case hdr_cases[] = {
    {.name = "crlf", .input = "From: a@b\r\nTo: c@d\r\n\r\nbody\r\n",
     .want_names = "From|To", .want_last_value = " c@d", .want_body = "body\r\n",
     .want_header_tail = "c@d\r\n"},
    {.name = "bare lf", .input = "From: a@b\nTo: c@d\n\nbody\n", .want_names = "From|To",
     .want_last_value = " c@d", .want_body = "body\n", .want_header_tail = "c@d\n"},
    {.name = "folded crlf", .input = "To: a@b,\r\n\tc@d,\r\n e@f\r\nX: y\r\n\r\n",
     .want_names = "To|X", .want_last_value = " y", .want_body = "",
     .want_header_tail = "X: y\r\n"},
    {.name = "folded value", .input = "To: a@b,\r\n\tc@d\r\n\r\nB",
     .want_names = "To", .want_last_value = " a@b,\r\n\tc@d", .want_body = "B",
     .want_header_tail = "c@d\r\n"},
    {.name = "no body, no blank line", .input = "From: a@b\r\nTo: c@d\r\n",
     .want_names = "From|To", .want_last_value = " c@d", .want_body = "",
     .want_header_tail = "c@d\r\n"},
    {.name = "no final newline", .input = "From: a@b\r\nTo: c@d", .want_names = "From|To",
     .want_last_value = " c@d", .want_body = "", .want_header_tail = "c@d"},
    {.name = "empty body after blank line", .input = "From: a@b\r\n\r\n", .want_names = "From",
     .want_last_value = " a@b", .want_body = "", .want_header_tail = "a@b\r\n"},
    {.name = "obs ws before colon", .input = "Subject : hi\r\nTo: x@y\r\n\r\n",
     .want_names = "Subject|To", .want_last_value = " x@y", .want_body = "",
     .want_header_tail = "x@y\r\n"},
    {.name = "empty value", .input = "X-MS-Has-Attach:\r\nTo:x@y\r\n\r\n",
     .want_names = "X-MS-Has-Attach|To", .want_last_value = "x@y", .want_body = "",
     .want_header_tail = "x@y\r\n"},
    {.name = "line without colon", .input = "From: a@b\r\nnot a field\r\nTo: c@d\r\n\r\nB",
     .want_names = "From|?|To", .want_last_value = " c@d", .want_body = "B",
     .want_header_tail = "c@d\r\n"},
    {.name = "leading continuation", .input = " folded\r\nTo: c@d\r\n\r\nB",
     .want_names = "?|To", .want_last_value = " c@d", .want_body = "B",
     .want_header_tail = "c@d\r\n"},
    {.name = "empty message", .input = "", .want_names = "", .want_last_value = NULL,
     .want_body = "", .want_header_tail = ""},
    {.name = "body only", .input = "\r\nhello\r\n", .want_names = "", .want_last_value = NULL,
     .want_body = "hello\r\n", .want_header_tail = ""},
    {.name = "blank line in body kept", .input = "A: 1\n\nx\n\ny\n", .want_names = "A",
     .want_last_value = " 1", .want_body = "x\n\ny\n", .want_header_tail = "A: 1\n"},
    {.name = "colon inside value", .input = "Date: Fri, 4 Dec 2026 10:00:00 +0000\r\n\r\n",
     .want_names = "Date", .want_last_value = " Fri, 4 Dec 2026 10:00:00 +0000",
     .want_body = "", .want_header_tail = "+0000\r\n"},
    {.name = "space in name is not a field", .input = "Bad Name: x\r\nOk: y\r\n\r\n",
     .want_names = "?|Ok", .want_last_value = " y", .want_body = "",
     .want_header_tail = "y\r\n"},
    {.name = "mbox From_ line", .input = "From sender Fri Dec 4\nTo: x@y\n\nB",
     .want_names = "?|To", .want_last_value = " x@y", .want_body = "B",
     .want_header_tail = "x@y\n"},
    {.name = "cr alone inside value", .input = "X: a\rb\r\n\r\n", .want_names = "X",
     .want_last_value = " a\rb", .want_body = "", .want_header_tail = "a\rb\r\n"},
    {.name = "utf8 value", .input = "Subject: J\xc3\xb6rg\r\n\r\n", .want_names = "Subject",
     .want_last_value = " J\xc3\xb6rg", .want_body = "", .want_header_tail = "\xb6rg\r\n"},
    {.name = "tab continuation then blank", .input = "To: a\n\t\n\nB", .want_names = "To",
     .want_last_value = " a\n\t", .want_body = "B", .want_header_tail = "\t\n"},
};

static void test_hdr_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hdr_cases) / sizeof(hdr_cases[0]); i++) {
        const struct hdr_case *c = &hdr_cases[i];
        const char *msg = c->input;
        size_t len = strlen(msg);
        struct hdr_iter it;
        struct hdr_field f, last = {0};
        char names[512] = "";
        size_t used = 0, prev_end = 0;
        int have_last = 0;

        print_message("case: %s\n", c->name);
        hdr_iter_init(&it, msg, len);
        while (hdr_iter_next(&it, &f)) {
            /* fields tile the header block: no byte is lost or counted twice */
            assert_int_equal(f.off, prev_end);
            assert_true(f.end > f.off && f.end <= len);
            assert_true(f.value_off <= f.value_end && f.value_end <= f.end);
            prev_end = f.end;
            const char *name = f.name_len ? msg + f.off : "?";
            size_t name_len = f.name_len ? f.name_len : 1;
            if (used)
                names[used++] = '|';
            memcpy(names + used, name, name_len);
            used += name_len;
            names[used] = '\0';
            last = f;
            have_last = 1;
        }
        assert_string_equal(names, c->want_names);
        assert_int_equal(it.header_end, prev_end);
        assert_string_equal(msg + it.body_off, c->want_body);
        if (c->want_last_value) {
            assert_true(have_last);
            assert_int_equal(last.value_end - last.value_off, strlen(c->want_last_value));
            assert_memory_equal(msg + last.value_off, c->want_last_value,
                                strlen(c->want_last_value));
        }
        size_t tail = strlen(c->want_header_tail);
        assert_true(it.header_end >= tail);
        assert_memory_equal(msg + it.header_end - tail, c->want_header_tail, tail);

        size_t header_end, body_off;
        hdr_split(msg, len, &header_end, &body_off);
        assert_int_equal(header_end, it.header_end);
        assert_int_equal(body_off, it.body_off);
    }
}

static void test_hdr_name_is(void **state)
{
    (void)state;
    const char *msg = "rEsEnT-tO: x@y\r\n";
    struct hdr_iter it;
    struct hdr_field f;
    hdr_iter_init(&it, msg, strlen(msg));
    assert_int_equal(hdr_iter_next(&it, &f), 1);
    assert_true(hdr_name_is(msg, &f, "Resent-To", 9));
    assert_false(hdr_name_is(msg, &f, "Resent-T", 8));
    assert_false(hdr_name_is(msg, &f, "To", 2));
    assert_int_equal(hdr_iter_next(&it, &f), 0);
    assert_int_equal(hdr_iter_next(&it, &f), 0);
}

/* explicit lengths: a NUL byte inside the header is just a byte */
static void test_hdr_nul_byte(void **state)
{
    (void)state;
    const char msg[] = "X: a\0b\r\nTo: c\r\n\r\nB";
    size_t len = sizeof(msg) - 1;
    struct hdr_iter it;
    struct hdr_field f;
    int n = 0;
    hdr_iter_init(&it, msg, len);
    while (hdr_iter_next(&it, &f))
        n++;
    assert_int_equal(n, 2);
    assert_int_equal(it.body_off, len - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hdr_cases),
        cmocka_unit_test(test_hdr_name_is),
        cmocka_unit_test(test_hdr_nul_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
