/*
 * fuzz_smtpd - libFuzzer target for the server side's SMTP parsers
 * (src/smtp/smtpproto.c, smtpproto_data.c): the input is read as a command
 * line (verb, path, MAIL / RCPT parameters, BDAT arguments) and as the
 * bytes after DATA and after BDAT.
 *
 * Checks, beyond ASan/UBSan:
 * - every span lies inside its input; a reported bad parameter name holds
 *   no space and no "="; an accepted ENVID / ORCPT is xtext within limits;
 * - smtpproto_number agrees with strtol on the same bytes;
 * - DATA: the decoder reports the end exactly at the first CRLF "." CRLF of
 *   the raw stream (the DATA command's own CRLF counting as the first CRLF),
 *   and never elsewhere; cutting the input into random chunks (empty ones
 *   included) gives the same end and bare_eol, and for an accepted message
 *   the same bytes; an accepted message is empty or CRLF lines without a
 *   bare CR or LF; dot-stuffing it again and decoding gives it back;
 * - BDAT: chunked or not, the same bare_eol, and the bytes kept as they are.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpproto.h"

#define FUZZ_LIMIT (64 * 1024) /* the message size limit of the decoder's buffer */
#define FUZZ_SIZE_LIMIT 10000L /* the MAIL SIZE= limit */

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static int fuzz_span_ok(struct smtpproto_span s, size_t len)
{
    return s.off <= len && s.len <= len - s.off;
}

/* fuzz_rand - xorshift32; the chunking must be a function of the input */
static uint32_t fuzz_rand(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* fuzz_commands - the command-line parsers over the input as one line */
static void fuzz_commands(const char *in, size_t len)
{
    size_t arg_off, rest;
    struct smtpproto_span addr;
    struct smtpproto_mail m;
    struct smtpproto_rcpt r;
    long value, size;
    size_t used;
    unsigned notify;
    int last;

    enum smtpproto_verb verb = smtpproto_command(in, len, &arg_off);
    CHECK(arg_off <= len);
    CHECK(verb != SMTPPROTO_NUL || memchr(in, '\0', len) != NULL);
    if (verb == SMTPPROTO_NUL)
        return; /* smtpd answers 500 and parses nothing */
    const char *arg = in + arg_off;
    size_t arg_len = len - arg_off;

    /* the path after FROM: / TO: (here: anywhere in the argument) */
    if (smtpproto_parse_path(arg, arg_len, &addr, &rest) == 0) {
        CHECK(fuzz_span_ok(addr, arg_len));
        CHECK(rest <= arg_len && rest == addr.off + addr.len + 1 && arg[rest - 1] == '>');
        (void)smtpproto_addr_check(arg + addr.off, addr.len, arg_len & 1);
        arg += rest;
        arg_len -= rest;
    }
    enum smtpproto_result mr = smtpproto_mail_params(arg, arg_len, FUZZ_SIZE_LIMIT, &m);
    if (mr == SMTPPROTO_OK) {
        CHECK(m.size >= 0 && m.size <= FUZZ_SIZE_LIMIT);
        if (m.has_envid) {
            CHECK(fuzz_span_ok(m.envid, arg_len) && m.envid.len <= LIMIT_DSN_PARAM);
            CHECK(smtpproto_xtext_ok(arg + m.envid.off, m.envid.len));
        }
    } else if (mr == SMTPPROTO_UNSUPPORTED) {
        CHECK(fuzz_span_ok(m.bad, arg_len));
        CHECK(!memchr(arg + m.bad.off, ' ', m.bad.len) && !memchr(arg + m.bad.off, '=', m.bad.len));
    }
    if (smtpproto_rcpt_params(arg, arg_len, &r) == SMTPPROTO_OK) {
        CHECK((r.notify & SMTPPROTO_NOTIFY_NEVER) == 0 || r.notify == SMTPPROTO_NOTIFY_NEVER);
        if (r.has_orcpt) {
            CHECK(fuzz_span_ok(r.orcpt, arg_len) && r.orcpt.len <= LIMIT_DSN_PARAM);
            CHECK(memchr(arg + r.orcpt.off, ';', r.orcpt.len) != NULL);
        }
    } else {
        CHECK(fuzz_span_ok(r.bad, arg_len));
        CHECK(!memchr(arg + r.bad.off, ' ', r.bad.len) && !memchr(arg + r.bad.off, '=', r.bad.len));
    }
    if (smtpproto_notify(in, len, &notify) == 0)
        CHECK(notify != 0 && len <= LIMIT_NOTIFY);

    /* numbers: the same as strtol on a NUL-terminated copy */
    size_t nlen = len < 64 ? len : 64;
    char copy[65], *end;
    memcpy(copy, in, nlen);
    copy[nlen] = '\0';
    nlen = strlen(copy);
    smtpproto_number(copy, nlen, &value, &used);
    CHECK(value == strtol(copy, &end, 10) && used == (size_t)(end - copy));
    if (smtpproto_bdat_args(in, len, &size, &last) == 0)
        CHECK(size >= 0);
}

struct fuzz_decoded {
    size_t end; /* SIZE_MAX: not done */
    struct smtpproto_data dec;
    struct buf out;
};

/* fuzz_decode - DATA bytes in chunks from the generator (one chunk when seed is 0) */
static void fuzz_decode(const char *in, size_t len, uint32_t seed, struct fuzz_decoded *r)
{
    size_t pos = 0, used;
    int done = 0;
    buf_init(&r->out, FUZZ_LIMIT);
    smtpproto_data_init(&r->dec);
    r->end = SIZE_MAX;
    if (seed == 0) {
        used = smtpproto_data_consume(&r->dec, in, len, &r->out, &done);
        CHECK(done ? used > 0 && used <= len : used == len);
        if (done)
            r->end = used;
        return;
    }
    while (pos < len && !done) {
        uint32_t x = fuzz_rand(&seed);
        size_t chunk = (x & 3) == 0 ? 0 : x % 17; /* empty chunks too */
        if (chunk > len - pos)
            chunk = len - pos;
        used = smtpproto_data_consume(&r->dec, in + pos, chunk, &r->out, &done);
        CHECK(done ? used > 0 && used <= chunk : used == chunk);
        pos += used;
    }
    if (!done) { /* one more empty chunk changes nothing */
        used = smtpproto_data_consume(&r->dec, in + pos, 0, &r->out, &done);
        CHECK(used == 0 && !done);
    }
    if (done)
        r->end = pos;
}

/* fuzz_first_end - where CRLF "." CRLF first ends, with a CRLF before the input */
static size_t fuzz_first_end(const char *in, size_t len)
{
    static const char term[] = "\r\n.\r\n";
    for (size_t i = 0; i + 3 <= len; i++) {
        /* the terminator starting 2 bytes before the input, or inside it */
        if (i == 0 && memcmp(in, ".\r\n", 3) == 0)
            return 3;
        if (i + 5 <= len && memcmp(in + i, term, 5) == 0)
            return i + 5;
    }
    return SIZE_MAX;
}

/* fuzz_clean_lines - empty, or CRLF-terminated lines with no other CR or LF */
static int fuzz_clean_lines(const char *p, size_t len)
{
    if (len == 0)
        return 1;
    if (len < 2 || p[len - 2] != '\r' || p[len - 1] != '\n')
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))
            return 0;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return 0;
    }
    return 1;
}

/* fuzz_restuff - dot-stuff an accepted message (CRLF lines) again and end it */
static void fuzz_restuff(const char *p, size_t len, struct buf *out)
{
    for (size_t i = 0; i < len;) {
        const char *lf = memchr(p + i, '\n', len - i);
        size_t line_end = lf ? (size_t)(lf - p) + 1 : len;
        if (p[i] == '.')
            CHECK(buf_append(out, ".", 1) == 0);
        CHECK(buf_append(out, p + i, line_end - i) == 0);
        i = line_end;
    }
    CHECK(buf_append(out, ".\r\n", 3) == 0);
}

static void fuzz_data(const char *in, size_t len, uint32_t seed)
{
    struct fuzz_decoded one, many;
    fuzz_decode(in, len, 0, &one);
    CHECK(one.end == fuzz_first_end(in, len));

    fuzz_decode(in, len, seed | 1, &many);
    CHECK(many.end == one.end);
    CHECK(many.dec.bare_eol == one.dec.bare_eol);
    if (!one.dec.bare_eol) {
        CHECK(many.dec.too_big == one.dec.too_big);
        if (!one.dec.too_big)
            CHECK(many.out.len == one.out.len &&
                  (one.out.len == 0 || memcmp(many.out.data, one.out.data, one.out.len) == 0));
    }
    if (one.end != SIZE_MAX && !one.dec.bare_eol && !one.dec.too_big) {
        /* accepted: no bare line end can reach the spool */
        CHECK(fuzz_clean_lines(one.out.data, one.out.len));
        struct buf stuffed;
        struct fuzz_decoded again;
        buf_init(&stuffed, 2 * FUZZ_LIMIT + 8);
        fuzz_restuff(one.out.data, one.out.len, &stuffed);
        fuzz_decode(stuffed.data, stuffed.len, 0, &again);
        CHECK(again.end == stuffed.len && !again.dec.bare_eol && !again.dec.too_big);
        CHECK(again.out.len == one.out.len &&
              (one.out.len == 0 || memcmp(again.out.data, one.out.data, one.out.len) == 0));
        buf_cleanup(&again.out);
        buf_cleanup(&stuffed);
    }
    buf_cleanup(&one.out);
    buf_cleanup(&many.out);
}

/* fuzz_has_bare - a CR not followed by LF, or an LF not preceded by CR */
static int fuzz_has_bare(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' && (i + 1 >= len || p[i + 1] != '\n'))
            return 1;
        if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
            return 1;
    }
    return 0;
}

static void fuzz_bdat(const char *in, size_t len, uint32_t seed)
{
    struct smtpproto_data one, many;
    struct buf out;
    buf_init(&out, FUZZ_LIMIT);
    smtpproto_data_init(&one);
    smtpproto_bdat_consume(&one, in, len, NULL);
    smtpproto_bdat_end(&one);
    CHECK(one.bare_eol == fuzz_has_bare(in, len) && !one.too_big);
    smtpproto_data_init(&many);
    for (size_t pos = 0; pos < len;) {
        size_t chunk = fuzz_rand(&seed) % 9;
        if (chunk > len - pos)
            chunk = len - pos;
        smtpproto_bdat_consume(&many, in + pos, chunk, &out);
        pos += chunk;
    }
    smtpproto_bdat_end(&many);
    CHECK(one.bare_eol == many.bare_eol);
    if (!many.bare_eol && !many.too_big) /* kept as they are */
        CHECK(out.len == len && (len == 0 || memcmp(out.data, in, len) == 0));
    buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++)
        seed = (seed ^ data[i]) * 16777619u;
    /* a command line is what comes before the first LF (smtpd cuts there) */
    const char *lf = memchr(in, '\n', size);
    size_t line_len = lf ? (size_t)(lf - in) : size;
    if (line_len && in[line_len - 1] == '\r')
        line_len--;
    fuzz_commands(in, line_len);
    fuzz_data(in, size, seed);
    fuzz_bdat(in, size, seed);
    return 0;
}
