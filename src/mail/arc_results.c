/*
 * arc_results - the RFC 8601 resinfo text coex records in its AAR.
 *
 * RFC 8601 §2.2 (resinfo: method "=" result, an optional comment, then
 * ptype.property=value pairs), §2.7.1 (DKIM results: none, pass, fail,
 * policy, neutral, temperror, permerror; header.d, header.s and header.b,
 * the latter from RFC 6008 §4), RFC 8617 §4.1.1 and §7.2 (the "arc" method:
 * none, pass, fail).
 *
 * Values that came from the message (d=, s=, reasons) are untrusted: a
 * name that is not a domain name is left out, a comment has its "(", ")"
 * and "\" replaced, so nothing can end a resinfo early or add one, and its
 * controls and bytes of 0x80 and above too: the AAR is an RFC 5322 header
 * field, ASCII, whatever an a= value or a DNS record held.
 */
#include "arc_int.h"

#include <string.h>

static const char *const arc_result_words[] = {
    "none", "pass", "fail", "policy", "neutral", "temperror", "permerror",
};

/* arc_result_word_ok - one of the RFC 8601 §2.7.1 DKIM results */
static int arc_result_word_ok(const char *word)
{
    for (size_t i = 0; i < ARRAY_LEN(arc_result_words); i++)
        if (strcmp(word, arc_result_words[i]) == 0)
            return 1;
    return 0;
}

/*
 * arc_comment - " (text)" with the bytes that would end a comment replaced,
 * and those that are not printable ASCII ('?' for 0x80 and above, so a
 * reader sees that something was there)
 */
static int arc_comment(struct buf *out, const char *text)
{
    if (text == NULL || text[0] == '\0')
        return 0;
    if (buf_append(out, " (", 2) < 0)
        return -1;
    for (const char *p = text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char safe = (c == '(' || c == ')')                 ? '\''
                    : (c == '\\' || c < 0x20 || c == 0x7f) ? ' '
                    : c >= 0x80                            ? '?'
                                                           : *p;
        if (buf_append(out, &safe, 1) < 0)
            return -1;
    }
    return buf_append(out, ")", 1);
}

/* arc_header_b_ok - base64 characters only */
static int arc_header_b_ok(const char *b)
{
    if (b[0] == '\0')
        return 0;
    for (const char *p = b; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '+' || *p == '/'))
            return 0;
    return 1;
}

/* arc_results_dkim - one "dkim=..." resinfo */
static int arc_results_dkim(const struct dkim_result *r, const char *word, struct buf *out)
{
    if (buf_printf(out, "dkim=%s", word) < 0)
        return -1;
    if (strcmp(word, "pass") != 0 && arc_comment(out, r->reason) < 0)
        return -1;
    if (dkim_name_ok(r->domain) && buf_printf(out, " header.d=%s", r->domain) < 0)
        return -1;
    if (dkim_name_ok(r->selector) && buf_printf(out, " header.s=%s", r->selector) < 0)
        return -1;
    if (arc_header_b_ok(r->header_b) && buf_printf(out, " header.b=%s", r->header_b) < 0)
        return -1;
    return 0;
}

/* arc_results_text - dkim= per result, then arc= */
int arc_results_text(const struct dkim_result *r, size_t n, const char *const *override,
                     const struct arc_chain *chain, struct buf *out)
{
    size_t out_len = out->len;

    if (n == 0 && buf_append_str(out, "dkim=none") < 0)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        const char *word = dkim_status_name(r[i].status);
        if (override && override[i]) {
            if (!arc_result_word_ok(override[i]))
                goto fail;
            word = override[i];
        }
        if ((i > 0 && buf_append(out, "; ", 2) < 0) || arc_results_dkim(&r[i], word, out) < 0)
            goto fail;
    }
    if (chain) {
        if (buf_printf(out, "; arc=%s", arc_cv_name(chain->cv)) < 0)
            goto fail;
        if (chain->cv == ARC_CV_PASS && chain->last_domain[0] &&
            buf_printf(out, " (i=%d as.d=%s)", chain->instance, chain->last_domain) < 0)
            goto fail;
        if (chain->cv == ARC_CV_FAIL && arc_comment(out, chain->reason) < 0)
            goto fail;
    }
    return 0;
fail:
    if (out->len > out_len) {
        out->len = out_len;
        out->data[out_len] = '\0';
    }
    return -1;
}
