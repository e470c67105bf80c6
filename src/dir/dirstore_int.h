/*
 * dirstore_int - what dirstore.c and dirimport.c share: the handle and its
 * statement cache. Not part of the contract; only src/dir includes it.
 */
#ifndef COEX_DIRSTORE_INT_H
#define COEX_DIRSTORE_INT_H

#include <sqlite3.h>

#include "dirstore.h"

enum dirstore_sql {
    SQL_BEGIN,
    SQL_COMMIT,
    SQL_ROLLBACK,
    SQL_BUMP_GENERATION,
    SQL_GET_SETTING,
    SQL_SET_SETTING,
    SQL_LOAD_PAIRS,
    SQL_LOAD_DOMAINS,
    SQL_LOAD_EXCEPTIONS,
    SQL_FIND_BY_SOURCE,
    SQL_FIND_BY_ADDRESS,
    SQL_DELETE_BY_SOURCE,
    SQL_INSERT_PAIR,
    SQL_SOURCE_OF_TARGET,
    SQL_SET_ENABLED_BY_ADDRESS,
    SQL_SET_ENABLED_ALL,
    SQL_DELETE_BY_ADDRESS,
    SQL_LIST,
    SQL_DOMAIN_CONFLICT,
    SQL_DOMAIN_INSERT,
    SQL_DOMAIN_DELETE,
    SQL_EXCEPTION_INSERT,
    SQL_EXCEPTION_DELETE,
    SQL_COUNTS,
    SQL__COUNT
};

struct dirstore {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[SQL__COUNT];
};

/* dirstore_stmt - the cached statement, reset and unbound; NULL on error (errs) */
sqlite3_stmt *dirstore_stmt(struct dirstore *ds, enum dirstore_sql which, FILE *errs);
/* dirstore_exec - run a cached statement that returns no rows; 0 or -1 (errs) */
int dirstore_exec(struct dirstore *ds, enum dirstore_sql which, FILE *errs);
/* dirstore_begin / _commit / _rollback - the write transaction (BEGIN IMMEDIATE) */
int dirstore_begin(struct dirstore *ds, FILE *errs);
int dirstore_commit(struct dirstore *ds, FILE *errs);
void dirstore_rollback(struct dirstore *ds);
/* dirstore_error - write "path: what: sqlite message" to errs */
void dirstore_error(struct dirstore *ds, FILE *errs, const char *what);

#endif
