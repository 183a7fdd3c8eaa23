/* SPDX-License-Identifier: MIT */
/* Our AES-CFB and PBKDF2-HMAC-SHA1 (the builds without libgcrypt): FIPS-197 and RFC 6070
 * known answers, kcp-go's AES packet vectors and kcptun's derived keys. */
#include <stdlib.h>
#include <string.h>

#include "crypto/aes.h"
#include "crypto/pbkdf2.h"
#include "tests/test.h"
#include "tests/vec.h"

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    uint8_t *b = NULL;
    long len = vec_hex(hex, &b);
    if (len == (long)n)
        memcpy(out, b, n);
    else
        memset(out, 0xee, n);
    free(b);
}

/* FIPS-197 appendix C: plaintext 00112233..ff under keys 000102..1f of each length. */
TEST(aes_fips197_blocks)
{
    static const char *const want[] = {
        "69c4e0d86a7b0430d8cdb78070b4c55a",
        "dda97ca4864cdfe06eaf70a0ec0d7191",
        "8ea2b7ca516745bfeafc49904b496089",
    };
    uint8_t key[32], pt[16], ct[16], exp[16];
    for (unsigned i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    for (unsigned i = 0; i < 16; i++)
        pt[i] = (uint8_t)(i * 0x11);
    for (unsigned i = 0; i < 3; i++) {
        struct aes_key k;
        REQUIRE(aes_setkey(&k, key, 16 + 8 * i) == 0);
        aes_encrypt_block(&k, pt, ct);
        unhex(want[i], exp, sizeof(exp));
        CHECK_MEM(ct, exp, 16);
        memcpy(ct, pt, 16);
        aes_encrypt_block(&k, ct, ct); /* in place */
        CHECK_MEM(ct, exp, 16);
    }
    struct aes_key k;
    CHECK(aes_setkey(&k, key, 20) < 0);
    CHECK(aes_setkey(&k, key, 0) < 0);
}

/* kcp-go's AES packets (tests/vectors/crypt.json): CFB from byte 0 with kcp-go's IV. */
TEST(aes_cfb_kcp_vectors)
{
    cJSON *root = vec_load("crypt.json");
    REQUIRE(root);
    uint8_t iv[16];
    unhex(vec_str(root, "initial_vector_hex"), iv, sizeof(iv));
    const cJSON *m;
    int n = 0;
    cJSON_ArrayForEach(m, cJSON_GetObjectItem(root, "methods"))
    {
        const char *name = vec_str(m, "method");
        if (!name || strncmp(name, "aes", 3) != 0)
            continue;
        uint8_t *key = NULL;
        long klen = vec_hex_field(m, "key_hex", &key);
        struct aes_cfb c;
        REQUIRE(klen > 0 && aes_setkey(&c.key, key, (size_t)klen) == 0);
        free(key);
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItem(m, "vectors"))
        {
            uint8_t *pt = NULL, *ct = NULL;
            long len = vec_hex_field(v, "plaintext_hex", &pt);
            REQUIRE(len > 0 && vec_hex_field(v, "ciphertext_hex", &ct) == len);
            uint8_t *buf = malloc((size_t)len);
            REQUIRE(buf);
            memcpy(buf, pt, (size_t)len);
            aes_cfb_setiv(&c, iv);
            aes_cfb_encrypt(&c, buf, (size_t)len);
            CHECK_MEM(buf, ct, (size_t)len);
            /* decryption in uneven pieces continues the stream */
            aes_cfb_setiv(&c, iv);
            size_t cut1 = (size_t)len / 3, cut2 = cut1 + 17 < (size_t)len ? cut1 + 17 : cut1;
            aes_cfb_decrypt(&c, buf, cut1);
            aes_cfb_decrypt(&c, buf + cut1, cut2 - cut1);
            aes_cfb_decrypt(&c, buf + cut2, (size_t)len - cut2);
            CHECK_MEM(buf, pt, (size_t)len);
            free(buf);
            free(pt);
            free(ct);
            n++;
        }
    }
    CHECK(n >= 9); /* aes, aes-128, aes-192: several lengths each */
    cJSON_Delete(root);
}

TEST(sha1_known_answers)
{
    static const struct {
        const char *msg;
        const char *hex;
    } v[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    };
    for (unsigned i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        struct sha1 s;
        uint8_t got[SHA1_LEN], want[SHA1_LEN];
        sha1_init(&s);
        /* byte by byte, to cross block boundaries in every way */
        for (size_t j = 0; v[i].msg[j]; j++)
            sha1_update(&s, v[i].msg + j, 1);
        sha1_final(&s, got);
        unhex(v[i].hex, want, sizeof(want));
        CHECK_MEM(got, want, SHA1_LEN);
    }
    /* one million 'a' */
    struct sha1 s;
    uint8_t a[1000], got[SHA1_LEN], want[SHA1_LEN];
    memset(a, 'a', sizeof(a));
    sha1_init(&s);
    for (int i = 0; i < 1000; i++)
        sha1_update(&s, a, sizeof(a));
    sha1_final(&s, got);
    unhex("34aa973cd4c4daa4f61eeb2bdbad27316534016f", want, sizeof(want));
    CHECK_MEM(got, want, SHA1_LEN);
}

/* RFC 6070, and kcptun's derived keys (tests/vectors/pbkdf2.json). */
TEST(pbkdf2_known_answers)
{
    uint8_t got[25], want[25];
    pbkdf2_hmac_sha1("password", 8, "salt", 4, 1, got, 20);
    unhex("0c60c80f961f0e71f3a9b524af6012062fe037a6", want, 20);
    CHECK_MEM(got, want, 20);
    pbkdf2_hmac_sha1("password", 8, "salt", 4, 4096, got, 20);
    unhex("4b007901b765489abead49d926f721d065a429c1", want, 20);
    CHECK_MEM(got, want, 20);
    pbkdf2_hmac_sha1("passwordPASSWORDpassword", 24, "saltSALTsaltSALTsaltSALTsaltSALTsalt", 36,
                     4096, got, 25);
    unhex("3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038", want, 25);
    CHECK_MEM(got, want, 25);
    pbkdf2_hmac_sha1("pass\0word", 9, "sa\0lt", 5, 4096, got, 16);
    unhex("56fa6aa75548099dcc37d7f03425e0c3", want, 16);
    CHECK_MEM(got, want, 16);

    cJSON *root = vec_load("pbkdf2.json");
    REQUIRE(root);
    const cJSON *v;
    int n = 0;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(root, "vectors"))
    {
        uint8_t *exp = NULL, key[32];
        const char *pw = vec_str(v, "password");
        REQUIRE(pw && vec_hex_field(v, "derived_key_hex", &exp) == 32);
        pbkdf2_hmac_sha1(pw, strlen(pw), "kcp-go", 6, 4096, key, sizeof(key));
        CHECK_MEM(key, exp, sizeof(key));
        free(exp);
        n++;
    }
    CHECK_EQ(n, 4);
    cJSON_Delete(root);
}
