/*
 * util - allocators that cannot fail, ASCII case folding and hashing.
 */
#include "util.h"

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

/* util_strncaseeq - ASCII case-insensitive comparison of equal-length strings */
int util_strncaseeq(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (util_lower((unsigned char)a[i]) != util_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* util_hash_lower - FNV-1a (64-bit) over the lower-cased bytes */
unsigned long long util_hash_lower(const char *s, size_t len)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= util_lower((unsigned char)s[i]);
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
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
