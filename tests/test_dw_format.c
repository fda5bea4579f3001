/* SPDX-License-Identifier: MIT */
/*
 * test_store/format.c -- the doublewrite store format: encode/decode round trips of the store
 * header, batches with slots of mixed page sizes, and manifest records; every single-byte
 * corruption is caught; decoders stay total on crafted and random input (run under ASan to
 * see any out-of-bounds read).
 */
#include "atomio_internal.h"
#include "store/format.h"
#include "helpers.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct atomio_dw_geom
geom(void)
{
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 8, 16384), 0);
    for (int i = 0; i < 16; i++)
        g.uuid[i] = (uint8_t)(0xa0 + i);
    return g;
}

Test(dw_format, geometry)
{
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 64, 16384), 0);
    cr_assert_eq(g.slots_max, 256, "16 KiB class holds 4x as many 4 KiB pages");
    cr_assert_eq(g.seg_size % ATOMIO_DW_ALIGN, 0);
    cr_assert_geq(g.seg_size, atomio__dw_table_bytes(g.slots_max) + 64ull * 16384);
    cr_assert_eq(g.seg_offset, ATOMIO_DW_ALIGN);
    cr_assert_eq(atomio__dw_store_size(&g), 4096 + 4 * g.seg_size);
    cr_assert_eq(atomio__dw_geom_make(&g, 1, 1, 512), 0);
    cr_assert_eq(g.slots_max, 1);
    cr_assert_eq(atomio__dw_geom_make(&g, 0, 64, 16384), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 0, 16384), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 64, 3000), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 64, 256), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 64, 2u << 20), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, 5000, 64, 16384), ATOMIO_E_INVAL);
    cr_assert_eq(atomio__dw_geom_make(&g, 4, 1u << 20, 1u << 20), ATOMIO_E_INVAL,
                 "a segment above 1 GiB is refused");
    cr_assert_eq(atomio__dw_table_bytes(0), 4096);
    cr_assert_eq(atomio__dw_table_bytes(84), 4096); /* 64 + 84 * 48 = 4096 */
    cr_assert_eq(atomio__dw_table_bytes(85), 8192);
}

Test(dw_format, store_header_round_trip_and_every_corruption)
{
    struct atomio_dw_geom g = geom(), d;
    uint8_t h[ATOMIO_DW_STORE_HDR_LEN];
    atomio__dw_store_hdr_encode(&g, h);
    cr_assert_eq(memcmp(h, "ATOMIODW", 8), 0);
    cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), &d, NULL), 0);
    cr_assert_eq(memcmp(&d, &g, sizeof(d)), 0, "geometry round trip");
    for (size_t i = 0; i < sizeof(h); i++) {
        for (int bit = 0; bit < 8; bit++) {
            h[i] ^= (uint8_t)(1u << bit);
            const char *why = NULL;
            int r = atomio__dw_store_hdr_decode(h, sizeof(h), &d, &why);
            cr_assert_eq(r, ATOMIO_E_STORE, "flip byte %zu bit %d accepted (%d)", i, bit, r);
            cr_assert(why && *why);
            h[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t len = 1; len < sizeof(h); len++)
        cr_assert_eq(atomio__dw_store_hdr_decode(h, len, &d, NULL), ATOMIO_E_STORE);
    cr_assert_eq(atomio__dw_store_hdr_decode(h, 0, &d, NULL), 1, "empty file: initialise");
    memset(h, 0, sizeof(h));
    cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), &d, NULL), 1, "zeros: initialise");
}

/* A batch of three pages (16 KiB, 4 KiB, 512 B) laid out as the writer does. */
static size_t
make_batch(uint8_t *buf, size_t cap, const struct atomio_dw_geom *g, uint64_t seq)
{
    static const uint32_t sizes[3] = {16384, 4096, 512};
    memset(buf, 0, cap);
    uint64_t off = atomio__dw_table_bytes(3);
    for (uint32_t k = 0; k < 3; k++) {
        t_fill(buf + off, sizes[k], seq * 10 + k);
        struct atomio_dw_slot s = {.file_id = 100 + k,
                                   .page_no = 7 * k + 1,
                                   .seq = seq,
                                   .offset = (uint32_t)off,
                                   .page_size = sizes[k],
                                   .crc = atomio__crc32c(0, buf + off, sizes[k]),
                                   .index = k};
        atomio__dw_slot_encode(buf, &s);
        off += sizes[k];
    }
    struct atomio_dw_batch_hdr b = {.seq = seq, .count = 3, .byte_len = off};
    atomio__dw_batch_hdr_encode(buf, &b, g->uuid);
    cr_assert_leq(off, cap);
    return (size_t)off;
}

Test(dw_format, batch_round_trip)
{
    struct atomio_dw_geom g = geom();
    uint8_t *buf = malloc(g.seg_size);
    size_t len = make_batch(buf, g.seg_size, &g, 42);
    struct atomio_dw_batch_hdr b;
    cr_assert_eq(atomio__dw_batch_decode(buf, g.seg_size, &g, &b, NULL), ATOMIO_DW_VALID);
    cr_assert_eq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_VALID,
                 "exactly byte_len bytes suffice");
    cr_assert_eq(b.seq, 42);
    cr_assert_eq(b.count, 3);
    cr_assert_eq(b.byte_len, len);
    for (uint32_t k = 0; k < 3; k++) {
        struct atomio_dw_slot s;
        bool ok;
        cr_assert_eq(atomio__dw_slot_decode(buf, len, &b, k, &s, &ok), 0);
        cr_assert(ok);
        cr_assert_eq(s.file_id, 100 + k);
        cr_assert_eq(s.page_no, 7 * k + 1);
        cr_assert_eq(s.seq, 42);
        cr_assert_eq(s.index, k);
        cr_assert_eq(s.offset % (s.page_size < 4096 ? s.page_size : 4096), 0,
                     "page bytes aligned for O_DIRECT in-place writes");
    }
    cr_assert_eq(atomio__dw_batch_decode(buf, len - 1, &g, &b, NULL), ATOMIO_DW_TORN,
                 "one byte short");
    memset(buf, 0, ATOMIO_DW_BATCH_HDR_LEN);
    cr_assert_eq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_EMPTY,
                 "a retired (zeroed) header is an empty segment");
    free(buf);
}

Test(dw_format, every_byte_of_a_batch_is_covered)
{
    struct atomio_dw_geom g = geom();
    uint8_t *buf = malloc(g.seg_size);
    size_t len = make_batch(buf, g.seg_size, &g, 9);
    uint64_t used_table = ATOMIO_DW_BATCH_HDR_LEN + 3 * ATOMIO_DW_SLOT_LEN;
    uint64_t pages = atomio__dw_table_bytes(3);
    struct atomio_dw_batch_hdr b;
    size_t checked = 0;
    for (size_t i = 0; i < len; i++) {
        if (i >= used_table && i < pages)
            continue; /* padding between the table and the first page carries no meaning */
        buf[i] ^= 0x10;
        enum atomio_dw_state s = atomio__dw_batch_decode(buf, g.seg_size, &g, &b, NULL);
        cr_assert_eq(s, ATOMIO_DW_TORN, "corrupt byte %zu accepted (state %d)", i, (int)s);
        buf[i] ^= 0x10;
        checked++;
    }
    cr_assert_gt(checked, 20000);
    free(buf);
}

Test(dw_format, stale_slots_and_foreign_batches_are_torn)
{
    struct atomio_dw_geom g = geom(), other = geom();
    uint8_t *a = malloc(g.seg_size), *b2 = malloc(g.seg_size);
    make_batch(a, g.seg_size, &g, 5);
    make_batch(b2, g.seg_size, &g, 6);
    struct atomio_dw_batch_hdr b;
    /* New header over an old table (a torn reuse of the segment). */
    memcpy(a, b2, ATOMIO_DW_BATCH_HDR_LEN);
    cr_assert_eq(atomio__dw_batch_decode(a, g.seg_size, &g, &b, NULL), ATOMIO_DW_TORN);
    /* Old header and table, one new page. */
    make_batch(a, g.seg_size, &g, 5);
    memcpy(a + 4096, b2 + 4096, 16384);
    cr_assert_eq(atomio__dw_batch_decode(a, g.seg_size, &g, &b, NULL), ATOMIO_DW_TORN);
    /* A perfect batch from another store. */
    other.uuid[3] ^= 1;
    make_batch(a, g.seg_size, &other, 5);
    const char *why;
    cr_assert_eq(atomio__dw_batch_decode(a, g.seg_size, &g, &b, &why), ATOMIO_DW_TORN);
    cr_assert(strstr(why, "uuid") != NULL, "%s", why);
    free(a);
    free(b2);
}

/* A header with a valid CRC and absurd fields must not send the decoder out of bounds. */
Test(dw_format, crafted_headers_stay_in_bounds)
{
    struct atomio_dw_geom g = geom();
    static const uint32_t counts[] = {0, 1, 3, 84, 85, 1000, 0x7fffffffu, 0xffffffffu};
    static const uint64_t lens[] = {0, 64, 100, 4096, 8192, 1u << 20, ~0ull, 1ull << 63};
    for (size_t ci = 0; ci < sizeof(counts) / sizeof(counts[0]); ci++) {
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            size_t cap = 4096;
            uint8_t *buf = malloc(cap); /* exactly cap: ASan sees any overrun */
            memset(buf, 0x5a, cap);
            struct atomio_dw_batch_hdr hb = {.seq = 1, .count = counts[ci], .byte_len = lens[li]};
            /* The encoder CRCs the table it is told about: only do that when it fits. */
            if (64 + (uint64_t)counts[ci] * 48 <= cap)
                atomio__dw_batch_hdr_encode(buf, &hb, g.uuid);
            else {
                atomio__dw_batch_hdr_encode(buf, &(struct atomio_dw_batch_hdr){.seq = 1}, g.uuid);
                /* patch count and re-CRC the header by hand */
                for (int i = 0; i < 4; i++)
                    buf[16 + i] = (uint8_t)(counts[ci] >> (8 * i));
                for (int i = 0; i < 8; i++)
                    buf[24 + i] = (uint8_t)(lens[li] >> (8 * i));
                uint32_t c = atomio__crc32c(0, buf, 60);
                for (int i = 0; i < 4; i++)
                    buf[60 + i] = (uint8_t)(c >> (8 * i));
            }
            struct atomio_dw_batch_hdr b;
            enum atomio_dw_state s = atomio__dw_batch_decode(buf, cap, &g, &b, NULL);
            cr_assert_neq(s, ATOMIO_DW_VALID, "count %u len %llu", counts[ci],
                          (unsigned long long)lens[li]);
            for (uint32_t k = 0; k < (b.count < 200 ? b.count : 200); k++) {
                struct atomio_dw_slot sl;
                bool ok;
                (void)atomio__dw_slot_decode(buf, cap, &b, k, &sl, &ok);
            }
            free(buf);
        }
    }
}

Test(dw_format, random_bytes_never_valid_never_crash)
{
    struct atomio_dw_geom g = geom(), d;
    uint64_t x = 12345;
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(x % 300);
        uint8_t *buf = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        struct atomio_dw_batch_hdr b;
        cr_assert_neq(atomio__dw_batch_decode(buf, len, &g, &b, NULL), ATOMIO_DW_VALID);
        (void)atomio__dw_store_hdr_decode(buf, len, &d, NULL);
        cr_assert_leq(atomio__dw_manifest_walk(buf, len, NULL, NULL), len);
        free(buf);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    }
}

struct seen {
    uint64_t ids[8];
    char paths[8][64];
    int n;
};

static int
collect(void *arg, uint64_t id, const char *path)
{
    struct seen *s = arg;
    s->ids[s->n] = id;
    snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
    s->n++;
    return 0;
}

Test(dw_format, manifest_round_trip_and_torn_tail)
{
    const char *paths[3] = {"/data/a.ibd", "/data/bb/c.ibd", "/x"};
    uint8_t buf[512];
    size_t off = 0, ends[3];
    for (int i = 0; i < 3; i++) {
        size_t n = atomio__dw_manifest_rec_len(strlen(paths[i]));
        cr_assert_eq(n % 8, 0);
        atomio__dw_manifest_encode(buf + off, 1000 + (uint64_t)i, paths[i], strlen(paths[i]));
        off += n;
        ends[i] = off;
    }
    struct seen s = {0};
    cr_assert_eq(atomio__dw_manifest_walk(buf, off, collect, &s), off);
    cr_assert_eq(s.n, 3);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(s.ids[i], 1000 + (uint64_t)i);
        cr_assert_str_eq(s.paths[i], paths[i]);
    }
    /* Every truncation keeps exactly the whole records before it. */
    for (size_t len = 0; len < off; len++) {
        size_t want = len >= ends[1] ? ends[1] : len >= ends[0] ? ends[0] : 0;
        cr_assert_eq(atomio__dw_manifest_walk(buf, len, NULL, NULL), want, "len %zu", len);
    }
    /* A corrupt byte in the second record stops the walk after the first. */
    for (size_t i = ends[0]; i < ends[1]; i++) {
        buf[i] ^= 0x01;
        cr_assert_eq(atomio__dw_manifest_walk(buf, off, NULL, NULL), ends[0], "byte %zu", i);
        buf[i] ^= 0x01;
    }
    /* A stop from the callback. */
    cr_assert_eq(atomio__dw_manifest_walk(buf, off, NULL, NULL), off);
}

Test(dw_format, manifest_rejects_embedded_nul)
{
    uint8_t buf[64];
    atomio__dw_manifest_encode(buf, 1, "ab\0d", 4);
    cr_assert_eq(atomio__dw_manifest_walk(buf, sizeof(buf), NULL, NULL), 0);
}

/* ---- seeds from the independent encoder (tests/fuzz/make_corpus.py) ------------------------- */

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
    s.man = s.buf + 2;
    s.store = s.man + s.mlen;
    s.slen = n - 2 - s.mlen;
    return s;
}

static enum atomio_dw_state
seg_state(const struct seed *s, const struct atomio_dw_geom *g, uint32_t i,
          struct atomio_dw_batch_hdr *b)
{
    uint64_t off = atomio__dw_seg_off(g, i);
    cr_assert_leq(off + g->seg_size, s->slen);
    return atomio__dw_batch_decode(s->store + off, (size_t)g->seg_size, g, b, NULL);
}

Test(dw_format, independent_encoder_seeds_decode)
{
    struct seed s = load_seed("one-batch");
    struct atomio_dw_geom g;
    cr_assert_eq(atomio__dw_store_hdr_decode(s.store, s.slen, &g, NULL), 0);
    cr_assert_eq(g.nseg, 2);
    cr_assert_eq(g.max_page_size, 4096);
    struct seen m = {0};
    cr_assert_eq(atomio__dw_manifest_walk(s.man, s.mlen, collect, &m), s.mlen);
    cr_assert_eq(m.n, 2);
    cr_assert_eq(m.ids[0], 7);
    cr_assert_str_eq(m.paths[1], "/fuzz/data/b.db");
    struct atomio_dw_batch_hdr b;
    cr_assert_eq(seg_state(&s, &g, 0, &b), ATOMIO_DW_VALID);
    cr_assert_eq(b.seq, 5);
    cr_assert_eq(b.count, 2);
    struct atomio_dw_slot sl;
    bool ok;
    uint64_t off = atomio__dw_seg_off(&g, 0);
    cr_assert_eq(atomio__dw_slot_decode(s.store + off, (size_t)g.seg_size, &b, 1, &sl, &ok), 0);
    cr_assert(ok);
    cr_assert_eq(sl.file_id, 8);
    cr_assert_eq(sl.page_no, 1);
    cr_assert_eq(sl.page_size, 512);
    cr_assert_eq(seg_state(&s, &g, 1, &b), ATOMIO_DW_EMPTY);
    free(s.buf);

    s = load_seed("torn-batch");
    cr_assert_eq(atomio__dw_store_hdr_decode(s.store, s.slen, &g, NULL), 0);
    cr_assert_eq(seg_state(&s, &g, 1, &b), ATOMIO_DW_TORN);
    free(s.buf);

    s = load_seed("two-copies");
    cr_assert_eq(atomio__dw_store_hdr_decode(s.store, s.slen, &g, NULL), 0);
    cr_assert_eq(seg_state(&s, &g, 0, &b), ATOMIO_DW_VALID);
    cr_assert_eq(seg_state(&s, &g, 1, &b), ATOMIO_DW_VALID);
    cr_assert_eq(b.seq, 9);
    free(s.buf);

    s = load_seed("torn-manifest");
    memset(&m, 0, sizeof(m));
    size_t valid = atomio__dw_manifest_walk(s.man, s.mlen, collect, &m);
    cr_assert_eq(m.n, 2, "the torn third record is cut off");
    cr_assert_lt(valid, s.mlen);
    free(s.buf);
}

/* ---- the public inspection record's layout is ABI: freeze it -------------------------------- */

#include <stddef.h>
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(atomio_inspect_record) == 128, "inspect record size");
_Static_assert(offsetof(atomio_inspect_record, kind) == 4, "kind");
_Static_assert(offsetof(atomio_inspect_record, segment_size) == 24, "segment_size");
_Static_assert(offsetof(atomio_inspect_record, uuid) == 32, "uuid");
_Static_assert(offsetof(atomio_inspect_record, file_id) == 48, "file_id");
_Static_assert(offsetof(atomio_inspect_record, path) == 56, "path");
_Static_assert(offsetof(atomio_inspect_record, segment) == 64, "segment");
_Static_assert(offsetof(atomio_inspect_record, seq) == 72, "seq");
_Static_assert(offsetof(atomio_inspect_record, bytes) == 88, "bytes");
_Static_assert(offsetof(atomio_inspect_record, why) == 96, "why");
_Static_assert(offsetof(atomio_inspect_record, page_no) == 104, "page_no");
_Static_assert(offsetof(atomio_inspect_record, reserved0) == 124, "reserved0");
#endif

Test(dw_format, inspect_record_layout_is_frozen)
{
    cr_assert_eq(sizeof(atomio_inspect_record) % 8, 0);
    cr_assert_eq(offsetof(atomio_inspect_record, size), 0);
}
