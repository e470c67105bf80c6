/*
 * test_addr - table-driven tests for the RFC 5322 / RFC 6532 address-list
 * tokenizer (src/mail/addr.c).
 *
 * Every row of list_cases gives a field body and every mailbox it must yield,
 * as the exact bytes of each span (strings read better than offsets). The
 * checker also asserts what holds for every result: spans inside the input,
 * local part and domain at the two ends of the addr-spec, name and addr-spec
 * inside the element, elements in increasing order without overlap, and that
 * addr_key fits exactly its length plus the NUL and fails one byte shorter
 * without writing past outsize.
 *
 * Covers RFC 5322 §3.4 and §4.4 (obsolete syntax, mostly the examples of
 * Appendix A), RFC 6532 UTF-8, RFC 2047 encoded words kept verbatim, and the
 * lenient forms the parser documents (empty dot-words in a local part, groups
 * without a display name, CR and LF as white space, a stray ";").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "util.h"

#define MAX_WANT 6
/* bytes after outsize that addr_key must leave alone */
#define KEY_GUARD 16

struct want_mailbox {
    const char *whole;
    size_t whole_len; /* 0: strlen(whole); for elements holding NUL bytes */
    const char *name; /* "" when there is no display name */
    const char *spec;
    const char *local;
    const char *domain;
    const char *key; /* addr_key result */
    unsigned flags;
};

struct want_list {
    size_t count;
    struct want_mailbox mbox[MAX_WANT];
};

struct list_case {
    const char *name;
    const char *input;
    size_t input_len; /* 0: strlen(input) */
    struct want_list want;
};

/* a good mailbox, spelled out */
#define MB(w, n, s, l, d, k, f)                                                                    \
    {                                                                                              \
        .whole = (w), .name = (n), .spec = (s), .local = (l), .domain = (d), .key = (k),           \
        .flags = (f)                                                                               \
    }
/* a bare addr-spec without CFWS: whole, spec and key are the same bytes */
#define MB_SPEC(s, l, d, f) MB(s, "", s, l, d, s, f)
/* a bad element: only whole is set */
#define MB_BAD(w, f)                                                                               \
    {                                                                                              \
        .whole = (w), .flags = ADDR_F_BAD | (f)                                                    \
    }
/* a bad element with NUL bytes inside */
#define MB_BADN(w, wl, f)                                                                          \
    {                                                                                              \
        .whole = (w), .whole_len = (wl), .flags = ADDR_F_BAD | (f)                                 \
    }
#define NONE                                                                                       \
    {                                                                                              \
        .whole = NULL                                                                              \
    }

#define ROW(n, in, cnt, ...)                                                                       \
    {                                                                                              \
        .name = (n), .input = (in), .want = {.count = (cnt), .mbox = {__VA_ARGS__} }               \
    }
/* an input with NUL bytes: the length is explicit */
#define ROWN(n, in, cnt, ...)                                                                      \
    {                                                                                              \
        .name = (n), .input = (in), .input_len = sizeof(in) - 1, .want = {                         \
            .count = (cnt),                                                                        \
            .mbox = {__VA_ARGS__}                                                                  \
        }                                                                                          \
    }

#define A ADDR_F_ANGLE
#define G ADDR_F_GROUP
#define R ADDR_F_ROUTE
#define Q ADDR_F_QUOTED
#define L ADDR_F_LITERAL
#define O ADDR_F_OBS

static const struct list_case list_cases[] = {
    /* --- atoms, dot-atoms, list shape (§3.4, §3.2.3) --- */
    ROW("bare addr-spec", "a@x", 1, MB_SPEC("a@x", "a", "x", 0)),
    ROW("dot-atom local and domain", "john.q.public@example.com", 1,
        MB_SPEC("john.q.public@example.com", "john.q.public", "example.com", 0)),
    ROW("every atext special in the local part", "!#$%&'*+-/=?^_`{|}~@x", 1,
        MB_SPEC("!#$%&'*+-/=?^_`{|}~@x", "!#$%&'*+-/=?^_`{|}~", "x", 0)),
    ROW("single-label domain", "root@localhost", 1,
        MB_SPEC("root@localhost", "root", "localhost", 0)),
    ROW("case is kept", "John.Doe@Example.COM", 1,
        MB_SPEC("John.Doe@Example.COM", "John.Doe", "Example.COM", 0)),
    ROW("white space around is not in whole", "  a@x  ", 1, MB_SPEC("a@x", "a", "x", 0)),
    ROW("tabs around", "\ta@x\t", 1, MB_SPEC("a@x", "a", "x", 0)),
    ROW("empty field", "", 0, NONE),
    ROW("only white space", "   \t ", 0, NONE),
    ROW("only commas", ",,,", 0, NONE),
    ROW("only a comment", "(nobody)", 0, NONE),
    ROW("two mailboxes", "a@x, b@y", 2, MB_SPEC("a@x", "a", "x", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("no space after comma", "a@x,b@y", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("obs empty element in the middle", "a@x,,b@y", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("obs leading comma", ",a@x", 1, MB_SPEC("a@x", "a", "x", 0)),
    ROW("obs trailing comma", "a@x,", 1, MB_SPEC("a@x", "a", "x", 0)),
    ROW("obs empty elements with white space", " , a@x , , b@y , ", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("obs element of only a comment", "a@x, (c), b@y", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("six mailboxes", "a@x,b@x,c@x,d@x,e@x,f@x", 6, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@x", "b", "x", 0), MB_SPEC("c@x", "c", "x", 0), MB_SPEC("d@x", "d", "x", 0),
        MB_SPEC("e@x", "e", "x", 0), MB_SPEC("f@x", "f", "x", 0)),
    ROW("lenient: empty dot-word in the local part", "a..b@x", 1,
        MB_SPEC("a..b@x", "a..b", "x", 0)),
    ROW("lenient: local part ends in a dot", "a.@x", 1, MB_SPEC("a.@x", "a.", "x", 0)),
    ROW("lenient: local part starts with a dot", ".a@x", 1, MB_SPEC(".a@x", ".a", "x", 0)),

    /* --- name-addr and angle-addr (§3.4) --- */
    ROW("bare angle-addr", "<a@x>", 1, MB("<a@x>", "", "a@x", "a", "x", "a@x", A)),
    ROW("atom display name", "John <j@x>", 1, MB("John <j@x>", "John", "j@x", "j", "x", "j@x", A)),
    ROW("two-atom display name", "John Doe <jd@x>", 1,
        MB("John Doe <jd@x>", "John Doe", "jd@x", "jd", "x", "jd@x", A)),
    ROW("no space before the angle", "John<j@x>", 1,
        MB("John<j@x>", "John", "j@x", "j", "x", "j@x", A)),
    ROW("white space inside the angle", "John < j@x >", 1,
        MB("John < j@x >", "John", "j@x", "j", "x", "j@x", A)),
    ROW("quoted display name with a comma", "\"Doe, John\" <jd@x>", 1,
        MB("\"Doe, John\" <jd@x>", "\"Doe, John\"", "jd@x", "jd", "x", "jd@x", A)),
    ROW("quoted display name with escaped quotes", "\"John \\\"JD\\\" Doe\" <jd@x>", 1,
        MB("\"John \\\"JD\\\" Doe\" <jd@x>", "\"John \\\"JD\\\" Doe\"", "jd@x", "jd", "x", "jd@x",
           A)),
    ROW("quoted display name with an escaped backslash", "\"a\\\\b\" <ab@x>", 1,
        MB("\"a\\\\b\" <ab@x>", "\"a\\\\b\"", "ab@x", "ab", "x", "ab@x", A)),
    ROW("quoted display name ending in an escaped backslash", "\"a\\\\\" <ab@x>, c@y", 2,
        MB("\"a\\\\\" <ab@x>", "\"a\\\\\"", "ab@x", "ab", "x", "ab@x", A),
        MB_SPEC("c@y", "c", "y", 0)),
    ROW("quoted display name holding an angle-addr", "\"<evil@y>\" <a@x>", 1,
        MB("\"<evil@y>\" <a@x>", "\"<evil@y>\"", "a@x", "a", "x", "a@x", A)),
    ROW("quoted display name with list specials", "\"a, b; c: d\" <a@x>, b@y", 2,
        MB("\"a, b; c: d\" <a@x>", "\"a, b; c: d\"", "a@x", "a", "x", "a@x", A),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("atoms and quoted string in one phrase", "John \"the man\" Doe <j@x>", 1,
        MB("John \"the man\" Doe <j@x>", "John \"the man\" Doe", "j@x", "j", "x", "j@x", A)),
    ROW("empty quoted display name", "\"\" <a@x>", 1,
        MB("\"\" <a@x>", "\"\"", "a@x", "a", "x", "a@x", A)),
    ROW("Outlook: quoted address as display name",
        "\"alexw@target.example\" <alexw@target.example>", 1,
        MB("\"alexw@target.example\" <alexw@target.example>", "\"alexw@target.example\"",
           "alexw@target.example", "alexw", "target.example", "alexw@target.example", A)),
    ROW("Outlook form among others", "a@x, \"alexw@target.example\" <alexw@target.example>, b@y", 3,
        MB_SPEC("a@x", "a", "x", 0),
        MB("\"alexw@target.example\" <alexw@target.example>", "\"alexw@target.example\"",
           "alexw@target.example", "alexw", "target.example", "alexw@target.example", A),
        MB_SPEC("b@y", "b", "y", 0)),
    /* ' is atext, so the "name" is atom "@" atom: not a phrase, accepted as Outlook writes it */
    ROW("single-quoted address as display name (Outlook)",
        "'alexw@target.example' <alexw@target.example>", 1,
        MB("'alexw@target.example' <alexw@target.example>", "'alexw@target.example'",
           "alexw@target.example", "alexw", "target.example", "alexw@target.example",
           A | ADDR_F_LAX_NAME)),
    ROW("single-quoted address name between neighbours",
        "a@x, 'alexw@target.example' <alexw@target.example>, b@y", 3, MB_SPEC("a@x", "a", "x", 0),
        MB("'alexw@target.example' <alexw@target.example>", "'alexw@target.example'",
           "alexw@target.example", "alexw", "target.example", "alexw@target.example",
           A | ADDR_F_LAX_NAME),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("apostrophe in an atom name", "O'Brien <ob@x>", 1,
        MB("O'Brien <ob@x>", "O'Brien", "ob@x", "ob", "x", "ob@x", A)),
    ROW("single quotes around a plain name", "'John Doe' <jd@x>", 1,
        MB("'John Doe' <jd@x>", "'John Doe'", "jd@x", "jd", "x", "jd@x", A)),
    ROW("RFC A.1.2 address list", "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
        3,
        MB("Mary Smith <mary@x.test>", "Mary Smith", "mary@x.test", "mary", "x.test", "mary@x.test",
           A),
        MB_SPEC("jdoe@example.org", "jdoe", "example.org", 0),
        MB("Who? <one@y.test>", "Who?", "one@y.test", "one", "y.test", "one@y.test", A)),
    ROW("RFC A.1.2 quoted name with ; and escapes",
        "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", 2,
        MB("<boss@nil.test>", "", "boss@nil.test", "boss", "nil.test", "boss@nil.test", A),
        MB("\"Giant; \\\"Big\\\" Box\" <sysservices@example.net>", "\"Giant; \\\"Big\\\" Box\"",
           "sysservices@example.net", "sysservices", "example.net", "sysservices@example.net", A)),

    /* --- RFC 2047 encoded words stay verbatim in the name --- */
    ROW("B-encoded word as the name", "=?utf-8?B?Sm9obiBEb2U=?= <jd@x>", 1,
        MB("=?utf-8?B?Sm9obiBEb2U=?= <jd@x>", "=?utf-8?B?Sm9obiBEb2U=?=", "jd@x", "jd", "x", "jd@x",
           A)),
    ROW("Q-encoded word then an atom (RFC 2047 §8)",
        "=?iso-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>", 1,
        MB("=?iso-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
           "=?iso-8859-1?Q?Andr=E9?= Pirard", "PIRARD@vm1.ulg.ac.be", "PIRARD", "vm1.ulg.ac.be",
           "PIRARD@vm1.ulg.ac.be", A)),
    ROW("two adjacent encoded words", "=?utf-8?Q?a_b?= =?utf-8?Q?c?= <ab@x>", 1,
        MB("=?utf-8?Q?a_b?= =?utf-8?Q?c?= <ab@x>", "=?utf-8?Q?a_b?= =?utf-8?Q?c?=", "ab@x", "ab",
           "x", "ab@x", A)),
    ROW("encoded words folded", "=?utf-8?B?Sm9obiBE?=\r\n =?utf-8?B?b2U=?= <jd@x>", 1,
        MB("=?utf-8?B?Sm9obiBE?=\r\n =?utf-8?B?b2U=?= <jd@x>",
           "=?utf-8?B?Sm9obiBE?=\r\n =?utf-8?B?b2U=?=", "jd@x", "jd", "x", "jd@x", A)),
    ROW("encoded word inside quotes is kept", "\"=?utf-8?B?Sm9obg==?=\" <j@x>", 1,
        MB("\"=?utf-8?B?Sm9obg==?=\" <j@x>", "\"=?utf-8?B?Sm9obg==?=\"", "j@x", "j", "x", "j@x",
           A)),
    ROW("encoded word name among others", "a@x, =?UTF-8?Q?J=C3=B6rg?= <jm@x>", 2,
        MB_SPEC("a@x", "a", "x", 0),
        MB("=?UTF-8?Q?J=C3=B6rg?= <jm@x>", "=?UTF-8?Q?J=C3=B6rg?=", "jm@x", "jm", "x", "jm@x", A)),

    /* --- comments (CFWS) anywhere --- */
    ROW("comment before", "(c) a@x", 1, MB("(c) a@x", "", "a@x", "a", "x", "a@x", 0)),
    ROW("comment after", "a@x (c)", 1, MB("a@x (c)", "", "a@x", "a", "x", "a@x", 0)),
    ROW("comment after an angle-addr", "John <j@x> (work)", 1,
        MB("John <j@x> (work)", "John", "j@x", "j", "x", "j@x", A)),
    ROW("comment inside the display name", "John (middle) Doe <j@x>", 1,
        MB("John (middle) Doe <j@x>", "John (middle) Doe", "j@x", "j", "x", "j@x", A)),
    ROW("comment is not a display name", "(John) <j@x>", 1,
        MB("(John) <j@x>", "", "j@x", "j", "x", "j@x", A)),
    ROW("comment inside the angle before the spec", "<(c)a@x>", 1,
        MB("<(c)a@x>", "", "a@x", "a", "x", "a@x", A)),
    ROW("comment inside the angle after the spec", "<a@x(c)>", 1,
        MB("<a@x(c)>", "", "a@x", "a", "x", "a@x", A)),
    ROW("comment with > inside the angle", "<a@x(>)>, b@y", 2,
        MB("<a@x(>)>", "", "a@x", "a", "x", "a@x", A), MB_SPEC("b@y", "b", "y", 0)),
    ROW("nested comment after", "a@x (outer (inner) outer)", 1,
        MB("a@x (outer (inner) outer)", "", "a@x", "a", "x", "a@x", 0)),
    ROW("deeply nested comment before", "((((c)))) a@x", 1,
        MB("((((c)))) a@x", "", "a@x", "a", "x", "a@x", 0)),
    ROW("escaped paren in a comment", "a@x (not \\) closed), b@y", 2,
        MB("a@x (not \\) closed)", "", "a@x", "a", "x", "a@x", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("comment holding a comma", "a@x (x, y), b@y", 2,
        MB("a@x (x, y)", "", "a@x", "a", "x", "a@x", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("comment holding an address", "(<b@y>) a@x", 1,
        MB("(<b@y>) a@x", "", "a@x", "a", "x", "a@x", 0)),
    ROW("comment holding a quote", "a@x (\"), b@y", 2,
        MB("a@x (\")", "", "a@x", "a", "x", "a@x", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("RFC A.5 comments everywhere",
        "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", 1,
        MB("Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", "Pete",
           "pete(his account)@silly.test", "pete", "silly.test", "pete@silly.test", A | O)),

    /* --- CFWS inside the addr-spec (§4.4) --- */
    ROW("obs: comment between local part and @", "a(c)@x", 1,
        MB("a(c)@x", "", "a(c)@x", "a", "x", "a@x", O)),
    ROW("obs: comment between @ and domain", "a@(c)x", 1,
        MB("a@(c)x", "", "a@(c)x", "a", "x", "a@x", O)),
    ROW("obs: white space around @", "a @ x", 1, MB("a @ x", "", "a @ x", "a", "x", "a@x", O)),
    ROW("obs: white space around a dot in the local part", "john . doe@x", 1,
        MB("john . doe@x", "", "john . doe@x", "john . doe", "x", "john.doe@x", O)),
    ROW("obs: white space around a dot in the domain", "a@x . y", 1,
        MB("a@x . y", "", "a@x . y", "a", "x . y", "a@x.y", O)),
    ROW("obs: comment inside the domain", "a@x(c).y", 1,
        MB("a@x(c).y", "", "a@x(c).y", "a", "x(c).y", "a@x.y", O)),
    ROW("obs: white space inside an angle-addr", "John <a @ x>", 1,
        MB("John <a @ x>", "John", "a @ x", "a", "x", "a@x", A | O)),
    ROW("obs: fold inside the addr-spec", "a\r\n @x", 1,
        MB("a\r\n @x", "", "a\r\n @x", "a", "x", "a@x", O)),
    ROW("obs: comments around every token", "(1)a(2)@(3)x(4).(5)y(6)", 1,
        MB("(1)a(2)@(3)x(4).(5)y(6)", "", "a(2)@(3)x(4).(5)y", "a", "x(4).(5)y", "a@x.y", O)),

    /* --- folding white space --- */
    ROW("CRLF fold before the angle", "John Doe\r\n <jd@x>", 1,
        MB("John Doe\r\n <jd@x>", "John Doe", "jd@x", "jd", "x", "jd@x", A)),
    ROW("CRLF fold inside the name", "John\r\n Doe <jd@x>", 1,
        MB("John\r\n Doe <jd@x>", "John\r\n Doe", "jd@x", "jd", "x", "jd@x", A)),
    ROW("CRLF and tab fold inside the name", "John\r\n\tDoe <jd@x>", 1,
        MB("John\r\n\tDoe <jd@x>", "John\r\n\tDoe", "jd@x", "jd", "x", "jd@x", A)),
    ROW("CRLF fold after a comma", "a@x,\r\n b@y", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("bare LF fold after a comma", "a@x,\n\tb@y", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("bare LF fold inside the name", "John\n Doe <jd@x>", 1,
        MB("John\n Doe <jd@x>", "John\n Doe", "jd@x", "jd", "x", "jd@x", A)),
    ROW("folded quoted display name", "\"John\r\n Doe\" <jd@x>", 1,
        MB("\"John\r\n Doe\" <jd@x>", "\"John\r\n Doe\"", "jd@x", "jd", "x", "jd@x", A)),
    ROW("trailing CRLF", "a@x\r\n", 1, MB_SPEC("a@x", "a", "x", 0)),
    ROW("several folds", "a@x,\r\n b@y,\r\n\tc@z\r\n", 3, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0), MB_SPEC("c@z", "c", "z", 0)),
    ROW("RFC A.6.3 empty folded line", "Mary Smith\r\n  \r\n <mary@example.net>", 1,
        MB("Mary Smith\r\n  \r\n <mary@example.net>", "Mary Smith", "mary@example.net", "mary",
           "example.net", "mary@example.net", A)),

    /* --- quoted local parts --- */
    ROW("quoted local part with a space", "\"john doe\"@x", 1,
        MB_SPEC("\"john doe\"@x", "\"john doe\"", "x", Q)),
    ROW("quoted local part with an escaped quote", "\"a\\\"b\"@x", 1,
        MB_SPEC("\"a\\\"b\"@x", "\"a\\\"b\"", "x", Q)),
    ROW("quoted local part with an escaped backslash", "\"a\\\\b\"@x", 1,
        MB_SPEC("\"a\\\\b\"@x", "\"a\\\\b\"", "x", Q)),
    ROW("quoted plain local part: key unquoted", "\"alexw\"@x", 1,
        MB("\"alexw\"@x", "", "\"alexw\"@x", "\"alexw\"", "x", "alexw@x", Q)),
    ROW("quoted dot-atom local part: key unquoted", "\"john.doe\"@x", 1,
        MB("\"john.doe\"@x", "", "\"john.doe\"@x", "\"john.doe\"", "x", "john.doe@x", Q)),
    ROW("quoted local part with a needless escape: key unquoted", "\"\\a\"@x", 1,
        MB("\"\\a\"@x", "", "\"\\a\"@x", "\"\\a\"", "x", "a@x", Q)),
    ROW("quoted local part with a leading dot keeps its quotes", "\".john\"@x", 1,
        MB_SPEC("\".john\"@x", "\".john\"", "x", Q)),
    ROW("quoted local part with @", "\"a@b\"@x", 1, MB_SPEC("\"a@b\"@x", "\"a@b\"", "x", Q)),
    ROW("quoted local part with list specials", "\"a,b;c:d\"@x, e@y", 2,
        MB_SPEC("\"a,b;c:d\"@x", "\"a,b;c:d\"", "x", Q), MB_SPEC("e@y", "e", "y", 0)),
    ROW("empty quoted local part", "\"\"@x", 1, MB_SPEC("\"\"@x", "\"\"", "x", Q)),
    ROW("quoted local part with an empty dot-word keeps its quotes", "\"a..b\"@x", 1,
        MB_SPEC("\"a..b\"@x", "\"a..b\"", "x", Q)),
    ROW("quoted local part in an angle-addr", "Name <\"john doe\"@x>", 1,
        MB("Name <\"john doe\"@x>", "Name", "\"john doe\"@x", "\"john doe\"", "x", "\"john doe\"@x",
           A | Q)),
    ROW("quoted local part with > in an angle-addr", "<\"a>b\"@x>, c@y", 2,
        MB("<\"a>b\"@x>", "", "\"a>b\"@x", "\"a>b\"", "x", "\"a>b\"@x", A | Q),
        MB_SPEC("c@y", "c", "y", 0)),
    ROW("obs-local-part: quoted word dot atom", "\"a\".b@x", 1,
        MB("\"a\".b@x", "", "\"a\".b@x", "\"a\".b", "x", "a.b@x", Q)),
    ROW("obs-local-part: two quoted words", "\"a\".\"b\"@x", 1,
        MB("\"a\".\"b\"@x", "", "\"a\".\"b\"@x", "\"a\".\"b\"", "x", "a.b@x", Q)),
    ROW("obs-local-part: quoted word with a space and an atom", "\"a b\".c@x", 1,
        MB("\"a b\".c@x", "", "\"a b\".c@x", "\"a b\".c", "x", "\"a b.c\"@x", Q)),
    ROW("folded quoted local part: key unfolded", "\"john\r\n doe\"@x", 1,
        MB("\"john\r\n doe\"@x", "", "\"john\r\n doe\"@x", "\"john\r\n doe\"", "x",
           "\"john doe\"@x", Q)),
    ROW("quoted UTF-8 local part: key unquoted", "\"j\xc3\xb6rg\"@x", 1,
        MB("\"j\xc3\xb6rg\"@x", "", "\"j\xc3\xb6rg\"@x", "\"j\xc3\xb6rg\"", "x", "j\xc3\xb6rg@x",
           Q)),

    /* --- domain literals --- */
    ROW("IPv4 literal", "a@[1.2.3.4]", 1, MB_SPEC("a@[1.2.3.4]", "a", "[1.2.3.4]", L)),
    ROW("IPv6 literal", "a@[IPv6:::1]", 1, MB_SPEC("a@[IPv6:::1]", "a", "[IPv6:::1]", L)),
    ROW("IPv6 literal in an angle-addr then more", "<a@[IPv6:2001:db8::1]>, b@y", 2,
        MB("<a@[IPv6:2001:db8::1]>", "", "a@[IPv6:2001:db8::1]", "a", "[IPv6:2001:db8::1]",
           "a@[IPv6:2001:db8::1]", A | L),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("literal then more", "a@[1.2.3.4], b@y", 2, MB_SPEC("a@[1.2.3.4]", "a", "[1.2.3.4]", L),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("literal with a comment after", "a@[1.2.3.4] (c)", 1,
        MB("a@[1.2.3.4] (c)", "", "a@[1.2.3.4]", "a", "[1.2.3.4]", "a@[1.2.3.4]", L)),
    ROW("literal with FWS inside", "a@[ 1.2.3.4 ]", 1,
        MB_SPEC("a@[ 1.2.3.4 ]", "a", "[ 1.2.3.4 ]", L)),
    ROW("obs: white space before the literal", "a@ [1.2.3.4]", 1,
        MB("a@ [1.2.3.4]", "", "a@ [1.2.3.4]", "a", "[1.2.3.4]", "a@[1.2.3.4]", L | O)),
    ROW("quoted local part and literal", "\"a b\"@[1.2.3.4]", 1,
        MB_SPEC("\"a b\"@[1.2.3.4]", "\"a b\"", "[1.2.3.4]", Q | L)),

    /* --- obs-route (§4.4) --- */
    ROW("obs-route with two relays", "<@relay1,@relay2:a@b>", 1,
        MB("<@relay1,@relay2:a@b>", "", "a@b", "a", "b", "a@b", A | R)),
    ROW("obs-route with a display name", "Name <@relay1:a@b>", 1,
        MB("Name <@relay1:a@b>", "Name", "a@b", "a", "b", "a@b", A | R)),
    ROW("obs-route with white space", "< @relay1 , @relay2 : a@b >", 1,
        MB("< @relay1 , @relay2 : a@b >", "", "a@b", "a", "b", "a@b", A | R)),
    ROW("obs-route then more", "<@r1,@r2:a@b>, c@d", 2,
        MB("<@r1,@r2:a@b>", "", "a@b", "a", "b", "a@b", A | R), MB_SPEC("c@d", "c", "d", 0)),
    ROW("obs-route through a literal", "<@[1.2.3.4]:a@b>", 1,
        MB("<@[1.2.3.4]:a@b>", "", "a@b", "a", "b", "a@b", A | R)),
    ROW("obs-route with empty entries (RFC 5322 obs-domain-list)", "<@r1,,@r2:a@b>", 1,
        MB("<@r1,,@r2:a@b>", "", "a@b", "a", "b", "a@b", A | R)),
    ROW("RFC A.6.1 obsolete list",
        "Mary Smith <@node.test:mary@example.net>, , jdoe@test  . example", 2,
        MB("Mary Smith <@node.test:mary@example.net>", "Mary Smith", "mary@example.net", "mary",
           "example.net", "mary@example.net", A | R),
        MB("jdoe@test  . example", "", "jdoe@test  . example", "jdoe", "test  . example",
           "jdoe@test.example", O)),
    ROW("obs-route without a colon is bad", "<@relay1 a@b>, c@d", 2, MB_BAD("<@relay1 a@b>", 0),
        MB_SPEC("c@d", "c", "d", 0)),
    ROW("obs-route without an address is bad", "<@relay1:>", 1, MB_BAD("<@relay1:>", 0)),

    /* --- groups (§3.4) --- */
    ROW("group of two", "Team: a@x, b@y;", 2, MB_SPEC("a@x", "a", "x", G),
        MB_SPEC("b@y", "b", "y", G)),
    ROW("empty group", "undisclosed-recipients:;", 0, NONE),
    ROW("empty group with white space", "undisclosed-recipients: ;", 0, NONE),
    ROW("empty group with a comment", "undisclosed-recipients:(none);", 0, NONE),
    ROW("group followed by a mailbox", "Team: a@x, b@y;, c@z", 3, MB_SPEC("a@x", "a", "x", G),
        MB_SPEC("b@y", "b", "y", G), MB_SPEC("c@z", "c", "z", 0)),
    ROW("mailbox followed by a group", "c@z, Team: a@x;", 2, MB_SPEC("c@z", "c", "z", 0),
        MB_SPEC("a@x", "a", "x", G)),
    ROW("empty group followed by a mailbox", "undisclosed-recipients:;, a@x", 1,
        MB_SPEC("a@x", "a", "x", 0)),
    ROW("group of name-addrs", "Team: John <j@x>, \"Doe\" <d@x>;", 2,
        MB("John <j@x>", "John", "j@x", "j", "x", "j@x", A | G),
        MB("\"Doe\" <d@x>", "\"Doe\"", "d@x", "d", "x", "d@x", A | G)),
    ROW("quoted group name", "\"My Team\": a@x;", 1, MB_SPEC("a@x", "a", "x", G)),
    ROW("obs-phrase group name", "Dept. Heads: a@x;", 1, MB_SPEC("a@x", "a", "x", G)),
    ROW("group name with a comment", "Team (c): a@x;", 1, MB_SPEC("a@x", "a", "x", G)),
    ROW("lenient: group without a display name", ": a@x;", 1, MB_SPEC("a@x", "a", "x", G)),
    ROW("two groups", "A: a@x; B: b@y;", 2, MB_SPEC("a@x", "a", "x", G),
        MB_SPEC("b@y", "b", "y", G)),
    ROW("lenient: group never closed", "Team: a@x, b@y", 2, MB_SPEC("a@x", "a", "x", G),
        MB_SPEC("b@y", "b", "y", G)),
    ROW("obs: empty group members", "Team: , a@x, ;", 1, MB_SPEC("a@x", "a", "x", G)),
    ROW("bad group member among good ones", "Team: a@x, bad, b@y;", 3, MB_SPEC("a@x", "a", "x", G),
        MB_BAD("bad", G), MB_SPEC("b@y", "b", "y", G)),
    ROW("RFC A.1.3 group", "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;", 3,
        MB("Ed Jones <c@a.test>", "Ed Jones", "c@a.test", "c", "a.test", "c@a.test", A | G),
        MB_SPEC("joe@where.test", "joe", "where.test", G),
        MB("John <jdoe@one.test>", "John", "jdoe@one.test", "jdoe", "one.test", "jdoe@one.test",
           A | G)),
    ROW("RFC A.5 group with comments and folding",
        "A Group(Some people)\r\n     :Chris Jones <c@(Chris's host.)public.example>,\r\n"
        "         joe@example.org,\r\n  John <jdoe@one.test> (my dear friend); (the end of the "
        "group)",
        3,
        MB("Chris Jones <c@(Chris's host.)public.example>", "Chris Jones",
           "c@(Chris's host.)public.example", "c", "public.example", "c@public.example", A | G | O),
        MB_SPEC("joe@example.org", "joe", "example.org", G),
        MB("John <jdoe@one.test> (my dear friend)", "John", "jdoe@one.test", "jdoe", "one.test",
           "jdoe@one.test", A | G)),
    ROW("nested group is bad", "A: B: b@y;;", 1, MB_BAD("B: b@y", G)),
    ROW("nested group then a good mailbox", "A: B: b@y;, c@z", 2, MB_BAD("B: b@y", G),
        MB_SPEC("c@z", "c", "z", 0)),
    ROW("colon after a mailbox is bad", "a@x: b@y, c@z", 2, MB_BAD("a@x: b@y", 0),
        MB_SPEC("c@z", "c", "z", 0)),
    ROW("lenient: stray ; between mailboxes", "a@x; b@y", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("bad element inside a group", "Team: <a;b@x>;", 1, MB_BAD("<a;b@x>", G)),

    /* --- obs-phrase (§4.1) --- */
    ROW("obs-phrase with an initial", "John Q. Public <jqp@x>", 1,
        MB("John Q. Public <jqp@x>", "John Q. Public", "jqp@x", "jqp", "x", "jqp@x", A)),
    ROW("RFC A.6.1 obs-phrase", "Joe Q. Public <john.q.public@example.com>", 1,
        MB("Joe Q. Public <john.q.public@example.com>", "Joe Q. Public",
           "john.q.public@example.com", "john.q.public", "example.com", "john.q.public@example.com",
           A)),
    ROW("obs-phrase ending in a dot", "Smith Jr. <sj@x>", 1,
        MB("Smith Jr. <sj@x>", "Smith Jr.", "sj@x", "sj", "x", "sj@x", A)),
    ROW("obs-phrase dot between quoted words", "\"John\".\"Doe\" <jd@x>", 1,
        MB("\"John\".\"Doe\" <jd@x>", "\"John\".\"Doe\"", "jd@x", "jd", "x", "jd@x", A)),
    ROW("RFC A.6.3 obsolete white space and comments", "John Doe <jdoe@machine(comment).  example>",
        1,
        MB("John Doe <jdoe@machine(comment).  example>", "John Doe",
           "jdoe@machine(comment).  example", "jdoe", "machine(comment).  example",
           "jdoe@machine.example", A | O)),

    /* --- RFC 6532 UTF-8 --- */
    ROW("UTF-8 display name", "J\xc3\xb6rg M\xc3\xbcller <jm@x>", 1,
        MB("J\xc3\xb6rg M\xc3\xbcller <jm@x>", "J\xc3\xb6rg M\xc3\xbcller", "jm@x", "jm", "x",
           "jm@x", A)),
    ROW("UTF-8 quoted display name", "\"M\xc3\xbcller, J\xc3\xb6rg\" <jm@x>", 1,
        MB("\"M\xc3\xbcller, J\xc3\xb6rg\" <jm@x>", "\"M\xc3\xbcller, J\xc3\xb6rg\"", "jm@x", "jm",
           "x", "jm@x", A)),
    ROW("UTF-8 local part", "j\xc3\xb6rg@x", 1, MB_SPEC("j\xc3\xb6rg@x", "j\xc3\xb6rg", "x", 0)),
    ROW("UTF-8 domain",
        "a@b\xc3\xbc"
        "cher.example",
        1,
        MB_SPEC("a@b\xc3\xbc"
                "cher.example",
                "a",
                "b\xc3\xbc"
                "cher.example",
                0)),
    ROW("UTF-8 everywhere",
        "\xe6\x97\xa5\xe6\x9c\xac "
        "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
        1,
        MB("\xe6\x97\xa5\xe6\x9c\xac "
           "<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a>",
           "\xe6\x97\xa5\xe6\x9c\xac",
           "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
           "\xe7\x94\xa8\xe6\x88\xb7", "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a",
           "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", A)),
    ROW("UTF-8 is not validated", "\xff\xfe@x", 1, MB_SPEC("\xff\xfe@x", "\xff\xfe", "x", 0)),

    /* --- unterminated constructs: bad to the end of the field --- */
    ROW("unterminated quoted local part", "\"abc@x", 1, MB_BAD("\"abc@x", 0)),
    ROW("unterminated quote after a good mailbox", "a@x, \"bob <b@y>, c@z", 2,
        MB_SPEC("a@x", "a", "x", 0), MB_BAD("\"bob <b@y>, c@z", 0)),
    ROW("quote ending in a backslash", "a@x, \"ab\\\"", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_BAD("\"ab\\\"", 0)),
    ROW("unterminated comment", "a@x (oops", 1, MB_BAD("a@x (oops", 0)),
    ROW("unterminated comment after a good mailbox", "a@x, b@y (oops", 2,
        MB_SPEC("a@x", "a", "x", 0), MB_BAD("b@y (oops", 0)),
    ROW("unterminated nested comment", "a@x ((c)", 1, MB_BAD("a@x ((c)", 0)),
    ROW("comment ending in a backslash", "a@x (c\\", 1, MB_BAD("a@x (c\\", 0)),
    ROW("unterminated angle", "John <j@x", 1, MB_BAD("John <j@x", 0)),
    ROW("unterminated angle after a good mailbox", "a@x, John <j@x, c@z", 2,
        MB_SPEC("a@x", "a", "x", 0), MB_BAD("John <j@x, c@z", 0)),
    ROW("unterminated literal", "a@[1.2.3.4", 1, MB_BAD("a@[1.2.3.4", 0)),
    ROW("unterminated literal after a good mailbox", "b@y, a@[1.2.3.4, c@z", 2,
        MB_SPEC("b@y", "b", "y", 0), MB_BAD("a@[1.2.3.4, c@z", 0)),
    ROW("literal with [ inside", "a@[1[2], b@y", 1, MB_BAD("a@[1[2], b@y", 0)),
    ROW("nested angle", "<<a@x>>", 1, MB_BAD("<<a@x>>", 0)),
    ROW("unterminated quote inside an angle", "a@x, <\"a@x>", 2, MB_SPEC("a@x", "a", "x", 0),
        MB_BAD("<\"a@x>", 0)),
    ROW("unterminated literal inside an angle", "<a@[1.2.3.4>", 1, MB_BAD("<a@[1.2.3.4>", 0)),
    ROW("unterminated comment inside an angle", "<a@x (c>", 1, MB_BAD("<a@x (c>", 0)),
    ROW("obs-route through a quoted string is bad", "<@\"r\":a@b>, c@d", 2,
        MB_BAD("<@\"r\":a@b>", 0), MB_SPEC("c@d", "c", "d", 0)),

    /* --- bad elements: neighbours still parse --- */
    ROW("phrase without angle (x y@z)", "a@x, x y@z, b@y", 3, MB_SPEC("a@x", "a", "x", 0),
        MB_BAD("x y@z", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("x y@z alone", "x y@z", 1, MB_BAD("x y@z", 0)),
    ROW("no @ at all", "a@x, abc, b@y", 3, MB_SPEC("a@x", "a", "x", 0), MB_BAD("abc", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("missing domain", "a@x, a@, b@y", 3, MB_SPEC("a@x", "a", "x", 0), MB_BAD("a@", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("missing domain at the end", "a@", 1, MB_BAD("a@", 0)),
    ROW("missing domain in an angle", "John <j@>, b@y", 2, MB_BAD("John <j@>", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("missing local part", "@b, c@d", 2, MB_BAD("@b", 0), MB_SPEC("c@d", "c", "d", 0)),
    ROW("only @", "@", 1, MB_BAD("@", 0)),
    ROW("empty angle-addr", "a@x, <>, b@y", 3, MB_SPEC("a@x", "a", "x", 0), MB_BAD("<>", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("name with an empty angle-addr", "John <>", 1, MB_BAD("John <>", 0)),
    ROW("domain ends in a dot", "a@b., c@d", 2, MB_BAD("a@b.", 0), MB_SPEC("c@d", "c", "d", 0)),
    ROW("domain starts with a dot", "a@.b, c@d", 2, MB_BAD("a@.b", 0), MB_SPEC("c@d", "c", "d", 0)),
    ROW("empty domain label", "a@b..c, c@d", 2, MB_BAD("a@b..c", 0), MB_SPEC("c@d", "c", "d", 0)),
    ROW("obs: empty domain label across white space", "a@b. .c", 1, MB_BAD("a@b. .c", 0)),
    ROW("obs: domain atoms without a dot", "a@b c", 1, MB_BAD("a@b c", 0)),
    ROW("double @", "a@@b", 1, MB_BAD("a@@b", 0)),
    ROW("two @", "a@b@c, d@e", 2, MB_BAD("a@b@c", 0), MB_SPEC("d@e", "d", "e", 0)),
    ROW("quoted domain", "a@\"x\"", 1, MB_BAD("a@\"x\"", 0)),
    ROW("literal in the local part", "[a]@x", 1, MB_BAD("[a]@x", 0)),
    ROW("literal followed by an atom", "a@[1.2.3.4].com", 1, MB_BAD("a@[1.2.3.4].com", 0)),
    ROW("juxtaposed quoted string and atom", "\"a\"b@x", 1, MB_BAD("\"a\"b@x", 0)),
    ROW("two angle-addrs in one element", "<a@x> <b@y>, c@z", 2, MB_BAD("<a@x> <b@y>", 0),
        MB_SPEC("c@z", "c", "z", 0)),
    ROW("two name-addrs in one element", "A <a@x> B <b@y>", 1, MB_BAD("A <a@x> B <b@y>", 0)),
    ROW("text after the angle-addr", "<a@x> trailing, b@y", 2, MB_BAD("<a@x> trailing", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROW("addr-spec as unquoted display name (lax)", "a@b <c@d>", 1,
        MB("a@b <c@d>", "a@b", "c@d", "c", "d", "c@d", A | ADDR_F_LAX_NAME)),
    ROW("spec after an angle-addr", "<a@x> b@y", 1, MB_BAD("<a@x> b@y", 0)),
    ROW("white space inside the angle-addr spec", "<a@x y>", 1, MB_BAD("<a@x y>", 0)),
    ROW("comma inside an angle-addr", "<a,b@x>, c@y", 2, MB_BAD("<a,b@x>", 0),
        MB_SPEC("c@y", "c", "y", 0)),
    ROW("colon inside an angle-addr (not a route)", "<a:b@x>", 1, MB_BAD("<a:b@x>", 0)),
    ROW("stray >", "a@x>, b@y", 2, MB_BAD("a@x>", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("stray > alone", ">", 1, MB_BAD(">", 0)),
    ROW("stray )", "a@x), b@y", 2, MB_BAD("a@x)", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("stray < swallows the rest", "a<@x, b@y", 1, MB_BAD("a<@x, b@y", 0)),
    ROW("backslash outside quotes", "a\\b@x, c@y", 2, MB_BAD("a\\b@x", 0),
        MB_SPEC("c@y", "c", "y", 0)),
    ROW("backslash in a display name", "John\\ Doe <j@x>", 1, MB_BAD("John\\ Doe <j@x>", 0)),
    ROW("control byte in an atom",
        "a\x01"
        "b@x, c@y",
        2,
        MB_BAD("a\x01"
               "b@x",
               0),
        MB_SPEC("c@y", "c", "y", 0)),
    ROW("DEL byte in an atom", "a\x7f@x", 1, MB_BAD("a\x7f@x", 0)),
    ROW("control byte alone between mailboxes", "a@x, \x02, b@y", 3, MB_SPEC("a@x", "a", "x", 0),
        MB_BAD("\x02", 0), MB_SPEC("b@y", "b", "y", 0)),
    ROW("escape byte in a display name", "Jo\x1bhn <j@x>, b@y", 2, MB_BAD("Jo\x1bhn <j@x>", 0),
        MB_SPEC("b@y", "b", "y", 0)),
    ROWN("NUL inside an atom", "a\0b@x, c@y", 2, MB_BADN("a\0b@x", 5, 0),
         MB_SPEC("c@y", "c", "y", 0)),
    ROWN("NUL at the end", "a@x\0", 1, MB_BADN("a@x\0", 4, 0)),
    ROWN("NUL alone between mailboxes", "a@x,\0,b@y", 3, MB_SPEC("a@x", "a", "x", 0),
         MB_BADN("\0", 1, 0), MB_SPEC("b@y", "b", "y", 0)),
    ROWN("NUL inside a quoted local part", "c@y, \"a\0b\"@x", 2, MB_SPEC("c@y", "c", "y", 0),
         MB_BADN("\"a\0b\"@x", 7, 0)),
    ROWN("escaped NUL inside a quoted local part", "c@y, \"a\\\0b\"@x", 2,
         MB_SPEC("c@y", "c", "y", 0), MB_BADN("\"a\\\0b\"@x", 8, 0)),
    ROWN("NUL inside a quoted display name", "\"a\0b\" <a@x>", 1, MB_BADN("\"a\0b\" <a@x>", 11, 0)),
    ROWN("NUL inside a domain literal", "a@[1.2\0.3.4]", 1, MB_BADN("a@[1.2\0.3.4]", 12, 0)),
    ROWN("NUL inside an angle-addr", "<a\0@x>, b@y", 2, MB_BADN("<a\0@x>", 6, 0),
         MB_SPEC("b@y", "b", "y", 0)),
    /* a comment is never part of a span or a key: its bytes are not inspected */
    ROWN("NUL inside a comment is ignored", "a@x (\0)", 1,
         {.whole = "a@x (\0)",
          .whole_len = 7,
          .name = "",
          .spec = "a@x",
          .local = "a",
          .domain = "x",
          .key = "a@x"}),
};

/* span_text_is - the span lies inside in[0..in_len) and holds exactly want[0..want_len) */
static void span_text_is(const char *row, const char *what, const char *in, size_t in_len,
                         struct addr_span span, const char *want, size_t want_len)
{
    if (span.off > in_len || span.len > in_len - span.off) {
        print_error("%s: %s span %zu+%zu outside the input (%zu bytes)\n", row, what, span.off,
                    span.len, in_len);
        fail();
    }
    if (span.len != want_len || memcmp(in + span.off, want, want_len) != 0) {
        print_error("%s: %s is \"%.*s\" (%zu bytes), want \"%.*s\" (%zu bytes)\n", row, what,
                    (int)span.len, in + span.off, span.len, (int)want_len, want, want_len);
        fail();
    }
}

static int span_inside(struct addr_span inner, struct addr_span outer)
{
    return inner.off >= outer.off && inner.off + inner.len <= outer.off + outer.len;
}

/* a generated input of a few repeated pieces */
struct text {
    char *data;
    size_t len;
    size_t cap;
};

static struct text text_new(size_t cap)
{
    struct text t = {xmalloc(cap), 0, cap};
    return t;
}

static void text_add(struct text *t, const char *s)
{
    size_t len = strlen(s);
    assert_true(t->len + len <= t->cap);
    memcpy(t->data + t->len, s, len);
    t->len += len;
}

/* check_key - addr_key returns want, fits in exactly its length + 1, fails one byte shorter */
static void check_key(const char *row, const char *in, const struct addr_mailbox *m,
                      const char *want)
{
    char key[LIMIT_ADDRESS + KEY_GUARD];
    int rc = addr_key(in, m, key, LIMIT_ADDRESS);
    if (want == NULL) {
        assert_int_equal(rc, -1);
        return;
    }
    if (rc != (int)strlen(want) || memcmp(key, want, strlen(want) + 1) != 0) {
        print_error("%s: key is %d \"%s\", want \"%s\"\n", row, rc, rc < 0 ? "" : key, want);
        fail();
    }
    /* exactly enough room, then one byte too few: nothing written past outsize */
    size_t fit = (size_t)rc + 1;
    for (size_t outsize = fit; outsize + 2 > fit && outsize > 0; outsize--) {
        memset(key, 0x5a, sizeof(key));
        int got = addr_key(in, m, key, outsize);
        assert_int_equal(got, outsize == fit ? rc : -1);
        for (size_t i = outsize; i < outsize + KEY_GUARD && i < sizeof(key); i++)
            assert_int_equal((unsigned char)key[i], 0x5a);
    }
}

/* check_mailbox - one result against one expected mailbox */
static void check_mailbox(const char *row, const char *in, size_t in_len,
                          const struct addr_mailbox *m, const struct want_mailbox *w)
{
    if (m->flags != w->flags) {
        print_error("%s: flags 0x%x, want 0x%x (element \"%.*s\")\n", row, m->flags, w->flags,
                    (int)m->whole.len, m->whole.off <= in_len ? in + m->whole.off : "");
        fail();
    }
    size_t whole_len = w->whole_len ? w->whole_len : strlen(w->whole);
    span_text_is(row, "whole", in, in_len, m->whole, w->whole, whole_len);
    if (m->flags & ADDR_F_BAD) {
        assert_int_equal(m->name.len, 0);
        assert_int_equal(m->spec.len, 0);
        assert_int_equal(m->local.len, 0);
        assert_int_equal(m->domain.len, 0);
        check_key(row, in, m, NULL);
        return;
    }
    span_text_is(row, "name", in, in_len, m->name, w->name, strlen(w->name));
    span_text_is(row, "spec", in, in_len, m->spec, w->spec, strlen(w->spec));
    span_text_is(row, "local", in, in_len, m->local, w->local, strlen(w->local));
    span_text_is(row, "domain", in, in_len, m->domain, w->domain, strlen(w->domain));
    /* the spans nest: local and domain at the two ends of spec, all inside whole */
    assert_true(span_inside(m->spec, m->whole));
    assert_int_equal(m->local.off, m->spec.off);
    assert_int_equal(m->domain.off + m->domain.len, m->spec.off + m->spec.len);
    assert_true(m->local.off + m->local.len < m->domain.off);
    if (m->name.len > 0) {
        assert_true(span_inside(m->name, m->whole));
        assert_true(m->name.off + m->name.len <= m->spec.off);
    }
    check_key(row, in, m, w->key);
}

static void test_list_cases(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(list_cases); c++) {
        const struct list_case *tc = &list_cases[c];
        size_t in_len = tc->input_len ? tc->input_len : strlen(tc->input);
        struct addr_mailbox out[MAX_WANT + 1];
        memset(out, 0, sizeof(out));
        size_t count = addr_parse_list(tc->input, in_len, out, MAX_WANT + 1);
        if (count != tc->want.count) {
            print_error("%s: %zu mailboxes, want %zu\n", tc->name, count, tc->want.count);
            fail();
        }
        for (size_t i = 0; i < count; i++) {
            check_mailbox(tc->name, tc->input, in_len, &out[i], &tc->want.mbox[i]);
            if (i > 0)
                assert_true(out[i - 1].whole.off + out[i - 1].whole.len <= out[i].whole.off);
        }
    }
}

struct spec_case {
    const char *name;
    const char *input;
    size_t input_len; /* 0: strlen(input) */
    int rc;
    const char *local;
    const char *domain;
    const char *key;
    unsigned flags;
};

#define SPEC_OK(n, in, l, d, k, f)                                                                 \
    {                                                                                              \
        .name = (n), .input = (in), .rc = 0, .local = (l), .domain = (d), .key = (k), .flags = (f) \
    }
#define SPEC_NO(n, in)                                                                             \
    {                                                                                              \
        .name = (n), .input = (in), .rc = -1                                                       \
    }
#define SPEC_NON(n, in)                                                                            \
    {                                                                                              \
        .name = (n), .input = (in), .input_len = sizeof(in) - 1, .rc = -1                          \
    }

static const struct spec_case spec_cases[] = {
    SPEC_OK("plain", "a@x", "a", "x", "a@x", 0),
    SPEC_OK("dot-atoms", "john.doe@example.com", "john.doe", "example.com", "john.doe@example.com",
            0),
    SPEC_OK("case kept", "Alex.W@Target.Example", "Alex.W", "Target.Example",
            "Alex.W@Target.Example", 0),
    SPEC_OK("quoted local part with a space", "\"john doe\"@x", "\"john doe\"", "x",
            "\"john doe\"@x", Q),
    SPEC_OK("quoted local part with an escaped quote", "\"a\\\"b\"@x", "\"a\\\"b\"", "x",
            "\"a\\\"b\"@x", Q),
    SPEC_OK("quoted local part with a paren", "\"a(b\"@x", "\"a(b\"", "x", "\"a(b\"@x", Q),
    SPEC_OK("quoted plain local part", "\"alexw\"@x", "\"alexw\"", "x", "alexw@x", Q),
    SPEC_OK("obs-local-part", "\"a\".b@x", "\"a\".b", "x", "a.b@x", Q),
    SPEC_OK("IPv4 literal", "a@[1.2.3.4]", "a", "[1.2.3.4]", "a@[1.2.3.4]", L),
    SPEC_OK("IPv6 literal", "a@[IPv6:::1]", "a", "[IPv6:::1]", "a@[IPv6:::1]", L),
    SPEC_OK("UTF-8",
            "j\xc3\xb6rg@b\xc3\xbc"
            "cher.example",
            "j\xc3\xb6rg",
            "b\xc3\xbc"
            "cher.example",
            "j\xc3\xb6rg@b\xc3\xbc"
            "cher.example",
            0),
    SPEC_OK("lenient: empty dot-word in the local part", "a..b@x", "a..b", "x", "a..b@x", 0),
    SPEC_NO("empty", ""),
    SPEC_NO("no @", "a"),
    SPEC_NO("missing domain", "a@"),
    SPEC_NO("missing local part", "@x"),
    SPEC_NO("only @", "@"),
    SPEC_NO("domain ends in a dot", "a@x."),
    SPEC_NO("domain starts with a dot", "a@.x"),
    SPEC_NO("empty domain label", "a@x..y"),
    SPEC_NO("two @", "a@b@c"),
    SPEC_NO("angle-addr", "<a@x>"),
    SPEC_NO("name-addr", "John <a@x>"),
    SPEC_NO("leading space", " a@x"),
    SPEC_NO("trailing space", "a@x "),
    SPEC_NO("trailing CRLF", "a@x\r\n"),
    SPEC_NO("space before @", "a @x"),
    SPEC_NO("comment after", "a@x(c)"),
    SPEC_NO("comment before", "(c)a@x"),
    SPEC_NO("comment inside", "a(c)@x"),
    SPEC_NO("list of two", "a@x,b@y"),
    SPEC_NO("group", "g:a@x;"),
    SPEC_NO("obs-route", "@r:a@x"),
    SPEC_NO("unterminated quote", "\"abc@x"),
    SPEC_NO("unterminated literal", "a@[1.2.3.4"),
    SPEC_NO("literal with white space", "a@[1.2.3.4 ]"),
    SPEC_NO("folded quoted local part", "\"john\r\n doe\"@x"),
    SPEC_NO("quoted domain", "a@\"x\""),
    SPEC_NO("phrase", "x y@z"),
    SPEC_NO("control byte", "a\x01@x"),
    SPEC_NON("NUL inside", "a\0b@x"),
    SPEC_NON("NUL at the end", "a@x\0"),
    SPEC_NON("NUL in a quoted local part", "\"a\0b\"@x"),
};

static void test_spec_cases(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(spec_cases); c++) {
        const struct spec_case *tc = &spec_cases[c];
        size_t in_len = tc->input_len ? tc->input_len : strlen(tc->input);
        struct addr_mailbox m;
        int rc = addr_parse_spec(tc->input, in_len, &m);
        if (rc != tc->rc) {
            print_error("%s: addr_parse_spec returned %d, want %d\n", tc->name, rc, tc->rc);
            fail();
        }
        if (rc < 0)
            continue;
        assert_int_equal(m.flags, tc->flags);
        span_text_is(tc->name, "whole", tc->input, in_len, m.whole, tc->input, in_len);
        span_text_is(tc->name, "spec", tc->input, in_len, m.spec, tc->input, in_len);
        span_text_is(tc->name, "name", tc->input, in_len, m.name, "", 0);
        span_text_is(tc->name, "local", tc->input, in_len, m.local, tc->local, strlen(tc->local));
        span_text_is(tc->name, "domain", tc->input, in_len, m.domain, tc->domain,
                     strlen(tc->domain));
        check_key(tc->name, tc->input, &m, tc->key);
    }
}

struct key_case {
    const char *name;
    const char *input; /* the first mailbox of this list */
    size_t outsize;
    int rc;
    const char *key;
};

static const struct key_case key_cases[] = {
    {"fits exactly", "a@x", 4, 3, "a@x"},
    {"one byte short for the NUL", "a@x", 3, -1, NULL},
    {"room for one byte", "a@x", 1, -1, NULL},
    {"no room at all", "a@x", 0, -1, NULL},
    {"CFWS removed", "(c) a (d) @ (e) x (f) . y", 6, 5, "a@x.y"},
    {"CFWS removed, one byte short", "(c) a (d) @ (e) x (f) . y", 5, -1, NULL},
    {"route dropped", "<@r1,@r2:a@x>", 4, 3, "a@x"},
    {"display name dropped", "\"a@evil\" <a@x>", 4, 3, "a@x"},
    {"plain quoted local part unquoted", "\"alexw\"@x", 8, 7, "alexw@x"},
    {"plain quoted local part, one byte short", "\"alexw\"@x", 7, -1, NULL},
    {"quoted local part that needs its quotes", "\"john doe\"@x", 13, 12, "\"john doe\"@x"},
    {"quoted local part, short for the closing quote", "\"john doe\"@x", 12, -1, NULL},
    {"quoted local part, short inside the quotes", "\"john doe\"@x", 4, -1, NULL},
    {"escaped quote re-escaped", "\"a\\\"b\"@x", 9, 8, "\"a\\\"b\"@x"},
    {"escaped quote, one byte short", "\"a\\\"b\"@x", 8, -1, NULL},
    {"needless escapes dropped", "\"\\j\\o\\e\"@x", 6, 5, "joe@x"},
    {"case kept", "Alex.W@Target.EXAMPLE", 64, 21, "Alex.W@Target.EXAMPLE"},
    {"literal kept", "a @ [IPv6:::1]", 64, 12, "a@[IPv6:::1]"},
    {"bad mailbox", "x y@z", 64, -1, NULL},
};

static void test_key_cases(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(key_cases); c++) {
        const struct key_case *tc = &key_cases[c];
        struct addr_mailbox m;
        char key[64 + KEY_GUARD];
        assert_int_equal(addr_parse_list(tc->input, strlen(tc->input), &m, 1), 1);
        memset(key, 0x5a, sizeof(key));
        int rc = addr_key(tc->input, &m, key, tc->outsize);
        if (rc != tc->rc) {
            print_error("%s: addr_key returned %d, want %d\n", tc->name, rc, tc->rc);
            fail();
        }
        if (rc >= 0)
            assert_string_equal(key, tc->key);
        for (size_t i = tc->outsize; i < sizeof(key); i++)
            assert_int_equal((unsigned char)key[i], 0x5a);
    }
}

/* max below the count: the full count comes back, only max entries are written */
static void test_list_max(void **state)
{
    (void)state;
    const char *in = "a@x, Team: b@y, c@z;, bad, d@w";
    struct addr_mailbox out[4];
    memset(out, 0xa5, sizeof(out));
    assert_int_equal(addr_parse_list(in, strlen(in), out, 2), 5);
    span_text_is("max", "spec", in, strlen(in), out[0].spec, "a@x", 3);
    span_text_is("max", "spec", in, strlen(in), out[1].spec, "b@y", 3);
    assert_int_equal(out[1].flags, ADDR_F_GROUP);
    const unsigned char *rest = (const unsigned char *)&out[2];
    for (size_t i = 0; i < 2 * sizeof(out[0]); i++)
        assert_int_equal(rest[i], 0xa5);

    /* max 0: nothing written, out may be NULL */
    assert_int_equal(addr_parse_list(in, strlen(in), NULL, 0), 5);
    assert_int_equal(addr_parse_list(in, 0, NULL, 0), 0);

    /* the count goes on far past what is stored */
    struct text many = text_new(8 * 1000);
    for (int i = 0; i < 1000; i++)
        text_add(&many, "a@x, ");
    assert_int_equal(addr_parse_list(many.data, many.len, out, 4), 1000);
    span_text_is("max", "whole", many.data, many.len, out[3].whole, "a@x", 3);
    free(many.data);
}

struct long_case {
    const char *name;
    const char *head;  /* before the repeated piece */
    const char *piece; /* repeated `times` times */
    size_t times;
    const char *tail; /* after it */
    int bad;          /* the middle element must be ADDR_F_BAD */
};

/*
 * An element may hold LIMIT_ELEMENT_TOKENS tokens; one more makes it bad. The
 * element sits between two good mailboxes, which must survive.
 */
static const struct long_case long_cases[] = {
    {"display name at the token limit", "", "w ", LIMIT_ELEMENT_TOKENS - 1, "<a@x>", 0},
    {"display name one token over", "", "w ", LIMIT_ELEMENT_TOKENS, "<a@x>", 1},
    {"display name far over", "", "w ", 10 * LIMIT_ELEMENT_TOKENS, "<a@x>", 1},
    {"obs local part at the token limit", "a", " .a", LIMIT_ELEMENT_TOKENS - 3, "@x", 0},
    {"obs local part one token over", "a", " .a", LIMIT_ELEMENT_TOKENS - 2, "@x", 1},
    {"angle-addr at the token limit", "<a", " .a", LIMIT_ELEMENT_TOKENS - 3, "@x>", 0},
    {"angle-addr one token over", "<a", " .a", LIMIT_ELEMENT_TOKENS - 2, "@x>", 1},
    {"comments do not count as tokens", "a", " (c)", 4 * LIMIT_ELEMENT_TOKENS, "@x", 0},
    {"one long atom is one token", "a", "b", 20000, "@x", 0},
    {"long quoted display name", "\"", "q ", 5000, "\" <a@x>", 0},
    {"long unterminated comment", "a@x (", "c", 5000, "", 1},
};

static void test_long_elements(void **state)
{
    (void)state;
    for (size_t c = 0; c < ARRAY_LEN(long_cases); c++) {
        const struct long_case *tc = &long_cases[c];
        size_t piece_len = strlen(tc->piece);
        struct text t = text_new(64 + strlen(tc->head) + piece_len * tc->times + strlen(tc->tail));
        text_add(&t, "b@y, ");
        size_t elem_off = t.len;
        text_add(&t, tc->head);
        for (size_t i = 0; i < tc->times; i++)
            text_add(&t, tc->piece);
        text_add(&t, tc->tail);
        size_t elem_len = t.len - elem_off;
        /* an unterminated comment swallows the rest of the field */
        int last = tc->bad && tc->head[0] == 'a' && tc->head[1] == '@';
        if (!last)
            text_add(&t, ", c@z");

        struct addr_mailbox out[4];
        size_t count = addr_parse_list(t.data, t.len, out, 4);
        if (count != (last ? 2u : 3u)) {
            print_error("%s: %zu mailboxes\n", tc->name, count);
            fail();
        }
        span_text_is(tc->name, "spec", t.data, t.len, out[0].spec, "b@y", 3);
        span_text_is(tc->name, "whole", t.data, t.len, out[1].whole, t.data + elem_off, elem_len);
        if ((out[1].flags & ADDR_F_BAD) != (tc->bad ? ADDR_F_BAD : 0u)) {
            print_error("%s: flags 0x%x\n", tc->name, out[1].flags);
            fail();
        }
        if (!tc->bad) {
            assert_true(span_inside(out[1].spec, out[1].whole));
            assert_int_equal(t.data[out[1].domain.off], 'x');
        }
        if (!last)
            span_text_is(tc->name, "spec", t.data, t.len, out[2].spec, "c@z", 3);
        free(t.data);
    }
}

/* a key longer than LIMIT_ADDRESS never fits the usual buffer; a bigger one takes it */
static void test_key_long(void **state)
{
    (void)state;
    struct text t = text_new(2 * LIMIT_ADDRESS + 16);
    for (size_t i = 0; i < LIMIT_ADDRESS; i++)
        text_add(&t, "a");
    text_add(&t, "@x");
    struct addr_mailbox m;
    char small[LIMIT_ADDRESS];
    char big[2 * LIMIT_ADDRESS];
    assert_int_equal(addr_parse_list(t.data, t.len, &m, 1), 1);
    assert_int_equal(addr_key(t.data, &m, small, sizeof(small)), -1);
    assert_int_equal(addr_key(t.data, &m, big, sizeof(big)), LIMIT_ADDRESS + 2);
    free(t.data);

    /* a quoted local part that keeps its quotes is limited to LIMIT_ADDRESS bytes */
    t = text_new(2 * LIMIT_ADDRESS + 16);
    text_add(&t, "\"");
    for (size_t i = 0; i < LIMIT_ADDRESS; i++)
        text_add(&t, " ");
    text_add(&t, "\"@x");
    assert_int_equal(addr_parse_list(t.data, t.len, &m, 1), 1);
    assert_int_equal(m.flags, ADDR_F_QUOTED);
    assert_int_equal(addr_key(t.data, &m, big, sizeof(big)), -1);
    free(t.data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_cases),    cmocka_unit_test(test_spec_cases),
        cmocka_unit_test(test_key_cases),     cmocka_unit_test(test_list_max),
        cmocka_unit_test(test_long_elements), cmocka_unit_test(test_key_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
