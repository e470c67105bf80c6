/*
 * csv - RFC 4180 record reader over a buffer in memory: quoted fields with ""
 * escapes, CRLF or LF record ends, a leading UTF-8 byte-order mark (Excel)
 * skipped, line numbers kept for error messages.
 *
 * Does not: guess separators, or accept a quote inside an unquoted field.
 */
#ifndef COEX_CSV_H
#define COEX_CSV_H

#include <stddef.h>

#include "buf.h"

#define LIMIT_CSV_FIELDS 32
#define LIMIT_CSV_FIELD 1024

struct csv_reader {
    const char *data; /* borrowed */
    size_t len, pos;
    unsigned long line; /* line where the next record starts */
};

struct csv_record {
    unsigned long line;             /* first line of the record */
    size_t count;                   /* fields */
    char field[LIMIT_CSV_FIELDS][LIMIT_CSV_FIELD]; /* unquoted, trimmed of SP/HTAB */
};

/* csv_init - read records from data[0..len) (borrowed) */
void csv_init(struct csv_reader *r, const char *data, size_t len);

/*
 * csv_next - the next record: 1 and rec filled, 0 at the end, -1 on a syntax
 * error (message in err; rec->line is the line; the reader skips to the next line)
 */
int csv_next(struct csv_reader *r, struct csv_record *rec, char *err, size_t errlen);

#endif
