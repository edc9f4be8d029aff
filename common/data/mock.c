/* data/mock.c - numpy's default_rng(0).integers(1, 4096, ..., int32) rewritten in C:
 * SeedSequence (numpy/random/bit_generator.pyx), PCG64 XSL-RR 128/64 (numpy's
 * pcg64.h), 32-bit draws as the low then high half of a 64-bit one, and Lemire's
 * multiply-and-reject bounded integers (distributions.c). */
#include "data/mock.h"

#define SS_INIT_A 0x43b0d7e5U
#define SS_MULT_A 0x931e8875U
#define SS_INIT_B 0x8b51f9ddU
#define SS_MULT_B 0x58f38dedU
#define SS_MIX_L 0xca01f9ddU
#define SS_MIX_R 0x4973f715U
#define SS_POOL 4

#define MOCK_SEED 0
#define MOCK_MAX_LEN 4096

static uint32_t ss_hashmix(uint32_t v, uint32_t *hc)
{
    v ^= *hc;
    *hc *= SS_MULT_A;
    v *= *hc;
    return v ^ (v >> 16);
}

static uint32_t ss_mix(uint32_t x, uint32_t y)
{
    uint32_t r = SS_MIX_L * x - SS_MIX_R * y;
    return r ^ (r >> 16);
}

/* SeedSequence(entropy).generate_state(N32 words) for a one-word entropy */
static void seed_sequence(uint32_t entropy, uint32_t *state, int n32)
{
    uint32_t pool[SS_POOL], hc = SS_INIT_A;

    for (int i = 0; i < SS_POOL; i++)
        pool[i] = ss_hashmix(i == 0 ? entropy : 0, &hc);
    for (int src = 0; src < SS_POOL; src++)
        for (int dst = 0; dst < SS_POOL; dst++)
            if (src != dst)
                pool[dst] = ss_mix(pool[dst], ss_hashmix(pool[src], &hc));
    hc = SS_INIT_B;
    for (int i = 0; i < n32; i++) {
        uint32_t v = pool[i % SS_POOL] ^ hc;
        hc *= SS_MULT_B;
        v *= hc;
        state[i] = v ^ (v >> 16);
    }
}

struct pcg64 {
    unsigned __int128 state, inc;
    int has32;
    uint32_t next32;
};

#define PCG_MULT (((unsigned __int128)2549297995355413924ULL << 64) + 4865540595714422341ULL)

static uint64_t pcg64_next(struct pcg64 *g)
{
    g->state = g->state * PCG_MULT + g->inc;
    uint64_t x = (uint64_t)(g->state >> 64) ^ (uint64_t)g->state;
    unsigned rot = (unsigned)(g->state >> 122);
    return (x >> rot) | (x << ((-rot) & 63));
}

static void pcg64_seed(struct pcg64 *g, uint32_t seed)
{
    uint32_t w[8];
    uint64_t s[4];

    seed_sequence(seed, w, 8);
    for (int i = 0; i < 4; i++)
        s[i] = (uint64_t)w[2 * i] | (uint64_t)w[2 * i + 1] << 32;
    g->state = 0;
    g->inc = (((unsigned __int128)s[2] << 64 | s[3]) << 1) | 1u;
    g->has32 = 0;
    pcg64_next(g);
    g->state += (unsigned __int128)s[0] << 64 | s[1];
    pcg64_next(g);
}

static uint32_t pcg64_next32(struct pcg64 *g)
{
    if (g->has32) {
        g->has32 = 0;
        return g->next32;
    }
    uint64_t v = pcg64_next(g);
    g->has32 = 1;
    g->next32 = (uint32_t)(v >> 32);
    return (uint32_t)v;
}

/* Lemire: a uniform integer in [0, RNG] (RNG < 2^32 - 1) */
static uint32_t bounded_lemire(struct pcg64 *g, uint32_t rng)
{
    uint32_t excl = rng + 1;
    uint64_t m = (uint64_t)pcg64_next32(g) * excl;
    uint32_t left = (uint32_t)m;

    if (left < excl) {
        uint32_t threshold = (uint32_t)(-excl) % excl;
        while (left < threshold) {
            m = (uint64_t)pcg64_next32(g) * excl;
            left = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void mb_mock_sequence_lengths(int32_t *out)
{
    struct pcg64 g;

    pcg64_seed(&g, MOCK_SEED);
    for (int i = 0; i < MB_MOCK_SEQUENCES; i++)
        out[i] = 1 + (int32_t)bounded_lemire(&g, MOCK_MAX_LEN - 1 - 1);
}

void mb_mock_tokens(int32_t len, int64_t offset, int64_t n, int64_t vocab, int32_t eod,
                    int32_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t t = offset + i;
        out[i] = t == len - 1 ? eod : (int32_t)((t + 1) % vocab);
    }
}
