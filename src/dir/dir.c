/*
 * dir - immutable, reference-counted directory snapshot with O(1) lookups.
 *
 * Layout: every string lives in one arena; a pair is 20 bytes (two arena
 * offsets, two 32-bit hashes, two lengths, the enabled bit in the top bit of
 * target_len); two open-addressing tables (linear probing, power-of-two size,
 * load at most 1/2) map a hash to pair index + 1, one per side. Exceptions
 * and domain pairs use the same scheme over their own small tables.
 */
#include "dir.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"

#define DIR_ENABLED_BIT 0x8000u
#define DIR_LEN_MASK 0x7fffu

struct dir_pair {
    uint32_t off[2];  /* arena offsets of source, target */
    uint32_t hash[2]; /* low 32 bits of the lower-cased hash */
    uint16_t len[2];  /* lengths; len[1] carries DIR_ENABLED_BIT */
};

/* a string set/map: entries are arena strings, optionally with a value string */
struct dir_table {
    uint32_t *slots; /* entry index + 1; 0 = empty */
    uint32_t mask;
};

struct dir_entry {
    uint32_t off, hash;
    uint16_t len;
    uint32_t value_off; /* domain pairs: the other side's domain */
    uint16_t value_len;
};

struct dir_strings {
    char *data;
    size_t len, cap;
};

struct dir_entries {
    struct dir_entry *items;
    size_t count, cap;
};

struct dir_snapshot {
    atomic_long refs;
    int coexistence;
    long long generation;
    struct dir_strings arena;
    struct dir_pair *pairs;
    size_t pair_count, pair_cap;
    struct dir_table by_side[2];
    struct dir_entries exceptions;
    struct dir_table exception_table;
    struct dir_entries domains[2]; /* domains[side]: that side's domain -> other side's */
    struct dir_table domain_table[2];
    struct dir_entries known[2]; /* known[side]: every domain used on that side */
    struct dir_table known_table[2];
};

/* the builder is a snapshot that has not been indexed yet */
struct dir_builder {
    struct dir_snapshot snap;
};

/* dir_arena_add - copy a string into the arena; -1 when the arena is full */
static int dir_arena_add(struct dir_strings *a, const char *s, size_t len, uint32_t *off)
{
    if (a->len + len + 1 > UINT32_MAX)
        return -1;
    if (a->len + len + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->len + len + 1)
            cap *= 2;
        a->data = xrealloc(a->data, cap);
        a->cap = cap;
    }
    memcpy(a->data + a->len, s, len);
    a->data[a->len + len] = '\0';
    *off = (uint32_t)a->len;
    a->len += len + 1;
    return 0;
}

/* dir_builder_new - empty builder */
struct dir_builder *dir_builder_new(void)
{
    struct dir_builder *b = xcalloc(1, sizeof(*b));
    atomic_init(&b->snap.refs, 1);
    return b;
}

static void dir_snapshot_free_parts(struct dir_snapshot *d)
{
    free(d->arena.data);
    free(d->pairs);
    free(d->by_side[0].slots);
    free(d->by_side[1].slots);
    free(d->exceptions.items);
    free(d->exception_table.slots);
    for (int s = 0; s < 2; s++) {
        free(d->domains[s].items);
        free(d->domain_table[s].slots);
        free(d->known[s].items);
        free(d->known_table[s].slots);
    }
}

/* dir_builder_free - discard an unfinished builder */
void dir_builder_free(struct dir_builder *b)
{
    if (b == NULL)
        return;
    dir_snapshot_free_parts(&b->snap);
    free(b);
}

/* dir_builder_add_pair - append a pair */
int dir_builder_add_pair(struct dir_builder *b, const char *source, size_t source_len,
                         const char *target, size_t target_len, int enabled)
{
    struct dir_snapshot *d = &b->snap;
    struct dir_pair p;
    if (source_len == 0 || target_len == 0 || source_len >= LIMIT_ADDRESS ||
        target_len >= LIMIT_ADDRESS || d->pair_count >= UINT32_MAX / 4)
        return -1;
    if (dir_arena_add(&d->arena, source, source_len, &p.off[0]) < 0 ||
        dir_arena_add(&d->arena, target, target_len, &p.off[1]) < 0)
        return -1;
    p.hash[0] = (uint32_t)util_hash_lower(source, source_len);
    p.hash[1] = (uint32_t)util_hash_lower(target, target_len);
    p.len[0] = (uint16_t)source_len;
    p.len[1] = (uint16_t)(target_len | (enabled ? DIR_ENABLED_BIT : 0));
    if (d->pair_count == d->pair_cap) {
        d->pair_cap = d->pair_cap ? d->pair_cap * 2 : 1024;
        d->pairs = xrealloc(d->pairs, d->pair_cap * sizeof(*d->pairs));
    }
    d->pairs[d->pair_count++] = p;
    return 0;
}

/* dir_entries_add - append a string entry with an optional value */
static int dir_entries_add(struct dir_snapshot *d, struct dir_entries *e, const char *key,
                           const char *value)
{
    struct dir_entry ent = {0};
    size_t klen = strlen(key), vlen = value ? strlen(value) : 0;
    if (klen == 0 || klen >= LIMIT_ADDRESS || vlen >= LIMIT_ADDRESS)
        return -1;
    if (dir_arena_add(&d->arena, key, klen, &ent.off) < 0)
        return -1;
    if (value && dir_arena_add(&d->arena, value, vlen, &ent.value_off) < 0)
        return -1;
    ent.len = (uint16_t)klen;
    ent.value_len = (uint16_t)vlen;
    ent.hash = (uint32_t)util_hash_lower(key, klen);
    if (e->count == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
    }
    e->items[e->count++] = ent;
    return 0;
}

/* dir_builder_add_domain - both directions of a domain pair */
int dir_builder_add_domain(struct dir_builder *b, const char *target_domain,
                           const char *source_domain)
{
    struct dir_snapshot *d = &b->snap;
    if (dir_entries_add(d, &d->domains[DIR_TARGET], target_domain, source_domain) < 0 ||
        dir_entries_add(d, &d->domains[DIR_SOURCE], source_domain, target_domain) < 0)
        return -1;
    return 0;
}

/* dir_builder_add_exception - never rewrite this address or domain */
int dir_builder_add_exception(struct dir_builder *b, const char *addr_or_domain)
{
    return dir_entries_add(&b->snap, &b->snap.exceptions, addr_or_domain, NULL);
}

void dir_builder_set_coexistence(struct dir_builder *b, int on)
{
    b->snap.coexistence = on != 0;
}

void dir_builder_set_generation(struct dir_builder *b, long long generation)
{
    b->snap.generation = generation;
}

/* dir_table_init - a table with at least 2 * count slots */
static void dir_table_init(struct dir_table *t, size_t count)
{
    size_t size = 16;
    while (size < count * 2)
        size *= 2;
    t->slots = xcalloc(size, sizeof(*t->slots));
    t->mask = (uint32_t)(size - 1);
}

/* dir_str_eq - arena string equals s, ignoring ASCII case */
static int dir_str_eq(const struct dir_snapshot *d, uint32_t off, size_t len, const char *s,
                      size_t slen)
{
    return len == slen && util_strncaseeq(d->arena.data + off, s, slen);
}

/* dir_pair_matches - pair i's side address is s */
static int dir_pair_matches(const struct dir_snapshot *d, uint32_t i, int side, uint32_t hash,
                            const char *s, size_t len)
{
    const struct dir_pair *p = &d->pairs[i];
    return p->hash[side] == hash &&
           dir_str_eq(d, p->off[side], p->len[side] & DIR_LEN_MASK, s, len);
}

static int dir_entry_matches(const struct dir_snapshot *d, const struct dir_entry *e, uint32_t hash,
                             const char *s, size_t len)
{
    return e->hash == hash && dir_str_eq(d, e->off, e->len, s, len);
}

/* dir_index_entries - fill a table for an entry list; first entry wins */
static void dir_index_entries(struct dir_snapshot *d, struct dir_entries *e, struct dir_table *t)
{
    dir_table_init(t, e->count);
    for (size_t i = 0; i < e->count; i++) {
        const struct dir_entry *ent = &e->items[i];
        uint32_t slot = ent->hash & t->mask;
        int dup = 0;
        while (t->slots[slot]) {
            if (dir_entry_matches(d, &e->items[t->slots[slot] - 1], ent->hash,
                                  d->arena.data + ent->off, ent->len)) {
                dup = 1;
                break;
            }
            slot = (slot + 1) & t->mask;
        }
        if (!dup)
            t->slots[slot] = (uint32_t)(i + 1);
    }
}

/* dir_known_add - add an arena string (a domain) to known[side] unless it is there */
static void dir_known_add(struct dir_snapshot *d, int side, struct dir_table *tmp, uint32_t off,
                          size_t len)
{
    struct dir_entries *e = &d->known[side];
    const char *s = d->arena.data + off;
    uint32_t hash = (uint32_t)util_hash_lower(s, len);
    uint32_t slot = hash & tmp->mask;
    for (; tmp->slots[slot]; slot = (slot + 1) & tmp->mask)
        if (dir_entry_matches(d, &e->items[tmp->slots[slot] - 1], hash, s, len))
            return;
    if (e->count == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 16;
        e->items = xrealloc(e->items, e->cap * sizeof(*e->items));
    }
    e->items[e->count] = (struct dir_entry){off, hash, (uint16_t)len, 0, 0};
    tmp->slots[slot] = (uint32_t)++e->count;
}

/* dir_collect_known - the domains of one side: of its pairs and its domain pairs */
static void dir_collect_known(struct dir_snapshot *d, int side)
{
    struct dir_table tmp;
    dir_table_init(&tmp, d->pair_count + d->domains[side].count);
    for (size_t i = 0; i < d->pair_count; i++) {
        const struct dir_pair *p = &d->pairs[i];
        size_t len = p->len[side] & DIR_LEN_MASK;
        const char *a = d->arena.data + p->off[side];
        const char *at = NULL;
        for (size_t k = len; k > 0 && at == NULL; k--)
            if (a[k - 1] == '@')
                at = a + k - 1;
        if (at)
            dir_known_add(d, side, &tmp, p->off[side] + (uint32_t)(at + 1 - a),
                          len - (size_t)(at + 1 - a));
    }
    for (size_t i = 0; i < d->domains[side].count; i++)
        dir_known_add(d, side, &tmp, d->domains[side].items[i].off, d->domains[side].items[i].len);
    free(tmp.slots);
    dir_index_entries(d, &d->known[side], &d->known_table[side]);
}

/* dir_builder_finish - build the lookup tables */
struct dir_snapshot *dir_builder_finish(struct dir_builder *b)
{
    struct dir_snapshot *d = xmalloc(sizeof(*d));
    *d = b->snap;
    free(b);
    /* give back the unused tail of the growable arrays */
    if (d->pair_count) {
        d->pairs = xrealloc(d->pairs, d->pair_count * sizeof(*d->pairs));
        d->pair_cap = d->pair_count;
    }
    if (d->arena.len) {
        d->arena.data = xrealloc(d->arena.data, d->arena.len);
        d->arena.cap = d->arena.len;
    }
    for (int side = 0; side < 2; side++) {
        struct dir_table *t = &d->by_side[side];
        dir_table_init(t, d->pair_count);
        for (size_t i = 0; i < d->pair_count; i++) {
            const struct dir_pair *p = &d->pairs[i];
            uint32_t slot = p->hash[side] & t->mask;
            int dup = 0;
            while (t->slots[slot]) {
                if (dir_pair_matches(d, t->slots[slot] - 1, side, p->hash[side],
                                     d->arena.data + p->off[side], p->len[side] & DIR_LEN_MASK)) {
                    dup = 1;
                    break;
                }
                slot = (slot + 1) & t->mask;
            }
            if (!dup)
                t->slots[slot] = (uint32_t)(i + 1);
        }
    }
    dir_index_entries(d, &d->exceptions, &d->exception_table);
    for (int side = 0; side < 2; side++) {
        dir_index_entries(d, &d->domains[side], &d->domain_table[side]);
        dir_collect_known(d, side);
    }
    return d;
}

/* dir_snapshot_ref - one more reference */
struct dir_snapshot *dir_snapshot_ref(struct dir_snapshot *d)
{
    atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    return d;
}

/* dir_snapshot_unref - one reference less; the last frees */
void dir_snapshot_unref(struct dir_snapshot *d)
{
    if (d == NULL)
        return;
    if (atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    dir_snapshot_free_parts(d);
    free(d);
}

int dir_coexistence(const struct dir_snapshot *d)
{
    return d->coexistence;
}

long long dir_generation(const struct dir_snapshot *d)
{
    return d->generation;
}

size_t dir_pair_count(const struct dir_snapshot *d)
{
    return d->pair_count;
}

/* dir_find_pair - probe the side's table */
int dir_find_pair(const struct dir_snapshot *d, enum dir_side side, const char *addr, size_t len,
                  struct dir_pair_view *out)
{
    const struct dir_table *t = &d->by_side[side];
    uint32_t hash = (uint32_t)util_hash_lower(addr, len);
    for (uint32_t slot = hash & t->mask; t->slots[slot]; slot = (slot + 1) & t->mask) {
        uint32_t i = t->slots[slot] - 1;
        if (!dir_pair_matches(d, i, side, hash, addr, len))
            continue;
        const struct dir_pair *p = &d->pairs[i];
        out->source = d->arena.data + p->off[0];
        out->source_len = p->len[0];
        out->target = d->arena.data + p->off[1];
        out->target_len = p->len[1] & DIR_LEN_MASK;
        out->enabled = (p->len[1] & DIR_ENABLED_BIT) != 0;
        return 1;
    }
    return 0;
}

/* dir_find_entry - look a string up in an entry table */
static const struct dir_entry *dir_find_entry(const struct dir_snapshot *d,
                                              const struct dir_entries *e,
                                              const struct dir_table *t, const char *s, size_t len)
{
    if (e->count == 0)
        return NULL;
    uint32_t hash = (uint32_t)util_hash_lower(s, len);
    for (uint32_t slot = hash & t->mask; t->slots[slot]; slot = (slot + 1) & t->mask) {
        const struct dir_entry *ent = &e->items[t->slots[slot] - 1];
        if (dir_entry_matches(d, ent, hash, s, len))
            return ent;
    }
    return NULL;
}

/* dir_find_domain - domain pair lookup */
int dir_find_domain(const struct dir_snapshot *d, enum dir_side side, const char *domain,
                    size_t len, const char **other, size_t *other_len)
{
    const struct dir_entry *ent =
        dir_find_entry(d, &d->domains[side], &d->domain_table[side], domain, len);
    if (ent == NULL)
        return 0;
    *other = d->arena.data + ent->value_off;
    *other_len = ent->value_len;
    return 1;
}

/* dir_domain_known - any pair or domain pair on that side in this domain? */
int dir_domain_known(const struct dir_snapshot *d, enum dir_side side, const char *domain,
                     size_t len)
{
    const struct dir_entries *e = &d->known[side];
    if (e->count <= 8) {
        /* the usual case, a handful of tenant domains: lengths rule out most */
        for (size_t i = 0; i < e->count; i++)
            if (e->items[i].len == len &&
                util_strncaseeq(d->arena.data + e->items[i].off, domain, len))
                return 1;
        return 0;
    }
    return dir_find_entry(d, &d->known[side], &d->known_table[side], domain, len) != NULL;
}

/* dir_is_exception - the address, or the domain after its last "@" */
int dir_is_exception(const struct dir_snapshot *d, const char *addr, size_t len)
{
    if (d->exceptions.count == 0)
        return 0;
    if (dir_find_entry(d, &d->exceptions, &d->exception_table, addr, len))
        return 1;
    const char *at = NULL;
    for (size_t i = len; i > 0; i--)
        if (addr[i - 1] == '@') {
            at = addr + i - 1;
            break;
        }
    if (at == NULL)
        return 0;
    size_t dlen = len - (size_t)(at + 1 - addr);
    return dir_find_entry(d, &d->exceptions, &d->exception_table, at + 1, dlen) != NULL;
}
