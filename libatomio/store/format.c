/* SPDX-License-Identifier: MIT */
/*
 * store/format.c -- encode and decode the doublewrite store's records (docs/format.md). Pure
 * functions over byte buffers: no I/O, no allocation. Decoders are total: any length, any
 * bytes; every offset is checked against the buffer length in 64-bit arithmetic that cannot
 * wrap, and loops are bounded by the buffer.
 */
#include "store/format.h"

#include "atomio_internal.h"

#include <string.h>

#define STORE_MAGIC    "ATOMIODW"
#define REC_MAGIC      0x43525441u /* "ATRC" */
#define MANIFEST_MAGIC 0x464d5441u /* "ATMF" */

static inline void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t
get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t
get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

/* ---- geometry and store header --------------------------------------------------------- */

uint64_t
atomio__dw_table_bytes(uint32_t count)
{
    return atomio__dw_round(ATOMIO_DW_REC_HDR_LEN + (uint64_t)count * ATOMIO_DW_SLOT_LEN,
                            ATOMIO_DW_GRANULE);
}

int
atomio__dw_geom_make(struct atomio_dw_geom *g, uint64_t ring_bytes, uint32_t max_page_size)
{
    memset(g, 0, sizeof(*g));
    if (!atomio__is_pow2(max_page_size) || max_page_size < ATOMIO_MIN_PAGE ||
        max_page_size > ATOMIO_MAX_PAGE)
        return ATOMIO_E_INVAL;
    uint64_t ring = atomio__dw_round(ring_bytes, ATOMIO_DW_ALIGN);
    if (ring < ATOMIO_DW_RING_MIN || ring > ATOMIO_DW_RING_MAX)
        return ATOMIO_E_INVAL;
    g->version = ATOMIO_DW_VERSION;
    g->max_page_size = max_page_size;
    g->ring_offset = ATOMIO_DW_RING_OFFSET;
    g->ring_size = ring;
    return 0;
}

uint64_t
atomio__dw_store_size(const struct atomio_dw_geom *g)
{
    return g->ring_offset + g->ring_size;
}

void
atomio__dw_store_hdr_encode(const struct atomio_dw_geom *g, uint32_t copy,
                            uint8_t out[ATOMIO_DW_STORE_HDR_LEN])
{
    memset(out, 0, ATOMIO_DW_STORE_HDR_LEN);
    memcpy(out, STORE_MAGIC, 8);
    put32(out + 8, ATOMIO_DW_VERSION);
    put32(out + 12, ATOMIO_DW_STORE_HDR_LEN);
    put32(out + 16, 0); /* flags */
    put32(out + 20, copy);
    put64(out + 24, g->generation);
    memcpy(out + 32, g->uuid, 16);
    put64(out + 48, g->ring_offset);
    put64(out + 56, g->ring_size);
    put32(out + 64, ATOMIO_DW_GRANULE);
    put32(out + 68, g->max_page_size);
    put64(out + 72, g->tail);
    put32(out + 252, atomio__crc32c(0, out, 252));
}

#define WHY(s)                                                                                     \
    do {                                                                                           \
        if (why)                                                                                   \
            *why = (s);                                                                            \
    } while (0)

int
atomio__dw_store_hdr_decode(const uint8_t *buf, size_t len, uint32_t copy, struct atomio_dw_geom *g,
                            uint32_t *version, const char **why)
{
    memset(g, 0, sizeof(*g));
    if (version)
        *version = 0;
    WHY("ok");
    if (len == 0 || (len < ATOMIO_DW_STORE_HDR_LEN && all_zero(buf, len))) {
        WHY("empty store file");
        return ATOMIO_DW_HDR_EMPTY;
    }
    if (len < 16) {
        WHY("store header truncated");
        return ATOMIO_E_STORE;
    }
    if (memcmp(buf, STORE_MAGIC, 8) != 0) {
        if (len >= ATOMIO_DW_STORE_HDR_LEN && all_zero(buf, ATOMIO_DW_STORE_HDR_LEN)) {
            WHY("store header all zero");
            return ATOMIO_DW_HDR_EMPTY;
        }
        WHY("bad store magic (not an atomio doublewrite store, or a damaged header)");
        return ATOMIO_E_STORE;
    }
    uint32_t v = get32(buf + 8);
    if (version)
        *version = v;
    if (v != ATOMIO_DW_VERSION) {
        WHY("store format version this library does not write");
        return ATOMIO_E_STORE;
    }
    if (len < ATOMIO_DW_STORE_HDR_LEN) {
        WHY("store header truncated");
        return ATOMIO_E_STORE;
    }
    if (get32(buf + 252) != atomio__crc32c(0, buf, 252)) {
        WHY("store header CRC32C mismatch");
        return ATOMIO_E_STORE;
    }
    if (get32(buf + 12) != ATOMIO_DW_STORE_HDR_LEN || get32(buf + 16) != 0 ||
        get32(buf + 20) != copy || get32(buf + 64) != ATOMIO_DW_GRANULE ||
        !all_zero(buf + 80, 252 - 80)) {
        WHY("unknown store header length, flags, copy index, granule or reserved bytes");
        return ATOMIO_E_STORE;
    }
    g->version = v;
    g->generation = get64(buf + 24);
    memcpy(g->uuid, buf + 32, 16);
    g->ring_offset = get64(buf + 48);
    g->ring_size = get64(buf + 56);
    g->max_page_size = get32(buf + 68);
    g->tail = get64(buf + 72);
    if (!atomio__is_pow2(g->max_page_size) || g->max_page_size < ATOMIO_MIN_PAGE ||
        g->max_page_size > ATOMIO_MAX_PAGE) {
        WHY("bad largest page size");
        return ATOMIO_E_STORE;
    }
    if (g->ring_offset != ATOMIO_DW_RING_OFFSET || g->ring_size % ATOMIO_DW_ALIGN ||
        g->ring_size < ATOMIO_DW_RING_MIN || g->ring_size > ATOMIO_DW_RING_MAX ||
        g->tail % ATOMIO_DW_GRANULE) {
        WHY("bad ring offset, ring size or tail");
        return ATOMIO_E_STORE;
    }
    return 0;
}

/* ---- records ------------------------------------------------------------------------------ */

void
atomio__dw_slot_encode(uint8_t *rec, const struct atomio_dw_slot *s)
{
    uint8_t *p = rec + ATOMIO_DW_REC_HDR_LEN + (size_t)s->index * ATOMIO_DW_SLOT_LEN;
    put64(p, s->file_id);
    put64(p + 8, s->page_no);
    put32(p + 16, s->offset);
    put32(p + 20, s->page_size);
    put32(p + 24, s->crc);
    put32(p + 28, 0); /* flags */
}

void
atomio__dw_batch_hdr_encode(uint8_t *rec, const struct atomio_dw_batch_hdr *b,
                            const uint8_t uuid[16])
{
    uint8_t *p = rec;
    put32(p, REC_MAGIC);
    put16(p + 4, (uint16_t)ATOMIO_DW_VERSION);
    put16(p + 6, (uint16_t)ATOMIO_DW_REC_HDR_LEN);
    put64(p + 8, b->lsn);
    put32(p + 16, b->count);
    put32(p + 20, 0); /* flags */
    put64(p + 24, b->byte_len);
    memcpy(p + 32, uuid, 16);
    put32(p + 48,
          atomio__crc32c(0, rec + ATOMIO_DW_REC_HDR_LEN, (size_t)b->count * ATOMIO_DW_SLOT_LEN));
    put64(p + 52, b->ring_size);
    put32(p + 60, atomio__crc32c(0, p, 60));
}

enum atomio_dw_state
atomio__dw_rec_hdr_decode(const uint8_t *buf, const struct atomio_dw_geom *g,
                          struct atomio_dw_batch_hdr *b, const char **why)
{
    memset(b, 0, sizeof(*b));
    WHY("ok");
    if (all_zero(buf, ATOMIO_DW_REC_HDR_LEN)) {
        WHY("empty");
        return ATOMIO_DW_EMPTY;
    }
    if (get32(buf + 60) != atomio__crc32c(0, buf, 60)) {
        WHY("record header CRC32C mismatch");
        return ATOMIO_DW_TORN;
    }
    if (get32(buf) != REC_MAGIC || get16(buf + 4) != ATOMIO_DW_VERSION ||
        get16(buf + 6) != ATOMIO_DW_REC_HDR_LEN || get32(buf + 20) != 0) {
        WHY("bad record magic, version, length or flags");
        return ATOMIO_DW_TORN;
    }
    b->lsn = get64(buf + 8);
    b->count = get32(buf + 16);
    b->byte_len = get64(buf + 24);
    b->table_crc = get32(buf + 48);
    b->ring_size = get64(buf + 52);
    if (memcmp(buf + 32, g->uuid, 16) != 0 || b->ring_size != g->ring_size) {
        WHY("record belongs to another store (uuid or ring size)");
        return ATOMIO_DW_TORN;
    }
    uint64_t table = atomio__dw_table_bytes(b->count);
    if (b->count < 1 || b->count > g->ring_size / ATOMIO_DW_GRANULE || b->lsn % ATOMIO_DW_GRANULE ||
        b->byte_len % ATOMIO_DW_GRANULE || b->byte_len < table ||
        b->byte_len > g->ring_size - b->lsn % g->ring_size) {
        WHY("record count, position or length out of range");
        return ATOMIO_DW_TORN;
    }
    return ATOMIO_DW_VALID;
}

/* decode_slot_desc() -- descriptor i of the table, checked on its own (page geometry inside
 * the record). Content is checked by the caller. */
static int
decode_slot_desc(const uint8_t *buf, const struct atomio_dw_batch_hdr *b, uint32_t i,
                 struct atomio_dw_slot *s)
{
    const uint8_t *p = buf + ATOMIO_DW_REC_HDR_LEN + (size_t)i * ATOMIO_DW_SLOT_LEN;
    s->file_id = get64(p);
    s->page_no = get64(p + 8);
    s->offset = get32(p + 16);
    s->page_size = get32(p + 20);
    s->crc = get32(p + 24);
    s->index = i;
    if (get32(p + 28) != 0)
        return ATOMIO_E_STORE;
    if (!atomio__is_pow2(s->page_size) || s->page_size < ATOMIO_MIN_PAGE ||
        s->page_size > ATOMIO_MAX_PAGE)
        return ATOMIO_E_STORE;
    /* The page's home offset must be representable as a non-negative off_t. */
    if (s->page_no > (uint64_t)INT64_MAX / s->page_size - 1)
        return ATOMIO_E_STORE;
    if (s->offset < atomio__dw_table_bytes(b->count) || s->offset % ATOMIO_DW_GRANULE ||
        (uint64_t)s->offset + s->page_size > b->byte_len)
        return ATOMIO_E_STORE;
    return 0;
}

enum atomio_dw_state
atomio__dw_batch_decode(const uint8_t *buf, size_t len, const struct atomio_dw_geom *g,
                        struct atomio_dw_batch_hdr *b, const char **why)
{
    memset(b, 0, sizeof(*b));
    WHY("ok");
    if (len < ATOMIO_DW_REC_HDR_LEN) {
        WHY("shorter than a record header");
        return ATOMIO_DW_TORN;
    }
    enum atomio_dw_state st = atomio__dw_rec_hdr_decode(buf, g, b, why);
    if (st != ATOMIO_DW_VALID)
        return st;
    uint64_t table_end = ATOMIO_DW_REC_HDR_LEN + (uint64_t)b->count * ATOMIO_DW_SLOT_LEN;
    if (table_end > len || b->byte_len > len) {
        /* Keep count only when the table is addressable, so slot_decode stays in bounds. */
        b->count = 0;
        WHY("record longer than the bytes available");
        return ATOMIO_DW_TORN;
    }
    if (atomio__crc32c(0, buf + ATOMIO_DW_REC_HDR_LEN, table_end - ATOMIO_DW_REC_HDR_LEN) !=
        b->table_crc) {
        WHY("slot table CRC32C mismatch");
        return ATOMIO_DW_TORN;
    }
    if (!all_zero(buf + table_end, (size_t)(atomio__dw_table_bytes(b->count) - table_end))) {
        WHY("slot table padding not zero");
        return ATOMIO_DW_TORN;
    }
    for (uint32_t i = 0; i < b->count; i++) {
        struct atomio_dw_slot s;
        bool ok;
        if (atomio__dw_slot_decode(buf, len, b, i, &s, &ok) != 0) {
            WHY("bad slot descriptor");
            return ATOMIO_DW_TORN;
        }
        if (s.page_size > g->max_page_size) {
            WHY("page larger than the store's largest page size");
            return ATOMIO_DW_TORN;
        }
        if (!ok) {
            WHY("page bytes do not match their CRC32C");
            return ATOMIO_DW_TORN;
        }
    }
    return ATOMIO_DW_VALID;
}

int
atomio__dw_slot_decode(const uint8_t *buf, size_t len, const struct atomio_dw_batch_hdr *b,
                       uint32_t i, struct atomio_dw_slot *s, bool *content_ok)
{
    memset(s, 0, sizeof(*s));
    *content_ok = false;
    uint64_t table_end = ATOMIO_DW_REC_HDR_LEN + (uint64_t)b->count * ATOMIO_DW_SLOT_LEN;
    if (i >= b->count || table_end > len || b->byte_len > len)
        return ATOMIO_E_STORE;
    int r = decode_slot_desc(buf, b, i, s);
    if (r == 0)
        *content_ok = atomio__crc32c(0, buf + s->offset, s->page_size) == s->crc;
    return r;
}

/* ---- manifest ----------------------------------------------------------------------------- */

size_t
atomio__dw_manifest_rec_len(size_t path_len)
{
    return (size_t)atomio__dw_round(ATOMIO_DW_MANIFEST_HDR_LEN + path_len + 4, 8);
}

void
atomio__dw_manifest_encode(uint8_t *out, const struct atomio_dw_man_rec *m, size_t path_len)
{
    size_t n = atomio__dw_manifest_rec_len(path_len);
    memset(out, 0, n);
    put32(out, MANIFEST_MAGIC);
    put16(out + 4, (uint16_t)ATOMIO_DW_VERSION);
    put16(out + 6, (uint16_t)path_len);
    put64(out + 8, m->file_id);
    put64(out + 16, m->from_lsn);
    put32(out + 24, m->flags);
    memcpy(out + ATOMIO_DW_MANIFEST_HDR_LEN, m->path, path_len);
    size_t c = ATOMIO_DW_MANIFEST_HDR_LEN + path_len;
    put32(out + c, atomio__crc32c(0, out, c));
}

size_t
atomio__dw_manifest_walk(const uint8_t *buf, size_t len,
                         int (*fn)(void *arg, const struct atomio_dw_man_rec *m), void *arg)
{
    char path[ATOMIO_DW_PATH_MAX + 1];
    size_t off = 0;
    /* Every iteration consumes at least 40 bytes, so the walk ends. */
    while (len - off >= ATOMIO_DW_MANIFEST_HDR_LEN) {
        const uint8_t *p = buf + off;
        if (get32(p) != MANIFEST_MAGIC || get16(p + 4) != ATOMIO_DW_VERSION)
            break;
        size_t plen = get16(p + 6);
        if (plen < 1 || plen > ATOMIO_DW_PATH_MAX)
            break;
        size_t rec = atomio__dw_manifest_rec_len(plen);
        if (rec > len - off)
            break;
        size_t c = ATOMIO_DW_MANIFEST_HDR_LEN + plen;
        uint32_t flags = get32(p + 24);
        if (get32(p + c) != atomio__crc32c(0, p, c) ||
            memchr(p + ATOMIO_DW_MANIFEST_HDR_LEN, 0, plen) != NULL || get32(p + 28) != 0 ||
            (flags & ~ATOMIO_DW_MAN_RELATIVE) != 0 || !all_zero(p + c + 4, rec - c - 4))
            break;
        memcpy(path, p + ATOMIO_DW_MANIFEST_HDR_LEN, plen);
        path[plen] = '\0';
        off += rec;
        struct atomio_dw_man_rec m = {
            .file_id = get64(p + 8), .from_lsn = get64(p + 16), .flags = flags, .path = path};
        if (fn && fn(arg, &m) != 0)
            break;
    }
    return off;
}
