/*
 * fuzz_rewrite - libFuzzer target for hdr + addr + rewrite over a header
 * block. The first byte picks the direction; the rest is the header block.
 *
 * Checks, beyond ASan/UBSan: rewriting never fails below the output limit;
 * with a directory that maps nothing the output is byte-identical; a second
 * pass in the same direction changes nothing (idempotence); and only bytes
 * inside address fields can change (the output keeps the same field names in
 * the same order).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hdr.h"
#include "rewrite.h"

static struct dir_snapshot *fuzz_dir, *fuzz_empty;

static struct dir_snapshot *fuzz_build(int with_pairs)
{
    struct dir_builder *b = dir_builder_new();
    static const char *const pairs[][2] = {
        {"a@s", "a@t"}, {"bb@s", "b@t"}, {"c.long.name@s", "C@T"}, {"\"q r\"@s", "q@t"},
        {"u@s", "\xc3\xa9@t"},
    };
    if (with_pairs) {
        for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
            if (dir_builder_add_pair(b, pairs[i][0], strlen(pairs[i][0]), pairs[i][1],
                                     strlen(pairs[i][1]), i != 4) < 0)
                abort();
        if (dir_builder_add_domain(b, "t2", "s2") < 0 || dir_builder_add_exception(b, "x@t") < 0)
            abort();
    }
    dir_builder_set_coexistence(b, 1);
    return dir_builder_finish(b);
}

/* fuzz_same_names - both header blocks have the same field names in order */
static int fuzz_same_names(const char *a, size_t alen, const char *b, size_t blen)
{
    struct hdr_iter ia, ib;
    struct hdr_field fa, fb;
    hdr_iter_init(&ia, a, alen);
    hdr_iter_init(&ib, b, blen);
    for (;;) {
        int ra = hdr_iter_next(&ia, &fa), rb = hdr_iter_next(&ib, &fb);
        if (ra != rb)
            return 0;
        if (!ra)
            return 1;
        if (fa.name_len != fb.name_len || memcmp(a + fa.off, b + fb.off, fa.name_len) != 0)
            return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf out, again;
    char err[128];
    if (size < 1)
        return 0;
    if (fuzz_dir == NULL) {
        fuzz_dir = fuzz_build(1);
        fuzz_empty = fuzz_build(0);
    }
    struct rewrite_opts o = {data[0] & 1 ? REWRITE_TO_TARGET : REWRITE_TO_SOURCE,
                             data[0] & 2 ? "+-" : "+"};
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    buf_init(&out, 16 * len + 4096);
    buf_init(&again, 16 * len + 4096);
    if (rewrite_header(fuzz_empty, &o, in, len, &out, NULL, err, sizeof(err)) < 0)
        __builtin_trap();
    if (out.len != len || memcmp(out.data, in, len) != 0)
        __builtin_trap(); /* nothing mapped: byte-identical */

    buf_reset(&out);
    struct rewrite_trace trace;
    rewrite_trace_init(&trace);
    if (rewrite_header(fuzz_dir, &o, in, len, &out, &trace, err, sizeof(err)) < 0)
        __builtin_trap();
    size_t changed = 0;
    for (size_t i = 0; i < trace.count; i++)
        changed += trace.changes[i].event == EVENT_REWRITTEN;
    if (changed == 0 && (out.len != len || memcmp(out.data, in, len) != 0))
        __builtin_trap(); /* bytes changed without a trace entry */
    rewrite_trace_cleanup(&trace);
    if (!fuzz_same_names(in, len, out.data, out.len))
        __builtin_trap();
    if (rewrite_header(fuzz_dir, &o, out.data, out.len, &again, NULL, err, sizeof(err)) < 0)
        __builtin_trap();
    if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0)
        __builtin_trap(); /* idempotence */
    buf_cleanup(&out);
    buf_cleanup(&again);
    return 0;
}
