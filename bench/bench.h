/*
 * bench - helpers shared by the micro-benchmarks in bench/: a monotonic clock,
 * medians, a small deterministic PRNG, the synthetic mailbox-pair generator
 * and /proc/self/status readings.
 *
 * Benchmarks print numbers; they never assert on timings. Only bench/ may
 * link peers such as GMime (ARCHITECTURE.md: the product does not).
 */
#ifndef COEX_BENCH_H
#define COEX_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* a generated address is at most this long (first.last + index + domain) */
#define BENCH_ADDRESS_MAX 96
/* batches kept for a median */
#define BENCH_MAX_BATCHES 1000

/* bench_now_ns - CLOCK_MONOTONIC in nanoseconds */
uint64_t bench_now_ns(void);

/* bench_median - median of v[0..count) (sorts v in place); 0 for count 0 */
double bench_median(double *v, size_t count);
/* bench_min - smallest of v[0..count) */
double bench_min(const double *v, size_t count);

/* bench_rand - xorshift64*: deterministic, seeded through *state (non-zero) */
uint64_t bench_rand(uint64_t *state);
/* bench_shuffle - Fisher-Yates over idx[0..count) */
void bench_shuffle(uint32_t *idx, size_t count, uint64_t *state);

/*
 * bench_pair_source / bench_pair_target - the addresses of generated pair i:
 * "first.lastNNNNNN@source.example" and "flNNNNNN@target.example" (NNNNNN is
 * i in at least 6 digits). Write into out (outsize >= BENCH_ADDRESS_MAX) and
 * return the length.
 */
size_t bench_pair_source(size_t i, char *out, size_t outsize);
size_t bench_pair_target(size_t i, char *out, size_t outsize);
/* bench_pair_enabled - whether generated pair i has address rewrite on (about half) */
int bench_pair_enabled(size_t i);

/* bench_status_kib - a "Name: N kB" line of /proc/self/status (e.g. "VmRSS"); -1 on error */
long bench_status_kib(const char *name);

/* bench_parse_count - a positive decimal count; 0 when s is not one */
size_t bench_parse_count(const char *s);

#endif
