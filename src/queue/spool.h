/*
 * spool - the durable queue: an append-only log of segment files with group
 * commit and crash recovery. Only spool writes queue files.
 *
 * A message is one MSG record (envelope + final message bytes); delivery
 * outcomes are small RCPT records appended later. Records carry a CRC-32, so
 * a torn tail left by a crash is detected and ignored, never delivered.
 * Appends from the event loop go into the current batch; a flusher thread
 * writes the batch and calls fdatasync once for all of it (group commit),
 * then the commit callbacks of every message in the batch run on the event
 * loop. "250 queued" is sent from that callback, never before.
 *
 * Segments are removed oldest first once every message in them is final;
 * live messages that pin an old segment are copied forward (compaction) so
 * one long-deferred message does not keep the log growing.
 *
 * Does not: decide when to deliver (qmgr does), or parse message bytes.
 */
#ifndef COEX_SPOOL_H
#define COEX_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "util.h"

struct event_base;
struct spool;

/* a segment is closed and a new one started past this size */
#define SPOOL_SEGMENT_SIZE ((uint64_t)64 << 20)
/* text form of a queue ID: 16 upper-case hex digits + NUL */
#define SPOOL_ID_SIZE 17

/* bounds checked on submit and again on every record read back (docs/spool.md) */
#define LIMIT_SPOOL_STRING 1024             /* route, mail_from, envid, addr, orcpt */
#define LIMIT_SPOOL_RCPTS 1000              /* recipients per message */
#define LIMIT_SPOOL_DATA ((size_t)64 << 20) /* message bytes */
#define LIMIT_SPOOL_RECORD (LIMIT_SPOOL_DATA + ((size_t)4 << 20)) /* payload of one record */
#define LIMIT_SPOOL_BATCH ((size_t)256 << 20) /* bytes waiting for one fdatasync */

enum spool_rcpt_state {
    SPOOL_RCPT_PENDING = 0,
    SPOOL_RCPT_DELIVERED = 1, /* 2xx from the next hop */
    SPOOL_RCPT_FAILED = 2,    /* 5xx or lifetime exceeded; a DSN was queued if one was due */
};

/* DSN NOTIFY bits (RFC 3461); 0 = not given */
#define SPOOL_NOTIFY_NEVER 0x1
#define SPOOL_NOTIFY_SUCCESS 0x2
#define SPOOL_NOTIFY_FAILURE 0x4
#define SPOOL_NOTIFY_DELAY 0x8

struct spool_rcpt {
    char *addr;  /* envelope recipient after rewriting; owned by the message */
    char *orcpt; /* DSN ORCPT parameter as received (xtext), or NULL */
    unsigned notify;
    enum spool_rcpt_state state;
};

struct spool_msg {
    uint64_t id;        /* assigned by spool_submit */
    time_t arrival;     /* set by the caller */
    char *route;        /* route name; owned */
    char *mail_from;    /* envelope sender after rewriting; "" = null sender; owned */
    char *envid;        /* DSN ENVID or NULL; owned */
    int ret_full;       /* DSN RET=FULL (1), RET=HDRS (0), not given (-1) */
    int is_bounce;      /* a DSN coex generated: never bounced again */
    size_t rcpt_count;
    struct spool_rcpt *rcpts; /* owned */
    /* where the bytes were written (informational: read them with spool_read_data) */
    uint64_t segment;
    uint64_t data_off;
    size_t data_len;
};

/* spool_msg_free - free a message and everything it owns; NULL is fine */
void spool_msg_free(struct spool_msg *m);
/* spool_msg_dup - deep copy; caller owns */
struct spool_msg *spool_msg_dup(const struct spool_msg *m);

/* spool_format_id - text form of an id into out[SPOOL_ID_SIZE] */
void spool_format_id(uint64_t id, char out[SPOOL_ID_SIZE]);

/*
 * spool_new_id - a fresh queue ID, for callers that must name the message
 * before it is submitted (smtpd writes it into the Received field); pass it in
 * m->id to spool_submit, which only assigns one when m->id is 0
 */
uint64_t spool_new_id(struct spool *s);

/*
 * spool_commit_fn - runs on the event loop once the batch holding the record is
 * durable (ok = 1) or could not be written (ok = 0: the caller must answer
 * 4xx and must not assume the message is queued)
 */
typedef void spool_commit_fn(void *arg, int ok);

/*
 * spool_open - open or create the spool directory; base is the loop the commit
 * callbacks run on (evthread_use_pthreads must have been called). Caller owns;
 * NULL with a reason in err.
 */
struct spool *spool_open(const char *dir, struct event_base *base, char *err, size_t errlen);

/*
 * spool_recover - replay the segments (call once, right after spool_open,
 * before any submit): fn is called for each message with a recipient still
 * pending; the message is borrowed for the call. Torn or corrupt records are
 * skipped and counted in the log. Returns the number of live messages or -1.
 * Until it has run, segments found by spool_open are never reclaimed.
 */
long spool_recover(struct spool *s, void (*fn)(void *arg, const struct spool_msg *m), void *arg);

/*
 * spool_submit - append a message (envelope in m, bytes in data[0..len)) to the
 * current batch. Sets m->id when it is 0, and m->segment, m->data_off, m->data_len. cb runs
 * when the batch is durable. Returns 0, or -1 when the spool cannot take it
 * (write error, disk full, closing): then cb is not called.
 */
int spool_submit(struct spool *s, struct spool_msg *m, const char *data, size_t len,
                 spool_commit_fn *cb, void *arg);

/*
 * spool_mark - record a recipient's final state (delivered or failed). Goes in
 * the next batch; no callback. When every recipient of the message is final,
 * the message no longer pins its segment. 0 or -1.
 */
int spool_mark(struct spool *s, uint64_t id, size_t rcpt, enum spool_rcpt_state state);

/*
 * spool_read_data - append the bytes of live message id to out (wherever
 * compaction has moved them); 0, or -1 (unknown id, not committed yet,
 * I/O error, corrupt: the record's CRC is checked on every read)
 */
int spool_read_data(struct spool *s, uint64_t id, struct buf *out);

/* spool_stats - messages live, segments on disk, bytes on disk, batches written */
struct spool_stats {
    unsigned long live_messages;
    unsigned long segments;
    unsigned long long bytes;
    unsigned long long batches;
    unsigned long long records;
    unsigned long bad_tails; /* segments whose replay stopped at a torn/corrupt record */
};
void spool_get_stats(const struct spool *s, struct spool_stats *st);

/*
 * spool_set_segment_size - rotate past bytes instead of SPOOL_SEGMENT_SIZE
 * (tests; also read from the environment variable COEX_SPOOL_SEGMENT_SIZE by
 * spool_open). Takes effect at the next batch.
 */
void spool_set_segment_size(struct spool *s, uint64_t bytes);

/*
 * spool_set_fault - test hook: while err != 0 every batch write fails with
 * errno err, exactly as a full or failing disk would (0 = off)
 */
void spool_set_fault(struct spool *s, int err);

/*
 * spool_close - write and sync what is pending (running its callbacks, which
 * may still spool_mark but no longer submit), stop the flusher and free; NULL
 * is fine. Not from inside a commit callback.
 */
void spool_close(struct spool *s);

#endif
