/*
 * arc_int - what the arc_*.c files share: the ARC sets of a header block
 * found by their i= (RFC 8617 §4.1, §4.2.1, §5.2 step 3). The b= emptying
 * of RFC 6376 §3.7, field folding and the h= list are DKIM's (dkim_int.h).
 * Only src/mail/arc*.c include it.
 */
#ifndef COEX_ARC_INT_H
#define COEX_ARC_INT_H

#include "arc.h"
#include "dkim_int.h"
#include "hdr.h"

/* i= values read beyond the limit are kept up to this, so "i=51" reads as 51 */
#define ARC_INSTANCE_READ_MAX 999999

enum arc_kind { ARC_AAR, ARC_AMS, ARC_AS, ARC_KINDS };

/* one ARC set: its fields, by kind (spans into the header block) */
struct arc_set {
    struct hdr_field field[ARC_KINDS]; /* the first field of each kind seen */
    unsigned count[ARC_KINDS];         /* how many of each kind carry this i= */
};

/* the ARC fields of a header block, by instance */
struct arc_sets {
    int any;                                /* at least one ARC field */
    int max_instance;                       /* highest i= read (may pass LIMIT_ARC_SETS) */
    struct arc_set set[LIMIT_ARC_SETS + 1]; /* [1..LIMIT_ARC_SETS] */
    char problem[LIMIT_ARC_REASON]; /* the first structural problem (§5.2 step 1, 3); "" none */
};

/*
 * arc_sets_collect - find the ARC fields of hdr[0..len) (borrowed) and check
 * the structure: i= readable and in 1..50, no field kind twice for one i=,
 * every set 1..max complete (§5.2 step 3.1, 3.2). Problems go to
 * sets->problem (the first one found); the fields are recorded anyway.
 */
void arc_sets_collect(const char *hdr, size_t len, struct arc_sets *sets);
/* arc_kind_name - the field name of a kind */
const char *arc_kind_name(enum arc_kind kind);
/* arc_tag - dkim_tag_find on the value of field f of hdr */
int arc_tag(const char *hdr, const struct hdr_field *f, const char *tag, const char **val,
            size_t *val_len);
/* arc_cv_read - the cv= of an ARC-Seal: 0 and *cv, or -1 (absent, unknown) */
int arc_cv_read(const char *hdr, const struct hdr_field *f, enum arc_cv *cv);

#endif
