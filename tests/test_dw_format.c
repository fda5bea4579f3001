/* SPDX-License-Identifier: MIT */
/*
 * test_dw_format.c -- the doublewrite store format, version 2 (docs/format.md): geometry; the
 * store header round trip and every corruption of either copy (the copy index included); the
 * record header, slot table and pages round trip, with every byte of a record covered by a
 * CRC or a check; torn, stale, foreign and misplaced records; crafted headers and random
 * bytes that never decode as valid and never send a decoder out of bounds (run under ASan to
 * see any overrun: buffers are allocated to their exact length); manifest records with their
 * fence LSN and flags, a torn tail and a damaged stretch resynced past; the seeds the
 * independent encoder (tests/fuzz/make_corpus.py) writes, read by the decoders and by
 * atomio_store_inspect(); and the layout of the public inspect record, which is ABI.
 */
#include "atomio_internal.h"
#include "helpers.h"
#include "store/format.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RING (256u * 1024u)

static void
put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static struct atomio_dw_geom
geom(void)
{
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_geom_make(&g, RING, 16384), 0);
    for (int i = 0; i < 16; i++)
        g.uuid[i] = (uint8_t)(0xa0 + i);
    g.tail = 1024;
    g.generation = 2;
    return g;
}

Test(dw_format, geometry)
{
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_geom_make(&g, RING, 16384), 0);
    cr_assert_eq(g.version, 2);
    cr_assert_eq(g.ring_offset, 8192, "two 4 KiB header copies before the ring");
    cr_assert_eq(g.ring_size, RING);
    cr_assert_eq(g.max_page_size, 16384);
    cr_assert_eq(g.tail, 0);
    cr_assert_eq(atomio__dw_store_size(&g), 8192 + RING);
    cr_assert_eq(atomio__dw_ring_pos(&g, 0), 8192);
    cr_assert_eq(atomio__dw_ring_pos(&g, 3 * (uint64_t)RING + 1536), 8192 + 1536,
                 "an LSN lives at ring offset + LSN mod ring size");
    cr_assert_eq(atomio__dw_geom_make(&g, RING + 1, 512), 0);
    cr_assert_eq(g.ring_size, RING + 4096, "the ring is rounded up to 4 KiB");
    cr_assert_eq(atomio__dw_geom_make(&g, 1ull << 40, 1u << 20), 0, "1 TiB, 1 MiB pages");
    cr_assert_eq(atomio__dw_geom_make(&g, 16384 - 4096, 16384), ATOMIO_E_INVAL, "below 16 KiB");
    cr_assert_eq(atomio__dw_geom_make(&g, 16384, 16384), 0, "16 KiB is the least ring");
    cr_assert_eq(atomio__dw_geom_make(&g, (1ull << 40) + 1, 16384), ATOMIO_E_INVAL, "above 1 TiB");
    cr_assert_eq(atomio__dw_geom_make(&g, 0, 16384), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, RING, 256), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, RING, 3000), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, RING, 2u << 20), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, RING, 0), ATOMIO_E_INVAL);
    /* table_bytes(count) = round_up(64 + 32 count, 512) */
    cr_assert_eq(atomio__dw_table_bytes(1), 512);
    cr_assert_eq(atomio__dw_table_bytes(14), 512);
    cr_assert_eq(atomio__dw_table_bytes(15), 1024);
    cr_assert_eq(atomio__dw_table_bytes(64), 2560, "64 pages of 8 KiB add 2560 bytes");
    cr_assert_eq(atomio__dw_table_bytes(1) + 8192, 8704, "one 8 KiB page is 8.5 KiB");
    cr_assert_eq(atomio__dw_manifest_rec_len(1), 40);
    cr_assert_eq(atomio__dw_manifest_rec_len(4), 40);
    cr_assert_eq(atomio__dw_manifest_rec_len(5), 48);
}

/* ---- store header --------------------------------------------------------------------------- */

static void
hdr_recrc(uint8_t *h)
{
    put32(h + 252, atomio__crc32c(0, h, 252));
}

Test(dw_format, store_header_round_trip_both_copies)
{
    struct atomio_dw_geom g = geom(), d;
    for (uint32_t copy = 0; copy < 2; copy++) {
        uint8_t h[ATOMIO_DW_STORE_HDR_LEN];
        atomio__dw_store_hdr_encode(&g, copy, h);
        cr_assert_eq(memcmp(h, "ATOMIODW", 8), 0);
        cr_assert_eq(get32(h + 8), 2);
        cr_assert_eq(get32(h + 12), 256);
        cr_assert_eq(get32(h + 20), copy);
        cr_assert_eq(get32(h + 64), 512);
        for (size_t i = 80; i < 252; i++)
            cr_assert_eq(h[i], 0, "reserved byte %zu", i);
        cr_assert_eq(get32(h + 252), atomio__crc32c(0, h, 252));
        uint32_t ver = 99;
        const char *why = NULL;
        cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), copy, &d, &ver, &why), 0, "%s", why);
        cr_assert_eq(ver, 2);
        cr_assert_eq(memcmp(&d, &g, sizeof(d)), 0, "copy %u: geometry round trip", copy);
        /* The copy index is part of the header: a copy found at the other place (a block
         * written to the wrong offset) is refused. */
        cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), 1 - copy, &d, NULL, &why),
                     ATOMIO_E_STORE);
        cr_assert(strstr(why, "copy"), "%s", why);
    }
}

Test(dw_format, store_header_every_corruption_of_either_copy)
{
    struct atomio_dw_geom g = geom(), d;
    for (uint32_t copy = 0; copy < 2; copy++) {
        uint8_t h[ATOMIO_DW_STORE_HDR_LEN];
        atomio__dw_store_hdr_encode(&g, copy, h);
        for (size_t i = 0; i < sizeof(h); i++) {
            for (int bit = 0; bit < 8; bit++) {
                h[i] ^= (uint8_t)(1u << bit);
                const char *why = NULL;
                int r = atomio__dw_store_hdr_decode(h, sizeof(h), copy, &d, NULL, &why);
                cr_assert_eq(r, ATOMIO_E_STORE, "copy %u: flip byte %zu bit %d accepted (%d)", copy,
                             i, bit, r);
                cr_assert(why && *why);
                h[i] ^= (uint8_t)(1u << bit);
            }
        }
        for (size_t len = 1; len < sizeof(h); len++)
            cr_assert_eq(atomio__dw_store_hdr_decode(h, len, copy, &d, NULL, NULL), ATOMIO_E_STORE,
                         "truncated to %zu", len);
    }
}

/* Every field rule holds even under a correct CRC (a header written by a buggy or future
 * writer): each is a separate check. */
Test(dw_format, store_header_field_rules_under_a_good_crc)
{
    struct atomio_dw_geom g = geom(), d;
    struct {
        size_t off;
        int width;
        uint64_t v;
        const char *what;
    } bad[] = {
        {12, 4, 255, "header length"},
        {16, 4, 1, "flags"},
        {20, 4, 2, "copy index 2"},
        {48, 8, 4096, "ring offset"},
        {56, 8, RING + 512, "ring size not a multiple of 4096"},
        {56, 8, 16384 - 4096, "ring below 16 KiB"},
        {56, 8, (1ull << 40) + 4096, "ring above 1 TiB"},
        {56, 8, 0, "ring size 0"},
        {64, 4, 4096, "granule"},
        {68, 4, 3000, "max page not a power of two"},
        {68, 4, 256, "max page below 512"},
        {68, 4, 2u << 20, "max page above 1 MiB"},
        {72, 8, 1000, "tail not on a granule"},
        {80, 1, 1, "reserved byte 80"},
        {200, 1, 1, "reserved byte 200"},
        {251, 1, 1, "reserved byte 251"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        uint8_t h[ATOMIO_DW_STORE_HDR_LEN];
        atomio__dw_store_hdr_encode(&g, 0, h);
        if (bad[k].width == 8)
            put64(h + bad[k].off, bad[k].v);
        else if (bad[k].width == 4)
            put32(h + bad[k].off, (uint32_t)bad[k].v);
        else
            h[bad[k].off] = (uint8_t)bad[k].v;
        hdr_recrc(h);
        cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), 0, &d, NULL, NULL), ATOMIO_E_STORE,
                     "%s accepted", bad[k].what);
    }
    /* The generation is informative: any value decodes. */
    uint8_t h[ATOMIO_DW_STORE_HDR_LEN];
    atomio__dw_store_hdr_encode(&g, 1, h);
    put64(h + 24, 12345);
    hdr_recrc(h);
    cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), 1, &d, NULL, NULL), 0);
    cr_assert_eq(d.generation, 12345);
    /* Another version is told apart (so a version 1 store is recognised, never trusted). */
    atomio__dw_store_hdr_encode(&g, 0, h);
    put32(h + 8, 1);
    hdr_recrc(h);
    uint32_t ver = 0;
    cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), 0, &d, &ver, NULL), ATOMIO_E_STORE);
    cr_assert_eq(ver, 1);
    /* Zeros: a layout that never happened. */
    memset(h, 0, sizeof(h));
    cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), 0, &d, &ver, NULL), 1);
    cr_assert_eq(ver, 0);
    cr_assert_eq(atomio__dw_store_hdr_decode(h, 0, 0, &d, NULL, NULL), 1, "empty file");
    cr_assert_eq(atomio__dw_store_hdr_decode(h, 100, 1, &d, NULL, NULL), 1, "short zero file");
}

/* ---- records -------------------------------------------------------------------------------- */

/* A record at lsn of pages of the given sizes (biggest first), laid out as the writer does:
 * header, table, zero padding to a granule, then the pages. Returns its length. */
static size_t
make_rec(uint8_t *buf, size_t cap, const struct atomio_dw_geom *g, uint64_t lsn,
         const uint32_t *sizes, uint32_t n, uint64_t seed)
{
    memset(buf, 0, cap);
    uint64_t off = atomio__dw_table_bytes(n);
    for (uint32_t k = 0; k < n; k++) {
        cr_assert_leq(off + sizes[k], cap);
        t_fill(buf + off, sizes[k], seed * 10 + k);
        struct atomio_dw_slot s = {.file_id = 100 + k,
                                   .page_no = 7 * k + 1,
                                   .offset = (uint32_t)off,
                                   .page_size = sizes[k],
                                   .crc = atomio__crc32c(0, buf + off, sizes[k]),
                                   .index = k};
        atomio__dw_slot_encode(buf, &s);
        off += sizes[k];
    }
    struct atomio_dw_batch_hdr b = {
        .lsn = lsn, .count = n, .byte_len = off, .ring_size = g->ring_size};
    atomio__dw_batch_hdr_encode(buf, &b, g->uuid);
    return (size_t)off;
}

static const uint32_t SIZES3[3] = {16384, 4096, 512};

/* Re-seal a record whose header or table was edited on purpose: the table CRC over count
 * descriptors, then the header CRC. */
static void
reseal(uint8_t *rec, uint32_t count)
{
    put32(rec + 48, atomio__crc32c(0, rec + 64, (size_t)count * 32));
    put32(rec + 60, atomio__crc32c(0, rec, 60));
}

Test(dw_format, record_round_trip)
{
    struct atomio_dw_geom g = geom();
    size_t cap = 32768;
    uint8_t *buf = malloc(cap);
    size_t len = make_rec(buf, cap, &g, 4608, SIZES3, 3, 42);
    cr_assert_eq(len, 512 + 16384 + 4096 + 512);
    /* The bytes, field by field (docs/format.md, "Record header"). */
    cr_assert_eq(get32(buf), 0x43525441);
    cr_assert_eq(memcmp(buf, "ATRC", 4), 0);
    cr_assert_eq(buf[4] | buf[5] << 8, 2);
    cr_assert_eq(buf[6] | buf[7] << 8, 64);
    cr_assert_eq(get32(buf + 8), 4608);
    cr_assert_eq(get32(buf + 16), 3);
    cr_assert_eq(get32(buf + 24), len);
    cr_assert_eq(memcmp(buf + 32, g.uuid, 16), 0);
    cr_assert_eq(get32(buf + 48), atomio__crc32c(0, buf + 64, 96));
    cr_assert_eq(get32(buf + 52), RING);
    cr_assert_eq(get32(buf + 60), atomio__crc32c(0, buf, 60));
    cr_assert_eq(get32(buf + 64 + 16), 512, "first page right after the padded table");

    struct atomio_dw_batch_hdr b;
    const char *why = NULL;
    cr_assert_eq(atomio__dw_rec_hdr_decode(buf, &g, &b, &why), ATOMIO_DW_VALID, "%s", why);
    cr_assert_eq(atomio__dw_batch_decode(buf, cap, &g, &b, &why), ATOMIO_DW_VALID, "%s", why);
    cr_assert_str_eq(why, "ok");
    cr_assert_eq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_VALID,
                 "exactly byte_len bytes suffice");
    cr_assert_eq(b.lsn, 4608);
    cr_assert_eq(b.count, 3);
    cr_assert_eq(b.byte_len, len);
    cr_assert_eq(b.ring_size, RING);
    uint32_t expect_off = 512;
    for (uint32_t k = 0; k < 3; k++) {
        struct atomio_dw_slot s;
        bool ok;
        cr_assert_eq(atomio__dw_slot_decode(buf, len, &b, k, &s, &ok), 0);
        cr_assert(ok);
        cr_assert_eq(s.file_id, 100 + k);
        cr_assert_eq(s.page_no, 7 * k + 1);
        cr_assert_eq(s.page_size, SIZES3[k]);
        cr_assert_eq(s.offset, expect_off);
        cr_assert_eq(s.index, k);
        cr_assert_eq(s.offset % 512, 0, "every page starts on a granule");
        expect_off += SIZES3[k];
    }
    struct atomio_dw_slot s;
    bool ok;
    cr_assert_eq(atomio__dw_slot_decode(buf, len, &b, 3, &s, &ok), ATOMIO_E_STORE,
                 "slot past count");
    cr_assert_eq(atomio__dw_batch_decode(buf, len - 1, &g, &b, NULL), ATOMIO_DW_TORN,
                 "one byte short");
    cr_assert_eq(atomio__dw_batch_decode(buf, 63, &g, &b, NULL), ATOMIO_DW_TORN);
    memset(buf, 0, ATOMIO_DW_REC_HDR_LEN);
    cr_assert_eq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_EMPTY,
                 "zero header bytes: empty");
    free(buf);
}

Test(dw_format, every_byte_of_a_record_is_covered)
{
    struct atomio_dw_geom g = geom();
    size_t cap = 32768;
    uint8_t *buf = malloc(cap);
    size_t len = make_rec(buf, cap, &g, 0, SIZES3, 3, 9);
    struct atomio_dw_batch_hdr b;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            enum atomio_dw_state s = atomio__dw_batch_decode(buf, cap, &g, &b, NULL);
            cr_assert_eq(s, ATOMIO_DW_TORN, "corrupt byte %zu bit %d accepted (state %d)", i, bit,
                         (int)s);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    cr_assert_eq(atomio__dw_batch_decode(buf, cap, &g, &b, NULL), ATOMIO_DW_VALID);
    free(buf);
}

/* Each header and descriptor rule is its own check: break one field, re-seal the CRCs, and
 * the record must still be refused. */
Test(dw_format, record_field_rules_under_good_crcs)
{
    struct atomio_dw_geom g = geom();
    size_t cap = 65536;
    uint8_t *buf = malloc(cap);
    struct {
        size_t off;
        int width;
        uint64_t v;
        const char *what;
    } bad[] = {
        {0, 4, 0x43525442, "magic"},
        {4, 2, 1, "version 1"},
        {4, 2, 3, "version 3"},
        {6, 2, 32, "header length"},
        {8, 8, 100, "lsn off a granule"},
        {16, 4, 0, "count 0"},
        {16, 4, 4, "count past the table"},
        {20, 4, 1, "flags"},
        {24, 8, 512 + 16384 + 4096 + 512 + 100, "byte length off a granule"},
        {24, 8, 512 + 16384 + 4096, "byte length one page short"},
        {24, 8, 256, "byte length below the table"},
        {24, 8, RING + 512, "record past the end of the ring"},
        {32, 1, 0x55, "uuid"},
        {52, 8, RING * 2, "ring size"},
        /* slot 1 (offset 96): file id and page number are free, the rest is checked */
        {96 + 16, 4, 511 + 16896, "page offset off a granule"},
        {96 + 16, 4, 0, "page offset inside the header"},
        {64 + 16, 4, 256, "page offset inside the table"},
        {96 + 16, 4, 512 + 16384 + 4096, "page past the record"},
        {96 + 20, 4, 3000, "page size not a power of two"},
        {96 + 20, 4, 256, "page size below 512"},
        {64 + 20, 4, 2u << 20, "page size above 1 MiB"},
        {96 + 24, 4, 0xdeadbeef, "content crc"},
        {96 + 28, 4, 1, "slot flags"},
        {96 + 8, 8, 1ull << 62, "page home beyond a signed 64-bit offset"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        size_t len = make_rec(buf, cap, &g, 0, SIZES3, 3, 5);
        uint8_t *p = buf + bad[k].off;
        if (bad[k].width == 8)
            put64(p, bad[k].v);
        else if (bad[k].width == 4)
            put32(p, (uint32_t)bad[k].v);
        else if (bad[k].width == 2)
            p[0] = (uint8_t)bad[k].v, p[1] = (uint8_t)(bad[k].v >> 8);
        else
            p[0] ^= (uint8_t)bad[k].v;
        reseal(buf, 3);
        struct atomio_dw_batch_hdr b;
        const char *why = "";
        enum atomio_dw_state s = atomio__dw_batch_decode(buf, cap, &g, &b, &why);
        cr_assert_eq(s, ATOMIO_DW_TORN, "%s accepted (%d)", bad[k].what, (int)s);
        (void)len;
    }
    /* A page larger than the store's largest page size, every other rule holding. */
    struct atomio_dw_geom small = g;
    small.max_page_size = 4096;
    make_rec(buf, cap, &g, 0, SIZES3, 3, 5);
    struct atomio_dw_batch_hdr b;
    const char *why = "";
    cr_assert_eq(atomio__dw_batch_decode(buf, cap, &small, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "largest page"), "%s", why);
    /* Non-zero table padding under good CRCs (the padding is outside both). */
    make_rec(buf, cap, &g, 0, SIZES3, 3, 5);
    buf[64 + 3 * 32 + 7] = 1;
    cr_assert_eq(atomio__dw_batch_decode(buf, cap, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "padding"), "%s", why);
    free(buf);
}

/* A record that ends exactly at the end of the ring is whole; one granule more would wrap. */
Test(dw_format, records_never_wrap)
{
    struct atomio_dw_geom g = geom();
    uint8_t *buf = malloc(8192);
    static const uint32_t one[1] = {4096};
    size_t len = make_rec(buf, 8192, &g, 5 * (uint64_t)RING - 4608, one, 1, 1);
    struct atomio_dw_batch_hdr b;
    cr_assert_eq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_VALID);
    make_rec(buf, 8192, &g, 5 * (uint64_t)RING - 4096, one, 1, 1);
    const char *why = "";
    cr_assert_eq(atomio__dw_batch_decode(buf, len, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "range"), "%s", why);
    free(buf);
}

Test(dw_format, torn_stale_and_foreign_records)
{
    struct atomio_dw_geom g = geom(), other = geom();
    size_t cap = 32768;
    uint8_t *a = malloc(cap), *n = malloc(cap);
    struct atomio_dw_batch_hdr b;
    const char *why;
    /* A newer record's header over an older record's table (a torn overwrite). */
    make_rec(a, cap, &g, 0, SIZES3, 3, 5);
    make_rec(n, cap, &g, RING, SIZES3, 3, 6);
    memcpy(a, n, ATOMIO_DW_REC_HDR_LEN);
    cr_assert_eq(atomio__dw_batch_decode(a, cap, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "table"), "%s", why);
    /* Header and table new, one page still the old one: written as pages then header, the
     * header landed and a page did not. */
    make_rec(a, cap, &g, 0, SIZES3, 3, 5);
    memcpy(n + 512 + 16384, a + 512 + 16384, 4096);
    cr_assert_eq(atomio__dw_batch_decode(n, cap, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "CRC"), "%s", why);
    /* A torn record keeps its header fields (inspect shows them). */
    cr_assert_eq(b.lsn, RING);
    cr_assert_eq(b.count, 3);
    /* A whole, perfect record of another store. */
    other.uuid[3] ^= 1;
    make_rec(a, cap, &other, 0, SIZES3, 3, 5);
    cr_assert_eq(atomio__dw_batch_decode(a, cap, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "uuid"), "%s", why);
    /* One written for a ring of another size. */
    other = geom();
    other.ring_size = 2 * RING;
    make_rec(a, cap, &other, 0, SIZES3, 3, 5);
    cr_assert_eq(atomio__dw_batch_decode(a, cap, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "ring size"), "%s", why);
    free(a);
    free(n);
}

/* A header with valid CRCs and absurd fields must not send the decoder out of bounds. */
Test(dw_format, crafted_headers_stay_in_bounds)
{
    struct atomio_dw_geom g = geom();
    static const uint32_t counts[] = {0, 1, 3, 14, 15, 127, 128, 1000, 0x7fffffffu, 0xffffffffu};
    static const uint64_t lens[] = {0,        64,   512,        1024,  4096,      4608,
                                    1u << 20, RING, RING + 512, ~0ull, 1ull << 63};
    for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            for (size_t cap = 64; cap <= 4096; cap *= 8) {
                uint8_t *buf = malloc(cap); /* exactly cap: ASan sees any overrun */
                memset(buf, 0x5a, cap);
                memset(buf, 0, 64);
                put32(buf, 0x43525441);
                buf[4] = 2, buf[6] = 64;
                put32(buf + 16, counts[ci]);
                put64(buf + 24, lens[li]);
                memcpy(buf + 32, g.uuid, 16);
                put64(buf + 52, g.ring_size);
                uint64_t tab = 64 + (uint64_t)counts[ci] * 32;
                put32(buf + 48, tab <= cap ? atomio__crc32c(0, buf + 64, (size_t)(tab - 64)) : 0);
                put32(buf + 60, atomio__crc32c(0, buf, 60));
                struct atomio_dw_batch_hdr b;
                enum atomio_dw_state s = atomio__dw_batch_decode(buf, cap, &g, &b, NULL);
                cr_assert_neq(s, ATOMIO_DW_VALID, "count %u len %llu cap %zu", counts[ci],
                              (unsigned long long)lens[li], cap);
                for (uint32_t k = 0; k < (b.count < 300 ? b.count : 300); k++) {
                    struct atomio_dw_slot sl;
                    bool ok;
                    (void)atomio__dw_slot_decode(buf, cap, &b, k, &sl, &ok);
                }
                /* A caller-made header claiming more than the buffer holds. */
                struct atomio_dw_batch_hdr fake = {.count = counts[ci], .byte_len = lens[li]};
                struct atomio_dw_slot sl;
                bool ok;
                (void)atomio__dw_slot_decode(buf, cap, &fake, 0, &sl, &ok);
                (void)atomio__dw_slot_decode(buf, cap, &fake, counts[ci] ? counts[ci] - 1 : 0, &sl,
                                             &ok);
                free(buf);
            }
        }
    }
}

static uint64_t
xorshift(uint64_t *x)
{
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    return *x;
}

Test(dw_format, random_bytes_never_valid_never_crash)
{
    struct atomio_dw_geom g = geom(), d;
    uint64_t x = 12345;
    for (int iter = 0; iter < 30000; iter++) {
        size_t len = (size_t)(xorshift(&x) % 700);
        uint8_t *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)xorshift(&x);
        /* Half of them start like a record or a store header, to get past the magic. */
        if (iter & 1 && len >= 64) {
            put32(buf, 0x43525441);
            buf[4] = 2, buf[5] = 0, buf[6] = 64, buf[7] = 0;
            if (iter & 2)
                put32(buf + 60, atomio__crc32c(0, buf, 60));
        }
        if (iter & 1 && len >= 16 && (iter & 4))
            memcpy(buf, "ATOMIODW\2\0\0\0", 12);
        struct atomio_dw_batch_hdr b;
        cr_assert_neq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_VALID);
        if (len >= 64)
            cr_assert_neq(atomio__dw_rec_hdr_decode(buf, &g, &b, NULL), ATOMIO_DW_VALID);
        cr_assert_neq(atomio__dw_store_hdr_decode(buf, len, 0, &d, NULL, NULL), 0);
        cr_assert_leq(atomio__dw_manifest_walk(buf, len, NULL, NULL), len);
        free(buf);
    }
}

/* ---- manifest ------------------------------------------------------------------------------- */

struct seen {
    uint64_t ids[16], from[16];
    uint32_t flags[16];
    char paths[16][64];
    int n, stop_at;
};

static int
collect(void *arg, const struct atomio_dw_man_rec *m)
{
    struct seen *s = arg;
    cr_assert_lt(s->n, 16);
    s->ids[s->n] = m->file_id;
    s->from[s->n] = m->from_lsn;
    s->flags[s->n] = m->flags;
    snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", m->path);
    s->n++;
    return s->stop_at && s->n == s->stop_at;
}

static size_t
man_put(uint8_t *out, uint64_t id, const char *path, uint64_t from, uint32_t flags)
{
    struct atomio_dw_man_rec m = {.file_id = id, .from_lsn = from, .flags = flags, .path = path};
    atomio__dw_manifest_encode(out, &m, strlen(path));
    return atomio__dw_manifest_rec_len(strlen(path));
}

Test(dw_format, manifest_round_trip_and_torn_tail)
{
    const char *paths[3] = {"/data/a.ibd", "db/c.ibd", "/x"};
    const uint64_t from[3] = {0, 1ull << 40, 512};
    const uint32_t flags[3] = {0, ATOMIO_DW_MAN_RELATIVE, 0};
    uint8_t buf[512];
    size_t off = 0, ends[3];
    for (int i = 0; i < 3; i++) {
        size_t n = man_put(buf + off, 1000 + (uint64_t)i, paths[i], from[i], flags[i]);
        cr_assert_eq(n % 8, 0);
        cr_assert_eq(get32(buf + off), 0x464D5441);
        cr_assert_eq(buf[off + 6], strlen(paths[i]));
        cr_assert_eq(get32(buf + off + 24), flags[i]);
        cr_assert_eq(get32(buf + off + 28), 0);
        cr_assert_eq(memcmp(buf + off + 32, paths[i], strlen(paths[i])), 0, "no NUL, no prefix");
        off += n;
        ends[i] = off;
    }
    struct seen s = {0};
    cr_assert_eq(atomio__dw_manifest_walk(buf, off, collect, &s), off);
    cr_assert_eq(s.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s.ids[i], 1000 + (uint64_t)i);
        cr_assert_eq(s.from[i], from[i]);
        cr_assert_eq(s.flags[i], flags[i]);
        cr_assert_str_eq(s.paths[i], paths[i]);
    }
    /* Every truncation keeps exactly the whole records before it. */
    for (size_t len = 0; len < off; len++) {
        size_t want = len >= ends[1] ? ends[1] : len >= ends[0] ? ends[0] : 0;
        cr_assert_eq(atomio__dw_manifest_walk(buf, len, NULL, NULL), want, "len %zu", len);
    }
    /* Every corrupt byte of the second record (padding included) stops the walk after the
     * first. */
    for (size_t i = ends[0]; i < ends[1]; i++) {
        buf[i] ^= 0x01;
        cr_assert_eq(atomio__dw_manifest_walk(buf, off, NULL, NULL), ends[0], "byte %zu", i);
        buf[i] ^= 0x01;
    }
    /* A stop from the callback ends the walk after that record. */
    memset(&s, 0, sizeof(s));
    s.stop_at = 2;
    cr_assert_eq(atomio__dw_manifest_walk(buf, off, collect, &s), ends[1]);
    cr_assert_eq(s.n, 2);
}

Test(dw_format, manifest_field_rules_under_a_good_crc)
{
    uint8_t buf[64];
    struct {
        size_t off;
        uint32_t v;
        const char *what;
    } bad[] = {
        {0, 0x464D5442, "magic"},         {4, 1, "version 1"}, {24, 2, "unknown flag bit 1"},
        {24, 0x80000000u, "flag bit 31"}, {28, 1, "reserved"},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        man_put(buf, 1, "/abc", 0, 0);
        if (bad[k].off == 4)
            buf[4] = (uint8_t)bad[k].v, buf[5] = 0;
        else
            put32(buf + bad[k].off, bad[k].v);
        put32(buf + 36, atomio__crc32c(0, buf, 36));
        cr_assert_eq(atomio__dw_manifest_walk(buf, 40, NULL, NULL), 0, "%s accepted", bad[k].what);
    }
    /* Padding after the CRC must be zero: "/ab" leaves one byte of it. */
    size_t n = man_put(buf, 1, "/ab", 0, 0);
    cr_assert_eq(n, 40);
    cr_assert_eq(atomio__dw_manifest_walk(buf, n, NULL, NULL), 40);
    buf[39] = 1;
    cr_assert_eq(atomio__dw_manifest_walk(buf, n, NULL, NULL), 0, "non-zero padding accepted");
}

Test(dw_format, manifest_rejects_embedded_nul_and_bad_lengths)
{
    uint8_t buf[64];
    struct atomio_dw_man_rec m = {.file_id = 1, .path = "ab\0d"};
    atomio__dw_manifest_encode(buf, &m, 4);
    cr_assert_eq(atomio__dw_manifest_walk(buf, sizeof(buf), NULL, NULL), 0, "embedded NUL");
    /* Path length 0 under a good CRC. */
    memset(buf, 0, sizeof(buf));
    man_put(buf, 1, "/abc", 0, 0);
    buf[6] = 0, buf[7] = 0;
    put32(buf + 32, atomio__crc32c(0, buf, 32));
    cr_assert_eq(atomio__dw_manifest_walk(buf, 40, NULL, NULL), 0, "empty path");
    /* The longest path, and one byte more under a good CRC. */
    size_t big = atomio__dw_manifest_rec_len(ATOMIO_DW_PATH_MAX + 1);
    uint8_t *p = calloc(1, big);
    char *path = malloc(ATOMIO_DW_PATH_MAX + 2);
    memset(path, 'p', ATOMIO_DW_PATH_MAX + 1);
    path[0] = '/';
    path[ATOMIO_DW_PATH_MAX] = '\0';
    size_t n = man_put(p, 3, path, 0, 0);
    struct seen s = {0};
    cr_assert_eq(atomio__dw_manifest_walk(p, n, collect, &s), n, "4095-byte path");
    cr_assert_eq(s.n, 1);
    path[ATOMIO_DW_PATH_MAX] = 'p';
    path[ATOMIO_DW_PATH_MAX + 1] = '\0';
    memset(p, 0, big);
    struct atomio_dw_man_rec m2 = {.file_id = 3, .path = path};
    atomio__dw_manifest_encode(p, &m2, ATOMIO_DW_PATH_MAX + 1);
    cr_assert_eq(atomio__dw_manifest_walk(p, big, NULL, NULL), 0, "4096-byte path");
    free(path);
    free(p);
}

/* ---- stores on disk: the seeds of the independent encoder, inspection ---------------------- */

struct seed {
    uint8_t *buf;
    const uint8_t *man, *store;
    size_t mlen, slen;
};

static struct seed
load_seed(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", ATOMIO_FUZZ_CORPUS, name);
    FILE *fp = fopen(path, "rb");
    cr_assert(fp, "seed %s missing (run tests/fuzz/make_corpus.py)", path);
    struct seed s = {0};
    s.buf = malloc(1 << 20);
    size_t n = fread(s.buf, 1, 1 << 20, fp);
    fclose(fp);
    cr_assert_geq(n, 2);
    s.mlen = (size_t)s.buf[0] | (size_t)s.buf[1] << 8;
    cr_assert_leq(s.mlen, n - 2);
    s.man = s.buf + 2;
    s.store = s.man + s.mlen;
    s.slen = n - 2 - s.mlen;
    return s;
}

/* The store a seed describes, both header copies decoded (the newer tail when both hold). */
static int
seed_geom(const struct seed *s, struct atomio_dw_geom *g, int *valid_copies)
{
    struct atomio_dw_geom c[2];
    int d[2];
    cr_assert_geq(s->slen, 2 * ATOMIO_DW_ALIGN);
    for (uint32_t k = 0; k < 2; k++)
        d[k] = atomio__dw_store_hdr_decode(s->store + k * ATOMIO_DW_ALIGN, ATOMIO_DW_STORE_HDR_LEN,
                                           k, &c[k], NULL, NULL);
    *valid_copies = (d[0] == 0) + (d[1] == 0);
    if (d[0] != 0 && d[1] != 0)
        return ATOMIO_E_STORE;
    *g = d[0] == 0 && (d[1] != 0 || c[0].tail >= c[1].tail) ? c[0] : c[1];
    return 0;
}

/* Scan a seed's ring as format.md describes: granule by granule, a valid record skipped
 * whole. Counts records by state; remembers the first valid ones. */
struct scan {
    int valid, torn, live;
    uint64_t lsn[8];
    uint64_t at[8]; /* ring position */
};

static void
scan_seed(const struct seed *s, const struct atomio_dw_geom *g, struct scan *out)
{
    memset(out, 0, sizeof(*out));
    cr_assert_geq(s->slen, atomio__dw_store_size(g));
    const uint8_t *ring = s->store + g->ring_offset;
    for (uint64_t pos = 0; pos + 64 <= g->ring_size;) {
        struct atomio_dw_batch_hdr b;
        enum atomio_dw_state st =
            atomio__dw_batch_decode(ring + pos, (size_t)(g->ring_size - pos), g, &b, NULL);
        if (st == ATOMIO_DW_VALID) {
            cr_assert_eq(b.lsn % g->ring_size, pos);
            if (out->valid < 8) {
                out->lsn[out->valid] = b.lsn;
                out->at[out->valid] = pos;
            }
            out->valid++;
            out->live += b.lsn >= g->tail;
            pos += b.byte_len;
        } else {
            /* a record is torn when its header checks out over bytes that do not; any other
             * non-empty granule is the inside of some record */
            struct atomio_dw_batch_hdr h;
            out->torn += atomio__dw_rec_hdr_decode(ring + pos, g, &h, NULL) == ATOMIO_DW_VALID;
            pos += 512;
        }
    }
}

Test(dw_format, independent_encoder_seeds_decode)
{
    struct atomio_dw_geom g;
    int copies;
    struct scan sc;
    struct seen m = {0};

    struct seed s = load_seed("empty-ring");
    cr_assert_eq(seed_geom(&s, &g, &copies), 0);
    cr_assert_eq(copies, 2);
    cr_assert_eq(g.ring_size, RING);
    cr_assert_eq(g.max_page_size, 4096);
    cr_assert_eq(g.tail, 0);
    cr_assert_eq(s.slen, atomio__dw_store_size(&g));
    scan_seed(&s, &g, &sc);
    cr_assert_eq(sc.valid + sc.torn, 0);
    cr_assert_eq(s.mlen, 0);
    free(s.buf);

    s = load_seed("one-record");
    cr_assert_eq(seed_geom(&s, &g, &copies), 0);
    cr_assert_eq(copies, 2);
    scan_seed(&s, &g, &sc);
    cr_assert_eq(sc.valid, 1);
    cr_assert_eq(sc.torn, 0);
    cr_assert_eq(sc.live, 1);
    cr_assert_eq(sc.lsn[0], 0);
    struct atomio_dw_batch_hdr b;
    const uint8_t *rec = s.store + g.ring_offset;
    cr_assert_eq(atomio__dw_batch_decode(rec, RING, &g, &b, NULL), ATOMIO_DW_VALID);
    cr_assert_eq(b.count, 2);
    cr_assert_eq(b.byte_len, 512 + 4096 + 512);
    struct atomio_dw_slot sl;
    bool ok;
    cr_assert_eq(atomio__dw_slot_decode(rec, RING, &b, 0, &sl, &ok), 0);
    cr_assert(ok);
    cr_assert_eq(sl.file_id, 7);
    cr_assert_eq(sl.page_no, 3);
    cr_assert_eq(sl.page_size, 4096);
    cr_assert_eq(atomio__dw_slot_decode(rec, RING, &b, 1, &sl, &ok), 0);
    cr_assert(ok);
    cr_assert_eq(sl.file_id, 8);
    cr_assert_eq(sl.page_no, 1);
    cr_assert_eq(sl.page_size, 512);
    cr_assert_eq(sl.offset, 512 + 4096);
    cr_assert_eq(atomio__dw_manifest_walk(s.man, s.mlen, collect, &m), s.mlen);
    cr_assert_eq(m.n, 2);
    cr_assert_eq(m.ids[0], 7);
    cr_assert_str_eq(m.paths[0], "a.db");
    cr_assert_eq(m.flags[0], ATOMIO_DW_MAN_RELATIVE);
    cr_assert_eq(m.from[0], 0);
    cr_assert_eq(m.ids[1], 8);
    cr_assert_str_eq(m.paths[1], "/nonexistent/atomio-fuzz/b.db");
    cr_assert_eq(m.flags[1], 0);
    cr_assert_eq(m.from[1], 512);
    free(s.buf);

    s = load_seed("torn-record");
    cr_assert_eq(seed_geom(&s, &g, &copies), 0);
    scan_seed(&s, &g, &sc);
    cr_assert_eq(sc.valid, 0);
    cr_assert_eq(sc.torn, 1);
    const char *why = "";
    cr_assert_eq(atomio__dw_batch_decode(s.store + g.ring_offset, RING, &g, &b, &why),
                 ATOMIO_DW_TORN);
    cr_assert(strstr(why, "page bytes"), "%s", why);
    free(s.buf);

    s = load_seed("no-store");
    cr_assert_eq(s.slen, 0);
    struct atomio_dw_geom d;
    cr_assert_eq(atomio__dw_store_hdr_decode(s.store, s.slen, 0, &d, NULL, NULL), 1);
    free(s.buf);

    s = load_seed("lapped");
    cr_assert_eq(seed_geom(&s, &g, &copies), 0);
    cr_assert_eq(g.tail, 2 * RING);
    scan_seed(&s, &g, &sc);
    cr_assert_eq(sc.valid, 2);
    cr_assert_eq(sc.live, 1, "the first lap's record is below the tail");
    cr_assert_eq(sc.lsn[0], 2 * RING + 8192);
    cr_assert_eq(sc.at[0], 8192);
    cr_assert_eq(sc.lsn[1], RING + 16384);
    free(s.buf);

    s = load_seed("one-header-copy");
    cr_assert_eq(seed_geom(&s, &g, &copies), 0);
    cr_assert_eq(copies, 1);
    free(s.buf);

    s = load_seed("manifest-resync");
    memset(&m, 0, sizeof(m));
    size_t first = atomio__dw_manifest_walk(s.man, s.mlen, collect, &m);
    cr_assert_eq(m.n, 1, "the walk stops at the damaged record");
    cr_assert_eq(first, 48, "32 + 6 + 4 bytes, padded to 8");
    free(s.buf);
}

/* Write a seed as a store directory. */
static void
seed_to_dir(const char *name, const char *dir)
{
    struct seed s = load_seed(name);
    int fd = open(t_join(dir, ATOMIO_DW_MANIFEST_FILE), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, s.man, s.mlen), (ssize_t)s.mlen);
    close(fd);
    if (s.slen) {
        fd = open(t_join(dir, ATOMIO_DW_STORE_FILE), O_CREAT | O_TRUNC | O_WRONLY, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, s.store, s.slen), (ssize_t)s.slen);
        close(fd);
    }
    free(s.buf);
}

struct insp {
    int stores, files, batches, valid, live, slots, bad_slots;
    atomio_inspect_record store;
    uint64_t ids[16], from[16], lsn[16], off[16];
    uint32_t rel[16], state[16];
    char paths[16][64], why[16][96];
};

static int
insp_cb(void *arg, const atomio_inspect_record *r)
{
    struct insp *in = arg;
    cr_assert_eq(r->size, sizeof(*r));
    switch (r->kind) {
    case ATOMIO_INSPECT_STORE:
        in->stores++;
        in->store = *r;
        break;
    case ATOMIO_INSPECT_FILE:
        cr_assert_lt(in->files, 16);
        in->ids[in->files] = r->file_id;
        in->from[in->files] = r->from_lsn;
        in->rel[in->files] = r->relative;
        snprintf(in->paths[in->files], 64, "%s", r->path);
        in->files++;
        break;
    case ATOMIO_INSPECT_BATCH:
        cr_assert_lt(in->batches, 16);
        cr_assert_not_null(r->why);
        in->lsn[in->batches] = r->lsn;
        in->off[in->batches] = r->offset;
        in->state[in->batches] = r->state;
        snprintf(in->why[in->batches], 96, "%s", r->why);
        in->batches++;
        in->valid += r->state == ATOMIO_BATCH_VALID;
        in->live += r->live != 0;
        break;
    case ATOMIO_INSPECT_SLOT:
        in->slots++;
        in->bad_slots += !r->crc_ok;
        break;
    default:
        cr_assert_fail("unknown kind %u", r->kind);
    }
    return 0;
}

static char tmp[256];

static void
mk_tmp(void)
{
    t_tmpdir(tmp, sizeof(tmp));
}

static void
rm_tmp(void)
{
    t_rmtree(tmp);
}

TestSuite(dw_format_dir, .init = mk_tmp, .fini = rm_tmp);

Test(dw_format_dir, seeds_through_inspect)
{
    struct insp in;
    memset(&in, 0, sizeof(in));
    seed_to_dir("one-record", tmp);
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    cr_assert_eq(in.stores, 1);
    cr_assert_eq(in.store.format_version, 2);
    cr_assert_eq(in.store.ring_size, RING);
    cr_assert_eq(in.store.max_page_size, 4096);
    cr_assert_eq(in.store.tail, 0);
    cr_assert_eq(in.store.uuid[0], 0x10);
    cr_assert_eq(in.store.uuid[15], 0x1f);
    cr_assert_eq(in.files, 2);
    cr_assert_eq(in.rel[0], 1);
    cr_assert_eq(in.from[1], 512);
    cr_assert_eq(in.batches, 1);
    cr_assert_eq(in.live, 1);
    cr_assert_eq(in.off[0], 8192, "the record's offset in the store file");
    cr_assert_eq(in.slots, 2);
    cr_assert_eq(in.bad_slots, 0);

    memset(&in, 0, sizeof(in));
    seed_to_dir("torn-record", tmp);
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    cr_assert_eq(in.batches, 1);
    cr_assert_eq(in.state[0], ATOMIO_BATCH_TORN);
    cr_assert_eq(in.live, 0);

    memset(&in, 0, sizeof(in));
    seed_to_dir("lapped", tmp);
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    cr_assert_eq(in.store.tail, 2 * RING);
    cr_assert_eq(in.batches, 2);
    cr_assert_eq(in.valid, 2);
    cr_assert_eq(in.live, 1);
    cr_assert_eq(in.lsn[0], 2 * RING + 8192);
    cr_assert_eq(in.off[0], 8192 + 8192);

    memset(&in, 0, sizeof(in));
    seed_to_dir("one-header-copy", tmp);
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0, "one good copy is enough");
    cr_assert_eq(in.live, 1);

    memset(&in, 0, sizeof(in));
    seed_to_dir("empty-ring", tmp);
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    cr_assert_eq(in.files + in.batches, 0);

    char nostore[300];
    snprintf(nostore, sizeof(nostore), "%s/nostore", tmp);
    cr_assert_eq(mkdir(nostore, 0700), 0);
    seed_to_dir("no-store", nostore);
    cr_assert_eq(atomio_store_inspect(nostore, insp_cb, &in), -ENOENT);
}

/* A damaged stretch of the manifest costs only the records in it. */
Test(dw_format_dir, manifest_resyncs_past_a_damaged_stretch)
{
    struct insp in;
    memset(&in, 0, sizeof(in));
    seed_to_dir("manifest-resync", tmp);
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    cr_assert_eq(in.files, 3, "old.db, then a.db and b.db after the damage; the torn tail lost");
    cr_assert_str_eq(in.paths[0], "old.db");
    cr_assert_eq(in.ids[1], 7);
    cr_assert_str_eq(in.paths[1], "a.db");
    cr_assert_eq(in.ids[2], 8);
    cr_assert_eq(in.from[2], 512);
}

/* A record whose LSN names another ring position is not trusted, however well it checks out
 * otherwise (docs/format.md: a record lives at ring offset + LSN mod ring size). */
Test(dw_format_dir, misplaced_record_is_torn)
{
    struct seed s = load_seed("one-record");
    uint8_t *st = malloc(s.slen);
    memcpy(st, s.store, s.slen);
    size_t len = 512 + 4096 + 512;
    memmove(st + 8192 + 65536, st + 8192, len); /* the same bytes, 64 KiB further on */
    memset(st + 8192, 0, len);
    int fd = open(t_join(tmp, ATOMIO_DW_STORE_FILE), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert_eq(write(fd, st, s.slen), (ssize_t)s.slen);
    close(fd);
    struct insp in;
    memset(&in, 0, sizeof(in));
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    cr_assert_eq(in.batches, 1);
    cr_assert_eq(in.state[0], ATOMIO_BATCH_TORN);
    cr_assert_eq(in.live, 0);
    cr_assert(strstr(in.why[0], "position"), "%s", in.why[0]);
    free(st);
    free(s.buf);
}

/* A header that claims a far larger ring than the file holds is read as far as the file goes:
 * past its end every granule is empty. */
Test(dw_format_dir, huge_claimed_ring_over_a_short_file_is_quick)
{
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_geom_make(&g, 1ull << 40, 4096), 0);
    uint8_t blk[2 * ATOMIO_DW_ALIGN] = {0};
    atomio__dw_store_hdr_encode(&g, 0, blk);
    atomio__dw_store_hdr_encode(&g, 1, blk + ATOMIO_DW_ALIGN);
    int fd = open(t_join(tmp, ATOMIO_DW_STORE_FILE), O_CREAT | O_TRUNC | O_WRONLY, 0600);
    cr_assert_eq(write(fd, blk, sizeof(blk)), (ssize_t)sizeof(blk));
    close(fd);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct insp in;
    memset(&in, 0, sizeof(in));
    cr_assert_eq(atomio_store_inspect(tmp, insp_cb, &in), 0);
    atomio_recovery_report rep = ATOMIO_RECOVERY_REPORT_INIT;
    cr_assert_eq(atomio_store_reset(tmp, &rep), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_eq(in.store.ring_size, 1ull << 40);
    cr_assert_eq(in.batches, 0);
    cr_assert_lt(s, 2.0, "inspect and reset of an 8 KiB file took %.1f s", s);
}

/* ---- the public inspection record's layout is ABI: pin it ----------------------------------- */

#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(atomio_inspect_record) == 144, "inspect record size");
_Static_assert(offsetof(atomio_inspect_record, size) == 0, "size");
_Static_assert(offsetof(atomio_inspect_record, kind) == 4, "kind");
_Static_assert(offsetof(atomio_inspect_record, format_version) == 8, "format_version");
_Static_assert(offsetof(atomio_inspect_record, max_page_size) == 12, "max_page_size");
_Static_assert(offsetof(atomio_inspect_record, ring_size) == 16, "ring_size");
_Static_assert(offsetof(atomio_inspect_record, tail) == 24, "tail");
_Static_assert(offsetof(atomio_inspect_record, uuid) == 32, "uuid");
_Static_assert(offsetof(atomio_inspect_record, file_id) == 48, "file_id");
_Static_assert(offsetof(atomio_inspect_record, path) == 56, "path");
_Static_assert(offsetof(atomio_inspect_record, from_lsn) == 64, "from_lsn");
_Static_assert(offsetof(atomio_inspect_record, relative) == 72, "relative");
_Static_assert(offsetof(atomio_inspect_record, state) == 76, "state");
_Static_assert(offsetof(atomio_inspect_record, offset) == 80, "offset");
_Static_assert(offsetof(atomio_inspect_record, lsn) == 88, "lsn");
_Static_assert(offsetof(atomio_inspect_record, pages) == 96, "pages");
_Static_assert(offsetof(atomio_inspect_record, slot) == 100, "slot");
_Static_assert(offsetof(atomio_inspect_record, bytes) == 104, "bytes");
_Static_assert(offsetof(atomio_inspect_record, why) == 112, "why");
_Static_assert(offsetof(atomio_inspect_record, page_no) == 120, "page_no");
_Static_assert(offsetof(atomio_inspect_record, page_size) == 128, "page_size");
_Static_assert(offsetof(atomio_inspect_record, crc_ok) == 132, "crc_ok");
_Static_assert(offsetof(atomio_inspect_record, crc) == 136, "crc");
_Static_assert(offsetof(atomio_inspect_record, live) == 140, "live");
#endif

Test(dw_format, inspect_record_layout_is_pinned)
{
    cr_assert_eq(sizeof(atomio_inspect_record) % 8, 0);
    cr_assert_eq(offsetof(atomio_inspect_record, size), 0);
    cr_assert_eq(ATOMIO_INSPECT_STORE, 1);
    cr_assert_eq(ATOMIO_INSPECT_FILE, 2);
    cr_assert_eq(ATOMIO_INSPECT_BATCH, 3);
    cr_assert_eq(ATOMIO_INSPECT_SLOT, 4);
    cr_assert_eq(ATOMIO_BATCH_VALID, 1);
    cr_assert_eq(ATOMIO_BATCH_TORN, 2);
}
