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
 * Zero-extension ("shift") operators for the interleaved hardware path. The raw CRC register
 * (no pre/post inversion) after a message is linear: crc(s, a || b) = s' ^ crc(0, b) where s'
 * is crc(s, a) run through |b| zero bytes, and running a register r through k zero bytes is the
 * GF(2) product r * x^(8k) mod P. For a fixed k that product is linear in r, so it is four
 * 256-entry table lookups, one per byte of r (shift_tab[j][b] = (b << 8j) * x^(8k) mod P).
 */
#define CRC_LONG_BLOCK 1024u /* bytes per stream per round of the long loop (3 KiB a round) */
#define CRC_SHORT_BLOCK 128u /* the same for the tail loop (384 B a round) */

static uint32_t shift_long[4][256];
static uint32_t shift_short[4][256];
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/*
 * gf_mulmod() -- a * b mod P in the reflected representation (bit 31 is x^0, bit 0 is x^31):
 * walk a's terms from x^0 upward while b is multiplied by x once per step.
 */
static uint32_t
gf_mulmod(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    for (uint32_t bit = 1u << 31; bit != 0 && a != 0; bit >>= 1) {
        if (a & bit) {
            prod ^= b;
            a ^= bit;
        }
        b = (b >> 1) ^ (CRC32C_POLY & (0u - (b & 1u)));
    }
    return prod;
}

/* x_pow_bytes() -- x^(8 * nbytes) mod P, by multiplying x^0 by x one bit at a time. */
static uint32_t
x_pow_bytes(uint32_t nbytes)
{
    uint32_t r = 1u << 31;
    for (uint32_t i = 0; i < 8 * nbytes; i++)
        r = (r >> 1) ^ (CRC32C_POLY & (0u - (r & 1u)));
    return r;
}

static void
build_shift(uint32_t tab[4][256], uint32_t nbytes)
{
    uint32_t m = x_pow_bytes(nbytes);
    for (uint32_t j = 0; j < 4; j++)
        for (uint32_t b = 0; b < 256; b++)
            tab[j][b] = gf_mulmod(b << (8 * j), m);
}

static void
build_shift_tables(void)
{
    build_shift(shift_long, CRC_LONG_BLOCK);
    build_shift(shift_short, CRC_SHORT_BLOCK);
}

static inline uint32_t
crc_shift(const uint32_t tab[4][256], uint32_t r)
{
    return tab[0][r & 0xffu] ^ tab[1][(r >> 8) & 0xffu] ^ tab[2][(r >> 16) & 0xffu] ^
           tab[3][r >> 24];
}

/*
 * crc_rounds() -- the interleaved core: while at least three blocks remain, run three
 * independent crc32 streams over three consecutive blocks (the instruction has a latency of
 * about three cycles but issues once a cycle, so one dependent stream uses a third of it),
 * then fold them: c = shift(shift(a) ^ b) ^ c.
 */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
crc_rounds(uint64_t c, const unsigned char **pp, size_t *lenp, size_t block,
           const uint32_t tab[4][256])
{
    const unsigned char *p = *pp;
    size_t len = *lenp;
    while (len >= 3 * block) {
        uint64_t c1 = 0, c2 = 0;
        const unsigned char *end = p + block;
        do {
            uint64_t v0, v1, v2;
            memcpy(&v0, p, 8);
            memcpy(&v1, p + block, 8);
            memcpy(&v2, p + 2 * block, 8);
            c = _mm_crc32_u64(c, v0);
            c1 = _mm_crc32_u64(c1, v1);
            c2 = _mm_crc32_u64(c2, v2);
            p += 8;
        } while (p < end);
        c = crc_shift(tab, crc_shift(tab, (uint32_t)c) ^ (uint32_t)c1) ^ (uint32_t)c2;
        p += 2 * block;
        len -= 3 * block;
    }
    *pp = p;
    *lenp = len;
    return c;
}

/*
 * crc32c_hw() -- head bytes to an 8-byte boundary, the long and short interleaved loops, then
 * a single stream for the rest (under 384 bytes). Compiled for sse4.2 only in this function,
 * so the rest of the library keeps the baseline ISA and still runs anywhere.
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
    if (len >= 3 * CRC_SHORT_BLOCK) {
        pthread_once(&shift_once, build_shift_tables);
        c = crc_rounds(c, &p, &len, CRC_LONG_BLOCK, shift_long);
        c = crc_rounds(c, &p, &len, CRC_SHORT_BLOCK, shift_short);
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
