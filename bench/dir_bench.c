/*
 * dir_bench - the directory at scale: CSV import into SQLite, loading the
 * snapshot from the store, the memory the snapshot keeps per pair, and
 * lookup cost.
 *
 * The parent generates N pairs ("first.lastNNNNNN@source.example" <->
 * "flNNNNNN@target.example", about half enabled) as a CSV file in /tmp,
 * imports it with dirstore_import_csv (timed), then runs itself twice as a
 * fresh process (/proc/self/exe --measure) so that no allocation of the
 * import is counted: once with the store's pages dropped from the OS page
 * cache (posix_fadvise DONTNEED after fsync: "cold") and once right after
 * ("warm"). Each measuring process reads VmRSS before dirstore_open and
 * again after dirstore_load and dirstore_close + malloc_trim(0), so SQLite's
 * page cache is not counted; the warm one also times dir_find_pair for hits
 * and misses on both sides in random order.
 *
 * Prints numbers; asserts only that lookups find what they should.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "dir.h"
#include "dirstore.h"

#define BENCH_DEFAULT_PAIRS 1000000
/* lookups per timed round (capped by the pair count) and rounds for a median */
#define BENCH_DEFAULT_LOOKUPS 1000000
#define BENCH_LOOKUP_ROUNDS 7
#define BENCH_PATH_MAX 256
#define BENCH_ERR_MAX 512
#define BENCH_SEED 0x2545F4914F6CDD1DULL

struct bench_keys {
    char *arena;        /* the addresses, back to back */
    uint32_t *off;      /* key i is arena[off[i] .. off[i] + len[i]) */
    uint8_t *len;
    uint32_t *expect;   /* for hits: the pair index, to check the other side */
    size_t count;
};

/* bench_heap_bytes - bytes malloc has handed out (arena and mmapped chunks) */
static size_t bench_heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* bench_write_csv - the generated pairs as a CSV file; -1 on error */
static int bench_write_csv(const char *path, size_t pairs)
{
    FILE *fp = fopen(path, "w");
    char source[BENCH_ADDRESS_MAX], target[BENCH_ADDRESS_MAX];

    if (fp == NULL)
        return -1;
    fputs("source,target,enabled\n", fp);
    for (size_t i = 0; i < pairs; i++) {
        bench_pair_source(i, source, sizeof(source));
        bench_pair_target(i, target, sizeof(target));
        fprintf(fp, "%s,%s,%s\n", source, target, bench_pair_enabled(i) ? "yes" : "no");
    }
    if (fclose(fp) != 0)
        return -1;
    return 0;
}

/* bench_drop_cache - write the file out and ask the kernel to forget its pages */
static void bench_drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return;
    fsync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
}

/* bench_keys_make - count keys for pair indexes first + idx[i] on one side */
static void bench_keys_make(struct bench_keys *k, const uint32_t *idx, size_t count, size_t first,
                            enum dir_side side)
{
    char addr[BENCH_ADDRESS_MAX];
    size_t used = 0;

    k->arena = xmalloc(count * BENCH_ADDRESS_MAX);
    k->off = xmalloc(count * sizeof(*k->off));
    k->len = xmalloc(count * sizeof(*k->len));
    k->expect = xmalloc(count * sizeof(*k->expect));
    k->count = count;
    for (size_t i = 0; i < count; i++) {
        size_t pair = first + idx[i];
        size_t len = side == DIR_SOURCE ? bench_pair_source(pair, addr, sizeof(addr))
                                        : bench_pair_target(pair, addr, sizeof(addr));
        memcpy(k->arena + used, addr, len);
        k->off[i] = (uint32_t)used;
        k->len[i] = (uint8_t)len;
        k->expect[i] = (uint32_t)pair;
        used += len;
    }
}

static void bench_keys_free(struct bench_keys *k)
{
    free(k->arena);
    free(k->off);
    free(k->len);
    free(k->expect);
}

/*
 * bench_lookups - median ns per dir_find_pair over the keys; -1 when a key is
 * found that should not be, or not found, or found with the wrong other side
 */
static int bench_lookups(const struct dir_snapshot *d, enum dir_side side,
                         const struct bench_keys *k, int want_found, double *median_ns)
{
    double per_lookup[BENCH_LOOKUP_ROUNDS];
    struct dir_pair_view view;
    char other[BENCH_ADDRESS_MAX];

    for (size_t r = 0; r < BENCH_LOOKUP_ROUNDS; r++) {
        size_t found = 0;
        uint64_t start = bench_now_ns();
        for (size_t i = 0; i < k->count; i++)
            found += (size_t)dir_find_pair(d, side, k->arena + k->off[i], k->len[i], &view);
        uint64_t elapsed = bench_now_ns() - start;
        per_lookup[r] = (double)elapsed / (double)k->count;
        if (found != (want_found ? k->count : 0)) {
            fprintf(stderr, "dir_bench: %zu of %zu lookups found, want %s\n", found, k->count,
                    want_found ? "all" : "none");
            return -1;
        }
    }
    /* the view names the right pair: spot-check the other side */
    for (size_t i = 0; want_found && i < k->count && i < BENCH_DEFAULT_LOOKUPS / 100; i++) {
        size_t len = side == DIR_SOURCE ? bench_pair_target(k->expect[i], other, sizeof(other))
                                        : bench_pair_source(k->expect[i], other, sizeof(other));
        if (!dir_find_pair(d, side, k->arena + k->off[i], k->len[i], &view))
            return -1;
        const char *got = side == DIR_SOURCE ? view.target : view.source;
        size_t got_len = side == DIR_SOURCE ? view.target_len : view.source_len;
        if (got_len != len || memcmp(got, other, len) != 0 ||
            view.enabled != bench_pair_enabled(k->expect[i])) {
            fprintf(stderr, "dir_bench: lookup %zu returned the wrong pair\n", i);
            return -1;
        }
    }
    *median_ns = bench_median(per_lookup, BENCH_LOOKUP_ROUNDS);
    return 0;
}

/* bench_measure - the fresh process: load, memory, lookups */
static int bench_measure(const char *db, size_t pairs, const char *label, int do_lookups)
{
    char err[BENCH_ERR_MAX];
    int rc = 1;

    malloc_trim(0);
    long rss_before = bench_status_kib("VmRSS");
    size_t heap_before = bench_heap_bytes();

    uint64_t t0 = bench_now_ns();
    struct dirstore *ds = dirstore_open(db, err, sizeof(err));
    if (ds == NULL) {
        fprintf(stderr, "dir_bench: %s\n", err);
        return 1;
    }
    uint64_t t1 = bench_now_ns();
    struct dir_snapshot *d = dirstore_load(ds, err, sizeof(err));
    uint64_t t2 = bench_now_ns();
    if (d == NULL) {
        fprintf(stderr, "dir_bench: %s\n", err);
        dirstore_close(ds);
        return 1;
    }
    long rss_loaded = bench_status_kib("VmRSS");
    dirstore_close(ds);
    malloc_trim(0);
    long rss_after = bench_status_kib("VmRSS");
    long rss_peak = bench_status_kib("VmHWM");
    size_t heap_after = bench_heap_bytes();

    if (dir_pair_count(d) != pairs) {
        fprintf(stderr, "dir_bench: the snapshot holds %zu pairs, want %zu\n", dir_pair_count(d),
                pairs);
        goto done;
    }
    double load_s = (double)(t2 - t0) / 1e9;
    double rss_per_pair = (double)(rss_after - rss_before) * 1024.0 / (double)pairs;
    double heap_per_pair = (double)(heap_after - heap_before) / (double)pairs;
    printf("load (%s cache): open %.3f s + load %.3f s = %.3f s for %zu pairs\n", label,
           (double)(t1 - t0) / 1e9, (double)(t2 - t1) / 1e9, load_s, pairs);
    printf("  RSS: before %ld KiB, loaded with store open %ld KiB, after close+trim %ld KiB, "
           "peak %ld KiB\n",
           rss_before, rss_loaded, rss_after, rss_peak);
    printf("  snapshot: %.1f bytes/pair of RSS, %.1f bytes/pair of malloc'd heap\n", rss_per_pair,
           heap_per_pair);
    printf("RESULT dir_load %s pairs=%zu load_s=%.3f rss_bytes_per_pair=%.1f "
           "heap_bytes_per_pair=%.1f peak_rss_kib=%ld\n",
           label, pairs, load_s, rss_per_pair, heap_per_pair, rss_peak);

    if (do_lookups) {
        size_t count = pairs < BENCH_DEFAULT_LOOKUPS ? pairs : BENCH_DEFAULT_LOOKUPS;
        uint32_t *idx = xmalloc(count * sizeof(*idx));
        uint64_t seed = BENCH_SEED;
        struct {
            const char *name;
            enum dir_side side;
            size_t first; /* pairs and up do not exist */
            int found;
        } kinds[] = {
            {"hit source", DIR_SOURCE, 0, 1},
            {"hit target", DIR_TARGET, 0, 1},
            {"miss source", DIR_SOURCE, pairs, 0},
            {"miss target", DIR_TARGET, pairs, 0},
        };
        double ns[ARRAY_LEN(kinds)];
        int ok = 1;

        /* random indexes into the whole directory, not the first `count` pairs */
        for (size_t i = 0; i < count; i++)
            idx[i] = (uint32_t)(bench_rand(&seed) % pairs);
        for (size_t i = 0; i < ARRAY_LEN(kinds) && ok; i++) {
            struct bench_keys k;
            bench_keys_make(&k, idx, count, kinds[i].first, kinds[i].side);
            if (bench_lookups(d, kinds[i].side, &k, kinds[i].found, &ns[i]) < 0)
                ok = 0;
            bench_keys_free(&k);
            bench_shuffle(idx, count, &seed);
        }
        free(idx);
        if (!ok)
            goto done;
        printf("lookups (dir_find_pair, %zu random keys x %d rounds, median):\n", count,
               BENCH_LOOKUP_ROUNDS);
        for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
            printf("  %-12s %6.1f ns\n", kinds[i].name, ns[i]);
        printf("RESULT dir_lookup pairs=%zu hit_source_ns=%.1f hit_target_ns=%.1f "
               "miss_source_ns=%.1f miss_target_ns=%.1f\n",
               pairs, ns[0], ns[1], ns[2], ns[3]);
    }
    rc = 0;
done:
    dir_snapshot_unref(d);
    return rc;
}

/* bench_spawn_measure - run this program as a fresh process in --measure mode */
static int bench_spawn_measure(const char *argv0, const char *db, size_t pairs, const char *label,
                               int do_lookups)
{
    char count[32];
    int status;

    fflush(stdout);
    snprintf(count, sizeof(count), "%zu", pairs);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execl("/proc/self/exe", argv0, "--measure", db, count, label, do_lookups ? "1" : "0",
              (char *)NULL);
        perror("dir_bench: exec /proc/self/exe");
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}

static void bench_remove_store(const char *db)
{
    char path[BENCH_PATH_MAX];
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
        snprintf(path, sizeof(path), "%s%s", db, suffixes[i]);
        if (unlink(path) < 0 && errno != ENOENT)
            perror(path);
    }
}

static int bench_usage(void)
{
    fprintf(stderr, "usage: dir_bench [-n pairs] [-d tmpdir]\n");
    return 2;
}

int main(int argc, char **argv)
{
    size_t pairs = BENCH_DEFAULT_PAIRS;
    const char *tmpdir = "/tmp";
    char csv[BENCH_PATH_MAX], db[BENCH_PATH_MAX], err[BENCH_ERR_MAX];
    struct dirstore_import_stats stats = {0};
    int opt, rc = 1;

    if (argc == 6 && strcmp(argv[1], "--measure") == 0) {
        size_t n = bench_parse_count(argv[3]);
        return n ? bench_measure(argv[2], n, argv[4], strcmp(argv[5], "1") == 0) : 2;
    }
    while ((opt = getopt(argc, argv, "n:d:")) != -1) {
        if (opt == 'n') {
            if ((pairs = bench_parse_count(optarg)) == 0)
                return bench_usage();
        } else if (opt == 'd')
            tmpdir = optarg;
        else
            return bench_usage();
    }
    if (optind != argc || pairs >= UINT32_MAX / 4)
        return bench_usage();

    snprintf(csv, sizeof(csv), "%s/coex-dir-bench-%ld.csv", tmpdir, (long)getpid());
    snprintf(db, sizeof(db), "%s/coex-dir-bench-%ld.sqlite", tmpdir, (long)getpid());
    bench_remove_store(db);

    uint64_t t0 = bench_now_ns();
    if (bench_write_csv(csv, pairs) < 0) {
        perror(csv);
        goto done;
    }
    uint64_t t1 = bench_now_ns();
    struct dirstore *ds = dirstore_open(db, err, sizeof(err));
    if (ds == NULL) {
        fprintf(stderr, "dir_bench: %s\n", err);
        goto done;
    }
    uint64_t t2 = bench_now_ns();
    int import_rc = dirstore_import_csv(ds, csv, stderr, &stats);
    uint64_t t3 = bench_now_ns();
    dirstore_close(ds);
    if (import_rc < 0 || stats.added != pairs) {
        fprintf(stderr, "dir_bench: import failed: %lu rows, %lu added, %lu errors\n", stats.rows,
                stats.added, stats.errors);
        goto done;
    }
    printf("generated %zu pairs as CSV in %.2f s; import (dirstore_import_csv, one transaction) "
           "%.2f s = %.0f pairs/s\n",
           pairs, (double)(t1 - t0) / 1e9, (double)(t3 - t2) / 1e9,
           (double)pairs / ((double)(t3 - t2) / 1e9));
    printf("RESULT dir_import pairs=%zu import_s=%.3f\n", pairs, (double)(t3 - t2) / 1e9);

    bench_drop_cache(db);
    if (bench_spawn_measure(argv[0], db, pairs, "cold", 0) < 0 ||
        bench_spawn_measure(argv[0], db, pairs, "warm", 1) < 0) {
        fprintf(stderr, "dir_bench: the measuring process failed\n");
        goto done;
    }
    rc = 0;
done:
    unlink(csv);
    bench_remove_store(db);
    return rc;
}
