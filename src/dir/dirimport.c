/*
 * dirimport - CSV import of mailbox pairs into the store, all or nothing.
 *
 * File format (docs/csv-format.md): a header naming the columns source,
 * target and optionally enabled (any order, any case, other columns ignored),
 * then one pair per record. The whole file is checked before the store is
 * touched: every bad line is reported as "file:line: reason". Then, in one
 * transaction, each pair replaces the pair with the same source (a
 * re-import updates), and conflicts with pairs already in the store are
 * reported the same way; any error rolls the transaction back.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "csv.h"
#include "dirstore_int.h"

/* a CSV file larger than this is refused (about 10 million pairs) */
#define LIMIT_IMPORT_FILE ((size_t)1 << 30)

struct import_row {
    unsigned long line;
    char *source; /* canonical addr_key form; owned */
    char *target;
    int enabled; /* -1: not given (keep the stored value, 0 for a new pair) */
};

struct import_seen {
    uint32_t *slots; /* (row index << 1 | side) + 1 */
    uint32_t mask;
};

struct import {
    const char *path;
    FILE *errs;
    struct import_row *rows;
    size_t count, cap;
    unsigned long errors;
};

/* import_error - one "path:line: reason" line */
static void import_error(struct import *im, unsigned long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void import_error(struct import *im, unsigned long line, const char *fmt, ...)
{
    va_list ap;
    im->errors++;
    if (im->errs == NULL)
        return;
    fprintf(im->errs, "%s:%lu: ", im->path, line);
    va_start(ap, fmt);
    vfprintf(im->errs, fmt, ap);
    va_end(ap);
    fputc('\n', im->errs);
}

/* import_read_file - whole file into memory; NULL with errno */
static char *import_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct buf b;
    char chunk[65536];
    size_t n;

    if (fp == NULL)
        return NULL;
    buf_init(&b, LIMIT_IMPORT_FILE);
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (buf_append(&b, chunk, n) < 0) {
            errno = EFBIG;
            goto fail;
        }
    if (ferror(fp))
        goto fail;
    fclose(fp);
    *len = b.len;
    return b.data ? b.data : xstrdup("");
fail:
    fclose(fp);
    buf_cleanup(&b);
    return NULL;
}

/* import_address - validate and canonicalise; NULL (and an error line) when bad */
static char *import_address(struct import *im, unsigned long line, const char *what,
                            const char *value)
{
    struct addr_mailbox m;
    char key[LIMIT_ADDRESS];
    if (*value == '\0') {
        import_error(im, line, "empty %s address", what);
        return NULL;
    }
    if (addr_parse_spec(value, strlen(value), &m) < 0 ||
        addr_key(value, &m, key, sizeof(key)) < 0) {
        import_error(im, line, "bad %s address '%s'", what, value);
        return NULL;
    }
    return xstrdup(key);
}

/* import_header - column positions from the first record */
static int import_header(struct import *im, const struct csv_record *rec, int col[3])
{
    static const char *const names[3] = {"source", "target", "enabled"};
    col[0] = col[1] = col[2] = -1;
    for (size_t i = 0; i < rec->count; i++)
        for (int k = 0; k < 3; k++)
            if (strcasecmp(rec->field[i], names[k]) == 0) {
                if (col[k] >= 0) {
                    import_error(im, rec->line, "column '%s' appears twice", names[k]);
                    return -1;
                }
                col[k] = (int)i;
            }
    if (col[0] < 0 || col[1] < 0) {
        import_error(im, rec->line,
                     "the first line must be a header naming the columns source,target[,enabled]");
        return -1;
    }
    return 0;
}

/* import_check_seen - in-file duplicates and source/target clashes */
static void import_check_seen(struct import *im, struct import_seen *seen, size_t row, int side)
{
    const struct import_row *r = &im->rows[row];
    const char *addr = side ? r->target : r->source;
    size_t len = strlen(addr);
    uint32_t slot = (uint32_t)util_hash_lower(addr, len) & seen->mask;

    for (; seen->slots[slot]; slot = (slot + 1) & seen->mask) {
        uint32_t v = seen->slots[slot] - 1;
        const struct import_row *o = &im->rows[v >> 1];
        int oside = (int)(v & 1);
        const char *oaddr = oside ? o->target : o->source;
        if (strlen(oaddr) != len || !util_strncaseeq(oaddr, addr, len))
            continue;
        if (oside == side)
            import_error(im, r->line, "duplicate %s %s (first on line %lu)",
                         side ? "target" : "source", addr, o->line);
        else
            import_error(im, r->line, "%s is the %s here but the %s on line %lu", addr,
                         side ? "target" : "source", oside ? "target" : "source", o->line);
        return;
    }
    seen->slots[slot] = (uint32_t)((row << 1 | (size_t)side) + 1);
}

/* import_parse - read and check the whole file */
static int import_parse(struct import *im, const char *data, size_t len)
{
    struct csv_reader rd;
    struct csv_record *rec = xmalloc(sizeof(*rec));
    char err[256];
    int col[3], rc, have_header = 0;

    csv_init(&rd, data, len);
    while ((rc = csv_next(&rd, rec, err, sizeof(err))) != 0) {
        if (rc < 0) {
            import_error(im, rec->line, "%s", err);
            if (!have_header)
                break;
            continue;
        }
        int blank = 1;
        for (size_t i = 0; i < rec->count; i++)
            blank &= rec->field[i][0] == '\0';
        if (blank)
            continue;
        if (!have_header) {
            if (import_header(im, rec, col) < 0)
                break;
            have_header = 1;
            continue;
        }
        size_t need = (size_t)(col[0] > col[1] ? col[0] : col[1]);
        if (col[2] > (int)need)
            need = (size_t)col[2];
        if (rec->count <= need) {
            import_error(im, rec->line, "expected at least %zu fields, found %zu", need + 1,
                         rec->count);
            continue;
        }
        struct import_row row = {rec->line, NULL, NULL, -1};
        row.source = import_address(im, rec->line, "source", rec->field[col[0]]);
        row.target = import_address(im, rec->line, "target", rec->field[col[1]]);
        if (col[2] >= 0) {
            const char *v = rec->field[col[2]];
            row.enabled = *v ? util_parse_bool(v, strlen(v)) : 0;
            if (row.enabled < 0)
                import_error(im, rec->line, "bad enabled value '%s' (use true or false)", v);
        }
        int same = row.source && row.target && strcasecmp(row.source, row.target) == 0;
        if (same)
            import_error(im, rec->line, "source and target are the same address %s", row.source);
        if (row.source == NULL || row.target == NULL || same) {
            free(row.source);
            free(row.target);
            continue;
        }
        if (im->count == im->cap) {
            im->cap = im->cap ? im->cap * 2 : 1024;
            im->rows = xrealloc(im->rows, im->cap * sizeof(*im->rows));
        }
        im->rows[im->count++] = row;
    }
    free(rec);
    if (!have_header && im->errors == 0)
        import_error(im, 1, "empty file: expected a header line source,target[,enabled]");

    struct import_seen seen;
    size_t size = 16;
    while (size < im->count * 4)
        size *= 2;
    seen.slots = xcalloc(size, sizeof(*seen.slots));
    seen.mask = (uint32_t)(size - 1);
    for (size_t i = 0; i < im->count; i++) {
        import_check_seen(im, &seen, i, 0);
        import_check_seen(im, &seen, i, 1);
    }
    free(seen.slots);
    return im->errors ? -1 : 0;
}

/* import_store - apply the checked rows in one transaction */
static int import_store(struct dirstore *ds, struct import *im, struct dirstore_import_stats *st)
{
    sqlite3_stmt *q;
    sqlite3_int64 now = (sqlite3_int64)time(NULL);

    if (dirstore_begin(ds, im->errs) < 0)
        return -1;
    /* pass 1: remember what each source had, then drop the old pair */
    for (size_t i = 0; i < im->count; i++) {
        struct import_row *r = &im->rows[i];
        if ((q = dirstore_stmt(ds, SQL_FIND_BY_SOURCE, im->errs)) == NULL)
            goto fail;
        sqlite3_bind_text(q, 1, r->source, -1, SQLITE_STATIC);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            int old_enabled = sqlite3_column_int(q, 1);
            int same_target = strcmp((const char *)sqlite3_column_text(q, 0), r->target) == 0;
            if (r->enabled < 0)
                r->enabled = old_enabled;
            if (!same_target || r->enabled != old_enabled)
                st->updated++;
        } else if (rc == SQLITE_DONE) {
            if (r->enabled < 0)
                r->enabled = 0;
            st->added++;
        } else {
            dirstore_error(ds, im->errs, "lookup failed");
            goto fail;
        }
        if ((q = dirstore_stmt(ds, SQL_DELETE_BY_SOURCE, im->errs)) == NULL)
            goto fail;
        sqlite3_bind_text(q, 1, r->source, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) {
            dirstore_error(ds, im->errs, "delete failed");
            goto fail;
        }
    }
    /* pass 2: insert; a target owned by a pair outside the file is a conflict */
    for (size_t i = 0; i < im->count; i++) {
        struct import_row *r = &im->rows[i];
        if ((q = dirstore_stmt(ds, SQL_INSERT_PAIR, im->errs)) == NULL)
            goto fail;
        sqlite3_bind_text(q, 1, r->source, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, r->target, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 3, r->enabled);
        sqlite3_bind_int64(q, 4, now);
        int rc = sqlite3_step(q);
        if (rc == SQLITE_CONSTRAINT) {
            if ((q = dirstore_stmt(ds, SQL_SOURCE_OF_TARGET, im->errs)) == NULL)
                goto fail;
            sqlite3_bind_text(q, 1, r->target, -1, SQLITE_STATIC);
            if (sqlite3_step(q) == SQLITE_ROW)
                import_error(im, r->line, "target %s already belongs to source %s in the directory",
                             r->target, sqlite3_column_text(q, 0));
            else
                import_error(im, r->line, "pair %s,%s conflicts with the directory", r->source,
                             r->target);
        } else if (rc != SQLITE_DONE) {
            dirstore_error(ds, im->errs, "insert failed");
            goto fail;
        }
    }
    /* pass 3: no address may be a source in one pair and a target in another */
    for (size_t i = 0; i < im->count; i++) {
        struct import_row *r = &im->rows[i];
        if ((q = dirstore_stmt(ds, SQL_SOURCE_OF_TARGET, im->errs)) == NULL)
            goto fail;
        sqlite3_bind_text(q, 1, r->source, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            import_error(im, r->line, "source %s is the target of pair %s in the directory",
                         r->source, sqlite3_column_text(q, 0));
        if ((q = dirstore_stmt(ds, SQL_FIND_BY_SOURCE, im->errs)) == NULL)
            goto fail;
        sqlite3_bind_text(q, 1, r->target, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW)
            import_error(im, r->line, "target %s is the source of another pair in the directory",
                         r->target);
        sqlite3_reset(q);
    }
    if (im->errors)
        goto fail;
    return dirstore_commit(ds, im->errs);
fail:
    dirstore_rollback(ds);
    return -1;
}

/* dirstore_import_csv - parse, check, store */
int dirstore_import_csv(struct dirstore *ds, const char *path, FILE *errs,
                        struct dirstore_import_stats *stats)
{
    struct import im = {path, errs, NULL, 0, 0, 0};
    struct dirstore_import_stats st = {0};
    size_t len;
    int rc = -1;

    char *data = import_read_file(path, &len);
    if (data == NULL) {
        if (errs)
            fprintf(errs, "%s: cannot read: %s\n", path, strerror(errno));
        st.errors = 1;
        goto done;
    }
    if (import_parse(&im, data, len) == 0) {
        st.rows = im.count;
        rc = import_store(ds, &im, &st);
    }
    st.errors = im.errors;
    if (rc < 0) {
        st.added = st.updated = 0;
        if (errs && im.errors)
            fprintf(errs, "%s: %lu error(s): nothing imported\n", path, im.errors);
    }
done:
    free(data);
    for (size_t i = 0; i < im.count; i++) {
        free(im.rows[i].source);
        free(im.rows[i].target);
    }
    free(im.rows);
    if (stats)
        *stats = st;
    return rc;
}
