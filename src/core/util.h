/*
 * util - allocators that cannot fail, and small helpers with no mail knowledge.
 *
 * The x-prefixed allocators abort the process on out-of-memory (like Postfix's
 * mymalloc); nothing else in coex aborts.
 */
#ifndef COEX_UTIL_H
#define COEX_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define WUR __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* xmalloc - malloc that aborts on out-of-memory; caller owns the result */
void *xmalloc(size_t size);
/* xcalloc - calloc that aborts on out-of-memory (and on nmemb * size overflow) */
void *xcalloc(size_t nmemb, size_t size);
/* xrealloc - realloc that aborts on out-of-memory */
void *xrealloc(void *ptr, size_t size);
/* xstrdup - strdup that aborts on out-of-memory; caller owns the result */
char *xstrdup(const char *s);
/* xstrndup - copy at most len bytes and NUL-terminate; caller owns the result */
char *xstrndup(const char *s, size_t len);

/* util_lower - ASCII lower case; bytes >= 0x80 (UTF-8) are left alone */
static inline unsigned char util_lower(unsigned char c)
{
    return (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

/* util_lower8 - ASCII lower case of 8 bytes at once (SWAR); bytes >= 0x80 unchanged */
static inline uint64_t util_lower8(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t low7 = x & ~high;
    uint64_t ge_a = low7 + ones * (0x80 - 'A'); /* high bit set where byte >= 'A' */
    uint64_t gt_z = low7 + ones * (0x7f - 'Z'); /* high bit set where byte > 'Z' */
    uint64_t upper = ge_a & ~gt_z & ~x & high;
    return x | (upper >> 2); /* 0x80 >> 2 == 0x20 */
}

/* util_strncaseeq - 1 when a[0..len) equals b[0..len) ignoring ASCII case */
int util_strncaseeq(const char *a, const char *b, size_t len);

/* util_hash_lower - 64-bit hash of s[0..len) folded to ASCII lower case */
unsigned long long util_hash_lower(const char *s, size_t len);

/* util_parse_bool - "1/yes/true/on" -> 1, "0/no/false/off" -> 0, else -1 */
int util_parse_bool(const char *s, size_t len);

#endif
