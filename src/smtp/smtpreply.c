/*
 * smtpreply - server replies and MX answers, as the SMTP client reads them.
 *
 * Replies (RFC 5321 §4.2): a line is "ddd", "ddd text" or "ddd-text"; the
 * first digit is 2 to 5. The lines of a multi-line reply are joined with one
 * space into "ddd text text ..." for logs and bounces, cut at
 * SMTPREPLY_TEXT_SIZE; the code is the first line's. The enhanced status
 * (RFC 3463) is taken from the text only when its class matches the code's,
 * so "250 5.0.0 ok" is 2.0.0, as Postfix reads it.
 *
 * MX answers (RFC 1035): the question section is skipped, every answer
 * record of type MX is read (the class is not checked; a CNAME before the
 * MX records is simply skipped), names are expanded with dn_expand, which
 * bounds compression pointers and loops. Equal preferences are ordered by a
 * pseudo-random tie-break from the caller's seed (RFC 5321 §5.1: "randomize").
 *
 * Does not: send anything, keep a reply past its last line, or resolve the
 * MX hosts' addresses.
 */
#include "smtpreply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/nameser.h>
#include <resolv.h>

#include "util.h"

/* smtpreply_init - between replies */
void smtpreply_init(struct smtpreply *r)
{
    r->code = 0;
    r->lines = 0;
    r->len = 0;
    r->text[0] = '\0';
}

/* smtpreply_parse_line - "ddd" [(" " / "-") text] */
int smtpreply_parse_line(const char *line, size_t len, struct smtpreply_line *out)
{
    if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9' ||
        line[2] < '0' || line[2] > '9' || (len > 3 && line[3] != ' ' && line[3] != '-'))
        return -1;
    out->code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    out->more = len > 3 && line[3] == '-';
    return 0;
}

/* smtpreply_text_add - reply text, cut at SMTPREPLY_TEXT_SIZE */
static void smtpreply_text_add(struct smtpreply *r, const char *s, size_t len)
{
    size_t room = sizeof(r->text) - 1 - r->len;
    if (len > room)
        len = room;
    memcpy(r->text + r->len, s, len);
    r->len += len;
    r->text[r->len] = '\0';
}

/* smtpreply_add - one more line of the reply */
int smtpreply_add(struct smtpreply *r, const char *line, size_t len,
                  const struct smtpreply_line *parsed)
{
    if (r->lines == 0) {
        r->code = parsed->code;
        r->len = 0;
        smtpreply_text_add(r, line, 3);
        if (len > 3)
            smtpreply_text_add(r, " ", 1);
    } else if (len > 4 && r->len + 1 < sizeof(r->text)) {
        smtpreply_text_add(r, " ", 1);
    }
    if (len > 4)
        smtpreply_text_add(r, line + 4, len - 4);
    if (++r->lines > SMTPREPLY_LIMIT_LINES) {
        smtpreply_init(r); /* whatever comes next (another server) starts afresh */
        return -1;
    }
    if (parsed->more)
        return 0;
    r->lines = 0;
    return 1;
}

/* smtpreply_status - "5.1.1" from the reply text when it matches the code's class */
void smtpreply_status(const char *text, char out[SMTPREPLY_STATUS_SIZE])
{
    size_t len = strlen(text) > 4 ? strlen(text + 4) : 0;
    const char *t = len ? text + 4 : text;
    size_t a = len > 2 ? strspn(t + 2, "0123456789") : 0;
    size_t b = a && t[2 + a] == '.' ? strspn(t + 3 + a, "0123456789") : 0;
    if (len > 4 && t[0] == text[0] && t[1] == '.' && a >= 1 && a <= 3 && b >= 1 && b <= 3 &&
        (t[3 + a + b] == ' ' || t[3 + a + b] == '\0'))
        snprintf(out, SMTPREPLY_STATUS_SIZE, "%.*s", (int)(3 + a + b), t);
    else
        snprintf(out, SMTPREPLY_STATUS_SIZE, "%c.0.0", text[0]);
}

/* smtpreply_ehlo_keyword - the keywords we use; "SIZE n" gives the peer's limit */
void smtpreply_ehlo_keyword(const char *kw, size_t len, unsigned *ext, unsigned long *size_max)
{
    static const struct {
        const char *name;
        unsigned bit;
    } known[] = {
        {"STARTTLS", SMTPREPLY_EXT_STARTTLS}, {"PIPELINING", SMTPREPLY_EXT_PIPELINING},
        {"SIZE", SMTPREPLY_EXT_SIZE},         {"8BITMIME", SMTPREPLY_EXT_8BITMIME},
        {"SMTPUTF8", SMTPREPLY_EXT_SMTPUTF8}, {"DSN", SMTPREPLY_EXT_DSN},
    };
    for (size_t i = 0; i < ARRAY_LEN(known); i++) {
        size_t n = strlen(known[i].name);
        if (len >= n && util_strncaseeq(kw, known[i].name, n) && (len == n || kw[n] == ' ')) {
            *ext |= known[i].bit;
            if (known[i].bit == SMTPREPLY_EXT_SIZE && len > n + 1) {
                char num[24];
                snprintf(num, sizeof(num), "%.*s", (int)(len - n - 1), kw + n + 1);
                *size_max = strtoul(num, NULL, 10);
            }
        }
    }
}

/* --- MX answers ----------------------------------------------------------------------- */

struct smtpreply_mx {
    unsigned pref;
    unsigned tiebreak;
    char *name;
};

static int smtpreply_mx_cmp(const void *a, const void *b)
{
    const struct smtpreply_mx *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->tiebreak < y->tiebreak ? -1 : x->tiebreak > y->tiebreak;
}

/* smtpreply_get16 - network-order 16 bits */
static unsigned smtpreply_get16(const unsigned char *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

/* smtpreply_mx_parse - header, questions skipped, MX answers kept, sorted */
int smtpreply_mx_parse(const unsigned char *ans, size_t len, unsigned seed, char **hosts,
                       size_t max, size_t *count)
{
    struct smtpreply_mx found[SMTPREPLY_MX_MAX];
    size_t found_count = 0;
    char name[NS_MAXDNAME];
    int rc = -1;
    *count = 0;
    if (len < NS_HFIXEDSZ)
        return -1;
    if (max > SMTPREPLY_MX_MAX)
        max = SMTPREPLY_MX_MAX;
    const unsigned char *end = ans + len, *p = ans + NS_HFIXEDSZ;
    unsigned qd = smtpreply_get16(ans + 4), an = smtpreply_get16(ans + 6);
    for (unsigned i = 0; i < qd; i++) {
        int n = dn_expand(ans, end, p, name, sizeof(name));
        if (n < 0 || (size_t)(end - p) < (size_t)n + 4)
            goto done;
        p += n + 4;
    }
    for (unsigned i = 0; i < an; i++) {
        int n = dn_expand(ans, end, p, name, sizeof(name));
        if (n < 0 || (size_t)(end - p) < (size_t)n + 10)
            goto done;
        p += n;
        unsigned type = smtpreply_get16(p), rdlen = smtpreply_get16(p + 8);
        p += 10;
        if ((size_t)(end - p) < rdlen)
            goto done;
        if (type == ns_t_mx && rdlen >= 3 && found_count < max) {
            if (dn_expand(ans, end, p + 2, name, sizeof(name)) < 0)
                goto done;
            seed = seed * 1103515245u + 12345u;
            found[found_count].pref = smtpreply_get16(p);
            found[found_count].tiebreak = seed >> 8;
            found[found_count].name = xstrdup(name);
            found_count++;
        }
        p += rdlen;
    }
    qsort(found, found_count, sizeof(found[0]), smtpreply_mx_cmp);
    int null_mx = found_count == 1 && found[0].name[0] == '\0';
    for (size_t i = 0; i < found_count; i++) {
        if (found[i].name[0] == '\0' || null_mx) { /* "." among others: skipped */
            free(found[i].name);
            continue;
        }
        hosts[(*count)++] = found[i].name;
    }
    return null_mx ? 1 : 0;
done: /* malformed: what was found so far is dropped */
    for (size_t i = 0; i < found_count; i++)
        free(found[i].name);
    return rc;
}
