/*
 * smtpproto - command lines of the SMTP server side: the verb, the path in
 * MAIL FROM / RCPT TO, the ESMTP parameters of RFC 1870, 6152, 6531 and
 * 3461, and the arguments of BDAT (RFC 3030). Everything works on
 * (pointer, length) and answers with spans into the input, so the same code
 * serves smtpd, the unit tests and the fuzzer.
 *
 * The behaviour is the one smtpd always had (the integration tests pin its
 * replies): parameters are separated by runs of spaces; a parameter name is
 * matched case-insensitively; the last of a repeated parameter wins; the
 * first bad parameter ends the parse. The part of ORCPT before ";" (the
 * address type) is not checked.
 *
 * Does not: reply, allocate, or know the configuration (the SIZE limit is
 * an argument). The DATA decoder is in smtpproto_data.c.
 */
#include "smtpproto.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>

#include "addr.h"
#include "util.h"

static const struct {
    const char *name;
    enum smtpproto_verb verb;
} smtpproto_verbs[] = {
    {"EHLO", SMTPPROTO_EHLO}, {"HELO", SMTPPROTO_HELO}, {"MAIL", SMTPPROTO_MAIL},
    {"RCPT", SMTPPROTO_RCPT}, {"DATA", SMTPPROTO_DATA}, {"BDAT", SMTPPROTO_BDAT},
    {"RSET", SMTPPROTO_RSET}, {"NOOP", SMTPPROTO_NOOP}, {"QUIT", SMTPPROTO_QUIT},
    {"VRFY", SMTPPROTO_VRFY}, {"HELP", SMTPPROTO_HELP}, {"STARTTLS", SMTPPROTO_STARTTLS},
};

/* smtpproto_is - span s of p equals word (ASCII case-insensitive) */
static int smtpproto_is(const char *p, struct smtpproto_span s, const char *word)
{
    size_t n = strlen(word);
    return s.len == n && util_strncaseeq(p + s.off, word, n);
}

/* smtpproto_command - match the verb table; the first match wins */
enum smtpproto_verb smtpproto_command(const char *line, size_t len, size_t *arg_off)
{
    *arg_off = 0;
    if (memchr(line, '\0', len))
        return SMTPPROTO_NUL;
    for (size_t i = 0; i < ARRAY_LEN(smtpproto_verbs); i++) {
        size_t n = strlen(smtpproto_verbs[i].name);
        if (len < n || !util_strncaseeq(line, smtpproto_verbs[i].name, n) ||
            (len > n && line[n] != ' '))
            continue;
        while (n < len && line[n] == ' ')
            n++;
        *arg_off = n;
        return smtpproto_verbs[i].verb;
    }
    return SMTPPROTO_UNKNOWN;
}

/* smtpproto_parse_path - "<...>" with quoted strings; a source route is dropped */
int smtpproto_parse_path(const char *arg, size_t len, struct smtpproto_span *addr, size_t *rest)
{
    size_t i = 0;
    while (i < len && arg[i] == ' ')
        i++;
    if (i >= len || arg[i] != '<')
        return -1;
    size_t start = ++i;
    int quoted = 0;
    for (; i < len; i++) {
        /* a ">" inside a quoted local part ("a>b"@host) does not end the path */
        if (arg[i] == '\\' && quoted && i + 1 < len)
            i++;
        else if (arg[i] == '"')
            quoted = !quoted;
        else if (arg[i] == '>' && !quoted)
            break;
    }
    if (i >= len)
        return -1;
    size_t end = i;
    if (arg[start] == '@') { /* <@a,@b:user@host> (RFC 5321 §4.1.2 obs-route) */
        const char *colon = memchr(arg + start, ':', end - start);
        if (colon == NULL)
            return -1;
        start = (size_t)(colon - arg) + 1;
    }
    addr->off = start;
    addr->len = end - start;
    *rest = end + 1;
    return 0;
}

/* smtpproto_addr_check - UTF-8 first: the reply differs (553 5.6.7) */
enum smtpproto_addr smtpproto_addr_check(const char *addr, size_t len, int smtputf8)
{
    struct addr_mailbox m;
    int needs_utf8 = 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)addr[i] >= 0x80)
            needs_utf8 = 1;
    if (needs_utf8 && !smtputf8)
        return SMTPPROTO_ADDR_NEEDS_UTF8;
    if (addr_parse_spec(addr, len, &m) == 0 && len < LIMIT_ADDRESS)
        return SMTPPROTO_ADDR_OK;
    return SMTPPROTO_ADDR_BAD;
}

/* smtpproto_xtext_ok - RFC 3461 §4: "=" and controls are never allowed */
int smtpproto_xtext_ok(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 33 || c > 126 || c == '=')
            return 0;
        if (c == '+' && !(i + 2 < len && isxdigit((unsigned char)v[i + 1]) &&
                          isxdigit((unsigned char)v[i + 2])))
            return 0;
    }
    return 1;
}

/* smtpproto_notify - NEVER alone, or any of SUCCESS, FAILURE, DELAY */
int smtpproto_notify(const char *v, size_t len, unsigned *out)
{
    static const struct {
        const char *name;
        unsigned bit;
    } words[] = {
        {"NEVER", SMTPPROTO_NOTIFY_NEVER},
        {"SUCCESS", SMTPPROTO_NOTIFY_SUCCESS},
        {"FAILURE", SMTPPROTO_NOTIFY_FAILURE},
        {"DELAY", SMTPPROTO_NOTIFY_DELAY},
    };
    *out = 0;
    if (len > LIMIT_NOTIFY)
        return -1;
    for (size_t i = 0; i < len;) {
        const char *comma = memchr(v + i, ',', len - i);
        struct smtpproto_span word = {i, comma ? (size_t)(comma - v) - i : len - i};
        i = word.off + word.len + 1;
        if (word.len == 0) /* ",," and a trailing "," are skipped (as strtok did) */
            continue;
        size_t w = 0;
        while (w < ARRAY_LEN(words) && !smtpproto_is(v, word, words[w].name))
            w++;
        if (w == ARRAY_LEN(words))
            return -1;
        *out |= words[w].bit;
    }
    if ((*out & SMTPPROTO_NOTIFY_NEVER) && *out != SMTPPROTO_NOTIFY_NEVER)
        return -1;
    return *out ? 0 : -1;
}

/* smtpproto_number - strtol(v, &end, 10) in the C locale, over a span */
void smtpproto_number(const char *v, size_t len, long *value, size_t *used)
{
    size_t i = 0;
    int neg = 0, over = 0;
    unsigned long acc = 0;
    while (i < len && (v[i] == ' ' || (v[i] >= '\t' && v[i] <= '\r')))
        i++;
    if (i < len && (v[i] == '+' || v[i] == '-'))
        neg = v[i++] == '-';
    unsigned long limit = neg ? (unsigned long)LONG_MAX + 1 : (unsigned long)LONG_MAX;
    size_t digits = i;
    for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
        unsigned long d = (unsigned long)(v[i] - '0');
        if (over || acc > (limit - d) / 10)
            over = 1;
        else
            acc = acc * 10 + d;
    }
    *value = 0;
    *used = 0;
    if (i == digits) /* no digits: nothing is used, not even white space or a sign */
        return;
    *used = i;
    if (over)
        *value = neg ? LONG_MIN : LONG_MAX;
    else if (neg)
        *value = acc == limit ? LONG_MIN : -(long)acc;
    else
        *value = (long)acc;
}

/* smtpproto_next_param - the next space-separated "name[=value]" from *pos; 0 at the end */
static int smtpproto_next_param(const char *p, size_t len, size_t *pos, struct smtpproto_span *name,
                                struct smtpproto_span *value, int *has_value)
{
    size_t i = *pos;
    while (i < len && p[i] == ' ')
        i++;
    if (i >= len)
        return 0;
    size_t start = i;
    while (i < len && p[i] != ' ')
        i++;
    const char *eq = memchr(p + start, '=', i - start);
    *has_value = eq != NULL;
    name->off = start;
    name->len = eq ? (size_t)(eq - p) - start : i - start;
    value->off = eq ? (size_t)(eq - p) + 1 : i;
    value->len = i - value->off;
    *pos = i;
    return 1;
}

/* smtpproto_mail_params - SIZE, BODY, SMTPUTF8, RET, ENVID */
enum smtpproto_result smtpproto_mail_params(const char *params, size_t len, long size_limit,
                                            struct smtpproto_mail *out)
{
    struct smtpproto_span name, val;
    size_t pos = 0;
    int has_val;
    memset(out, 0, sizeof(*out));
    out->ret_full = -1; /* RET not given */
    while (smtpproto_next_param(params, len, &pos, &name, &val, &has_val)) {
        if (smtpproto_is(params, name, "SIZE") && has_val) {
            long size;
            size_t used;
            smtpproto_number(params + val.off, val.len, &size, &used);
            if (used != val.len || size < 0) /* "SIZE=" reads as 0, as strtol does */
                return SMTPPROTO_BAD_SIZE;
            if (size > size_limit)
                return SMTPPROTO_SIZE_EXCEEDED;
            out->size = size;
        } else if (smtpproto_is(params, name, "BODY") && has_val &&
                   (smtpproto_is(params, val, "7BIT") || smtpproto_is(params, val, "8BITMIME"))) {
            out->body_8bit = smtpproto_is(params, val, "8BITMIME");
        } else if (smtpproto_is(params, name, "SMTPUTF8") && !has_val) {
            out->smtputf8 = 1;
        } else if (smtpproto_is(params, name, "RET") && has_val &&
                   (smtpproto_is(params, val, "FULL") || smtpproto_is(params, val, "HDRS"))) {
            out->ret_full = smtpproto_is(params, val, "FULL"); /* 1 FULL, 0 HDRS */
        } else if (smtpproto_is(params, name, "ENVID") && has_val && val.len <= LIMIT_DSN_PARAM &&
                   smtpproto_xtext_ok(params + val.off, val.len)) {
            out->has_envid = 1;
            out->envid = val;
        } else {
            out->bad = name;
            return SMTPPROTO_UNSUPPORTED;
        }
    }
    return SMTPPROTO_OK;
}

/* smtpproto_rcpt_params - NOTIFY, ORCPT; every parameter needs a value */
enum smtpproto_result smtpproto_rcpt_params(const char *params, size_t len,
                                            struct smtpproto_rcpt *out)
{
    struct smtpproto_span name, val;
    size_t pos = 0;
    int has_val;
    memset(out, 0, sizeof(*out));
    while (smtpproto_next_param(params, len, &pos, &name, &val, &has_val)) {
        unsigned notify;
        const char *v = params + val.off;
        const char *semi = has_val ? memchr(v, ';', val.len) : NULL;
        if (has_val && smtpproto_is(params, name, "NOTIFY") &&
            smtpproto_notify(v, val.len, &notify) == 0) {
            out->notify = notify;
            continue;
        }
        if (semi && smtpproto_is(params, name, "ORCPT") && val.len <= LIMIT_DSN_PARAM &&
            smtpproto_xtext_ok(semi + 1, val.len - (size_t)(semi + 1 - v))) {
            out->has_orcpt = 1;
            out->orcpt = val;
            continue;
        }
        out->bad = name;
        return SMTPPROTO_UNSUPPORTED;
    }
    return SMTPPROTO_OK;
}

/* smtpproto_bdat_args - RFC 3030 §2: BDAT chunk-size [SP LAST] */
int smtpproto_bdat_args(const char *arg, size_t len, long *size, int *last)
{
    size_t used;
    smtpproto_number(arg, len, size, &used);
    size_t i = used;
    while (i < len && arg[i] == ' ')
        i++;
    *last = len - i == 4 && util_strncaseeq(arg + i, "LAST", 4);
    if (used == 0 || *size < 0 || (i < len && !*last))
        return -1;
    return 0;
}
