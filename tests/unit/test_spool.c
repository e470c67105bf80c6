/*
 * test_spool - the durable queue (src/queue/spool*.c) against a real
 * directory: every test gets its own mkdtemp directory under /tmp, removed
 * afterwards, and a real event loop with the real flusher thread.
 *
 * Covered: the codec (CRC-32C check value, ids), group commit (many submits
 * share few fdatasyncs), exact envelopes and bytes (NUL, CRLF.CRLF) after a
 * reopen, recipient marks, a torn tail, a flipped byte in a middle record,
 * rotation, reclamation (oldest first, never a live segment), compaction, a
 * write error through the test hook and a real ENOSPC on a tiny tmpfs (root
 * only), spool_close with data pending, limits, the directory lock, and a
 * child process killed with SIGKILL mid-stream: every id it acknowledged
 * must come back ("250 never lost").
 *
 * COEX_SPOOL_BENCH=1 also runs a throughput measurement (printed, never
 * asserted): 20,000 submits of 4 KiB with COEX_SPOOL_BENCH_WINDOW in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "spool.h"
#include "spool_int.h"

#define TEST_DATA_LIMIT ((size_t)1 << 20)
#define TEST_DEADLINE_SECONDS 60
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#else
#define UNDER_TSAN 0
#endif

/* ---------------------------------------------------------------- fixture */

struct fx {
    char dir[64];
    struct event_base *base;
    struct event *keepalive; /* so EVLOOP_ONCE sleeps instead of spinning */
    struct spool *s;
};

static void keepalive_cb(int fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void rm_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

static void fx_open(struct fx *fx)
{
    char err[256];
    fx->s = spool_open(fx->dir, fx->base, err, sizeof(err));
    if (fx->s == NULL)
        fail_msg("spool_open: %s", err);
}

static int fx_setup(void **state)
{
    struct fx *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_spool.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    fx->base = event_base_new();
    struct timeval tv = {0, 50000};
    fx->keepalive = event_new(fx->base, -1, EV_PERSIST, keepalive_cb, NULL);
    event_add(fx->keepalive, &tv);
    *state = fx;
    return 0;
}

static int fx_teardown(void **state)
{
    struct fx *fx = *state;
    spool_close(fx->s);
    event_free(fx->keepalive);
    event_base_free(fx->base);
    rm_tree(fx->dir);
    free(fx);
    return 0;
}

/* run_until - run the loop until *counter reaches target */
static void run_until(struct fx *fx, const unsigned long *counter, unsigned long target)
{
    time_t start = time(NULL);
    while (*counter < target) {
        if (time(NULL) - start > TEST_DEADLINE_SECONDS)
            fail_msg("timed out: %lu of %lu", *counter, target);
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
}

static int seg_files(const char *dir, char highest[SPOOL_SEG_NAME_SIZE]);

/* run_until_segments - run the loop until at most n segments are left, on disk too */
static void run_until_segments(struct fx *fx, unsigned long n)
{
    struct spool_stats st;
    time_t start = time(NULL);
    for (;;) {
        spool_get_stats(fx->s, &st);
        if (st.segments <= n && seg_files(fx->dir, NULL) <= (int)n)
            return;
        if (time(NULL) - start > TEST_DEADLINE_SECONDS)
            fail_msg("timed out: %lu segments, want %lu", st.segments, n);
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
}

/* settle - run the loop until no batch has completed for a few idle rounds */
static void settle(struct fx *fx)
{
    struct spool_stats st;
    unsigned long long last = (unsigned long long)-1;
    int quiet = 0;
    time_t start = time(NULL);
    while (quiet < 4) {
        assert_true(time(NULL) - start < TEST_DEADLINE_SECONDS);
        event_base_loop(fx->base, EVLOOP_ONCE);
        spool_get_stats(fx->s, &st);
        quiet = st.batches == last && seg_files(fx->dir, NULL) == (int)st.segments ? quiet + 1 : 0;
        last = st.batches;
    }
}

/* seg_files - segment files on disk; *highest gets the largest name */
static int seg_files(const char *dir, char highest[SPOOL_SEG_NAME_SIZE])
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int count = 0;
    if (highest)
        highest[0] = '\0';
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "seg-", 4) != 0 || strlen(de->d_name) != SPOOL_SEG_NAME_LEN)
            continue;
        count++;
        if (highest && strcmp(de->d_name, highest) > 0)
            memcpy(highest, de->d_name, SPOOL_SEG_NAME_SIZE);
    }
    if (d)
        closedir(d);
    return count;
}

static int seg_exists(const char *dir, uint64_t seq)
{
    char name[SPOOL_SEG_NAME_SIZE], path[512];
    struct stat st;
    spool_seg_name(seq, name);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

/* ------------------------------------------------------------- messages */

/* one submitted message as the test remembers it */
struct sent {
    unsigned seq;
    uint64_t id;
    size_t rcpts;
    size_t len;
    uint64_t segment, data_off; /* where spool_submit said the bytes go */
    int fired, ok;
    unsigned long *fired_total;
};

static void on_commit(void *arg, int ok)
{
    struct sent *t = arg;
    assert_int_equal(t->fired, 0);
    t->fired = 1;
    t->ok = ok;
    (*t->fired_total)++;
}

/* make_msg - an envelope that varies every field with seq */
static struct spool_msg *make_msg(unsigned seq, size_t rcpts)
{
    char tmp[128];
    struct spool_msg *m = xcalloc(1, sizeof(*m));
    m->arrival = 1700000000 + (time_t)seq;
    m->route = xstrdup(seq % 2 ? "exo-outbound" : "inbound");
    snprintf(tmp, sizeof(tmp), "sender%u@target.example", seq);
    m->mail_from = xstrdup(seq % 5 == 0 ? "" : tmp);
    snprintf(tmp, sizeof(tmp), "ENV%u+2Bx", seq);
    m->envid = seq % 3 == 0 ? NULL : xstrdup(tmp);
    m->ret_full = (int)(seq % 3) - 1; /* -1 not given, 0 HDRS, 1 FULL */
    m->is_bounce = seq % 5 == 0;
    m->rcpt_count = rcpts;
    m->rcpts = xcalloc(rcpts, sizeof(*m->rcpts));
    for (size_t i = 0; i < rcpts; i++) {
        snprintf(tmp, sizeof(tmp), "r%zu.%u@source.example", i, seq);
        m->rcpts[i].addr = xstrdup(tmp);
        snprintf(tmp, sizeof(tmp), "rfc822;r%zu+2B%u@target.example", i, seq);
        m->rcpts[i].orcpt = i % 2 ? xstrdup(tmp) : NULL;
        m->rcpts[i].notify = i % 2 ? SPOOL_NOTIFY_SUCCESS | SPOOL_NOTIFY_FAILURE : 0;
        m->rcpts[i].state = SPOOL_RCPT_PENDING;
    }
    return m;
}

/* make_data - deterministic bytes with a NUL and a CRLF.CRLF inside */
static char *make_data(unsigned seq, size_t len)
{
    char *d = xmalloc(len + 1);
    uint32_t x = seq * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        d[i] = (char)(x >> 16);
    }
    if (len >= 40) {
        memcpy(d, "Subject: t\r\n\r\n", 14);
        d[16] = '\0';
        memcpy(d + 20, "\r\n.\r\n", 5);
        memcpy(d + len - 5, "\r\n.\r\n", 5);
    }
    d[len] = '\0';
    return d;
}

/* seq_of - the seq a recovered message was made with (from rcpt 0) */
static unsigned seq_of(const struct spool_msg *m)
{
    const char *dot = strchr(m->rcpts[0].addr, '.');
    assert_non_null(dot);
    return (unsigned)strtoul(dot + 1, NULL, 10);
}

/* submit - one message; t->id set */
static void submit(struct fx *fx, struct sent *t, unsigned seq, size_t rcpts, size_t len,
                   unsigned long *fired_total)
{
    struct spool_msg *m = make_msg(seq, rcpts);
    char *data = make_data(seq, len);
    memset(t, 0, sizeof(*t));
    t->seq = seq;
    t->rcpts = rcpts;
    t->len = len;
    t->fired_total = fired_total;
    assert_int_equal(spool_submit(fx->s, m, data, len, on_commit, t), 0);
    assert_int_not_equal(m->id, 0);
    assert_int_equal(m->data_len, len);
    t->id = m->id;
    t->segment = m->segment;
    t->data_off = m->data_off;
    spool_msg_free(m);
    free(data);
}

/* submit_wait - submit one message alone in its batch and wait for it */
static void submit_wait(struct fx *fx, struct sent *t, unsigned seq, size_t rcpts, size_t len)
{
    unsigned long fired = 0;
    submit(fx, t, seq, rcpts, len, &fired);
    run_until(fx, &fired, 1);
    assert_int_equal(t->ok, 1);
    t->fired_total = NULL;
}

/* what recovery handed back */
struct found {
    struct spool_msg **msgs;
    size_t count, cap;
};

static void collect(void *arg, const struct spool_msg *m)
{
    struct found *f = arg;
    if (f->count == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->msgs = xrealloc(f->msgs, f->cap * sizeof(*f->msgs));
    }
    f->msgs[f->count++] = spool_msg_dup(m);
}

static void found_free(struct found *f)
{
    for (size_t i = 0; i < f->count; i++)
        spool_msg_free(f->msgs[i]);
    free(f->msgs);
    memset(f, 0, sizeof(*f));
}

static const struct spool_msg *found_get(const struct found *f, uint64_t id)
{
    for (size_t i = 0; i < f->count; i++)
        if (f->msgs[i]->id == id)
            return f->msgs[i];
    return NULL;
}

/* reopen - close, open again, recover into f */
static void reopen(struct fx *fx, struct found *f)
{
    spool_close(fx->s);
    fx_open(fx);
    long live = spool_recover(fx->s, collect, f);
    assert_int_equal(live, (long)f->count);
    for (size_t i = 1; i < f->count; i++)
        assert_true(f->msgs[i - 1]->id < f->msgs[i]->id); /* arrival (id) order */
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (want == NULL)
        assert_null(got);
    else
        assert_string_equal(got, want);
}

/* check_msg - envelope as sent (states as given), bytes exact */
static void check_msg(struct fx *fx, const struct spool_msg *got, const struct sent *t,
                      const enum spool_rcpt_state *states)
{
    struct spool_msg *want = make_msg(t->seq, t->rcpts);
    char *data = make_data(t->seq, t->len);
    struct buf out;
    assert_int_equal(got->id, t->id);
    assert_int_equal(got->arrival, want->arrival);
    assert_string_equal(got->route, want->route);
    assert_string_equal(got->mail_from, want->mail_from);
    assert_str_or_null(got->envid, want->envid);
    assert_int_equal(got->ret_full, want->ret_full);
    assert_int_equal(got->is_bounce, want->is_bounce);
    assert_int_equal(got->rcpt_count, want->rcpt_count);
    for (size_t i = 0; i < want->rcpt_count; i++) {
        assert_string_equal(got->rcpts[i].addr, want->rcpts[i].addr);
        assert_str_or_null(got->rcpts[i].orcpt, want->rcpts[i].orcpt);
        assert_int_equal(got->rcpts[i].notify, want->rcpts[i].notify);
        assert_int_equal(got->rcpts[i].state, states ? states[i] : SPOOL_RCPT_PENDING);
    }
    assert_int_equal(got->data_len, t->len);
    buf_init(&out, TEST_DATA_LIMIT);
    assert_int_equal(spool_read_data(fx->s, t->id, &out), 0);
    assert_int_equal(out.len, t->len);
    assert_memory_equal(out.data, data, t->len);
    buf_cleanup(&out);
    spool_msg_free(want);
    free(data);
}

/* ------------------------------------------------------------------ tests */

static void test_codec(void **state)
{
    char id[SPOOL_ID_SIZE];
    (void)state;
    assert_int_equal(spool_crc32c(0, "123456789", 9), 0xE3069283u); /* the check value */
    assert_int_equal(spool_crc32c(spool_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    spool_format_id(0x0123456789ABCDEFull, id);
    assert_string_equal(id, "0123456789ABCDEF");
    spool_format_id(0xA, id);
    assert_string_equal(id, "000000000000000A");
}

/* the submit timer: one message per loop iteration, N in all */
struct feeder {
    struct fx *fx;
    struct event *ev;
    struct sent *sent;
    unsigned n, next;
    unsigned long fired;
};

static void feeder_cb(int fd, short what, void *arg)
{
    struct feeder *fd_ = arg;
    struct timeval zero = {0, 0};
    (void)fd;
    (void)what;
    submit(fd_->fx, &fd_->sent[fd_->next], fd_->next, 1 + fd_->next % 3, 300 + fd_->next,
           &fd_->fired);
    if (++fd_->next < fd_->n)
        event_add(fd_->ev, &zero);
}

static void test_group_commit_and_recover(void **state)
{
    struct fx *fx = *state;
    struct feeder f = {.fx = fx, .n = 300};
    struct timeval zero = {0, 0};
    struct spool_stats st;
    struct found found = {0};
    fx_open(fx);
    assert_int_equal(spool_recover(fx->s, collect, &found), 0);
    f.sent = xcalloc(f.n, sizeof(*f.sent));
    f.ev = event_new(fx->base, -1, 0, feeder_cb, &f);
    event_add(f.ev, &zero);
    run_until(fx, &f.fired, f.n);
    spool_get_stats(fx->s, &st);
    print_message("      %u messages submitted one per loop iteration: %llu batches\n", f.n,
                  st.batches);
    assert_true(st.batches < f.n);
    assert_int_equal(st.records, f.n);
    assert_int_equal(st.live_messages, f.n);
    for (unsigned i = 0; i < f.n; i++)
        assert_int_equal(f.sent[i].ok, 1);
    reopen(fx, &found);
    assert_int_equal(found.count, f.n);
    for (unsigned i = 0; i < f.n; i++) {
        const struct spool_msg *m = found_get(&found, f.sent[i].id);
        assert_non_null(m);
        check_msg(fx, m, &f.sent[i], NULL);
    }
    /* ids stay unique across restarts */
    struct sent later;
    submit_wait(fx, &later, 9999, 1, 100);
    assert_true(later.id > found.msgs[found.count - 1]->id);
    event_free(f.ev);
    free(f.sent);
    found_free(&found);
}

static void test_marks(void **state)
{
    struct fx *fx = *state;
    struct sent t[4];
    struct found found = {0};
    unsigned long fired = 0;
    fx_open(fx);
    assert_int_equal(spool_recover(fx->s, NULL, NULL), 0);
    submit(fx, &t[0], 1, 1, 500, &fired); /* delivered */
    submit(fx, &t[1], 2, 2, 500, &fired); /* one failed, one delivered */
    submit(fx, &t[2], 3, 3, 500, &fired); /* 1 of 3 marked */
    submit(fx, &t[3], 4, 1, 500, &fired); /* untouched */
    run_until(fx, &fired, 4);
    assert_int_equal(spool_mark(fx->s, t[0].id, 0, SPOOL_RCPT_DELIVERED), 0);
    assert_int_equal(spool_mark(fx->s, t[1].id, 0, SPOOL_RCPT_FAILED), 0);
    assert_int_equal(spool_mark(fx->s, t[1].id, 1, SPOOL_RCPT_DELIVERED), 0);
    assert_int_equal(spool_mark(fx->s, t[2].id, 1, SPOOL_RCPT_FAILED), 0);
    assert_int_equal(spool_mark(fx->s, t[2].id, 1, SPOOL_RCPT_DELIVERED), 0); /* no-op */
    /* refusals: unknown id, finished message, index, state */
    assert_int_equal(spool_mark(fx->s, 12345, 0, SPOOL_RCPT_DELIVERED), -1);
    assert_int_equal(spool_mark(fx->s, t[0].id, 0, SPOOL_RCPT_DELIVERED), -1);
    assert_int_equal(spool_mark(fx->s, t[2].id, 3, SPOOL_RCPT_DELIVERED), -1);
    assert_int_equal(spool_mark(fx->s, t[2].id, 0, SPOOL_RCPT_PENDING), -1);
    struct buf out;
    buf_init(&out, TEST_DATA_LIMIT);
    assert_int_equal(spool_read_data(fx->s, t[0].id, &out), -1); /* finished: gone */
    buf_cleanup(&out);
    reopen(fx, &found);
    assert_int_equal(found.count, 2);
    static const enum spool_rcpt_state want2[] = {SPOOL_RCPT_PENDING, SPOOL_RCPT_FAILED,
                                                  SPOOL_RCPT_PENDING};
    check_msg(fx, found_get(&found, t[2].id), &t[2], want2);
    check_msg(fx, found_get(&found, t[3].id), &t[3], NULL);
    /* the mark survives a second restart too */
    found_free(&found);
    reopen(fx, &found);
    assert_int_equal(found.count, 2);
    check_msg(fx, found_get(&found, t[2].id), &t[2], want2);
    found_free(&found);
}

static void test_torn_tail(void **state)
{
    struct fx *fx = *state;
    struct sent t[6];
    struct found found = {0};
    char name[SPOOL_SEG_NAME_SIZE], path[512];
    struct stat st;
    struct spool_stats stats;
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    for (unsigned i = 0; i < 5; i++)
        submit_wait(fx, &t[i], i + 1, 2, 1000);
    spool_close(fx->s);
    fx->s = NULL;
    /* cut the last record in the middle, as a crash during write() would */
    assert_int_equal(seg_files(fx->dir, name), 1);
    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size - 500), 0);
    reopen(fx, &found);
    spool_get_stats(fx->s, &stats);
    assert_int_equal(stats.bad_tails, 1);
    assert_int_equal(found.count, 4);
    for (unsigned i = 0; i < 4; i++)
        check_msg(fx, found_get(&found, t[i].id), &t[i], NULL);
    assert_null(found_get(&found, t[4].id));
    /* new messages go to a new segment and survive another restart */
    submit_wait(fx, &t[5], 6, 1, 800);
    assert_true(t[5].id > t[4].id);
    assert_int_equal(seg_files(fx->dir, NULL), 2);
    found_free(&found);
    reopen(fx, &found);
    assert_int_equal(found.count, 5);
    check_msg(fx, found_get(&found, t[5].id), &t[5], NULL);
    found_free(&found);
}

static void test_flipped_byte(void **state)
{
    struct fx *fx = *state;
    struct sent t[5];
    struct found found = {0};
    unsigned long fired = 0;
    char name[SPOOL_SEG_NAME_SIZE], path[512];
    struct spool_stats st;
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    spool_set_segment_size(fx->s, 1); /* every batch starts a segment */
    submit(fx, &t[0], 1, 1, 700, &fired);
    submit(fx, &t[1], 2, 1, 700, &fired);
    submit(fx, &t[2], 3, 1, 700, &fired);
    run_until(fx, &fired, 3);          /* one batch: segment 1 */
    submit_wait(fx, &t[3], 4, 2, 700); /* segment 2 */
    spool_close(fx->s);
    fx->s = NULL;
    assert_int_equal(seg_files(fx->dir, NULL), 2);
    /* flip one byte of the second record's message bytes */
    spool_seg_name(1, name);
    snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(t[1].segment, 1);
    off_t at = (off_t)(t[1].data_off + 100); /* inside record 2's message bytes */
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
    reopen(fx, &found);
    spool_get_stats(fx->s, &st);
    assert_int_equal(st.bad_tails, 1);
    assert_int_equal(found.count, 2);
    check_msg(fx, found_get(&found, t[0].id), &t[0], NULL);
    check_msg(fx, found_get(&found, t[3].id), &t[3], NULL);
    assert_null(found_get(&found, t[1].id)); /* the damaged record */
    assert_null(found_get(&found, t[2].id)); /* the rest of that segment */
    submit_wait(fx, &t[4], 5, 1, 100);
    found_free(&found);
}

static void test_rotation(void **state)
{
    struct fx *fx = *state;
    struct sent t[20];
    struct found found = {0};
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    spool_set_segment_size(fx->s, 4096);
    for (unsigned i = 0; i < 20; i++)
        submit_wait(fx, &t[i], i, 1, 2000);
    assert_true(seg_files(fx->dir, NULL) >= 8);
    reopen(fx, &found);
    assert_int_equal(found.count, 20);
    for (unsigned i = 0; i < 20; i++)
        check_msg(fx, found_get(&found, t[i].id), &t[i], NULL);
    found_free(&found);
}

static void test_reclaim(void **state)
{
    struct fx *fx = *state;
    struct sent t[6];
    struct found found = {0};
    char highest[SPOOL_SEG_NAME_SIZE];
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    spool_set_segment_size(fx->s, 1);
    for (unsigned i = 0; i < 6; i++)
        submit_wait(fx, &t[i], i, 1, 300); /* segments 1..6 */
    assert_int_equal(seg_files(fx->dir, NULL), 6);
    for (unsigned i = 0; i < 6; i++)
        assert_int_equal(spool_mark(fx->s, t[i].id, 0, SPOOL_RCPT_DELIVERED), 0);
    /* the marks go to segment 7; then 1..6 hold nothing live and vanish */
    run_until_segments(fx, 1);
    assert_int_equal(seg_files(fx->dir, highest), 1);
    assert_string_equal(highest, "seg-0000000000000007.log");
    reopen(fx, &found);
    assert_int_equal(found.count, 0);
    found_free(&found);
}

static void test_reclaim_keeps_live(void **state)
{
    struct fx *fx = *state;
    enum { PINNED = 5 };
    struct sent pinned[PINNED], t[3];
    struct found found = {0};
    unsigned long fired = 0;
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    spool_set_segment_size(fx->s, 1);
    for (unsigned i = 0; i < PINNED; i++)
        submit(fx, &pinned[i], 100 + i, 1, 200, &fired);
    run_until(fx, &fired, PINNED); /* segment 1: all live, nothing to gain by compaction */
    for (unsigned i = 0; i < 3; i++)
        submit_wait(fx, &t[i], i, 1, 200); /* segments 2..4 */
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(spool_mark(fx->s, t[i].id, 0, SPOOL_RCPT_DELIVERED), 0);
    settle(fx); /* the marks go to segment 5 */
    /* segment 1 is pinned, so 2..4 stay too although they are finished: they
     * may hold RCPT records about segment 1 (oldest first, always) */
    assert_int_equal(seg_files(fx->dir, NULL), 5);
    for (uint64_t seq = 1; seq <= 5; seq++)
        assert_true(seg_exists(fx->dir, seq));
    reopen(fx, &found);
    assert_int_equal(found.count, PINNED);
    for (unsigned i = 0; i < PINNED; i++)
        check_msg(fx, found_get(&found, pinned[i].id), &pinned[i], NULL);
    /* finish them: everything but the current segment goes */
    for (unsigned i = 0; i < PINNED; i++)
        assert_int_equal(spool_mark(fx->s, pinned[i].id, 0, SPOOL_RCPT_FAILED), 0);
    run_until_segments(fx, 1);
    assert_false(seg_exists(fx->dir, 5));
    found_free(&found);
}

static void test_compaction(void **state)
{
    struct fx *fx = *state;
    struct sent longlived, first, t[24];
    struct found found = {0};
    struct spool_stats st;
    unsigned long fired = 0;
    static const enum spool_rcpt_state want[] = {SPOOL_RCPT_PENDING, SPOOL_RCPT_DELIVERED,
                                                 SPOOL_RCPT_PENDING};
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    spool_set_segment_size(fx->s, 8192);
    submit(fx, &longlived, 77, 3, 300, &fired);
    submit(fx, &first, 78, 1, 3000, &fired);
    run_until(fx, &fired, 2); /* segment 1 */
    assert_int_equal(spool_mark(fx->s, longlived.id, 1, SPOOL_RCPT_DELIVERED), 0);
    assert_int_equal(spool_mark(fx->s, first.id, 0, SPOOL_RCPT_DELIVERED), 0);
    for (unsigned i = 0; i < 24; i++) {
        submit_wait(fx, &t[i], i, 1, 3000);
        assert_int_equal(spool_mark(fx->s, t[i].id, 0, SPOOL_RCPT_DELIVERED), 0);
    }
    settle(fx);
    spool_get_stats(fx->s, &st);
    print_message("      after 25 x 3 KiB through 8 KiB segments: %lu segments, %llu bytes\n",
                  st.segments, st.bytes);
    assert_false(seg_exists(fx->dir, 1));
    assert_false(seg_exists(fx->dir, 2));
    assert_true(st.segments <= 4);
    assert_int_equal(st.live_messages, 1);
    struct buf out;
    buf_init(&out, TEST_DATA_LIMIT);
    assert_int_equal(spool_read_data(fx->s, longlived.id, &out), 0); /* from its new place */
    assert_int_equal(out.len, 300);
    buf_cleanup(&out);
    reopen(fx, &found);
    assert_int_equal(found.count, 1);
    check_msg(fx, found.msgs[0], &longlived, want);
    assert_true(found.msgs[0]->segment > 2);
    found_free(&found);
}

static void test_write_error_hook(void **state)
{
    struct fx *fx = *state;
    struct sent t[4];
    struct found found = {0};
    unsigned long fired = 0;
    struct spool_stats st;
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    submit_wait(fx, &t[0], 1, 1, 400);
    spool_set_fault(fx->s, ENOSPC);
    submit(fx, &t[1], 2, 1, 400, &fired);
    submit(fx, &t[2], 3, 1, 400, &fired);
    run_until(fx, &fired, 2);
    assert_int_equal(t[1].ok, 0);
    assert_int_equal(t[2].ok, 0);
    spool_get_stats(fx->s, &st);
    assert_int_equal(st.live_messages, 1);
    spool_set_fault(fx->s, 0);
    submit_wait(fx, &t[3], 4, 1, 400);
    assert_int_equal(seg_files(fx->dir, NULL), 2); /* the broken segment is left behind */
    reopen(fx, &found);
    assert_int_equal(found.count, 2);
    check_msg(fx, found_get(&found, t[0].id), &t[0], NULL);
    check_msg(fx, found_get(&found, t[3].id), &t[3], NULL);
    found_free(&found);
}

static void test_disk_full(void **state)
{
    struct fx *fx = *state;
    enum { MAX = 64 };
    struct sent t[MAX];
    struct found found = {0};
    unsigned n = 0, ok = 0, failed = 0;
    if (geteuid() != 0 || mount("tmpfs", fx->dir, "tmpfs", 0, "size=128k,mode=0700") < 0) {
        print_message("      (skipped: needs root to mount a tiny tmpfs)\n");
        skip();
    }
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    while (n < MAX && failed < 2) {
        unsigned long fired = 0;
        submit(fx, &t[n], n, 1, 16000, &fired);
        run_until(fx, &fired, 1);
        ok += t[n].ok;
        failed += !t[n].ok;
        n++;
    }
    assert_true(ok > 0);
    assert_int_equal(failed, 2);
    reopen(fx, &found);
    assert_int_equal(found.count, ok); /* every acknowledged one, none of the refused */
    for (unsigned i = 0; i < n; i++) {
        const struct spool_msg *m = found_get(&found, t[i].id);
        if (t[i].ok)
            check_msg(fx, m, &t[i], NULL);
        else
            assert_null(m);
    }
    found_free(&found);
    spool_close(fx->s);
    fx->s = NULL;
    assert_int_equal(umount(fx->dir), 0);
}

static void test_close_flushes(void **state)
{
    struct fx *fx = *state;
    struct sent t[3];
    struct found found = {0};
    unsigned long fired = 0;
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    for (unsigned i = 0; i < 3; i++)
        submit(fx, &t[i], i, 1, 600, &fired);
    spool_close(fx->s); /* the loop never ran */
    fx->s = NULL;
    assert_int_equal(fired, 3);
    for (unsigned i = 0; i < 3; i++)
        assert_int_equal(t[i].ok, 1);
    fx_open(fx);
    assert_int_equal(spool_recover(fx->s, collect, &found), 3);
    for (unsigned i = 0; i < 3; i++)
        check_msg(fx, found_get(&found, t[i].id), &t[i], NULL);
    found_free(&found);
}

static void test_limits_and_lock(void **state)
{
    struct fx *fx = *state;
    char err[256];
    char data[16] = "x";
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    assert_int_equal(spool_recover(fx->s, NULL, NULL), -1); /* once only */
    assert_null(spool_open(fx->dir, fx->base, err, sizeof(err)));
    assert_non_null(strstr(err, "another process"));

    struct spool_msg *m = make_msg(1, 1);
    assert_int_equal(spool_submit(fx->s, m, data, LIMIT_SPOOL_DATA + 1, on_commit, NULL), -1);
    m->id = 0;
    m->rcpt_count = 0;
    assert_int_equal(spool_submit(fx->s, m, data, 1, on_commit, NULL), -1);
    m->rcpt_count = 1;
    spool_msg_free(m);
    m = make_msg(2, LIMIT_SPOOL_RCPTS + 1);
    assert_int_equal(spool_submit(fx->s, m, data, 1, on_commit, NULL), -1);
    spool_msg_free(m);
    m = make_msg(3, 1);
    char *long_route = xmalloc(LIMIT_SPOOL_STRING + 2);
    memset(long_route, 'r', LIMIT_SPOOL_STRING + 1);
    long_route[LIMIT_SPOOL_STRING + 1] = '\0';
    free(m->route);
    m->route = long_route;
    assert_int_equal(spool_submit(fx->s, m, data, 1, on_commit, NULL), -1);
    spool_msg_free(m);

    /* a caller-chosen id (from spool_new_id) is kept; a second use is refused */
    struct sent t;
    unsigned long fired = 0;
    uint64_t a = spool_new_id(fx->s), b = spool_new_id(fx->s);
    assert_true(b > a);
    m = make_msg(4, 1);
    m->id = b;
    memset(&t, 0, sizeof(t));
    t.fired_total = &fired;
    assert_int_equal(spool_submit(fx->s, m, data, 1, on_commit, &t), 0);
    assert_int_equal(m->id, b);
    assert_int_equal(spool_submit(fx->s, m, data, 1, on_commit, &t), -1);
    spool_msg_free(m);
    run_until(fx, &fired, 1);
    assert_int_equal(t.ok, 1);
    assert_true(spool_new_id(fx->s) > b);
}

static void test_unrecovered_segments_kept(void **state)
{
    struct fx *fx = *state;
    struct sent t[2];
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    submit_wait(fx, &t[0], 1, 1, 100); /* segment 1 */
    spool_close(fx->s);
    fx_open(fx);                       /* no spool_recover: segment 1 was never replayed */
    submit_wait(fx, &t[1], 2, 1, 100); /* segment 2 */
    assert_int_equal(spool_mark(fx->s, t[1].id, 0, SPOOL_RCPT_DELIVERED), 0);
    settle(fx);
    assert_true(seg_exists(fx->dir, 1));
}

/* ------------------------------------------------------------ crash test */

struct child_state {
    int pipe_fd;
    unsigned next_seq;
    unsigned long fired;
};

struct child_msg {
    struct child_state *c;
    unsigned seq;
};

/* reports the seq only once the message is durable: what "250" would mean */
static void child_commit(void *arg, int ok)
{
    struct child_msg *cm = arg;
    uint32_t seq = cm->seq;
    if (!ok)
        _exit(4);
    if (write(cm->c->pipe_fd, &seq, sizeof(seq)) != sizeof(seq))
        _exit(5);
    cm->c->fired++;
    free(cm);
}

static size_t crash_len(unsigned seq)
{
    return 200 + (seq * 37) % 6000;
}

/* child_main - recover, then submit forever with 64 in flight (64 busy sessions) */
static void child_main(const char *dir, int pipe_fd, unsigned first_seq)
{
    struct child_state c = {.pipe_fd = pipe_fd, .next_seq = first_seq};
    char err[256];
    struct event_base *base = event_base_new();
    struct spool *s = spool_open(dir, base, err, sizeof(err));
    if (s == NULL || spool_recover(s, NULL, NULL) < 0)
        _exit(2);
    spool_set_segment_size(s, 256 << 10); /* rotate a few times mid-stream */
    for (;;) {
        while (c.next_seq - first_seq - c.fired < 64) {
            unsigned seq = c.next_seq++;
            struct spool_msg *m = make_msg(seq, 1 + seq % 3);
            char *data = make_data(seq, crash_len(seq));
            struct child_msg *cm = xmalloc(sizeof(*cm));
            cm->c = &c;
            cm->seq = seq;
            if (spool_submit(s, m, data, crash_len(seq), child_commit, cm) < 0)
                _exit(3);
            spool_msg_free(m);
            free(data);
        }
        event_base_loop(base, EVLOOP_ONCE);
    }
}

/* crash_round - run a child on the spool, SIGKILL it after kill_after acks */
static void crash_round(struct fx *fx, unsigned first_seq, unsigned long kill_after,
                        unsigned char *acked, unsigned long *acked_count)
{
    int fds[2];
    uint32_t seq;
    int status;
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        child_main(fx->dir, fds[1], first_seq);
        _exit(0);
    }
    close(fds[1]);
    unsigned long round = 0;
    while (round < kill_after && read(fds[0], &seq, sizeof(seq)) == sizeof(seq)) {
        assert_true(seq < (1u << 20));
        acked[seq] = 1;
        round++;
    }
    kill(pid, SIGKILL);
    /* seqs written before the kill are still in the pipe: they count too */
    while (read(fds[0], &seq, sizeof(seq)) == sizeof(seq)) {
        acked[seq] = 1;
        round++;
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fds[0]);
    *acked_count += round;
}

static void test_crash_never_loses_acknowledged(void **state)
{
    struct fx *fx = *state;
    if (UNDER_TSAN) {
        print_message(
            "      (skipped under ThreadSanitizer: it does not support threads after fork)\n");
        skip();
    }
    unsigned long acked_count = 0, matched = 0;
    struct found found = {0};
    struct spool_stats st;
    unsigned char *acked = xcalloc(1u << 20, 1);
    /* three kills at different points; each child recovers what the last left */
    crash_round(fx, 0, 1500, acked, &acked_count);
    crash_round(fx, 100000, 700, acked, &acked_count);
    crash_round(fx, 200000, 2300, acked, &acked_count);
    fx_open(fx);
    assert_true(spool_recover(fx->s, collect, &found) >= (long)acked_count);
    spool_get_stats(fx->s, &st);
    for (size_t i = 0; i < found.count; i++) {
        struct sent t = {0};
        t.seq = seq_of(found.msgs[i]);
        t.id = found.msgs[i]->id;
        t.rcpts = 1 + t.seq % 3;
        t.len = crash_len(t.seq);
        check_msg(fx, found.msgs[i], &t, NULL);
        assert_true(t.seq < (1u << 20));
        if (acked[t.seq] == 1) {
            acked[t.seq] = 2;
            matched++;
        }
    }
    print_message("      3 kills: acknowledged %lu, recovered %zu, torn tails %lu, lost %lu\n",
                  acked_count, found.count, st.bad_tails, acked_count - matched);
    assert_int_equal(matched, acked_count);
    found_free(&found);
    free(acked);
}

/* ------------------------------------------------------------- benchmark */

struct bench {
    struct fx *fx;
    unsigned total, submitted;
    unsigned long fired;
    struct spool_msg *msg;
    char *data;
    size_t len;
};

static void bench_commit(void *arg, int ok)
{
    struct bench *b = arg;
    assert_int_equal(ok, 1);
    b->fired++;
    if (b->submitted < b->total) {
        b->msg->id = 0;
        assert_int_equal(spool_submit(b->fx->s, b->msg, b->data, b->len, bench_commit, b), 0);
        b->submitted++;
    }
}

static void test_bench(void **state)
{
    struct fx *fx = *state;
    const char *on = getenv("COEX_SPOOL_BENCH");
    const char *w = getenv("COEX_SPOOL_BENCH_WINDOW");
    struct bench b = {.fx = fx, .total = 20000, .len = 4096};
    struct spool_stats st;
    struct timespec t0, t1;
    unsigned window = w ? (unsigned)strtoul(w, NULL, 10) : 256;
    if (on == NULL || *on == '\0')
        skip();
    fx_open(fx);
    spool_recover(fx->s, NULL, NULL);
    b.msg = make_msg(1, 2);
    b.data = make_data(1, b.len);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (; b.submitted < window && b.submitted < b.total; b.submitted++) {
        b.msg->id = 0;
        assert_int_equal(spool_submit(fx->s, b.msg, b.data, b.len, bench_commit, &b), 0);
    }
    run_until(fx, &b.fired, b.total);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    spool_get_stats(fx->s, &st);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("      bench: %u x %zu B, window %u: %.3f s, %.0f msg/s, %.1f MB/s, %llu "
                  "fdatasync batches (%.1f msg/batch), %lu segments\n",
                  b.total, b.len, window, secs, b.total / secs,
                  b.total * (double)b.len / secs / 1e6, st.batches,
                  (double)b.total / (double)st.batches, st.segments);
    spool_msg_free(b.msg);
    free(b.data);
}

int main(void)
{
    evthread_use_pthreads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec),
        cmocka_unit_test_setup_teardown(test_group_commit_and_recover, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_marks, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_flipped_byte, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_rotation, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reclaim, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_reclaim_keeps_live, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_compaction, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_write_error_hook, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_lock, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unrecovered_segments_kept, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_crash_never_loses_acknowledged, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bench, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
