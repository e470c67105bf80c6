/*
 * dnstxt_cache - the results the resolver shares, and its cache (RFC 2308
 * negative caching: the caller decides the TTL; see dnstxt_wire.c).
 *
 * A result is immutable and reference counted: the cache holds one
 * reference, each query waiting for delivery another, so eviction never
 * frees what a callback is about to read. Entries sit in a hash table
 * (chained, power-of-two buckets) and in a list in insertion order: when the
 * cache is full, in names (cache_max) or in bytes (cache_max_bytes, what
 * the entry, its name and its result take on the heap), the oldest entries
 * go; expired entries go when they are met. The byte budget is what bounds
 * memory: names alone would let many long answers take cache_max times
 * DNSTXT_ANSWER_MAX.
 *
 * Does not: refresh entries before they expire, or cache temporary failures
 * (the caller does not hand them in).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dnstxt_int.h"

/* dnstxt_now_ms - the monotonic clock */
long long dnstxt_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ results */

/* dnstxt_result_new - a result without records; refs 1 */
struct dnstxt_result *dnstxt_result_new(enum dnstxt_status st, const char *why)
{
    struct dnstxt_result *res = xcalloc(1, sizeof(*res));
    res->refs = 1;
    res->status = st;
    snprintf(res->why, sizeof(res->why), "%s", why);
    return res;
}

/* dnstxt_result_from_answer - copy the records of a parsed answer */
struct dnstxt_result *dnstxt_result_from_answer(const struct dnsmsg_answer *a)
{
    struct dnstxt_result *res = dnstxt_result_new(DNSTXT_OK, "answer");
    res->text = xmalloc(a->text.len + 1);
    memcpy(res->text, a->text.data, a->text.len);
    res->text[a->text.len] = '\0';
    res->txt = xcalloc(a->count, sizeof(*res->txt));
    res->lens = xcalloc(a->count, sizeof(*res->lens));
    for (size_t i = 0; i < a->count; i++) {
        res->txt[i] = res->text + a->offs[i];
        res->lens[i] = a->lens[i];
    }
    res->count = a->count;
    return res;
}

/* dnstxt_result_unref - drop one reference */
void dnstxt_result_unref(struct dnstxt_result *res)
{
    if (res == NULL || --res->refs > 0)
        return;
    free(res->txt);
    free(res->lens);
    free(res->text);
    free(res);
}

/* ------------------------------------------------------------------ cache */

/* dnstxt_cache_remove - take e out of the table and the age list, and free it */
void dnstxt_cache_remove(struct dnstxt *r, struct dnstxt_entry *e)
{
    struct dnstxt_entry **pp = &r->buckets[e->hash & (r->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    if (e->older)
        e->older->newer = e->newer;
    else
        r->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        r->newest = e->older;
    r->cache_count--;
    r->cache_bytes -= e->bytes;
    dnstxt_result_unref(e->res);
    free(e->name);
    free(e);
}

/* dnstxt_cache_get - the live entry for name (lower case), or NULL; expired ones go */
struct dnstxt_entry *dnstxt_cache_get(struct dnstxt *r, const char *name)
{
    unsigned long long hash = util_hash_lower(name, strlen(name));
    for (struct dnstxt_entry *e = r->buckets[hash & (r->nbuckets - 1)]; e; e = e->hnext) {
        if (e->hash != hash || strcmp(e->name, name) != 0)
            continue;
        if (e->expires_ms <= dnstxt_now_ms()) {
            dnstxt_cache_remove(r, e);
            return NULL;
        }
        return e;
    }
    return NULL;
}

/* dnstxt_entry_bytes - what an entry for name holding res takes on the heap */
static size_t dnstxt_entry_bytes(const char *name, const struct dnstxt_result *res)
{
    size_t bytes = sizeof(struct dnstxt_entry) + strlen(name) + 1 + sizeof(*res);
    if (res->text) {
        bytes += res->count * (sizeof(*res->txt) + sizeof(*res->lens));
        for (size_t i = 0; i < res->count; i++)
            bytes += res->lens[i] + 1;
    }
    return bytes;
}

/* dnstxt_cache_put - keep res for ttl seconds (takes a reference) */
void dnstxt_cache_put(struct dnstxt *r, const char *name, struct dnstxt_result *res, long ttl)
{
    long long now = dnstxt_now_ms();
    size_t bytes = dnstxt_entry_bytes(name, res);
    struct dnstxt_entry *old = dnstxt_cache_get(r, name);
    if (old)
        dnstxt_cache_remove(r, old);
    if (bytes > r->cache_max_bytes)
        return; /* not even an empty cache would hold it */
    while (r->oldest &&
           (r->cache_count >= r->cache_max || r->cache_bytes + bytes > r->cache_max_bytes ||
            r->oldest->expires_ms <= now))
        dnstxt_cache_remove(r, r->oldest);
    struct dnstxt_entry *e = xcalloc(1, sizeof(*e));
    e->bytes = bytes;
    e->name = xstrdup(name);
    e->hash = util_hash_lower(name, strlen(name));
    e->expires_ms = now + (long long)ttl * 1000;
    e->res = res;
    res->refs++;
    struct dnstxt_entry **bucket = &r->buckets[e->hash & (r->nbuckets - 1)];
    e->hnext = *bucket;
    *bucket = e;
    e->older = r->newest;
    if (r->newest)
        r->newest->newer = e;
    else
        r->oldest = e;
    r->newest = e;
    r->cache_count++;
    r->cache_bytes += bytes;
}
