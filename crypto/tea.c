/* SPDX-License-Identifier: MIT */
/* TEA (16 rounds = 8 cycles, as kcp-go uses it) and XTEA (32 cycles) encryption only. */
#include "crypto/tea.h"

#include "common/wire.h"

#define TEA_DELTA 0x9e3779b9u
#define TEA16_CYCLES 8  /* x/crypto counts a round as half a cycle: 16 rounds = 8 cycles */
#define XTEA_CYCLES 32

void tea_key_init(struct tea_key *tk, const uint8_t key[static TEA_KEY_LEN])
{
    for (int i = 0; i < 4; i++)
        tk->k[i] = rd_u32be(key + 4 * i);
}

void tea16_encrypt(const struct tea_key *tk, const uint8_t in[static TEA_BLOCK_LEN],
                   uint8_t out[static TEA_BLOCK_LEN])
{
    uint32_t v0 = rd_u32be(in), v1 = rd_u32be(in + 4), sum = 0;
    const uint32_t k0 = tk->k[0], k1 = tk->k[1], k2 = tk->k[2], k3 = tk->k[3];

    for (int i = 0; i < TEA16_CYCLES; i++) {
        sum += TEA_DELTA;
        v0 += ((v1 << 4) + k0) ^ (v1 + sum) ^ ((v1 >> 5) + k1);
        v1 += ((v0 << 4) + k2) ^ (v0 + sum) ^ ((v0 >> 5) + k3);
    }
    put_u32be(put_u32be(out, v0), v1);
}

void xtea_encrypt(const struct tea_key *tk, const uint8_t in[static TEA_BLOCK_LEN],
                  uint8_t out[static TEA_BLOCK_LEN])
{
    uint32_t v0 = rd_u32be(in), v1 = rd_u32be(in + 4), sum = 0;

    for (int i = 0; i < XTEA_CYCLES; i++) {
        v0 += (((v1 << 4) ^ (v1 >> 5)) + v1) ^ (sum + tk->k[sum & 3]);
        sum += TEA_DELTA;
        v1 += (((v0 << 4) ^ (v0 >> 5)) + v0) ^ (sum + tk->k[(sum >> 11) & 3]);
    }
    put_u32be(put_u32be(out, v0), v1);
}
