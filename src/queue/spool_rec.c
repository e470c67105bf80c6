/*
 * spool_rec - the record codec of the spool: CRC-32C, the 16-byte record
 * header, MSG and RCPT payloads, and the spool_msg helpers.
 *
 * All integers are little-endian; strings carry a u16 length and are bounded
 * by LIMIT_SPOOL_STRING. Every length and count read back is checked against
 * its LIMIT_ constant and against the bytes actually present before use, so a
 * corrupt record is rejected, never trusted. Format: docs/spool.md.
 *
 * Does not: do I/O. It builds and reads bytes in memory only.
 */
#include <stdlib.h>
#include <string.h>

#include "spool_int.h"

/* ------------------------------------------------------------------ CRC-32C */

/*
 * CRC-32C, the Castagnoli polynomial 0x1EDC6F41 (reflected: 0x82F63B78), as
 * used by iSCSI (RFC 3720 B.4), ext4 and btrfs; better burst-error detection
 * than the zlib CRC-32 for storage. Table-driven, one byte at a time: the
 * cost is small next to fdatasync. crc32c("123456789") = 0xE3069283.
 */
static uint32_t spool_crc_table[256];
static pthread_once_t spool_crc_once = PTHREAD_ONCE_INIT;

static void spool_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        spool_crc_table[i] = c;
    }
}

/* spool_crc32c - update crc with p[0..len) */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t len)
{
    const unsigned char *bytes = p;
    pthread_once(&spool_crc_once, spool_crc_init);
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = spool_crc_table[(crc ^ bytes[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ------------------------------------------------------------ little endian */

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const unsigned char *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* append helpers: any failure is remembered and reported once by the caller */
struct spool_out {
    struct buf *b;
    int failed;
};

static void out_bytes(struct spool_out *o, const void *p, size_t len)
{
    if (!o->failed && buf_append(o->b, p, len) < 0)
        o->failed = 1;
}

static void out_u8(struct spool_out *o, unsigned v)
{
    unsigned char c = (unsigned char)v;
    out_bytes(o, &c, 1);
}

static void out_u32(struct spool_out *o, uint32_t v)
{
    unsigned char p[4];
    put_u32(p, v);
    out_bytes(o, p, 4);
}

static void out_u64(struct spool_out *o, uint64_t v)
{
    unsigned char p[8];
    put_u64(p, v);
    out_bytes(o, p, 8);
}

static void out_str(struct spool_out *o, const char *s)
{
    size_t len = strlen(s);
    unsigned char p[2];
    if (len > LIMIT_SPOOL_STRING) {
        o->failed = 1;
        return;
    }
    put_u16(p, (uint16_t)len);
    out_bytes(o, p, 2);
    out_bytes(o, s, len);
}

/* a bounded reader over one payload; any overrun sets bad */
struct spool_in {
    const unsigned char *p;
    size_t len, off;
    int bad;
};

static const unsigned char *in_take(struct spool_in *in, size_t n)
{
    if (in->bad || in->len - in->off < n) {
        in->bad = 1;
        return NULL;
    }
    in->off += n;
    return in->p + in->off - n;
}

static unsigned in_u8(struct spool_in *in)
{
    const unsigned char *p = in_take(in, 1);
    return p ? p[0] : 0;
}

static uint32_t in_u32(struct spool_in *in)
{
    const unsigned char *p = in_take(in, 4);
    return p ? get_u32(p) : 0;
}

static uint64_t in_u64(struct spool_in *in)
{
    const unsigned char *p = in_take(in, 8);
    return p ? get_u64(p) : 0;
}

/* in_str - a u16-prefixed string as a new C string; NULL (bad set) on error */
static char *in_str(struct spool_in *in)
{
    const unsigned char *p = in_take(in, 2);
    if (p == NULL)
        return NULL;
    size_t len = (size_t)p[0] | (size_t)p[1] << 8;
    if (len > LIMIT_SPOOL_STRING) {
        in->bad = 1;
        return NULL;
    }
    const unsigned char *s = in_take(in, len);
    if (s == NULL)
        return NULL;
    return xstrndup((const char *)s, len);
}

/* ------------------------------------------------------------------ records */

/* spool_rec_begin - reserve the header */
long spool_rec_begin(struct buf *b)
{
    static const unsigned char zero[SPOOL_REC_HEADER];
    long rec_off = (long)b->len;
    if (buf_append(b, zero, sizeof(zero)) < 0)
        return -1;
    return rec_off;
}

/* spool_rec_end - header over the payload appended since spool_rec_begin */
int spool_rec_end(struct buf *b, long rec_off, unsigned type)
{
    unsigned char *h = (unsigned char *)b->data + rec_off;
    size_t payload = b->len - (size_t)rec_off - SPOOL_REC_HEADER;
    if (payload > LIMIT_SPOOL_RECORD)
        return -1;
    put_u32(h, SPOOL_REC_MAGIC);
    h[4] = (unsigned char)type;
    h[5] = 0; /* flags */
    put_u16(h + 6, 0);
    put_u32(h + 8, (uint32_t)payload);
    /* the CRC covers type, flags, reserved and length, then the payload */
    uint32_t crc = spool_crc32c(0, h + 4, 8);
    crc = spool_crc32c(crc, h + SPOOL_REC_HEADER, payload);
    put_u32(h + 12, crc);
    return 0;
}

/* spool_msg_check - the envelope respects the limits the reader enforces */
static int spool_msg_check(const struct spool_msg *m, size_t len)
{
    if (m->route == NULL || m->mail_from == NULL || m->rcpt_count == 0 ||
        m->rcpt_count > LIMIT_SPOOL_RCPTS || m->rcpts == NULL || len > LIMIT_SPOOL_DATA)
        return -1;
    for (size_t i = 0; i < m->rcpt_count; i++) {
        const struct spool_rcpt *r = &m->rcpts[i];
        if (r->addr == NULL || r->notify > 0xff || (unsigned)r->state > SPOOL_RCPT_FAILED)
            return -1;
    }
    return 0;
}

/* spool_rec_put_msg - envelope, recipients, then the message bytes */
int spool_rec_put_msg(struct buf *b, const struct spool_msg *m, const char *data, size_t len,
                      size_t *data_rel)
{
    size_t start = b->len;
    struct spool_out o = {b, 0};
    long rec_off;
    if (spool_msg_check(m, len) < 0 || (rec_off = spool_rec_begin(b)) < 0)
        return -1;
    unsigned flags = (m->ret_full > 0 ? SPOOL_MSG_RET_FULL : 0) |
                     (m->ret_full == 0 ? SPOOL_MSG_RET_HDRS : 0) |
                     (m->is_bounce ? SPOOL_MSG_IS_BOUNCE : 0) |
                     (m->envid ? SPOOL_MSG_HAS_ENVID : 0);
    out_u64(&o, m->id);
    out_u64(&o, (uint64_t)(int64_t)m->arrival);
    out_u8(&o, flags);
    out_str(&o, m->route);
    out_str(&o, m->mail_from);
    if (m->envid)
        out_str(&o, m->envid);
    out_u32(&o, (uint32_t)m->rcpt_count);
    for (size_t i = 0; i < m->rcpt_count; i++) {
        const struct spool_rcpt *r = &m->rcpts[i];
        out_u8(&o, r->orcpt ? SPOOL_RCPT_HAS_ORCPT : 0);
        out_u8(&o, r->notify);
        out_u8(&o, (unsigned)r->state);
        out_str(&o, r->addr);
        if (r->orcpt)
            out_str(&o, r->orcpt);
    }
    out_u32(&o, (uint32_t)len);
    if (!o.failed)
        *data_rel = b->len - start;
    out_bytes(&o, data, len);
    if (o.failed || spool_rec_end(b, rec_off, SPOOL_REC_MSG) < 0)
        goto fail;
    return 0;
fail:
    b->len = start;
    if (b->data)
        b->data[start] = '\0';
    return -1;
}

/* spool_rec_put_rcpt - one recipient's final state */
int spool_rec_put_rcpt(struct buf *b, uint64_t id, uint32_t rcpt, unsigned state)
{
    size_t start = b->len;
    struct spool_out o = {b, 0};
    long rec_off = spool_rec_begin(b);
    if (rec_off < 0)
        return -1;
    out_u64(&o, id);
    out_u32(&o, rcpt);
    out_u8(&o, state);
    if (o.failed || spool_rec_end(b, rec_off, SPOOL_REC_RCPT) < 0)
        goto fail;
    return 0;
fail:
    b->len = start;
    if (b->data)
        b->data[start] = '\0';
    return -1;
}

/* spool_rec_parse_header - magic, known type, zero flags, bounded length */
int spool_rec_parse_header(const unsigned char *p, struct spool_rec_header *h)
{
    if (get_u32(p) != SPOOL_REC_MAGIC || p[5] != 0 || p[6] != 0 || p[7] != 0)
        return -1;
    h->type = p[4];
    h->length = get_u32(p + 8);
    h->crc = get_u32(p + 12);
    if (h->type == SPOOL_REC_MSG && h->length <= LIMIT_SPOOL_RECORD)
        return 0;
    if (h->type == SPOOL_REC_RCPT && h->length == SPOOL_RCPT_PAYLOAD)
        return 0;
    return -1;
}

/* spool_rec_check_crc - recompute over header fields and payload */
int spool_rec_check_crc(const unsigned char *header, const unsigned char *payload, size_t len)
{
    uint32_t crc = spool_crc32c(0, header + 4, 8);
    crc = spool_crc32c(crc, payload, len);
    return crc == get_u32(header + 12);
}

/* spool_rec_get_msg - the inverse of spool_rec_put_msg, strictly */
int spool_rec_get_msg(const unsigned char *p, size_t len, struct spool_msg **out, size_t *data_rel)
{
    struct spool_in in = {p, len, 0, 0};
    struct spool_msg *m = xcalloc(1, sizeof(*m));
    m->id = in_u64(&in);
    m->arrival = (time_t)(int64_t)in_u64(&in);
    unsigned flags = in_u8(&in);
    if (flags & ~(unsigned)(SPOOL_MSG_RET_FULL | SPOOL_MSG_RET_HDRS | SPOOL_MSG_IS_BOUNCE |
                            SPOOL_MSG_HAS_ENVID))
        goto fail;
    m->ret_full = (flags & SPOOL_MSG_RET_FULL) ? 1 : (flags & SPOOL_MSG_RET_HDRS) ? 0 : -1;
    m->is_bounce = (flags & SPOOL_MSG_IS_BOUNCE) != 0;
    m->route = in_str(&in);
    m->mail_from = in_str(&in);
    if (flags & SPOOL_MSG_HAS_ENVID)
        m->envid = in_str(&in);
    uint32_t count = in_u32(&in);
    if (in.bad || count == 0 || count > LIMIT_SPOOL_RCPTS)
        goto fail;
    m->rcpts = xcalloc(count, sizeof(*m->rcpts));
    m->rcpt_count = count;
    for (uint32_t i = 0; i < count && !in.bad; i++) {
        struct spool_rcpt *r = &m->rcpts[i];
        unsigned rflags = in_u8(&in);
        r->notify = in_u8(&in);
        unsigned state = in_u8(&in);
        if ((rflags & ~(unsigned)SPOOL_RCPT_HAS_ORCPT) || state > SPOOL_RCPT_FAILED)
            goto fail;
        r->state = (enum spool_rcpt_state)state;
        r->addr = in_str(&in);
        if (rflags & SPOOL_RCPT_HAS_ORCPT)
            r->orcpt = in_str(&in);
    }
    uint32_t data_len = in_u32(&in);
    if (in.bad || data_len > LIMIT_SPOOL_DATA || in.len - in.off != data_len)
        goto fail;
    m->data_len = data_len;
    *data_rel = in.off;
    *out = m;
    return 0;
fail:
    spool_msg_free(m);
    return -1;
}

/* spool_rec_get_rcpt - id, index, final state */
int spool_rec_get_rcpt(const unsigned char *p, size_t len, uint64_t *id, uint32_t *rcpt,
                       unsigned *state)
{
    struct spool_in in = {p, len, 0, 0};
    *id = in_u64(&in);
    *rcpt = in_u32(&in);
    *state = in_u8(&in);
    if (in.bad || in.off != len || *rcpt >= LIMIT_SPOOL_RCPTS ||
        (*state != SPOOL_RCPT_DELIVERED && *state != SPOOL_RCPT_FAILED))
        return -1;
    return 0;
}

/* -------------------------------------------------------------- spool_msg */

/* spool_msg_free - the message and its strings */
void spool_msg_free(struct spool_msg *m)
{
    if (m == NULL)
        return;
    free(m->route);
    free(m->mail_from);
    free(m->envid);
    for (size_t i = 0; m->rcpts && i < m->rcpt_count; i++) {
        free(m->rcpts[i].addr);
        free(m->rcpts[i].orcpt);
    }
    free(m->rcpts);
    free(m);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* spool_msg_dup - deep copy */
struct spool_msg *spool_msg_dup(const struct spool_msg *m)
{
    struct spool_msg *c = xmalloc(sizeof(*c));
    *c = *m;
    c->route = dup_or_null(m->route);
    c->mail_from = dup_or_null(m->mail_from);
    c->envid = dup_or_null(m->envid);
    c->rcpts = NULL;
    if (m->rcpt_count) {
        c->rcpts = xcalloc(m->rcpt_count, sizeof(*c->rcpts));
        for (size_t i = 0; i < m->rcpt_count; i++) {
            c->rcpts[i] = m->rcpts[i];
            c->rcpts[i].addr = dup_or_null(m->rcpts[i].addr);
            c->rcpts[i].orcpt = dup_or_null(m->rcpts[i].orcpt);
        }
    }
    return c;
}

/* spool_format_id - 16 upper-case hex digits */
void spool_format_id(uint64_t id, char out[SPOOL_ID_SIZE])
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = 15; i >= 0; i--) {
        out[i] = hex[id & 0xf];
        id >>= 4;
    }
    out[16] = '\0';
}

/* spool_seg_name - the file name of segment seq */
void spool_seg_name(uint64_t seq, char out[SPOOL_SEG_NAME_SIZE])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "seg-", 4);
    for (int i = 15; i >= 0; i--) {
        out[4 + i] = hex[seq & 0xf];
        seq >>= 4;
    }
    memcpy(out + 20, ".log", 5);
}
