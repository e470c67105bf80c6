/*
 * test_rewrite - header and envelope rewriting against a small directory:
 * every address field, both directions, display names, sub-addresses,
 * domain pairs, exceptions, disabled pairs, byte identity, idempotence, the
 * trace, and the golden Exchange Online message (tests/data/NAME.in.eml ->
 * NAME.out.eml, byte for byte).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hdr.h"
#include "rewrite.h"

#define S REWRITE_TO_SOURCE
#define T REWRITE_TO_TARGET

struct rewrite_case {
    const char *name;
    enum rewrite_direction dir;
    const char *input;
    const char *want; /* NULL: byte-identical to input */
    /* trace lines "Field|old|new|rule|name" joined by "\n"; NULL: not checked */
    const char *want_trace;
};

static const struct rewrite_case rewrite_cases[] = {
    /* every address field, to-source */
    {"from angle", S, "From: Alex Wilber <alexw@target.example>\r\n",
     "From: Alex Wilber <alex.wilber@source.example>\r\n",
     "From|alexw@target.example|alex.wilber@source.example|mailbox-pair|0"},
    {"from bare", S, "From: alexw@target.example\r\n", "From: alex.wilber@source.example\r\n",
     NULL},
    {"sender", S, "Sender: <alexw@target.example>\r\n",
     "Sender: <alex.wilber@source.example>\r\n", NULL},
    {"reply-to", S, "Reply-To: ceo@target.example\r\n", "Reply-To: ceo@source.example\r\n",
     NULL},
    {"to", S, "To: ceo@target.example\r\n", "To: ceo@source.example\r\n", NULL},
    {"cc", S, "Cc: ceo@target.example\r\n", "Cc: ceo@source.example\r\n", NULL},
    {"bcc", S, "Bcc: ceo@target.example\r\n", "Bcc: ceo@source.example\r\n", NULL},
    {"resent-from", S, "Resent-From: ceo@target.example\r\n",
     "Resent-From: ceo@source.example\r\n", NULL},
    {"resent-sender", S, "Resent-Sender: ceo@target.example\r\n",
     "Resent-Sender: ceo@source.example\r\n", NULL},
    {"resent-to", S, "Resent-To: ceo@target.example\r\n", "Resent-To: ceo@source.example\r\n",
     NULL},
    {"resent-cc", S, "Resent-Cc: ceo@target.example\r\n", "Resent-Cc: ceo@source.example\r\n",
     NULL},
    {"resent-bcc", S, "Resent-Bcc: ceo@target.example\r\n",
     "Resent-Bcc: ceo@source.example\r\n", NULL},
    {"disposition-notification-to", S, "Disposition-Notification-To: <ceo@target.example>\r\n",
     "Disposition-Notification-To: <ceo@source.example>\r\n", NULL},
    {"return-receipt-to", S, "Return-Receipt-To: ceo@target.example\r\n",
     "Return-Receipt-To: ceo@source.example\r\n", NULL},
    {"field name case", S, "tO: ceo@target.example\r\nFROM : ceo@target.example\r\n",
     "tO: ceo@source.example\r\nFROM : ceo@source.example\r\n", NULL},
    /* fields that are not rewritten */
    {"subject untouched", S, "Subject: mail alexw@target.example\r\n", NULL, ""},
    {"x-header untouched", S,
     "X-Original-From: alexw@target.example\r\nX-To: ceo@target.example\r\n"
     "Return-Path: <alexw@target.example>\r\nMessage-ID: <alexw@target.example>\r\n",
     NULL, ""},
    {"to-like names", S, "To-Do: ceo@target.example\r\nCc2: ceo@target.example\r\n", NULL, ""},
    /* lists, folding, byte-exact surroundings */
    {"folded list", S,
     "To: \"Partner\" <p@external.example>,\r\n\t\"Bowen, Megan\" <MeganB@target.example>,\r\n"
     " ceo@target.example\r\n",
     "To: \"Partner\" <p@external.example>,\r\n\t\"Bowen, Megan\" "
     "<megan.bowen@source.example>,\r\n ceo@source.example\r\n",
     "To|MeganB@target.example|megan.bowen@source.example|mailbox-pair|0\n"
     "To|ceo@target.example|ceo@source.example|mailbox-pair|0"},
    {"encoded word name kept", S, "Cc: =?utf-8?B?SsO2cmcgTcO8bGxlcg==?= <ceo@target.example>\r\n",
     "Cc: =?utf-8?B?SsO2cmcgTcO8bGxlcg==?= <ceo@source.example>\r\n", NULL},
    {"comments kept", S, "From: (lead) alexw@target.example (Alex Wilber)\r\n",
     "From: (lead) alex.wilber@source.example (Alex Wilber)\r\n", NULL},
    {"group", S, "To: Team: alexw@target.example, ceo@target.example;, x@y.example\r\n",
     "To: Team: alex.wilber@source.example, ceo@source.example;, x@y.example\r\n", NULL},
    {"empty group untouched", S, "To: undisclosed-recipients:;\r\n", NULL, ""},
    {"obs-route kept", S, "To: <@relay.example:ceo@target.example>\r\n",
     "To: <@relay.example:ceo@source.example>\r\n", NULL},
    {"quoted local part", S, "To: \"ceo\"@target.example\r\n", "To: ceo@source.example\r\n",
     NULL},
    {"empty elements kept", S, "To: ,ceo@target.example,,\r\n", "To: ,ceo@source.example,,\r\n",
     NULL},
    {"bare lf", S, "From: alexw@target.example\nTo: x@y.example,\n ceo@target.example\n",
     "From: alex.wilber@source.example\nTo: x@y.example,\n ceo@source.example\n", NULL},
    {"no final newline", S, "To: ceo@target.example", "To: ceo@source.example", NULL},
    /* matching rules */
    {"case-insensitive, directory spelling", S, "To: MEGANB@TARGET.EXAMPLE\r\n",
     "To: megan.bowen@source.example\r\n", NULL},
    {"display name is the address", S,
     "From: \"alexw@target.example\" <alexw@target.example>\r\n",
     "From: \"alex.wilber@source.example\" <alex.wilber@source.example>\r\n",
     "From|alexw@target.example|alex.wilber@source.example|mailbox-pair|1\n"
     "From|alexw@target.example|alex.wilber@source.example|mailbox-pair|0"},
    {"display name single-quoted address", S,
     "To: \"'ALEXW@target.example'\" <alexw@target.example>\r\n",
     "To: \"'alex.wilber@source.example'\" <alex.wilber@source.example>\r\n", NULL},
    {"display name unquoted single-quoted address (Outlook)", S,
     "To: 'alexw@target.example' <alexw@target.example>\r\n",
     "To: 'alex.wilber@source.example' <alex.wilber@source.example>\r\n", NULL},
    {"display name other text kept", S,
     "To: \"alexw@target.example (work)\" <alexw@target.example>\r\n",
     "To: \"alexw@target.example (work)\" <alex.wilber@source.example>\r\n", NULL},
    {"display name of another address kept", S,
     "To: \"ceo@target.example\" <alexw@target.example>\r\n",
     "To: \"ceo@target.example\" <alex.wilber@source.example>\r\n", NULL},
    {"sub-address", S, "To: \"undisclosed\" <alexw+reports@target.example>\r\n",
     "To: \"undisclosed\" <alex.wilber+reports@source.example>\r\n",
     "To|alexw+reports@target.example|alex.wilber+reports@source.example|subaddress|0"},
    {"sub-address case", S, "To: ALEXW+Reports@Target.Example\r\n",
     "To: alex.wilber+Reports@source.example\r\n", NULL},
    {"sub-address of unknown stays", S, "To: nobody+x@target.example\r\n", NULL, ""},
    {"disabled pair untouched", S, "To: Legal <legal@target.example>\r\n", NULL,
     "To|legal@target.example||disabled|0"},
    {"disabled pair blocks domain pair", S, "To: old@t2.example\r\n", NULL,
     "To|old@t2.example||disabled|0"},
    {"domain pair fallback", S, "To: Bob <bob@t2.example>\r\n", "To: Bob <bob@s2.example>\r\n",
     "To|bob@t2.example|bob@s2.example|domain-pair|0"},
    {"domain pair keeps local spelling", S, "To: Bob.Smith@T2.EXAMPLE\r\n",
     "To: Bob.Smith@s2.example\r\n", NULL},
    {"no domain pair for target.example", S, "To: stranger@target.example\r\n", NULL, ""},
    {"exception address", S, "To: noreply@target.example\r\n", NULL,
     "To|noreply@target.example||exception|0"},
    {"exception sub-address base", S, "To: noreply+x@target.example\r\n", NULL, NULL},
    {"exception domain beats domain pair", S, "To: bob@keep.t2.example, bob@t2.example\r\n",
     "To: bob@keep.t2.example, bob@s2.example\r\n", NULL},
    {"exception by whole domain", S, "To: anyone@frozen.example\r\n", NULL, NULL},
    {"utf8 mailbox", S, "To: J\xc3\xb6rg <j\xc3\xb6rg@target.example>\r\n",
     "To: J\xc3\xb6rg <joerg@source.example>\r\n", NULL},
    {"utf8 case is exact", S, "To: J\xc3\x96RG@target.example\r\n", NULL, ""},
    /* unparseable mailboxes stay as they are; the rest is still rewritten */
    {"unparseable kept", S, "To: a b@c, ceo@target.example\r\n",
     "To: a b@c, ceo@source.example\r\n",
     "To|a b@c||unparseable|0\nTo|ceo@target.example|ceo@source.example|mailbox-pair|0"},
    {"unterminated angle kept", S, "To: ceo@target.example, Broken <alexw@target.example\r\n",
     "To: ceo@source.example, Broken <alexw@target.example\r\n", NULL},
    {"nothing to rewrite", S,
     "Received: from x by y; Fri, 4 Dec 2026\r\nFrom: p@external.example\r\n"
     "To: q@external.example\r\nSubject: hi\r\n",
     NULL, ""},
    /* to-target: the reverse direction */
    {"to-target from", T, "From: Alex <alex.wilber@source.example>\r\n",
     "From: Alex <alexw@target.example>\r\n", NULL},
    {"to-target spelling", T, "To: Megan.Bowen@Source.Example\r\n",
     "To: MeganB@target.example\r\n", NULL},
    {"to-target sub-address", T, "To: alex.wilber+x@source.example\r\n",
     "To: alexw+x@target.example\r\n", NULL},
    {"to-target domain pair", T, "To: bob@s2.example\r\n", "To: bob@t2.example\r\n", NULL},
    {"to-target leaves target addresses", T, "To: alexw@target.example\r\n", NULL, ""},
    {"to-source leaves source addresses", S, "To: alex.wilber@source.example\r\n", NULL, ""},
};

static struct dir_snapshot *test_dir(int coexistence)
{
    struct dir_builder *b = dir_builder_new();
    static const struct {
        const char *source, *target;
        int enabled;
    } pairs[] = {
        {"alex.wilber@source.example", "alexw@target.example", 1},
        {"megan.bowen@source.example", "MeganB@target.example", 1},
        {"ceo@source.example", "ceo@target.example", 1},
        {"legal@source.example", "legal@target.example", 0},
        {"noreply@source.example", "noreply@target.example", 1},
        {"old@s2.example", "old@t2.example", 0},
        {"joerg@source.example", "j\xc3\xb6rg@target.example", 1},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        assert_int_equal(dir_builder_add_pair(b, pairs[i].source, strlen(pairs[i].source),
                                              pairs[i].target, strlen(pairs[i].target),
                                              pairs[i].enabled),
                         0);
    assert_int_equal(dir_builder_add_domain(b, "t2.example", "s2.example"), 0);
    assert_int_equal(dir_builder_add_domain(b, "keep.t2.example", "keep.s2.example"), 0);
    assert_int_equal(dir_builder_add_exception(b, "noreply@target.example"), 0);
    assert_int_equal(dir_builder_add_exception(b, "keep.t2.example"), 0);
    assert_int_equal(dir_builder_add_exception(b, "frozen.example"), 0);
    dir_builder_set_coexistence(b, coexistence);
    return dir_builder_finish(b);
}

static const char *event_name(const struct rewrite_change *c)
{
    switch (c->event) {
    case EVENT_REWRITTEN:
        return rewrite_rule_name(c->rule);
    case EVENT_UNPARSEABLE:
        return "unparseable";
    case EVENT_DISABLED:
        return "disabled";
    case EVENT_EXCEPTION:
        return "exception";
    }
    return "?";
}

/* trace_text - "Field|old|new|rule|name" lines */
static void trace_text(const struct rewrite_trace *t, struct buf *out)
{
    for (size_t i = 0; i < t->count; i++) {
        const struct rewrite_change *c = &t->changes[i];
        assert_int_equal(buf_printf(out, "%s%s|%s|%s|%s|%d", i ? "\n" : "", c->field,
                                    c->old_addr, c->new_addr, event_name(c), c->display_name),
                         0);
    }
}

static void run_rewrite(const struct dir_snapshot *d, enum rewrite_direction dir, const char *in,
                        size_t len, struct buf *out, struct rewrite_trace *trace)
{
    struct rewrite_opts o = {dir, "+"};
    char err[128];
    buf_reset(out);
    assert_int_equal(rewrite_header(d, &o, in, len, out, trace, err, sizeof(err)), 0);
}

static void test_rewrite_cases(void **state)
{
    struct dir_snapshot *d = test_dir(1);
    struct buf out, again, tr;
    (void)state;
    buf_init(&out, 1 << 20);
    buf_init(&again, 1 << 20);
    buf_init(&tr, 1 << 20);
    for (size_t i = 0; i < sizeof(rewrite_cases) / sizeof(rewrite_cases[0]); i++) {
        const struct rewrite_case *c = &rewrite_cases[i];
        const char *want = c->want ? c->want : c->input;
        struct rewrite_trace trace;
        print_message("case: %s\n", c->name);
        rewrite_trace_init(&trace);
        run_rewrite(d, c->dir, c->input, strlen(c->input), &out, &trace);
        assert_string_equal(buf_str(&out), want);
        assert_int_equal(out.len, strlen(want));
        if (c->want_trace) {
            buf_reset(&tr);
            trace_text(&trace, &tr);
            assert_string_equal(buf_str(&tr), c->want_trace);
        }
        rewrite_trace_cleanup(&trace);
        /* idempotence: a second pass in the same direction changes nothing */
        run_rewrite(d, c->dir, out.data, out.len, &again, NULL);
        assert_int_equal(again.len, out.len);
        assert_memory_equal(again.data, out.data, out.len);
    }
    buf_cleanup(&out);
    buf_cleanup(&again);
    buf_cleanup(&tr);
    dir_snapshot_unref(d);
}

/* with the coexistence switch off nothing changes, and the trace says so */
static void test_rewrite_coexistence_off(void **state)
{
    struct dir_snapshot *d = test_dir(0);
    struct rewrite_trace trace;
    struct buf out;
    char env[LIMIT_ADDRESS];
    const char *in = "From: alexw@target.example\r\nTo: ceo@target.example\r\n";
    (void)state;
    buf_init(&out, 4096);
    rewrite_trace_init(&trace);
    run_rewrite(d, S, in, strlen(in), &out, &trace);
    assert_string_equal(buf_str(&out), in);
    assert_int_equal(trace.coexistence_off, 1);
    assert_int_equal(trace.count, 0);
    struct rewrite_opts o = {S, "+"};
    assert_int_equal(rewrite_envelope(d, &o, "MAIL FROM", "alexw@target.example", 20, env,
                                      sizeof(env), NULL),
                     0);
    assert_string_equal(env, "alexw@target.example");
    rewrite_trace_cleanup(&trace);
    buf_cleanup(&out);
    dir_snapshot_unref(d);
}

struct envelope_case {
    const char *name;
    enum rewrite_direction dir;
    const char *in;
    int want_rc;
    const char *want;
};

static const struct envelope_case envelope_cases[] = {
    {"pair", S, "alexw@target.example", 1, "alex.wilber@source.example"},
    {"case", S, "AlexW@Target.Example", 1, "alex.wilber@source.example"},
    {"sub-address", S, "alexw+x@target.example", 1, "alex.wilber+x@source.example"},
    {"domain pair", S, "bob@t2.example", 1, "bob@s2.example"},
    {"unknown", S, "bob@external.example", 0, "bob@external.example"},
    {"disabled", S, "legal@target.example", 0, "legal@target.example"},
    {"exception", S, "noreply@target.example", 0, "noreply@target.example"},
    {"null sender", S, "", 0, ""},
    {"reverse", T, "ceo@source.example", 1, "ceo@target.example"},
    {"quoted local", S, "\"ceo\"@target.example", 1, "ceo@source.example"},
    {"not an address", S, "not an address", -1, NULL},
    {"angle brackets are the caller's job", S, "<ceo@target.example>", -1, NULL},
    {"no domain", S, "ceo@", -1, NULL},
};

static void test_rewrite_envelope(void **state)
{
    struct dir_snapshot *d = test_dir(1);
    (void)state;
    for (size_t i = 0; i < sizeof(envelope_cases) / sizeof(envelope_cases[0]); i++) {
        const struct envelope_case *c = &envelope_cases[i];
        struct rewrite_opts o = {c->dir, "+"};
        char out[LIMIT_ADDRESS];
        print_message("case: %s\n", c->name);
        int rc = rewrite_envelope(d, &o, "MAIL FROM", c->in, strlen(c->in), out, sizeof(out),
                                  NULL);
        assert_int_equal(rc, c->want_rc);
        if (c->want)
            assert_string_equal(out, c->want);
    }
    /* an output buffer too small is an error, never a cut address */
    struct rewrite_opts o = {S, "+"};
    char small[8];
    assert_int_equal(rewrite_envelope(d, &o, "RCPT TO", "ceo@target.example", 18, small,
                                      sizeof(small), NULL),
                     -1);
    dir_snapshot_unref(d);
}

/* sub-addressing follows the configured separators, and can be off */
static void test_rewrite_separators(void **state)
{
    struct dir_snapshot *d = test_dir(1);
    char out[LIMIT_ADDRESS];
    enum rewrite_rule rule;
    enum rewrite_event event;
    (void)state;
    struct rewrite_opts dash = {S, "-+"};
    assert_int_equal(rewrite_address(d, &dash, "alexw-news@target.example", 25, out, sizeof(out),
                                     &rule, &event),
                     1);
    assert_string_equal(out, "alex.wilber-news@source.example");
    struct rewrite_opts off = {S, ""};
    assert_int_equal(rewrite_address(d, &off, "alexw+news@target.example", 25, out, sizeof(out),
                                     &rule, &event),
                     0);
    struct rewrite_opts none = {S, NULL};
    assert_int_equal(rewrite_address(d, &none, "alexw+news@target.example", 25, out,
                                     sizeof(out), &rule, &event),
                     0);
    dir_snapshot_unref(d);
}

/* the output limit is respected and reported */
static void test_rewrite_limit(void **state)
{
    struct dir_snapshot *d = test_dir(1);
    struct rewrite_opts o = {S, "+"};
    struct buf out;
    char err[128] = "";
    const char *in = "To: ceo@target.example\r\n";
    (void)state;
    buf_init(&out, 10);
    assert_int_equal(rewrite_header(d, &o, in, strlen(in), &out, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exceeds"));
    buf_cleanup(&out);
    dir_snapshot_unref(d);
}

/* many mailboxes in one field (beyond the on-stack array) */
static void test_rewrite_many_mailboxes(void **state)
{
    struct dir_snapshot *d = test_dir(1);
    struct buf in, want, out;
    (void)state;
    buf_init(&in, 1 << 20);
    buf_init(&want, 1 << 20);
    buf_init(&out, 1 << 20);
    assert_int_equal(buf_append_str(&in, "To: "), 0);
    assert_int_equal(buf_append_str(&want, "To: "), 0);
    for (int i = 0; i < 500; i++) {
        const char *sep = i ? ",\r\n " : "";
        assert_int_equal(buf_printf(&in, "%sP%d <p%d@x.example>, ceo@target.example", sep, i, i),
                         0);
        assert_int_equal(
            buf_printf(&want, "%sP%d <p%d@x.example>, ceo@source.example", sep, i, i), 0);
    }
    assert_int_equal(buf_append_str(&in, "\r\n"), 0);
    assert_int_equal(buf_append_str(&want, "\r\n"), 0);
    run_rewrite(d, S, in.data, in.len, &out, NULL);
    assert_string_equal(buf_str(&out), buf_str(&want));
    buf_cleanup(&in);
    buf_cleanup(&want);
    buf_cleanup(&out);
    dir_snapshot_unref(d);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    struct buf b;
    char chunk[8192];
    size_t n;
    buf_init(&b, 1 << 24);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(fp);
    *len = b.len;
    return b.data;
}

/* golden file: header rewritten, body (which mentions a target address) untouched */
static void test_rewrite_golden(void **state)
{
    struct dir_builder *b = dir_builder_new();
    static const char *const csv[][2] = {
        {"alex.wilber@source.example", "alexw@target.example"},
        {"megan.bowen@source.example", "MeganB@target.example"},
        {"ceo@source.example", "ceo@target.example"},
        {"pat.taylor@source.example", "pat.t@target.example"},
    };
    size_t in_len, want_len, header_end, body_off;
    struct buf out;
    char err[128];
    (void)state;
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(dir_builder_add_pair(b, csv[i][0], strlen(csv[i][0]), csv[i][1],
                                              strlen(csv[i][1]), 1),
                         0);
    assert_int_equal(dir_builder_add_pair(b, "legal@source.example", 20, "legal@target.example",
                                          20, 0),
                     0);
    dir_builder_set_coexistence(b, 1);
    struct dir_snapshot *d = dir_builder_finish(b);
    char *in = read_file("../data/exo-outbound.in.eml", &in_len);
    char *want = read_file("../data/exo-outbound.out.eml", &want_len);
    hdr_split(in, in_len, &header_end, &body_off);
    buf_init(&out, 1 << 22);
    struct rewrite_opts o = {S, "+"};
    assert_int_equal(rewrite_header(d, &o, in, header_end, &out, NULL, err, sizeof(err)), 0);
    assert_int_equal(buf_append(&out, in + header_end, in_len - header_end), 0);
    assert_int_equal(out.len, want_len);
    assert_memory_equal(out.data, want, want_len);
    /* the body still mentions the target address */
    assert_non_null(strstr(out.data + header_end, "alexw@target.example"));
    free(in);
    free(want);
    buf_cleanup(&out);
    dir_snapshot_unref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewrite_cases),        cmocka_unit_test(test_rewrite_coexistence_off),
        cmocka_unit_test(test_rewrite_envelope),     cmocka_unit_test(test_rewrite_separators),
        cmocka_unit_test(test_rewrite_limit),        cmocka_unit_test(test_rewrite_many_mailboxes),
        cmocka_unit_test(test_rewrite_golden),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
