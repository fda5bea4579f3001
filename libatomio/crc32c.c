/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c -- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * doublewrite store record. The SSE4.2 crc32 instruction is used when the CPU has it (chosen
 * once at run time), a slicing-by-8 table otherwise. Both give identical results for any
 * buffer alignment and length; the convention is zlib's: start from 0, chain by passing the
 * previous result (crc(crc(0, a), b) == crc(0, a || b)).
 */
#include "atomio_internal.h"

#include <string.h>

#if defined(HAVE_SSE42_INTRIN) && (defined(__x86_64__) || defined(__i386__))
#include <nmmintrin.h>
#define ATOMIO_CRC_HW 1
#endif

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/*
 * build_tables() -- slicing-by-8 tables: table[0] is the classic byte-at-a-time table,
 * table[k][b] is the CRC of byte b followed by k zero bytes, so eight table lookups advance
 * the CRC by eight bytes at once.
 */
static void
build_tables(void)
{
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t c = b;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        crc_table[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; b++)
        for (int k = 1; k < 8; k++)
            crc_table[k][b] =
                (crc_table[k - 1][b] >> 8) ^ crc_table[0][crc_table[k - 1][b] & 0xffu];
}

static inline uint64_t
load_le64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint32_t
atomio__crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    pthread_once(&table_once, build_tables);
    crc = ~crc;
    /* Bytes up to an 8-byte boundary, so the wide loads below are aligned on the common path
     * (memcpy makes them correct either way). */
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xffu];
        len--;
    }
    while (len >= 8) {
        uint64_t v = load_le64(p) ^ crc;
        crc = crc_table[7][v & 0xffu] ^ crc_table[6][(v >> 8) & 0xffu] ^
              crc_table[5][(v >> 16) & 0xffu] ^ crc_table[4][(v >> 24) & 0xffu] ^
              crc_table[3][(v >> 32) & 0xffu] ^ crc_table[2][(v >> 40) & 0xffu] ^
              crc_table[1][(v >> 48) & 0xffu] ^ crc_table[0][(v >> 56) & 0xffu];
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xffu];
        len--;
    }
    return ~crc;
}

#ifdef ATOMIO_CRC_HW
/*
 * crc32c_hw() -- the SSE4.2 instruction, eight bytes per step. Compiled for sse4.2 only in
 * this function, so the rest of the library keeps the baseline ISA and still runs anywhere.
 */
__attribute__((target("sse4.2"))) static uint32_t
crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;
    while (len > 0 && ((uintptr_t)p & 7u) != 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, sizeof(v));
        c = _mm_crc32_u64(c, v);
        p += 8;
        len -= 8;
    }
    while (len > 0) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        len--;
    }
    return ~(uint32_t)c;
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static _Atomic(crc_fn) crc_impl;

static crc_fn
pick_impl(void)
{
#ifdef ATOMIO_CRC_HW
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_hw;
#endif
    return atomio__crc32c_sw;
}

bool
atomio__crc32c_hw_available(void)
{
#ifdef ATOMIO_CRC_HW
    return pick_impl() == crc32c_hw;
#else
    return false;
#endif
}

uint32_t
atomio__crc32c(uint32_t crc, const void *buf, size_t len)
{
    crc_fn f = atomic_load_explicit(&crc_impl, memory_order_relaxed);
    if (!f) {
        /* Racing threads compute the same answer; whichever store wins is fine. */
        f = pick_impl();
        atomic_store_explicit(&crc_impl, f, memory_order_relaxed);
    }
    return f(crc, buf, len);
}
