/*
 * hdr - split an RFC 5322 header block into fields, without copying.
 *
 * Implements RFC 5322 §2.2 (field = name ":" body, folded with CRLF WSP),
 * §2.1 (header/body boundary: the first empty line) and §4.5 obs-fields
 * (white space before the colon). Accepts CRLF and bare-LF line ends. A line
 * in the header block that is not a field (no colon, or a continuation with
 * no field before it) is returned as a field with name_len 0, so a caller
 * that copies fields it does not understand keeps every byte.
 *
 * Does not: unfold, decode, or judge field bodies.
 */
#ifndef COEX_HDR_H
#define COEX_HDR_H

#include <stddef.h>

struct hdr_field {
    size_t off;       /* first byte of the field (its name) */
    size_t name_len;  /* length of the name; 0 for a line that is not a field */
    size_t value_off; /* first byte after the colon */
    size_t value_end; /* end of the body, before the final line end */
    size_t end;       /* one past the final line end (CRLF or LF) */
};

struct hdr_iter {
    const char *msg;  /* borrowed */
    size_t len;
    size_t pos;
    size_t body_off;  /* valid once hdr_iter_next returned 0: where the body starts */
    size_t header_end;/* valid once hdr_iter_next returned 0: end of the last field */
};

/* hdr_iter_init - iterate the fields of msg[0..len) (borrowed) */
void hdr_iter_init(struct hdr_iter *it, const char *msg, size_t len);

/*
 * hdr_iter_next - the next field: 1 and *f filled, or 0 at the end of the
 * header block (then it->header_end and it->body_off are set; body_off is len
 * for a message without a body or without an empty line).
 */
int hdr_iter_next(struct hdr_iter *it, struct hdr_field *f);

/* hdr_split - header_end and body_off of msg[0..len); see hdr_iter_next */
void hdr_split(const char *msg, size_t len, size_t *header_end, size_t *body_off);

/* hdr_name_is - 1 when the field's name equals name, ignoring ASCII case */
int hdr_name_is(const char *msg, const struct hdr_field *f, const char *name, size_t name_len);

#endif
