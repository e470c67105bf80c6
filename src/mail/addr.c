/*
 * addr - RFC 5322 / RFC 6532 address-list tokenizer returning spans.
 *
 * A small lexer turns the field body into tokens (atom runs, quoted strings,
 * domain literals, whole angle-addrs and single specials), skipping CFWS. The
 * list is then split at top-level "," ";" ":" and every element is parsed from
 * its tokens. Dots are lexed as part of atom runs, which covers dot-atom,
 * obs-phrase ("John Q. Public") and obs-local-part in one token kind.
 *
 * Deliberately lenient where real mail is sloppy and rewriting stays safe: a
 * local part may have empty dot-separated words ("a..b", Japanese carriers);
 * a group may have an empty display name; CR and LF count as white space;
 * a display name before an angle-addr may hold a bare "@" (Outlook's
 * 'user@example.com' <user@example.com>).
 * Strict where a wrong span could corrupt the field: the domain must be a
 * dot-atom or a literal, the whole element must be consumed, brackets, quotes
 * and comments must close.
 */
#include "addr.h"

#include <string.h>

enum addr_tok_kind {
    TOK_END,
    TOK_ATOM,    /* run of atext, UTF-8 bytes and dots */
    TOK_QSTRING, /* "..." including the quotes */
    TOK_LITERAL, /* [...] including the brackets */
    TOK_ANGLE,   /* <...> including the brackets */
    TOK_SPECIAL, /* one other byte: , ; : @ and anything not allowed */
    TOK_BAD,     /* unterminated quote, literal, comment or angle */
};

struct addr_tok {
    enum addr_tok_kind kind;
    size_t start; /* first byte */
    size_t end;   /* one past the last byte */
    size_t at;    /* TOK_ANGLE in the plain <local@domain> form: where the "@" is; else 0 */
};

struct addr_lex {
    const char *s;
    size_t end; /* lexing stops here */
    size_t pos;
};

/*
 * Character classes, one table lookup per byte: ADDR_C_ATEXT is RFC 5322
 * atext plus RFC 6532 UTF8-non-ascii (every byte >= 0x80), ADDR_C_DOT the
 * dot, ADDR_C_WSP SP, HTAB, CR and LF.
 */
#define ADDR_C_ATEXT 1
#define ADDR_C_DOT 2
#define ADDR_C_WSP 4
#define ADDR_C_QSTOP 8 /* ends a plain run inside a quoted string or literal: \\ NUL [ */
static const unsigned char addr_class[256] = {
    8, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    4, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 8, 8, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static inline int addr_is_atext(unsigned char c)
{
    return addr_class[c] & ADDR_C_ATEXT;
}

static inline int addr_is_wsp(unsigned char c)
{
    return addr_class[c] & ADDR_C_WSP;
}

/* addr_skip_comment - pos is at "("; skip the nested comment; -1 if it never closes */
static int addr_skip_comment(struct addr_lex *lx)
{
    int depth = 0;
    while (lx->pos < lx->end) {
        unsigned char c = (unsigned char)lx->s[lx->pos];
        if (c == '\\') {
            lx->pos += 2;
            continue;
        }
        lx->pos++;
        if (c == '(')
            depth++;
        else if (c == ')' && --depth == 0)
            return 0;
    }
    lx->pos = lx->end;
    return -1;
}

/* addr_skip_cfws - skip white space and comments; -1 on an unterminated comment */
static inline int addr_skip_cfws(struct addr_lex *lx)
{
    while (lx->pos < lx->end) {
        unsigned char c = (unsigned char)lx->s[lx->pos];
        if (addr_is_wsp(c))
            lx->pos++;
        else if (c == '(') {
            if (addr_skip_comment(lx) < 0)
                return -1;
        } else
            break;
    }
    return 0;
}

/*
 * addr_scan_until - pos is after an opening delimiter; find close, honouring
 * quoted-pairs. A NUL, even escaped (obs-qp), ends the scan as bad: it is not
 * qtext or dtext, and inside a key it would cut the C string short.
 */
static int addr_scan_until(struct addr_lex *lx, char close)
{
    const char *p = lx->s + lx->pos, *end = lx->s + lx->end;
    while (p < end) {
        /* the common case: plain text up to the closing delimiter */
        while (p < end && !(addr_class[(unsigned char)*p] & ADDR_C_QSTOP) && *p != close)
            p++;
        if (p >= end)
            break;
        char c = *p;
        if (c == '\0')
            return -1;
        if (c == '\\') {
            if (p + 1 < end && p[1] == '\0')
                return -1;
            p += 2;
            continue;
        }
        p++;
        if (c == close) {
            lx->pos = (size_t)(p - lx->s);
            return 0;
        }
        if (close == ']') /* "[" inside a domain literal */
            return -1;
    }
    lx->pos = lx->end;
    return -1;
}

/* addr_scan_angle - pos is after "<"; find the matching ">" past quotes, literals, comments */
static int addr_scan_angle(struct addr_lex *lx)
{
    while (lx->pos < lx->end) {
        /* the common case: address characters up to ">" */
        const unsigned char *p = (const unsigned char *)lx->s + lx->pos;
        const unsigned char *end = (const unsigned char *)lx->s + lx->end;
        while (p < end && (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)))
            p++;
        lx->pos = (size_t)((const char *)p - lx->s);
        if (p == end)
            break;
        char c = lx->s[lx->pos];
        if (c == '>') {
            lx->pos++;
            return 0;
        }
        if (c == '"' || c == '[') {
            lx->pos++;
            if (addr_scan_until(lx, c == '"' ? '"' : ']') < 0)
                return -1;
        } else if (c == '(') {
            if (addr_skip_comment(lx) < 0)
                return -1;
        } else if (c == '<') {
            return -1;
        } else
            lx->pos++;
    }
    return -1;
}

/*
 * addr_fast_angle - pos is after "<": when what follows is exactly
 * local@domain> with atext and dots only (the form nearly every mail uses),
 * move past the ">" and return the offset of the "@"; else leave pos alone
 * and return 0. One pass instead of a scan and a parse.
 */
static size_t addr_fast_angle(struct addr_lex *lx)
{
    const unsigned char *start = (const unsigned char *)lx->s + lx->pos;
    const unsigned char *end = (const unsigned char *)lx->s + lx->end;
    const unsigned char *p = start;
    while (p < end && (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)))
        p++;
    if (p == start || p >= end || *p != '@')
        return 0;
    const unsigned char *at = p++;
    if (p >= end || !(addr_class[*p] & ADDR_C_ATEXT))
        return 0;
    for (; p < end; p++) {
        if (addr_class[*p] & ADDR_C_ATEXT)
            continue;
        if (*p != '.' || p[-1] == '.')
            break;
    }
    if (p >= end || *p != '>' || p[-1] == '.')
        return 0;
    lx->pos = (size_t)((const char *)p - lx->s) + 1;
    return (size_t)((const char *)at - lx->s);
}

/* addr_next - the next token after CFWS */
static void addr_next(struct addr_lex *lx, struct addr_tok *tok)
{
    if (addr_skip_cfws(lx) < 0) {
        tok->kind = TOK_BAD;
        tok->start = tok->end = lx->end;
        return;
    }
    tok->start = lx->pos;
    tok->at = 0;
    if (lx->pos >= lx->end) {
        tok->kind = TOK_END;
        tok->end = lx->pos;
        return;
    }
    unsigned char c = (unsigned char)lx->s[lx->pos];
    int rc = 0;
    if (c == '"') {
        lx->pos++;
        tok->kind = TOK_QSTRING;
        rc = addr_scan_until(lx, '"');
    } else if (c == '[') {
        lx->pos++;
        tok->kind = TOK_LITERAL;
        rc = addr_scan_until(lx, ']');
    } else if (c == '<') {
        lx->pos++;
        tok->kind = TOK_ANGLE;
        tok->at = addr_fast_angle(lx);
        if (tok->at == 0)
            rc = addr_scan_angle(lx);
    } else if (addr_class[c] & (ADDR_C_ATEXT | ADDR_C_DOT)) {
        tok->kind = TOK_ATOM;
        const unsigned char *p = (const unsigned char *)lx->s + lx->pos + 1;
        const unsigned char *end = (const unsigned char *)lx->s + lx->end;
        while (p < end && (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)))
            p++;
        lx->pos = (size_t)((const char *)p - lx->s);
    } else {
        tok->kind = TOK_SPECIAL;
        lx->pos++;
    }
    if (rc < 0) {
        tok->kind = TOK_BAD;
        lx->pos = lx->end;
    }
    if (lx->pos > lx->end)
        lx->pos = lx->end;
    tok->end = lx->pos;
}

static int addr_tok_is(const char *s, const struct addr_tok *t, char special)
{
    return t->kind == TOK_SPECIAL && s[t->start] == special;
}

static int addr_tok_is_word(const struct addr_tok *t)
{
    return t->kind == TOK_ATOM || t->kind == TOK_QSTRING;
}

/*
 * addr_spec_from_tokens - tok[0..n) must be exactly local-part "@" domain.
 * Fills the spec, local and domain spans and flags; -1 if not an addr-spec.
 */
static int addr_spec_from_tokens(const char *s, const struct addr_tok *tok, size_t n,
                                 struct addr_mailbox *m)
{
    size_t at = 0;
    while (at < n && addr_tok_is_word(&tok[at]))
        at++;
    if (at == 0 || at + 1 >= n || !addr_tok_is(s, &tok[at], '@'))
        return -1;
    /* obs-local-part: words must be joined by dots, not juxtaposed */
    for (size_t i = 1; i < at; i++) {
        int dot_between = (tok[i - 1].kind == TOK_ATOM && s[tok[i - 1].end - 1] == '.') ||
                          (tok[i].kind == TOK_ATOM && s[tok[i].start] == '.');
        if (!dot_between)
            return -1;
    }
    size_t dstart = at + 1;
    if (tok[dstart].kind == TOK_LITERAL) {
        if (dstart + 1 != n)
            return -1;
        m->flags |= ADDR_F_LITERAL;
    } else {
        /* obs-domain: atoms joined by dots, possibly with CFWS in between */
        size_t i;
        for (i = dstart; i < n; i++) {
            if (tok[i].kind != TOK_ATOM)
                return -1;
            if (i > dstart && s[tok[i - 1].end - 1] != '.' && s[tok[i].start] != '.')
                return -1;
            if (i > dstart && s[tok[i - 1].end - 1] == '.' && s[tok[i].start] == '.')
                return -1;
            if (s[tok[i].start] == '.' && i == dstart)
                return -1;
            for (size_t k = tok[i].start + 1; k < tok[i].end; k++)
                if (s[k] == '.' && s[k - 1] == '.')
                    return -1;
        }
        if (s[tok[n - 1].end - 1] == '.')
            return -1;
    }
    for (size_t i = 0; i < at; i++)
        if (tok[i].kind == TOK_QSTRING)
            m->flags |= ADDR_F_QUOTED;
    for (size_t i = 1; i < n; i++)
        if (tok[i].start != tok[i - 1].end)
            m->flags |= ADDR_F_OBS;
    m->local.off = tok[0].start;
    m->local.len = tok[at - 1].end - tok[0].start;
    m->domain.off = tok[dstart].start;
    m->domain.len = tok[n - 1].end - tok[dstart].start;
    m->spec.off = tok[0].start;
    m->spec.len = tok[n - 1].end - tok[0].start;
    return 0;
}

/*
 * addr_fast_spec - the common form local@domain with only atext and dots, no
 * CFWS, a valid dot-atom domain: spans directly, in one pass. 0, or -1 to let
 * the full parser decide.
 */
static int addr_fast_spec(const char *s, size_t start, size_t end, struct addr_mailbox *m)
{
    const unsigned char *p = (const unsigned char *)s + start;
    const unsigned char *e = (const unsigned char *)s + end;
    const unsigned char *at;
    while (p < e && (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)))
        p++;
    if (p == (const unsigned char *)s + start || p >= e || *p != '@')
        return -1;
    at = p++;
    if (p >= e || *p == '.')
        return -1;
    for (; p < e; p++) {
        if (addr_class[*p] & ADDR_C_ATEXT)
            continue;
        if (*p != '.' || p[-1] == '.' || p + 1 == e)
            return -1;
    }
    size_t at_off = (size_t)((const char *)at - s);
    m->spec = (struct addr_span){start, end - start};
    m->local = (struct addr_span){start, at_off - start};
    m->domain = (struct addr_span){at_off + 1, end - at_off - 1};
    return 0;
}

/* addr_parse_angle - parse the inside of an angle-addr token */
static int addr_parse_angle(const char *s, const struct addr_tok *angle, struct addr_mailbox *m)
{
    if (angle->at) {
        m->spec = (struct addr_span){angle->start + 1, angle->end - angle->start - 2};
        m->local = (struct addr_span){angle->start + 1, angle->at - angle->start - 1};
        m->domain = (struct addr_span){angle->at + 1, angle->end - angle->at - 2};
        return 0;
    }
    if (addr_fast_spec(s, angle->start + 1, angle->end - 1, m) == 0)
        return 0;
    struct addr_lex lx = {s, angle->end - 1, angle->start + 1};
    struct addr_tok tok[LIMIT_ELEMENT_TOKENS];
    size_t n = 0;
    struct addr_tok t;

    addr_next(&lx, &t);
    if (addr_tok_is(s, &t, '@')) {
        /* obs-route: 1#("@" domain) ":" -- skip to the colon */
        while (t.kind != TOK_END && !addr_tok_is(s, &t, ':')) {
            if (t.kind == TOK_BAD || t.kind == TOK_QSTRING || t.kind == TOK_ANGLE)
                return -1;
            addr_next(&lx, &t);
        }
        if (t.kind == TOK_END)
            return -1;
        m->flags |= ADDR_F_ROUTE;
        addr_next(&lx, &t);
    }
    while (t.kind != TOK_END) {
        if (t.kind == TOK_BAD || t.kind == TOK_ANGLE || n == LIMIT_ELEMENT_TOKENS)
            return -1;
        tok[n++] = t;
        addr_next(&lx, &t);
    }
    return addr_spec_from_tokens(s, tok, n, m);
}

/* addr_parse_element - one mailbox from the tokens of a list element */
static int addr_parse_element(const char *s, const struct addr_tok *tok, size_t n,
                              struct addr_mailbox *m)
{
    size_t angle = n;
    for (size_t i = 0; i < n; i++) {
        if (tok[i].kind == TOK_BAD)
            return -1;
        if (tok[i].kind == TOK_ANGLE && angle == n)
            angle = i;
    }
    if (angle == n)
        return addr_spec_from_tokens(s, tok, n, m);
    if (angle != n - 1)
        return -1;
    for (size_t i = 0; i < angle; i++) {
        if (addr_tok_is_word(&tok[i]))
            continue;
        /*
         * Outlook and Exchange write 'user@example.com' <user@example.com>: an
         * "@" in an unquoted display name. Not RFC 5322, but the angle-addr is
         * unambiguous, so accept it and say so with ADDR_F_LAX_NAME.
         */
        if (!addr_tok_is(s, &tok[i], '@'))
            return -1;
        m->flags |= ADDR_F_LAX_NAME;
    }
    m->flags |= ADDR_F_ANGLE;
    if (angle > 0) {
        m->name.off = tok[0].start;
        m->name.len = tok[angle - 1].end - tok[0].start;
    }
    return addr_parse_angle(s, &tok[angle], m);
}

/* addr_trim - shrink [start, end) past surrounding white space */
static struct addr_span addr_trim(const char *s, size_t start, size_t end)
{
    while (start < end && addr_is_wsp((unsigned char)s[start]))
        start++;
    while (end > start && addr_is_wsp((unsigned char)s[end - 1]))
        end--;
    return (struct addr_span){start, end - start};
}

/* addr_skip_wsp - white space only (no comments) from p */
static inline const unsigned char *addr_skip_wsp(const unsigned char *p, const unsigned char *end)
{
    while (p < end && (addr_class[*p] & ADDR_C_WSP))
        p++;
    return p;
}

/*
 * addr_fast_element - the forms nearly every element takes, in one pass and
 * without tokens: [words] <local@domain>  or  local@domain, where words are
 * atoms or quoted strings separated by white space, followed by white space
 * and "," or the end. Fills m exactly as the general parser would and returns
 * 1 (stopped at ",", now consumed) or 2 (the end); 0 leaves lx alone for the
 * general parser (comments, groups, obsolete forms, anything unusual).
 */
static int addr_fast_element(struct addr_lex *lx, struct addr_mailbox *m)
{
    const unsigned char *base = (const unsigned char *)lx->s;
    const unsigned char *end = base + lx->end;
    const unsigned char *p = addr_skip_wsp(base + lx->pos, end);
    const unsigned char *start = p, *name_end = NULL;

    if (p == end)
        return 0;
    if (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)) {
        const unsigned char *q = p;
        while (q < end && (addr_class[*q] & (ADDR_C_ATEXT | ADDR_C_DOT)))
            q++;
        if (q < end && *q == '@') {
            /* bare local@domain */
            const unsigned char *at = q++;
            if (q >= end || !(addr_class[*q] & ADDR_C_ATEXT))
                return 0;
            for (; q < end; q++) {
                if (addr_class[*q] & ADDR_C_ATEXT)
                    continue;
                if (*q != '.' || q[-1] == '.')
                    break;
            }
            if (q[-1] == '.')
                return 0;
            const unsigned char *spec_end = q;
            q = addr_skip_wsp(q, end);
            if (q < end && *q != ',')
                return 0;
            memset(m, 0, sizeof(*m));
            m->whole = m->spec = (struct addr_span){(size_t)(p - base), (size_t)(spec_end - p)};
            m->local = (struct addr_span){(size_t)(p - base), (size_t)(at - p)};
            m->domain = (struct addr_span){(size_t)(at + 1 - base), (size_t)(spec_end - at - 1)};
            lx->pos = (size_t)(q - base) + (q < end);
            return q < end ? 1 : 2;
        }
    }
    /* display-name words, then "<" (the general parser's token limit applies) */
    size_t words = 0;
    while (p < end && *p != '<') {
        if (++words >= LIMIT_ELEMENT_TOKENS)
            return 0;
        if (*p == '"') {
            p++;
            while (p < end && *p != '"' && *p != '\\' && *p != '\0')
                p++;
            if (p >= end || *p != '"')
                return 0;
            p++;
        } else if (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)) {
            while (p < end && (addr_class[*p] & (ADDR_C_ATEXT | ADDR_C_DOT)))
                p++;
        } else
            return 0;
        name_end = p;
        p = addr_skip_wsp(p, end);
    }
    if (p >= end)
        return 0;
    struct addr_lex angle_lx = {lx->s, lx->end, (size_t)(p + 1 - base)};
    size_t at = addr_fast_angle(&angle_lx);
    if (at == 0)
        return 0;
    const unsigned char *angle_end = base + angle_lx.pos; /* after ">" */
    const unsigned char *q = addr_skip_wsp(angle_end, end);
    if (q < end && *q != ',')
        return 0;
    size_t lt = (size_t)(p - base), gt = angle_lx.pos - 1;
    memset(m, 0, sizeof(*m));
    m->flags = ADDR_F_ANGLE;
    m->whole = (struct addr_span){(size_t)(start - base), (size_t)(angle_end - start)};
    if (name_end)
        m->name = (struct addr_span){(size_t)(start - base), (size_t)(name_end - start)};
    m->spec = (struct addr_span){lt + 1, gt - lt - 1};
    m->local = (struct addr_span){lt + 1, at - lt - 1};
    m->domain = (struct addr_span){at + 1, gt - at - 1};
    lx->pos = (size_t)(q - base) + (q < end);
    return q < end ? 1 : 2;
}

static size_t addr_parse_list_impl(const char *in, size_t len, struct addr_mailbox *out, size_t max,
                                   int fast_paths);

/* addr_parse_list - tokenize an address-list field body */
size_t addr_parse_list(const char *in, size_t len, struct addr_mailbox *out, size_t max)
{
    return addr_parse_list_impl(in, len, out, max, 1);
}

/* addr_parse_list_general - the same without the fast path (differential tests) */
size_t addr_parse_list_general(const char *in, size_t len, struct addr_mailbox *out, size_t max)
{
    return addr_parse_list_impl(in, len, out, max, 0);
}

static size_t addr_parse_list_impl(const char *in, size_t len, struct addr_mailbox *out, size_t max,
                                   int fast_paths)
{
    struct addr_lex lx = {in, len, 0};
    struct addr_tok tok[LIMIT_ELEMENT_TOKENS];
    size_t count = 0;
    int in_group = 0;

    for (;;) {
        struct addr_mailbox scratch;
        int fast = fast_paths ? addr_fast_element(&lx, count < max ? &out[count] : &scratch) : 0;
        if (fast) {
            if (in_group)
                (count < max ? &out[count] : &scratch)->flags |= ADDR_F_GROUP;
            count++;
            if (fast == 2)
                break;
            continue;
        }
        size_t elem_start = lx.pos;
        size_t n = 0;
        int overflow = 0, group_error = 0;
        struct addr_tok t;

        for (;;) {
            addr_next(&lx, &t);
            if (t.kind == TOK_END || addr_tok_is(in, &t, ',') || addr_tok_is(in, &t, ';'))
                break;
            if (addr_tok_is(in, &t, ':')) {
                int phrase = 1;
                for (size_t i = 0; i < n; i++)
                    phrase &= addr_tok_is_word(&tok[i]);
                if (in_group || !phrase || overflow) {
                    group_error = 1;
                    continue;
                }
                in_group = 1; /* a group's display name: members follow */
                n = 0;
                elem_start = lx.pos;
                continue;
            }
            if (n == LIMIT_ELEMENT_TOKENS)
                overflow = 1;
            else
                tok[n++] = t;
        }
        size_t elem_end = t.kind == TOK_END ? lx.pos : t.start;
        if (n > 0 || overflow || group_error) {
            /* fill the caller's slot directly; past max, the scratch one */
            struct addr_mailbox *m = count < max ? &out[count] : &scratch;
            memset(m, 0, sizeof(*m));
            m->whole = addr_trim(in, elem_start, elem_end);
            if (overflow || group_error || addr_parse_element(in, tok, n, m) < 0) {
                struct addr_span whole = m->whole;
                memset(m, 0, sizeof(*m));
                m->whole = whole;
                m->flags = ADDR_F_BAD;
            }
            if (in_group)
                m->flags |= ADDR_F_GROUP;
            count++;
        }
        if (t.kind == TOK_END)
            break;
        if (addr_tok_is(in, &t, ';'))
            in_group = 0;
    }
    return count;
}

/* addr_parse_spec - exactly one addr-spec with nothing around it */
int addr_parse_spec(const char *in, size_t len, struct addr_mailbox *out)
{
    struct addr_lex lx = {in, len, 0};
    struct addr_tok tok[LIMIT_ELEMENT_TOKENS];
    size_t n = 0;
    struct addr_tok t;

    memset(out, 0, sizeof(*out));
    /* no folding at all, not even inside a quoted string */
    for (size_t i = 0; i < len; i++)
        if (in[i] == '\r' || in[i] == '\n')
            return -1;
    for (;;) {
        addr_next(&lx, &t);
        if (t.kind == TOK_END)
            break;
        if (t.kind == TOK_BAD || t.kind == TOK_ANGLE || n == LIMIT_ELEMENT_TOKENS)
            return -1;
        /* a quoted string may hold spaces ("john doe"@x); a literal may not */
        if (t.kind != TOK_QSTRING)
            for (size_t i = t.start; i < t.end; i++)
                if (addr_is_wsp((unsigned char)in[i]))
                    return -1;
        tok[n++] = t;
    }
    /* tokens back to back from the first byte to the last: no CFWS anywhere */
    if (addr_spec_from_tokens(in, tok, n, out) < 0 || out->flags & ADDR_F_OBS ||
        out->spec.off != 0 || out->spec.len != len)
        return -1;
    out->whole = out->spec;
    return 0;
}

/* addr_is_dot_atom - s[0..len) is atext runs separated by single dots */
static int addr_is_dot_atom(const char *s, size_t len)
{
    if (len == 0 || s[0] == '.' || s[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (s[i - 1] == '.')
                return 0;
        } else if (!addr_is_atext((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

/* addr_put - append to out, tracking overflow */
static void addr_put(char *out, size_t outsize, size_t *used, const char *s, size_t len)
{
    if (*used + len < outsize)
        memcpy(out + *used, s, len);
    *used += len;
}

/* addr_copy_words - copy the tokens of [start, end) without CFWS; unescape quoted strings */
static void addr_copy_words(const char *in, size_t start, size_t end, char *out, size_t outsize,
                            size_t *used, int unquote)
{
    struct addr_lex lx = {in, end, start};
    struct addr_tok t;
    for (addr_next(&lx, &t); t.kind != TOK_END && t.kind != TOK_BAD; addr_next(&lx, &t)) {
        if (t.kind == TOK_QSTRING && unquote) {
            for (size_t i = t.start + 1; i + 1 < t.end; i++) {
                if (in[i] == '\\' && i + 2 < t.end)
                    i++;
                if (in[i] == '\r' || in[i] == '\n')
                    continue; /* FWS inside a quoted string is not part of it */
                addr_put(out, outsize, used, in + i, 1);
            }
        } else
            addr_put(out, outsize, used, in + t.start, t.end - t.start);
    }
}

/* addr_key - canonical local@domain for lookups and traces */
int addr_key(const char *in, const struct addr_mailbox *m, char *out, size_t outsize)
{
    size_t used = 0;
    if (m->flags & ADDR_F_BAD || outsize == 0)
        return -1;
    if (m->flags & ADDR_F_QUOTED) {
        /* "alexw"@x is alexw@x; a local part that needs its quotes keeps them */
        addr_copy_words(in, m->local.off, m->local.off + m->local.len, out, outsize, &used, 1);
        if (used >= outsize)
            return -1;
        if (!addr_is_dot_atom(out, used)) {
            size_t raw = used;
            char tmp[LIMIT_ADDRESS];
            if (raw >= sizeof(tmp))
                return -1;
            memcpy(tmp, out, raw);
            used = 0;
            addr_put(out, outsize, &used, "\"", 1);
            for (size_t i = 0; i < raw; i++) {
                if (tmp[i] == '"' || tmp[i] == '\\')
                    addr_put(out, outsize, &used, "\\", 1);
                addr_put(out, outsize, &used, tmp + i, 1);
            }
            addr_put(out, outsize, &used, "\"", 1);
        }
    } else
        addr_copy_words(in, m->local.off, m->local.off + m->local.len, out, outsize, &used, 0);
    addr_put(out, outsize, &used, "@", 1);
    addr_copy_words(in, m->domain.off, m->domain.off + m->domain.len, out, outsize, &used, 0);
    if (used >= outsize)
        return -1;
    out[used] = '\0';
    return (int)used;
}
