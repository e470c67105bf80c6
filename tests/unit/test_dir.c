/*
 * test_dir - table-driven tests for the in-memory directory snapshot
 * (src/dir/dir.c).
 *
 * One fixed snapshot serves the lookup tables: mailbox pairs (found from
 * either side in any ASCII case, the stored spelling returned; bytes >= 0x80
 * compared exactly; the enabled flag; the first pair winning on duplicates),
 * domain pairs in both directions, and exceptions by full address or by
 * domain (never by a longer domain that merely ends the same). Then a snapshot
 * of 100,000 generated pairs, every one found and random misses not found;
 * an empty snapshot; the builder's refusals; and reference counting, where
 * ASan catches a leak or a double free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "dir.h"
#include "util.h"

/* ---------------------------------------------------------------- fixture */

struct fixed_pair {
    const char *source;
    const char *target;
    int enabled;
};

/* "\xc3\xb6" is U+00F6 o-umlaut, "\xc3\x96" its upper case U+00D6 */
static const struct fixed_pair fixed_pairs[] = {
    {"Alice.Smith@Source.Example", "alice.smith@Target.Example", 1},
    {"bob@source.example", "Robert@target.example", 0},
    {"j\xc3\xb6rg@source.example", "joerg@target.example", 1},
    {"elise@source.example", "\xc3\xa9lise@target.example", 1},
    /* duplicates: the first pair above wins on that side */
    {"BOB@SOURCE.EXAMPLE", "bob.second@target.example", 1},
    {"carol@source.example", "robert@TARGET.example", 1},
    {"dave@source.example", "dave@target.example", 0},
};

static const char *const fixed_exceptions[] = {
    "ceo@target.example",
    "example",
    "Partner.Example",
};

/* target domain, source domain */
static const char *const fixed_domains[][2] = {
    {"target.example", "source.example"},
    {"New.Example", "old.example"},
};

static struct dir_snapshot *fixture_snapshot(void)
{
    struct dir_builder *b = dir_builder_new();
    for (size_t i = 0; i < ARRAY_LEN(fixed_pairs); i++) {
        const struct fixed_pair *p = &fixed_pairs[i];
        assert_int_equal(dir_builder_add_pair(b, p->source, strlen(p->source), p->target,
                                              strlen(p->target), p->enabled),
                         0);
    }
    for (size_t i = 0; i < ARRAY_LEN(fixed_exceptions); i++)
        assert_int_equal(dir_builder_add_exception(b, fixed_exceptions[i]), 0);
    for (size_t i = 0; i < ARRAY_LEN(fixed_domains); i++)
        assert_int_equal(dir_builder_add_domain(b, fixed_domains[i][0], fixed_domains[i][1]), 0);
    dir_builder_set_coexistence(b, 1);
    dir_builder_set_generation(b, 42);
    return dir_builder_finish(b);
}

static int setup_fixture(void **state)
{
    *state = fixture_snapshot();
    return 0;
}

static int teardown_fixture(void **state)
{
    dir_snapshot_unref(*state);
    return 0;
}

/* ---------------------------------------------------------------- pairs */

struct pair_case {
    const char *name;
    enum dir_side side;
    const char *input;
    size_t input_len; /* 0: strlen(input); else a prefix of input is looked up */
    int want;         /* 1 found, 0 not */
    const char *want_source;
    const char *want_target;
    int want_enabled;
};

#define FOUND(n, s, in, src, tgt, en)                                                              \
    {                                                                                              \
        .name = (n), .side = (s), .input = (in), .want = 1, .want_source = (src),                  \
        .want_target = (tgt), .want_enabled = (en)                                                 \
    }
#define MISS(n, s, in)                                                                             \
    {                                                                                              \
        .name = (n), .side = (s), .input = (in), .want = 0                                         \
    }

#define ALICE_S "Alice.Smith@Source.Example"
#define ALICE_T "alice.smith@Target.Example"
#define BOB_S "bob@source.example"
#define BOB_T "Robert@target.example"
#define JORG_S "j\xc3\xb6rg@source.example"
#define JORG_T "joerg@target.example"
#define ELISE_S "elise@source.example"
#define ELISE_T "\xc3\xa9lise@target.example"

static const struct pair_case pair_cases[] = {
    /* both sides, any ASCII case, the stored spelling back */
    FOUND("source as stored", DIR_SOURCE, ALICE_S, ALICE_S, ALICE_T, 1),
    FOUND("source lower case", DIR_SOURCE, "alice.smith@source.example", ALICE_S, ALICE_T, 1),
    FOUND("source upper case", DIR_SOURCE, "ALICE.SMITH@SOURCE.EXAMPLE", ALICE_S, ALICE_T, 1),
    FOUND("source mixed case", DIR_SOURCE, "aLiCe.SmItH@sOuRcE.eXaMpLe", ALICE_S, ALICE_T, 1),
    FOUND("target as stored", DIR_TARGET, ALICE_T, ALICE_S, ALICE_T, 1),
    FOUND("target upper case", DIR_TARGET, "ALICE.SMITH@TARGET.EXAMPLE", ALICE_S, ALICE_T, 1),
    FOUND("target lower case", DIR_TARGET, "alice.smith@target.example", ALICE_S, ALICE_T, 1),
    FOUND("stored lower, asked upper", DIR_SOURCE, "BOB@Source.Example", BOB_S, BOB_T, 0),
    FOUND("stored mixed, asked lower", DIR_TARGET, "robert@target.example", BOB_S, BOB_T, 0),
    /* the enabled flag */
    FOUND("disabled pair from the source", DIR_SOURCE, BOB_S, BOB_S, BOB_T, 0),
    FOUND("disabled pair from the target", DIR_TARGET, BOB_T, BOB_S, BOB_T, 0),
    FOUND("disabled pair, same local part", DIR_SOURCE, "dave@source.example",
          "dave@source.example", "dave@target.example", 0),
    FOUND("enabled pair", DIR_SOURCE, ELISE_S, ELISE_S, ELISE_T, 1),
    /* UTF-8: bytes >= 0x80 compare exactly, ASCII around them still folds */
    FOUND("UTF-8 source exact", DIR_SOURCE, JORG_S, JORG_S, JORG_T, 1),
    FOUND("UTF-8 source, ASCII upper case", DIR_SOURCE, "J\xc3\xb6RG@SOURCE.EXAMPLE", JORG_S,
          JORG_T, 1),
    MISS("UTF-8 source, non-ASCII upper case", DIR_SOURCE, "j\xc3\x96rg@source.example"),
    MISS("UTF-8 source, all upper case", DIR_SOURCE, "J\xc3\x96RG@SOURCE.EXAMPLE"),
    MISS("UTF-8 source, decomposed o + U+0308", DIR_SOURCE, "jo\xcc\x88rg@source.example"),
    MISS("UTF-8 source, ASCII lookalike", DIR_SOURCE, "jorg@source.example"),
    FOUND("UTF-8 target exact", DIR_TARGET, ELISE_T, ELISE_S, ELISE_T, 1),
    FOUND("UTF-8 target, ASCII upper case", DIR_TARGET, "\xc3\xa9LISE@TARGET.EXAMPLE", ELISE_S,
          ELISE_T, 1),
    MISS("UTF-8 target, non-ASCII upper case", DIR_TARGET, "\xc3\x89lise@target.example"),
    /* first pair wins on duplicates, per side */
    FOUND("duplicate source: first pair", DIR_SOURCE, "bob@SOURCE.example", BOB_S, BOB_T, 0),
    FOUND("duplicate target: first pair", DIR_TARGET, "ROBERT@target.example", BOB_S, BOB_T, 0),
    FOUND("second pair still found by its other side", DIR_TARGET, "bob.second@target.example",
          "BOB@SOURCE.EXAMPLE", "bob.second@target.example", 1),
    FOUND("other duplicate still found by its source", DIR_SOURCE, "carol@source.example",
          "carol@source.example", "robert@TARGET.example", 1),
    /* misses */
    MISS("unknown address", DIR_SOURCE, "nobody@source.example"),
    MISS("target address on the source side", DIR_SOURCE, ALICE_T),
    MISS("source address on the target side", DIR_TARGET, ALICE_S),
    MISS("prefix of a source", DIR_SOURCE, "alice.smith@source.exampl"),
    MISS("source with a suffix", DIR_SOURCE, "alice.smith@source.example.org"),
    MISS("source with a prefix", DIR_SOURCE, "xalice.smith@source.example"),
    MISS("local part only", DIR_SOURCE, "alice.smith"),
    MISS("domain only", DIR_SOURCE, "source.example"),
    MISS("empty", DIR_SOURCE, ""),
    MISS("trailing blank", DIR_SOURCE, "bob@source.example "),
    /* the length counts, not the NUL */
    {.name = "length shorter than the string",
     .side = DIR_SOURCE,
     .input = "bob@source.example.trailing",
     .input_len = sizeof("bob@source.example") - 1,
     .want = 1,
     .want_source = BOB_S,
     .want_target = BOB_T,
     .want_enabled = 0},
    {.name = "length one byte short",
     .side = DIR_SOURCE,
     .input = "bob@source.example",
     .input_len = sizeof("bob@source.example") - 2,
     .want = 0},
};

static void test_pair_cases(void **state)
{
    const struct dir_snapshot *d = *state;
    int failed = 0;
    for (size_t c = 0; c < ARRAY_LEN(pair_cases); c++) {
        const struct pair_case *tc = &pair_cases[c];
        size_t len = tc->input_len ? tc->input_len : strlen(tc->input);
        /* a heap copy of exactly len bytes: ASan sees a read past the end */
        char *input = xmalloc(len ? len : 1);
        memcpy(input, tc->input, len);
        struct dir_pair_view v = {0};
        int rc = dir_find_pair(d, tc->side, input, len, &v);
        free(input);
        if (rc != tc->want) {
            print_error("%s: dir_find_pair returned %d, want %d\n", tc->name, rc, tc->want);
            failed++;
            continue;
        }
        if (rc != 1)
            continue;
        if (v.source_len != strlen(tc->want_source) ||
            memcmp(v.source, tc->want_source, v.source_len) != 0 ||
            v.target_len != strlen(tc->want_target) ||
            memcmp(v.target, tc->want_target, v.target_len) != 0 || v.enabled != tc->want_enabled) {
            print_error("%s: got %.*s -> %.*s enabled %d, want %s -> %s enabled %d\n", tc->name,
                        (int)v.source_len, v.source, (int)v.target_len, v.target, v.enabled,
                        tc->want_source, tc->want_target, tc->want_enabled);
            failed++;
            continue;
        }
        /* the borrowed strings are NUL-terminated in the arena */
        if (v.source[v.source_len] != '\0' || v.target[v.target_len] != '\0') {
            print_error("%s: borrowed strings not NUL-terminated\n", tc->name);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

static void test_fixture_header(void **state)
{
    const struct dir_snapshot *d = *state;
    assert_int_equal(dir_pair_count(d), ARRAY_LEN(fixed_pairs));
    assert_int_equal(dir_coexistence(d), 1);
    assert_int_equal(dir_generation(d), 42);
}

/* ---------------------------------------------------------------- domains */

struct domain_case {
    const char *name;
    enum dir_side side;
    const char *input;
    const char *want; /* the other side's domain, or NULL for not found */
};

#define DOM(n, s, in, w)                                                                           \
    {                                                                                              \
        .name = (n), .side = (s), .input = (in), .want = (w)                                       \
    }

static const struct domain_case domain_cases[] = {
    DOM("target domain to source", DIR_TARGET, "target.example", "source.example"),
    DOM("source domain to target", DIR_SOURCE, "source.example", "target.example"),
    DOM("target domain, upper case", DIR_TARGET, "TARGET.EXAMPLE", "source.example"),
    DOM("source domain, mixed case", DIR_SOURCE, "Source.Example", "target.example"),
    DOM("stored mixed case, target side", DIR_TARGET, "new.example", "old.example"),
    DOM("stored mixed case, source side", DIR_SOURCE, "OLD.example", "New.Example"),
    DOM("target domain on the source side", DIR_SOURCE, "target.example", NULL),
    DOM("source domain on the target side", DIR_TARGET, "source.example", NULL),
    DOM("subdomain is not the domain", DIR_TARGET, "sub.target.example", NULL),
    DOM("parent is not the domain", DIR_TARGET, "example", NULL),
    DOM("suffix match is not the domain", DIR_SOURCE, "xsource.example", NULL),
    DOM("unknown", DIR_SOURCE, "other.example", NULL),
    DOM("empty", DIR_TARGET, "", NULL),
};

static void test_domain_cases(void **state)
{
    const struct dir_snapshot *d = *state;
    int failed = 0;
    for (size_t c = 0; c < ARRAY_LEN(domain_cases); c++) {
        const struct domain_case *tc = &domain_cases[c];
        const char *other = NULL;
        size_t other_len = 0;
        int rc = dir_find_domain(d, tc->side, tc->input, strlen(tc->input), &other, &other_len);
        if (tc->want == NULL ? rc != 0
                             : rc != 1 || other_len != strlen(tc->want) ||
                                   memcmp(other, tc->want, other_len) != 0) {
            print_error("%s: rc %d other \"%.*s\", want %s\n", tc->name, rc,
                        rc == 1 ? (int)other_len : 0, rc == 1 ? other : "",
                        tc->want ? tc->want : "not found");
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* ---------------------------------------------------------------- exceptions */

struct exception_case {
    const char *name;
    const char *input;
    int want;
};

#define EXC(n, in, w)                                                                              \
    {                                                                                              \
        .name = (n), .input = (in), .want = (w)                                                    \
    }

static const struct exception_case exception_cases[] = {
    EXC("full address", "ceo@target.example", 1),
    EXC("full address, other case", "CEO@Target.Example", 1),
    EXC("other address of the same domain", "cfo@target.example", 0),
    EXC("full address with a longer domain", "ceo@target.example.org", 0),
    EXC("full address with a longer local part", "xceo@target.example", 0),
    EXC("domain exception", "anyone@example", 1),
    EXC("domain exception, upper case", "ANYONE@EXAMPLE", 1),
    EXC("domain that only ends the same", "anyone@target.example", 0),
    EXC("domain that only ends the same, no dot", "anyone@myexample", 0),
    EXC("stored mixed-case domain", "x@partner.example", 1),
    EXC("subdomain of an excepted domain", "x@sub.partner.example", 0),
    EXC("bare domain", "partner.example", 1),
    EXC("bare domain that only ends the same", "xpartner.example", 0),
    EXC("local part equal to an excepted domain", "example@elsewhere.test", 0),
    EXC("domain after the last @", "\"a@b\"@example", 1),
    EXC("empty domain", "someone@", 0),
    EXC("empty", "", 0),
};

static void test_exception_cases(void **state)
{
    const struct dir_snapshot *d = *state;
    int failed = 0;
    for (size_t c = 0; c < ARRAY_LEN(exception_cases); c++) {
        const struct exception_case *tc = &exception_cases[c];
        size_t len = strlen(tc->input);
        char *input = xmalloc(len ? len : 1);
        memcpy(input, tc->input, len);
        int rc = dir_is_exception(d, input, len);
        free(input);
        if (rc != tc->want) {
            print_error("%s: dir_is_exception(\"%s\") = %d, want %d\n", tc->name, tc->input, rc,
                        tc->want);
            failed++;
        }
    }
    assert_int_equal(failed, 0);
}

/* ---------------------------------------------------------------- empty, builder */

static void test_empty_snapshot(void **state)
{
    (void)state;
    struct dir_snapshot *d = dir_builder_finish(dir_builder_new());
    struct dir_pair_view v;
    const char *other = NULL;
    size_t other_len = 0;

    assert_non_null(d);
    assert_int_equal(dir_pair_count(d), 0);
    assert_int_equal(dir_coexistence(d), 0);
    assert_int_equal(dir_generation(d), 0);
    assert_int_equal(dir_find_pair(d, DIR_SOURCE, "a@b", 3, &v), 0);
    assert_int_equal(dir_find_pair(d, DIR_TARGET, "a@b", 3, &v), 0);
    assert_int_equal(dir_find_pair(d, DIR_SOURCE, "", 0, &v), 0);
    assert_int_equal(dir_find_domain(d, DIR_SOURCE, "b", 1, &other, &other_len), 0);
    assert_int_equal(dir_find_domain(d, DIR_TARGET, "b", 1, &other, &other_len), 0);
    assert_int_equal(dir_is_exception(d, "a@b", 3), 0);
    assert_int_equal(dir_is_exception(d, "b", 1), 0);
    dir_snapshot_unref(d);
}

/* only exceptions, no pairs; only domains, no exceptions */
static void test_partial_snapshots(void **state)
{
    (void)state;
    struct dir_builder *b = dir_builder_new();
    struct dir_pair_view v;
    const char *other;
    size_t other_len;
    assert_int_equal(dir_builder_add_exception(b, "x.example"), 0);
    struct dir_snapshot *d = dir_builder_finish(b);
    assert_int_equal(dir_is_exception(d, "a@x.example", 11), 1);
    assert_int_equal(dir_find_pair(d, DIR_SOURCE, "a@x.example", 11, &v), 0);
    assert_int_equal(dir_find_domain(d, DIR_SOURCE, "x.example", 9, &other, &other_len), 0);
    dir_snapshot_unref(d);

    b = dir_builder_new();
    assert_int_equal(dir_builder_add_domain(b, "t.example", "s.example"), 0);
    d = dir_builder_finish(b);
    assert_int_equal(dir_find_domain(d, DIR_SOURCE, "s.example", 9, &other, &other_len), 1);
    assert_int_equal(other_len, 9);
    assert_memory_equal(other, "t.example", 9);
    assert_int_equal(dir_is_exception(d, "a@s.example", 11), 0);
    dir_snapshot_unref(d);
}

struct add_pair_case {
    const char *name;
    size_t source_len;
    size_t target_len;
    int want;
};

static const struct add_pair_case add_pair_cases[] = {
    {.name = "ordinary", .source_len = 5, .target_len = 5, .want = 0},
    {.name = "empty source", .source_len = 0, .target_len = 5, .want = -1},
    {.name = "empty target", .source_len = 5, .target_len = 0, .want = -1},
    {.name = "longest source", .source_len = LIMIT_ADDRESS - 1, .target_len = 5, .want = 0},
    {.name = "longest target", .source_len = 5, .target_len = LIMIT_ADDRESS - 1, .want = 0},
    {.name = "source too long", .source_len = LIMIT_ADDRESS, .target_len = 5, .want = -1},
    {.name = "target too long", .source_len = 5, .target_len = LIMIT_ADDRESS, .want = -1},
};

/* the builder refuses empty and over-long addresses, and keeps the long ones it takes */
static void test_builder_limits(void **state)
{
    (void)state;
    char source[LIMIT_ADDRESS + 1], target[LIMIT_ADDRESS + 1];
    memset(source, 's', sizeof(source));
    memset(target, 't', sizeof(target));
    source[0] = 'S'; /* distinct first bytes keep every accepted pair distinct */
    for (size_t c = 0; c < ARRAY_LEN(add_pair_cases); c++) {
        const struct add_pair_case *tc = &add_pair_cases[c];
        struct dir_builder *b = dir_builder_new();
        int rc = dir_builder_add_pair(b, source, tc->source_len, target, tc->target_len, 1);
        if (rc != tc->want) {
            print_error("%s: dir_builder_add_pair = %d, want %d\n", tc->name, rc, tc->want);
            dir_builder_free(b);
            fail();
        }
        struct dir_snapshot *d = dir_builder_finish(b);
        assert_int_equal(dir_pair_count(d), rc == 0 ? 1 : 0);
        if (rc == 0) {
            struct dir_pair_view v;
            assert_int_equal(dir_find_pair(d, DIR_SOURCE, source, tc->source_len, &v), 1);
            assert_int_equal(v.source_len, tc->source_len);
            assert_int_equal(v.target_len, tc->target_len);
            assert_int_equal(v.enabled, 1);
            assert_int_equal(dir_find_pair(d, DIR_TARGET, target, tc->target_len, &v), 1);
            assert_int_equal(v.source_len, tc->source_len);
        }
        dir_snapshot_unref(d);
    }
    /* exceptions and domains: empty and over-long refused */
    struct dir_builder *b = dir_builder_new();
    source[LIMIT_ADDRESS] = '\0';
    assert_int_equal(dir_builder_add_exception(b, ""), -1);
    assert_int_equal(dir_builder_add_exception(b, source), -1);
    assert_int_equal(dir_builder_add_domain(b, "", "s.example"), -1);
    assert_int_equal(dir_builder_add_domain(b, source, "s.example"), -1);
    dir_builder_free(b);
    dir_builder_free(NULL);
    dir_snapshot_unref(NULL);
}

/* a builder with content discarded without finishing: ASan reports a leak */
static void test_builder_free(void **state)
{
    (void)state;
    struct dir_builder *b = dir_builder_new();
    for (int i = 0; i < 2000; i++) {
        char s[32], t[32];
        int sl = snprintf(s, sizeof(s), "s%d@x", i);
        int tl = snprintf(t, sizeof(t), "t%d@y", i);
        assert_int_equal(dir_builder_add_pair(b, s, (size_t)sl, t, (size_t)tl, i & 1), 0);
    }
    assert_int_equal(dir_builder_add_exception(b, "x"), 0);
    assert_int_equal(dir_builder_add_domain(b, "y", "x"), 0);
    dir_builder_free(b);
}

/* ---------------------------------------------------------------- refcounting */

static void test_refcount(void **state)
{
    (void)state;
    struct dir_snapshot *d = fixture_snapshot();
    struct dir_pair_view v;
    assert_ptr_equal(dir_snapshot_ref(d), d);
    assert_ptr_equal(dir_snapshot_ref(d), d);
    dir_snapshot_unref(d); /* 3 -> 2 */
    assert_int_equal(dir_find_pair(d, DIR_SOURCE, BOB_S, strlen(BOB_S), &v), 1);
    dir_snapshot_unref(d); /* 2 -> 1 */
    assert_int_equal(dir_find_pair(d, DIR_TARGET, BOB_T, strlen(BOB_T), &v), 1);
    assert_int_equal(dir_generation(d), 42);
    dir_snapshot_unref(d); /* freed: a leak or a second free shows up under ASan */
}

/* a reload: the reader keeps the old snapshot while the new one is in place */
static void test_swap_keeps_old_readers(void **state)
{
    (void)state;
    struct dir_snapshot *current = fixture_snapshot();
    struct dir_snapshot *reader = dir_snapshot_ref(current);
    struct dir_builder *b = dir_builder_new();
    struct dir_pair_view v;
    assert_int_equal(dir_builder_add_pair(b, "new@s", 5, "new@t", 5, 1), 0);
    dir_builder_set_generation(b, 43);
    struct dir_snapshot *next = dir_builder_finish(b);
    dir_snapshot_unref(current);
    current = next;
    assert_int_equal(dir_find_pair(reader, DIR_SOURCE, BOB_S, strlen(BOB_S), &v), 1);
    assert_int_equal(v.target_len, strlen(BOB_T));
    assert_memory_equal(v.target, BOB_T, v.target_len);
    assert_int_equal(dir_find_pair(current, DIR_SOURCE, BOB_S, strlen(BOB_S), &v), 0);
    assert_int_equal(dir_generation(reader), 42);
    assert_int_equal(dir_generation(current), 43);
    dir_snapshot_unref(reader);
    dir_snapshot_unref(current);
}

/* ---------------------------------------------------------------- 100,000 pairs */

#define BIG_PAIRS 100000
#define BIG_MISSES 100000

/* xorshift64: a fixed sequence, so a failure repeats */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static int big_source(char *out, size_t size, unsigned i)
{
    return snprintf(out, size, "user%06u.name@source%u.example", i, i % 7);
}

static int big_target(char *out, size_t size, unsigned i)
{
    return snprintf(out, size, "U%06u@Target.Example", i);
}

/* upper-case every other ASCII letter */
static void flip_case(char *s, size_t len)
{
    for (size_t i = 0; i < len; i += 2)
        if (s[i] >= 'a' && s[i] <= 'z')
            s[i] = (char)(s[i] - 32);
        else if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] + 32);
}

static void test_big_snapshot(void **state)
{
    (void)state;
    struct dir_builder *b = dir_builder_new();
    char s[96], t[96];
    struct dir_pair_view v;

    for (unsigned i = 0; i < BIG_PAIRS; i++) {
        int sl = big_source(s, sizeof(s), i);
        int tl = big_target(t, sizeof(t), i);
        assert_int_equal(dir_builder_add_pair(b, s, (size_t)sl, t, (size_t)tl, (int)(i % 3 == 0)),
                         0);
    }
    struct dir_snapshot *d = dir_builder_finish(b);
    assert_int_equal(dir_pair_count(d), BIG_PAIRS);

    unsigned failures = 0;
    for (unsigned i = 0; i < BIG_PAIRS; i++) {
        size_t sl = (size_t)big_source(s, sizeof(s), i);
        size_t tl = (size_t)big_target(t, sizeof(t), i);
        if (i % 2)
            flip_case(s, sl);
        else
            flip_case(t, tl);
        if (dir_find_pair(d, DIR_SOURCE, s, sl, &v) != 1 || v.enabled != (int)(i % 3 == 0) ||
            v.target_len != tl || !util_strncaseeq(v.target, t, tl)) {
            if (failures++ < 5)
                print_error("pair %u not found from its source %s\n", i, s);
            continue;
        }
        if (dir_find_pair(d, DIR_TARGET, t, tl, &v) != 1 || v.source_len != sl ||
            !util_strncaseeq(v.source, s, sl)) {
            if (failures++ < 5)
                print_error("pair %u not found from its target %s\n", i, t);
        }
    }
    assert_int_equal(failures, 0);

    /* misses: numbers past the end, near-misses and random bytes */
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (unsigned m = 0; m < BIG_MISSES; m++) {
        uint64_t r = rng_next(&seed);
        size_t len;
        switch (m % 4) {
        case 0: /* a well-formed address of a pair that does not exist */
            len = (size_t)big_source(s, sizeof(s), BIG_PAIRS + (unsigned)(r % 1000000));
            break;
        case 1: /* a real source with the wrong domain number */
            len = (size_t)snprintf(s, sizeof(s), "user%06u.name@source%u.example",
                                   (unsigned)(r % BIG_PAIRS), (unsigned)(r % BIG_PAIRS) % 7 + 7);
            break;
        case 2: /* a real target, one character short */
            len = (size_t)big_target(s, sizeof(s), (unsigned)(r % BIG_PAIRS)) - 1;
            break;
        default: /* random bytes */
            len = 1 + (size_t)(r % 40);
            for (size_t i = 0; i < len; i++)
                s[i] = (char)(rng_next(&seed) & 0xff);
            break;
        }
        int side_hit =
            dir_find_pair(d, DIR_SOURCE, s, len, &v) + dir_find_pair(d, DIR_TARGET, s, len, &v);
        if (side_hit != 0 && failures++ < 5)
            print_error("miss %u (kind %u, %zu bytes) was found\n", m, m % 4, len);
    }
    assert_int_equal(failures, 0);
    dir_snapshot_unref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pair_cases, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_fixture_header, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_domain_cases, setup_fixture, teardown_fixture),
        cmocka_unit_test_setup_teardown(test_exception_cases, setup_fixture, teardown_fixture),
        cmocka_unit_test(test_empty_snapshot),
        cmocka_unit_test(test_partial_snapshots),
        cmocka_unit_test(test_builder_limits),
        cmocka_unit_test(test_builder_free),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_swap_keeps_old_readers),
        cmocka_unit_test(test_big_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
