/* SPDX-License-Identifier: MIT */
/* Crypt throughput: seal and open of 1350-byte datagrams for every method. */
#include "common/util.h"
#include "crypto/crypt.h"
#include "tests/bench/bench.h"

#include <stdio.h>
#include <string.h>

#define DGRAM_LEN 1350
#define BENCH_SECONDS 0.1 /* thread CPU time per attempt */
#define BENCH_TRIES 3      /* the best attempt is reported: the machine is shared */
#define NOW_MS 1790000000000ull

/* Seals a ring of buffers (as a sender seals fresh packets; resealing one buffer would
 * measure store-forwarding stalls of the bench itself) for about BENCH_SECONDS of CPU time.
 * Returns MB/s of datagram bytes. */
static double run_seal(struct crypt *c, size_t plen)
{
    enum { RING = 128 };
    static uint8_t ring[RING][DGRAM_LEN];
    memset(ring, 0x5a, sizeof(ring));
    size_t bytes = 0;
    double t0 = bench_cpu_s(), t;
    do {
        for (int i = 0; i < RING; i++)
            bytes += (size_t)crypt_seal(c, ring[i], plen, DGRAM_LEN, NOW_MS);
        t = bench_cpu_s() - t0;
    } while (t < BENCH_SECONDS);
    return (double)bytes / t / 1e6;
}

/* Opens datagrams sealed beforehand, in place. The secure mode refuses a replayed datagram
 * before it would decrypt, so every round seals a fresh ring (not timed) for all methods
 * alike; the ring fits in L2 so the figure is about the cipher, not about memory. */
static double run_open(struct crypt *tx, struct crypt *rx, size_t plen)
{
    enum { RING = 128 };
    static uint8_t ring[RING][DGRAM_LEN];
    const uint8_t *payload;
    size_t bytes = 0, rounds = 0, n = 0;
    double t = 0;

    do {
        for (int i = 0; i < RING; i++) {
            memset(ring[i] + crypt_head_len(tx), i, plen);
            crypt_seal(tx, ring[i], plen, DGRAM_LEN, NOW_MS);
        }
        double t0 = bench_cpu_s();
        for (int i = 0; i < RING; i++)
            n += crypt_open(rx, ring[i], DGRAM_LEN, NOW_MS, &payload) == (ssize_t)plen;
        t += bench_cpu_s() - t0;
        bytes += RING * DGRAM_LEN;
        rounds++;
    } while (t < BENCH_SECONDS);
    if (n != rounds * RING)
        printf("bench: crypt open failed for %zu of %zu datagrams\n", rounds * RING - n,
               rounds * RING);
    return (double)bytes / t / 1e6;
}

BENCH(bench_crypt)
{
    uint8_t kcp_key[CRYPT_KEY_LEN], sec_key[CRYPT_KEY_LEN];
    if (crypt_derive_key("it's a secrect", kcp_key) || crypt_derive_secure_key("it's a secrect",
                                                                               sec_key))
        return;
    struct crypt_rng *rng = crypt_rng_new();
    if (!rng)
        return;
    for (const char *const *m = crypt_method_names(); *m; m++) {
        const uint8_t *key = strcmp(*m, CRYPT_SECURE_METHOD) == 0 ? sec_key : kcp_key;
        struct crypt *tx = crypt_new_key(*m, key, crypt_rng_fill, rng, NULL);
        struct crypt *rx = crypt_new_key(*m, key, crypt_rng_fill, rng, NULL);
        if (tx && rx) {
            crypt_set_role(rx, CRYPT_ROLE_SERVER);
            size_t plen = DGRAM_LEN - crypt_head_len(tx) - crypt_tail_len(tx);
            char name[64];
            double seal = 0, open = 0;
            for (int i = 0; i < BENCH_TRIES; i++) {
                seal = MAX(seal, run_seal(tx, plen));
                open = MAX(open, run_open(tx, rx, plen));
            }
            snprintf(name, sizeof(name), "crypt.%s.seal", *m);
            bench_report(name, seal, "MB/s");
            snprintf(name, sizeof(name), "crypt.%s.open", *m);
            bench_report(name, open, "MB/s");
        }
        crypt_free(tx);
        crypt_free(rx);
    }
    crypt_rng_free(rng);
}
