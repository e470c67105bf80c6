/*
 * buf - a growable byte buffer with a hard limit set at creation (curl's dynbuf
 * idea). Appends fail, and leave the buffer unchanged, past the limit.
 */
#ifndef COEX_BUF_H
#define COEX_BUF_H

#include <stddef.h>

#include "util.h"

struct buf {
    char *data;   /* NUL-terminated when not NULL; owned by the buffer */
    size_t len;   /* bytes in use, not counting the NUL */
    size_t cap;   /* bytes allocated */
    size_t limit; /* appends beyond this many bytes fail */
};

/* buf_init - empty buffer that may grow to limit bytes */
void buf_init(struct buf *b, size_t limit);
/* buf_cleanup - free the storage; the buffer may be buf_init'ed again */
void buf_cleanup(struct buf *b);
/* buf_reset - length to zero, storage kept */
void buf_reset(struct buf *b);
/* buf_append - copy len bytes; -1 (buffer unchanged) past the limit */
int buf_append(struct buf *b, const void *data, size_t len) WUR;
/* buf_append_str - buf_append of a C string */
int buf_append_str(struct buf *b, const char *s) WUR;
/* buf_printf - formatted append; -1 past the limit */
int buf_printf(struct buf *b, const char *fmt, ...) WUR __attribute__((format(printf, 2, 3)));
/* buf_str - the contents as a C string ("" when empty); borrowed */
const char *buf_str(const struct buf *b);

#endif
