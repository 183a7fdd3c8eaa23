/* SPDX-License-Identifier: MIT */
/* Our block ciphers and AES-GCM (crypto/blkc.c, crypto/gcm.c; the builds without libgcrypt
 * use them): the standards' known answers, and kcp-go's CFB packet vectors for every block
 * method, checked in every build. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "crypto/blkc.h"
#include "crypto/gcm.h"
#include "tests/test.h"
#include "tests/vec.h"

/* Encrypts the hex block |pt_hex| under |key_hex| and compares with |ct_hex|. */
static void check_block(enum blkc_algo algo, const char *key_hex, const char *pt_hex,
                        const char *ct_hex)
{
    uint8_t *key = NULL, *pt = NULL, *ct = NULL, out[BLKC_MAX_BLOCK];
    long kl = vec_hex(key_hex, &key), pl = vec_hex(pt_hex, &pt), cl = vec_hex(ct_hex, &ct);
    struct blkc *b = malloc(sizeof(*b));
    REQUIRE(b && kl > 0 && pl > 0 && cl == pl);
    CHECK_EQ(blkc_setkey(b, algo, key, (size_t)kl), 0);
    CHECK_EQ((long)b->block_len, pl);
    blkc_encrypt(b, pt, out);
    CHECK_MEM(out, ct, (size_t)cl);
    blkc_encrypt(b, pt, pt); /* in place */
    CHECK_MEM(pt, ct, (size_t)cl);
    free(b);
    free(key);
    free(pt);
    free(ct);
}

/* Schneier's / Eric Young's Blowfish vectors. */
TEST(blowfish_known_answers)
{
    check_block(BLKC_BLOWFISH, "0000000000000000", "0000000000000000", "4ef997456198dd78");
    check_block(BLKC_BLOWFISH, "ffffffffffffffff", "ffffffffffffffff", "51866fd5b85ecb8a");
    check_block(BLKC_BLOWFISH, "3000000000000000", "1000000000000001", "7d856f9a613063f2");
    check_block(BLKC_BLOWFISH, "fedcba9876543210", "0123456789abcdef", "0aceab0fc6a0a28d");
}

/* RFC 2144 Appendix B.1: 128-, 80- and 40-bit keys. */
TEST(cast5_rfc2144_known_answers)
{
    check_block(BLKC_CAST5, "0123456712345678234567893456789a", "0123456789abcdef",
                "238b4fe5847e44b2");
    check_block(BLKC_CAST5, "01234567123456782345", "0123456789abcdef", "eb6a711a2c02271b");
    check_block(BLKC_CAST5, "0123456712", "0123456789abcdef", "7ac816d16e9b302e");
}

/* DES (FIPS 46-3) through triple DES with one key three times, and SP 800-67's example with
 * three distinct keys. */
TEST(des3_known_answers)
{
    /* One key three times is single DES: the classic worked example and FIPS 81's. */
    check_block(BLKC_3DES, "133457799bbcdff1133457799bbcdff1133457799bbcdff1",
                "0123456789abcdef", "85e813540f0ab405");
    check_block(BLKC_3DES, "0123456789abcdef0123456789abcdef0123456789abcdef",
                "4e6f772069732074", "3fa40e8a984d4815");
    /* NIST SP 800-67 example: three distinct keys. */
    check_block(BLKC_3DES, "0123456789abcdef23456789abcdef01456789abcdef0123",
                "5468652071756663", "a826fd8ce53b855f");
}

/* The Twofish paper's known answers (zero key and plaintext; and the ecb_tbl keys). */
TEST(twofish_known_answers)
{
    check_block(BLKC_TWOFISH, "00000000000000000000000000000000",
                "00000000000000000000000000000000", "9f589f5cf6122c32b6bfec2f2ae8c35a");
    check_block(BLKC_TWOFISH, "0123456789abcdeffedcba98765432100011223344556677",
                "00000000000000000000000000000000", "cfd1d2e5a9be9cdf501f13b892bd2248");
    check_block(BLKC_TWOFISH,
                "0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff",
                "00000000000000000000000000000000", "37527be0052334b89f0cfccae87cfa20");
    check_block(BLKC_TWOFISH,
                "0000000000000000000000000000000000000000000000000000000000000000",
                "00000000000000000000000000000000", "57ff739d4dc92c1bd7fc01700cc8216f");
}

/* GB/T 32907-2016 example 1. */
TEST(sm4_known_answer)
{
    check_block(BLKC_SM4, "0123456789abcdeffedcba9876543210", "0123456789abcdeffedcba9876543210",
                "681edf34d206965e86b3e94f536e4246");
}

/* kcp-go's packet vectors (tests/vectors/crypt.json) through blkc_cfb directly, both ways. */
TEST(blkc_cfb_kcpgo_vectors)
{
    static const struct {
        const char *method;
        enum blkc_algo algo;
    } map[] = {{"aes", BLKC_AES},       {"aes-128", BLKC_AES}, {"aes-192", BLKC_AES},
               {"blowfish", BLKC_BLOWFISH}, {"twofish", BLKC_TWOFISH}, {"cast5", BLKC_CAST5},
               {"3des", BLKC_3DES},     {"sm4", BLKC_SM4}};
    cJSON *root = vec_load("crypt.json");
    REQUIRE(root);
    uint8_t *iv = NULL;
    REQUIRE(vec_hex_field(root, "initial_vector_hex", &iv) == 16);
    struct blkc *b = malloc(sizeof(*b));
    REQUIRE(b);
    unsigned found = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(root, "methods"))
    {
        const char *name = vec_str(m, "method");
        size_t i = 0;
        while (i < ARRAY_SIZE(map) && strcmp(map[i].method, name) != 0)
            i++;
        if (i == ARRAY_SIZE(map))
            continue;
        found++;
        uint8_t *key = NULL;
        long kl = vec_hex_field(m, "key_hex", &key);
        REQUIRE(kl > 0);
        CHECK_EQ(blkc_setkey(b, map[i].algo, key, (size_t)kl), 0);
        CHECK_EQ((long)b->block_len, (long)vec_int(m, "block_size", 0));
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(m, "vectors"))
        {
            uint8_t *pt = NULL, *ct = NULL;
            long len = vec_hex_field(v, "plaintext_hex", &pt);
            REQUIRE(len > 0 && vec_hex_field(v, "ciphertext_hex", &ct) == len);
            uint8_t *buf = malloc((size_t)len);
            REQUIRE(buf);
            memcpy(buf, pt, (size_t)len);
            blkc_cfb(b, iv, buf, (size_t)len, false);
            if (memcmp(buf, ct, (size_t)len) != 0)
                fprintf(stderr, "  %s: CFB encryption of %ld bytes differs\n", name, len);
            CHECK_MEM(buf, ct, (size_t)len);
            blkc_cfb(b, iv, buf, (size_t)len, true);
            CHECK_MEM(buf, pt, (size_t)len);
            free(buf);
            free(pt);
            free(ct);
        }
        free(key);
    }
    CHECK_EQ(found, ARRAY_SIZE(map));
    free(b);
    free(iv);
    cJSON_Delete(root);
}

/* McGrew and Viega's GCM test cases 1 to 3 (no additional data), and a forged tag. */
TEST(gcm_known_answers)
{
    static const struct {
        const char *key, *iv, *pt, *ct, *tag;
    } tc[] = {
        {"00000000000000000000000000000000", "000000000000000000000000", "", "",
         "58e2fccefa7e3061367f1d57a4e7455a"},
        {"00000000000000000000000000000000", "000000000000000000000000",
         "00000000000000000000000000000000", "0388dace60b6a392f328c2b971b2fe78",
         "ab6e47d42cec13bdf53a67b21257bddf"},
        {"feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
         "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
         "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
         "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
         "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985",
         "4d5c2af327cd64a62cf35abd2ba6fab4"},
    };
    struct aes_gcm *g = malloc(sizeof(*g));
    REQUIRE(g);
    for (size_t i = 0; i < ARRAY_SIZE(tc); i++) {
        uint8_t *key = NULL, *iv = NULL, *pt = NULL, *ct = NULL, *tag = NULL, got[16];
        long kl = vec_hex(tc[i].key, &key), il = vec_hex(tc[i].iv, &iv);
        long pl = vec_hex(tc[i].pt, &pt), cl = vec_hex(tc[i].ct, &ct);
        REQUIRE(kl == 16 && il == 12 && pl == cl && vec_hex(tc[i].tag, &tag) == 16);
        CHECK_EQ(aes_gcm_setkey(g, key, 16), 0);
        aes_gcm_seal(g, iv, pt, (size_t)pl, got);
        if (pl)
            CHECK_MEM(pt, ct, (size_t)cl);
        CHECK_MEM(got, tag, 16);
        CHECK(aes_gcm_open(g, iv, pt, (size_t)pl, tag));
        uint8_t *again = NULL;
        vec_hex(tc[i].pt, &again);
        if (pl)
            CHECK_MEM(pt, again, (size_t)pl);
        tag[15] ^= 1;
        aes_gcm_seal(g, iv, pt, (size_t)pl, got); /* back to ciphertext */
        CHECK(!aes_gcm_open(g, iv, pt, (size_t)pl, tag));
        free(again);
        free(key);
        free(iv);
        free(pt);
        free(ct);
        free(tag);
    }
    free(g);
}
