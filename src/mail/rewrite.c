/*
 * rewrite - address rewriting over header fields and the envelope.
 *
 * The header block is walked once with hdr_iter; address fields are parsed
 * with addr_parse_list and the output is built from the untouched spans of the
 * input plus the replacements (STYLE.md: parsers return spans, the rewriter
 * copies). Nothing is allocated per message unless a field holds more than
 * REWRITE_STACK_MAILBOXES mailboxes or a trace is requested.
 */
#include "rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"

#define REWRITE_STACK_MAILBOXES 64
/* a field holding more mailboxes than this is copied unchanged and reported */
#define LIMIT_FIELD_MAILBOXES 10000

static const struct {
    const char *name;
    size_t len;
} rewrite_fields[] = {
#define F(s)                                                                                       \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
    F("From"),
    F("Sender"),
    F("Reply-To"),
    F("To"),
    F("Cc"),
    F("Bcc"),
    F("Resent-From"),
    F("Resent-Sender"),
    F("Resent-To"),
    F("Resent-Cc"),
    F("Resent-Bcc"),
    F("Disposition-Notification-To"),
    F("Return-Receipt-To"),
#undef F
};

/* rewrite_trace_init - empty trace */
void rewrite_trace_init(struct rewrite_trace *t)
{
    memset(t, 0, sizeof(*t));
}

/* rewrite_trace_cleanup - free the changes */
void rewrite_trace_cleanup(struct rewrite_trace *t)
{
    free(t->changes);
    memset(t, 0, sizeof(*t));
}

const char *rewrite_rule_name(enum rewrite_rule rule)
{
    switch (rule) {
    case RULE_MAILBOX_PAIR:
        return "mailbox-pair";
    case RULE_SUBADDRESS:
        return "subaddress";
    case RULE_DOMAIN_PAIR:
        return "domain-pair";
    default:
        return "none";
    }
}

int rewrite_direction_parse(const char *s, enum rewrite_direction *out)
{
    if (strcmp(s, "to-source") == 0)
        *out = REWRITE_TO_SOURCE;
    else if (strcmp(s, "to-target") == 0)
        *out = REWRITE_TO_TARGET;
    else
        return -1;
    return 0;
}

/* rewrite_copy_cut - copy at most outsize-1 bytes, marking a cut with "..." */
static void rewrite_copy_cut(char *out, size_t outsize, const char *s, size_t len)
{
    if (len < outsize) {
        memcpy(out, s, len);
        out[len] = '\0';
        return;
    }
    memcpy(out, s, outsize - 4);
    memcpy(out + outsize - 4, "...", 4);
}

/* rewrite_trace_add - record one event; a NULL trace records nothing */
static void rewrite_trace_add(struct rewrite_trace *t, enum rewrite_event event,
                              enum rewrite_rule rule, int display_name, const char *field,
                              size_t field_len, const char *old_addr, size_t old_len,
                              const char *new_addr)
{
    if (t == NULL)
        return;
    if (t->count == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->changes = xrealloc(t->changes, t->cap * sizeof(*t->changes));
    }
    struct rewrite_change *c = &t->changes[t->count++];
    c->event = event;
    c->rule = rule;
    c->display_name = display_name;
    rewrite_copy_cut(c->field, sizeof(c->field), field, field_len);
    rewrite_copy_cut(c->old_addr, sizeof(c->old_addr), old_addr, old_len);
    rewrite_copy_cut(c->new_addr, sizeof(c->new_addr), new_addr ? new_addr : "",
                     new_addr ? strlen(new_addr) : 0);
}

/* rewrite_join - out = a + b + c; -1 when it does not fit */
static int rewrite_join(char *out, size_t outsize, const char *a, size_t alen, const char *b,
                        size_t blen, const char *c, size_t clen)
{
    if (alen + blen + clen >= outsize)
        return -1;
    memcpy(out, a, alen);
    memcpy(out + alen, b, blen);
    memcpy(out + alen + blen, c, clen);
    out[alen + blen + clen] = '\0';
    return 0;
}

/* rewrite_last_at - index of the last "@" or len */
static size_t rewrite_last_at(const char *addr, size_t len)
{
    for (size_t i = len; i > 0; i--)
        if (addr[i - 1] == '@')
            return i - 1;
    return len;
}

/* rewrite_address - exception -> pair -> sub-address -> domain pair */
/*
 * rewrite_lookup - the exception list, then the mailbox pair: 1 with the other
 * side's address (borrowed from the snapshot), 0 when no pair names it, -1 when
 * it must stay as it is (*event: EVENT_EXCEPTION or EVENT_DISABLED)
 */
static int rewrite_lookup(const struct dir_snapshot *d, enum dir_side from, const char *addr,
                          size_t len, const char **to, size_t *to_len, enum rewrite_event *event)
{
    struct dir_pair_view pair;
    if (dir_is_exception(d, addr, len)) {
        *event = EVENT_EXCEPTION;
        return -1;
    }
    if (!dir_find_pair(d, from, addr, len, &pair))
        return 0;
    if (!pair.enabled) {
        *event = EVENT_DISABLED;
        return -1;
    }
    *to = from == DIR_TARGET ? pair.source : pair.target;
    *to_len = from == DIR_TARGET ? pair.source_len : pair.target_len;
    return 1;
}

static int rewrite_address_at(const struct dir_snapshot *d, const struct rewrite_opts *o,
                              const char *addr, size_t len, size_t at, char *out, size_t outsize,
                              enum rewrite_rule *rule, enum rewrite_event *event);

int rewrite_address(const struct dir_snapshot *d, const struct rewrite_opts *o, const char *addr,
                    size_t len, char *out, size_t outsize, enum rewrite_rule *rule,
                    enum rewrite_event *event)
{
    return rewrite_address_at(d, o, addr, len, rewrite_last_at(addr, len), out, outsize, rule,
                              event);
}

/* rewrite_address_at - rewrite_address when the caller knows where the "@" is */
static int rewrite_address_at(const struct dir_snapshot *d, const struct rewrite_opts *o,
                              const char *addr, size_t len, size_t at, char *out, size_t outsize,
                              enum rewrite_rule *rule, enum rewrite_event *event)
{
    enum dir_side from = o->direction == REWRITE_TO_SOURCE ? DIR_TARGET : DIR_SOURCE;

    *rule = RULE_NONE;
    *event = EVENT_REWRITTEN;
    if (at == len)
        return 0;
    /* most addresses in a message are external: one probe of a tiny table says so */
    if (!dir_domain_known(d, from, addr + at + 1, len - at - 1))
        return 0;
    const char *to;
    size_t to_len;
    int found = rewrite_lookup(d, from, addr, len, &to, &to_len, event);
    if (found != 0) {
        if (found < 0)
            return 0;
        if (rewrite_join(out, outsize, to, to_len, "", 0, "", 0) < 0)
            return -1;
        *rule = RULE_MAILBOX_PAIR;
        return 1;
    }
    /* sub-address: base+tag@domain follows base@domain (not for quoted local parts) */
    const char *seps = o->subaddress_separators;
    if (seps && *seps && addr[0] != '"') {
        size_t sep = 0;
        while (sep < at && strchr(seps, addr[sep]) == NULL)
            sep++;
        char base[LIMIT_ADDRESS];
        if (sep > 0 && sep < at &&
            rewrite_join(base, sizeof(base), addr, sep, addr + at, len - at, "", 0) == 0) {
            found = rewrite_lookup(d, from, base, sep + (len - at), &to, &to_len, event);
            if (found < 0)
                return 0;
            if (found > 0) {
                size_t to_at = rewrite_last_at(to, to_len);
                if (rewrite_join(out, outsize, to, to_at, addr + sep, at - sep, to + to_at,
                                 to_len - to_at) < 0)
                    return -1;
                *rule = RULE_SUBADDRESS;
                return 1;
            }
        }
    }
    const char *other;
    size_t other_len;
    if (dir_find_domain(d, from, addr + at + 1, len - at - 1, &other, &other_len)) {
        if (rewrite_join(out, outsize, addr, at + 1, other, other_len, "", 0) < 0)
            return -1;
        *rule = RULE_DOMAIN_PAIR;
        return 1;
    }
    return 0;
}

/* rewrite_is_address_field - one of the fields we rewrite */
static int rewrite_is_address_field(const char *hdr, const struct hdr_field *f)
{
    /* every name starts with one of these letters: skip the rest cheaply */
    switch (util_lower((unsigned char)hdr[f->off])) {
    case 'b':
    case 'c':
    case 'd':
    case 'f':
    case 'r':
    case 's':
    case 't':
        break;
    default:
        return 0;
    }
    if (f->name_len < 2 || f->name_len > 27)
        return 0;
    unsigned char last = util_lower((unsigned char)hdr[f->off + f->name_len - 1]);
    for (size_t i = 0; i < ARRAY_LEN(rewrite_fields); i++)
        if (rewrite_fields[i].len == f->name_len &&
            util_lower((unsigned char)rewrite_fields[i].name[f->name_len - 1]) == last &&
            util_strncaseeq(hdr + f->off, rewrite_fields[i].name, f->name_len))
            return 1;
    return 0;
}

/*
 * rewrite_name_span - when the display name is just the address (optionally in
 * double and/or single quotes), the span of the address inside it
 */
static int rewrite_name_span(const char *hdr, const struct addr_span *name, const char *key,
                             size_t key_len, struct addr_span *out)
{
    size_t start = name->off, end = name->off + name->len;
    if (end - start >= 2 && hdr[start] == '"' && hdr[end - 1] == '"') {
        start++;
        end--;
    }
    if (end - start >= 2 && hdr[start] == '\'' && hdr[end - 1] == '\'') {
        start++;
        end--;
    }
    if (end - start != key_len || !util_strncaseeq(hdr + start, key, key_len))
        return 0;
    out->off = start;
    out->len = key_len;
    return 1;
}

struct rewrite_out {
    const char *hdr;
    size_t copied; /* input bytes up to here are in out */
    struct buf *out;
    int failed;
};

/* rewrite_emit - copy input up to span, then the replacement */
static void rewrite_emit(struct rewrite_out *w, const struct addr_span *span, const char *repl)
{
    if (buf_append(w->out, w->hdr + w->copied, span->off - w->copied) < 0 ||
        buf_append_str(w->out, repl) < 0)
        w->failed = 1;
    w->copied = span->off + span->len;
}

/* rewrite_field - rewrite the mailboxes of one address field */
static void rewrite_field(const struct dir_snapshot *d, const struct rewrite_opts *o,
                          struct rewrite_out *w, const struct hdr_field *f,
                          struct rewrite_trace *trace)
{
    const char *hdr = w->hdr;
    const char *body = hdr + f->value_off;
    size_t body_len = f->value_end - f->value_off;
    struct addr_mailbox stack[REWRITE_STACK_MAILBOXES];
    struct addr_mailbox *mb = stack;

    size_t count = addr_parse_list(body, body_len, stack, ARRAY_LEN(stack));
    if (count > LIMIT_FIELD_MAILBOXES) {
        rewrite_trace_add(trace, EVENT_UNPARSEABLE, RULE_NONE, 0, hdr + f->off, f->name_len,
                          "(too many mailboxes in one field)", 33, NULL);
        return;
    }
    if (count > ARRAY_LEN(stack)) {
        mb = xmalloc(count * sizeof(*mb));
        addr_parse_list(body, body_len, mb, count);
    }
    for (size_t i = 0; i < count; i++) {
        const struct addr_mailbox *m = &mb[i];
        char key[LIMIT_ADDRESS], repl[LIMIT_ADDRESS];
        enum rewrite_rule rule;
        enum rewrite_event event;
        int key_len;

        if (m->flags & ADDR_F_BAD) {
            rewrite_trace_add(trace, EVENT_UNPARSEABLE, RULE_NONE, 0, hdr + f->off, f->name_len,
                              body + m->whole.off, m->whole.len, NULL);
            continue;
        }
        /* without quotes or CFWS inside, the addr-spec bytes are the key: no copy */
        const char *keyp = key;
        if (!(m->flags & (ADDR_F_QUOTED | ADDR_F_OBS)) && m->spec.len < sizeof(key)) {
            keyp = body + m->spec.off;
            key_len = (int)m->spec.len;
        } else
            key_len = addr_key(body, m, key, sizeof(key));
        if (key_len < 0) {
            rewrite_trace_add(trace, EVENT_UNPARSEABLE, RULE_NONE, 0, hdr + f->off, f->name_len,
                              body + m->spec.off, m->spec.len, NULL);
            continue;
        }
        size_t at =
            keyp == key ? rewrite_last_at(key, (size_t)key_len) : m->domain.off - 1 - m->spec.off;
        int rc =
            rewrite_address_at(d, o, keyp, (size_t)key_len, at, repl, sizeof(repl), &rule, &event);
        if (rc <= 0) {
            if (event != EVENT_REWRITTEN || rc < 0)
                rewrite_trace_add(trace, rc < 0 ? EVENT_UNPARSEABLE : event, RULE_NONE, 0,
                                  hdr + f->off, f->name_len, keyp, (size_t)key_len, NULL);
            continue;
        }
        struct addr_span name_span;
        if (m->name.len && rewrite_name_span(body, &m->name, keyp, (size_t)key_len, &name_span)) {
            struct addr_span abs = {name_span.off + f->value_off, name_span.len};
            rewrite_emit(w, &abs, repl);
            rewrite_trace_add(trace, EVENT_REWRITTEN, rule, 1, hdr + f->off, f->name_len, keyp,
                              (size_t)key_len, repl);
        }
        struct addr_span abs = {m->spec.off + f->value_off, m->spec.len};
        rewrite_emit(w, &abs, repl);
        rewrite_trace_add(trace, EVENT_REWRITTEN, rule, 0, hdr + f->off, f->name_len, keyp,
                          (size_t)key_len, repl);
    }
    if (mb != stack)
        free(mb);
}

/* rewrite_header - walk the fields, rewrite the address fields */
int rewrite_header(const struct dir_snapshot *d, const struct rewrite_opts *o, const char *hdr,
                   size_t len, struct buf *out, struct rewrite_trace *trace, char *err,
                   size_t errlen)
{
    struct rewrite_out w = {hdr, 0, out, 0};
    struct hdr_iter it;
    struct hdr_field f;

    if (!dir_coexistence(d)) {
        if (trace)
            trace->coexistence_off = 1;
    } else {
        hdr_iter_init(&it, hdr, len);
        while (!w.failed && hdr_iter_next(&it, &f))
            if (rewrite_is_address_field(hdr, &f))
                rewrite_field(d, o, &w, &f, trace);
    }
    if (w.failed || buf_append(out, hdr + w.copied, len - w.copied) < 0) {
        snprintf(err, errlen, "rewritten header exceeds %zu bytes", out->limit);
        return -1;
    }
    return 0;
}

/* rewrite_envelope - MAIL FROM / RCPT TO */
int rewrite_envelope(const struct dir_snapshot *d, const struct rewrite_opts *o, const char *field,
                     const char *addr, size_t len, char *out, size_t outsize,
                     struct rewrite_trace *trace)
{
    struct addr_mailbox m;
    char key[LIMIT_ADDRESS];
    enum rewrite_rule rule;
    enum rewrite_event event;

    if (len >= outsize)
        return -1;
    memcpy(out, addr, len);
    out[len] = '\0';
    if (len == 0)
        return 0; /* the null sender <> */
    if (addr_parse_spec(addr, len, &m) < 0)
        return -1;
    if (!dir_coexistence(d)) {
        if (trace)
            trace->coexistence_off = 1;
        return 0;
    }
    int key_len = addr_key(addr, &m, key, sizeof(key));
    if (key_len < 0)
        return -1;
    int rc = rewrite_address(d, o, key, (size_t)key_len, out, outsize, &rule, &event);
    if (rc < 0)
        return -1;
    if (rc == 0) {
        memcpy(out, addr, len);
        out[len] = '\0';
        if (event != EVENT_REWRITTEN)
            rewrite_trace_add(trace, event, RULE_NONE, 0, field, strlen(field), key,
                              (size_t)key_len, NULL);
        return 0;
    }
    rewrite_trace_add(trace, EVENT_REWRITTEN, rule, 0, field, strlen(field), key, (size_t)key_len,
                      out);
    return 1;
}
