/* SPDX-License-Identifier: MIT */
/* The part of libgcrypt's interface that crypto/crypt.c uses, served by our AES in CFB
 * and ECB mode (crypto/aes.c) and PBKDF2-HMAC-SHA1 (crypto/pbkdf2.c): included instead of <gcrypt.h> in
 * builds without libgcrypt (make GCRYPT=0). Only AES-128/192/256 in CFB (the
 * kcptun methods) and ECB mode (the QPP pads, crypto/qpp.c) open; the
 * method table leaves out the methods that libgcrypt alone provides (blowfish, twofish, cast5,
 * 3des, sm4, aes-128-gcm), so the GCM calls below are never reached and report failure. */
#ifndef KTUN_AES_GCRY_H
#define KTUN_AES_GCRY_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/aes.h"
#include "crypto/pbkdf2.h"

typedef unsigned int gcry_error_t;
typedef struct aes_gcry_hd *gcry_cipher_hd_t;

/* libgcrypt's numbers, so that values stay meaningful in logs and debuggers. */
enum {
    GCRY_CIPHER_3DES = 2, /* named by crypt.c's weak-key rule, never opened here */
    GCRY_CIPHER_AES128 = 7,
    GCRY_CIPHER_AES192 = 8,
    GCRY_CIPHER_AES256 = 9,
    GCRY_CIPHER_MODE_ECB = 1,
    GCRY_CIPHER_MODE_CFB = 2,
    GCRY_CIPHER_MODE_GCM = 8,
    GCRY_MD_SHA1 = 2,
    GCRY_KDF_PBKDF2 = 34,
    GCRYCTL_DISABLE_SECMEM = 37,
    GCRYCTL_INITIALIZATION_FINISHED = 38,
    GCRYCTL_INITIALIZATION_FINISHED_P = 39,
    GCRYCTL_SET_ALLOW_WEAK_KEY = 79,
};
#define GCRYPT_VERSION "ktun-aes"
#define AES_GCRY_ERROR 1u

struct aes_gcry_hd {
    struct aes_cfb cfb;
    size_t key_len; /* the algorithm's key length */
    int mode;       /* GCRY_CIPHER_MODE_CFB or _ECB */
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
    size_t key_len = algo == GCRY_CIPHER_AES128   ? 16
                     : algo == GCRY_CIPHER_AES192 ? 24
                     : algo == GCRY_CIPHER_AES256 ? 32
                                                  : 0;
    *hd = NULL;
    if (!key_len || (mode != GCRY_CIPHER_MODE_CFB && mode != GCRY_CIPHER_MODE_ECB) || flags)
        return AES_GCRY_ERROR;
    *hd = calloc(1, sizeof(**hd));
    if (!*hd)
        return AES_GCRY_ERROR;
    (*hd)->key_len = key_len;
    (*hd)->mode = mode;
    return 0;
}

static inline void gcry_cipher_close(gcry_cipher_hd_t hd)
{
    if (hd)
        memset(hd, 0, sizeof(*hd));
    free(hd);
}

static inline gcry_error_t gcry_cipher_ctl(gcry_cipher_hd_t hd, int cmd, void *buf, size_t len)
{
    (void)hd, (void)cmd, (void)buf, (void)len;
    return AES_GCRY_ERROR;
}

static inline gcry_error_t gcry_cipher_setkey(gcry_cipher_hd_t hd, const void *key, size_t len)
{
    if (len != hd->key_len || aes_setkey(&hd->cfb.key, key, len) < 0)
        return AES_GCRY_ERROR;
    return 0;
}

static inline gcry_error_t gcry_cipher_setiv(gcry_cipher_hd_t hd, const void *iv, size_t len)
{
    if (len != AES_BLOCK_LEN)
        return AES_GCRY_ERROR;
    aes_cfb_setiv(&hd->cfb, iv);
    return 0;
}

/* In place only (in == NULL), as crypt.c and qpp.c call it; ECB on whole blocks. */
static inline gcry_error_t gcry_cipher_encrypt(gcry_cipher_hd_t hd, void *out, size_t outlen,
                                               const void *in, size_t inlen)
{
    if (in || inlen)
        return AES_GCRY_ERROR;
    if (hd->mode == GCRY_CIPHER_MODE_ECB) {
        uint8_t *p = out;
        if (outlen % AES_BLOCK_LEN)
            return AES_GCRY_ERROR;
        for (size_t i = 0; i < outlen; i += AES_BLOCK_LEN)
            aes_encrypt_block(&hd->cfb.key, p + i, p + i);
        return 0;
    }
    aes_cfb_encrypt(&hd->cfb, out, outlen);
    return 0;
}

static inline gcry_error_t gcry_cipher_decrypt(gcry_cipher_hd_t hd, void *out, size_t outlen,
                                               const void *in, size_t inlen)
{
    if (in || inlen || hd->mode != GCRY_CIPHER_MODE_CFB)
        return AES_GCRY_ERROR;
    aes_cfb_decrypt(&hd->cfb, out, outlen);
    return 0;
}

static inline gcry_error_t gcry_cipher_gettag(gcry_cipher_hd_t hd, void *tag, size_t len)
{
    (void)hd, (void)len;
    memset(tag, 0, len);
    return AES_GCRY_ERROR;
}

static inline gcry_error_t gcry_cipher_checktag(gcry_cipher_hd_t hd, const void *tag,
                                                size_t len)
{
    (void)hd, (void)tag, (void)len;
    return AES_GCRY_ERROR;
}

static inline gcry_error_t gcry_kdf_derive(const void *pass, size_t pass_len, int algo,
                                           int subalgo, const void *salt, size_t salt_len,
                                           unsigned long iter, size_t out_len, void *out)
{
    if (algo != GCRY_KDF_PBKDF2 || subalgo != GCRY_MD_SHA1 || !iter)
        return AES_GCRY_ERROR;
    pbkdf2_hmac_sha1(pass, pass_len, salt, salt_len, iter, out, out_len);
    return 0;
}

#endif
