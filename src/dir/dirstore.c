/*
 * dirstore - SQLite store of the directory: schema, snapshot loading, and the
 * small administrative writes (enable/disable, domains, exceptions, switch).
 * CSV import lives in dirimport.c.
 *
 * Every write runs in a BEGIN IMMEDIATE transaction that also bumps the
 * "generation" setting, so a reader can tell with one query whether anything
 * changed since its snapshot.
 */
#include "dirstore_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "addr.h"

#define DIRSTORE_BUSY_MS 5000

static const char *const dirstore_schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS mailbox ("
    " source TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    " target TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    " enabled INTEGER NOT NULL DEFAULT 0,"
    " updated INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS domain_pair ("
    " target TEXT NOT NULL COLLATE NOCASE UNIQUE,"
    " source TEXT NOT NULL COLLATE NOCASE UNIQUE);"
    "CREATE TABLE IF NOT EXISTS exception (value TEXT NOT NULL COLLATE NOCASE PRIMARY KEY);"
    "CREATE TABLE IF NOT EXISTS setting (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "INSERT OR IGNORE INTO setting VALUES ('schema', '1'), ('coexistence', 'off'),"
    " ('generation', '0');";

static const char *const dirstore_sql_text[SQL__COUNT] = {
    [SQL_BEGIN] = "BEGIN IMMEDIATE",
    [SQL_COMMIT] = "COMMIT",
    [SQL_ROLLBACK] = "ROLLBACK",
    [SQL_BUMP_GENERATION] =
        "UPDATE setting SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'",
    [SQL_GET_SETTING] = "SELECT value FROM setting WHERE key = ?1",
    [SQL_SET_SETTING] = "INSERT OR REPLACE INTO setting (key, value) VALUES (?1, ?2)",
    [SQL_LOAD_PAIRS] = "SELECT source, target, enabled FROM mailbox",
    [SQL_LOAD_DOMAINS] = "SELECT target, source FROM domain_pair",
    [SQL_LOAD_EXCEPTIONS] = "SELECT value FROM exception",
    [SQL_FIND_BY_SOURCE] = "SELECT target, enabled FROM mailbox WHERE source = ?1",
    [SQL_FIND_BY_ADDRESS] = "SELECT source FROM mailbox WHERE source = ?1 OR target = ?1",
    [SQL_DELETE_BY_SOURCE] = "DELETE FROM mailbox WHERE source = ?1",
    [SQL_INSERT_PAIR] =
        "INSERT INTO mailbox (source, target, enabled, updated) VALUES (?1, ?2, ?3, ?4)",
    [SQL_SOURCE_OF_TARGET] = "SELECT source FROM mailbox WHERE target = ?1",
    [SQL_SET_ENABLED_BY_ADDRESS] =
        "UPDATE mailbox SET enabled = ?2, updated = ?3 "
        "WHERE (source = ?1 OR target = ?1) AND enabled <> ?2",
    [SQL_SET_ENABLED_ALL] = "UPDATE mailbox SET enabled = ?1, updated = ?2 WHERE enabled <> ?1",
    [SQL_DELETE_BY_ADDRESS] = "DELETE FROM mailbox WHERE source = ?1 OR target = ?1",
    [SQL_LIST] = "SELECT source, target, enabled, updated FROM mailbox "
                 "WHERE (?1 < 0 OR enabled = ?1) AND (?2 IS NULL OR "
                 "instr(lower(source), lower(?2)) > 0 OR instr(lower(target), lower(?2)) > 0) "
                 "ORDER BY source",
    [SQL_DOMAIN_CONFLICT] =
        "SELECT target, source FROM domain_pair WHERE target IN (?1, ?2) OR source IN (?1, ?2)",
    [SQL_DOMAIN_INSERT] = "INSERT INTO domain_pair (target, source) VALUES (?1, ?2)",
    [SQL_DOMAIN_DELETE] = "DELETE FROM domain_pair WHERE target = ?1 AND source = ?2",
    [SQL_EXCEPTION_INSERT] = "INSERT OR IGNORE INTO exception (value) VALUES (?1)",
    [SQL_EXCEPTION_DELETE] = "DELETE FROM exception WHERE value = ?1",
    [SQL_COUNTS] = "SELECT count(*), coalesce(sum(enabled), 0) FROM mailbox",
};

/* dirstore_say - a message line on errs; a NULL errs discards it */
static void dirstore_say(FILE *errs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dirstore_say(FILE *errs, const char *fmt, ...)
{
    va_list ap;
    if (errs == NULL)
        return;
    va_start(ap, fmt);
    vfprintf(errs, fmt, ap);
    va_end(ap);
}

/* dirstore_error - one line naming the store and the SQLite reason */
void dirstore_error(struct dirstore *ds, FILE *errs, const char *what)
{
    if (errs)
        dirstore_say(errs, "%s: %s: %s\n", ds->path, what, sqlite3_errmsg(ds->db));
}

/* dirstore_open - open, configure and create the schema */
struct dirstore *dirstore_open(const char *path, char *err, size_t errlen)
{
    struct dirstore *ds = xcalloc(1, sizeof(*ds));
    char *errmsg = NULL;

    ds->path = xstrdup(path);
    if (sqlite3_open_v2(path, &ds->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot open directory: %s", path,
                 ds->db ? sqlite3_errmsg(ds->db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(ds->db, DIRSTORE_BUSY_MS);
    if (sqlite3_exec(ds->db, dirstore_schema, NULL, NULL, &errmsg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot initialise directory: %s", path,
                 errmsg ? errmsg : sqlite3_errmsg(ds->db));
        sqlite3_free(errmsg);
        goto fail;
    }
    return ds;
fail:
    dirstore_close(ds);
    return NULL;
}

/* dirstore_close - finalize statements and close */
void dirstore_close(struct dirstore *ds)
{
    if (ds == NULL)
        return;
    for (int i = 0; i < SQL__COUNT; i++)
        sqlite3_finalize(ds->stmt[i]);
    sqlite3_close(ds->db);
    free(ds->path);
    free(ds);
}

/* dirstore_stmt - prepare once, then reset for every use */
sqlite3_stmt *dirstore_stmt(struct dirstore *ds, enum dirstore_sql which, FILE *errs)
{
    sqlite3_stmt *st = ds->stmt[which];
    if (st == NULL) {
        if (sqlite3_prepare_v3(ds->db, dirstore_sql_text[which], -1, SQLITE_PREPARE_PERSISTENT,
                               &st, NULL) != SQLITE_OK) {
            dirstore_error(ds, errs, "cannot prepare statement");
            return NULL;
        }
        ds->stmt[which] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* dirstore_exec - step a statement to completion */
int dirstore_exec(struct dirstore *ds, enum dirstore_sql which, FILE *errs)
{
    sqlite3_stmt *st = dirstore_stmt(ds, which, errs);
    if (st == NULL)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        dirstore_error(ds, errs, "write failed");
        return -1;
    }
    return 0;
}

int dirstore_begin(struct dirstore *ds, FILE *errs)
{
    return dirstore_exec(ds, SQL_BEGIN, errs);
}

/* dirstore_commit - bump the generation and commit */
int dirstore_commit(struct dirstore *ds, FILE *errs)
{
    if (dirstore_exec(ds, SQL_BUMP_GENERATION, errs) < 0 ||
        dirstore_exec(ds, SQL_COMMIT, errs) < 0) {
        dirstore_rollback(ds);
        return -1;
    }
    return 0;
}

void dirstore_rollback(struct dirstore *ds)
{
    if (!sqlite3_get_autocommit(ds->db))
        dirstore_exec(ds, SQL_ROLLBACK, NULL);
}

/* dirstore_get_setting - copy a setting's value; 1 found, 0 not, -1 error */
static int dirstore_get_setting(struct dirstore *ds, const char *key, char *out, size_t outsize)
{
    sqlite3_stmt *st = dirstore_stmt(ds, SQL_GET_SETTING, NULL);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(out, outsize, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        return 1;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* dirstore_load - read everything into a builder in one read transaction */
struct dir_snapshot *dirstore_load(struct dirstore *ds, char *err, size_t errlen)
{
    struct dir_builder *b = dir_builder_new();
    sqlite3_stmt *st;
    char value[64];
    int rc;

    if (sqlite3_exec(ds->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        goto db_fail;
    /* a missing setting row (a hand-edited store) reads as off / 0 */
    value[0] = '\0';
    if (dirstore_get_setting(ds, "coexistence", value, sizeof(value)) < 0)
        goto db_fail;
    dir_builder_set_coexistence(b, strcmp(value, "on") == 0);
    value[0] = '\0';
    if (dirstore_get_setting(ds, "generation", value, sizeof(value)) < 0)
        goto db_fail;
    dir_builder_set_generation(b, strtoll(value, NULL, 10));

    if ((st = dirstore_stmt(ds, SQL_LOAD_PAIRS, NULL)) == NULL)
        goto db_fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *src = (const char *)sqlite3_column_text(st, 0);
        int src_len = sqlite3_column_bytes(st, 0);
        const char *tgt = (const char *)sqlite3_column_text(st, 1);
        int tgt_len = sqlite3_column_bytes(st, 1);
        if (src == NULL || tgt == NULL ||
            dir_builder_add_pair(b, src, (size_t)src_len, tgt, (size_t)tgt_len,
                                 sqlite3_column_int(st, 2)) < 0) {
            snprintf(err, errlen, "%s: bad mailbox pair in the store: %s", ds->path,
                     src ? src : "(null)");
            goto fail;
        }
    }
    if (rc != SQLITE_DONE)
        goto db_fail;
    if ((st = dirstore_stmt(ds, SQL_LOAD_DOMAINS, NULL)) == NULL)
        goto db_fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (dir_builder_add_domain(b, (const char *)sqlite3_column_text(st, 0),
                                   (const char *)sqlite3_column_text(st, 1)) < 0) {
            snprintf(err, errlen, "%s: bad domain pair in the store", ds->path);
            goto fail;
        }
    if (rc != SQLITE_DONE)
        goto db_fail;
    if ((st = dirstore_stmt(ds, SQL_LOAD_EXCEPTIONS, NULL)) == NULL)
        goto db_fail;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (dir_builder_add_exception(b, (const char *)sqlite3_column_text(st, 0)) < 0) {
            snprintf(err, errlen, "%s: bad exception in the store", ds->path);
            goto fail;
        }
    if (rc != SQLITE_DONE)
        goto db_fail;
    sqlite3_exec(ds->db, "COMMIT", NULL, NULL, NULL);
    return dir_builder_finish(b);
db_fail:
    snprintf(err, errlen, "%s: cannot read directory: %s", ds->path, sqlite3_errmsg(ds->db));
fail:
    if (!sqlite3_get_autocommit(ds->db))
        sqlite3_exec(ds->db, "ROLLBACK", NULL, NULL, NULL);
    dir_builder_free(b);
    return NULL;
}

/* dirstore_generation - the change counter */
long long dirstore_generation(struct dirstore *ds)
{
    char value[64];
    if (dirstore_get_setting(ds, "generation", value, sizeof(value)) != 1)
        return -1;
    return strtoll(value, NULL, 10);
}

/* dirstore_find_address - 1 when some pair names addr as source or target */
static int dirstore_find_address(struct dirstore *ds, const char *addr, FILE *errs)
{
    sqlite3_stmt *st = dirstore_stmt(ds, SQL_FIND_BY_ADDRESS, errs);
    if (st == NULL)
        return -1;
    sqlite3_bind_text(st, 1, addr, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        dirstore_error(ds, errs, "lookup failed");
        return -1;
    }
    return rc == SQLITE_ROW;
}

/* dirstore_per_address - run stmt for each address, all or nothing */
static long dirstore_per_address(struct dirstore *ds, enum dirstore_sql which,
                                 const char *const *addrs, const char *const *where, size_t count,
                                 int enabled, FILE *errs)
{
    long changed = 0;
    int missing = 0;

    if (dirstore_begin(ds, errs) < 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        int found = dirstore_find_address(ds, addrs[i], errs);
        if (found < 0)
            goto fail;
        if (!found) {
            if (errs)
                dirstore_say(errs, "%s%sno mailbox pair has the address %s\n", where ? where[i] : "",
                        where ? ": " : "", addrs[i]);
            missing++;
            continue;
        }
        sqlite3_stmt *st = dirstore_stmt(ds, which, errs);
        if (st == NULL)
            goto fail;
        sqlite3_bind_text(st, 1, addrs[i], -1, SQLITE_STATIC);
        if (which == SQL_SET_ENABLED_BY_ADDRESS) {
            sqlite3_bind_int(st, 2, enabled);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        }
        if (sqlite3_step(st) != SQLITE_DONE) {
            dirstore_error(ds, errs, "update failed");
            goto fail;
        }
        changed += sqlite3_changes(ds->db);
    }
    if (missing) {
        if (errs)
            dirstore_say(errs, "%d address(es) not found: nothing changed\n", missing);
        goto fail;
    }
    if (dirstore_commit(ds, errs) < 0)
        return -1;
    return changed;
fail:
    dirstore_rollback(ds);
    return -1;
}

long dirstore_set_enabled(struct dirstore *ds, const char *const *addrs, const char *const *where,
                          size_t count, int enabled, FILE *errs)
{
    return dirstore_per_address(ds, SQL_SET_ENABLED_BY_ADDRESS, addrs, where, count, enabled != 0,
                                errs);
}

long dirstore_remove_pairs(struct dirstore *ds, const char *const *addrs, size_t count, FILE *errs)
{
    return dirstore_per_address(ds, SQL_DELETE_BY_ADDRESS, addrs, NULL, count, 0, errs);
}

/* dirstore_set_enabled_all - every pair at once */
long dirstore_set_enabled_all(struct dirstore *ds, int enabled, FILE *errs)
{
    if (dirstore_begin(ds, errs) < 0)
        return -1;
    sqlite3_stmt *st = dirstore_stmt(ds, SQL_SET_ENABLED_ALL, errs);
    if (st == NULL)
        goto fail;
    sqlite3_bind_int(st, 1, enabled != 0);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    if (sqlite3_step(st) != SQLITE_DONE) {
        dirstore_error(ds, errs, "update failed");
        goto fail;
    }
    long changed = sqlite3_changes(ds->db);
    if (dirstore_commit(ds, errs) < 0)
        return -1;
    return changed;
fail:
    dirstore_rollback(ds);
    return -1;
}

/* dirstore_list - filtered listing through a callback */
int dirstore_list(struct dirstore *ds, int enabled_filter, const char *match, dirstore_row_fn *fn,
                  void *arg, FILE *errs)
{
    sqlite3_stmt *st = dirstore_stmt(ds, SQL_LIST, errs);
    int rc;
    if (st == NULL)
        return -1;
    sqlite3_bind_int(st, 1, enabled_filter);
    if (match)
        sqlite3_bind_text(st, 2, match, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct dirstore_row row = {
            (const char *)sqlite3_column_text(st, 0),
            (const char *)sqlite3_column_text(st, 1),
            sqlite3_column_int(st, 2),
            sqlite3_column_int64(st, 3),
        };
        if (fn(&row, arg) < 0)
            break;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        dirstore_error(ds, errs, "list failed");
        return -1;
    }
    return 0;
}

/* dirstore_domain_ok - a domain as it may appear after "@" (no literal) */
static int dirstore_domain_ok(const char *domain)
{
    char probe[LIMIT_ADDRESS];
    struct addr_mailbox m;
    if (snprintf(probe, sizeof(probe), "x@%s", domain) >= (int)sizeof(probe))
        return 0;
    return addr_parse_spec(probe, strlen(probe), &m) == 0 && !(m.flags & ADDR_F_LITERAL);
}

/* dirstore_domain_add - refuse chains: a domain may appear in one pair only */
int dirstore_domain_add(struct dirstore *ds, const char *target_domain, const char *source_domain,
                        FILE *errs)
{
    sqlite3_stmt *st;
    if (!dirstore_domain_ok(target_domain) || !dirstore_domain_ok(source_domain)) {
        dirstore_say(errs, "bad domain: %s\n",
                dirstore_domain_ok(target_domain) ? source_domain : target_domain);
        return -1;
    }
    if (strcasecmp(target_domain, source_domain) == 0) {
        dirstore_say(errs, "a domain cannot be paired with itself: %s\n", target_domain);
        return -1;
    }
    if (dirstore_begin(ds, errs) < 0)
        return -1;
    if ((st = dirstore_stmt(ds, SQL_DOMAIN_CONFLICT, errs)) == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, target_domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source_domain, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        dirstore_say(errs, "domain already in the pair %s <-> %s (target <-> source)\n",
                sqlite3_column_text(st, 0), sqlite3_column_text(st, 1));
        goto fail;
    }
    if ((st = dirstore_stmt(ds, SQL_DOMAIN_INSERT, errs)) == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, target_domain, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, source_domain, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        dirstore_error(ds, errs, "cannot add domain pair");
        goto fail;
    }
    return dirstore_commit(ds, errs);
fail:
    dirstore_rollback(ds);
    return -1;
}

/* dirstore_change_one - one bound statement in a transaction; -1 when it changed nothing */
static int dirstore_change_one(struct dirstore *ds, enum dirstore_sql which, const char *a,
                               const char *b, FILE *errs, const char *none_msg)
{
    sqlite3_stmt *st;
    if (dirstore_begin(ds, errs) < 0)
        return -1;
    if ((st = dirstore_stmt(ds, which, errs)) == NULL)
        goto fail;
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    if (b)
        sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        dirstore_error(ds, errs, "write failed");
        goto fail;
    }
    if (none_msg && sqlite3_changes(ds->db) == 0) {
        dirstore_say(errs, "%s\n", none_msg);
        goto fail;
    }
    return dirstore_commit(ds, errs);
fail:
    dirstore_rollback(ds);
    return -1;
}

int dirstore_domain_remove(struct dirstore *ds, const char *target_domain,
                           const char *source_domain, FILE *errs)
{
    return dirstore_change_one(ds, SQL_DOMAIN_DELETE, target_domain, source_domain, errs,
                               "no such domain pair");
}

/* dirstore_exception_add - an address (local@domain) or a bare domain */
int dirstore_exception_add(struct dirstore *ds, const char *value, FILE *errs)
{
    struct addr_mailbox m;
    if (strchr(value, '@') ? addr_parse_spec(value, strlen(value), &m) < 0
                           : !dirstore_domain_ok(value)) {
        dirstore_say(errs, "bad address or domain: %s\n", value);
        return -1;
    }
    return dirstore_change_one(ds, SQL_EXCEPTION_INSERT, value, NULL, errs, NULL);
}

int dirstore_exception_remove(struct dirstore *ds, const char *value, FILE *errs)
{
    return dirstore_change_one(ds, SQL_EXCEPTION_DELETE, value, NULL, errs, "no such exception");
}

int dirstore_set_coexistence(struct dirstore *ds, int on, FILE *errs)
{
    return dirstore_change_one(ds, SQL_SET_SETTING, "coexistence", on ? "on" : "off", errs,
                               NULL);
}

int dirstore_get_coexistence(struct dirstore *ds)
{
    char value[16];
    if (dirstore_get_setting(ds, "coexistence", value, sizeof(value)) < 0)
        return -1;
    return strcmp(value, "on") == 0;
}

/* dirstore_counts - total and enabled pairs */
int dirstore_counts(struct dirstore *ds, long long *total, long long *enabled)
{
    sqlite3_stmt *st = dirstore_stmt(ds, SQL_COUNTS, NULL);
    if (st == NULL || sqlite3_step(st) != SQLITE_ROW)
        return -1;
    *total = sqlite3_column_int64(st, 0);
    *enabled = sqlite3_column_int64(st, 1);
    sqlite3_reset(st);
    return 0;
}
