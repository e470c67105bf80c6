/*
 * spool_int - what the spool_*.c files share: the record codec, the id table,
 * the segment list, the batch and the handle. Not part of the contract; only
 * src/queue includes it. The on-disk format is described in docs/spool.md.
 *
 * Threads: everything here belongs to the event-loop thread except the
 * fields marked "flusher" and the handoff slots guarded by spool.lock.
 */
#ifndef COEX_SPOOL_INT_H
#define COEX_SPOOL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "spool.h"

/* ------------------------------------------------------------ record format */

#define SPOOL_REC_MAGIC 0x31525843u /* "CXR1" as little-endian bytes */
#define SPOOL_REC_HEADER 16         /* magic, type, flags, reserved, length, crc */
#define SPOOL_REC_MSG 1
#define SPOOL_REC_RCPT 2
#define SPOOL_RCPT_PAYLOAD 13 /* id u64, rcpt u32, state u8 */

#define SPOOL_MSG_RET_FULL 0x1
#define SPOOL_MSG_RET_HDRS 0x8 /* RET=HDRS; neither bit: RET not given */
#define SPOOL_MSG_IS_BOUNCE 0x2
#define SPOOL_MSG_HAS_ENVID 0x4
#define SPOOL_RCPT_HAS_ORCPT 0x1

/* segment file name: "seg-" + 16 hex digits + ".log" */
#define SPOOL_SEG_NAME_LEN 24
#define SPOOL_SEG_NAME_SIZE (SPOOL_SEG_NAME_LEN + 1)

/* compaction copies the oldest segment's live messages forward when they
 * take at most 1/SPOOL_COMPACT_FRACTION of its bytes and at least
 * SPOOL_COMPACT_NEWER newer segments exist: so copying costs at most a
 * quarter of what it frees, and a queue that is merely long (everything
 * live) is never rewritten */
#define SPOOL_COMPACT_FRACTION 4
#define SPOOL_COMPACT_NEWER 2

/* a decoded record header */
struct spool_rec_header {
    unsigned type;
    uint32_t length; /* payload bytes */
    uint32_t crc;
};

/* spool_crc32c - CRC-32C (Castagnoli) of p[0..len) continuing from crc (start with 0) */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t len);

/* spool_rec_begin - reserve a record header in b; returns its offset or -1 */
long spool_rec_begin(struct buf *b);
/* spool_rec_end - fill in the header started at rec_off (type, length, crc); 0 or -1 */
int spool_rec_end(struct buf *b, long rec_off, unsigned type);
/*
 * spool_rec_put_msg - append a whole MSG record for m (states as in m) with
 * data[0..len); *data_rel gets the offset of the data from the record start.
 * On -1 (limit) b is unchanged.
 */
int spool_rec_put_msg(struct buf *b, const struct spool_msg *m, const char *data, size_t len,
                      size_t *data_rel);
/* spool_rec_put_rcpt - append a whole RCPT record; b unchanged on -1 */
int spool_rec_put_rcpt(struct buf *b, uint64_t id, uint32_t rcpt, unsigned state);
/*
 * spool_rec_parse_header - check magic/flags/bounds of the 16 header bytes;
 * 0 or -1 (not a record)
 */
int spool_rec_parse_header(const unsigned char *p, struct spool_rec_header *h);
/* spool_rec_check_crc - 1 when the payload matches the header's CRC */
int spool_rec_check_crc(const unsigned char *header, const unsigned char *payload, size_t len);
/*
 * spool_rec_get_msg - decode a MSG payload; *out is a new message (caller
 * owns), *data_rel is where the data starts in the payload. 0 or -1 (corrupt)
 */
int spool_rec_get_msg(const unsigned char *p, size_t len, struct spool_msg **out, size_t *data_rel);
/* spool_rec_get_rcpt - decode a RCPT payload; 0 or -1 */
int spool_rec_get_rcpt(const unsigned char *p, size_t len, uint64_t *id, uint32_t *rcpt,
                       unsigned *state);

/* ----------------------------------------------------------------- id table */

/* one message the spool knows about */
struct spool_entry {
    uint64_t id;
    uint64_t segment;  /* where the current durable copy is (located only) */
    uint64_t rec_off;  /* offset of its record header in that segment */
    uint64_t data_off; /* offset of the message bytes */
    uint32_t rec_len;  /* header + payload */
    uint32_t data_len;
    uint32_t rcpt_count;
    uint32_t pending;         /* recipients still SPOOL_RCPT_PENDING */
    unsigned char located;    /* a durable copy exists (commit succeeded / recovered) */
    unsigned char compacting; /* a copy is in a batch not yet durable */
    unsigned char state[];    /* enum spool_rcpt_state per recipient */
};

/* open addressing, linear probing, power-of-two size, load at most 1/2 */
struct spool_table {
    struct spool_entry **slots;
    size_t mask;
    size_t count;
};

void spool_table_init(struct spool_table *t);
/* spool_table_cleanup - free the table and every entry */
void spool_table_cleanup(struct spool_table *t);
/* spool_table_get - the entry for id (borrowed) or NULL */
struct spool_entry *spool_table_get(const struct spool_table *t, uint64_t id);
/* spool_table_put - insert e (takes ownership); its id must not be present */
void spool_table_put(struct spool_table *t, struct spool_entry *e);
/* spool_table_del - remove and free the entry for id, if any */
void spool_table_del(struct spool_table *t, uint64_t id);
/* spool_entry_new - an entry for id with rcpt_count recipients, all pending */
struct spool_entry *spool_entry_new(uint64_t id, uint32_t rcpt_count);

/* ----------------------------------------------------------------- segments */

struct spool_segment {
    uint64_t seq;
    uint64_t size;          /* bytes written (or found on disk) */
    unsigned long live;     /* located entries here with pending > 0 */
    uint64_t live_bytes;    /* their record bytes */
    int read_fd;            /* O_RDONLY, opened on first read; -1 */
    uint64_t compact_tried; /* cur_seg when compaction last started here; 0 = never */
};

/* ------------------------------------------------------------------ batches */

enum spool_batch_kind { SPOOL_BATCH_MSG, SPOOL_BATCH_COMPACT };

struct spool_batch_entry {
    enum spool_batch_kind kind;
    uint64_t id;
    size_t rec_rel; /* record start, relative to the batch start */
    uint32_t rec_len;
    uint32_t data_rel; /* message bytes, relative to the record start */
    spool_commit_fn *cb;
    void *arg;
};

/* records waiting for one write + fdatasync, and segments to unlink after it */
struct spool_batch {
    struct buf data;
    struct spool_batch_entry *entries;
    size_t entry_count, entry_cap;
    unsigned long records;
    uint64_t *unlinks;
    size_t unlink_count, unlink_cap;
    uint64_t segment; /* set at handoff when data.len > 0 */
    uint64_t base_off;
    int new_segment; /* the flusher must create the segment file first */
    int error;       /* errno from the flusher, 0 = durable */
};

struct spool {
    char *dir;
    int dir_fd;
    int lock_fd;
    struct event_base *base;
    struct event *done_ev; /* activated by the flusher: a batch came back */
    struct event *kick_ev; /* loop-side: hand the open batch over */
    int kick_armed;

    struct spool_table table;
    struct spool_segment *segs; /* sorted by seq, oldest first */
    size_t seg_count, seg_cap;
    uint64_t next_seq;
    uint64_t found_max; /* highest segment found by spool_open: untouched until replayed */
    uint64_t cur_seg;   /* segment of the last handed-off batch with data; 0 = none */
    uint64_t cur_off;
    int cur_broken; /* a write or sync failed there: never append to it again */
    uint64_t segment_size;
    uint64_t last_id;

    struct spool_batch *open;  /* loop: appends go here */
    struct spool_batch *spare; /* loop: a reset batch kept for reuse */
    int busy;                  /* loop: a batch is with the flusher */
    int recovered, submitted, closing;
    struct spool_stats stats;

    pthread_t thread;
    int thread_started;
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* todo set or stopping */
    pthread_cond_t done_cond; /* done set */
    struct spool_batch *todo; /* lock: loop -> flusher */
    struct spool_batch *done; /* lock: flusher -> loop */
    int stopping;             /* lock */
    int write_fd;             /* flusher */
    uint64_t write_seq;       /* flusher */
    atomic_int fault;         /* test hook */
};

/* spool_seg_name - "seg-%016llx.log" into out */
void spool_seg_name(uint64_t seq, char out[SPOOL_SEG_NAME_SIZE]);
/* spool_seg_find - the segment with seq (borrowed) or NULL */
struct spool_segment *spool_seg_find(struct spool *s, uint64_t seq);
/* spool_seg_add - append a segment (seq above all others); borrowed pointer */
struct spool_segment *spool_seg_add(struct spool *s, uint64_t seq, uint64_t size);
/* spool_seg_pin / _unpin - a located, pending entry starts / stops keeping its segment */
void spool_seg_pin(struct spool *s, const struct spool_entry *e);
void spool_seg_unpin(struct spool *s, const struct spool_entry *e);
/* spool_seg_fd - the read descriptor of a segment, opened on demand; -1 */
int spool_seg_fd(struct spool *s, struct spool_segment *seg);
/*
 * spool_read_record - read and verify the whole record of e into rec (reset
 * first); 0 or -1 (I/O error, corrupt, not this id's MSG record)
 */
int spool_read_record(struct spool *s, const struct spool_entry *e, struct buf *rec);

/* spool_batch_new / _free / _reset */
struct spool_batch *spool_batch_new(void);
void spool_batch_free(struct spool_batch *b);
void spool_batch_reset(struct spool_batch *b);
/* spool_batch_add_entry - remember a MSG or COMPACT record of the batch */
void spool_batch_add_entry(struct spool_batch *b, const struct spool_batch_entry *ent);

/* spool_flusher_start - start the flusher thread; 0 or -1 */
int spool_flusher_start(struct spool *s);
/* spool_flusher_stop - stop and join it (nothing may be in flight) */
void spool_flusher_stop(struct spool *s);
/* spool_kick - arrange for the open batch to be handed over soon (loop) */
void spool_kick(struct spool *s);
/* spool_done_cb - libevent callback for done_ev */
void spool_done_cb(int fd, short what, void *arg);
/* spool_kick_cb - libevent callback for kick_ev */
void spool_kick_cb(int fd, short what, void *arg);
/* spool_drain - hand over and wait for everything pending (spool_close) */
void spool_drain(struct spool *s);
/* spool_maintain - reclaim finished old segments, start compaction if due */
void spool_maintain(struct spool *s);

/* spool_scan - find the segment files of s->dir into s->segs; 0 or -1 */
int spool_scan(struct spool *s, char *err, size_t errlen);

#endif
