/*
 * fuzz_dns - libFuzzer target for what the DNS stub reads from the network
 * (src/core/dnsmsg.c): the input is a DNS response to the TXT query for
 * FUZZ_QNAME, its ID taken from the input's first two bytes (so the ID check
 * passes and the fuzzer reaches the question and the records).
 *
 * Checks, beyond ASan/UBSan (a copy of exactly the input's size, so any read
 * past the end is caught):
 * - the result is one of the enum values, and a->result says the same;
 * - only ANSWER keeps records: 1..DNSMSG_TXT_MAX of them, each inside the
 *   text buffer and NUL-terminated, TTL at most 2^31-1; otherwise none;
 * - a second parse into the same answer gives the same result (no state
 *   kept between calls);
 * - the input as a name: when dnsmsg_name_check accepts it, a query can be
 *   built (within DNSMSG_QUERY_MAX), and that query echoed back with QR set
 *   parses as NODATA for that name, and as MISMATCH with another ID.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnsmsg.h"

#define FUZZ_QNAME "sel._domainkey.example.com"
#define FUZZ_NAME_MAX 300

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

/* fuzz_check_answer - the invariants of a parsed answer */
static void fuzz_check_answer(const struct dnsmsg_answer *a, enum dnsmsg_result r)
{
    CHECK(r >= DNSMSG_ANSWER && r <= DNSMSG_MALFORMED);
    CHECK(a->result == r);
    if (r != DNSMSG_ANSWER) {
        CHECK(a->count == 0);
        return;
    }
    CHECK(a->count >= 1 && a->count <= DNSMSG_TXT_MAX);
    CHECK(a->ttl <= 0x7fffffffu);
    for (size_t i = 0; i < a->count; i++) {
        CHECK(a->offs[i] + a->lens[i] < a->text.len);
        CHECK(a->text.data[a->offs[i] + a->lens[i]] == '\0');
    }
}

/* fuzz_name - the input as a query name */
static void fuzz_name(const uint8_t *data, size_t size, struct dnsmsg_answer *a)
{
    char name[FUZZ_NAME_MAX + 1];
    unsigned char q[DNSMSG_QUERY_MAX];
    size_t n = size < FUZZ_NAME_MAX ? size : FUZZ_NAME_MAX, len;
    memcpy(name, data, n);
    name[n] = '\0';
    if (dnsmsg_name_check(name) < 0)
        return;
    CHECK(strlen(name) <= DNSMSG_NAME_MAX + 1);
    CHECK(dnsmsg_build_query(name, 0xbeef, 1, q, sizeof(q), &len) == 0);
    CHECK(len <= DNSMSG_QUERY_MAX);
    q[2] |= 0x80; /* the query, echoed as a response without records */
    CHECK(dnsmsg_parse_txt(q, len, 0xbeef, name, a) == DNSMSG_NODATA);
    CHECK(dnsmsg_parse_txt(q, len, 0xbeee, name, a) == DNSMSG_MISMATCH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dnsmsg_answer a;
    unsigned char *copy = malloc(size ? size : 1);
    uint16_t id = size >= 2 ? (uint16_t)(data[0] << 8 | data[1]) : 0;
    memcpy(copy, data, size);
    dnsmsg_answer_init(&a);
    enum dnsmsg_result r = dnsmsg_parse_txt(copy, size, id, FUZZ_QNAME, &a);
    fuzz_check_answer(&a, r);
    size_t count = a.count;
    enum dnsmsg_result again = dnsmsg_parse_txt(copy, size, id, FUZZ_QNAME, &a);
    CHECK(again == r && a.count == count);
    fuzz_name(data, size, &a);
    dnsmsg_answer_cleanup(&a);
    free(copy);
    return 0;
}
