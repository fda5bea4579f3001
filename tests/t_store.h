/* SPDX-License-Identifier: MIT */
/*
 * t_store.h -- planting records straight into a doublewrite store file, as a crash would
 * leave them: between a record's in-place writes and its release. Header-only, for the suites
 * that test recovery on real files (they link the library's internals).
 */
#ifndef ATOMIO_TEST_T_STORE_H
#define ATOMIO_TEST_T_STORE_H

#include "atomio_internal.h"
#include "helpers.h"
#include "store/format.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One page of a planted record. */
struct t_plant {
    uint64_t file_id, page_no;
    const void *page;
};

/* t_store_geom() -- the store's geometry from its first header copy, without opening a ctx. */
static inline void
t_store_geom(const char *dwdir, struct atomio_dw_geom *g)
{
    uint8_t h[ATOMIO_DW_STORE_HDR_LEN];
    int fd = open(t_join(dwdir, ATOMIO_DW_STORE_FILE), O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
    close(fd);
    cr_assert_eq(atomio__dw_store_hdr_decode(h, sizeof(h), 0, g, NULL, NULL), 0);
}

/* t_plant_lsn() -- where a test's n-th planted record goes: 64 KiB apart, in LSN order. */
static inline uint64_t
t_plant_lsn(const struct atomio_dw_geom *g, uint64_t n)
{
    return g->tail + n * 65536u;
}

/*
 * t_plant() -- a valid record at LSN lsn holding pl[0..n) (page size ps each), written into
 * the store file and made durable. Returns its length.
 */
static inline uint64_t
t_plant(const char *dwdir, uint64_t lsn, const struct t_plant *pl, uint32_t n, uint32_t ps)
{
    struct atomio_dw_geom g;
    t_store_geom(dwdir, &g);
    size_t tb = (size_t)atomio__dw_table_bytes(n);
    size_t len = tb + (size_t)n * ps;
    uint8_t *b = calloc(1, len);
    cr_assert_not_null(b);
    for (uint32_t k = 0; k < n; k++) {
        memcpy(b + tb + (size_t)k * ps, pl[k].page, ps);
        struct atomio_dw_slot s = {.file_id = pl[k].file_id,
                                   .page_no = pl[k].page_no,
                                   .offset = (uint32_t)(tb + (size_t)k * ps),
                                   .page_size = ps,
                                   .crc = atomio__crc32c(0, pl[k].page, ps),
                                   .index = k};
        atomio__dw_slot_encode(b, &s);
    }
    struct atomio_dw_batch_hdr hb = {.lsn = lsn, .count = n, .byte_len = len,
                                     .ring_size = g.ring_size};
    atomio__dw_batch_hdr_encode(b, &hb, g.uuid);
    int fd = open(t_join(dwdir, ATOMIO_DW_STORE_FILE), O_WRONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(pwrite(fd, b, len, (off_t)atomio__dw_ring_pos(&g, lsn)), (ssize_t)len);
    cr_assert_eq(fsync(fd), 0);
    close(fd);
    free(b);
    return len;
}

#endif
