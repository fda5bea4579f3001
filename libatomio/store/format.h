/* SPDX-License-Identifier: MIT */
/*
 * store/format.h -- the on-disk format of the doublewrite store (docs/format.md, version 2):
 * encoders for the writer and total decoders for recovery, inspection and the fuzzer. Every
 * integer is little-endian; every record carries a CRC32C. Decoders take (buffer, length) and
 * never read outside it, whatever the bytes say: counts and offsets are checked against the
 * length before use, and every loop is bounded by the buffer, not by a field.
 *
 * The store file is two copies of a store header, then a ring of records addressed by a log
 * sequence number (LSN): a byte position that only grows, written at ring offset LSN mod
 * ring size. The LSN orders every copy of a page, whichever process wrote it.
 */
#ifndef ATOMIO_STORE_FORMAT_H
#define ATOMIO_STORE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ATOMIO_DW_VERSION 2u

#define ATOMIO_DW_STORE_FILE       "atomio-store.dblwr"
#define ATOMIO_DW_MANIFEST_FILE    "atomio-manifest.dblwr"
#define ATOMIO_DW_LOCK_FILE        "atomio-lock"
#define ATOMIO_DW_ALIGN            4096u /* header copies, ring offset and ring size */
#define ATOMIO_DW_GRANULE          512u  /* records start and end on this boundary */
#define ATOMIO_DW_STORE_HDR_LEN    256u  /* used bytes of each header copy's 4 KiB block */
#define ATOMIO_DW_REC_HDR_LEN      64u   /* record header */
#define ATOMIO_DW_SLOT_LEN         32u   /* one slot descriptor in a record's table */
#define ATOMIO_DW_MANIFEST_HDR_LEN 32u   /* manifest record before its path bytes */
#define ATOMIO_DW_PATH_MAX         4095u /* longest path a manifest record holds */
#define ATOMIO_DW_RING_MIN         (16u * 1024u)
#define ATOMIO_DW_RING_MAX         (1ull << 40)
#define ATOMIO_DW_RING_OFFSET      (2u * ATOMIO_DW_ALIGN)

/* Manifest record flags. */
#define ATOMIO_DW_MAN_RELATIVE 0x1u /* the path is relative to the engine's data root */

/* The store header (both copies hold the same fields; copy and generation tell them apart). */
struct atomio_dw_geom {
    uint32_t version;
    uint32_t max_page_size; /* largest page a record may hold */
    uint64_t ring_offset;   /* file offset of the ring */
    uint64_t ring_size;     /* bytes; a multiple of ATOMIO_DW_ALIGN */
    uint64_t tail;          /* records with an LSN below this are released: never applied */
    uint64_t generation;    /* bumped by every header update */
    uint8_t uuid[16];       /* store identity; every record header repeats it */
};

/* One slot: where a page goes and what it must read as. */
struct atomio_dw_slot {
    uint64_t file_id;
    uint64_t page_no;
    uint32_t offset; /* of the page bytes, from the start of the record */
    uint32_t page_size;
    uint32_t crc;   /* CRC32C of the page bytes */
    uint32_t index; /* position in the table (not stored: the table CRC binds the order) */
};

/* Record header fields. */
struct atomio_dw_batch_hdr {
    uint64_t lsn;      /* the record's position; orders it against every other record */
    uint32_t count;    /* slots */
    uint64_t byte_len; /* header + table + padding + pages: a multiple of ATOMIO_DW_GRANULE */
    uint32_t table_crc;
    uint64_t ring_size; /* of the store that wrote it (a record describes its own ring) */
};

enum atomio_dw_state {
    ATOMIO_DW_EMPTY = 0, /* header bytes all zero: never written */
    ATOMIO_DW_VALID = 1, /* header, table and every page check out */
    ATOMIO_DW_TORN = 2   /* something is there but does not check out: ignore it */
};

/* Round v up to a multiple of a (a power of two). */
static inline uint64_t
atomio__dw_round(uint64_t v, uint64_t a)
{
    return (v + a - 1) & ~(a - 1);
}

/* Geometry of a new store; ATOMIO_E_INVAL when the options cannot make one. */
int atomio__dw_geom_make(struct atomio_dw_geom *g, uint64_t ring_bytes, uint32_t max_page_size);
/* Total store file size for g. */
uint64_t atomio__dw_store_size(const struct atomio_dw_geom *g);
/* Ring offset of lsn. */
static inline uint64_t
atomio__dw_ring_pos(const struct atomio_dw_geom *g, uint64_t lsn)
{
    return g->ring_offset + lsn % g->ring_size;
}

/* What a store header decoder found besides an error: a header, or never-written bytes. */
enum atomio_dw_hdr { ATOMIO_DW_HDR_OK = 0, ATOMIO_DW_HDR_EMPTY = 1 };

/* Encode header copy `copy` (0 or 1) of g into out. */
void atomio__dw_store_hdr_encode(const struct atomio_dw_geom *g, uint32_t copy,
                                 uint8_t out[ATOMIO_DW_STORE_HDR_LEN]);
/* ATOMIO_DW_HDR_OK (g filled), ATOMIO_DW_HDR_EMPTY when the bytes are all zero, ATOMIO_E_STORE
 * otherwise (*why, which
 * may be NULL, names the first failed check). *version is set when the magic matched (so a
 * store of another format version can be told apart), else 0. */
int atomio__dw_store_hdr_decode(const uint8_t *buf, size_t len, uint32_t copy,
                                struct atomio_dw_geom *g, uint32_t *version, const char **why);

/* Bytes of header plus table for count slots, rounded up to ATOMIO_DW_GRANULE (where the
 * page bytes start). */
uint64_t atomio__dw_table_bytes(uint32_t count);
/* Write slot descriptor s at table position s->index of the record at rec. */
void atomio__dw_slot_encode(uint8_t *rec, const struct atomio_dw_slot *s);
/* Write the record header at rec; computes the table CRC over the count descriptors already
 * encoded there. */
void atomio__dw_batch_hdr_encode(uint8_t *rec, const struct atomio_dw_batch_hdr *b,
                                 const uint8_t uuid[16]);
/*
 * Decode just the 64-byte header at buf (which must hold ATOMIO_DW_REC_HDR_LEN bytes): its
 * CRC, magic, version, uuid and lengths. Returns EMPTY, VALID (the header alone) or TORN.
 */
enum atomio_dw_state atomio__dw_rec_hdr_decode(const uint8_t *buf, const struct atomio_dw_geom *g,
                                               struct atomio_dw_batch_hdr *b, const char **why);
/*
 * Decode the record at buf (len bytes available). Fills *b when the header checks out.
 * Returns the state; *why (may be NULL) names the first failed check. A VALID record has
 * every slot decodable with atomio__dw_slot_decode() and correct CRCs.
 */
enum atomio_dw_state atomio__dw_batch_decode(const uint8_t *buf, size_t len,
                                             const struct atomio_dw_geom *g,
                                             struct atomio_dw_batch_hdr *b, const char **why);
/*
 * Decode slot i of a record whose header decoded (b from atomio__dw_batch_decode, even when
 * TORN because of the table or pages). Returns 0 when the descriptor checks out, else
 * ATOMIO_E_STORE. *content_ok tells whether the page bytes match their CRC.
 */
int atomio__dw_slot_decode(const uint8_t *buf, size_t len, const struct atomio_dw_batch_hdr *b,
                           uint32_t i, struct atomio_dw_slot *s, bool *content_ok);

/* Manifest: a log of records "file id -> path (from an LSN on)"; the last record for an id
 * wins. Copies of that id with an LSN below from_lsn are never applied: written before the
 * file was last opened on a path that writes it without the store. */
struct atomio_dw_man_rec {
    uint64_t file_id;
    uint64_t from_lsn;
    uint32_t flags; /* ATOMIO_DW_MAN_* */
    const char *path;
};
/* Encoded length of a record for a path of path_len bytes. */
size_t atomio__dw_manifest_rec_len(size_t path_len);
/* Encode into out (atomio__dw_manifest_rec_len(path_len) bytes). */
void atomio__dw_manifest_encode(uint8_t *out, const struct atomio_dw_man_rec *m, size_t path_len);
/*
 * Walk the records in buf; for each valid one call fn (the path is NUL-terminated in a
 * private buffer valid during the call; a non-zero return stops the walk). Stops at the first
 * record that does not check out (a torn append). Returns the length of the valid prefix.
 */
size_t atomio__dw_manifest_walk(const uint8_t *buf, size_t len,
                                int (*fn)(void *arg, const struct atomio_dw_man_rec *m), void *arg);

#endif /* ATOMIO_STORE_FORMAT_H */
