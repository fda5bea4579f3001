/* SPDX-License-Identifier: MIT */
/*
 * crc32c.c -- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every
 * doublewrite store record, computed over every page a batch writes. Chosen once at run time,
 * fastest first: carry-less multiply folding over 64-byte vectors (AVX-512 VPCLMULQDQ), three
 * interleaved streams of the SSE4.2 crc32 instruction, a slicing-by-8 table. All give
 * identical results for any buffer alignment and length; the convention is zlib's: start from
 * 0, chain by passing the previous result (crc(crc(0, a), b) == crc(0, a || b)).
 */
#include "atomio_internal.h"

#include <string.h>

#if defined(HAVE_SSE42_INTRIN) && (defined(__x86_64__) || defined(__i386__))
#include <nmmintrin.h>
#define ATOMIO_CRC_HW 1
#if defined(HAVE_VPCLMUL_INTRIN) && defined(__x86_64__)
#include <immintrin.h>
#define ATOMIO_CRC_FOLD 1
#endif
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
#define CRC_LONG_BLOCK  1024u /* bytes per stream per round of the long loop (3 KiB a round) */
#define CRC_SHORT_BLOCK 128u  /* the same for the tail loop (384 B a round) */

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

/* build_shift() -- the product is linear in b as well, so each entry is the XOR of the entries
 * of its bits: 32 products per table, not 1024 (every process that checksums a page builds
 * the tables once, and short-lived ones, as an engine's connections, would pay for it each). */
static void
build_shift(uint32_t tab[4][256], uint32_t nbytes)
{
    uint32_t m = x_pow_bytes(nbytes);
    for (uint32_t j = 0; j < 4; j++) {
        tab[j][0] = 0;
        for (uint32_t b = 1; b < 256; b++) {
            uint32_t low = b & (0u - b); /* its lowest set bit */
            tab[j][b] = b == low ? gf_mulmod(b << (8 * j), m) : tab[j][low] ^ tab[j][b ^ low];
        }
    }
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

#ifdef ATOMIO_CRC_FOLD
/*
 * Folding. A message is a polynomial over GF(2), and its raw CRC register (no inversions) is
 * M(x) * x^32 mod P, so any shorter message congruent to M mod P has the same CRC. In the
 * reflected convention a 16-byte lane holding bytes [p, p + 16) is L(x) * x^64 + H(x), L and H
 * being its low and high quadwords read as reflected 64-bit polynomials. Moving the lane D
 * bytes further on multiplies it by x^(8D); modulo P that is
 *   L * (x^(64 + 8D) mod P) + H * (x^(8D) mod P),
 * a degree < 96 value that is simply XORed into the lane found D bytes on. PCLMULQDQ of two
 * reflected quadwords yields their product times x, so the constants below are
 * x^(64 + 8D - 1) mod P and x^(8D - 1) mod P, bit-reflected into a quadword. They were
 * computed for this file by multiplying x^0 by x one bit at a time, as x_pow_bytes() does.
 * At the end one 16-byte lane is left; its CRC, taken with the crc32 instruction, is the CRC
 * of everything folded into it.
 */
static const uint64_t fold_k[7][2] = {
    {0xe9a5d8be00000000ull, 0x1426a81500000000ull}, /* 256 bytes: the main loop's stride */
    {0x7ccbbbf200000000ull, 0x31c9460800000000ull}, /* 192 bytes */
    {0x6577b24500000000ull, 0x7417153f00000000ull}, /* 128 bytes */
    {0x1c19243b00000000ull, 0x75bba45b00000000ull}, /* 64 bytes: one vector */
    {0xa46ef4aa00000000ull, 0x6051243f00000000ull}, /* 48 bytes */
    {0x33ccbbbc00000000ull, 0xa2158b3400000000ull}, /* 32 bytes */
    {0x3743f7bd00000000ull, 0x3171d43000000000ull}, /* 16 bytes: one lane */
};
enum { FOLD_256, FOLD_192, FOLD_128, FOLD_64, FOLD_48, FOLD_32, FOLD_16 };

#define FOLD_TARGET "avx512f,vpclmulqdq,pclmul,sse4.2"

__attribute__((target(FOLD_TARGET))) static inline __m512i
fold_k512(int d)
{
    return _mm512_broadcast_i32x4(_mm_set_epi64x((long long)fold_k[d][1], (long long)fold_k[d][0]));
}

/* fold512() -- each 16-byte lane of x moved on by the distance k stands for, XOR y. */
__attribute__((target(FOLD_TARGET))) static inline __m512i
fold512(__m512i x, __m512i k, __m512i y)
{
    return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00),
                                     _mm512_clmulepi64_epi128(x, k, 0x11), y, 0x96);
}

__attribute__((target(FOLD_TARGET))) static inline __m128i
fold128(__m128i x, int d, __m128i y)
{
    __m128i k = _mm_set_epi64x((long long)fold_k[d][1], (long long)fold_k[d][0]);
    return _mm_xor_si128(
        _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), y);
}

/*
 * crc32c_fold() -- four 64-byte accumulators take 256 bytes a round; then they are folded
 * into one, the remaining whole vectors and lanes are folded in, and the crc32 instruction
 * takes the last lane and the tail. The starting register is XORed into the first four bytes,
 * which is what starting a reflected CRC from it means. Under 256 bytes: crc32c_hw().
 */
__attribute__((target(FOLD_TARGET))) static uint32_t
crc32c_fold(uint32_t crc, const void *buf, size_t len)
{
    if (len < 256)
        return crc32c_hw(crc, buf, len);
    const unsigned char *p = buf;
    __m512i x0 = _mm512_loadu_si512(p), x1 = _mm512_loadu_si512(p + 64);
    __m512i x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);
    x0 = _mm512_xor_si512(x0, _mm512_set_epi64(0, 0, 0, 0, 0, 0, 0, (long long)(uint32_t)~crc));
    p += 256;
    len -= 256;
    __m512i k = fold_k512(FOLD_256);
    while (len >= 256) {
        x0 = fold512(x0, k, _mm512_loadu_si512(p));
        x1 = fold512(x1, k, _mm512_loadu_si512(p + 64));
        x2 = fold512(x2, k, _mm512_loadu_si512(p + 128));
        x3 = fold512(x3, k, _mm512_loadu_si512(p + 192));
        p += 256;
        len -= 256;
    }
    __m512i x = fold512(x0, fold_k512(FOLD_192), x3);
    x = fold512(x1, fold_k512(FOLD_128), x);
    x = fold512(x2, fold_k512(FOLD_64), x);
    k = fold_k512(FOLD_64);
    while (len >= 64) {
        x = fold512(x, k, _mm512_loadu_si512(p));
        p += 64;
        len -= 64;
    }
    __m128i r = _mm512_extracti32x4_epi32(x, 3);
    r = fold128(_mm512_extracti32x4_epi32(x, 0), FOLD_48, r);
    r = fold128(_mm512_extracti32x4_epi32(x, 1), FOLD_32, r);
    r = fold128(_mm512_extracti32x4_epi32(x, 2), FOLD_16, r);
    while (len >= 16) {
        r = fold128(r, FOLD_16, _mm_loadu_si128((const __m128i *)(const void *)p));
        p += 16;
        len -= 16;
    }
    uint64_t c = _mm_crc32_u64(0, (uint64_t)_mm_cvtsi128_si64(r));
    c = _mm_crc32_u64(c, (uint64_t)_mm_extract_epi64(r, 1));
    /* crc32c_hw() starts from an inverted value and inverts its result: hand it ~c. */
    return crc32c_hw(~(uint32_t)c, p, len);
}
#endif

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);
static _Atomic(crc_fn) crc_impl;

atomio__crc_fn
atomio__crc32c_variant(enum atomio_crc_variant v)
{
    switch (v) {
    case ATOMIO_CRC_TABLE:
        return atomio__crc32c_sw;
    case ATOMIO_CRC_SSE42:
#ifdef ATOMIO_CRC_HW
        __builtin_cpu_init();
        if (__builtin_cpu_supports("sse4.2"))
            return crc32c_hw;
#endif
        return NULL;
    case ATOMIO_CRC_FOLD_AVX512:
#ifdef ATOMIO_CRC_FOLD
        __builtin_cpu_init();
        if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("pclmul") &&
            __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("vpclmulqdq"))
            return crc32c_fold;
#endif
        return NULL;
    }
    return NULL;
}

static crc_fn
pick_impl(void)
{
    crc_fn f = atomio__crc32c_variant(ATOMIO_CRC_FOLD_AVX512);
    if (!f)
        f = atomio__crc32c_variant(ATOMIO_CRC_SSE42);
    return f ? f : atomio__crc32c_sw;
}

bool
atomio__crc32c_hw_available(void)
{
    return pick_impl() != atomio__crc32c_sw;
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
