/*
 * csv - RFC 4180 records with line numbers.
 */
#include "csv.h"

#include <stdio.h>
#include <string.h>

/* csv_init - start after an optional UTF-8 BOM */
void csv_init(struct csv_reader *r, const char *data, size_t len)
{
    r->data = data;
    r->len = len;
    r->pos = len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    r->line = 1;
}

/* csv_skip_line - recover after an error: go past the next LF */
static void csv_skip_line(struct csv_reader *r)
{
    while (r->pos < r->len && r->data[r->pos] != '\n')
        r->pos++;
    if (r->pos < r->len) {
        r->pos++;
        r->line++;
    }
}

/* csv_trim - drop surrounding blanks of an unquoted field */
static void csv_trim(char *s, size_t *len)
{
    size_t start = 0;
    while (start < *len && (s[start] == ' ' || s[start] == '\t'))
        start++;
    while (*len > start && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
        (*len)--;
    memmove(s, s + start, *len - start);
    *len -= start;
    s[*len] = '\0';
}

/* csv_next - parse one record */
int csv_next(struct csv_reader *r, struct csv_record *rec, char *err, size_t errlen)
{
    const char *d = r->data;
    if (r->pos >= r->len)
        return 0;
    rec->line = r->line;
    rec->count = 0;
    for (;;) {
        char *out = rec->field[rec->count];
        size_t used = 0;
        int quoted = 0;
        if (rec->count == LIMIT_CSV_FIELDS) {
            snprintf(err, errlen, "more than %d fields", LIMIT_CSV_FIELDS);
            goto fail;
        }
        while (r->pos < r->len && (d[r->pos] == ' ' || d[r->pos] == '\t'))
            r->pos++;
        if (r->pos < r->len && d[r->pos] == '"') {
            quoted = 1;
            r->pos++;
            for (;;) {
                if (r->pos >= r->len) {
                    snprintf(err, errlen, "unterminated quoted field");
                    goto fail;
                }
                char c = d[r->pos++];
                if (c == '"') {
                    if (r->pos < r->len && d[r->pos] == '"')
                        r->pos++;
                    else
                        break;
                }
                if (c == '\n')
                    r->line++;
                if (c == '\0' || used + 1 >= LIMIT_CSV_FIELD) {
                    snprintf(err, errlen, "field too long (over %d bytes) or holds a NUL byte", LIMIT_CSV_FIELD - 1);
                    goto fail;
                }
                out[used++] = c;
            }
            while (r->pos < r->len && (d[r->pos] == ' ' || d[r->pos] == '\t'))
                r->pos++;
        } else {
            /* a record ends at LF, CRLF, or a CR that is the last byte of the file */
            while (r->pos < r->len && d[r->pos] != ',' && d[r->pos] != '\n' &&
                   !(d[r->pos] == '\r' && (r->pos + 1 == r->len || d[r->pos + 1] == '\n'))) {
                char c = d[r->pos++];
                if (c == '"') {
                    snprintf(err, errlen, "quote inside an unquoted field");
                    goto fail;
                }
                if (c == '\0' || used + 1 >= LIMIT_CSV_FIELD) {
                    snprintf(err, errlen, "field too long (over %d bytes) or holds a NUL byte", LIMIT_CSV_FIELD - 1);
                    goto fail;
                }
                out[used++] = c;
            }
        }
        out[used] = '\0';
        if (!quoted)
            csv_trim(out, &used);
        rec->count++;
        if (r->pos >= r->len)
            return 1;
        if (d[r->pos] == ',') {
            r->pos++;
            continue;
        }
        if (d[r->pos] == '\r')
            r->pos++;
        if (r->pos == r->len)
            return 1;
        if (d[r->pos] == '\n') {
            r->pos++;
            r->line++;
            return 1;
        }
        snprintf(err, errlen, "unexpected character after a quoted field");
        goto fail;
    }
fail:
    csv_skip_line(r);
    return -1;
}
