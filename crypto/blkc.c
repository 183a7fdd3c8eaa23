/* SPDX-License-Identifier: MIT */
/* Dispatch and CFB mode over the block ciphers of blkc.h. */
#include "crypto/blkc.h"

#include <string.h>

int blkc_setkey(struct blkc *b, enum blkc_algo algo, const uint8_t *key, size_t len)
{
    b->algo = algo;
    b->block_len = 8;
    switch (algo) {
    case BLKC_AES:
        b->block_len = AES_BLOCK_LEN;
        return aes_setkey(&b->u.aes, key, len);
    case BLKC_BLOWFISH:
        return blowfish_setkey(&b->u.bf, key, len);
    case BLKC_TWOFISH:
        b->block_len = 16;
        return twofish_setkey(&b->u.tf, key, len);
    case BLKC_CAST5:
        return cast5_setkey(&b->u.cast, key, len);
    case BLKC_3DES:
        return des3_setkey(&b->u.des, key, len);
    case BLKC_SM4:
        b->block_len = 16;
        return sm4_setkey(&b->u.sm4, key, len);
    }
    return -1;
}

void blkc_encrypt(const struct blkc *b, const uint8_t *in, uint8_t *out)
{
    switch (b->algo) {
    case BLKC_AES:
        aes_encrypt_block(&b->u.aes, in, out);
        break;
    case BLKC_BLOWFISH:
        blowfish_encrypt(&b->u.bf, in, out);
        break;
    case BLKC_TWOFISH:
        twofish_encrypt(&b->u.tf, in, out);
        break;
    case BLKC_CAST5:
        cast5_encrypt(&b->u.cast, in, out);
        break;
    case BLKC_3DES:
        des3_encrypt(&b->u.des, in, out);
        break;
    case BLKC_SM4:
        sm4_encrypt(&b->u.sm4, in, out);
        break;
    }
}

void blkc_cfb(const struct blkc *b, const uint8_t *iv, uint8_t *p, size_t len, bool decrypt)
{
    const size_t bl = b->block_len;
    uint8_t reg[BLKC_MAX_BLOCK], ks[BLKC_MAX_BLOCK]; /* feedback register, keystream */

    memcpy(reg, iv, bl);
    for (size_t off = 0; off < len; off += bl) {
        size_t n = len - off < bl ? len - off : bl;
        uint8_t *blk = p + off;
        blkc_encrypt(b, reg, ks);
        if (decrypt)
            memcpy(reg, blk, n); /* the ciphertext feeds the next block */
        for (size_t i = 0; i < n; i++)
            blk[i] ^= ks[i];
        if (!decrypt)
            memcpy(reg, blk, n);
    }
}
