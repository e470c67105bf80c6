/*
 * rewrite_bench - time rewrite_header on realistic Exchange Online header
 * blocks against a 100,000-pair directory snapshot, and GMime doing the same
 * job the GMime way (InternetAddressList parse, set_addr, encode).
 *
 * For each input file: the header block (up to the empty line) is rewritten
 * to-source in BATCHES batches of MSGS messages; the median batch gives
 * ns per message and header MB/s (1 MB = 10^6 bytes). One reference call is
 * checked against the input with the expected substitutions applied byte for
 * byte, every batch's last output is compared with the reference, and
 * GMime's output must name the same addresses in the same fields.
 *
 * Pin to one core from outside (bench/run.sh uses taskset). No timing is
 * asserted: this prints numbers.
 */
#include <gmime/gmime.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "addr.h"
#include "bench.h"
#include "buf.h"
#include "dir.h"
#include "hdr.h"
#include "rewrite.h"

#define BENCH_DEFAULT_BATCHES 15
#define BENCH_DEFAULT_MSGS 20000
#define BENCH_DEFAULT_GMIME_MSGS 2000
#define BENCH_DEFAULT_PAIRS 100000
/* input files and rewritten header blocks are smaller than this */
#define LIMIT_BENCH_FILE ((size_t)1 << 20)
#define LIMIT_BENCH_HEADER ((size_t)1 << 20)
/* mailboxes per field when listing the addresses of an output */
#define BENCH_FIELD_MAILBOXES 256
/* expected substitutions per input */
#define BENCH_MAX_SUBST 16

/* the address fields of rewrite.c, for the GMime peer and the checks */
static const char *const bench_address_fields[] = {
    "From",          "Sender",      "Reply-To",       "To",
    "Cc",            "Bcc",         "Resent-From",    "Resent-Sender",
    "Resent-To",     "Resent-Cc",   "Resent-Bcc",     "Disposition-Notification-To",
    "Return-Receipt-To",
};

/* the mailbox pairs the sample messages name (target, source, enabled) */
static const struct {
    const char *target, *source;
    int enabled;
} bench_people[] = {
    {"alexw@target.example", "alex.wilber@source.example", 1},
    {"meganb@target.example", "megan.bowen@source.example", 1},
    {"ceo@target.example", "ceo@source.example", 1},
    {"legal@target.example", "legal@source.example", 0},
    {"isaiahl@target.example", "isaiah.langer@source.example", 1},
    {"nestorw@target.example", "nestor.wilke@source.example", 1},
    {"pat.t@target.example", "pat.taylor@source.example", 1},
};

struct bench_subst {
    const char *old_text, *new_text;
};

/* per known input: the substitutions, in header order, that make the expected output */
static const struct {
    const char *basename;
    struct bench_subst subst[BENCH_MAX_SUBST];
} bench_expect[] = {
    {"exo-3k.eml",
     {
         {"alexw@target.example", "alex.wilber@source.example"},   /* From */
         {"MeganB@target.example", "megan.bowen@source.example"},  /* To, case differs */
         {"ceo@target.example", "ceo@source.example"},             /* bare addr-spec */
         {"isaiahl@target.example", "isaiah.langer@source.example"},
         {"nestorw@target.example", "nestor.wilke@source.example"}, /* display name = addr */
         {"nestorw@target.example", "nestor.wilke@source.example"},
         {"alexw+reports@target.example", "alex.wilber+reports@source.example"},
         {"meganb@target.example", "megan.bowen@source.example"},  /* Cc */
         {"pat.t@target.example", "pat.taylor@source.example"},
         /* legal@target.example: pair disabled, stays (no domain fallback) */
     }},
    {"exo-outbound.eml",
     {
         {"alexw@target.example", "alex.wilber@source.example"},
         {"MeganB@target.example", "megan.bowen@source.example"},
         {"ceo@target.example", "ceo@source.example"},
         {"alexw+reports@target.example", "alex.wilber+reports@source.example"},
         {"meganb@target.example", "megan.bowen@source.example"},
         {"pat.t@target.example", "pat.taylor@source.example"},
     }},
};

struct bench_opts {
    size_t batches, msgs, gmime_msgs, pairs;
    int run_coex, run_trace, run_gmime; /* -e: which engines to time (profiling) */
};

struct bench_result {
    double median_ns, min_ns;
};

/* bench_read_file - the whole file into b; -1 on error */
static int bench_read_file(const char *path, struct buf *b)
{
    FILE *fp = fopen(path, "rb");
    char chunk[65536];
    size_t n;
    int rc = 0;

    if (fp == NULL)
        return -1;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        if (buf_append(b, chunk, n) < 0) {
            rc = -1;
            break;
        }
    if (ferror(fp))
        rc = -1;
    fclose(fp);
    return rc;
}

/* bench_build_dir - generated pairs plus the sample messages' people, coexistence on */
static struct dir_snapshot *bench_build_dir(size_t pairs)
{
    struct dir_builder *b = dir_builder_new();
    char source[BENCH_ADDRESS_MAX], target[BENCH_ADDRESS_MAX];

    for (size_t i = 0; i < ARRAY_LEN(bench_people); i++)
        if (dir_builder_add_pair(b, bench_people[i].source, strlen(bench_people[i].source),
                                 bench_people[i].target, strlen(bench_people[i].target),
                                 bench_people[i].enabled) < 0)
            goto fail;
    for (size_t i = 0; i < pairs; i++) {
        size_t source_len = bench_pair_source(i, source, sizeof(source));
        size_t target_len = bench_pair_target(i, target, sizeof(target));
        if (dir_builder_add_pair(b, source, source_len, target, target_len,
                                 bench_pair_enabled(i)) < 0)
            goto fail;
    }
    if (dir_builder_add_domain(b, "target.example", "source.example") < 0)
        goto fail;
    dir_builder_set_coexistence(b, 1);
    return dir_builder_finish(b);
fail:
    dir_builder_free(b);
    return NULL;
}

static int bench_is_address_field(const char *hdr, const struct hdr_field *f)
{
    if (f->name_len == 0)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(bench_address_fields); i++)
        if (hdr_name_is(hdr, f, bench_address_fields[i], strlen(bench_address_fields[i])))
            return 1;
    return 0;
}

/*
 * bench_list_addresses - "Field: key" per mailbox of every address field, so
 * two rewritten blocks can be compared by what they say rather than how
 */
static int bench_list_addresses(const char *hdr, size_t len, struct buf *out)
{
    struct addr_mailbox mb[BENCH_FIELD_MAILBOXES];
    struct hdr_iter it;
    struct hdr_field f;

    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        if (!bench_is_address_field(hdr, &f))
            continue;
        const char *body = hdr + f.value_off;
        size_t count = addr_parse_list(body, f.value_end - f.value_off, mb, ARRAY_LEN(mb));
        if (count > ARRAY_LEN(mb))
            return -1;
        for (size_t i = 0; i < count; i++) {
            char key[LIMIT_ADDRESS];
            if (addr_key(body, &mb[i], key, sizeof(key)) < 0)
                return -1;
            if (buf_printf(out, "%.*s: %s\n", (int)f.name_len, hdr + f.off, key) < 0)
                return -1;
        }
    }
    return 0;
}

/* bench_apply_subst - the input with each substitution applied once, in order */
static int bench_apply_subst(const char *in, size_t len, const struct bench_subst *subst,
                             struct buf *out)
{
    size_t pos = 0;
    for (size_t i = 0; i < BENCH_MAX_SUBST && subst[i].old_text; i++) {
        size_t old_len = strlen(subst[i].old_text);
        const char *hit = NULL;
        for (size_t p = pos; p + old_len <= len; p++)
            if (memcmp(in + p, subst[i].old_text, old_len) == 0) {
                hit = in + p;
                break;
            }
        if (hit == NULL) {
            fprintf(stderr, "rewrite_bench: expected text %s not found in the input\n",
                    subst[i].old_text);
            return -1;
        }
        if (buf_append(out, in + pos, (size_t)(hit - in) - pos) < 0 ||
            buf_append_str(out, subst[i].new_text) < 0)
            return -1;
        pos = (size_t)(hit - in) + old_len;
    }
    return buf_append(out, in + pos, len - pos);
}

/* bench_from_has - 1 when the From field of hdr contains needle */
static int bench_from_has(const char *hdr, size_t len, const char *needle)
{
    struct hdr_iter it;
    struct hdr_field f;
    size_t needle_len = strlen(needle);

    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        if (!hdr_name_is(hdr, &f, "From", 4))
            continue;
        for (size_t p = f.value_off; p + needle_len <= f.value_end; p++)
            if (util_strncaseeq(hdr + p, needle, needle_len))
                return 1;
    }
    return 0;
}

/* ---- the GMime peer ---------------------------------------------------- */

struct gmime_ctx {
    const struct dir_snapshot *dir;
    const struct rewrite_opts *opts;
    GMimeParserOptions *parser_opts;
    GMimeFormatOptions *format_opts;
    GString *field;   /* one encoded field, reused */
    struct buf value; /* NUL-terminated copy of a field body, reused */
};

/*
 * gmime_rewrite_list - rewrite the mailboxes of a parsed list in place. The
 * lookup is rewrite_address, the same directory work coex does per mailbox
 * (dir_find_pair, sub-address and domain fallbacks), so the comparison
 * measures parsing and serialising, not different matching rules.
 */
static void gmime_rewrite_list(struct gmime_ctx *g, InternetAddressList *list)
{
    int count = internet_address_list_length(list);
    for (int i = 0; i < count; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_GROUP(ia)) {
            gmime_rewrite_list(g, internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)));
            continue;
        }
        if (!INTERNET_ADDRESS_IS_MAILBOX(ia))
            continue;
        InternetAddressMailbox *mailbox = INTERNET_ADDRESS_MAILBOX(ia);
        const char *addr = internet_address_mailbox_get_addr(mailbox);
        char repl[LIMIT_ADDRESS];
        enum rewrite_rule rule;
        enum rewrite_event event;
        if (addr == NULL ||
            rewrite_address(g->dir, g->opts, addr, strlen(addr), repl, sizeof(repl), &rule,
                            &event) != 1)
            continue;
        /* Outlook writes the address as the display name too: keep them in step */
        const char *name = internet_address_get_name(ia);
        if (name && strcasecmp(name, addr) == 0)
            internet_address_set_name(ia, repl);
        internet_address_mailbox_set_addr(mailbox, repl);
    }
}

/* gmime_rewrite_header - same iteration as rewrite_header, address fields through GMime */
static int gmime_rewrite_header(struct gmime_ctx *g, const char *hdr, size_t len, struct buf *out)
{
    struct hdr_iter it;
    struct hdr_field f;

    hdr_iter_init(&it, hdr, len);
    while (hdr_iter_next(&it, &f)) {
        if (!bench_is_address_field(hdr, &f)) {
            if (buf_append(out, hdr + f.off, f.end - f.off) < 0)
                return -1;
            continue;
        }
        buf_reset(&g->value);
        if (buf_append(&g->value, hdr + f.value_off, f.value_end - f.value_off) < 0)
            return -1;
        InternetAddressList *list = internet_address_list_parse(g->parser_opts, g->value.data);
        if (list == NULL) {
            if (buf_append(out, hdr + f.off, f.end - f.off) < 0)
                return -1;
            continue;
        }
        gmime_rewrite_list(g, list);
        /* the field name is in the string first so that folding counts it */
        g_string_truncate(g->field, 0);
        g_string_append_len(g->field, hdr + f.off, (gssize)f.name_len);
        g_string_append_len(g->field, ": ", 2);
        internet_address_list_encode(list, g->format_opts, g->field);
        g_object_unref(list);
        if (buf_append(out, g->field->str, g->field->len) < 0)
            return -1;
    }
    return buf_append(out, hdr + it.header_end, len - it.header_end);
}

/* ---- timing ------------------------------------------------------------- */

enum bench_engine { ENGINE_COEX, ENGINE_COEX_TRACE, ENGINE_GMIME };

struct bench_input {
    const char *hdr;
    size_t len;
    const struct dir_snapshot *dir;
    const struct rewrite_opts *opts;
    struct gmime_ctx *gmime;
    const struct buf *reference; /* expected output of this engine */
};

/* bench_one - one message through the engine into out */
static int bench_one(const struct bench_input *in, enum bench_engine engine, struct buf *out)
{
    char err[256];
    buf_reset(out);
    switch (engine) {
    case ENGINE_COEX:
        return rewrite_header(in->dir, in->opts, in->hdr, in->len, out, NULL, err, sizeof(err));
    case ENGINE_COEX_TRACE: {
        struct rewrite_trace trace;
        rewrite_trace_init(&trace);
        int rc = rewrite_header(in->dir, in->opts, in->hdr, in->len, out, &trace, err,
                                sizeof(err));
        rewrite_trace_cleanup(&trace);
        return rc;
    }
    case ENGINE_GMIME:
        return gmime_rewrite_header(in->gmime, in->hdr, in->len, out);
    }
    return -1;
}

/* bench_run - warm up, then batches; -1 when an output differs from the reference */
static int bench_run(const struct bench_input *in, enum bench_engine engine, size_t batches,
                     size_t msgs, struct bench_result *res)
{
    double per_msg[BENCH_MAX_BATCHES];
    struct buf out;
    int rc = -1;

    buf_init(&out, LIMIT_BENCH_HEADER);
    for (size_t i = 0; i < msgs / 10 + 1; i++)
        if (bench_one(in, engine, &out) < 0)
            goto done;
    for (size_t b = 0; b < batches; b++) {
        uint64_t start = bench_now_ns();
        for (size_t i = 0; i < msgs; i++)
            if (bench_one(in, engine, &out) < 0)
                goto done;
        uint64_t elapsed = bench_now_ns() - start;
        per_msg[b] = (double)elapsed / (double)msgs;
        if (out.len != in->reference->len || memcmp(out.data, in->reference->data, out.len)) {
            fprintf(stderr, "rewrite_bench: batch %zu: output differs from the reference\n", b);
            goto done;
        }
    }
    res->min_ns = bench_min(per_msg, batches);
    res->median_ns = bench_median(per_msg, batches);
    rc = 0;
done:
    buf_cleanup(&out);
    return rc;
}

static void bench_print(const char *label, const struct bench_result *r, size_t len,
                        size_t batches, size_t msgs)
{
    printf("  %-11s median %8.0f ns/msg  (min %8.0f)  %8.1f MB/s  [%zu x %zu msgs]\n", label,
           r->median_ns, r->min_ns, (double)len * 1e3 / r->median_ns, batches, msgs);
}

static const char *bench_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* bench_check_reference - the coex output is the input plus exactly the expected changes */
static int bench_check_reference(const char *path, const char *hdr, size_t len,
                                 const struct buf *ref)
{
    const char *base = bench_basename(path);
    struct buf want;
    int rc = -1;

    if (bench_from_has(ref->data, ref->len, "alexw@target.example")) {
        fprintf(stderr, "rewrite_bench: %s: alexw@target.example still in From\n", path);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(bench_expect); i++) {
        if (strcmp(base, bench_expect[i].basename) != 0)
            continue;
        size_t count = 0;
        while (count < BENCH_MAX_SUBST && bench_expect[i].subst[count].old_text)
            count++;
        buf_init(&want, LIMIT_BENCH_HEADER);
        if (bench_apply_subst(hdr, len, bench_expect[i].subst, &want) == 0 &&
            want.len == ref->len && memcmp(want.data, ref->data, want.len) == 0) {
            printf("  check: output = input with the %zu expected substitutions: ok\n", count);
            rc = 0;
        } else {
            fprintf(stderr, "rewrite_bench: %s: output is not the expected rewrite\n", path);
            fprintf(stderr, "--- want\n%.*s--- got\n%.*s", (int)want.len, want.data ? want.data : "",
                    (int)ref->len, ref->data);
        }
        buf_cleanup(&want);
        return rc;
    }
    printf("  check: no expectation table for %s; only the From sanity check ran\n", base);
    return 0;
}

/* bench_file - everything for one input file; 0, or -1 when a check failed */
static int bench_file(const char *path, const struct bench_opts *bo,
                      const struct dir_snapshot *dir, const struct rewrite_opts *ro,
                      struct gmime_ctx *g)
{
    struct buf msg, ref, gref, keys_coex, keys_gmime;
    size_t header_end, body_off;
    struct bench_result coex, coex_trace, gm;
    char err[256];
    int rc = -1;

    buf_init(&msg, LIMIT_BENCH_FILE);
    buf_init(&ref, LIMIT_BENCH_HEADER);
    buf_init(&gref, LIMIT_BENCH_HEADER);
    buf_init(&keys_coex, LIMIT_BENCH_HEADER);
    buf_init(&keys_gmime, LIMIT_BENCH_HEADER);
    if (bench_read_file(path, &msg) < 0) {
        perror(path);
        goto done;
    }
    hdr_split(msg.data, msg.len, &header_end, &body_off);
    printf("input %s: header block %zu bytes\n", bench_basename(path), header_end);

    if (rewrite_header(dir, ro, msg.data, header_end, &ref, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "rewrite_bench: %s: %s\n", path, err);
        goto done;
    }
    if (bench_check_reference(path, msg.data, header_end, &ref) < 0)
        goto done;
    if (gmime_rewrite_header(g, msg.data, header_end, &gref) < 0 ||
        bench_list_addresses(ref.data, ref.len, &keys_coex) < 0 ||
        bench_list_addresses(gref.data, gref.len, &keys_gmime) < 0) {
        fprintf(stderr, "rewrite_bench: %s: cannot list the rewritten addresses\n", path);
        goto done;
    }
    if (keys_coex.len != keys_gmime.len || memcmp(keys_coex.data, keys_gmime.data, keys_coex.len)) {
        fprintf(stderr, "rewrite_bench: %s: GMime and coex disagree\n--- coex\n%s--- gmime\n%s",
                path, buf_str(&keys_coex), buf_str(&keys_gmime));
        goto done;
    }
    printf("  check: GMime output names the same addresses in the same fields: ok "
           "(GMime output %zu bytes, coex %zu)\n",
           gref.len, ref.len);

    struct bench_input in = {msg.data, header_end, dir, ro, g, &ref};
    memset(&coex, 0, sizeof(coex));
    memset(&coex_trace, 0, sizeof(coex_trace));
    memset(&gm, 0, sizeof(gm));
    if (bo->run_coex && bench_run(&in, ENGINE_COEX, bo->batches, bo->msgs, &coex) < 0)
        goto done;
    if (bo->run_trace && bench_run(&in, ENGINE_COEX_TRACE, bo->batches, bo->msgs, &coex_trace) < 0)
        goto done;
    in.reference = &gref;
    if (bo->run_gmime && bench_run(&in, ENGINE_GMIME, bo->batches, bo->gmime_msgs, &gm) < 0)
        goto done;
    if (bo->run_coex)
        bench_print("coex", &coex, header_end, bo->batches, bo->msgs);
    if (bo->run_trace)
        bench_print("coex+trace", &coex_trace, header_end, bo->batches, bo->msgs);
    if (bo->run_gmime)
        bench_print("gmime", &gm, header_end, bo->batches, bo->gmime_msgs);
    if (bo->run_coex && bo->run_gmime)
        printf("  ratio coex/gmime %.3f  (GMime takes %.1fx as long)\n",
               coex.median_ns / gm.median_ns, gm.median_ns / coex.median_ns);
    printf("RESULT rewrite %s coex_ns=%.0f coex_trace_ns=%.0f gmime_ns=%.0f header_bytes=%zu\n",
           bench_basename(path), coex.median_ns, coex_trace.median_ns, gm.median_ns, header_end);
    rc = 0;
done:
    buf_cleanup(&msg);
    buf_cleanup(&ref);
    buf_cleanup(&gref);
    buf_cleanup(&keys_coex);
    buf_cleanup(&keys_gmime);
    return rc;
}

static int bench_usage(void)
{
    fprintf(stderr, "usage: rewrite_bench [-b batches] [-n msgs] [-g gmime-msgs] [-p pairs] "
                    "[-e coex,trace,gmime] file.eml...\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct bench_opts bo = {BENCH_DEFAULT_BATCHES, BENCH_DEFAULT_MSGS, BENCH_DEFAULT_GMIME_MSGS,
                            BENCH_DEFAULT_PAIRS, 1, 1, 1};
    struct rewrite_opts ro = {REWRITE_TO_SOURCE, "+"};
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "b:n:g:p:e:")) != -1) {
        if (opt == 'e') {
            bo.run_coex = strstr(optarg, "coex") != NULL;
            bo.run_trace = strstr(optarg, "trace") != NULL;
            bo.run_gmime = strstr(optarg, "gmime") != NULL;
            continue;
        }
        size_t *dst = opt == 'b' ? &bo.batches : opt == 'n' ? &bo.msgs
                                             : opt == 'g' ? &bo.gmime_msgs
                                             : opt == 'p' ? &bo.pairs
                                                          : NULL;
        if (dst == NULL || (*dst = bench_parse_count(optarg)) == 0)
            return bench_usage();
    }
    if (optind >= argc || bo.batches > BENCH_MAX_BATCHES)
        return bench_usage();

    uint64_t start = bench_now_ns();
    struct dir_snapshot *dir = bench_build_dir(bo.pairs);
    if (dir == NULL) {
        fprintf(stderr, "rewrite_bench: cannot build the directory\n");
        return 1;
    }
    printf("directory: %zu pairs built in memory in %.1f ms (coexistence on, to-source, "
           "sub-address separators \"+\")\n",
           dir_pair_count(dir), (double)(bench_now_ns() - start) / 1e6);

    g_mime_init();
    struct gmime_ctx g = {dir, &ro, g_mime_parser_options_get_default(),
                          g_mime_format_options_new(), g_string_sized_new(1024), {0}};
    g_mime_format_options_set_newline_format(g.format_opts, GMIME_NEWLINE_FORMAT_DOS);
    buf_init(&g.value, LIMIT_BENCH_HEADER);

    for (int i = optind; i < argc; i++)
        if (bench_file(argv[i], &bo, dir, &ro, &g) < 0)
            rc = 1;

    buf_cleanup(&g.value);
    g_string_free(g.field, TRUE);
    g_mime_format_options_free(g.format_opts);
    g_mime_shutdown();
    dir_snapshot_unref(dir);
    return rc;
}
