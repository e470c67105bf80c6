/*
 * arc_parse - find the ARC sets of a header block and check their structure.
 *
 * RFC 8617 §4.1 (the three field names), §4.1.1 (the AAR value starts with
 * "i=N;" and then holds an RFC 8601 payload, not a tag-list), §4.1.2 and
 * §4.1.3 (the AMS and AS values are DKIM tag-lists with i=), §4.2.1 (i= is
 * 1..50), §5.2 steps 1 and 3 (at most 50 sets; one field of each kind per
 * set; instances 1..N with no gap and no repetition).
 *
 * Does not: judge cv= order or signatures (arc_validate.c does).
 */
#include "arc_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static const char *const arc_names[ARC_KINDS] = {
    "ARC-Authentication-Results",
    "ARC-Message-Signature",
    "ARC-Seal",
};

/* arc_kind_name - the field name of a kind */
const char *arc_kind_name(enum arc_kind kind)
{
    return arc_names[kind];
}

/* arc_cv_name - for logs, the AAR and coexctl */
const char *arc_cv_name(enum arc_cv cv)
{
    switch (cv) {
    case ARC_CV_PASS:
        return "pass";
    case ARC_CV_FAIL:
        return "fail";
    default:
        return "none";
    }
}

/* arc_is_fws - white space that may fold (SP, HTAB, CR, LF) */
static int arc_is_fws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* arc_number - a decimal number of 1..9 digits; -1 otherwise */
static int arc_number(const char *s, size_t len)
{
    int value = 0;
    if (len == 0 || len > 9)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        value = value * 10 + (s[i] - '0');
    }
    return value;
}

/* arc_tag - dkim_tag_find on the value of field f */
int arc_tag(const char *hdr, const struct hdr_field *f, const char *tag, const char **val,
            size_t *val_len)
{
    return dkim_tag_find(hdr + f->value_off, f->value_end - f->value_off, tag, val, val_len);
}

/*
 * arc_aar_instance - §4.1.1: arc-info = instance [CFWS] ";" authres-payload;
 * the rest is an Authentication-Results payload, not a tag-list, so only
 * the leading "i=N;" is read. -1 when it is not there.
 */
static int arc_aar_instance(const char *v, size_t len)
{
    size_t p = 0, digits;
    while (p < len && arc_is_fws(v[p]))
        p++;
    if (p == len || v[p] != 'i')
        return -1;
    for (p++; p < len && arc_is_fws(v[p]); p++)
        ;
    if (p == len || v[p] != '=')
        return -1;
    for (p++; p < len && arc_is_fws(v[p]); p++)
        ;
    for (digits = p; digits < len && v[digits] >= '0' && v[digits] <= '9'; digits++)
        ;
    int value = arc_number(v + p, digits - p);
    for (p = digits; p < len && arc_is_fws(v[p]); p++)
        ;
    return p < len && v[p] == ';' ? value : -1;
}

/* arc_problem - keep the first structural problem */
static void arc_problem(struct arc_sets *sets, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void arc_problem(struct arc_sets *sets, const char *fmt, ...)
{
    va_list ap;
    if (sets->problem[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(sets->problem, sizeof(sets->problem), fmt, ap);
    va_end(ap);
}

/* arc_sets_collect - one pass over the fields, then the completeness check */
void arc_sets_collect(const char *hdr, size_t len, struct arc_sets *sets)
{
    struct hdr_iter it;
    struct hdr_field f;

    memset(sets, 0, sizeof(*sets));
    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        enum arc_kind kind = ARC_KINDS;
        for (int k = 0; k < ARC_KINDS && kind == ARC_KINDS; k++)
            if (hdr_name_is(hdr, &f, arc_names[k], strlen(arc_names[k])))
                kind = (enum arc_kind)k;
        if (kind == ARC_KINDS)
            continue;
        sets->any = 1;
        int instance;
        if (kind == ARC_AAR) {
            instance = arc_aar_instance(hdr + f.value_off, f.value_end - f.value_off);
        } else {
            const char *v;
            size_t v_len;
            instance = arc_tag(hdr, &f, "i", &v, &v_len) == 1 ? arc_number(v, v_len) : -1;
        }
        if (instance < 0) {
            arc_problem(sets, "%s field without a readable i=", arc_names[kind]);
            continue;
        }
        if (instance > sets->max_instance)
            sets->max_instance =
                instance > ARC_INSTANCE_READ_MAX ? ARC_INSTANCE_READ_MAX : instance;
        if (instance == 0 || instance > LIMIT_ARC_SETS) {
            arc_problem(sets, "%s with i=%d, outside 1..50 (RFC 8617 §4.2.1)", arc_names[kind],
                        instance);
            continue;
        }
        struct arc_set *set = &sets->set[instance];
        if (set->count[kind]++ == 0)
            set->field[kind] = f;
        else
            arc_problem(sets, "two %s fields with i=%d", arc_names[kind], instance);
    }
    int top = sets->max_instance < LIMIT_ARC_SETS ? sets->max_instance : LIMIT_ARC_SETS;
    for (int i = 1; i <= top; i++)
        for (int k = 0; k < ARC_KINDS; k++)
            if (sets->set[i].count[k] == 0)
                arc_problem(sets, "no %s with i=%d (a missing field or a gap)", arc_names[k], i);
}

/* arc_cv_read - §4.1.3 cv= */
int arc_cv_read(const char *hdr, const struct hdr_field *f, enum arc_cv *cv)
{
    const char *v;
    size_t v_len;
    if (arc_tag(hdr, f, "cv", &v, &v_len) != 1)
        return -1;
    if (dkim_span_is(v, v_len, "none"))
        *cv = ARC_CV_NONE;
    else if (dkim_span_is(v, v_len, "pass"))
        *cv = ARC_CV_PASS;
    else if (dkim_span_is(v, v_len, "fail"))
        *cv = ARC_CV_FAIL;
    else
        return -1;
    return 0;
}
