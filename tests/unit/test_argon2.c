/* SPDX-License-Identifier: MIT */
/* Our BLAKE2b and Argon2id (crypto/argon2.c, the size profile's secure-mode key derivation):
 * RFC 7693's and RFC 9106's known answers, and the same output as libsodium's
 * crypto_generichash and crypto_pwhash across lengths and costs, checked in every build. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/argon2.h"
#include "crypto/crypt.h"
#include "tests/test.h"
#include "tests/vec.h"

static void check_hex(const uint8_t *got, const char *want_hex)
{
    uint8_t *want = NULL;
    long n = vec_hex(want_hex, &want);
    REQUIRE(n > 0);
    CHECK_MEM(got, want, (size_t)n);
    free(want);
}

/* RFC 7693 Appendix A: BLAKE2b-512("abc"). */
TEST(blake2b_rfc7693_abc)
{
    struct blake2b s;
    uint8_t out[64];
    blake2b_init(&s, 64);
    blake2b_update(&s, "abc", 3);
    blake2b_final(&s, out);
    check_hex(out, "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
                   "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923");
}

/* Every message length 0..300 (empty, partial, exact and multiple blocks), fed in one piece
 * and in 7-byte pieces, for digest lengths 1, 20, 32 and 64: libsodium's answer. */
TEST(blake2b_matches_libsodium)
{
    static const size_t outs[] = {1, 20, 32, 64};
    uint8_t msg[300], want[64], got[64];
    REQUIRE(sodium_init() >= 0);
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    for (size_t o = 0; o < sizeof(outs) / sizeof(outs[0]); o++) {
        for (size_t len = 0; len <= sizeof(msg); len++) {
            struct blake2b s;
            crypto_generichash(want, outs[o], msg, len, NULL, 0);
            blake2b_init(&s, outs[o]);
            blake2b_update(&s, msg, len);
            blake2b_final(&s, got);
            CHECK_MEM(got, want, outs[o]);
            blake2b_init(&s, outs[o]);
            for (size_t k = 0; k < len; k += 7)
                blake2b_update(&s, msg + k, len - k < 7 ? len - k : 7);
            blake2b_final(&s, got);
            CHECK_MEM(got, want, outs[o]);
        }
    }
}

/* RFC 9106 section 5.3: four lanes, a secret and associated data. */
TEST(argon2id_rfc9106_known_answer)
{
    uint8_t pwd[32], salt[16], secret[8], ad[12], out[32];
    memset(pwd, 1, sizeof(pwd));
    memset(salt, 2, sizeof(salt));
    memset(secret, 3, sizeof(secret));
    memset(ad, 4, sizeof(ad));
    CHECK_EQ(argon2id(out, sizeof(out), pwd, sizeof(pwd), salt, sizeof(salt), secret,
                      sizeof(secret), ad, sizeof(ad), 3, 32, 4),
             0);
    check_hex(out, "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659");
}

/* crypto_pwhash(ALG_ARGON2ID13) is Argon2id with one lane: the same tags for several passes,
 * memory sizes (a memory not a multiple of 4 KiB rounds down to one), password, salt and tag
 * lengths, and the secure mode's own parameters. */
TEST(argon2id_matches_libsodium)
{
    static const struct {
        unsigned passes, kib;
        size_t pwd_len, out_len;
    } cases[] = {
        {1, 8, 0, 16},   {1, 9, 5, 32},     {2, 64, 14, 64},   {3, 130, 100, 65},
        {4, 256, 32, 100}, {1, 1024, 8, 1024}, {3, 8192, 14, 32},
    };
    static const uint8_t salt[crypto_pwhash_SALTBYTES] = "ktun-xsalsa20-v1";
    char pwd[128];
    uint8_t want[1024], got[1024];
    REQUIRE(sodium_init() >= 0);
    for (size_t i = 0; i < sizeof(pwd); i++)
        pwd[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        REQUIRE(crypto_pwhash(want, cases[i].out_len, pwd, cases[i].pwd_len, salt,
                              cases[i].passes, (size_t)cases[i].kib * 1024,
                              crypto_pwhash_ALG_ARGON2ID13) == 0);
        CHECK_EQ(argon2id(got, cases[i].out_len, pwd, cases[i].pwd_len, salt, sizeof(salt),
                          NULL, 0, NULL, 0, cases[i].passes, cases[i].kib, 1),
                 0);
        CHECK_MEM(got, want, cases[i].out_len);
    }
    CHECK_EQ(cases[6].passes, CRYPT_SECURE_OPSLIMIT);
    CHECK_EQ(cases[6].kib * 1024ull, CRYPT_SECURE_MEMLIMIT);
}

/* Parameters Argon2 does not allow are refused, not run. */
TEST(argon2id_rejects_bad_parameters)
{
    uint8_t out[32];
    CHECK_EQ(argon2id(out, sizeof(out), "p", 1, "saltsalt", 8, NULL, 0, NULL, 0, 0, 64, 1), -1);
    CHECK_EQ(argon2id(out, sizeof(out), "p", 1, "saltsalt", 8, NULL, 0, NULL, 0, 1, 7, 1), -1);
    CHECK_EQ(argon2id(out, sizeof(out), "p", 1, "saltsalt", 8, NULL, 0, NULL, 0, 1, 64, 0), -1);
    CHECK_EQ(argon2id(out, sizeof(out), "p", 1, "saltsalt", 8, NULL, 0, NULL, 0, 1, 31, 4), -1);
    CHECK_EQ(argon2id(out, 3, "p", 1, "saltsalt", 8, NULL, 0, NULL, 0, 1, 64, 1), -1);
}
