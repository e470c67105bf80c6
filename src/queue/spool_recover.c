/*
 * spool_recover - find the segment files and replay them after a restart.
 *
 * Segments are read in sequence order, records in file order. A record whose
 * header is not a record (magic, flags, type, length bound), that runs past
 * the end of the file, or whose CRC-32C does not match, ends the replay of
 * that segment: after a crash it is the torn tail of the last write; anywhere
 * else it is corruption, and nothing after it in that file can be trusted to
 * be a record boundary. Later segments are still replayed (each batch starts
 * on a record boundary, and a segment is never appended to after a failure).
 *
 * The latest MSG copy of an id wins (compaction writes copies forward with
 * the recipient states of the moment); RCPT records after it apply on top;
 * a RCPT record for an unknown id refers to a message whose segment was
 * already reclaimed and is ignored. New records always go to a new segment.
 *
 * Does not: repair or rewrite damaged segments; they are reclaimed like any
 * other once nothing live remains in them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "spool_int.h"

/* spool_parse_seg_name - 1 and *seq for "seg-<16 lower-case hex>.log" */
static int spool_parse_seg_name(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    if (strlen(name) != SPOOL_SEG_NAME_LEN || memcmp(name, "seg-", 4) != 0 ||
        memcmp(name + 20, ".log", 4) != 0)
        return 0;
    for (int i = 4; i < 20; i++) {
        char c = name[i];
        if (c >= '0' && c <= '9')
            v = v << 4 | (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v << 4 | (uint64_t)(c - 'a' + 10);
        else
            return 0;
    }
    if (v == 0)
        return 0;
    *seq = v;
    return 1;
}

static int spool_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* spool_scan - the segment files in sequence order, with their sizes */
int spool_scan(struct spool *s, char *err, size_t errlen)
{
    uint64_t *seqs = NULL;
    size_t count = 0, cap = 0;
    int dup_fd = dup(s->dir_fd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    struct dirent *de;
    if (d == NULL) {
        snprintf(err, errlen, "%s: %s", s->dir, strerror(errno));
        if (dup_fd >= 0)
            close(dup_fd);
        goto fail;
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t seq;
        if (!spool_parse_seg_name(de->d_name, &seq))
            continue;
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            seqs = xrealloc(seqs, cap * sizeof(*seqs));
        }
        seqs[count++] = seq;
    }
    closedir(d);
    if (count)
        qsort(seqs, count, sizeof(*seqs), spool_cmp_u64);
    for (size_t i = 0; i < count; i++) {
        char name[SPOOL_SEG_NAME_SIZE];
        struct stat st;
        spool_seg_name(seqs[i], name);
        if (fstatat(s->dir_fd, name, &st, 0) < 0) {
            snprintf(err, errlen, "%s/%s: %s", s->dir, name, strerror(errno));
            goto fail;
        }
        spool_seg_add(s, seqs[i], (uint64_t)st.st_size);
    }
    s->found_max = count ? seqs[count - 1] : 0;
    free(seqs);
    return 0;
fail:
    free(seqs);
    return -1;
}

/* spool_replay_msg - a MSG record: new message or a newer copy of one */
static int spool_replay_msg(struct spool *s, uint64_t seq, uint64_t rec_off,
                            const unsigned char *payload, uint32_t len)
{
    struct spool_msg *m;
    size_t data_rel;
    if (spool_rec_get_msg(payload, len, &m, &data_rel) < 0)
        return -1;
    struct spool_entry *e = spool_table_get(&s->table, m->id);
    if (e && e->rcpt_count != m->rcpt_count) {
        spool_msg_free(m);
        return -1;
    }
    if (e == NULL) {
        e = spool_entry_new(m->id, (uint32_t)m->rcpt_count);
        spool_table_put(&s->table, e);
    }
    e->pending = 0;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        e->state[i] = (unsigned char)m->rcpts[i].state;
        e->pending += m->rcpts[i].state == SPOOL_RCPT_PENDING;
    }
    e->segment = seq;
    e->rec_off = rec_off;
    e->rec_len = SPOOL_REC_HEADER + len;
    e->data_off = rec_off + SPOOL_REC_HEADER + data_rel;
    e->data_len = (uint32_t)m->data_len;
    e->located = 1;
    if (m->id > s->last_id)
        s->last_id = m->id;
    spool_msg_free(m);
    return 0;
}

/* spool_replay_rcpt - a final state for a recipient of a known message */
static int spool_replay_rcpt(struct spool *s, const unsigned char *payload, uint32_t len)
{
    uint64_t id;
    uint32_t rcpt;
    unsigned state;
    if (spool_rec_get_rcpt(payload, len, &id, &rcpt, &state) < 0)
        return -1;
    struct spool_entry *e = spool_table_get(&s->table, id);
    if (e == NULL || rcpt >= e->rcpt_count)
        return 0; /* its message was reclaimed, or lost to corruption */
    if (e->state[rcpt] == SPOOL_RCPT_PENDING) {
        e->state[rcpt] = (unsigned char)state;
        e->pending--;
    }
    return 0;
}

/*
 * spool_replay_records - every valid record of f up to the first bad one;
 * NULL at a clean end, else why it stopped (*torn = the bad record reaches
 * the end of the file, as the last write before a crash does)
 */
static const char *spool_replay_records(struct spool *s, struct spool_segment *seg, FILE *f,
                                        struct buf *payload, uint64_t *off, int *torn)
{
    unsigned char header[SPOOL_REC_HEADER];
    struct spool_rec_header h;
    while (*off < seg->size) {
        uint64_t left = seg->size - *off;
        *torn = 1;
        if (left < SPOOL_REC_HEADER || fread(header, 1, sizeof(header), f) != sizeof(header))
            return "short header";
        if (spool_rec_parse_header(header, &h) < 0) {
            *torn = 0;
            return "bad header";
        }
        if (left - SPOOL_REC_HEADER < h.length)
            return "record runs past the end of the file";
        buf_reset(payload);
        if (payload->cap < (size_t)h.length + 1) {
            payload->data = xrealloc(payload->data, (size_t)h.length + 1);
            payload->cap = (size_t)h.length + 1;
        }
        if (fread(payload->data, 1, h.length, f) != h.length)
            return "short read";
        payload->len = h.length;
        const unsigned char *p = (const unsigned char *)payload->data;
        *torn = left - SPOOL_REC_HEADER == h.length;
        if (!spool_rec_check_crc(header, p, h.length))
            return "CRC mismatch";
        *torn = 0;
        int rc = h.type == SPOOL_REC_MSG ? spool_replay_msg(s, seg->seq, *off, p, h.length)
                                         : spool_replay_rcpt(s, p, h.length);
        if (rc < 0)
            return "undecodable payload";
        s->stats.records++;
        *off += SPOOL_REC_HEADER + h.length;
    }
    return NULL;
}

/* spool_replay_segment - replay one file; count and log a bad tail */
static void spool_replay_segment(struct spool *s, struct spool_segment *seg, struct buf *payload)
{
    char name[SPOOL_SEG_NAME_SIZE];
    uint64_t off = 0;
    int torn = 0;
    const char *why = "cannot open";
    int fd = spool_seg_fd(s, seg), copy = fd >= 0 ? dup(fd) : -1;
    FILE *f = copy >= 0 && lseek(copy, 0, SEEK_SET) == 0 ? fdopen(copy, "rb") : NULL;
    spool_seg_name(seg->seq, name);
    if (f == NULL) {
        if (copy >= 0)
            close(copy);
    } else {
        why = spool_replay_records(s, seg, f, payload, &off, &torn);
        fclose(f);
    }
    if (why == NULL)
        return;
    s->stats.bad_tails++;
    if (torn)
        log_warn("spool: %s/%s: torn record at offset %llu of %llu (%s), as after a crash: "
                 "ignored",
                 s->dir, name, (unsigned long long)off, (unsigned long long)seg->size, why);
    else
        log_error("spool: %s/%s: corrupt record at offset %llu of %llu (%s): rest of the "
                  "segment ignored",
                  s->dir, name, (unsigned long long)off, (unsigned long long)seg->size, why);
}

static int spool_cmp_entry(const void *a, const void *b)
{
    const struct spool_entry *x = *(struct spool_entry *const *)a;
    const struct spool_entry *y = *(struct spool_entry *const *)b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* spool_report - hand each live message to fn, in id (= arrival) order */
static long spool_report(struct spool *s, void (*fn)(void *arg, const struct spool_msg *m),
                         void *arg)
{
    struct spool_entry **live = xcalloc(s->table.count + 1, sizeof(*live));
    size_t count = 0;
    long reported = 0;
    struct buf rec;
    buf_init(&rec, LIMIT_SPOOL_RECORD + SPOOL_REC_HEADER);
    for (size_t i = 0; i <= s->table.mask; i++)
        if (s->table.slots[i])
            live[count++] = s->table.slots[i];
    qsort(live, count, sizeof(*live), spool_cmp_entry);
    for (size_t i = 0; i < count; i++) {
        struct spool_entry *e = live[i];
        struct spool_msg *m = NULL;
        size_t data_rel;
        if (spool_read_record(s, e, &rec) < 0 ||
            spool_rec_get_msg((const unsigned char *)rec.data + SPOOL_REC_HEADER,
                              rec.len - SPOOL_REC_HEADER, &m, &data_rel) < 0) {
            log_error("spool: message %016llX cannot be read back; not recovered",
                      (unsigned long long)e->id);
            continue;
        }
        for (size_t r = 0; r < m->rcpt_count; r++)
            m->rcpts[r].state = (enum spool_rcpt_state)e->state[r];
        m->segment = e->segment;
        m->data_off = e->data_off;
        m->data_len = e->data_len;
        if (fn)
            fn(arg, m);
        spool_msg_free(m);
        reported++;
    }
    buf_cleanup(&rec);
    free(live);
    return reported;
}

/* spool_recover - replay, rebuild the tables, report, then tidy up */
long spool_recover(struct spool *s, void (*fn)(void *arg, const struct spool_msg *m), void *arg)
{
    struct buf payload;
    if (s->recovered || s->submitted || s->closing)
        return -1;
    s->recovered = 1;
    buf_init(&payload, LIMIT_SPOOL_RECORD);
    for (size_t i = 0; i < s->seg_count; i++)
        spool_replay_segment(s, &s->segs[i], &payload);
    buf_cleanup(&payload);

    /* finished messages are forgotten; the others pin their segments */
    uint64_t *done = xcalloc(s->table.count + 1, sizeof(*done));
    size_t done_count = 0;
    for (size_t i = 0; i <= s->table.mask; i++) {
        struct spool_entry *e = s->table.slots[i];
        if (e && e->pending == 0)
            done[done_count++] = e->id;
        else if (e)
            spool_seg_pin(s, e);
    }
    for (size_t i = 0; i < done_count; i++)
        spool_table_del(&s->table, done[i]);
    free(done);
    long live = spool_report(s, fn, arg);
    log_info("spool: %s: recovered %ld live messages from %zu segments (%llu records, %lu "
             "damaged segments)",
             s->dir, live, s->seg_count, s->stats.records, s->stats.bad_tails);
    spool_maintain(s);
    return live;
}
