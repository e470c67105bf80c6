/*
 * keyfetch - DKIM/ARC public keys of one message from DNS (see keyfetch.h).
 *
 * RFC 6376 §3.6.2.1 (the name "selector._domainkey.domain"), §3.6.2.2 (the
 * strings of a TXT record are joined: dnsmsg does it; with several records
 * the verifier chooses), §6.1.2 (no record, or an unusable one: PERMFAIL;
 * the query failing to respond: TEMPFAIL), §3.6.1 (an empty p= is a revoked
 * key); RFC 8617 §4.1 (ARC-Seal and ARC-Message-Signature carry d= and s=
 * the same way).
 *
 * Does not: look at the i=, a= or h= tags (the verifier does), or follow
 * q= (dns/txt is the only query method defined).
 */
#include "keyfetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "dnsmsg.h"
#include "hdr.h"

#define KEYFETCH_ERR_SIZE 256
#define KEYFETCH_CACHE_SLOTS 256 /* parsed keys kept, replaced round-robin */
#define KEYFETCH_WHY_SIZE 1024 /* two names of LIMIT_DKIM_NAME and a reason fit */

/* one (d=, s=) pair and its lookup */
struct keyfetch_pair {
    struct keyfetch *kf;
    char domain[LIMIT_DKIM_NAME + 1];   /* lower case */
    char selector[LIMIT_DKIM_NAME + 1]; /* lower case */
    struct dnstxt_query *q;             /* while the lookup runs */
    int arc;                            /* named by an ARC field */
    enum keyfetch_status status;
    char why[KEYFETCH_WHY_SIZE];
};

struct keyfetch {
    struct dnstxt *r;
    keyfetch_fn *done;
    void *arg;
    struct event *ev; /* answers a header without lookups on the next loop pass */
    size_t pair_count, pending;
    int overflow; /* a budget ran out: some pairs were not looked up */
    struct keyfetch_pair pairs[LIMIT_KEYFETCH_PAIRS];
    struct dkim_pubkey *keys[LIMIT_KEYFETCH_PAIRS];
    size_t key_count;
};

/*
 * the fields that carry d= and s= (RFC 8617 §4.1.2, §4.1.3, RFC 6376 §3.5),
 * and the pass that collects them: ARC first
 */
static const struct {
    const char *name;
    size_t len;
    int arc;
} keyfetch_fields[] = {
    {"ARC-Seal", 8, 1},
    {"ARC-Message-Signature", 21, 1},
    {"DKIM-Signature", 14, 0},
};

/* keyfetch_copy_lower - span into out (LIMIT_DKIM_NAME + 1 bytes), lower case; -1 if too long */
static int keyfetch_copy_lower(const char *s, size_t len, char *out)
{
    if (len == 0 || len > LIMIT_DKIM_NAME)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)util_lower((unsigned char)s[i]);
    out[len] = '\0';
    return 0;
}

/* keyfetch_find - the pair for domain and selector, or NULL */
static const struct keyfetch_pair *keyfetch_find(const struct keyfetch *kf, const char *domain,
                                                 const char *selector)
{
    for (size_t i = 0; i < kf->pair_count; i++)
        if (strcasecmp(kf->pairs[i].domain, domain) == 0 &&
            strcasecmp(kf->pairs[i].selector, selector) == 0)
            return &kf->pairs[i];
    return NULL;
}

/*
 * keyfetch_collect - the distinct, usable pairs of the ARC fields (arc 1) or
 * the DKIM-Signature fields (arc 0), at most budget new ones
 */
static void keyfetch_collect(struct keyfetch *kf, const char *hdr, size_t hdr_len, int arc,
                             size_t budget)
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t added = 0;
    hdr_iter_init(&it, hdr, hdr_len);
    while (hdr_iter_next(&it, &f)) {
        int wanted = 0;
        for (size_t i = 0; i < ARRAY_LEN(keyfetch_fields) && !wanted; i++)
            wanted = keyfetch_fields[i].arc == arc &&
                     hdr_name_is(hdr, &f, keyfetch_fields[i].name, keyfetch_fields[i].len);
        if (!wanted)
            continue;
        const char *list = hdr + f.value_off, *d, *s;
        size_t list_len = f.value_end - f.value_off, d_len, s_len;
        struct keyfetch_pair *p = &kf->pairs[kf->pair_count];
        char name[2 * LIMIT_DKIM_NAME + 16];
        if (dkim_tag_find(list, list_len, "d", &d, &d_len) != 1 ||
            dkim_tag_find(list, list_len, "s", &s, &s_len) != 1 ||
            keyfetch_copy_lower(d, d_len, p->domain) < 0 ||
            keyfetch_copy_lower(s, s_len, p->selector) < 0)
            continue; /* the verifier reports the field */
        snprintf(name, sizeof(name), "%s._domainkey.%s", p->selector, p->domain);
        if (dnsmsg_name_check(name) < 0 || keyfetch_find(kf, p->domain, p->selector))
            continue;
        if (added == budget) {
            kf->overflow = 1;
            return;
        }
        p->kf = kf;
        p->arc = arc;
        kf->pair_count++;
        added++;
    }
}

/*
 * The parsed-key cache. dnstxt caches the records, but turning a record
 * into a key (OpenSSL's decoder) costs more than the RSA verification
 * itself, and it ran on the event loop for every message. So the keys made
 * from records are kept here, by name and by the exact record text (a
 * record that changes gives a new key), each with a reference of its own
 * (a key handed to a message stays valid when its slot is reused). Used on
 * one thread only, the loop's, like the rest of keyfetch.
 */
struct keyfetch_cached {
    char *name;   /* "s._domainkey.d", lower case; NULL: the slot is free */
    char *record; /* the TXT record the key was made from */
    size_t record_len;
    struct dkim_pubkey *key; /* the cache's reference */
};
static struct keyfetch_cached keyfetch_cache[KEYFETCH_CACHE_SLOTS];
static size_t keyfetch_cache_next;

/* keyfetch_cached_drop - empty one slot */
static void keyfetch_cached_drop(struct keyfetch_cached *e)
{
    free(e->name);
    free(e->record);
    dkim_pubkey_free(e->key);
    memset(e, 0, sizeof(*e));
}

/* keyfetch_cache_get - a new reference to the key made from this record, or NULL */
static struct dkim_pubkey *keyfetch_cache_get(const char *name, const char *rec, size_t len)
{
    for (size_t i = 0; i < KEYFETCH_CACHE_SLOTS; i++) {
        const struct keyfetch_cached *e = &keyfetch_cache[i];
        if (e->name && e->record_len == len && memcmp(e->record, rec, len) == 0 &&
            strcmp(e->name, name) == 0)
            return dkim_pubkey_ref(e->key);
    }
    return NULL;
}

/* keyfetch_cache_put - keep key (a reference of the cache's own) for name and the record */
static void keyfetch_cache_put(const char *name, const char *rec, size_t len,
                               struct dkim_pubkey *key)
{
    struct keyfetch_cached *e = &keyfetch_cache[keyfetch_cache_next++ % KEYFETCH_CACHE_SLOTS];
    keyfetch_cached_drop(e);
    e->name = xstrdup(name);
    e->record = xmalloc(len ? len : 1);
    memcpy(e->record, rec, len);
    e->record_len = len;
    e->key = dkim_pubkey_ref(key);
}

/* keyfetch_cache_clear - see keyfetch.h */
void keyfetch_cache_clear(void)
{
    for (size_t i = 0; i < KEYFETCH_CACHE_SLOTS; i++)
        keyfetch_cached_drop(&keyfetch_cache[i]);
    keyfetch_cache_next = 0;
}

/* keyfetch_use_records - the first TXT record that is a usable key for the pair */
static void keyfetch_use_records(struct keyfetch_pair *p, const char *const *txt,
                                 const size_t *lens, size_t count)
{
    struct keyfetch *kf = p->kf;
    char err[KEYFETCH_ERR_SIZE] = "no record";
    int revoked = 0;
    for (size_t i = 0; i < count; i++) {
        const char *val;
        size_t val_len;
        if (memchr(txt[i], '\0', lens[i]) || (lens[i] >= 5 && memcmp(txt[i], "-----", 5) == 0))
            continue; /* a NUL byte, or PEM text: not a key record */
        if (dkim_tag_find(txt[i], lens[i], "p", &val, &val_len) == 1 && val_len == 0) {
            revoked = 1;
            continue;
        }
        char name[2 * LIMIT_DKIM_NAME + 16];
        snprintf(name, sizeof(name), "%s._domainkey.%s", p->selector, p->domain);
        struct dkim_pubkey *key = keyfetch_cache_get(name, txt[i], lens[i]);
        if (key == NULL &&
            (key = dkim_pubkey_new(p->domain, p->selector, txt[i], lens[i], err, sizeof(err))))
            keyfetch_cache_put(name, txt[i], lens[i], key);
        if (key) {
            kf->keys[kf->key_count++] = key;
            p->status = KEYFETCH_OK;
            snprintf(p->why, sizeof(p->why), "key found");
            return;
        }
    }
    p->status = KEYFETCH_NOKEY;
    if (revoked)
        snprintf(p->why, sizeof(p->why), "key revoked (empty p=) at %s._domainkey.%s", p->selector,
                 p->domain);
    else
        snprintf(p->why, sizeof(p->why), "no usable key at %s._domainkey.%s: %s", p->selector,
                 p->domain, err);
}

/* keyfetch_answered - a dnstxt callback: one pair is settled; the last one calls done */
static void keyfetch_answered(void *arg, enum dnstxt_status st, const char *const *txt,
                              const size_t *lens, size_t count, const char *why)
{
    struct keyfetch_pair *p = arg;
    struct keyfetch *kf = p->kf;
    p->q = NULL;
    switch (st) {
    case DNSTXT_OK:
        keyfetch_use_records(p, txt, lens, count);
        break;
    case DNSTXT_NOTFOUND:
    case DNSTXT_TOOBIG: /* a property of the zone: asking again gives the same (§6.1.2 PERMFAIL) */
        p->status = KEYFETCH_NOKEY;
        snprintf(p->why, sizeof(p->why), "no key for %s._domainkey.%s: %s", p->selector, p->domain,
                 why);
        break;
    case DNSTXT_TEMPFAIL:
    case DNSTXT_BADANSWER:
        p->status = KEYFETCH_TEMPFAIL;
        snprintf(p->why, sizeof(p->why), "key lookup for %s._domainkey.%s failed: %s", p->selector,
                 p->domain, why);
        break;
    }
    if (--kf->pending == 0)
        kf->done(kf->arg, kf); /* may free kf: nothing after this */
}

/* keyfetch_none - the event of a header that needed no lookup */
static void keyfetch_none(evutil_socket_t fd, short what, void *arg)
{
    struct keyfetch *kf = arg;
    (void)fd;
    (void)what;
    kf->done(kf->arg, kf);
}

/* keyfetch_start - see keyfetch.h */
struct keyfetch *keyfetch_start(struct dnstxt *r, const char *hdr, size_t hdr_len,
                                keyfetch_fn *done, void *arg)
{
    struct keyfetch *kf = xcalloc(1, sizeof(*kf));
    kf->r = r;
    kf->done = done;
    kf->arg = arg;
    if ((kf->ev = event_new(dnstxt_base(r), -1, 0, keyfetch_none, kf)) == NULL) {
        free(kf);
        return NULL;
    }
    keyfetch_collect(kf, hdr, hdr_len, 1, LIMIT_KEYFETCH_ARC_PAIRS);
    keyfetch_collect(kf, hdr, hdr_len, 0, LIMIT_KEYFETCH_DKIM_PAIRS);
    for (size_t i = 0; i < kf->pair_count; i++) {
        struct keyfetch_pair *p = &kf->pairs[i];
        char name[2 * LIMIT_DKIM_NAME + 16];
        snprintf(name, sizeof(name), "%s._domainkey.%s", p->selector, p->domain);
        p->status = KEYFETCH_TEMPFAIL;
        snprintf(p->why, sizeof(p->why), "key lookup for %s could not start", name);
        if ((p->q = dnstxt_lookup(r, name, keyfetch_answered, p)) != NULL)
            kf->pending++;
    }
    if (kf->pending == 0) { /* the next loop pass, as dnstxt answers */
        static const struct timeval now = {0, 0};
        if (evtimer_add(kf->ev, &now) < 0)
            event_active(kf->ev, EV_TIMEOUT, 1);
    }
    return kf;
}

/* keyfetch_free - see keyfetch.h */
void keyfetch_free(struct keyfetch *kf)
{
    if (kf == NULL)
        return;
    for (size_t i = 0; i < kf->pair_count; i++)
        dnstxt_cancel(kf->pairs[i].q);
    for (size_t i = 0; i < kf->key_count; i++)
        dkim_pubkey_free(kf->keys[i]);
    event_free(kf->ev);
    free(kf);
}

/* keyfetch_cancel - see keyfetch.h: the same as freeing, before done */
void keyfetch_cancel(struct keyfetch *kf)
{
    keyfetch_free(kf);
}

/* keyfetch_keys - see keyfetch.h */
struct dkim_pubkey *const *keyfetch_keys(const struct keyfetch *kf, size_t *count)
{
    *count = kf->key_count;
    return kf->keys;
}

/* keyfetch_status - see keyfetch.h */
enum keyfetch_status keyfetch_status(const struct keyfetch *kf, const char *domain,
                                     const char *selector, const char **why)
{
    const struct keyfetch_pair *p = keyfetch_find(kf, domain, selector);
    if (p == NULL && kf->overflow) {
        if (why)
            *why = "not verified: the message names more keys than coex looks up";
        return KEYFETCH_SKIPPED;
    }
    if (p == NULL) {
        if (why)
            *why = "key not looked up (no such signature, or not a DNS name)";
        return KEYFETCH_NOKEY;
    }
    if (why)
        *why = p->why;
    return p->status;
}

/* keyfetch_arc_tempfail - see keyfetch.h */
int keyfetch_arc_tempfail(const struct keyfetch *kf)
{
    for (size_t i = 0; i < kf->pair_count; i++)
        if (kf->pairs[i].arc && kf->pairs[i].status == KEYFETCH_TEMPFAIL)
            return 1;
    return 0;
}

/* keyfetch_pair_count - see keyfetch.h */
size_t keyfetch_pair_count(const struct keyfetch *kf)
{
    return kf->pair_count;
}
