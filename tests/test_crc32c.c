/* SPDX-License-Identifier: MIT */
/*
 * test_crc32c.c -- CRC32C against published vectors (RFC 3720 B.4 and the common check value),
 * for every variant this CPU can run (table, SSE4.2 streams, AVX-512 folding), at every buffer
 * alignment and many lengths, against a bit-at-a-time reference written here.
 */
#include "atomio_internal.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

struct vec {
    const char *name;
    unsigned char data[64];
    size_t len;
    uint32_t crc;
};

/* Bit-at-a-time reference: slow, obviously right. */
static uint32_t
ref_crc(uint32_t crc, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static struct vec vecs[8];
static size_t nvecs;

static void
setup_vecs(void)
{
    nvecs = 0;
    struct vec *v = &vecs[nvecs++];
    v->name = "check string 123456789";
    memcpy(v->data, "123456789", 9);
    v->len = 9;
    v->crc = 0xE3069283u;

    v = &vecs[nvecs++];
    v->name = "32 zero bytes";
    memset(v->data, 0, 32);
    v->len = 32;
    v->crc = 0x8A9136AAu;

    v = &vecs[nvecs++];
    v->name = "32 bytes of 0xff";
    memset(v->data, 0xff, 32);
    v->len = 32;
    v->crc = 0x62A8AB43u;

    v = &vecs[nvecs++];
    v->name = "32 ascending bytes";
    for (int i = 0; i < 32; i++)
        v->data[i] = (unsigned char)i;
    v->len = 32;
    v->crc = 0x46DD794Eu;

    v = &vecs[nvecs++];
    v->name = "32 descending bytes";
    for (int i = 0; i < 32; i++)
        v->data[i] = (unsigned char)(31 - i);
    v->len = 32;
    v->crc = 0x113FDB5Cu;

    v = &vecs[nvecs++];
    v->name = "iSCSI read PDU (RFC 3720 B.4)";
    static const unsigned char pdu[48] = {0x01, 0xc0, 0, 0,    0,    0, 0, 0,    0,    0, 0,    0,
                                          0,    0,    0, 0,    0x14, 0, 0, 0,    0,    0, 0x04, 0,
                                          0,    0,    0, 0x14, 0,    0, 0, 0x18, 0x28, 0, 0,    0,
                                          0,    0,    0, 0,    0x02, 0, 0, 0,    0,    0, 0,    0};
    memcpy(v->data, pdu, sizeof(pdu));
    v->len = sizeof(pdu);
    v->crc = 0xD9963A56u;

    v = &vecs[nvecs++];
    v->name = "empty";
    v->len = 0;
    v->crc = 0;

    v = &vecs[nvecs++];
    v->name = "quick brown fox";
    memcpy(v->data, "The quick brown fox jumps over the lazy dog", 43);
    v->len = 43;
    v->crc = 0x22620404u;
}

TestSuite(crc32c, .init = setup_vecs);

static const struct {
    enum atomio_crc_variant v;
    const char *name;
} variants[] = {
    {ATOMIO_CRC_TABLE, "table"},
    {ATOMIO_CRC_SSE42, "sse4.2"},
    {ATOMIO_CRC_FOLD_AVX512, "avx512-fold"},
};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

/* check_variants() -- every variant this CPU has, and the dispatched function, give want. */
static void
check_variants(uint32_t seed, const unsigned char *p, size_t len, uint32_t want)
{
    for (size_t i = 0; i < NVARIANTS; i++) {
        atomio__crc_fn f = atomio__crc32c_variant(variants[i].v);
        if (f)
            cr_assert_eq(f(seed, p, len), want, "%s: len %zu at %p seed %08x: got %08x want %08x",
                         variants[i].name, len, (const void *)p, seed, f(seed, p, len), want);
    }
    cr_assert_eq(atomio__crc32c(seed, p, len), want, "dispatched: len %zu seed %08x", len, seed);
}

Test(crc32c, each_variant_present_exactly_when_cpu_has_it)
{
    cr_assert_not_null(atomio__crc32c_variant(ATOMIO_CRC_TABLE));
#if defined(HAVE_SSE42_INTRIN) && defined(__x86_64__)
    __builtin_cpu_init();
    bool sse = __builtin_cpu_supports("sse4.2");
    cr_assert_eq(atomio__crc32c_variant(ATOMIO_CRC_SSE42) != NULL, sse);
#ifdef HAVE_VPCLMUL_INTRIN
    bool fold = sse && __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("avx512f") &&
                __builtin_cpu_supports("vpclmulqdq");
    cr_assert_eq(atomio__crc32c_variant(ATOMIO_CRC_FOLD_AVX512) != NULL, fold);
    if (!fold)
        cr_skip_test("skipped: this CPU has no AVX-512 VPCLMULQDQ; the folding variant was not "
                     "tested");
#else
    cr_assert_null(atomio__crc32c_variant(ATOMIO_CRC_FOLD_AVX512));
    cr_skip_test("skipped: built without the VPCLMULQDQ intrinsics; no folding variant");
#endif
#else
    cr_assert_null(atomio__crc32c_variant(ATOMIO_CRC_SSE42));
    cr_skip_test("skipped: built without the SSE4.2 intrinsic; only the table variant exists");
#endif
}

/* The folding variant takes 256-byte rounds, then 64-byte vectors, then 16-byte lanes, then
 * the crc32 instruction: every length around those steps, at every alignment to 64, with and
 * without a chained seed. */
Test(crc32c, folding_steps_match_reference)
{
    static unsigned char buf[2048 + 64];
    uint64_t s = 0x243F6A8885A308D3ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        buf[i] = (unsigned char)s;
    }
    for (size_t len = 240; len <= 1100; len++) {
        size_t off = len % 64;
        check_variants(0, buf + off, len, ref_crc(0, buf + off, len));
        check_variants(0xDEADBEEFu, buf + off, len, ref_crc(0xDEADBEEFu, buf + off, len));
    }
    check_variants(7, buf + 1, 2048, ref_crc(7, buf + 1, 2048));
}

Test(crc32c, table_fallback_matches_vectors)
{
    for (size_t i = 0; i < nvecs; i++) {
        cr_assert_eq(atomio__crc32c_sw(0, vecs[i].data, vecs[i].len), vecs[i].crc,
                     "sw %s: got %08x want %08x", vecs[i].name,
                     atomio__crc32c_sw(0, vecs[i].data, vecs[i].len), vecs[i].crc);
        cr_assert_eq(ref_crc(0, vecs[i].data, vecs[i].len), vecs[i].crc, "reference %s",
                     vecs[i].name);
    }
}

Test(crc32c, dispatched_matches_vectors)
{
    for (size_t i = 0; i < nvecs; i++)
        cr_assert_eq(atomio__crc32c(0, vecs[i].data, vecs[i].len), vecs[i].crc,
                     "%s (hw %d): got %08x want %08x", vecs[i].name,
                     (int)atomio__crc32c_hw_available(),
                     atomio__crc32c(0, vecs[i].data, vecs[i].len), vecs[i].crc);
}

Test(crc32c, hardware_path_is_used_when_cpu_has_it)
{
#if defined(HAVE_SSE42_INTRIN) && defined(__x86_64__)
    __builtin_cpu_init();
    cr_assert_eq(atomio__crc32c_hw_available(), __builtin_cpu_supports("sse4.2") != 0);
    if (!atomio__crc32c_hw_available())
        cr_skip_test("skipped: this CPU has no SSE4.2; only the table path was tested");
#else
    cr_assert(!atomio__crc32c_hw_available());
    cr_skip_test("skipped: built without the SSE4.2 intrinsic; only the table path exists");
#endif
}

Test(crc32c, every_alignment_and_length_agree)
{
    static unsigned char buf[4096 + 64];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 131u + (i >> 5) * 7u + 3u);
    for (size_t off = 0; off < 16; off++) {
        for (size_t len = 0; len <= 300; len++) {
            check_variants(0, buf + off, len, ref_crc(0, buf + off, len));
        }
        size_t big = sizeof(buf) - 64 - off;
        check_variants(0, buf + off, big, ref_crc(0, buf + off, big));
    }
}

Test(crc32c, chaining_equals_one_pass)
{
    unsigned char buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i ^ 0x5a);
    uint32_t whole = atomio__crc32c(0, buf, sizeof(buf));
    for (size_t cut = 0; cut <= sizeof(buf); cut += 37) {
        uint32_t a = atomio__crc32c(0, buf, cut);
        cr_assert_eq(atomio__crc32c(a, buf + cut, sizeof(buf) - cut), whole, "hw cut %zu", cut);
        uint32_t b = atomio__crc32c_sw(0, buf, cut);
        cr_assert_eq(atomio__crc32c_sw(b, buf + cut, sizeof(buf) - cut), whole, "sw cut %zu", cut);
    }
}

/* xorshift64: deterministic pseudo-random lengths, offsets and contents. */
static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The hardware path switches to three interleaved streams (3 KiB and 384 B rounds) and folds
 * them with precomputed shift tables: lengths at and around every round boundary, page sizes,
 * and random lengths at random alignments with random chain seeds must match the table path. */
Test(crc32c, interleaved_matches_table_on_random_lengths_and_alignments)
{
    enum { MAX = 70000 };
    unsigned char *src = malloc(MAX + 64);
    cr_assert(src);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < MAX + 64; i++)
        src[i] = (unsigned char)rnd(&s);
    static const size_t fixed[] = {383,  384,  385,  391,   392,   767,   768,   1151,  3071,
                                   3072, 3073, 3455, 3456,  4096,  6144,  6527,  8192,  9216,
                                   9600, 9601, 16383, 16384, 16385, 32768, 65536, 65536 + 7};
    size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
    for (size_t t = 0; t < nfixed + 400; t++) {
        size_t len = t < nfixed ? fixed[t] : (size_t)(rnd(&s) % MAX);
        size_t off = t < nfixed ? t % 16 : (size_t)(rnd(&s) % 64);
        uint32_t seed = t % 3 == 0 ? 0 : (uint32_t)rnd(&s);
        check_variants(seed, src + off, len, atomio__crc32c_sw(seed, src + off, len));
    }
    /* A 16 KiB page against the bit-at-a-time reference, so the table path is not its own
     * only witness. */
    check_variants(0, src + 3, 16384, ref_crc(0, src + 3, 16384));
    free(src);
}
