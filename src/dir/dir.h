/*
 * dir - the directory snapshot: mailbox pairs, domain pairs, exceptions and
 * the coexistence switch, in memory, immutable once built.
 *
 * Lookups are O(1), allocation-free and ASCII case-insensitive (bytes >= 0x80
 * compare exactly: no Unicode case folding). A snapshot is reference-counted:
 * a reload builds a new one and swaps a pointer, readers keep the one they
 * hold until they drop it. Building happens through a dir_builder.
 *
 * Memory: one string arena, 20 bytes per pair and two open-addressing tables
 * of 32-bit slots (load factor at most 1/2); see docs/BENCHMARKS.md.
 *
 * Does not: read files or databases (dirstore does), validate address syntax.
 */
#ifndef COEX_DIR_H
#define COEX_DIR_H

#include <stddef.h>

#include "util.h"

/* which address of a pair a lookup names */
enum dir_side {
    DIR_SOURCE = 0,
    DIR_TARGET = 1,
};

struct dir_snapshot;
struct dir_builder;

/* a pair as seen through a lookup; pointers borrowed from the snapshot */
struct dir_pair_view {
    const char *source;
    size_t source_len;
    const char *target;
    size_t target_len;
    int enabled;
};

/* dir_builder_new - empty builder; caller owns (dir_builder_finish or _free) */
struct dir_builder *dir_builder_new(void);
/* dir_builder_free - discard a builder that was not finished; NULL is fine */
void dir_builder_free(struct dir_builder *b);
/* dir_builder_add_pair - copy a mailbox pair in; -1 if an address is empty or too long */
int dir_builder_add_pair(struct dir_builder *b, const char *source, size_t source_len,
                         const char *target, size_t target_len, int enabled) WUR;
/* dir_builder_add_domain - copy a domain pair (target domain <-> source domain) in */
int dir_builder_add_domain(struct dir_builder *b, const char *target_domain,
                           const char *source_domain) WUR;
/* dir_builder_add_exception - an address or a domain that is never rewritten */
int dir_builder_add_exception(struct dir_builder *b, const char *addr_or_domain) WUR;
/* dir_builder_set_coexistence - the global switch (default off) */
void dir_builder_set_coexistence(struct dir_builder *b, int on);
/* dir_builder_set_generation - the store's change counter the snapshot was built from */
void dir_builder_set_generation(struct dir_builder *b, long long generation);
/*
 * dir_builder_finish - index everything and return a snapshot with one
 * reference (caller owns it). Takes ownership of b. When an address appears
 * twice on the same side, the first pair wins.
 */
struct dir_snapshot *dir_builder_finish(struct dir_builder *b);

/* dir_snapshot_ref - take another reference; returns d */
struct dir_snapshot *dir_snapshot_ref(struct dir_snapshot *d);
/* dir_snapshot_unref - drop a reference; frees on the last; NULL is fine */
void dir_snapshot_unref(struct dir_snapshot *d);

/* dir_coexistence - the coexistence switch: 1 on, 0 off */
int dir_coexistence(const struct dir_snapshot *d);
/* dir_generation - the store change counter this snapshot reflects */
long long dir_generation(const struct dir_snapshot *d);
/* dir_pair_count - number of mailbox pairs */
size_t dir_pair_count(const struct dir_snapshot *d);

/* dir_find_pair - the pair whose `side` address equals addr; 1 found, 0 not */
int dir_find_pair(const struct dir_snapshot *d, enum dir_side side, const char *addr, size_t len,
                  struct dir_pair_view *out);
/*
 * dir_find_domain - a domain pair whose `side` domain equals domain: 1 and the
 * other side's domain (borrowed) in *other, or 0
 */
int dir_find_domain(const struct dir_snapshot *d, enum dir_side side, const char *domain,
                    size_t len, const char **other, size_t *other_len);
/*
 * dir_domain_known - 1 when some mailbox pair or domain pair has an address in
 * this domain on that side; 0 means no lookup on that side can match (the
 * rewriter's fast path for external addresses)
 */
int dir_domain_known(const struct dir_snapshot *d, enum dir_side side, const char *domain,
                     size_t len);
/* dir_is_exception - 1 when the address or its domain is on the exception list */
int dir_is_exception(const struct dir_snapshot *d, const char *addr, size_t len);

#endif
