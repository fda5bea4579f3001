/* SPDX-License-Identifier: MIT */
/*
 * store/format.h -- the on-disk format of the doublewrite store (docs/format.md, version 1):
 * encoders for the writer and total decoders for recovery, inspection and the fuzzer. Every
 * integer is little-endian; every record carries a CRC32C. Decoders take (buffer, length) and
 * never read outside it, whatever the bytes say: counts and offsets are checked against the
 * length before use, and every loop is bounded by the buffer, not by a field.
 */
#ifndef ATOMIO_DW_FORMAT_H
#define ATOMIO_DW_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATOMIO_DW_VERSION 1u

/* Store file: a 4 KiB header region, then nseg segments of seg_size bytes each. */
#define ATOMIO_DW_STORE_FILE       "atomio-store.dblwr"
#define ATOMIO_DW_MANIFEST_FILE    "atomio-manifest.dblwr"
#define ATOMIO_DW_ALIGN            4096u /* segment offsets, sizes and batch writes */
#define ATOMIO_DW_STORE_HDR_LEN    128u  /* used bytes of the header region */
#define ATOMIO_DW_BATCH_HDR_LEN    64u   /* batch header at the start of a segment */
#define ATOMIO_DW_SLOT_LEN         48u   /* one slot descriptor in the batch's table */
#define ATOMIO_DW_MANIFEST_HDR_LEN 16u   /* manifest record before its path bytes */
#define ATOMIO_DW_PATH_MAX         4095u /* longest path a manifest record holds */
#define ATOMIO_DW_MAX_SEGMENTS     4096u
#define ATOMIO_DW_MAX_SEG_SIZE     (1ull << 30)

/* Store geometry, as in the store header. */
struct atomio_dw_geom {
    uint32_t version;
    uint32_t max_page_size; /* page-size class: the page size the segments were sized for */
    uint32_t nseg;          /* segments */
    uint32_t batch_pages;   /* max_page_size pages one segment holds */
    uint32_t slots_max;     /* slot descriptors per batch */
    uint64_t seg_size;      /* bytes per segment, multiple of ATOMIO_DW_ALIGN */
    uint64_t seg_offset;    /* file offset of segment 0 */
    uint8_t uuid[16];       /* store identity; every batch header repeats it */
};

/* One slot: where a page goes and what it must read as. */
struct atomio_dw_slot {
    uint64_t file_id;
    uint64_t page_no;
    uint64_t seq;    /* batch sequence number (repeated in every slot) */
    uint32_t offset; /* of the page bytes, from the start of the batch */
    uint32_t page_size;
    uint32_t crc;   /* CRC32C of the page bytes */
    uint32_t index; /* position in the table */
};

/* Batch header fields. */
struct atomio_dw_batch_hdr {
    uint64_t seq;
    uint32_t count;    /* slots */
    uint64_t byte_len; /* header + table + page bytes, unpadded */
    uint32_t table_crc;
};

enum atomio_dw_state {
    ATOMIO_DW_EMPTY = 0, /* header bytes all zero: never written or retired */
    ATOMIO_DW_VALID = 1, /* header, table and every page check out */
    ATOMIO_DW_TORN = 2   /* something is there but does not check out: ignore it */
};

/* Geometry for the given options; returns 0 or ATOMIO_E_INVAL when they cannot make a store. */
int atomio__dw_geom_make(struct atomio_dw_geom *g, uint32_t nseg, uint32_t batch_pages,
                         uint32_t max_page_size);
/* Segment i's file offset. */
static inline uint64_t
atomio__dw_seg_off(const struct atomio_dw_geom *g, uint32_t i)
{
    return g->seg_offset + (uint64_t)i * g->seg_size;
}

/* Total store file size for g. */
uint64_t atomio__dw_store_size(const struct atomio_dw_geom *g);

void atomio__dw_store_hdr_encode(const struct atomio_dw_geom *g,
                                 uint8_t out[ATOMIO_DW_STORE_HDR_LEN]);
/* 0 valid (g filled), ATOMIO_DW_EMPTY-as-1 when the bytes are all zero, ATOMIO_E_STORE
 * otherwise; *why (may be NULL) names the first failed check. */
int atomio__dw_store_hdr_decode(const uint8_t *buf, size_t len, struct atomio_dw_geom *g,
                                const char **why);

/* Bytes of header plus table for count slots, rounded up to ATOMIO_DW_ALIGN (where the page
 * bytes start). */
uint64_t atomio__dw_table_bytes(uint32_t count);
/* Write slot descriptor s (its seq and index included) into the table of the batch at buf. */
void atomio__dw_slot_encode(uint8_t *batch, const struct atomio_dw_slot *s);
/* Write the batch header at buf; computes the table CRC over the count descriptors already
 * encoded there. */
void atomio__dw_batch_hdr_encode(uint8_t *batch, const struct atomio_dw_batch_hdr *b,
                                 const uint8_t uuid[16]);

/*
 * Decode the batch at buf (len bytes available, normally a whole segment). Fills *b when the
 * header checks out. Returns the state; *why (may be NULL) names the first failed check. A
 * VALID batch has every slot decodable with atomio__dw_slot_decode() and correct CRCs.
 */
enum atomio_dw_state atomio__dw_batch_decode(const uint8_t *buf, size_t len,
                                             const struct atomio_dw_geom *g,
                                             struct atomio_dw_batch_hdr *b, const char **why);
/*
 * Decode slot i of a batch whose header decoded (b from atomio__dw_batch_decode, even when
 * TORN because of the table or pages). Returns 0 when the descriptor checks out, else
 * ATOMIO_E_STORE. *content_ok tells whether the page bytes match their CRC.
 */
int atomio__dw_slot_decode(const uint8_t *buf, size_t len, const struct atomio_dw_batch_hdr *b,
                           uint32_t i, struct atomio_dw_slot *s, bool *content_ok);

/* Manifest: a log of records "file id -> path", the last record for an id wins. */
/* Encoded length of a record for a path of path_len bytes. */
size_t atomio__dw_manifest_rec_len(size_t path_len);
/* Encode into out (atomio__dw_manifest_rec_len(path_len) bytes). */
void atomio__dw_manifest_encode(uint8_t *out, uint64_t file_id, const char *path, size_t path_len);
/*
 * Walk the records in buf; for each valid one call fn (path is NUL-terminated in a private
 * buffer valid during the call; a non-zero return stops the walk). Stops at the first record
 * that does not check out (a torn append). Returns the length of the valid prefix.
 */
size_t atomio__dw_manifest_walk(const uint8_t *buf, size_t len,
                                int (*fn)(void *arg, uint64_t file_id, const char *path),
                                void *arg);

#endif /* ATOMIO_DW_FORMAT_H */
