/*
 * fuzz_addr - libFuzzer target for the address-list tokenizer (src/mail/addr.c).
 *
 * Parses the input as a field body and traps when a result breaks what the
 * rewriter relies on: every span inside the input; elements in order without
 * overlap; for a good mailbox, local part "@" domain at the two ends of a
 * non-empty addr-spec with only CFWS around the "@", name and addr-spec
 * inside the element; addr_key never writing past outsize and never emitting
 * a NUL; addr_parse_spec agreeing with addr_parse_list on a bare addr-spec.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "addr.h"

#define FUZZ_MAX_MAILBOXES 64
#define KEY_GUARD 32

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static int fuzz_is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* fuzz_span_ok - span lies inside [0, len) */
static int fuzz_span_ok(struct addr_span span, size_t len)
{
    return span.off <= len && span.len <= len - span.off;
}

static int fuzz_inside(struct addr_span inner, struct addr_span outer)
{
    return inner.off >= outer.off && inner.off + inner.len <= outer.off + outer.len;
}

/* fuzz_skip_cfws - past white space and (nested) comments; stops at end */
static size_t fuzz_skip_cfws(const char *s, size_t pos, size_t end)
{
    while (pos < end) {
        if (fuzz_is_wsp((unsigned char)s[pos])) {
            pos++;
        } else if (s[pos] == '(') {
            int depth = 0;
            while (pos < end) {
                char c = s[pos++];
                if (c == '\\') {
                    pos++;
                    continue;
                }
                if (c == '(')
                    depth++;
                else if (c == ')' && --depth == 0)
                    break;
            }
            CHECK(depth == 0);
        } else
            break;
    }
    return pos;
}

/* fuzz_check_key - addr_key within outsize, NUL-terminated, no NUL inside, an "@" */
static int fuzz_check_key(const char *in, const struct addr_mailbox *m, char *key, size_t keysize)
{
    char buf[LIMIT_ADDRESS + KEY_GUARD];
    memset(buf, 0x5a, sizeof(buf));
    int rc = addr_key(in, m, buf, LIMIT_ADDRESS);
    for (size_t i = LIMIT_ADDRESS; i < sizeof(buf); i++)
        CHECK((unsigned char)buf[i] == 0x5a);
    if (m->flags & ADDR_F_BAD)
        CHECK(rc == -1);
    if (rc < 0)
        return rc;
    CHECK(rc < LIMIT_ADDRESS);
    CHECK(buf[rc] == '\0');
    CHECK(memchr(buf, '\0', (size_t)rc) == NULL);
    CHECK(memchr(buf, '@', (size_t)rc) != NULL);

    /* smaller buffers: -1 until the key and its NUL fit, never a byte past outsize */
    size_t sizes[] = {0, 1, 2, (size_t)rc / 2, (size_t)rc, (size_t)rc + 1};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        char small[LIMIT_ADDRESS + KEY_GUARD];
        memset(small, 0x5a, sizeof(small));
        int got = addr_key(in, m, small, sizes[s]);
        CHECK(got == (sizes[s] > (size_t)rc ? rc : -1));
        for (size_t i = sizes[s]; i < sizes[s] + KEY_GUARD; i++)
            CHECK((unsigned char)small[i] == 0x5a);
        if (got >= 0)
            CHECK(memcmp(small, buf, (size_t)rc + 1) == 0);
    }
    memcpy(key, buf, (size_t)rc + 1 <= keysize ? (size_t)rc + 1 : keysize);
    return rc;
}

/* fuzz_check_good - the spans of one good mailbox */
static void fuzz_check_good(const char *in, size_t len, const struct addr_mailbox *m)
{
    CHECK(fuzz_span_ok(m->name, len) && fuzz_span_ok(m->spec, len));
    CHECK(fuzz_span_ok(m->local, len) && fuzz_span_ok(m->domain, len));
    CHECK(m->spec.len > 0 && m->local.len > 0 && m->domain.len > 0);
    CHECK(fuzz_inside(m->spec, m->whole));
    CHECK(m->local.off == m->spec.off);
    CHECK(m->domain.off + m->domain.len == m->spec.off + m->spec.len);
    size_t local_end = m->local.off + m->local.len;
    CHECK(local_end < m->domain.off);
    /* local-part [CFWS] "@" [CFWS] domain */
    size_t at = fuzz_skip_cfws(in, local_end, m->domain.off);
    CHECK(at < m->domain.off && in[at] == '@');
    CHECK(fuzz_skip_cfws(in, at + 1, m->domain.off) == m->domain.off);
    if (m->name.len > 0) {
        CHECK(fuzz_inside(m->name, m->whole));
        CHECK(m->name.off + m->name.len <= m->spec.off);
    }
    if (m->flags & ADDR_F_ROUTE)
        CHECK(m->flags & ADDR_F_ANGLE);
    if (m->flags & ADDR_F_LITERAL)
        CHECK(in[m->domain.off] == '[' && in[m->domain.off + m->domain.len - 1] == ']');
    if (m->flags & ADDR_F_QUOTED)
        CHECK(memchr(in + m->local.off, '"', m->local.len) != NULL);
    else
        CHECK(in[m->local.off] != '"');

    char key[LIMIT_ADDRESS];
    int key_len = fuzz_check_key(in, m, key, sizeof(key));

    /* an addr-spec without CFWS or white space reads the same on its own */
    int plain = !(m->flags & ADDR_F_OBS);
    for (size_t i = m->spec.off; plain && i < m->spec.off + m->spec.len; i++)
        if (fuzz_is_wsp((unsigned char)in[i]) || in[i] == '(')
            plain = 0;
    if (plain) {
        struct addr_mailbox alone;
        CHECK(addr_parse_spec(in + m->spec.off, m->spec.len, &alone) == 0);
        CHECK(alone.local.off == 0 && alone.local.len == m->local.len);
        CHECK(alone.domain.off == m->domain.off - m->spec.off);
        CHECK(alone.domain.len == m->domain.len);
        CHECK(alone.flags == (m->flags & (ADDR_F_QUOTED | ADDR_F_LITERAL)));
    }

    /* the key is itself an addr-spec with the same key (no CFWS left) */
    if (key_len >= 0 && !(m->flags & ADDR_F_LITERAL)) {
        struct addr_mailbox again;
        char key2[LIMIT_ADDRESS];
        CHECK(addr_parse_spec(key, (size_t)key_len, &again) == 0);
        CHECK(addr_key(key, &again, key2, sizeof(key2)) == key_len);
        CHECK(memcmp(key, key2, (size_t)key_len) == 0);
    }
}

/* fuzz_check_list - every result of addr_parse_list */
static void fuzz_check_list(const char *in, size_t len)
{
    struct addr_mailbox out[FUZZ_MAX_MAILBOXES];
    size_t count = addr_parse_list(in, len, out, FUZZ_MAX_MAILBOXES);
    size_t stored = count < FUZZ_MAX_MAILBOXES ? count : FUZZ_MAX_MAILBOXES;
    size_t prev_end = 0;

    CHECK(count <= len); /* every mailbox takes at least one byte */
    /* differential: the fast path must agree with the general parser, field for field */
    {
        static struct addr_mailbox general[FUZZ_MAX_MAILBOXES];
        size_t gcount = addr_parse_list_general(in, len, general, FUZZ_MAX_MAILBOXES);
        CHECK(gcount == count);
        for (size_t i = 0; i < (count < FUZZ_MAX_MAILBOXES ? count : FUZZ_MAX_MAILBOXES); i++)
            CHECK(memcmp(&general[i], &out[i], sizeof(out[i])) == 0);
    }
    for (size_t i = 0; i < stored; i++) {
        const struct addr_mailbox *m = &out[i];
        CHECK(fuzz_span_ok(m->whole, len));
        CHECK(m->whole.len > 0);
        CHECK(!fuzz_is_wsp((unsigned char)in[m->whole.off]));
        CHECK(!fuzz_is_wsp((unsigned char)in[m->whole.off + m->whole.len - 1]));
        CHECK(m->whole.off >= prev_end);
        prev_end = m->whole.off + m->whole.len;
        if (m->flags & ADDR_F_BAD) {
            CHECK((m->flags & ~(unsigned)(ADDR_F_BAD | ADDR_F_GROUP)) == 0);
            CHECK(m->name.len == 0 && m->spec.len == 0);
            CHECK(m->local.len == 0 && m->domain.len == 0);
            char key[8];
            CHECK(addr_key(in, m, key, sizeof(key)) == -1);
        } else
            fuzz_check_good(in, len, m);
    }

    /* a smaller max: the same count, the same first entry, nothing else written */
    struct addr_mailbox one[2];
    memset(one, 0xa5, sizeof(one));
    CHECK(addr_parse_list(in, len, one, 1) == count);
    if (count > 0)
        CHECK(memcmp(&one[0], &out[0], sizeof(one[0])) == 0);
    const unsigned char *rest = (const unsigned char *)&one[1];
    for (size_t i = 0; i < sizeof(one[1]); i++)
        CHECK(rest[i] == 0xa5);
}

/* fuzz_check_spec - addr_parse_spec on the whole input */
static void fuzz_check_spec(const char *in, size_t len)
{
    struct addr_mailbox m;
    if (addr_parse_spec(in, len, &m) < 0)
        return;
    CHECK(m.whole.off == 0 && m.whole.len == len);
    CHECK(m.spec.off == 0 && m.spec.len == len);
    CHECK(m.name.len == 0);
    CHECK((m.flags & ~(unsigned)(ADDR_F_QUOTED | ADDR_F_LITERAL)) == 0);
    CHECK(m.local.off == 0 && m.local.len > 0);
    CHECK(m.local.len < len && in[m.local.len] == '@');
    CHECK(m.domain.off == m.local.len + 1 && m.domain.off + m.domain.len == len);
    for (size_t i = 0; i < len; i++)
        CHECK(in[i] != '\r' && in[i] != '\n');

    /* as a one-element list it is the same single mailbox */
    struct addr_mailbox list[2];
    CHECK(addr_parse_list(in, len, list, 2) == 1);
    CHECK(list[0].flags == m.flags);
    CHECK(list[0].whole.off == 0 && list[0].whole.len == len);
    CHECK(list[0].spec.off == 0 && list[0].spec.len == len);
    CHECK(list[0].local.len == m.local.len && list[0].domain.off == m.domain.off);

    char key[LIMIT_ADDRESS];
    fuzz_check_key(in, &m, key, sizeof(key));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    fuzz_check_list(in, size);
    fuzz_check_spec(in, size);
    return 0;
}
