/*
 * spool - the durable queue's handle: open/close, the id table, the segment
 * list, and the loop-side entry points (submit, mark, read, stats).
 *
 * Every function here runs on the event-loop thread. Appends only serialise
 * records into the open batch (spool_flush.c writes and syncs them); the id
 * table maps a queue ID to where its durable copy lives and which recipients
 * are still pending. One spool directory belongs to one process: spool_open
 * takes an exclusive flock on DIR/lock.
 *
 * Does not: replay the log (spool_recover.c), touch the disk for writes
 * (spool_flush.c), or interpret the message bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "spool_int.h"

/* ---------------------------------------------------------------- id table */

static size_t spool_slot(uint64_t id, size_t mask)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 29) & mask;
}

void spool_table_init(struct spool_table *t)
{
    t->mask = 1023;
    t->slots = xcalloc(t->mask + 1, sizeof(*t->slots));
    t->count = 0;
}

/* spool_table_cleanup - entries and slots */
void spool_table_cleanup(struct spool_table *t)
{
    for (size_t i = 0; t->slots && i <= t->mask; i++)
        free(t->slots[i]);
    free(t->slots);
    t->slots = NULL;
    t->count = 0;
}

/* spool_table_get - linear probe from the home slot */
struct spool_entry *spool_table_get(const struct spool_table *t, uint64_t id)
{
    for (size_t i = spool_slot(id, t->mask);; i = (i + 1) & t->mask) {
        if (t->slots[i] == NULL)
            return NULL;
        if (t->slots[i]->id == id)
            return t->slots[i];
    }
}

static void spool_table_insert(struct spool_entry **slots, size_t mask, struct spool_entry *e)
{
    size_t i = spool_slot(e->id, mask);
    while (slots[i] != NULL)
        i = (i + 1) & mask;
    slots[i] = e;
}

/* spool_table_put - grow at load 1/2, then insert */
void spool_table_put(struct spool_table *t, struct spool_entry *e)
{
    if ((t->count + 1) * 2 > t->mask + 1) {
        size_t mask = t->mask * 2 + 1;
        struct spool_entry **slots = xcalloc(mask + 1, sizeof(*slots));
        for (size_t i = 0; i <= t->mask; i++)
            if (t->slots[i])
                spool_table_insert(slots, mask, t->slots[i]);
        free(t->slots);
        t->slots = slots;
        t->mask = mask;
    }
    spool_table_insert(t->slots, t->mask, e);
    t->count++;
}

/* spool_table_del - backward-shift deletion keeps probe chains unbroken */
void spool_table_del(struct spool_table *t, uint64_t id)
{
    size_t hole = spool_slot(id, t->mask);
    while (t->slots[hole] && t->slots[hole]->id != id)
        hole = (hole + 1) & t->mask;
    if (t->slots[hole] == NULL)
        return;
    free(t->slots[hole]);
    t->slots[hole] = NULL;
    t->count--;
    for (size_t j = (hole + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
        size_t home = spool_slot(t->slots[j]->id, t->mask);
        /* move j into the hole unless its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            t->slots[j] = NULL;
            hole = j;
        }
    }
}

/* spool_entry_new - all recipients pending, not yet located */
struct spool_entry *spool_entry_new(uint64_t id, uint32_t rcpt_count)
{
    struct spool_entry *e = xcalloc(1, sizeof(*e) + rcpt_count);
    e->id = id;
    e->rcpt_count = rcpt_count;
    e->pending = rcpt_count;
    return e;
}

/* ---------------------------------------------------------------- segments */

/* spool_seg_find - binary search: the list is sorted by seq */
struct spool_segment *spool_seg_find(struct spool *s, uint64_t seq)
{
    size_t lo = 0, hi = s->seg_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].seq == seq)
            return &s->segs[mid];
        if (s->segs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* spool_seg_add - append (callers add in increasing seq order) */
struct spool_segment *spool_seg_add(struct spool *s, uint64_t seq, uint64_t size)
{
    if (s->seg_count == s->seg_cap) {
        s->seg_cap = s->seg_cap ? s->seg_cap * 2 : 16;
        s->segs = xrealloc(s->segs, s->seg_cap * sizeof(*s->segs));
    }
    struct spool_segment *seg = &s->segs[s->seg_count++];
    memset(seg, 0, sizeof(*seg));
    seg->seq = seq;
    seg->size = size;
    seg->read_fd = -1;
    if (seq >= s->next_seq)
        s->next_seq = seq + 1;
    return seg;
}

void spool_seg_pin(struct spool *s, const struct spool_entry *e)
{
    struct spool_segment *seg = spool_seg_find(s, e->segment);
    if (seg) {
        seg->live++;
        seg->live_bytes += e->rec_len;
    }
}

void spool_seg_unpin(struct spool *s, const struct spool_entry *e)
{
    struct spool_segment *seg = spool_seg_find(s, e->segment);
    if (seg && seg->live > 0) {
        seg->live--;
        seg->live_bytes -= seg->live_bytes < e->rec_len ? seg->live_bytes : e->rec_len;
    }
}

/* spool_seg_fd - open for pread on first use */
int spool_seg_fd(struct spool *s, struct spool_segment *seg)
{
    char name[SPOOL_SEG_NAME_SIZE];
    if (seg->read_fd >= 0)
        return seg->read_fd;
    spool_seg_name(seg->seq, name);
    seg->read_fd = openat(s->dir_fd, name, O_RDONLY | O_CLOEXEC);
    if (seg->read_fd < 0)
        log_error("spool: %s/%s: %s", s->dir, name, strerror(errno));
    return seg->read_fd;
}

/* spool_pread_all - exactly len bytes at off; -1 on error or end of file */
static int spool_pread_all(int fd, void *p, size_t len, uint64_t off)
{
    char *at = p;
    while (len > 0) {
        ssize_t n = pread(fd, at, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        at += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* spool_read_record - header + payload, magic, CRC and id checked */
int spool_read_record(struct spool *s, const struct spool_entry *e, struct buf *rec)
{
    struct spool_segment *seg = spool_seg_find(s, e->segment);
    struct spool_rec_header h;
    const unsigned char *p;
    int fd;
    buf_reset(rec);
    if (seg == NULL || (fd = spool_seg_fd(s, seg)) < 0)
        return -1;
    if (rec->limit < e->rec_len || e->rec_len < SPOOL_REC_HEADER + 8)
        return -1;
    /* grow once, then read straight into the buffer */
    if (rec->cap < (size_t)e->rec_len + 1) {
        rec->data = xrealloc(rec->data, (size_t)e->rec_len + 1);
        rec->cap = (size_t)e->rec_len + 1;
    }
    if (spool_pread_all(fd, rec->data, e->rec_len, e->rec_off) < 0) {
        log_error("spool: reading message %016llX: %s", (unsigned long long)e->id, strerror(errno));
        return -1;
    }
    rec->len = e->rec_len;
    rec->data[rec->len] = '\0';
    p = (const unsigned char *)rec->data;
    if (spool_rec_parse_header(p, &h) < 0 || h.type != SPOOL_REC_MSG ||
        h.length != e->rec_len - SPOOL_REC_HEADER ||
        !spool_rec_check_crc(p, p + SPOOL_REC_HEADER, h.length))
        goto corrupt;
    uint64_t id = 0;
    for (int i = 7; i >= 0; i--)
        id = id << 8 | p[SPOOL_REC_HEADER + i];
    if (id != e->id)
        goto corrupt;
    return 0;
corrupt:
    log_error("spool: message %016llX: record in segment %016llx at %llu is corrupt",
              (unsigned long long)e->id, (unsigned long long)e->segment,
              (unsigned long long)e->rec_off);
    buf_reset(rec);
    return -1;
}

/* ------------------------------------------------------------------- handle */

/* spool_env_segment_size - COEX_SPOOL_SEGMENT_SIZE, or the default */
static uint64_t spool_env_segment_size(void)
{
    const char *v = getenv("COEX_SPOOL_SEGMENT_SIZE");
    char *end;
    if (v == NULL || *v == '\0')
        return SPOOL_SEGMENT_SIZE;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end != '\0' || n == 0) {
        log_warn("spool: ignoring COEX_SPOOL_SEGMENT_SIZE=%s", v);
        return SPOOL_SEGMENT_SIZE;
    }
    return n;
}

/* spool_open - directory, lock, segment list, events, flusher */
struct spool *spool_open(const char *dir, struct event_base *base, char *err, size_t errlen)
{
    struct spool *s = xcalloc(1, sizeof(*s));
    s->dir = xstrdup(dir);
    s->dir_fd = s->lock_fd = s->write_fd = -1;
    s->base = base;
    s->next_seq = 1;
    s->segment_size = spool_env_segment_size();
    atomic_init(&s->fault, 0);
    spool_table_init(&s->table);
    s->open = spool_batch_new();
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    pthread_cond_init(&s->done_cond, NULL);

    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    s->lock_fd = openat(s->dir_fd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0 || flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(err, errlen, "%s/lock: %s%s", dir, strerror(errno),
                 errno == EWOULDBLOCK ? " (another process uses this spool)" : "");
        goto fail;
    }
    if (spool_scan(s, err, errlen) < 0)
        goto fail;
    s->done_ev = event_new(base, -1, 0, spool_done_cb, s);
    s->kick_ev = event_new(base, -1, 0, spool_kick_cb, s);
    if (s->done_ev == NULL || s->kick_ev == NULL) {
        snprintf(err, errlen, "%s: cannot create events", dir);
        goto fail;
    }
    if (spool_flusher_start(s) < 0) {
        snprintf(err, errlen, "%s: cannot start the flusher thread", dir);
        goto fail;
    }
    return s;
fail:
    spool_close(s);
    return NULL;
}

/* spool_close - drain, stop the flusher, release everything */
void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    s->closing = 1;
    if (s->thread_started) {
        spool_drain(s);
        spool_flusher_stop(s);
    }
    if (s->done_ev)
        event_free(s->done_ev);
    if (s->kick_ev)
        event_free(s->kick_ev);
    if (s->write_fd >= 0)
        close(s->write_fd);
    for (size_t i = 0; i < s->seg_count; i++)
        if (s->segs[i].read_fd >= 0)
            close(s->segs[i].read_fd);
    free(s->segs);
    spool_table_cleanup(&s->table);
    spool_batch_free(s->open);
    spool_batch_free(s->spare);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->done_cond);
    free(s->dir);
    free(s);
}

/* spool_new_id - microseconds since the epoch << 8, kept above every id seen
 * (recovered ones included), so ids stay unique across restarts */
uint64_t spool_new_id(struct spool *s)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    uint64_t now = ((uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec) << 8;
    s->last_id = now > s->last_id ? now : s->last_id + 1;
    return s->last_id;
}

/* spool_submit - serialise a MSG record into the open batch */
int spool_submit(struct spool *s, struct spool_msg *m, const char *data, size_t len,
                 spool_commit_fn *cb, void *arg)
{
    struct spool_batch *b = s->open;
    size_t rec_rel = b->data.len, data_rel;
    uint32_t pending = 0;
    if (s->closing || cb == NULL)
        return -1;
    if (m->id == 0)
        m->id = spool_new_id(s);
    else if (spool_table_get(&s->table, m->id) != NULL) {
        log_error("spool: message %016llX submitted twice", (unsigned long long)m->id);
        return -1;
    } else if (m->id > s->last_id)
        s->last_id = m->id;
    if (spool_rec_put_msg(&b->data, m, data, len, &data_rel) < 0) {
        log_warn("spool: message refused (limits or batch full): %zu bytes, %zu recipients", len,
                 m->rcpt_count);
        return -1;
    }
    struct spool_entry *e = spool_entry_new(m->id, (uint32_t)m->rcpt_count);
    for (size_t i = 0; i < m->rcpt_count; i++) {
        e->state[i] = (unsigned char)m->rcpts[i].state;
        pending += m->rcpts[i].state == SPOOL_RCPT_PENDING;
    }
    e->pending = pending;
    e->rec_len = (uint32_t)(b->data.len - rec_rel);
    e->data_len = (uint32_t)len;
    spool_table_put(&s->table, e);
    struct spool_batch_entry ent = {
        .kind = SPOOL_BATCH_MSG,
        .id = m->id,
        .rec_rel = rec_rel,
        .rec_len = e->rec_len,
        .data_rel = (uint32_t)data_rel,
        .cb = cb,
        .arg = arg,
    };
    spool_batch_add_entry(b, &ent);
    b->records++;
    /* the final place is fixed at handoff (spool_handoff uses the same rule);
     * only a failure of the batch in flight can still move it */
    int rotate = s->cur_seg == 0 || s->cur_broken || s->cur_off >= s->segment_size;
    m->segment = rotate ? s->next_seq : s->cur_seg;
    m->data_off = (rotate ? 0 : s->cur_off) + rec_rel + data_rel;
    m->data_len = len;
    s->submitted = 1;
    spool_kick(s);
    return 0;
}

/* spool_mark - a RCPT record; the in-memory state changes at once */
int spool_mark(struct spool *s, uint64_t id, size_t rcpt, enum spool_rcpt_state state)
{
    struct spool_entry *e = spool_table_get(&s->table, id);
    if (e == NULL || rcpt >= e->rcpt_count ||
        (state != SPOOL_RCPT_DELIVERED && state != SPOOL_RCPT_FAILED))
        return -1;
    if (e->state[rcpt] != SPOOL_RCPT_PENDING)
        return 0; /* final states are final */
    if (spool_rec_put_rcpt(&s->open->data, id, (uint32_t)rcpt, state) < 0) {
        log_error("spool: message %016llX: cannot record recipient %zu (batch full)",
                  (unsigned long long)id, rcpt);
        return -1;
    }
    s->open->records++;
    e->state[rcpt] = (unsigned char)state;
    if (--e->pending == 0) {
        /* done: it no longer pins its segment (an in-flight copy finds no entry) */
        if (e->located)
            spool_seg_unpin(s, e);
        spool_table_del(&s->table, id);
    }
    spool_kick(s);
    return 0;
}

/* spool_read_data - the bytes of a committed message, verified by CRC */
int spool_read_data(struct spool *s, uint64_t id, struct buf *out)
{
    struct spool_entry *e = spool_table_get(&s->table, id);
    struct buf rec;
    int rc = -1;
    buf_init(&rec, LIMIT_SPOOL_RECORD + SPOOL_REC_HEADER);
    if (e == NULL || !e->located) {
        errno = ENOENT;
        goto fail;
    }
    if (spool_read_record(s, e, &rec) < 0)
        goto fail;
    size_t data_rel = (size_t)(e->data_off - e->rec_off);
    if (data_rel + e->data_len != rec.len) {
        errno = EIO;
        goto fail;
    }
    if (buf_append(out, rec.data + data_rel, e->data_len) < 0) {
        errno = EMSGSIZE;
        goto fail;
    }
    rc = 0;
fail:
    buf_cleanup(&rec);
    return rc;
}

/* spool_get_stats - counters kept by the loop thread */
void spool_get_stats(const struct spool *s, struct spool_stats *st)
{
    *st = s->stats;
    st->live_messages = (unsigned long)s->table.count;
    st->segments = (unsigned long)s->seg_count;
    st->bytes = 0;
    for (size_t i = 0; i < s->seg_count; i++)
        st->bytes += s->segs[i].size;
}

void spool_set_segment_size(struct spool *s, uint64_t bytes)
{
    s->segment_size = bytes ? bytes : SPOOL_SEGMENT_SIZE;
}

void spool_set_fault(struct spool *s, int err)
{
    atomic_store(&s->fault, err);
}
