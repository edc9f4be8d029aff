/* tests/unit/kern_bf16_convert.c - the op table's convert (f32 <-> bf16) on the CPU.
 *
 *   - f32 -> bf16: the op table (AVX512-BF16 where the CPU has it, threaded in chunks)
 *     against the portable kernel, bit for bit, and the AVX512 kernel alone against the
 *     portable one, on every top half (sign, exponent, 7 mantissa bits) with the 1024 low
 *     halves around 0, the tie 0x8000 and 0xffff (2^26 floats, a second); with
 *     MB_BF16_EXHAUSTIVE=1 on all 2^32 floats (tests/long/t9129, a minute);
 *   - bf16 -> f32 over all 2^16 bf16: exactly the bits shifted up, both kernels;
 *   - every length 0..70 at unaligned starts, and lengths across the chunk boundary;
 *   - f32 -> bf16 in place (dst == src) against the portable kernel out of place, on the
 *     cpu and cpu-guarded backends, lengths around the in-place rounds' edges;
 *   - against PyTorch's `.to(torch.bfloat16)` and `.to(torch.float32)`
 *     (tests/oracle/bf16_ops.py), on both paths: every sign/exponent/top-mantissa pattern
 *     with the low half 0, 1, 0x7fff, 0x8000 (ties), 0x8001, 0xffff, plus 2^20 random bit
 *     patterns (denormals, infinities, NaN included). Bitwise equal everywhere but NaN:
 *     PyTorch makes every NaN 0xffff (its AVX512 path; 0x7fc0 in its scalar one), mb keeps
 *     the sign and top payload and sets the quiet bit (as VCVTNEPS2BF16 does), so for a
 *     NaN the check is that both are NaN.
 */
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "kern/cpu/bf16.h"
#include "kern/ops.h"
#include "tests/lib/oracle.h"
#include "tests/lib/tap.h"

#define BLOCK ((int64_t)1 << 20)

static const struct mb_ops *ops;

static float f32_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static bool bf16_is_nan(uint16_t h)
{
    return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu);
}

/* The LOW half of the I-th float of a block: all 2^16 of them when ALL, else the 1024
 * that hold the rounding's edges (0x0000-0x00ff, 0x7f00-0x80ff, 0xff00-0xffff). */
static uint32_t low_half(int64_t i, bool all)
{
    if (all)
        return (uint32_t)i & 0xffffu;
    uint32_t j = (uint32_t)i & 1023u;
    return j < 256 ? j : (j < 768 ? 0x7f00u + (j - 256) : 0xff00u + (j - 768));
}

/* Floats in blocks: the op table and the AVX512 kernel against the portable. */
static void exhaustive_round(void)
{
    const char *env = getenv("MB_BF16_EXHAUSTIVE");
    bool all = env && !strcmp(env, "1");
    int64_t per_top = all ? 65536 : 1024;
    float *x = malloc(BLOCK * sizeof *x);
    uint16_t *want = malloc(BLOCK * sizeof *want), *got = malloc(BLOCK * sizeof *got);
    uint16_t *avx = malloc(BLOCK * sizeof *avx);
    bool have = mb_cpu_bf16_have_avx512();
    int64_t bad_table = 0, bad_avx = 0;
    uint32_t first_bad = 0;

    if (!x || !want || !got || !avx)
        abort();
    for (uint64_t base = 0; base < (uint64_t)65536 * (uint64_t)per_top; base += BLOCK) {
        for (int64_t i = 0; i < BLOCK; i++) {
            uint64_t at = base + (uint64_t)i;
            x[i] = f32_of((uint32_t)(at / (uint64_t)per_top) << 16 | low_half((int64_t)at, all));
        }
        mb_cpu_bf16_round_portable(want, x, BLOCK);
        ops->convert(ops->exec, got, MB_DTYPE_BF16, x, MB_DTYPE_F32, BLOCK);
        if (have)
            mb_cpu_bf16_round_avx512(avx, x, BLOCK);
        for (int64_t i = 0; i < BLOCK; i++) {
            if (got[i] != want[i] && !bad_table++)
                memcpy(&first_bad, &x[i], sizeof first_bad);
            bad_avx += have && avx[i] != want[i];
        }
    }
    tap_diag("AVX512-BF16 kernels: %s", have ? "yes" : "no (portable only)");
    const char *what = all ? "all 2^32 floats" : "2^26 floats (all tops, edge lows)";
    ok(bad_table == 0, "f32 -> bf16, %s: op table = portable kernel (%lld differ, "
       "first 0x%08x)", what, (long long)bad_table, first_bad);
    ok(bad_avx == 0, "f32 -> bf16, %s: AVX512-BF16 kernel = portable (%lld differ)", what,
       (long long)bad_avx);
    free(avx);
    free(got);
    free(want);
    free(x);
}

static void exhaustive_widen(void)
{
    uint16_t h[65536];
    float got[65536], port[65536], avx[65536];
    int bad = 0;

    for (int i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    ops->convert(ops->exec, got, MB_DTYPE_F32, h, MB_DTYPE_BF16, 65536);
    mb_cpu_bf16_widen_portable(port, h, 65536);
    if (mb_cpu_bf16_have_avx512())
        mb_cpu_bf16_widen_avx512(avx, h, 65536);
    else
        memcpy(avx, port, sizeof avx);
    for (int i = 0; i < 65536; i++) {
        uint32_t g, p, a;
        memcpy(&g, &got[i], 4), memcpy(&p, &port[i], 4), memcpy(&a, &avx[i], 4);
        bad += g != (uint32_t)i << 16 || p != g || a != g;
    }
    ok(bad == 0, "bf16 -> f32, all 2^16 bf16: the bits shifted up, op table and both kernels "
       "(%d differ)", bad);
}

/* Lengths 0..70 at starts 0..3 and lengths across chunk boundaries, against the portable
 * kernel, with guards after the end untouched. */
static void lengths(void)
{
    int64_t big = 3 * 16384 + 17;
    float *x = malloc((size_t)(big + 8) * sizeof *x);
    uint16_t *got = malloc((size_t)(big + 8) * 2), *want = malloc((size_t)(big + 8) * 2);
    float *back = malloc((size_t)(big + 8) * sizeof *back);
    uint64_t s = 0x243f6a8885a308d3ull;
    int bad = 0;

    if (!x || !got || !want || !back)
        abort();
    for (int64_t i = 0; i < big + 8; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = f32_of((uint32_t)s);
    }
    int64_t ns[] = {16383, 16384, 16385, 2 * 16384 + 31, big};
    for (int j = 0; j < 71 + 5; j++)
        for (int off = 0; off < 4; off++) {
            int64_t n = j < 71 ? j : ns[j - 71];
            memset(got, 0xa5, (size_t)(big + 8) * 2);
            ops->convert(ops->exec, got + off, MB_DTYPE_BF16, x + off, MB_DTYPE_F32, n);
            mb_cpu_bf16_round_portable(want + off, x + off, n);
            bad += memcmp(got + off, want + off, (size_t)n * 2) != 0;
            bad += got[off + n] != 0xa5a5 || (off && got[off - 1] != 0xa5a5);
            memset(back, 0xa5, (size_t)(big + 8) * sizeof *back);
            ops->convert(ops->exec, back + off, MB_DTYPE_F32, got + off, MB_DTYPE_BF16, n);
            for (int64_t i = 0; i < n; i++) {
                uint32_t u;
                memcpy(&u, &back[off + i], 4);
                bad += u != (uint32_t)got[off + i] << 16;
            }
            uint32_t guard;
            memcpy(&guard, &back[off + n], 4);
            bad += guard != 0xa5a5a5a5u;
        }
    ok(bad == 0, "every length 0..70 and across chunks, starts 0..3: both directions, nothing "
       "written outside (%d bad)", bad);
    free(back);
    free(want);
    free(got);
    free(x);
}

/* In place on backend O: N random floats (of S) converted over themselves give the
 * portable kernel's bf16 in the first 2N bytes, and nothing past the 4N is written. */
static bool in_place_ok(const struct mb_ops *o, int64_t n, uint64_t *s)
{
    size_t bytes = (size_t)(n + 16) * sizeof(float);
    float *x = malloc(bytes);
    uint16_t *want = malloc((size_t)(n + 1) * 2);
    char *got = malloc(bytes);
    void *dev = o->alloc(o->exec, bytes);
    if (!x || !want || !got || !dev)
        abort();
    for (int64_t i = 0; i < n + 16; i++) {
        *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
        x[i] = f32_of((uint32_t)*s);
    }
    mb_cpu_bf16_round_portable(want, x, n);
    o->from_host(o->exec, dev, x, bytes);
    o->convert(o->exec, dev, MB_DTYPE_BF16, dev, MB_DTYPE_F32, n);
    o->to_host(o->exec, got, dev, bytes);
    bool same = !memcmp(got, want, (size_t)n * 2) &&
                !memcmp(got + 4 * n, (char *)x + 4 * n, 16 * sizeof(float));
    o->free(o->exec, dev);
    free(got);
    free(want);
    free(x);
    return same;
}

static void in_place(void)
{
    int64_t ns[] = {0, 1, 2, 3, 4095, 4096, 4097, 8191, 8192, 8193, 16384 * 5 + 7,
                    (1 << 20) + 3, 3 << 20};
    const char *names[] = {"cpu", "cpu-guarded"};
    uint64_t s = 0x13198a2e03707344ull;
    for (int b = 0; b < 2; b++) {
        const struct mb_ops *o = mb_ops_find(names[b], "kern_bf16_convert");
        int bad = 0;
        for (size_t j = 0; o && j < sizeof ns / sizeof ns[0]; j++)
            bad += !in_place_ok(o, ns[j], &s);
        ok(o && bad == 0, "%s: f32 -> bf16 in place, %zu lengths up to 3 x 2^20: the portable "
           "kernel's bits, nothing written past the floats (%d bad)", names[b],
           sizeof ns / sizeof ns[0], bad);
    }
}

/* The sample's bits: every top half with six low halves, then random patterns. */
static uint32_t *sample(int64_t *n)
{
    static const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff};
    int64_t nl = sizeof lows / sizeof lows[0], nr = (int64_t)1 << 20;
    uint32_t *u = malloc((size_t)(65536 * nl + nr) * sizeof *u);
    uint64_t s = 0x13198a2e03707344ull;

    if (!u)
        abort();
    *n = 0;
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (int64_t l = 0; l < nl; l++)
            u[(*n)++] = hi << 16 | lows[l];
    for (int64_t i = 0; i < nr; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        u[(*n)++] = (uint32_t)(s >> 17);
    }
    return u;
}

static void against_torch(const char *script)
{
    int64_t n, shape[1];
    uint32_t *bits = sample(&n);
    uint16_t h[65536];
    struct mb_npy t16, t32;

    for (int i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    shape[0] = n;
    int w = mb_npy_write("f32bits.npy", MB_NPY_U4, 1, shape, bits);
    shape[0] = 65536;
    w |= mb_npy_write("bf16bits.npy", MB_NPY_U2, 1, shape, h);
    int rc = w < 0 ? -1 : oracle_run(script, "convert f32bits.npy bf16bits.npy t16.npy t32.npy");
    if (!ok(rc == 0, "PyTorch oracle ran (tests/oracle/bf16_ops.py convert, rc %d)", rc) ||
        !ok(mb_npy_read("t16.npy", &t16) == 0 && t16.dtype == MB_NPY_U2 && t16.count == n &&
            mb_npy_read("t32.npy", &t32) == 0 && t32.dtype == MB_NPY_U4 && t32.count == 65536,
            "oracle outputs read")) {
        free(bits);
        return;
    }
    const uint16_t *want16 = t16.data;
    const uint32_t *want32 = t32.data;
    uint16_t *got = malloc((size_t)n * 2);
    float back[65536];
    if (!got)
        abort();
    for (int portable = 0; portable < 2; portable++) {
        const char *path = portable ? "portable" : "default";
        int64_t bad = 0, nans = 0;
        uint32_t first = 0;

        mb_cpu_bf16_force_portable(portable);
        ops->convert(ops->exec, got, MB_DTYPE_BF16, (const float *)bits, MB_DTYPE_F32, n);
        for (int64_t i = 0; i < n; i++) {
            bool nan = bf16_is_nan(want16[i]);
            nans += nan;
            if ((nan ? !bf16_is_nan(got[i]) : got[i] != want16[i]) && !bad++)
                first = bits[i];
        }
        ok(bad == 0, "f32 -> bf16 (%s path) = torch .to(bfloat16) on %lld inputs (%lld NaN: "
           "NaN both; %lld differ, first 0x%08x)", path, (long long)n, (long long)nans,
           (long long)bad, first);
        ops->convert(ops->exec, back, MB_DTYPE_F32, h, MB_DTYPE_BF16, 65536);
        bad = 0;
        for (int i = 0; i < 65536; i++) {
            uint32_t u;
            memcpy(&u, &back[i], 4);
            bad += u != want32[i];
        }
        ok(bad == 0, "bf16 -> f32 (%s path) = torch .to(float32) bitwise on all 2^16 "
           "(%lld differ)", path, (long long)bad);
    }
    mb_cpu_bf16_force_portable(false);
    free(got);
    mb_npy_free(&t32);
    mb_npy_free(&t16);
    free(bits);
}

int main(void)
{
    char script[PATH_MAX];

    omp_set_num_threads(2);
    ops = mb_ops_cpu();
    if (!realpath("tests/oracle/bf16_ops.py", script)) {
        ok(0, "tests/oracle/bf16_ops.py found (run from the repository root)");
        return tap_done();
    }
    tap_enter_scratch_dir();
    exhaustive_round();
    exhaustive_widen();
    lengths();
    in_place();
    against_torch(script);
    return tap_done();
}
