/*
 * test_csv - table-driven tests for the RFC 4180 record reader (src/dir/csv.c).
 *
 * Every row gives an input buffer and the whole outcome of reading it to the
 * end, rendered as text, one line per csv_next result:
 *   "LINE: [field] [field]"     a record and the line it starts on
 *   "LINE: error: MESSAGE"      a syntax error (the reader goes on after it)
 * so a row shows at a glance which line numbers the reader keeps after
 * multi-line quoted fields and after errors.
 *
 * Covers RFC 4180 §2 (quoted fields, "" escapes, CRLF, line breaks inside
 * quotes), LF-only files, a leading UTF-8 BOM, blanks trimmed around unquoted
 * fields, the documented refusals (a quote inside an unquoted field, text
 * after a closing quote, an unterminated quote, too many fields, an over-long
 * field, a NUL byte) and a final line without a line break.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "util.h"

struct csv_case {
    const char *name;
    const char *input;
    size_t input_len; /* 0: strlen(input); for inputs holding NUL bytes */
    const char *want;
};

#define ROW(n, in, w)                                                                              \
    {                                                                                              \
        .name = (n), .input = (in), .want = (w)                                                    \
    }
#define ROWN(n, in, w)                                                                             \
    {                                                                                              \
        .name = (n), .input = (in), .input_len = sizeof(in) - 1, .want = (w)                       \
    }

#define BOM "\xEF\xBB\xBF"
#define FIELDS_8 "f,f,f,f,f,f,f,f"
#define FIELDS_32 FIELDS_8 "," FIELDS_8 "," FIELDS_8 "," FIELDS_8
#define WANT_8 " [f] [f] [f] [f] [f] [f] [f] [f]"
#define WANT_32 WANT_8 WANT_8 WANT_8 WANT_8

static const struct csv_case csv_cases[] = {
    /* --- record ends --- */
    ROW("empty input", "", ""),
    ROW("LF records", "a,b\nc,d\n", "1: [a] [b]\n2: [c] [d]\n"),
    ROW("CRLF records", "a,b\r\nc,d\r\n", "1: [a] [b]\n2: [c] [d]\n"),
    ROW("mixed CRLF and LF", "a,b\r\nc,d\ne,f\r\n", "1: [a] [b]\n2: [c] [d]\n3: [e] [f]\n"),
    ROW("final line without a line break", "a,b\nc,d", "1: [a] [b]\n2: [c] [d]\n"),
    ROW("final CRLF line without a line break", "a,b\r\nc,d", "1: [a] [b]\n2: [c] [d]\n"),
    ROW("final quoted field without a line break", "a,\"b\"", "1: [a] [b]\n"),
    ROW("single field", "only\n", "1: [only]\n"),
    ROW("blank line is one empty field", "a\n\nb\n", "1: [a]\n2: []\n3: [b]\n"),
    ROW("blank CRLF line", "a\r\n\r\nb\r\n", "1: [a]\n2: []\n3: [b]\n"),
    ROW("trailing comma gives an empty last field", "a,\nb,c,\n", "1: [a] []\n2: [b] [c] []\n"),
    ROW("trailing comma at the very end", "a,", "1: [a] []\n"),
    ROW("commas only", ",,\n", "1: [] [] []\n"),

    /* --- BOM --- */
    ROW("BOM skipped", BOM "source,target\n", "1: [source] [target]\n"),
    ROW("BOM and CRLF", BOM "source,target\r\na@x,b@y\r\n",
        "1: [source] [target]\n2: [a@x] [b@y]\n"),
    ROW("BOM only", BOM, ""),
    ROW("BOM not at the start is data", "a," BOM "b\n", "1: [a] [" BOM "b]\n"),

    /* --- quoting (RFC 4180 §2.5-2.7) --- */
    ROW("quoted field with a comma", "\"Doe, John\",x\n", "1: [Doe, John] [x]\n"),
    ROW("doubled quotes are one quote", "\"say \"\"hi\"\"\",x\n", "1: [say \"hi\"] [x]\n"),
    ROW("field that is one escaped quote", "\"\"\"\",x\n", "1: [\"] [x]\n"),
    ROW("empty quoted field", "\"\",x\n", "1: [] [x]\n"),
    ROW("quoted fields everywhere", "\"a\",\"b\",\"c\"\r\n", "1: [a] [b] [c]\n"),
    ROW("quoted field keeps its inner blanks", "\" a \",b\n", "1: [ a ] [b]\n"),
    ROW("blanks around a quoted field are dropped", "  \"a\" ,\t\"b\"\t\n", "1: [a] [b]\n"),
    ROW("quoted comma and quotes at once", "\"a,\"\"b\"\",c\"\n", "1: [a,\"b\",c]\n"),

    /* --- trimming --- */
    ROW("blanks around unquoted fields trimmed", " a ,\tb\t, c d \n", "1: [a] [b] [c d]\n"),
    ROW("blank-only fields become empty", " , \t ,x\n", "1: [] [] [x]\n"),
    ROW("blanks before CRLF trimmed", "a ,b \r\n", "1: [a] [b]\n"),

    /* --- line breaks inside quotes keep the line count --- */
    ROW("multi-line quoted field (LF)", "a,\"x\ny\"\nb,c\n", "1: [a] [x\ny]\n3: [b] [c]\n"),
    ROW("multi-line quoted field (CRLF)", "a,\"x\r\ny\"\r\nb,c\r\n",
        "1: [a] [x\r\ny]\n3: [b] [c]\n"),
    ROW("quoted field over three lines", "h\n\"1\n2\n3\",z\nnext\n",
        "1: [h]\n2: [1\n2\n3] [z]\n5: [next]\n"),
    ROW("two multi-line fields in one record", "\"a\nb\",\"c\nd\"\ne\n",
        "1: [a\nb] [c\nd]\n4: [e]\n"),

    /* --- errors, and where the reader goes on --- */
    ROW("unterminated quote", "a,b\nc,\"d\ne,f\n",
        "1: [a] [b]\n2: error: unterminated quoted field\n"),
    ROW("unterminated quote at the end", "a,\"", "1: error: unterminated quoted field\n"),
    ROW("quote inside an unquoted field", "a,b\"c\nd,e\n",
        "1: error: quote inside an unquoted field\n2: [d] [e]\n"),
    ROW("quote at the end of an unquoted field", "ab\",c\nd\n",
        "1: error: quote inside an unquoted field\n2: [d]\n"),
    ROW("text after a closing quote", "\"a\"b,c\nd\n",
        "1: error: unexpected character after a quoted field\n2: [d]\n"),
    ROW("text after a quoted field with a blank", "\"a\" b\nd\n",
        "1: error: unexpected character after a quoted field\n2: [d]\n"),
    ROW("error after a multi-line field keeps the next line number", "\"a\nb\"x\nc\n",
        "1: error: unexpected character after a quoted field\n3: [c]\n"),
    ROW("error on a middle line", "a\nb\"\nc\n",
        "1: [a]\n2: error: quote inside an unquoted field\n3: [c]\n"),
    ROW("error on the last line without a line break", "a\nb\"",
        "1: [a]\n2: error: quote inside an unquoted field\n"),
    ROW("32 fields are fine", FIELDS_32 "\n", "1:" WANT_32 "\n"),
    ROW("33 fields are too many", FIELDS_32 ",f\nok\n", "1: error: more than 32 fields\n2: [ok]\n"),
    ROWN("NUL byte in an unquoted field", "a\0b,c\nd\n",
         "1: error: field too long (over 1023 bytes) or holds a NUL byte\n2: [d]\n"),
    ROWN("NUL byte in a quoted field", "\"a\0b\",c\nd\n",
         "1: error: field too long (over 1023 bytes) or holds a NUL byte\n2: [d]\n"),
};

/* csv_render - read everything and write it in the table's text form; caller owns */
static char *csv_render(const char *input, size_t len)
{
    struct csv_reader rd;
    struct csv_record *rec = xmalloc(sizeof(*rec));
    char err[256];
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    int rc, guard = 0;

    assert_non_null(out);
    csv_init(&rd, input, len);
    while ((rc = csv_next(&rd, rec, err, sizeof(err))) != 0) {
        assert_true(++guard < 1000); /* the reader always moves on */
        if (rc < 0) {
            fprintf(out, "%lu: error: %s\n", rec->line, err);
            continue;
        }
        assert_int_equal(rc, 1);
        assert_true(rec->count >= 1 && rec->count <= LIMIT_CSV_FIELDS);
        fprintf(out, "%lu:", rec->line);
        for (size_t i = 0; i < rec->count; i++)
            fprintf(out, " [%s]", rec->field[i]);
        fputc('\n', out);
    }
    /* at the end it stays at the end */
    assert_int_equal(csv_next(&rd, rec, err, sizeof(err)), 0);
    fclose(out);
    free(rec);
    return text;
}

static void test_csv_cases(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t c = 0; c < ARRAY_LEN(csv_cases); c++) {
        const struct csv_case *tc = &csv_cases[c];
        size_t len = tc->input_len ? tc->input_len : strlen(tc->input);
        /* a heap copy of exactly len bytes, so ASan sees any read past the end */
        char *input = xmalloc(len ? len : 1);
        memcpy(input, tc->input, len);
        char *got = csv_render(input, len);
        if (strcmp(got, tc->want) != 0) {
            print_error("%s:\n--- got\n%s--- want\n%s---\n", tc->name, got, tc->want);
            failed++;
        }
        free(got);
        free(input);
    }
    assert_int_equal(failed, 0);
}

/* a field of exactly LIMIT_CSV_FIELD - 1 bytes fits, one more does not */
static void test_csv_field_limit(void **state)
{
    (void)state;
    size_t max = LIMIT_CSV_FIELD - 1;
    char *input = xmalloc(max + 16);
    char want[128];

    for (int quoted = 0; quoted < 2; quoted++)
        for (size_t size = max; size <= max + 1; size++) {
            size_t len = 0;
            if (quoted)
                input[len++] = '"';
            memset(input + len, 'x', size);
            len += size;
            if (quoted)
                input[len++] = '"';
            memcpy(input + len, "\nz\n", 3);
            len += 3;
            char *got = csv_render(input, len);
            if (size == max) {
                assert_int_equal(strlen(got), strlen("1: []\n2: [z]\n") + max);
                assert_memory_equal(got, "1: [", 4);
                assert_string_equal(got + 4 + max, "]\n2: [z]\n");
            } else {
                snprintf(want, sizeof(want),
                         "1: error: field too long (over %d bytes) or holds a NUL byte\n2: [z]\n",
                         LIMIT_CSV_FIELD - 1);
                assert_string_equal(got, want);
            }
            free(got);
        }
    free(input);
}

/* the error message fits whatever buffer the caller gives */
static void test_csv_small_error_buffer(void **state)
{
    (void)state;
    static const char input[] = "a\"b\n";
    struct csv_reader rd;
    struct csv_record *rec = xmalloc(sizeof(*rec));
    char err[8];
    memset(err, 'Z', sizeof(err));
    csv_init(&rd, input, sizeof(input) - 1);
    assert_int_equal(csv_next(&rd, rec, err, 6), -1);
    assert_string_equal(err, "quote");
    assert_int_equal(err[6], 'Z');
    assert_int_equal(rec->line, 1);
    assert_int_equal(csv_next(&rd, rec, err, sizeof(err)), 0);
    free(rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_cases),
        cmocka_unit_test(test_csv_field_limit),
        cmocka_unit_test(test_csv_small_error_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
