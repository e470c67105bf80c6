/*
 * dirstore - the directory's SQLite store (the embedded default: one file,
 * WAL mode) and its CSV import.
 *
 * Tables: mailbox(source, target, enabled, updated), domain_pair(target,
 * source), exception(value), setting(key, value) with "coexistence" and
 * "generation", a counter every write bumps so that a daemon can notice a
 * change with one cheap query. Addresses compare ASCII case-insensitively
 * (COLLATE NOCASE), as in the snapshot.
 *
 * Every statement is prepared with bound parameters; an import is one
 * transaction: all or nothing.
 */
#ifndef COEX_DIRSTORE_H
#define COEX_DIRSTORE_H

#include <stddef.h>
#include <stdio.h>

#include "dir.h"

struct dirstore;

struct dirstore_import_stats {
    unsigned long rows;    /* data rows read */
    unsigned long added;   /* new pairs */
    unsigned long updated; /* existing pairs whose target or enabled changed */
    unsigned long errors;  /* bad lines (nothing is imported when > 0) */
};

/* dirstore_open - open or create the store at path; caller owns; NULL + err on failure */
struct dirstore *dirstore_open(const char *path, char *err, size_t errlen);
/* dirstore_close - close; NULL is fine */
void dirstore_close(struct dirstore *ds);

/* dirstore_load - build a snapshot (caller owns one reference); NULL + err on failure */
struct dir_snapshot *dirstore_load(struct dirstore *ds, char *err, size_t errlen);
/* dirstore_generation - the change counter, or -1 on error */
long long dirstore_generation(struct dirstore *ds);

/*
 * dirstore_import_csv - import the CSV file at path (header: source,target[,enabled]).
 * Every bad line is written to errs as "path:line: reason". Returns 0 when
 * imported, -1 when nothing was (bad lines or a store error).
 */
int dirstore_import_csv(struct dirstore *ds, const char *path, FILE *errs,
                        struct dirstore_import_stats *stats);

/*
 * dirstore_set_enabled - turn address rewrite on/off for the pairs naming these
 * addresses (as source or target). All or nothing: an address that names no
 * pair is written to errs (with where[i], e.g. "file:line", when where is not
 * NULL) and nothing changes. Returns the number of pairs changed, or -1.
 */
long dirstore_set_enabled(struct dirstore *ds, const char *const *addrs, const char *const *where,
                          size_t count, int enabled, FILE *errs);
/* dirstore_set_enabled_all - every pair; returns pairs changed or -1 */
long dirstore_set_enabled_all(struct dirstore *ds, int enabled, FILE *errs);
/* dirstore_remove_pairs - delete the pairs naming these addresses; all or nothing */
long dirstore_remove_pairs(struct dirstore *ds, const char *const *addrs, size_t count,
                           FILE *errs);

/* one row for dirstore_list's callback; strings borrowed for the call */
struct dirstore_row {
    const char *source;
    const char *target;
    int enabled;
    long long updated;
};
typedef int dirstore_row_fn(const struct dirstore_row *row, void *arg);

/*
 * dirstore_list - call fn for each pair, ordered by source; enabled_filter -1
 * for all, 0 or 1; match (may be NULL) is a case-insensitive substring of
 * either address. Returns 0, or -1 (errs) on a store error.
 */
int dirstore_list(struct dirstore *ds, int enabled_filter, const char *match, dirstore_row_fn *fn,
                  void *arg, FILE *errs);

/* dirstore_domain_add / _remove - a domain pair; 0, or -1 with the reason on errs */
int dirstore_domain_add(struct dirstore *ds, const char *target_domain, const char *source_domain,
                        FILE *errs);
int dirstore_domain_remove(struct dirstore *ds, const char *target_domain,
                           const char *source_domain, FILE *errs);
/* dirstore_exception_add / _remove - an address or a domain never rewritten */
int dirstore_exception_add(struct dirstore *ds, const char *value, FILE *errs);
int dirstore_exception_remove(struct dirstore *ds, const char *value, FILE *errs);

/* dirstore_set_coexistence - the global switch; 0 or -1 */
int dirstore_set_coexistence(struct dirstore *ds, int on, FILE *errs);
/* dirstore_get_coexistence - 1 on, 0 off, -1 error */
int dirstore_get_coexistence(struct dirstore *ds);

/* dirstore_counts - pairs in total and enabled; 0 or -1 */
int dirstore_counts(struct dirstore *ds, long long *total, long long *enabled);

#endif
