/*
 * test_dirstore - the SQLite directory store (src/dir/dirstore.c) and its CSV
 * import (src/dir/dirimport.c), on a fresh store in a mkdtemp directory.
 *
 * Import: a table of successive good files on one store (counts of added,
 * updated and unchanged pairs, and the whole store after each), then a table
 * of bad files, each on a fresh store that may be seeded first, giving the
 * exact "file:line: reason" lines. After every failed import the store is
 * checked unchanged three ways: its listing, a loaded snapshot and the
 * generation counter.
 *
 * Other writes: enable/disable by source or target (all or nothing),
 * enable/disable all, removal, domain pairs (no chains, no self-pairs, no bad
 * domains), exceptions, the coexistence switch. Every write goes through
 * WRITE(), which asserts the result, the exact error output, that the
 * generation moved by exactly one on success and not at all on failure, and
 * that a failed write left the store as it was. dirstore_load must then show
 * all of it, also after reopening the file.
 *
 * Error output is captured with open_memstream; the temporary directory's
 * name is cut out of it, so the tables read "in.csv:3: ...".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dir.h"
#include "dirstore.h"
#include "util.h"

#define BOM "\xEF\xBB\xBF"
#define CSV_NAME "in.csv"

/* ---------------------------------------------------------------- fixture */

struct fx {
    char dir[64];   /* the mkdtemp directory */
    char db[128];   /* dir/dir.db */
    char file[192]; /* the last file written */
    struct dirstore *ds;
    char *cap_text; /* open_memstream buffer */
    size_t cap_len;
    FILE *cap;
};

static void fx_open(struct fx *fx)
{
    char err[512] = "";
    fx->ds = dirstore_open(fx->db, err, sizeof(err));
    if (fx->ds == NULL)
        print_error("dirstore_open: %s\n", err);
    assert_non_null(fx->ds);
}

/* fx_remove_db - the store and its WAL files */
static void fx_remove_db(struct fx *fx)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char path[160];
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
        snprintf(path, sizeof(path), "%s%s", fx->db, suffixes[i]);
        unlink(path);
    }
}

/* fx_fresh - an empty store in place of the current one */
static void fx_fresh(struct fx *fx)
{
    dirstore_close(fx->ds);
    fx->ds = NULL;
    fx_remove_db(fx);
    fx_open(fx);
}

static int setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_dirstore.XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    snprintf(fx->db, sizeof(fx->db), "%s/dir.db", fx->dir);
    fx_open(fx);
    *state = fx;
    return 0;
}

/* teardown - close, then remove every file the test left and the directory */
static int teardown(void **state)
{
    struct fx *fx = *state;
    char path[512];
    if (fx->cap)
        fclose(fx->cap);
    free(fx->cap_text);
    dirstore_close(fx->ds);
    DIR *dh = opendir(fx->dir);
    if (dh) {
        struct dirent *de;
        while ((de = readdir(dh)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", fx->dir, de->d_name);
            unlink(path);
        }
        closedir(dh);
    }
    int rc = rmdir(fx->dir);
    free(fx);
    return rc;
}

/* fx_write - a file in the test directory; returns its path (in fx->file) */
static const char *fx_write(struct fx *fx, const char *name, const char *content)
{
    snprintf(fx->file, sizeof(fx->file), "%s/%s", fx->dir, name);
    FILE *fp = fopen(fx->file, "wb");
    assert_non_null(fp);
    size_t len = strlen(content);
    assert_int_equal(fwrite(content, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    return fx->file;
}

/* cap_begin - a fresh stream to give a function as errs */
static FILE *cap_begin(struct fx *fx)
{
    free(fx->cap_text);
    fx->cap_text = NULL;
    fx->cap_len = 0;
    fx->cap = open_memstream(&fx->cap_text, &fx->cap_len);
    assert_non_null(fx->cap);
    return fx->cap;
}

/* cap_end - what was written, with "<tmpdir>/" cut out; caller owns */
static char *cap_end(struct fx *fx)
{
    char prefix[80];
    assert_non_null(fx->cap);
    fclose(fx->cap);
    fx->cap = NULL;
    snprintf(prefix, sizeof(prefix), "%s/", fx->dir);
    size_t plen = strlen(prefix);
    char *out = xmalloc(fx->cap_len + 1);
    size_t used = 0;
    for (size_t i = 0; i < fx->cap_len;) {
        if (fx->cap_len - i >= plen && memcmp(fx->cap_text + i, prefix, plen) == 0) {
            i += plen;
            continue;
        }
        out[used++] = fx->cap_text[i++];
    }
    out[used] = '\0';
    return out;
}

/* ---------------------------------------------------------------- store views */

static int dump_row(const struct dirstore_row *row, void *arg)
{
    fprintf(arg, "%s,%s,%d\n", row->source, row->target, row->enabled);
    return 0;
}

/* store_dump - every pair as "source,target,enabled\n", by source; caller owns */
static char *store_dump(struct dirstore *ds, int enabled_filter, const char *match)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    assert_non_null(fp);
    assert_int_equal(dirstore_list(ds, enabled_filter, match, dump_row, fp, stderr), 0);
    fclose(fp);
    return text;
}

/* store_state - listing, generation, and a loaded snapshot's view of them */
struct store_state {
    char *dump;
    long long generation;
    size_t snapshot_pairs;
    long long snapshot_generation;
    int coexistence;
};

static void state_take(struct dirstore *ds, struct store_state *st)
{
    char err[512] = "";
    st->dump = store_dump(ds, -1, NULL);
    st->generation = dirstore_generation(ds);
    assert_true(st->generation >= 0);
    struct dir_snapshot *d = dirstore_load(ds, err, sizeof(err));
    if (d == NULL)
        print_error("dirstore_load: %s\n", err);
    assert_non_null(d);
    st->snapshot_pairs = dir_pair_count(d);
    st->snapshot_generation = dir_generation(d);
    st->coexistence = dir_coexistence(d);
    dir_snapshot_unref(d);
    assert_int_equal(st->snapshot_generation, st->generation);
}

static void state_release(struct store_state *st)
{
    free(st->dump);
    st->dump = NULL;
}

/* state_same - nothing changed between a and b */
static int state_same(const char *name, const struct store_state *a, const struct store_state *b)
{
    if (strcmp(a->dump, b->dump) != 0 || a->generation != b->generation ||
        a->snapshot_pairs != b->snapshot_pairs || a->coexistence != b->coexistence) {
        print_error("%s: the store changed\n--- before (generation %lld)\n%s--- after "
                    "(generation %lld)\n%s---\n",
                    name, a->generation, a->dump, b->generation, b->dump);
        return 0;
    }
    return 1;
}

/* check_write - a write's result, its exact error output and its effect on the store */
static void check_write(const char *what, long rc, long want_rc, const char *errs,
                        const char *want_errs, struct store_state *before,
                        struct store_state *after)
{
    int ok = 1;
    if (rc != want_rc) {
        print_error("%s: returned %ld, want %ld\n", what, rc, want_rc);
        ok = 0;
    }
    if (strcmp(errs, want_errs) != 0) {
        print_error("%s: error output\n--- got\n%s--- want\n%s---\n", what, errs, want_errs);
        ok = 0;
    }
    if (want_rc >= 0 && after->generation != before->generation + 1) {
        print_error("%s: generation %lld -> %lld, want one more\n", what, before->generation,
                    after->generation);
        ok = 0;
    }
    if (want_rc < 0 && !state_same(what, before, after))
        ok = 0;
    state_release(before);
    state_release(after);
    if (!ok)
        fail();
}

/*
 * WRITE - run CALL (which may use `errs`) and check it: result WANT_RC, error
 * output WANT_ERRS exactly, generation +1 on success, nothing changed on failure
 */
#define WRITE(fx, want_rc, want_errs, call) WRITE_NAMED(fx, #call, want_rc, want_errs, call)
/* WRITE_NAMED - WRITE with a name for the messages (a table row's) */
#define WRITE_NAMED(fx, name, want_rc, want_errs, call)                                            \
    do {                                                                                           \
        struct store_state before_, after_;                                                        \
        state_take((fx)->ds, &before_);                                                            \
        FILE *errs = cap_begin(fx);                                                                \
        long rc_ = (long)(call);                                                                   \
        char *got_ = cap_end(fx);                                                                  \
        state_take((fx)->ds, &after_);                                                             \
        check_write((name), rc_, (want_rc), got_, (want_errs), &before_, &after_);                 \
        free(got_);                                                                                \
    } while (0)

static void assert_dump(struct dirstore *ds, const char *want)
{
    char *got = store_dump(ds, -1, NULL);
    if (strcmp(got, want) != 0) {
        print_error("store\n--- got\n%s--- want\n%s---\n", got, want);
        free(got);
        fail();
    }
    free(got);
}

/* seed - import a CSV that must succeed */
static void seed(struct fx *fx, const char *csv)
{
    struct dirstore_import_stats st;
    const char *path = fx_write(fx, "seed.csv", csv);
    FILE *errs = cap_begin(fx);
    int rc = dirstore_import_csv(fx->ds, path, errs, &st);
    char *got = cap_end(fx);
    if (rc != 0 || got[0] != '\0')
        print_error("seed import failed:\n%s", got);
    free(got);
    assert_int_equal(rc, 0);
}

/* ---------------------------------------------------------------- good imports */

struct import_step {
    const char *name;
    const char *input;
    unsigned long rows, added, updated; /* unchanged = rows - added - updated */
    const char *want_store;
};

static const struct import_step import_steps[] = {
    {.name = "good file",
     .input = "source,target,enabled\n"
              "alice@s.example,alice@t.example,true\n"
              "bob@s.example,bob@t.example,false\n"
              "carol@s.example,carol@t.example,yes\n",
     .rows = 3,
     .added = 3,
     .updated = 0,
     .want_store = "alice@s.example,alice@t.example,1\n"
                   "bob@s.example,bob@t.example,0\n"
                   "carol@s.example,carol@t.example,1\n"},
    {.name = "same file again: all unchanged",
     .input = "source,target,enabled\n"
              "alice@s.example,alice@t.example,true\n"
              "bob@s.example,bob@t.example,false\n"
              "carol@s.example,carol@t.example,yes\n",
     .rows = 3,
     .added = 0,
     .updated = 0,
     .want_store = "alice@s.example,alice@t.example,1\n"
                   "bob@s.example,bob@t.example,0\n"
                   "carol@s.example,carol@t.example,1\n"},
    {.name = "re-import updates target and enabled, adds, leaves the rest",
     .input = "source,target,enabled\n"
              "alice@s.example,alice2@t.example,1\n"
              "bob@s.example,bob@t.example,1\n"
              "carol@s.example,carol@t.example,on\n"
              "dave@s.example,dave@t.example,0\n",
     .rows = 4,
     .added = 1,
     .updated = 2,
     .want_store = "alice@s.example,alice2@t.example,1\n"
                   "bob@s.example,bob@t.example,1\n"
                   "carol@s.example,carol@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"},
    {.name = "no enabled column: enabled kept, new pairs disabled",
     .input = "source,target\n"
              "alice@s.example,alice3@t.example\n"
              "bob@s.example,bob@t.example\n"
              "erin@s.example,erin@t.example\n",
     .rows = 3,
     .added = 1,
     .updated = 1,
     .want_store = "alice@s.example,alice3@t.example,1\n"
                   "bob@s.example,bob@t.example,1\n"
                   "carol@s.example,carol@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"},
    {.name = "header in any order and case, other columns ignored",
     .input = "Note,ENABLED,Target,SOURCE,extra\n"
              "hello,Off,alice3@t.example,alice@s.example,x\n"
              "\"a, note\",N,erin@t.example,erin@s.example,\n",
     .rows = 2,
     .added = 0,
     .updated = 1,
     .want_store = "alice@s.example,alice3@t.example,0\n"
                   "bob@s.example,bob@t.example,1\n"
                   "carol@s.example,carol@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"},
    {.name = "BOM, CRLF, quoted fields, blanks, no final line break",
     .input = BOM "source,target,enabled\r\n"
                  "\"frank@s.example\",\"frank@t.example\",\"TRUE\"\r\n"
                  "  gina@s.example , gina@t.example\t,disabled",
     .rows = 2,
     .added = 2,
     .updated = 0,
     .want_store = "alice@s.example,alice3@t.example,0\n"
                   "bob@s.example,bob@t.example,1\n"
                   "carol@s.example,carol@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"},
    {.name = "header only: nothing to do",
     .input = "source,target,enabled\n",
     .rows = 0,
     .added = 0,
     .updated = 0,
     .want_store = "alice@s.example,alice3@t.example,0\n"
                   "bob@s.example,bob@t.example,1\n"
                   "carol@s.example,carol@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"},
    {.name = "blank lines and empty records skipped",
     .input = "\n\nsource,target\n\n,\n  ,  \nhank@s.example,hank@t.example\n\n",
     .rows = 1,
     .added = 1,
     .updated = 0,
     .want_store = "alice@s.example,alice3@t.example,0\n"
                   "bob@s.example,bob@t.example,1\n"
                   "carol@s.example,carol@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"
                   "hank@s.example,hank@t.example,0\n"},
    {.name = "two pairs swap their targets",
     .input = "source,target\n"
              "bob@s.example,carol@t.example\n"
              "carol@s.example,bob@t.example\n",
     .rows = 2,
     .added = 0,
     .updated = 2,
     .want_store = "alice@s.example,alice3@t.example,0\n"
                   "bob@s.example,carol@t.example,1\n"
                   "carol@s.example,bob@t.example,1\n"
                   "dave@s.example,dave@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"
                   "hank@s.example,hank@t.example,0\n"},
    {.name = "a target freed and taken in the same file",
     .input = "source,target,enabled\n"
              "ivan@s.example,dave@t.example,1\n"
              "dave@s.example,dave2@t.example,0\n",
     .rows = 2,
     .added = 1,
     .updated = 1,
     .want_store = "alice@s.example,alice3@t.example,0\n"
                   "bob@s.example,carol@t.example,1\n"
                   "carol@s.example,bob@t.example,1\n"
                   "dave@s.example,dave2@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"
                   "hank@s.example,hank@t.example,0\n"
                   "ivan@s.example,dave@t.example,1\n"},
    {.name = "source matched ignoring case; the new spelling is stored",
     .input = "source,target\n"
              "ALICE@S.EXAMPLE,alice3@t.example\n",
     .rows = 1,
     .added = 0,
     .updated = 0,
     .want_store = "ALICE@S.EXAMPLE,alice3@t.example,0\n"
                   "bob@s.example,carol@t.example,1\n"
                   "carol@s.example,bob@t.example,1\n"
                   "dave@s.example,dave2@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"
                   "hank@s.example,hank@t.example,0\n"
                   "ivan@s.example,dave@t.example,1\n"},
    {.name = "quoted local part stored unquoted; UTF-8 kept as is",
     .input = "source,target,enabled\n"
              "\"\"\"jane\"\"@s.example\",jane@t.example,y\n"
              "j\xc3\xb6rg@s.example,J\xc3\xb6rg@T.example,1\n",
     .rows = 2,
     .added = 2,
     .updated = 0,
     .want_store = "ALICE@S.EXAMPLE,alice3@t.example,0\n"
                   "bob@s.example,carol@t.example,1\n"
                   "carol@s.example,bob@t.example,1\n"
                   "dave@s.example,dave2@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"
                   "hank@s.example,hank@t.example,0\n"
                   "ivan@s.example,dave@t.example,1\n"
                   "jane@s.example,jane@t.example,1\n"
                   "j\xc3\xb6rg@s.example,J\xc3\xb6rg@T.example,1\n"},
    {.name = "an empty enabled field means false (docs/csv-format.md)",
     .input = "source,target,enabled\n"
              "jane@s.example,jane@t.example,\n"
              "kim@s.example,kim@t.example,\"\"\n",
     .rows = 2,
     .added = 1,
     .updated = 1,
     .want_store = "ALICE@S.EXAMPLE,alice3@t.example,0\n"
                   "bob@s.example,carol@t.example,1\n"
                   "carol@s.example,bob@t.example,1\n"
                   "dave@s.example,dave2@t.example,0\n"
                   "erin@s.example,erin@t.example,0\n"
                   "frank@s.example,frank@t.example,1\n"
                   "gina@s.example,gina@t.example,0\n"
                   "hank@s.example,hank@t.example,0\n"
                   "ivan@s.example,dave@t.example,1\n"
                   "jane@s.example,jane@t.example,0\n"
                   "j\xc3\xb6rg@s.example,J\xc3\xb6rg@T.example,1\n"
                   "kim@s.example,kim@t.example,0\n"},
};

static void test_import_steps(void **state)
{
    struct fx *fx = *state;
    for (size_t c = 0; c < ARRAY_LEN(import_steps); c++) {
        const struct import_step *tc = &import_steps[c];
        struct dirstore_import_stats st;
        memset(&st, 0xff, sizeof(st));
        long long gen = dirstore_generation(fx->ds);
        const char *path = fx_write(fx, CSV_NAME, tc->input);
        FILE *errs = cap_begin(fx);
        int rc = dirstore_import_csv(fx->ds, path, errs, &st);
        char *got = cap_end(fx);
        char *dump = store_dump(fx->ds, -1, NULL);
        int ok = rc == 0 && got[0] == '\0' && st.rows == tc->rows && st.added == tc->added &&
                 st.updated == tc->updated && st.errors == 0 && strcmp(dump, tc->want_store) == 0 &&
                 dirstore_generation(fx->ds) == gen + 1;
        if (!ok)
            print_error("%s: rc %d, rows %lu added %lu updated %lu errors %lu (want %lu %lu %lu "
                        "0), generation %lld -> %lld\n--- errors\n%s--- store\n%s--- want\n%s---\n",
                        tc->name, rc, st.rows, st.added, st.updated, st.errors, tc->rows, tc->added,
                        tc->updated, gen, dirstore_generation(fx->ds), got, dump, tc->want_store);
        free(got);
        free(dump);
        if (!ok)
            fail();
    }
}

/* ---------------------------------------------------------------- bad imports */

struct import_error_case {
    const char *name;
    const char *store; /* a CSV imported first, or NULL for an empty store */
    const char *input;
    const char *want; /* exact error output; the directory is cut out of paths */
    int any_order;    /* compare the lines as a set */
};

#define HDR "source,target\n"
#define SUMMARY(n) CSV_NAME ": " #n " error(s): nothing imported\n"
#define HEADER_MSG "the first line must be a header naming the columns source,target[,enabled]"

static const struct import_error_case import_error_cases[] = {
    /* addresses */
    {.name = "bad source address",
     .input = HDR "not-an-address,b@t.example\n",
     .want = "in.csv:2: bad source address 'not-an-address'\n" SUMMARY(1)},
    {.name = "bad target address on the third line",
     .input = HDR "a@s.example,a@t.example\nb@s.example,b@@t.example\n",
     .want = "in.csv:3: bad target address 'b@@t.example'\n" SUMMARY(1)},
    {.name = "display name form is not an address",
     .input = HDR "Bob <b@s.example>,b@t.example\n",
     .want = "in.csv:2: bad source address 'Bob <b@s.example>'\n" SUMMARY(1)},
    {.name = "address with a blank inside",
     .input = HDR "a@s.example,\"a b@t.example\"\n",
     .want = "in.csv:2: bad target address 'a b@t.example'\n" SUMMARY(1)},
    {.name = "empty source address",
     .input = HDR ",b@t.example\n",
     .want = "in.csv:2: empty source address\n" SUMMARY(1)},
    {.name = "empty target address",
     .input = HDR "a@s.example,\n",
     .want = "in.csv:2: empty target address\n" SUMMARY(1)},
    {.name = "blank target address",
     .input = HDR "a@s.example,   \n",
     .want = "in.csv:2: empty target address\n" SUMMARY(1)},
    {.name = "both addresses bad on one line",
     .input = HDR "x,y\n",
     .want = "in.csv:2: bad source address 'x'\nin.csv:2: bad target address 'y'\n" SUMMARY(2)},
    /* duplicates inside the file */
    {.name = "duplicate source names the first line",
     .input = HDR "a@s.example,a@t.example\nb@s.example,b@t.example\na@s.example,c@t.example\n",
     .want = "in.csv:4: duplicate source a@s.example (first on line 2)\n" SUMMARY(1)},
    {.name = "duplicate source ignoring case",
     .input = HDR "Alice@S.example,a@t.example\nalice@s.EXAMPLE,b@t.example\n",
     .want = "in.csv:3: duplicate source alice@s.EXAMPLE (first on line 2)\n" SUMMARY(1)},
    {.name = "duplicate target",
     .input = HDR "a@s.example,x@t.example\nb@s.example,x@t.example\n",
     .want = "in.csv:3: duplicate target x@t.example (first on line 2)\n" SUMMARY(1)},
    {.name = "duplicate target ignoring case",
     .input = HDR "a@s.example,x@t.example\nb@s.example,b@t.example\nc@s.example,X@T.Example\n",
     .want = "in.csv:4: duplicate target X@T.Example (first on line 2)\n" SUMMARY(1)},
    {.name = "same pair twice",
     .input = HDR "a@s.example,a@t.example\na@s.example,a@t.example\n",
     .want = "in.csv:3: duplicate source a@s.example (first on line 2)\n"
             "in.csv:3: duplicate target a@t.example (first on line 2)\n" SUMMARY(2)},
    {.name = "an earlier source is a later target",
     .input = HDR "a@s.example,b@t.example\nc@s.example,a@s.example\n",
     .want = "in.csv:3: a@s.example is the target here but the source on line 2\n" SUMMARY(1)},
    {.name = "an earlier target is a later source",
     .input = HDR "a@s.example,b@t.example\nb@t.example,c@t.example\n",
     .want = "in.csv:3: b@t.example is the source here but the target on line 2\n" SUMMARY(1)},
    {.name = "source and target on different lines, ignoring case",
     .input = HDR "a@s.example,b@t.example\nB@T.EXAMPLE,c@t.example\n",
     .want = "in.csv:3: B@T.EXAMPLE is the source here but the target on line 2\n" SUMMARY(1)},
    {.name = "source equals target",
     .input = HDR "a@x.example,a@x.example\n",
     .want = "in.csv:2: source and target are the same address a@x.example\n" SUMMARY(1)},
    {.name = "source equals target ignoring case",
     .input = HDR "ok@s.example,ok@t.example\nA@x.example,a@X.EXAMPLE\n",
     .want = "in.csv:3: source and target are the same address A@x.example\n" SUMMARY(1)},
    /* the enabled column */
    {.name = "bad enabled value",
     .input = "source,target,enabled\na@s.example,a@t.example,maybe\n",
     .want = "in.csv:2: bad enabled value 'maybe' (use true or false)\n" SUMMARY(1)},
    {.name = "enabled value 2",
     .input = "source,target,enabled\na@s.example,a@t.example,1\nb@s.example,b@t.example,2\n",
     .want = "in.csv:3: bad enabled value '2' (use true or false)\n" SUMMARY(1)},
    /* header and shape */
    {.name = "missing header",
     .input = "a@s.example,b@t.example\nc@s.example,d@t.example\n",
     .want = "in.csv:1: " HEADER_MSG "\n" SUMMARY(1)},
    {.name = "header without a target column",
     .input = "source,enabled\na@s.example,1\n",
     .want = "in.csv:1: " HEADER_MSG "\n" SUMMARY(1)},
    {.name = "missing header after blank lines",
     .input = "\n\na@s.example,b@t.example\n",
     .want = "in.csv:3: " HEADER_MSG "\n" SUMMARY(1)},
    {.name = "empty file",
     .input = "",
     .want = "in.csv:1: empty file: expected a header line source,target[,enabled]\n" SUMMARY(1)},
    {.name = "blank lines only",
     .input = "\n \n,\n",
     .want = "in.csv:1: empty file: expected a header line source,target[,enabled]\n" SUMMARY(1)},
    {.name = "BOM only",
     .input = BOM,
     .want = "in.csv:1: empty file: expected a header line source,target[,enabled]\n" SUMMARY(1)},
    {.name = "column named twice",
     .input = "source,target,Source\na@s.example,a@t.example,b@s.example\n",
     .want = "in.csv:1: column 'source' appears twice\n" SUMMARY(1)},
    {.name = "too few fields",
     .input = "source,target,enabled\na@s.example,a@t.example,1\nb@s.example,b@t.example\n",
     .want = "in.csv:3: expected at least 3 fields, found 2\n" SUMMARY(1)},
    {.name = "too few fields, enabled first",
     .input = "enabled,source,target\n1,a@s.example\n",
     .want = "in.csv:2: expected at least 3 fields, found 2\n" SUMMARY(1)},
    {.name = "one field",
     .input = HDR "a@s.example\n",
     .want = "in.csv:2: expected at least 2 fields, found 1\n" SUMMARY(1)},
    {.name = "CSV error before the header",
     .input = "\"source,target\na@s.example,b@t.example\n",
     .want = "in.csv:1: unterminated quoted field\n" SUMMARY(1)},
    {.name = "unterminated quote after the header",
     .input = HDR "a@s.example,a@t.example\nb@s.example,\"b@t.example\nc@s.example,c@t.example\n",
     .want = "in.csv:3: unterminated quoted field\n" SUMMARY(1)},
    {.name = "quote inside an unquoted field",
     .input = HDR "a@s.example,a@t.example\nb@s.example,b\"@t.example\nc@s.example,c@t.example\n",
     .want = "in.csv:3: quote inside an unquoted field\n" SUMMARY(1)},
    {.name = "line numbers after a multi-line quoted field",
     .input = "source,target,note\n"
              "a@s.example,a@t.example,\"one\ntwo\nthree\"\n"
              "bad,b@t.example,x\n",
     .want = "in.csv:5: bad source address 'bad'\n" SUMMARY(1)},
    {.name = "line numbers in a CRLF file with a BOM",
     .input = BOM "source,target\r\na@s.example,a@t.example\r\nb@s.example,nope\r\n",
     .want = "in.csv:3: bad target address 'nope'\n" SUMMARY(1)},
    {.name = "every bad line is reported",
     .input = "source,target,enabled\n"
              "bad1,a@t.example,1\n"
              "a@s.example,a@t.example,maybe\n"
              "b@s.example,a@t.example,1\n"
              "c@s.example,,0\n"
              "d@s.example,d@t.example\n"
              "e@s.example,e@t.example,1\n",
     .want = "in.csv:2: bad source address 'bad1'\n"
             "in.csv:3: bad enabled value 'maybe' (use true or false)\n"
             "in.csv:4: duplicate target a@t.example (first on line 3)\n"
             "in.csv:5: empty target address\n"
             "in.csv:6: expected at least 3 fields, found 2\n" SUMMARY(5),
     .any_order = 1},
};

/* conflicts with pairs already in the store */
static const struct import_error_case import_conflict_cases[] = {
    {.name = "target owned by another source in the store",
     .store = HDR "a@s.example,x@t.example\n",
     .input = HDR "b@s.example,x@t.example\n",
     .want = "in.csv:2: target x@t.example already belongs to source a@s.example in the "
             "directory\n" SUMMARY(1)},
    {.name = "target owned by another source, other case",
     .store = HDR "a@s.example,x@t.example\n",
     .input = HDR "n@s.example,n@t.example\nb@s.example,X@T.EXAMPLE\n",
     .want = "in.csv:3: target X@T.EXAMPLE already belongs to source a@s.example in the "
             "directory\n" SUMMARY(1)},
    {.name = "source that is another pair's target",
     .store = HDR "a@s.example,b@t.example\n",
     .input = HDR "b@t.example,c@t.example\n",
     .want = "in.csv:2: source b@t.example is the target of pair a@s.example in the "
             "directory\n" SUMMARY(1)},
    {.name = "target that is another pair's source",
     .store = HDR "a@s.example,b@t.example\n",
     .input = HDR "c@s.example,A@S.example\n",
     .want =
         "in.csv:2: target A@S.example is the source of another pair in the directory\n" SUMMARY(
             1)},
    {.name = "two targets owned in the store",
     .store = HDR "a@s.example,x@t.example\nb@s.example,y@t.example\n",
     .input = HDR "c@s.example,x@t.example\nd@s.example,y@t.example\n",
     .want = "in.csv:2: target x@t.example already belongs to source a@s.example in the "
             "directory\n"
             "in.csv:3: target y@t.example already belongs to source b@s.example in the "
             "directory\n" SUMMARY(2)},
    {.name = "two sources that are targets in the store",
     .store = HDR "a@s.example,a@t.example\nb@s.example,b@t.example\n",
     .input = HDR "a@t.example,x@t.example\nb@t.example,y@t.example\n",
     .want = "in.csv:2: source a@t.example is the target of pair a@s.example in the directory\n"
             "in.csv:3: source b@t.example is the target of pair b@s.example in the "
             "directory\n" SUMMARY(2)},
    {.name = "a taken target and a source that is a target",
     .store = HDR "a@s.example,x@t.example\nb@s.example,b@t.example\n",
     .input = HDR "c@s.example,x@t.example\nb@t.example,y@t.example\n",
     .want = "in.csv:2: target x@t.example already belongs to source a@s.example in the "
             "directory\n"
             "in.csv:3: source b@t.example is the target of pair b@s.example in the "
             "directory\n" SUMMARY(2)},
    {.name = "good rows are not imported beside a conflict",
     .store = HDR "a@s.example,x@t.example\n",
     .input = "source,target,enabled\nn@s.example,n@t.example,1\nc@s.example,c@t.example,1\n"
              "b@s.example,x@t.example,1\n",
     .want = "in.csv:4: target x@t.example already belongs to source a@s.example in the "
             "directory\n" SUMMARY(1)},
};

/* sort_lines - the lines of text in byte order, for set comparison; caller owns */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *sort_lines(const char *text)
{
    char *copy = xstrdup(text);
    char *lines[64];
    size_t count = 0;
    for (char *p = copy; *p && count < ARRAY_LEN(lines);) {
        char *nl = strchr(p, '\n');
        lines[count++] = p;
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    qsort(lines, count, sizeof(lines[0]), cmp_str);
    char *out = xmalloc(strlen(text) + 2);
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(lines[i]);
        memcpy(out + used, lines[i], len);
        used += len;
        out[used++] = '\n';
    }
    out[used] = '\0';
    free(copy);
    return out;
}

/* count_line_errors - lines of the form "in.csv:N: " */
static unsigned long count_line_errors(const char *text)
{
    unsigned long count = 0;
    size_t plen = strlen(CSV_NAME ":");
    for (const char *p = text; *p;) {
        if (strncmp(p, CSV_NAME ":", plen) == 0 && p[plen] >= '0' && p[plen] <= '9')
            count++;
        const char *nl = strchr(p, '\n');
        if (nl == NULL)
            break;
        p = nl + 1;
    }
    return count;
}

/* run_import_errors - each case on a fresh store; the number of failed cases */
static int run_import_errors(struct fx *fx, const struct import_error_case *cases, size_t count)
{
    int failed = 0;
    for (size_t c = 0; c < count; c++) {
        const struct import_error_case *tc = &cases[c];
        struct store_state before, after;
        struct dirstore_import_stats st;
        fx_fresh(fx);
        if (tc->store)
            seed(fx, tc->store);
        state_take(fx->ds, &before);
        const char *path = fx_write(fx, CSV_NAME, tc->input);
        FILE *errs = cap_begin(fx);
        int rc = dirstore_import_csv(fx->ds, path, errs, &st);
        char *got = cap_end(fx);
        state_take(fx->ds, &after);
        char *got_cmp = tc->any_order ? sort_lines(got) : xstrdup(got);
        char *want_cmp = tc->any_order ? sort_lines(tc->want) : xstrdup(tc->want);
        int ok = 1;
        if (rc != -1 || strcmp(got_cmp, want_cmp) != 0) {
            print_error("%s: rc %d\n--- got\n%s--- want\n%s---\n", tc->name, rc, got, tc->want);
            ok = 0;
        }
        if (st.added != 0 || st.updated != 0 || st.errors != count_line_errors(tc->want)) {
            print_error("%s: stats added %lu updated %lu errors %lu, want 0 0 %lu\n", tc->name,
                        st.added, st.updated, st.errors, count_line_errors(tc->want));
            ok = 0;
        }
        if (!state_same(tc->name, &before, &after))
            ok = 0;
        failed += !ok;
        free(got);
        free(got_cmp);
        free(want_cmp);
        state_release(&before);
        state_release(&after);
    }
    return failed;
}

/* bad files: addresses, in-file duplicates and clashes, the header, CSV syntax */
static void test_import_errors(void **state)
{
    assert_int_equal(run_import_errors(*state, import_error_cases, ARRAY_LEN(import_error_cases)),
                     0);
}

/* files that are fine alone but clash with pairs already in the store */
static void test_import_conflicts(void **state)
{
    assert_int_equal(
        run_import_errors(*state, import_conflict_cases, ARRAY_LEN(import_conflict_cases)), 0);
}

/* an import with errs NULL fails the same way, quietly */
static void test_import_errors_quiet(void **state)
{
    struct fx *fx = *state;
    struct dirstore_import_stats st;
    struct store_state before, after;
    seed(fx, HDR "a@s.example,x@t.example\n");
    state_take(fx->ds, &before);
    const char *path = fx_write(fx, CSV_NAME, HDR "b@s.example,x@t.example\nbad,c@t.example\n");
    assert_int_equal(dirstore_import_csv(fx->ds, path, NULL, &st), -1);
    assert_int_equal(st.errors, 1);
    path = fx_write(fx, CSV_NAME, HDR "b@s.example,x@t.example\n");
    assert_int_equal(dirstore_import_csv(fx->ds, path, NULL, NULL), -1);
    state_take(fx->ds, &after);
    assert_true(state_same("quiet imports", &before, &after));
    state_release(&before);
    state_release(&after);
}

static void test_import_missing_file(void **state)
{
    struct fx *fx = *state;
    char path[160];
    snprintf(path, sizeof(path), "%s/missing.csv", fx->dir);
    struct dirstore_import_stats st;
    WRITE(fx, -1, "missing.csv: cannot read: No such file or directory\n",
          dirstore_import_csv(fx->ds, path, errs, &st));
    assert_int_equal(st.errors, 1);
    assert_int_equal(st.added, 0);
}

/* ---------------------------------------------------------------- enable, remove */

#define THREE_PAIRS                                                                                \
    "source,target,enabled\n"                                                                      \
    "alice@s.example,alice@t.example,0\n"                                                          \
    "bob@s.example,bob@t.example,0\n"                                                              \
    "carol@s.example,carol@t.example,1\n"

#define NOT_FOUND(addr) "no mailbox pair has the address " addr "\n"

static void test_set_enabled(void **state)
{
    struct fx *fx = *state;
    seed(fx, THREE_PAIRS);

    const char *by_source[] = {"alice@s.example"};
    WRITE(fx, 1, "", dirstore_set_enabled(fx->ds, by_source, NULL, 1, 1, errs));
    assert_dump(fx->ds, "alice@s.example,alice@t.example,1\n"
                        "bob@s.example,bob@t.example,0\n"
                        "carol@s.example,carol@t.example,1\n");

    const char *by_target[] = {"BOB@T.Example"};
    WRITE(fx, 1, "", dirstore_set_enabled(fx->ds, by_target, NULL, 1, 1, errs));
    assert_dump(fx->ds, "alice@s.example,alice@t.example,1\n"
                        "bob@s.example,bob@t.example,1\n"
                        "carol@s.example,carol@t.example,1\n");

    /* already enabled: a successful write that changes no pair */
    const char *both[] = {"alice@s.example", "bob@t.example"};
    WRITE(fx, 0, "", dirstore_set_enabled(fx->ds, both, NULL, 2, 1, errs));

    /* one unknown address: nothing changes, the error names it */
    const char *one_unknown[] = {"alice@s.example", "nobody@x.example", "carol@t.example"};
    WRITE(fx, -1, NOT_FOUND("nobody@x.example") "1 address(es) not found: nothing changed\n",
          dirstore_set_enabled(fx->ds, one_unknown, NULL, 3, 0, errs));
    const char *where[] = {"list.txt:1", "list.txt:2", "list.txt:3"};
    WRITE(fx, -1,
          "list.txt:2: " NOT_FOUND("nobody@x.example") "1 address(es) not found: nothing changed\n",
          dirstore_set_enabled(fx->ds, one_unknown, where, 3, 0, errs));
    const char *two_unknown[] = {"x@s.example", "carol@s.example", "y@t.example"};
    WRITE(fx, -1,
          "list.txt:1: " NOT_FOUND("x@s.example") "list.txt:3: " NOT_FOUND(
              "y@t.example") "2 address(es) not found: nothing changed\n",
          dirstore_set_enabled(fx->ds, two_unknown, where, 3, 0, errs));
    /* a domain or a part of an address names no pair */
    const char *partial[] = {"s.example"};
    WRITE(fx, -1, NOT_FOUND("s.example") "1 address(es) not found: nothing changed\n",
          dirstore_set_enabled(fx->ds, partial, NULL, 1, 0, errs));

    const char *disable[] = {"alice@t.example", "carol@S.EXAMPLE"};
    WRITE(fx, 2, "", dirstore_set_enabled(fx->ds, disable, NULL, 2, 0, errs));
    assert_dump(fx->ds, "alice@s.example,alice@t.example,0\n"
                        "bob@s.example,bob@t.example,1\n"
                        "carol@s.example,carol@t.example,0\n");

    WRITE(fx, 2, "", dirstore_set_enabled_all(fx->ds, 1, errs));
    WRITE(fx, 0, "", dirstore_set_enabled_all(fx->ds, 1, errs));
    assert_dump(fx->ds, "alice@s.example,alice@t.example,1\n"
                        "bob@s.example,bob@t.example,1\n"
                        "carol@s.example,carol@t.example,1\n");
    WRITE(fx, 3, "", dirstore_set_enabled_all(fx->ds, 0, errs));
    assert_dump(fx->ds, "alice@s.example,alice@t.example,0\n"
                        "bob@s.example,bob@t.example,0\n"
                        "carol@s.example,carol@t.example,0\n");
    long long total = -1, enabled = -1;
    assert_int_equal(dirstore_counts(fx->ds, &total, &enabled), 0);
    assert_int_equal(total, 3);
    assert_int_equal(enabled, 0);
}

static void test_set_enabled_empty_store(void **state)
{
    struct fx *fx = *state;
    WRITE(fx, 0, "", dirstore_set_enabled_all(fx->ds, 1, errs));
    const char *one[] = {"a@s.example"};
    WRITE(fx, -1, NOT_FOUND("a@s.example") "1 address(es) not found: nothing changed\n",
          dirstore_set_enabled(fx->ds, one, NULL, 1, 1, errs));
}

static void test_remove_pairs(void **state)
{
    struct fx *fx = *state;
    seed(fx, THREE_PAIRS);
    const char *with_unknown[] = {"alice@s.example", "nobody@x.example"};
    WRITE(fx, -1, NOT_FOUND("nobody@x.example") "1 address(es) not found: nothing changed\n",
          dirstore_remove_pairs(fx->ds, with_unknown, 2, errs));
    const char *two[] = {"ALICE@s.example", "carol@t.example"};
    WRITE(fx, 2, "", dirstore_remove_pairs(fx->ds, two, 2, errs));
    assert_dump(fx->ds, "bob@s.example,bob@t.example,0\n");
    /* removed means gone: a second removal is an error */
    const char *again[] = {"alice@s.example"};
    WRITE(fx, -1, NOT_FOUND("alice@s.example") "1 address(es) not found: nothing changed\n",
          dirstore_remove_pairs(fx->ds, again, 1, errs));
    /* the freed addresses can be imported again, the other way round */
    seed(fx, HDR "alice@t.example,alice@s.example\n");
    assert_dump(fx->ds, "alice@t.example,alice@s.example,0\nbob@s.example,bob@t.example,0\n");
}

/* ---------------------------------------------------------------- domains */

struct domain_step {
    const char *name;
    int add; /* 1 add, 0 remove */
    const char *target;
    const char *source;
    int want_rc;
    const char *want_errs;
};

#define DOMAIN_TAKEN(t, s) "domain already in the pair " t " <-> " s " (target <-> source)\n"

static const struct domain_step domain_steps[] = {
    {"add a pair", 1, "t.example", "s.example", 0, ""},
    {"add the same pair again", 1, "t.example", "s.example", -1,
     DOMAIN_TAKEN("t.example", "s.example")},
    {"target domain already a target", 1, "t.example", "other.example", -1,
     DOMAIN_TAKEN("t.example", "s.example")},
    {"source domain already a source", 1, "other.example", "s.example", -1,
     DOMAIN_TAKEN("t.example", "s.example")},
    {"chain: target of the new pair is a source", 1, "s.example", "other.example", -1,
     DOMAIN_TAKEN("t.example", "s.example")},
    {"chain: source of the new pair is a target", 1, "other.example", "t.example", -1,
     DOMAIN_TAKEN("t.example", "s.example")},
    {"the pair reversed", 1, "s.example", "t.example", -1, DOMAIN_TAKEN("t.example", "s.example")},
    {"already paired, other case", 1, "T.EXAMPLE", "other.example", -1,
     DOMAIN_TAKEN("t.example", "s.example")},
    {"paired with itself", 1, "same.example", "same.example", -1,
     "a domain cannot be paired with itself: same.example\n"},
    {"paired with itself, other case", 1, "Same.Example", "same.EXAMPLE", -1,
     "a domain cannot be paired with itself: Same.Example\n"},
    {"bad target domain", 1, "bad domain", "x.example", -1, "bad domain: bad domain\n"},
    {"bad source domain", 1, "x.example", "bad..example", -1, "bad domain: bad..example\n"},
    {"domain literal", 1, "x.example", "[192.0.2.1]", -1, "bad domain: [192.0.2.1]\n"},
    {"address instead of a domain", 1, "a@x.example", "y.example", -1, "bad domain: a@x.example\n"},
    {"empty domain", 1, "", "y.example", -1, "bad domain: \n"},
    {"second pair", 1, "New.Example", "old.example", 0, ""},
    {"remove an unknown pair", 0, "x.example", "y.example", -1, "no such domain pair\n"},
    {"remove a pair reversed", 0, "s.example", "t.example", -1, "no such domain pair\n"},
    {"remove half of a pair", 0, "t.example", "old.example", -1, "no such domain pair\n"},
    {"remove a pair", 0, "t.example", "s.example", 0, ""},
    {"remove it again", 0, "t.example", "s.example", -1, "no such domain pair\n"},
    {"its domains are free again", 1, "s.example", "t.example", 0, ""},
    {"remove ignoring case", 0, "new.example", "OLD.EXAMPLE", 0, ""},
};

static void test_domains(void **state)
{
    struct fx *fx = *state;
    for (size_t c = 0; c < ARRAY_LEN(domain_steps); c++) {
        const struct domain_step *tc = &domain_steps[c];
        if (tc->add)
            WRITE_NAMED(fx, tc->name, tc->want_rc, tc->want_errs,
                        dirstore_domain_add(fx->ds, tc->target, tc->source, errs));
        else
            WRITE_NAMED(fx, tc->name, tc->want_rc, tc->want_errs,
                        dirstore_domain_remove(fx->ds, tc->target, tc->source, errs));
    }
    /* what is left: s.example (target) <-> t.example (source) */
    char err[256];
    struct dir_snapshot *d = dirstore_load(fx->ds, err, sizeof(err));
    assert_non_null(d);
    const char *other;
    size_t other_len;
    assert_int_equal(dir_find_domain(d, DIR_TARGET, "s.example", 9, &other, &other_len), 1);
    assert_int_equal(other_len, 9);
    assert_memory_equal(other, "t.example", 9);
    assert_int_equal(dir_find_domain(d, DIR_SOURCE, "T.example", 9, &other, &other_len), 1);
    assert_memory_equal(other, "s.example", 9);
    assert_int_equal(dir_find_domain(d, DIR_TARGET, "new.example", 11, &other, &other_len), 0);
    assert_int_equal(dir_find_domain(d, DIR_SOURCE, "old.example", 11, &other, &other_len), 0);
    dir_snapshot_unref(d);
}

/* ---------------------------------------------------------------- exceptions */

struct exception_step {
    const char *name;
    int add;
    const char *value;
    int want_rc;
    const char *want_errs;
};

static const struct exception_step exception_steps[] = {
    {"add an address", 1, "ceo@t.example", 0, ""},
    {"add a domain", 1, "partner.example", 0, ""},
    {"add a quoted local part", 1, "\"john doe\"@t.example", 0, ""},
    {"add the address again, other case", 1, "CEO@T.EXAMPLE", 0, ""},
    {"not an address", 1, "not an address", -1, "bad address or domain: not an address\n"},
    {"address without a domain", 1, "a@", -1, "bad address or domain: a@\n"},
    {"address with two @", 1, "a@b@c.example", -1, "bad address or domain: a@b@c.example\n"},
    {"domain with an empty label", 1, "x..example", -1, "bad address or domain: x..example\n"},
    {"domain literal", 1, "[192.0.2.1]", -1, "bad address or domain: [192.0.2.1]\n"},
    {"empty", 1, "", -1, "bad address or domain: \n"},
    {"remove an unknown exception", 0, "cfo@t.example", -1, "no such exception\n"},
    {"remove the domain, other case", 0, "Partner.Example", 0, ""},
    {"remove it again", 0, "partner.example", -1, "no such exception\n"},
};

static void test_exceptions(void **state)
{
    struct fx *fx = *state;
    for (size_t c = 0; c < ARRAY_LEN(exception_steps); c++) {
        const struct exception_step *tc = &exception_steps[c];
        if (tc->add)
            WRITE_NAMED(fx, tc->name, tc->want_rc, tc->want_errs,
                        dirstore_exception_add(fx->ds, tc->value, errs));
        else
            WRITE_NAMED(fx, tc->name, tc->want_rc, tc->want_errs,
                        dirstore_exception_remove(fx->ds, tc->value, errs));
    }
    char err[256];
    struct dir_snapshot *d = dirstore_load(fx->ds, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(dir_is_exception(d, "ceo@t.example", 13), 1);
    assert_int_equal(dir_is_exception(d, "Ceo@T.Example", 13), 1);
    assert_int_equal(dir_is_exception(d, "\"john doe\"@t.example", 20), 1);
    assert_int_equal(dir_is_exception(d, "cfo@t.example", 13), 0);
    assert_int_equal(dir_is_exception(d, "x@partner.example", 17), 0);
    dir_snapshot_unref(d);
}

/* ---------------------------------------------------------------- coexistence */

static void test_coexistence(void **state)
{
    struct fx *fx = *state;
    assert_int_equal(dirstore_get_coexistence(fx->ds), 0);
    WRITE(fx, 0, "", dirstore_set_coexistence(fx->ds, 1, errs));
    assert_int_equal(dirstore_get_coexistence(fx->ds), 1);
    WRITE(fx, 0, "", dirstore_set_coexistence(fx->ds, 1, errs));
    assert_int_equal(dirstore_get_coexistence(fx->ds), 1);
    WRITE(fx, 0, "", dirstore_set_coexistence(fx->ds, 0, errs));
    assert_int_equal(dirstore_get_coexistence(fx->ds), 0);
    WRITE(fx, 0, "", dirstore_set_coexistence(fx->ds, 7, errs));
    assert_int_equal(dirstore_get_coexistence(fx->ds), 1);
}

/* ---------------------------------------------------------------- generation, load */

static void test_generation_fresh(void **state)
{
    struct fx *fx = *state;
    char err[256];
    assert_int_equal(dirstore_generation(fx->ds), 0);
    struct dir_snapshot *d = dirstore_load(fx->ds, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(dir_generation(d), 0);
    assert_int_equal(dir_pair_count(d), 0);
    assert_int_equal(dir_coexistence(d), 0);
    dir_snapshot_unref(d);
    /* reads do not count */
    char *dump = store_dump(fx->ds, -1, NULL);
    free(dump);
    assert_int_equal(dirstore_get_coexistence(fx->ds), 0);
    assert_int_equal(dirstore_generation(fx->ds), 0);
}

/* a series of writes, good and bad: the counter only ever moves up, by one per success */
enum gen_op {
    OP_IMPORT,
    OP_ENABLE,
    OP_ENABLE_ALL,
    OP_REMOVE,
    OP_DOMAIN_ADD,
    OP_DOMAIN_REMOVE,
    OP_EXCEPTION_ADD,
    OP_EXCEPTION_REMOVE,
    OP_COEXISTENCE,
};

struct gen_step {
    const char *name;
    enum gen_op op;
    const char *a, *b; /* CSV text, address, domains, exception value */
    int want_ok;
};

static const struct gen_step gen_steps[] = {
    {"good import", OP_IMPORT, HDR "a@s.example,a@t.example\n", NULL, 1},
    {"bad import", OP_IMPORT, HDR "bad\n", NULL, 0},
    {"conflicting import", OP_IMPORT, HDR "b@s.example,a@t.example\n", NULL, 0},
    {"header-only import", OP_IMPORT, HDR, NULL, 1},
    {"enable a pair", OP_ENABLE, "a@s.example", NULL, 1},
    {"enable an unknown address", OP_ENABLE, "zz@s.example", NULL, 0},
    {"disable all", OP_ENABLE_ALL, NULL, NULL, 1},
    {"add a domain pair", OP_DOMAIN_ADD, "t.example", "s.example", 1},
    {"add it again", OP_DOMAIN_ADD, "t.example", "s.example", 0},
    {"add a bad domain", OP_DOMAIN_ADD, "x y", "z.example", 0},
    {"remove an unknown domain pair", OP_DOMAIN_REMOVE, "x.example", "y.example", 0},
    {"add an exception", OP_EXCEPTION_ADD, "x.example", NULL, 1},
    {"add a bad exception", OP_EXCEPTION_ADD, "bad value", NULL, 0},
    {"remove the exception", OP_EXCEPTION_REMOVE, "x.example", NULL, 1},
    {"remove it again", OP_EXCEPTION_REMOVE, "x.example", NULL, 0},
    {"coexistence on", OP_COEXISTENCE, "on", NULL, 1},
    {"remove an unknown pair", OP_REMOVE, "zz@s.example", NULL, 0},
    {"remove the pair", OP_REMOVE, "a@s.example", NULL, 1},
    {"remove the domain pair", OP_DOMAIN_REMOVE, "t.example", "s.example", 1},
};

static long gen_run(struct fx *fx, const struct gen_step *tc, FILE *errs)
{
    struct dirstore_import_stats st;
    const char *addrs[] = {tc->a};
    switch (tc->op) {
    case OP_IMPORT:
        return dirstore_import_csv(fx->ds, fx_write(fx, CSV_NAME, tc->a), errs, &st);
    case OP_ENABLE:
        return dirstore_set_enabled(fx->ds, addrs, NULL, 1, 1, errs);
    case OP_ENABLE_ALL:
        return dirstore_set_enabled_all(fx->ds, 0, errs);
    case OP_REMOVE:
        return dirstore_remove_pairs(fx->ds, addrs, 1, errs);
    case OP_DOMAIN_ADD:
        return dirstore_domain_add(fx->ds, tc->a, tc->b, errs);
    case OP_DOMAIN_REMOVE:
        return dirstore_domain_remove(fx->ds, tc->a, tc->b, errs);
    case OP_EXCEPTION_ADD:
        return dirstore_exception_add(fx->ds, tc->a, errs);
    case OP_EXCEPTION_REMOVE:
        return dirstore_exception_remove(fx->ds, tc->a, errs);
    case OP_COEXISTENCE:
        return dirstore_set_coexistence(fx->ds, strcmp(tc->a, "on") == 0, errs);
    }
    return -2;
}

static void test_generation_sequence(void **state)
{
    struct fx *fx = *state;
    long long last = dirstore_generation(fx->ds), successes = 0;
    int failed = 0;
    for (size_t c = 0; c < ARRAY_LEN(gen_steps); c++) {
        const struct gen_step *tc = &gen_steps[c];
        FILE *errs = cap_begin(fx);
        long rc = gen_run(fx, tc, errs);
        char *got = cap_end(fx);
        long long now = dirstore_generation(fx->ds);
        if ((rc >= 0) != tc->want_ok || now != last + tc->want_ok) {
            print_error("%s: rc %ld, generation %lld -> %lld (%s)\n%s", tc->name, rc, last, now,
                        tc->want_ok ? "want +1" : "want unchanged", got);
            failed++;
        }
        free(got);
        successes += tc->want_ok;
        last = now;
    }
    assert_int_equal(failed, 0);
    assert_int_equal(last, successes);
}

/* dirstore_load shows every kind of entry, also after the store is reopened */
static void check_loaded(struct dirstore *ds, long long want_generation)
{
    char err[256] = "";
    struct dir_pair_view v;
    const char *other;
    size_t other_len;
    struct dir_snapshot *d = dirstore_load(ds, err, sizeof(err));
    if (d == NULL)
        print_error("dirstore_load: %s\n", err);
    assert_non_null(d);
    assert_int_equal(dir_generation(d), want_generation);
    assert_int_equal(dir_coexistence(d), 1);
    assert_int_equal(dir_pair_count(d), 3);
    assert_int_equal(dir_find_pair(d, DIR_SOURCE, "ALICE@S.EXAMPLE", 15, &v), 1);
    assert_int_equal(v.enabled, 1);
    assert_int_equal(v.target_len, 15);
    assert_memory_equal(v.target, "alice@t.example", 15);
    assert_int_equal(dir_find_pair(d, DIR_TARGET, "bob@t.example", 13, &v), 1);
    assert_int_equal(v.enabled, 0);
    assert_memory_equal(v.source, "bob@s.example", 13);
    assert_int_equal(dir_find_pair(d, DIR_TARGET, "Carol@t.example", 15, &v), 1);
    assert_int_equal(v.enabled, 1);
    assert_int_equal(dir_find_pair(d, DIR_SOURCE, "alice@t.example", 15, &v), 0);
    assert_int_equal(dir_find_domain(d, DIR_SOURCE, "s.example", 9, &other, &other_len), 1);
    assert_int_equal(other_len, 9);
    assert_memory_equal(other, "t.example", 9);
    assert_int_equal(dir_find_domain(d, DIR_TARGET, "t.example", 9, &other, &other_len), 1);
    assert_memory_equal(other, "s.example", 9);
    assert_int_equal(dir_is_exception(d, "ceo@t.example", 13), 1);
    assert_int_equal(dir_is_exception(d, "anyone@partner.example", 22), 1);
    assert_int_equal(dir_is_exception(d, "anyone@t.example", 16), 0);
    dir_snapshot_unref(d);
}

static void test_load_reflects_all(void **state)
{
    struct fx *fx = *state;
    char err[256] = "";
    seed(fx, THREE_PAIRS);
    struct dir_snapshot *old = dirstore_load(fx->ds, err, sizeof(err));
    assert_non_null(old);

    const char *alice[] = {"alice@s.example"};
    WRITE(fx, 1, "", dirstore_set_enabled(fx->ds, alice, NULL, 1, 1, errs));
    WRITE(fx, 0, "", dirstore_domain_add(fx->ds, "t.example", "s.example", errs));
    WRITE(fx, 0, "", dirstore_exception_add(fx->ds, "ceo@t.example", errs));
    WRITE(fx, 0, "", dirstore_exception_add(fx->ds, "partner.example", errs));
    WRITE(fx, 0, "", dirstore_set_coexistence(fx->ds, 1, errs));
    long long gen = dirstore_generation(fx->ds);
    assert_int_equal(gen, 6);
    check_loaded(fx->ds, gen);

    /* a snapshot taken earlier is not touched by later writes */
    struct dir_pair_view v;
    assert_int_equal(dir_generation(old), 1);
    assert_int_equal(dir_coexistence(old), 0);
    assert_int_equal(dir_find_pair(old, DIR_SOURCE, "alice@s.example", 15, &v), 1);
    assert_int_equal(v.enabled, 0);
    assert_int_equal(dir_is_exception(old, "ceo@t.example", 13), 0);
    dir_snapshot_unref(old);

    /* it is all in the file */
    dirstore_close(fx->ds);
    fx->ds = NULL;
    fx_open(fx);
    assert_int_equal(dirstore_generation(fx->ds), gen);
    check_loaded(fx->ds, gen);
}

/* a second handle on the same file (the daemon's) sees every write at once */
static void test_second_handle(void **state)
{
    struct fx *fx = *state;
    char err[512] = "";
    struct dirstore *reader = dirstore_open(fx->db, err, sizeof(err));
    assert_non_null(reader);
    assert_int_equal(dirstore_generation(reader), 0);
    seed(fx, THREE_PAIRS);
    assert_int_equal(dirstore_generation(reader), 1);
    WRITE(fx, 0, "", dirstore_set_coexistence(fx->ds, 1, errs));
    assert_int_equal(dirstore_generation(reader), 2);
    assert_int_equal(dirstore_get_coexistence(reader), 1);
    struct dir_snapshot *d = dirstore_load(reader, err, sizeof(err));
    assert_non_null(d);
    assert_int_equal(dir_pair_count(d), 3);
    assert_int_equal(dir_generation(d), 2);
    dir_snapshot_unref(d);
    /* and the other way round */
    const char *bob[] = {"bob@s.example"};
    FILE *errs = cap_begin(fx);
    assert_int_equal(dirstore_set_enabled(reader, bob, NULL, 1, 1, errs), 1);
    free(cap_end(fx));
    assert_int_equal(dirstore_generation(fx->ds), 3);
    dirstore_close(reader);
}

static void test_list_filters(void **state)
{
    struct fx *fx = *state;
    seed(fx, THREE_PAIRS);
    char *dump = store_dump(fx->ds, 1, NULL);
    assert_string_equal(dump, "carol@s.example,carol@t.example,1\n");
    free(dump);
    dump = store_dump(fx->ds, 0, NULL);
    assert_string_equal(dump, "alice@s.example,alice@t.example,0\nbob@s.example,bob@t.example,0\n");
    free(dump);
    dump = store_dump(fx->ds, -1, "ALI");
    assert_string_equal(dump, "alice@s.example,alice@t.example,0\n");
    free(dump);
    dump = store_dump(fx->ds, 0, "t.example");
    assert_string_equal(dump, "alice@s.example,alice@t.example,0\nbob@s.example,bob@t.example,0\n");
    free(dump);
    dump = store_dump(fx->ds, -1, "nothing");
    assert_string_equal(dump, "");
    free(dump);
}

/* ---------------------------------------------------------------- open */

struct open_case {
    const char *name;
    const char *file;     /* a regular file to create in the test directory first, or NULL */
    const char *contents; /* its contents */
    const char *path;     /* relative to the test directory */
    const char *want;     /* the message after "<path>: " */
};

static const struct open_case open_cases[] = {
    {"parent is a regular file", "plain", "x", "plain/dir.db",
     "cannot open directory: unable to open database file"},
    {"parent does not exist", NULL, NULL, "no/such/dir.db",
     "cannot open directory: unable to open database file"},
    {"path is a directory", NULL, NULL, ".", "cannot open directory: unable to open database file"},
    {"file is not a database", "junk.db", "this is not an SQLite database, not at all\n", "junk.db",
     "cannot initialise directory: file is not a database"},
};

static void test_open_fails(void **state)
{
    struct fx *fx = *state;
    int failed = 0;
    for (size_t c = 0; c < ARRAY_LEN(open_cases); c++) {
        const struct open_case *tc = &open_cases[c];
        char path[256], want[512], err[512];
        if (tc->file)
            fx_write(fx, tc->file, tc->contents);
        snprintf(path, sizeof(path), "%s/%s", fx->dir, tc->path);
        snprintf(want, sizeof(want), "%s: %s", path, tc->want);
        memset(err, 0, sizeof(err));
        struct dirstore *ds = dirstore_open(path, err, sizeof(err));
        if (ds != NULL || strcmp(err, want) != 0) {
            print_error("%s: %s, message \"%s\", want \"%s\"\n", tc->name, ds ? "opened" : "failed",
                        err, want);
            failed++;
        }
        dirstore_close(ds);
    }
    assert_int_equal(failed, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_import_steps),
        T(test_import_errors),
        T(test_import_conflicts),
        T(test_import_errors_quiet),
        T(test_import_missing_file),
        T(test_set_enabled),
        T(test_set_enabled_empty_store),
        T(test_remove_pairs),
        T(test_domains),
        T(test_exceptions),
        T(test_coexistence),
        T(test_generation_fresh),
        T(test_generation_sequence),
        T(test_load_reflects_all),
        T(test_second_handle),
        T(test_list_filters),
        T(test_open_fails),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
