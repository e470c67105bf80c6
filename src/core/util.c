/*
 * util - allocators that cannot fail, ASCII case folding and hashing.
 */
#include "util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void util_oom(size_t size)
{
    fprintf(stderr, "fatal: out of memory allocating %zu bytes\n", size);
    abort();
}

/* xmalloc - malloc that aborts on out-of-memory */
void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        util_oom(size);
    return p;
}

/* xcalloc - calloc that aborts on out-of-memory */
void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        util_oom(nmemb * size);
    return p;
}

/* xrealloc - realloc that aborts on out-of-memory */
void *xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        util_oom(size);
    return p;
}

/* xstrdup - strdup that aborts on out-of-memory */
char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* xstrndup - copy len bytes and terminate */
char *xstrndup(const char *s, size_t len)
{
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* util_strncaseeq - ASCII case-insensitive comparison, 8 bytes at a time */
int util_strncaseeq(const char *a, const char *b, size_t len)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y && util_lower8(x) != util_lower8(y))
            return 0;
    }
    for (; i < len; i++)
        if (util_lower((unsigned char)a[i]) != util_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

static inline uint64_t util_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/*
 * util_hash_lower - a multiply-xor hash over 8 lower-cased bytes at a time;
 * addresses are short, so the word-at-a-time loop is what matters
 */
unsigned long long util_hash_lower(const char *s, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ util_lower8(w)) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i);
        h = (h ^ util_lower8(w)) * 0x100000001b3ULL;
    }
    return util_mix(h);
}

/* util_parse_bool - accept the spellings admins type in CSV files */
int util_parse_bool(const char *s, size_t len)
{
    static const char *const yes[] = {"1", "yes", "true", "on", "y", "enabled"};
    static const char *const no[] = {"0", "no", "false", "off", "n", "disabled"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++)
        if (strlen(yes[i]) == len && util_strncaseeq(s, yes[i], len))
            return 1;
    for (size_t i = 0; i < ARRAY_LEN(no); i++)
        if (strlen(no[i]) == len && util_strncaseeq(s, no[i], len))
            return 0;
    return -1;
}
