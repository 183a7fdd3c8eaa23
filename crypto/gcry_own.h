/* SPDX-License-Identifier: MIT */
/* The part of libgcrypt's interface that crypto/crypt.c and crypto/qpp.c use, served by
 * ciphers of our own: included instead of <gcrypt.h> in builds without libgcrypt
 * (make GCRYPT=0). Block ciphers in CFB and ECB mode come from crypto/blkc.c (AES, Blowfish,
 * Twofish, CAST-128, triple DES, SM4), AES-128-GCM from crypto/gcm.c, PBKDF2-HMAC-SHA1 from
 * crypto/pbkdf2.c: every kcptun method is available.
 *
 * Only the calls as crypt.c and qpp.c make them are supported: in place (in == NULL), CFB
 * and GCM with one encrypt or decrypt call per setiv, ECB on whole blocks. */
#ifndef KTUN_GCRY_OWN_H
#define KTUN_GCRY_OWN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/blkc.h"
#include "crypto/gcm.h"
#include "crypto/pbkdf2.h"

typedef unsigned int gcry_error_t;
typedef struct own_gcry_hd *gcry_cipher_hd_t;

/* libgcrypt's numbers, so that values stay meaningful in logs and debuggers. */
enum {
    GCRY_CIPHER_3DES = 2,
    GCRY_CIPHER_CAST5 = 3,
    GCRY_CIPHER_BLOWFISH = 4,
    GCRY_CIPHER_AES128 = 7,
    GCRY_CIPHER_AES192 = 8,
    GCRY_CIPHER_AES256 = 9,
    GCRY_CIPHER_TWOFISH = 10,
    GCRY_CIPHER_SM4 = 320,
    GCRY_CIPHER_MODE_ECB = 1,
    GCRY_CIPHER_MODE_CFB = 2,
    GCRY_CIPHER_MODE_GCM = 9,
    GCRY_MD_SHA1 = 2,
    GCRY_KDF_PBKDF2 = 34,
    GCRYCTL_DISABLE_SECMEM = 37,
    GCRYCTL_INITIALIZATION_FINISHED = 38,
    GCRYCTL_INITIALIZATION_FINISHED_P = 39,
    GCRYCTL_SET_ALLOW_WEAK_KEY = 79,
};
#define GCRYPT_VERSION "ktun-own"
#define OWN_GCRY_ERROR 1u

struct own_gcry_hd {
    int mode;                    /* GCRY_CIPHER_MODE_* */
    enum blkc_algo algo;         /* the cipher (AES for GCM) */
    size_t key_len;              /* 0: any length the cipher takes */
    bool iv_set;                 /* setiv called since the last encrypt/decrypt */
    uint8_t iv[BLKC_MAX_BLOCK];  /* CFB: block-size IV; GCM: 12-byte nonce */
    uint8_t tag[GCM_TAG_BYTES];  /* GCM: tag of the last message */
    union {
        struct blkc bc; /* ECB, CFB */
        struct aes_gcm gcm; /* GCM */
    } u;
};

/* Nothing to initialise: every query reports "initialised". */
static inline gcry_error_t gcry_control(int cmd, ...)
{
    return cmd == GCRYCTL_INITIALIZATION_FINISHED_P;
}

static inline const char *gcry_check_version(const char *req)
{
    (void)req;
    return GCRYPT_VERSION;
}

static inline gcry_error_t gcry_cipher_open(gcry_cipher_hd_t *hd, int algo, int mode,
                                            unsigned int flags)
{
    enum blkc_algo a = BLKC_AES;
    size_t key_len = 0;
    *hd = NULL;
    switch (algo) {
    case GCRY_CIPHER_AES128: key_len = 16; break;
    case GCRY_CIPHER_AES192: key_len = 24; break;
    case GCRY_CIPHER_AES256: key_len = 32; break;
    case GCRY_CIPHER_3DES: a = BLKC_3DES; break;
    case GCRY_CIPHER_CAST5: a = BLKC_CAST5; break;
    case GCRY_CIPHER_BLOWFISH: a = BLKC_BLOWFISH; break;
    case GCRY_CIPHER_TWOFISH: a = BLKC_TWOFISH, key_len = 32; break;
    case GCRY_CIPHER_SM4: a = BLKC_SM4; break;
    default: return OWN_GCRY_ERROR;
    }
    if (flags || (mode != GCRY_CIPHER_MODE_CFB && mode != GCRY_CIPHER_MODE_ECB &&
                  !(mode == GCRY_CIPHER_MODE_GCM && a == BLKC_AES)))
        return OWN_GCRY_ERROR;
    *hd = calloc(1, sizeof(**hd));
    if (!*hd)
        return OWN_GCRY_ERROR;
    (*hd)->mode = mode;
    (*hd)->algo = a;
    (*hd)->key_len = key_len;
    return 0;
}

static inline void gcry_cipher_close(gcry_cipher_hd_t hd)
{
    if (hd)
        memset(hd, 0, sizeof(*hd));
    free(hd);
}

/* Weak DES keys are always accepted (as Go accepts them): the control call has no effect. */
static inline gcry_error_t gcry_cipher_ctl(gcry_cipher_hd_t hd, int cmd, void *buf, size_t len)
{
    (void)hd, (void)buf, (void)len;
    return cmd == GCRYCTL_SET_ALLOW_WEAK_KEY ? 0 : OWN_GCRY_ERROR;
}

static inline gcry_error_t gcry_cipher_setkey(gcry_cipher_hd_t hd, const void *key, size_t len)
{
    if (hd->key_len && len != hd->key_len)
        return OWN_GCRY_ERROR;
    if (hd->mode == GCRY_CIPHER_MODE_GCM)
        return aes_gcm_setkey(&hd->u.gcm, key, len) < 0 ? OWN_GCRY_ERROR : 0;
    return blkc_setkey(&hd->u.bc, hd->algo, key, len) < 0 ? OWN_GCRY_ERROR : 0;
}

static inline gcry_error_t gcry_cipher_setiv(gcry_cipher_hd_t hd, const void *iv, size_t len)
{
    size_t want = hd->mode == GCRY_CIPHER_MODE_GCM ? GCM_NONCE_BYTES : hd->u.bc.block_len;
    if (len != want || hd->mode == GCRY_CIPHER_MODE_ECB)
        return OWN_GCRY_ERROR;
    memcpy(hd->iv, iv, len);
    hd->iv_set = true;
    return 0;
}

/* In place, one message per setiv (CFB, GCM); ECB on whole blocks. */
static inline gcry_error_t own_gcry_crypt(gcry_cipher_hd_t hd, void *out, size_t outlen,
                                          const void *in, size_t inlen, bool decrypt)
{
    uint8_t *p = out;
    if (in || inlen)
        return OWN_GCRY_ERROR;
    if (hd->mode == GCRY_CIPHER_MODE_ECB) {
        size_t bl = hd->u.bc.block_len;
        if (decrypt || outlen % bl)
            return OWN_GCRY_ERROR;
        for (size_t i = 0; i < outlen; i += bl)
            blkc_encrypt(&hd->u.bc, p + i, p + i);
        return 0;
    }
    if (!hd->iv_set)
        return OWN_GCRY_ERROR;
    hd->iv_set = false;
    if (hd->mode == GCRY_CIPHER_MODE_GCM) {
        if (decrypt)
            aes_gcm_decrypt(&hd->u.gcm, hd->iv, p, outlen, hd->tag); /* compared by checktag */
        else
            aes_gcm_seal(&hd->u.gcm, hd->iv, p, outlen, hd->tag);
        return 0;
    }
    blkc_cfb(&hd->u.bc, hd->iv, p, outlen, decrypt);
    return 0;
}

static inline gcry_error_t gcry_cipher_encrypt(gcry_cipher_hd_t hd, void *out, size_t outlen,
                                               const void *in, size_t inlen)
{
    return own_gcry_crypt(hd, out, outlen, in, inlen, false);
}

static inline gcry_error_t gcry_cipher_decrypt(gcry_cipher_hd_t hd, void *out, size_t outlen,
                                               const void *in, size_t inlen)
{
    return own_gcry_crypt(hd, out, outlen, in, inlen, true);
}

static inline gcry_error_t gcry_cipher_gettag(gcry_cipher_hd_t hd, void *tag, size_t len)
{
    if (hd->mode != GCRY_CIPHER_MODE_GCM || len != GCM_TAG_BYTES)
        return OWN_GCRY_ERROR;
    memcpy(tag, hd->tag, len);
    return 0;
}

/* After a GCM decrypt, hd->tag holds the tag computed over the ciphertext: compared here in
 * constant time. */
static inline gcry_error_t gcry_cipher_checktag(gcry_cipher_hd_t hd, const void *tag,
                                                size_t len)
{
    const uint8_t *t = tag;
    uint8_t diff = 0;
    if (hd->mode != GCRY_CIPHER_MODE_GCM || len != GCM_TAG_BYTES)
        return OWN_GCRY_ERROR;
    for (size_t i = 0; i < len; i++)
        diff |= (uint8_t)(t[i] ^ hd->tag[i]);
    return diff ? OWN_GCRY_ERROR : 0;
}

static inline gcry_error_t gcry_kdf_derive(const void *pass, size_t pass_len, int algo,
                                           int subalgo, const void *salt, size_t salt_len,
                                           unsigned long iter, size_t out_len, void *out)
{
    if (algo != GCRY_KDF_PBKDF2 || subalgo != GCRY_MD_SHA1 || !iter)
        return OWN_GCRY_ERROR;
    pbkdf2_hmac_sha1(pass, pass_len, salt, salt_len, iter, out, out_len);
    return 0;
}

#endif
