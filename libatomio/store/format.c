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
#define BATCH_MAGIC    0x48425441u /* "ATBH" */
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

static uint32_t
log2u(uint32_t v)
{
    uint32_t r = 0;
    while (v > 1) {
        v >>= 1;
        r++;
    }
    return r;
}

static bool
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

static uint64_t
round_up(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

/* ---- geometry and store header --------------------------------------------------------- */

uint64_t
atomio__dw_table_bytes(uint32_t count)
{
    return round_up(ATOMIO_DW_BATCH_HDR_LEN + (uint64_t)count * ATOMIO_DW_SLOT_LEN,
                    ATOMIO_DW_ALIGN);
}

int
atomio__dw_geom_make(struct atomio_dw_geom *g, uint32_t nseg, uint32_t batch_pages,
                     uint32_t max_page_size)
{
    memset(g, 0, sizeof(*g));
    if (nseg < 1 || nseg > ATOMIO_DW_MAX_SEGMENTS || batch_pages < 1 || !atomio__is_pow2(max_page_size) ||
        max_page_size < ATOMIO_MIN_PAGE || max_page_size > ATOMIO_MAX_PAGE)
        return ATOMIO_E_INVAL;
    /* Slots: batch_pages pages of the class size, or more, smaller ones down to 4 KiB, so a
     * segment sized for 16 KiB pages can hold four times as many 4 KiB pages. */
    uint64_t slots = (uint64_t)batch_pages * (max_page_size > 4096 ? max_page_size / 4096 : 1);
    uint64_t payload = (uint64_t)batch_pages * max_page_size;
    if (slots > ATOMIO_DW_MAX_SEG_SIZE / ATOMIO_DW_SLOT_LEN || payload > ATOMIO_DW_MAX_SEG_SIZE)
        return ATOMIO_E_INVAL;
    uint64_t seg = atomio__dw_table_bytes((uint32_t)slots) + payload;
    if (seg > ATOMIO_DW_MAX_SEG_SIZE)
        return ATOMIO_E_INVAL;
    g->version = ATOMIO_DW_VERSION;
    g->max_page_size = max_page_size;
    g->nseg = nseg;
    g->batch_pages = batch_pages;
    g->slots_max = (uint32_t)slots;
    g->seg_size = round_up(seg, ATOMIO_DW_ALIGN);
    g->seg_offset = ATOMIO_DW_ALIGN;
    return 0;
}

uint64_t
atomio__dw_store_size(const struct atomio_dw_geom *g)
{
    return g->seg_offset + (uint64_t)g->nseg * g->seg_size;
}

void
atomio__dw_store_hdr_encode(const struct atomio_dw_geom *g, uint8_t out[ATOMIO_DW_STORE_HDR_LEN])
{
    memset(out, 0, ATOMIO_DW_STORE_HDR_LEN);
    memcpy(out, STORE_MAGIC, 8);
    put32(out + 8, g->version);
    put32(out + 12, ATOMIO_DW_STORE_HDR_LEN);
    put32(out + 16, 0); /* flags */
    put32(out + 20, log2u(g->max_page_size));
    put32(out + 24, g->max_page_size);
    put32(out + 28, g->nseg);
    put32(out + 32, g->batch_pages);
    put32(out + 36, g->slots_max);
    put64(out + 40, g->seg_size);
    put64(out + 48, g->seg_offset);
    memcpy(out + 56, g->uuid, 16);
    put32(out + 124, atomio__crc32c(0, out, 124));
}

#define WHY(s)                                                                                     \
    do {                                                                                           \
        if (why)                                                                                   \
            *why = (s);                                                                            \
    } while (0)

int
atomio__dw_store_hdr_decode(const uint8_t *buf, size_t len, struct atomio_dw_geom *g,
                            const char **why)
{
    memset(g, 0, sizeof(*g));
    WHY("ok");
    if (len < ATOMIO_DW_STORE_HDR_LEN) {
        WHY(len == 0 ? "empty store file" : "store header truncated");
        return len == 0 ? 1 : ATOMIO_E_STORE;
    }
    if (all_zero(buf, ATOMIO_DW_STORE_HDR_LEN)) {
        WHY("store header all zero (never initialised)");
        return 1;
    }
    if (memcmp(buf, STORE_MAGIC, 8) != 0) {
        WHY("bad store magic (not an atomio doublewrite store)");
        return ATOMIO_E_STORE;
    }
    if (get32(buf + 124) != atomio__crc32c(0, buf, 124)) {
        WHY("store header CRC32C mismatch");
        return ATOMIO_E_STORE;
    }
    g->version = get32(buf + 8);
    if (g->version != ATOMIO_DW_VERSION) {
        WHY("unsupported store format version");
        return ATOMIO_E_STORE;
    }
    if (get32(buf + 12) != ATOMIO_DW_STORE_HDR_LEN || get32(buf + 16) != 0 ||
        !all_zero(buf + 72, 124 - 72)) {
        WHY("unknown store header length, flags or reserved bytes");
        return ATOMIO_E_STORE;
    }
    uint32_t cls = get32(buf + 20);
    g->max_page_size = get32(buf + 24);
    g->nseg = get32(buf + 28);
    g->batch_pages = get32(buf + 32);
    g->slots_max = get32(buf + 36);
    g->seg_size = get64(buf + 40);
    g->seg_offset = get64(buf + 48);
    memcpy(g->uuid, buf + 56, 16);
    if (!atomio__is_pow2(g->max_page_size) || g->max_page_size < ATOMIO_MIN_PAGE ||
        g->max_page_size > ATOMIO_MAX_PAGE || cls != log2u(g->max_page_size)) {
        WHY("bad page-size class");
        return ATOMIO_E_STORE;
    }
    if (g->nseg < 1 || g->nseg > ATOMIO_DW_MAX_SEGMENTS || g->batch_pages < 1 || g->slots_max < 1 ||
        g->slots_max > UINT32_MAX / 2) {
        WHY("bad segment count, batch pages or slot count");
        return ATOMIO_E_STORE;
    }
    if (g->seg_size % ATOMIO_DW_ALIGN || g->seg_size > ATOMIO_DW_MAX_SEG_SIZE ||
        g->seg_size < atomio__dw_table_bytes(g->slots_max) || g->seg_offset < ATOMIO_DW_ALIGN ||
        g->seg_offset % ATOMIO_DW_ALIGN || g->seg_offset > ATOMIO_DW_MAX_SEG_SIZE) {
        WHY("bad segment size or offset");
        return ATOMIO_E_STORE;
    }
    return 0;
}

/* ---- batches ------------------------------------------------------------------------------ */

void
atomio__dw_slot_encode(uint8_t *batch, const struct atomio_dw_slot *s)
{
    uint8_t *p = batch + ATOMIO_DW_BATCH_HDR_LEN + (size_t)s->index * ATOMIO_DW_SLOT_LEN;
    put64(p, s->file_id);
    put64(p + 8, s->page_no);
    put64(p + 16, s->seq);
    put32(p + 24, s->offset);
    put32(p + 28, s->page_size);
    put32(p + 32, s->crc);
    put32(p + 36, 0); /* flags */
    put32(p + 40, s->index);
    put32(p + 44, atomio__crc32c(0, p, 44));
}

void
atomio__dw_batch_hdr_encode(uint8_t *batch, const struct atomio_dw_batch_hdr *b, const uint8_t uuid[16])
{
    uint8_t *p = batch;
    put32(p, BATCH_MAGIC);
    put16(p + 4, (uint16_t)ATOMIO_DW_VERSION);
    put16(p + 6, (uint16_t)ATOMIO_DW_BATCH_HDR_LEN);
    put64(p + 8, b->seq);
    put32(p + 16, b->count);
    put32(p + 20, 0); /* flags */
    put64(p + 24, b->byte_len);
    memcpy(p + 32, uuid, 16);
    put32(p + 48, atomio__crc32c(0, batch + ATOMIO_DW_BATCH_HDR_LEN,
                                 (size_t)b->count * ATOMIO_DW_SLOT_LEN));
    put32(p + 52, 0);
    put32(p + 56, 0);
    put32(p + 60, atomio__crc32c(0, p, 60));
}

/* decode_slot_desc() -- descriptor i of the table, checked on its own (CRC, seq, index, page
 * geometry inside the batch). Content is checked by the caller. */
static int
decode_slot_desc(const uint8_t *buf, const struct atomio_dw_batch_hdr *b, uint32_t i,
                 struct atomio_dw_slot *s)
{
    const uint8_t *p = buf + ATOMIO_DW_BATCH_HDR_LEN + (size_t)i * ATOMIO_DW_SLOT_LEN;
    s->file_id = get64(p);
    s->page_no = get64(p + 8);
    s->seq = get64(p + 16);
    s->offset = get32(p + 24);
    s->page_size = get32(p + 28);
    s->crc = get32(p + 32);
    s->index = get32(p + 40);
    if (get32(p + 44) != atomio__crc32c(0, p, 44) || get32(p + 36) != 0)
        return ATOMIO_E_STORE;
    if (s->seq != b->seq || s->index != i)
        return ATOMIO_E_STORE;
    if (!atomio__is_pow2(s->page_size) || s->page_size < ATOMIO_MIN_PAGE || s->page_size > ATOMIO_MAX_PAGE)
        return ATOMIO_E_STORE;
    /* The page's home offset must be representable as a non-negative off_t. */
    if (s->page_no > (uint64_t)INT64_MAX / s->page_size - 1)
        return ATOMIO_E_STORE;
    uint64_t table_end = ATOMIO_DW_BATCH_HDR_LEN + (uint64_t)b->count * ATOMIO_DW_SLOT_LEN;
    if (s->offset < table_end || (uint64_t)s->offset + s->page_size > b->byte_len)
        return ATOMIO_E_STORE;
    return 0;
}

enum atomio_dw_state
atomio__dw_batch_decode(const uint8_t *buf, size_t len, const struct atomio_dw_geom *g,
                        struct atomio_dw_batch_hdr *b, const char **why)
{
    memset(b, 0, sizeof(*b));
    WHY("ok");
    if (len < ATOMIO_DW_BATCH_HDR_LEN) {
        WHY("segment shorter than a batch header");
        return ATOMIO_DW_TORN;
    }
    if (all_zero(buf, ATOMIO_DW_BATCH_HDR_LEN)) {
        WHY("empty");
        return ATOMIO_DW_EMPTY;
    }
    if (get32(buf + 60) != atomio__crc32c(0, buf, 60)) {
        WHY("batch header CRC32C mismatch");
        return ATOMIO_DW_TORN;
    }
    if (get32(buf) != BATCH_MAGIC || get16(buf + 4) != ATOMIO_DW_VERSION ||
        get16(buf + 6) != ATOMIO_DW_BATCH_HDR_LEN || get32(buf + 20) != 0 || get32(buf + 52) != 0 ||
        get32(buf + 56) != 0) {
        WHY("bad batch magic, version, length or reserved bytes");
        return ATOMIO_DW_TORN;
    }
    b->seq = get64(buf + 8);
    b->count = get32(buf + 16);
    b->byte_len = get64(buf + 24);
    b->table_crc = get32(buf + 48);
    if (memcmp(buf + 32, g->uuid, 16) != 0) {
        WHY("batch belongs to another store (uuid mismatch)");
        return ATOMIO_DW_TORN;
    }
    uint64_t table_end = ATOMIO_DW_BATCH_HDR_LEN + (uint64_t)b->count * ATOMIO_DW_SLOT_LEN;
    if (b->count < 1 || b->count > g->slots_max || table_end > len || b->byte_len > len ||
        b->byte_len < table_end) {
        /* Keep count only when the table is addressable, so slot_decode stays in bounds. */
        if (table_end > len || b->byte_len > len)
            b->count = 0;
        WHY("batch count or length out of range");
        return ATOMIO_DW_TORN;
    }
    if (atomio__crc32c(0, buf + ATOMIO_DW_BATCH_HDR_LEN, table_end - ATOMIO_DW_BATCH_HDR_LEN) !=
        b->table_crc) {
        WHY("slot table CRC32C mismatch");
        return ATOMIO_DW_TORN;
    }
    for (uint32_t i = 0; i < b->count; i++) {
        struct atomio_dw_slot s;
        bool ok;
        if (atomio__dw_slot_decode(buf, len, b, i, &s, &ok) != 0) {
            WHY("bad slot descriptor");
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
atomio__dw_slot_decode(const uint8_t *buf, size_t len, const struct atomio_dw_batch_hdr *b, uint32_t i,
                       struct atomio_dw_slot *s, bool *content_ok)
{
    memset(s, 0, sizeof(*s));
    *content_ok = false;
    uint64_t table_end = ATOMIO_DW_BATCH_HDR_LEN + (uint64_t)b->count * ATOMIO_DW_SLOT_LEN;
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
    return (size_t)round_up(ATOMIO_DW_MANIFEST_HDR_LEN + path_len + 4, 8);
}

void
atomio__dw_manifest_encode(uint8_t *out, uint64_t file_id, const char *path, size_t path_len)
{
    size_t n = atomio__dw_manifest_rec_len(path_len);
    memset(out, 0, n);
    put32(out, MANIFEST_MAGIC);
    put16(out + 4, (uint16_t)ATOMIO_DW_VERSION);
    put16(out + 6, (uint16_t)path_len);
    put64(out + 8, file_id);
    memcpy(out + ATOMIO_DW_MANIFEST_HDR_LEN, path, path_len);
    size_t c = ATOMIO_DW_MANIFEST_HDR_LEN + path_len;
    put32(out + c, atomio__crc32c(0, out, c));
}

size_t
atomio__dw_manifest_walk(const uint8_t *buf, size_t len,
                         int (*fn)(void *arg, uint64_t file_id, const char *path), void *arg)
{
    char path[ATOMIO_DW_PATH_MAX + 1];
    size_t off = 0;
    /* Every iteration consumes at least 24 bytes, so the walk ends. */
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
        if (get32(p + c) != atomio__crc32c(0, p, c) || memchr(p + 16, 0, plen) != NULL ||
            !all_zero(p + c + 4, rec - c - 4))
            break;
        memcpy(path, p + ATOMIO_DW_MANIFEST_HDR_LEN, plen);
        path[plen] = '\0';
        off += rec;
        if (fn && fn(arg, get64(p + 8), path) != 0)
            break;
    }
    return off;
}
