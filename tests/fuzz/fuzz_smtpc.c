/*
 * fuzz_smtpc - libFuzzer target for what the SMTP client reads from the
 * network (src/smtp/smtpreply.c). The first byte picks the parser: even,
 * server replies (the rest is split into lines at LF, a CR before it
 * dropped, as evbuffer_readln does); odd, an MX answer (the rest is the DNS
 * message).
 *
 * Checks, beyond ASan/UBSan (and LeakSanitizer: a malformed answer must not
 * leak the names found before it):
 * - replies: a line is accepted only as "ddd" / "ddd " / "ddd-" with the
 *   first digit 2-5; the text stays below SMTPREPLY_TEXT_SIZE, NUL-terminated,
 *   and starts with the first line's code; a reply ends exactly at a line
 *   that is not a continuation, and never has more than
 *   SMTPREPLY_LIMIT_LINES lines; the status is "c.0.0" or a well-formed
 *   enhanced code of the code's class, and a prefix of the text after it;
 *   EHLO keywords only set known bits;
 * - MX: a null MX stores nothing; every stored name is non-empty; the count
 *   stays within max; the result does not depend on the tie-break seed
 *   except for the order of equal preferences (same count, same set).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtpreply.h"

#define FUZZ_MAX_MX 10

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static const unsigned fuzz_all_ext = SMTPREPLY_EXT_STARTTLS | SMTPREPLY_EXT_PIPELINING |
                                     SMTPREPLY_EXT_SIZE | SMTPREPLY_EXT_8BITMIME |
                                     SMTPREPLY_EXT_SMTPUTF8 | SMTPREPLY_EXT_DSN;

/* fuzz_status_ok - "c.0.0", or class "." 1-3 digits "." 1-3 digits found in the text */
static void fuzz_check_status(const struct smtpreply *r)
{
    char status[SMTPREPLY_STATUS_SIZE];
    smtpreply_status(r->text, status);
    size_t n = strlen(status);
    CHECK(n >= 5 && n <= 9 && status[0] == r->text[0] && status[1] == '.');
    if (strcmp(status + 1, ".0.0") == 0)
        return;
    CHECK(strlen(r->text) >= 4 + n && memcmp(r->text + 4, status, n) == 0);
    CHECK(r->text[4 + n] == ' ' || r->text[4 + n] == '\0');
}

static void fuzz_replies(const char *in, size_t len)
{
    struct smtpreply r;
    unsigned ext = 0;
    unsigned long size_max = 0;
    smtpreply_init(&r);
    for (size_t pos = 0; pos < len;) {
        const char *lf = memchr(in + pos, '\n', len - pos);
        size_t line_len = lf ? (size_t)(lf - in) - pos : len - pos;
        const char *line = in + pos;
        pos += line_len + (lf != NULL);
        if (line_len && line[line_len - 1] == '\r')
            line_len--;

        struct smtpreply_line parsed;
        if (smtpreply_parse_line(line, line_len, &parsed) < 0) {
            CHECK(line_len < 3 || line[0] < '2' || line[0] > '5' || (unsigned)(line[1] - '0') > 9 ||
                  (unsigned)(line[2] - '0') > 9 ||
                  (line_len > 3 && line[3] != ' ' && line[3] != '-'));
            smtpreply_init(&r); /* smtpc drops the connection */
            continue;
        }
        CHECK(parsed.code >= 200 && parsed.code <= 599);
        CHECK(parsed.more == (line_len > 3 && line[3] == '-'));
        int first = r.lines == 0;
        size_t lines_before = r.lines;
        int complete = smtpreply_add(&r, line, line_len, &parsed);
        CHECK(r.len < SMTPREPLY_TEXT_SIZE && r.text[r.len] == '\0');
        if (complete < 0) {
            CHECK(lines_before == SMTPREPLY_LIMIT_LINES && r.lines == 0);
            continue;
        }
        CHECK(r.len >= 3 && r.code / 100 == r.text[0] - '0');
        if (first)
            CHECK(r.code == parsed.code && memcmp(r.text, line, 3) == 0);
        if (!first && parsed.code / 100 == 2 && line_len > 4) {
            smtpreply_ehlo_keyword(line + 4, line_len - 4, &ext, &size_max);
            CHECK((ext & ~fuzz_all_ext) == 0);
        }
        CHECK(complete == !parsed.more);
        if (complete) {
            CHECK(r.lines == 0);
            fuzz_check_status(&r);
        } else {
            CHECK(r.lines == lines_before + 1);
        }
    }
}

static void fuzz_free_hosts(char **hosts, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(hosts[i]);
}

static void fuzz_mx(const unsigned char *in, size_t len)
{
    char *hosts[FUZZ_MAX_MX], *again[FUZZ_MAX_MX];
    size_t count, again_count;
    int rc = smtpreply_mx_parse(in, len, 12345u, hosts, FUZZ_MAX_MX, &count);
    CHECK(rc >= -1 && rc <= 1 && count <= FUZZ_MAX_MX);
    if (rc != 0)
        CHECK(count == 0);
    for (size_t i = 0; i < count; i++)
        CHECK(hosts[i][0] != '\0');
    /* another seed: the same outcome and the same names (the order of ties may differ) */
    int rc2 = smtpreply_mx_parse(in, len, 987654321u, again, FUZZ_MAX_MX, &again_count);
    CHECK(rc2 == rc && again_count == count);
    for (size_t i = 0; i < count; i++) {
        size_t j = 0;
        while (j < count && strcmp(hosts[i], again[j]) != 0)
            j++;
        CHECK(j < count);
    }
    fuzz_free_hosts(hosts, count);
    fuzz_free_hosts(again, again_count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        fuzz_mx(data + 1, size - 1);
    else
        fuzz_replies((const char *)data + 1, size - 1);
    return 0;
}
