/* SPDX-License-Identifier: MIT */
/*
 * bc_page.h -- page contents that say what they are: every 512-byte sector of a page written
 * by the workload carries (file, page, version, sector) and a fill derived from them, so the
 * checker can tell, sector by sector, which version of which page it is looking at, and a
 * sector holding anything else (a mix inside the sector, a stray block) is caught as garbage.
 * Version 0 is "never written": all zeros.
 */
#ifndef BC_PAGE_H
#define BC_PAGE_H

#include <stdint.h>
#include <string.h>

#define BC_SECTOR     512u
#define BC_PAGE_MAGIC 0x47504342u /* "BCPG" */
#define BC_GARBAGE    (-1)        /* a sector that is neither zeros nor a valid encoding */
#define BC_FOREIGN    (-2)        /* a valid sector of another file, page or sector index */

struct bc_sector_hdr {
    uint32_t magic;
    uint32_t file;
    uint64_t page;
    uint64_t ver;
    uint32_t sector;
    uint32_t check;
};

static inline uint64_t
bc_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t
bc_sector_seed(uint32_t file, uint64_t page, uint64_t ver, uint32_t sector)
{
    return bc_mix64(bc_mix64(bc_mix64((uint64_t)file << 32 | sector) ^ page) ^ ver);
}

static inline void
bc_sector_fill(uint8_t *s, uint32_t file, uint64_t page, uint64_t ver, uint32_t sector)
{
    uint64_t seed = bc_sector_seed(file, page, ver, sector);
    struct bc_sector_hdr h = {BC_PAGE_MAGIC, file, page, ver, sector, (uint32_t)seed};
    memcpy(s, &h, sizeof(h));
    for (uint32_t i = sizeof(h); i < BC_SECTOR; i += 8) {
        uint64_t w = bc_mix64(seed + i);
        memcpy(s + i, &w, 8);
    }
}

/* Fill a page of page_size bytes with version ver of (file, page). */
static inline void
bc_page_fill(void *buf, uint32_t page_size, uint32_t file, uint64_t page, uint64_t ver)
{
    for (uint32_t s = 0; s < page_size / BC_SECTOR; s++)
        bc_sector_fill((uint8_t *)buf + (size_t)s * BC_SECTOR, file, page, ver, s);
}

/* The version a sector holds: >= 1, 0 for all zeros, BC_GARBAGE or BC_FOREIGN. */
static inline int64_t
bc_sector_version(const uint8_t *s, uint32_t file, uint64_t page, uint32_t sector)
{
    struct bc_sector_hdr h;
    memcpy(&h, s, sizeof(h));
    if (h.magic != BC_PAGE_MAGIC) {
        for (uint32_t i = 0; i < BC_SECTOR; i++)
            if (s[i])
                return BC_GARBAGE;
        return 0;
    }
    uint64_t seed = bc_sector_seed(h.file, h.page, h.ver, h.sector);
    if (h.check != (uint32_t)seed || h.ver == 0 || h.ver > INT64_MAX)
        return BC_GARBAGE;
    for (uint32_t i = sizeof(h); i < BC_SECTOR; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w != bc_mix64(seed + i))
            return BC_GARBAGE;
    }
    if (h.file != file || h.page != page || h.sector != sector)
        return BC_FOREIGN;
    return (int64_t)h.ver;
}

#endif /* BC_PAGE_H */
