/*
 * bench_util - clock, statistics, PRNG, pair generator and /proc readings for
 * the benchmarks (see bench.h).
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_NAMES 32
#define BENCH_STATUS_LINE 256

static const char *const bench_first[BENCH_NAMES] = {
    "alex",   "megan",   "isaiah", "nestor", "lidia",  "pradeep", "grady",  "adele",
    "allan",  "diego",   "henrietta", "irvin", "johanna", "joni",  "lee",    "lynne",
    "miriam", "patti",   "christie", "debra", "enrico", "gerhart", "lena",  "maria",
    "oliver", "raul",    "sanjay", "tomas",  "ulrike", "vivian",  "wendy",  "yusuf",
};
static const char *const bench_last[BENCH_NAMES] = {
    "wilber",  "bowen",   "langer",  "wilke",   "holloway", "gupta",  "archie",  "vance",
    "deyoung", "soto",    "cantrell", "sayers", "lauer",   "sherman", "gu",      "robbins",
    "hill",    "fernandez", "cline",  "berg",    "lombardi", "moos",  "sterling", "novak",
    "kowalski", "ortega", "iyer",    "dvorak",  "schmidt", "chen",    "okafor",  "haddad",
};

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* bench_median - sort, then the middle (mean of the two middles for an even count) */
double bench_median(double *v, size_t count)
{
    if (count == 0)
        return 0;
    qsort(v, count, sizeof(*v), bench_cmp_double);
    return count % 2 ? v[count / 2] : (v[count / 2 - 1] + v[count / 2]) / 2;
}

double bench_min(const double *v, size_t count)
{
    double m = count ? v[0] : 0;
    for (size_t i = 1; i < count; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

/* bench_rand - xorshift64* (Vigna) */
uint64_t bench_rand(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 2685821657736338717ULL;
}

void bench_shuffle(uint32_t *idx, size_t count, uint64_t *state)
{
    for (size_t i = count; i > 1; i--) {
        size_t j = (size_t)(bench_rand(state) % i);
        uint32_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

/* the names cycle independently so neighbouring indexes differ in both parts */
size_t bench_pair_source(size_t i, char *out, size_t outsize)
{
    int n = snprintf(out, outsize, "%s.%s%06zu@source.example", bench_first[i % BENCH_NAMES],
                     bench_last[(i / BENCH_NAMES) % BENCH_NAMES], i);
    return n < 0 ? 0 : (size_t)n < outsize ? (size_t)n : outsize - 1;
}

size_t bench_pair_target(size_t i, char *out, size_t outsize)
{
    int n = snprintf(out, outsize, "%c%c%06zu@target.example", bench_first[i % BENCH_NAMES][0],
                     bench_last[(i / BENCH_NAMES) % BENCH_NAMES][0], i);
    return n < 0 ? 0 : (size_t)n < outsize ? (size_t)n : outsize - 1;
}

/* bench_pair_enabled - a hash of i, so enabled pairs are not simply every other one */
int bench_pair_enabled(size_t i)
{
    uint64_t x = (uint64_t)i * 0x9E3779B97F4A7C15ULL;
    return (int)((x >> 63) & 1);
}

long bench_status_kib(const char *name)
{
    FILE *fp = fopen("/proc/self/status", "r");
    char line[BENCH_STATUS_LINE];
    size_t name_len = strlen(name);
    long kib = -1;

    if (fp == NULL)
        return -1;
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, name, name_len) == 0 && line[name_len] == ':') {
            kib = strtol(line + name_len + 1, NULL, 10);
            break;
        }
    fclose(fp);
    return kib;
}

size_t bench_parse_count(const char *s)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-')
        return 0;
    return (size_t)v;
}
