/*
 * spool_flush - group commit: the flusher thread, the batch handoff, the
 * completion on the loop, segment reclamation and compaction.
 *
 * One batch at a time is with the flusher. While it writes and fdatasyncs,
 * new records collect in the open batch on the loop; when the flusher hands
 * the finished batch back (event_active on done_ev, the only libevent call
 * made from the flusher), the loop runs the commit callbacks in submit order
 * and hands the open batch over at once. Under load many messages therefore
 * share one fdatasync; with no load a message waits for one sync only.
 *
 * The loop decides where each batch goes (segment, offset) at handoff, so
 * offsets never depend on the flusher. A failed write or sync marks the
 * segment broken: after fsync fails, Linux may have dropped the dirty pages,
 * so nothing later may be trusted to that file; the next batch starts a new
 * segment. Unlinks of reclaimed segments ride on a batch and are done by the
 * flusher after its sync, oldest first, with a directory fsync after each.
 *
 * Does not: retry failed batches (the callers answer 4xx; RCPT records of a
 * failed batch are lost, which can only cause a duplicate delivery).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "spool_int.h"

/* ------------------------------------------------------------------ batches */

struct spool_batch *spool_batch_new(void)
{
    struct spool_batch *b = xcalloc(1, sizeof(*b));
    buf_init(&b->data, LIMIT_SPOOL_BATCH);
    return b;
}

void spool_batch_free(struct spool_batch *b)
{
    if (b == NULL)
        return;
    buf_cleanup(&b->data);
    free(b->entries);
    free(b->unlinks);
    free(b);
}

/* spool_batch_reset - empty, storage kept for the next batch */
void spool_batch_reset(struct spool_batch *b)
{
    buf_reset(&b->data);
    b->entry_count = 0;
    b->unlink_count = 0;
    b->records = 0;
    b->segment = b->base_off = 0;
    b->new_segment = 0;
    b->error = 0;
}

void spool_batch_add_entry(struct spool_batch *b, const struct spool_batch_entry *ent)
{
    if (b->entry_count == b->entry_cap) {
        b->entry_cap = b->entry_cap ? b->entry_cap * 2 : 64;
        b->entries = xrealloc(b->entries, b->entry_cap * sizeof(*b->entries));
    }
    b->entries[b->entry_count++] = *ent;
}

static void spool_batch_add_unlink(struct spool_batch *b, uint64_t seq)
{
    if (b->unlink_count == b->unlink_cap) {
        b->unlink_cap = b->unlink_cap ? b->unlink_cap * 2 : 8;
        b->unlinks = xrealloc(b->unlinks, b->unlink_cap * sizeof(*b->unlinks));
    }
    b->unlinks[b->unlink_count++] = seq;
}

/* ------------------------------------------------------------ flusher side */

/* spool_pwrite_all - all of p, retrying short writes and EINTR */
static int spool_pwrite_all(int fd, const char *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

static int spool_fsync_dir(struct spool *s)
{
    while (fsync(s->dir_fd) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return 0;
}

/* spool_flusher_create - the segment file of b, made durable in the directory */
static int spool_flusher_create(struct spool *s, struct spool_batch *b)
{
    char name[SPOOL_SEG_NAME_SIZE];
    if (s->write_fd >= 0)
        close(s->write_fd);
    s->write_fd = -1;
    spool_seg_name(b->segment, name);
    int fd = openat(s->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    if (spool_fsync_dir(s) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    s->write_fd = fd;
    s->write_seq = b->segment;
    return 0;
}

/* spool_flusher_write - write + fdatasync one batch; sets b->error */
static void spool_flusher_write(struct spool *s, struct spool_batch *b)
{
    int fault = atomic_load(&s->fault);
    if (b->new_segment || s->write_fd < 0 || s->write_seq != b->segment) {
        if (!b->new_segment) {
            errno = EIO; /* the loop never appends to a broken segment */
            goto fail;
        }
        if (spool_flusher_create(s, b) < 0)
            goto fail;
    }
    if (fault) {
        errno = fault;
        goto fail;
    }
    if (spool_pwrite_all(s->write_fd, b->data.data, b->data.len, b->base_off) < 0)
        goto fail;
    while (fdatasync(s->write_fd) < 0) {
        if (errno != EINTR)
            goto fail;
    }
    return;
fail:
    b->error = errno ? errno : EIO;
    if (s->write_fd >= 0) {
        /* best effort: leave no complete record of a batch that was refused */
        if (ftruncate(s->write_fd, (off_t)b->base_off) == 0)
            (void)fdatasync(s->write_fd);
        close(s->write_fd);
        s->write_fd = -1;
    }
}

/* spool_flusher_unlink - remove reclaimed segments, oldest first */
static void spool_flusher_unlink(struct spool *s, struct spool_batch *b)
{
    char name[SPOOL_SEG_NAME_SIZE];
    for (size_t i = 0; i < b->unlink_count; i++) {
        spool_seg_name(b->unlinks[i], name);
        if (unlinkat(s->dir_fd, name, 0) < 0 && errno != ENOENT) {
            log_error("spool: %s/%s: unlink: %s", s->dir, name, strerror(errno));
            continue;
        }
        /* durable before the next one goes: a newer segment may hold RCPT
         * records for messages of an older one */
        if (spool_fsync_dir(s) < 0)
            log_error("spool: %s: fsync: %s", s->dir, strerror(errno));
    }
}

/* spool_flusher_main - take a batch, write, sync, unlink, hand it back */
static void *spool_flusher_main(void *arg)
{
    struct spool *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->todo == NULL && !s->stopping)
            pthread_cond_wait(&s->cond, &s->lock);
        struct spool_batch *b = s->todo;
        s->todo = NULL;
        pthread_mutex_unlock(&s->lock);
        if (b == NULL)
            break;
        if (b->data.len > 0)
            spool_flusher_write(s, b);
        spool_flusher_unlink(s, b);
        pthread_mutex_lock(&s->lock);
        s->done = b;
        pthread_cond_signal(&s->done_cond);
        pthread_mutex_unlock(&s->lock);
        event_active(s->done_ev, EV_TIMEOUT, 0);
    }
    return NULL;
}

int spool_flusher_start(struct spool *s)
{
    if (pthread_create(&s->thread, NULL, spool_flusher_main, s) != 0)
        return -1;
    s->thread_started = 1;
    return 0;
}

void spool_flusher_stop(struct spool *s)
{
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    s->thread_started = 0;
}

/* ---------------------------------------------------------------- loop side */

static int spool_batch_has_work(const struct spool_batch *b)
{
    return b->data.len > 0 || b->unlink_count > 0;
}

/* spool_handoff - place the open batch in the log and give it to the flusher */
static void spool_handoff(struct spool *s)
{
    struct spool_batch *b = s->open;
    if (s->busy || !spool_batch_has_work(b))
        return;
    if (b->data.len > 0) {
        if (s->cur_seg == 0 || s->cur_broken || s->cur_off >= s->segment_size) {
            s->cur_seg = s->next_seq;
            s->cur_off = 0;
            s->cur_broken = 0;
            spool_seg_add(s, s->cur_seg, 0);
            b->new_segment = 1;
        }
        b->segment = s->cur_seg;
        b->base_off = s->cur_off;
        s->cur_off += b->data.len;
        spool_seg_find(s, s->cur_seg)->size = s->cur_off;
    }
    s->open = s->spare ? s->spare : spool_batch_new();
    s->spare = NULL;
    s->busy = 1;
    pthread_mutex_lock(&s->lock);
    s->todo = b;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* spool_kick - hand over at the end of this loop iteration, so that every
 * submit made in one iteration joins the same batch */
void spool_kick(struct spool *s)
{
    if (s->kick_armed || s->closing)
        return;
    s->kick_armed = 1;
    event_active(s->kick_ev, EV_TIMEOUT, 0);
}

void spool_kick_cb(int fd, short what, void *arg)
{
    struct spool *s = arg;
    (void)fd;
    (void)what;
    s->kick_armed = 0;
    spool_handoff(s);
}

/* spool_finish_ok - the batch is durable: locate its messages and copies */
static void spool_finish_ok(struct spool *s, struct spool_batch *b)
{
    struct spool_segment *seg = b->data.len ? spool_seg_find(s, b->segment) : NULL;
    for (size_t i = 0; i < b->entry_count; i++) {
        const struct spool_batch_entry *ent = &b->entries[i];
        struct spool_entry *e = spool_table_get(&s->table, ent->id);
        if (e == NULL || seg == NULL)
            continue; /* finished before its record was durable */
        if (ent->kind == SPOOL_BATCH_MSG && e->located)
            continue;
        if (ent->kind == SPOOL_BATCH_COMPACT) {
            if (!e->compacting)
                continue;
            spool_seg_unpin(s, e); /* the old copy is dead from now on */
            e->compacting = 0;
        }
        e->segment = b->segment;
        e->rec_off = b->base_off + ent->rec_rel;
        e->rec_len = ent->rec_len;
        e->data_off = e->rec_off + ent->data_rel;
        e->located = 1;
        if (e->pending > 0)
            spool_seg_pin(s, e);
        else
            spool_table_del(&s->table, ent->id);
    }
    s->stats.batches += b->data.len > 0;
    s->stats.records += b->records;
}

/* spool_finish_failed - nothing of the batch may be assumed written */
static void spool_finish_failed(struct spool *s, struct spool_batch *b)
{
    size_t refused = 0;
    struct spool_segment *seg = spool_seg_find(s, b->segment);
    if (b->segment == s->cur_seg)
        s->cur_broken = 1;
    if (seg)
        seg->size = b->base_off;
    for (size_t i = 0; i < b->entry_count; i++) {
        const struct spool_batch_entry *ent = &b->entries[i];
        struct spool_entry *e = spool_table_get(&s->table, ent->id);
        if (ent->kind == SPOOL_BATCH_MSG) {
            refused++;
            if (e && !e->located)
                spool_table_del(&s->table, ent->id);
        } else if (e) {
            e->compacting = 0;
        }
    }
    log_error("spool: %s: segment %016llx: write/sync of %zu bytes failed: %s; %zu messages not "
              "queued, %lu records lost; continuing in a new segment",
              s->dir, (unsigned long long)b->segment, b->data.len, strerror(b->error), refused,
              b->records);
}

/* spool_finish - run on the loop for a batch the flusher handed back */
static void spool_finish(struct spool *s, struct spool_batch *b)
{
    int ok = b->error == 0;
    s->busy = 0;
    if (ok)
        spool_finish_ok(s, b);
    else
        spool_finish_failed(s, b);
    /* callbacks last, in submit order: they may submit and mark again */
    for (size_t i = 0; i < b->entry_count; i++)
        if (b->entries[i].kind == SPOOL_BATCH_MSG)
            b->entries[i].cb(b->entries[i].arg, ok);
    spool_batch_reset(b);
    if (s->spare == NULL)
        s->spare = b;
    else
        spool_batch_free(b);
}

/* spool_take_done - the batch the flusher handed back, if any */
static struct spool_batch *spool_take_done(struct spool *s, int wait)
{
    pthread_mutex_lock(&s->lock);
    while (wait && s->done == NULL)
        pthread_cond_wait(&s->done_cond, &s->lock);
    struct spool_batch *b = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->lock);
    return b;
}

void spool_done_cb(int fd, short what, void *arg)
{
    struct spool *s = arg;
    (void)fd;
    (void)what;
    struct spool_batch *b = spool_take_done(s, 0);
    if (b == NULL)
        return;
    spool_finish(s, b);
    if (s->closing)
        return;
    spool_maintain(s);
    spool_handoff(s);
}

/* spool_drain - synchronous: used by spool_close, callbacks still run */
void spool_drain(struct spool *s)
{
    for (;;) {
        if (!s->busy) {
            if (!spool_batch_has_work(s->open))
                break;
            spool_handoff(s);
        }
        spool_finish(s, spool_take_done(s, 1));
    }
}

/* ------------------------------------------------- reclamation, compaction */

/* spool_reclaim - drop segments from the front while nothing pins them */
static void spool_reclaim(struct spool *s)
{
    size_t gone = 0;
    while (gone < s->seg_count) {
        struct spool_segment *seg = &s->segs[gone];
        if (seg->live > 0 || seg->seq == s->cur_seg || (!s->recovered && seg->seq <= s->found_max))
            break; /* never a segment whose messages were not replayed */
        if (seg->read_fd >= 0)
            close(seg->read_fd);
        spool_batch_add_unlink(s->open, seg->seq);
        gone++;
    }
    if (gone == 0)
        return;
    memmove(s->segs, s->segs + gone, (s->seg_count - gone) * sizeof(*s->segs));
    s->seg_count -= gone;
    spool_kick(s);
}

/* spool_compact_one - append a copy of e with its current states */
static int spool_compact_one(struct spool *s, struct spool_entry *e, struct buf *rec)
{
    struct spool_msg *m = NULL;
    size_t data_rel, new_rel;
    struct spool_batch *b = s->open;
    size_t rec_rel = b->data.len;
    if (spool_read_record(s, e, rec) < 0)
        goto fail;
    const unsigned char *payload = (const unsigned char *)rec->data + SPOOL_REC_HEADER;
    if (spool_rec_get_msg(payload, rec->len - SPOOL_REC_HEADER, &m, &data_rel) < 0 ||
        m->rcpt_count != e->rcpt_count)
        goto fail;
    for (size_t i = 0; i < m->rcpt_count; i++)
        m->rcpts[i].state = (enum spool_rcpt_state)e->state[i];
    if (spool_rec_put_msg(&b->data, m, (const char *)payload + data_rel, m->data_len, &new_rel) < 0)
        goto fail;
    struct spool_batch_entry ent = {
        .kind = SPOOL_BATCH_COMPACT,
        .id = e->id,
        .rec_rel = rec_rel,
        .rec_len = (uint32_t)(b->data.len - rec_rel),
        .data_rel = (uint32_t)new_rel,
    };
    spool_batch_add_entry(b, &ent);
    b->records++;
    e->compacting = 1;
    spool_msg_free(m);
    return 0;
fail:
    spool_msg_free(m);
    return -1;
}

/*
 * spool_compact - the oldest segment is pinned by a few messages (at most a
 * quarter of its bytes) while newer segments exist: copy them forward; once the copies are durable
 * the old segment has nothing live and goes. Tried once per current segment.
 */
static void spool_compact(struct spool *s)
{
    struct spool_segment *old = s->seg_count ? &s->segs[0] : NULL;
    struct buf rec;
    size_t copied = 0;
    if (old == NULL || s->seg_count < 1 + SPOOL_COMPACT_NEWER || old->seq == s->cur_seg ||
        old->live == 0 || old->compact_tried == s->cur_seg)
        return;
    /* a short segment (restart, write error) counts as a full one */
    uint64_t basis = old->size > s->segment_size ? old->size : s->segment_size;
    if (old->live_bytes > basis / SPOOL_COMPACT_FRACTION)
        return;
    old->compact_tried = s->cur_seg;
    uint64_t seq = old->seq;
    buf_init(&rec, LIMIT_SPOOL_RECORD + SPOOL_REC_HEADER);
    for (size_t i = 0; i <= s->table.mask; i++) {
        struct spool_entry *e = s->table.slots[i];
        if (e == NULL || !e->located || e->compacting || e->segment != seq || e->pending == 0)
            continue;
        if (spool_compact_one(s, e, &rec) < 0) {
            log_error("spool: message %016llX: cannot copy it out of segment %016llx",
                      (unsigned long long)e->id, (unsigned long long)seq);
            continue;
        }
        copied++;
    }
    buf_cleanup(&rec);
    if (copied) {
        log_info("spool: compaction: copying %zu messages out of segment %016llx", copied,
                 (unsigned long long)seq);
        spool_kick(s);
    }
}

/* spool_maintain - after each batch: reclaim, then compact what still pins */
void spool_maintain(struct spool *s)
{
    spool_reclaim(s);
    spool_compact(s);
}
