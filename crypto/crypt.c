/* SPDX-License-Identifier: MIT */
/* Crypt layer: method table, kcptun framing (nonce + CRC32), CFB/salsa20/xor, secure dispatch. */
#include "crypto/crypt.h"

#ifndef KTUN_NO_GCRYPT
#include <gcrypt.h>
#else
#include "crypto/gcry_own.h" /* ciphers and PBKDF2 of our own, see there */
#endif
#ifdef KTUN_NO_ISAL
#include "fec/isal_own.h" /* ISA-L's CRCs in portable C (make ISAL=0) */
#else
#include <isa-l/crc.h>
#endif
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/util.h"
#include "common/wire.h"
#include "crypto/argon2.h"
#include "crypto/secure.h"
#include "crypto/tea.h"

#define KCP_NONCE_LEN 16
#define KCP_CRC_OFF 16
#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN 16
#define KDF_SALT "kcp-go"
#define KDF_ITERATIONS 4096
#define XOR_SALT "sH3CIVoF#rWLtJo6"
#define XOR_ITERATIONS 32
#define XOR_TABLE_LEN 1500
/* Nonce bytes fetched from the rng at once: a multiple of both nonce sizes (16 and 24), so a
 * nonce never straddles two fetches and the n-th nonce is bytes n*size .. of the rng stream.
 * One getrandom() per datagram would cost about as much as AES-CFB on the whole datagram. */
#define NONCE_POOL_LEN 1536

/* Argon2id salt of the secure mode: fixed, so that both ends derive the same key from the
 * password alone (docs/secure-mode.md). 16 ASCII bytes. */
static const uint8_t secure_salt[crypto_pwhash_SALTBYTES] = "ktun-xsalsa20-v1";

/* kcp-go's fixed CFB IV (crypt.go initialVector); 8-byte ciphers use its first 8 bytes. */
static const uint8_t cfb_iv[16] = {167, 115, 79, 156, 18, 172, 27, 1,
                                   164, 21, 242, 193, 252, 120, 230, 107};

enum crypt_kind {
    KIND_GCRY_CFB, /* libgcrypt block cipher in CFB mode */
    KIND_TEA_CFB,  /* our TEA-16 in CFB */
    KIND_XTEA_CFB, /* our XTEA in CFB */
    KIND_SALSA20,  /* libsodium salsa20, nonce = datagram bytes 0..7 */
    KIND_XOR,      /* fixed 1500-byte table */
    KIND_NONE,     /* identity, header still present */
    KIND_GCM,      /* AES-128-GCM, nonce 12 in front, tag 16 behind, no CRC */
    KIND_NULL,     /* no crypt layer at all: no header, no check */
    KIND_SECURE,   /* xsalsa20-poly1305 */
};

struct crypt_method_desc {
    const char *name;     /* --crypt value */
    enum crypt_kind kind; /* implementation */
    int algo;             /* GCRY_CIPHER_* for KIND_GCRY_CFB */
    size_t key_len;       /* bytes of the derived key used */
    size_t block_len;     /* CFB block size */
};

static const struct crypt_method_desc methods[] = {
    {"aes", KIND_GCRY_CFB, GCRY_CIPHER_AES256, 32, 16},
    {"aes-128", KIND_GCRY_CFB, GCRY_CIPHER_AES128, 16, 16},
    {"aes-192", KIND_GCRY_CFB, GCRY_CIPHER_AES192, 24, 16},
    {"salsa20", KIND_SALSA20, 0, 32, 0},
    {"blowfish", KIND_GCRY_CFB, GCRY_CIPHER_BLOWFISH, 32, 8},
    {"twofish", KIND_GCRY_CFB, GCRY_CIPHER_TWOFISH, 32, 16},
    {"cast5", KIND_GCRY_CFB, GCRY_CIPHER_CAST5, 16, 8},
    {"3des", KIND_GCRY_CFB, GCRY_CIPHER_3DES, 24, 8},
    {"tea", KIND_TEA_CFB, 0, 16, 8},
    {"xtea", KIND_XTEA_CFB, 0, 16, 8},
    {"xor", KIND_XOR, 0, 32, 0},
    {"sm4", KIND_GCRY_CFB, GCRY_CIPHER_SM4, 16, 16},
    {"none", KIND_NONE, 0, 0, 0},
    {"aes-128-gcm", KIND_GCM, GCRY_CIPHER_AES128, 16, 16},
    {"null", KIND_NULL, 0, 0, 0},
    {CRYPT_SECURE_METHOD, KIND_SECURE, 0, 32, 0},
};

static const char *const method_names[] = {
    "aes", "aes-128", "aes-192", "salsa20", "blowfish", "twofish", "cast5",
    "3des", "tea", "xtea", "xor", "sm4", "none", "aes-128-gcm", "null", CRYPT_SECURE_METHOD,
    NULL,
};

_Static_assert(ARRAY_SIZE(method_names) == ARRAY_SIZE(methods) + 1, "method name list");

struct crypt {
    const struct crypt_method_desc *m; /* method */
    uint8_t key[CRYPT_KEY_LEN];        /* derived key */
    gcry_cipher_hd_t hd;               /* KIND_GCRY_CFB, KIND_GCM: opened and keyed once */
    struct tea_key tea;                /* KIND_TEA_CFB / KIND_XTEA_CFB */
    uint8_t *xor_table;                /* KIND_XOR: XOR_TABLE_LEN bytes */
    struct secure *sec;                /* KIND_SECURE */
    crypt_rng_fn *rng;                 /* nonce source */
    void *rng_user;                    /* its argument */
    size_t pool_pos;                   /* next unused byte of pool */
    uint8_t pool[NONCE_POOL_LEN];      /* random bytes for the next nonces */
    bool cpu_has_avx;                  /* vzeroupper is available (see kcp_crc32) */
    struct crypt_stats stats;          /* counters */
};

_Static_assert(NONCE_POOL_LEN % KCP_NONCE_LEN == 0 && NONCE_POOL_LEN % SECURE_NONCE_LEN == 0 &&
                   NONCE_POOL_LEN % GCM_NONCE_LEN == 0,
               "nonce pool holds whole nonces");

/* Initialises libgcrypt before its first use, so that a process whose method needs neither
 * PBKDF2 nor a libgcrypt cipher ("none", the secure mode) never runs (or maps) its setup code.
 * Returns 0 or ERR_INVAL. */
static int gcry_ready(void)
{
    if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
        if (!gcry_check_version(GCRYPT_VERSION))
            return ERR_INVAL;
        gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
        gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    return 0;
}

int crypt_lib_init(void)
{
    return sodium_init() < 0 ? ERR_INVAL : 0;
}

void crypt_rng_sodium(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    randombytes_buf(buf, len);
}

struct crypt_rng {
    uint8_t key[crypto_stream_chacha20_KEYBYTES]; /* current key, replaced on every fill */
};

struct crypt_rng *crypt_rng_new(void)
{
    if (crypt_lib_init() < 0)
        return NULL;
    struct crypt_rng *r = malloc(sizeof(*r));
    if (r)
        randombytes_buf(r->key, sizeof(r->key));
    return r;
}

void crypt_rng_free(struct crypt_rng *r)
{
    if (!r)
        return;
    sodium_memzero(r, sizeof(*r));
    free(r);
}

void crypt_rng_fill(void *user, uint8_t *buf, size_t len)
{
    /* Nonce 0 gives the output, nonce 1 the next key: one key never serves twice. */
    static const uint8_t out_nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    static const uint8_t key_nonce[crypto_stream_chacha20_NONCEBYTES] = {1};
    struct crypt_rng *r = user;
    uint8_t next[sizeof(r->key)];
    crypto_stream_chacha20(buf, len, out_nonce, r->key);
    crypto_stream_chacha20(next, sizeof(next), key_nonce, r->key);
    memcpy(r->key, next, sizeof(next));
    sodium_memzero(next, sizeof(next));
}

const char *const *crypt_method_names(void)
{
    return method_names;
}

static const struct crypt_method_desc *find_method(const char *name)
{
    for (size_t i = 0; name && i < ARRAY_SIZE(methods); i++)
        if (strcmp(methods[i].name, name) == 0)
            return &methods[i];
    return NULL;
}

bool crypt_method_is_known(const char *method)
{
    return find_method(method) != NULL;
}

int crypt_pbkdf2_sha1(const void *pass, size_t pass_len, const char *salt, unsigned long iter,
                      uint8_t *out, size_t out_len)
{
    /* libgcrypt wants a non-NULL passphrase even when it is empty. */
    static const char empty[1] = "";
    if (gcry_ready() < 0)
        return ERR_INVAL;
    gcry_error_t e = gcry_kdf_derive(pass_len ? pass : empty, pass_len, GCRY_KDF_PBKDF2,
                                     GCRY_MD_SHA1, salt, strlen(salt), iter, out_len, out);
    return e ? ERR_INVAL : 0;
}

int crypt_derive_key(const char *password, uint8_t out[static CRYPT_KEY_LEN])
{
    int rc = crypt_lib_init();
    if (rc < 0)
        return rc;
    return crypt_pbkdf2_sha1(password, strlen(password), KDF_SALT, KDF_ITERATIONS, out,
                       CRYPT_KEY_LEN);
}

int crypt_derive_secure_key(const char *password, uint8_t out[static CRYPT_KEY_LEN])
{
    int rc = crypt_lib_init();
    if (rc < 0)
        return rc;
#ifdef KTUN_SIZE_PROFILE
    /* Our small Argon2id: libsodium's would add about 50 KB of unrolled code. */
    if (argon2id(out, CRYPT_KEY_LEN, password, strlen(password), secure_salt,
                 sizeof(secure_salt), NULL, 0, NULL, 0, CRYPT_SECURE_OPSLIMIT,
                 CRYPT_SECURE_MEMLIMIT / 1024, 1) != 0)
        return ERR_NOMEM;
#else
    if (crypto_pwhash(out, CRYPT_KEY_LEN, password, strlen(password), secure_salt,
                      CRYPT_SECURE_OPSLIMIT, CRYPT_SECURE_MEMLIMIT,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return ERR_NOMEM;
#endif
    return 0;
}

void crypt_error(const char *method, int err, char *msg, size_t cap)
{
    if (!cap)
        return;
    if (err != ERR_INVAL || crypt_method_is_known(method)) {
        snprintf(msg, cap, "crypt: cannot set up method '%s': %s", method ? method : "",
                 err_str(err));
        return;
    }
    int n = snprintf(msg, cap, "crypt: unknown method '%s' (known:", method ? method : "");
    for (size_t i = 0; method_names[i] && n >= 0 && (size_t)n < cap; i++)
        n += snprintf(msg + n, cap - (size_t)n, " %s", method_names[i]);
    if (n >= 0 && (size_t)n < cap)
        snprintf(msg + n, cap - (size_t)n, ")");
}

/* CRC32-IEEE as zlib's crc32() (ISA-L's reflected gzip CRC with initial value 0). */
static uint32_t kcp_crc32(const struct crypt *c, const uint8_t *p, size_t len)
{
    uint32_t crc = crc32_gzip_refl(0, p, len);
#if defined(__x86_64__) && !defined(KTUN_NO_ISAL)
    /* ISA-L's AVX-512 kernel returns with the upper vector state dirty, and every legacy-SSE
     * instruction after it (our xor loop, libgcrypt's AES-NI code) then pays a transition
     * penalty: measured 3x on the xor method. vzeroupper keeps the low 128 bits, which is all
     * that code compiled without AVX keeps in vector registers; the clobbers cover the rest. */
    if (c->cpu_has_avx)
        __asm__ volatile("vzeroupper" ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                         "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
                         "xmm15");
#else
    (void)c;
#endif
    return crc;
}

/* Keys the per-kind state of |c| from c->key. Returns 0, ERR_INVAL or ERR_NOMEM. */
static int setup_kind(struct crypt *c)
{
    const struct crypt_method_desc *m = c->m;

    switch (m->kind) {
    case KIND_GCRY_CFB:
        if (gcry_ready() < 0 || gcry_cipher_open(&c->hd, m->algo, GCRY_CIPHER_MODE_CFB, 0))
            return ERR_INVAL;
        /* Go does not reject DES weak keys; a password that yields one must still work. */
        if (m->algo == GCRY_CIPHER_3DES)
            gcry_cipher_ctl(c->hd, GCRYCTL_SET_ALLOW_WEAK_KEY, NULL, 1);
        return gcry_cipher_setkey(c->hd, c->key, m->key_len) ? ERR_INVAL : 0;
    case KIND_GCM:
        if (gcry_ready() < 0 || gcry_cipher_open(&c->hd, m->algo, GCRY_CIPHER_MODE_GCM, 0))
            return ERR_INVAL;
        return gcry_cipher_setkey(c->hd, c->key, m->key_len) ? ERR_INVAL : 0;
    case KIND_TEA_CFB:
    case KIND_XTEA_CFB:
        tea_key_init(&c->tea, m->kind == KIND_XTEA_CFB ? TEA_XTEA : TEA_16, c->key);
        return 0;
    case KIND_XOR:
        c->xor_table = malloc(XOR_TABLE_LEN);
        if (!c->xor_table)
            return ERR_NOMEM;
        return crypt_pbkdf2_sha1(c->key, CRYPT_KEY_LEN, XOR_SALT, XOR_ITERATIONS, c->xor_table,
                           XOR_TABLE_LEN);
    case KIND_SECURE:
        c->sec = secure_new(c->key, c->rng, c->rng_user);
        return c->sec ? 0 : ERR_NOMEM;
    case KIND_SALSA20:
    case KIND_NONE:
    case KIND_NULL:
        return 0;
    }
    return ERR_INVAL;
}

struct crypt *crypt_new_key(const char *method, const uint8_t key[static CRYPT_KEY_LEN],
                            crypt_rng_fn *rng, void *rng_user, int *err)
{
    struct crypt *c = NULL;
    int rc = crypt_lib_init();
    if (rc < 0)
        goto out;
    const struct crypt_method_desc *m = find_method(method);
    rc = ERR_INVAL;
    if (!m || !rng)
        goto out;
    rc = ERR_NOMEM;
    c = calloc(1, sizeof(*c));
    if (!c)
        goto out;
    c->m = m;
    c->rng = rng;
    c->rng_user = rng_user;
    c->pool_pos = NONCE_POOL_LEN;
#if defined(__x86_64__)
    c->cpu_has_avx = __builtin_cpu_supports("avx");
#endif
    memcpy(c->key, key, CRYPT_KEY_LEN);
    rc = setup_kind(c);
out:
    if (rc < 0) {
        crypt_free(c);
        c = NULL;
    }
    if (err)
        *err = rc < 0 ? rc : 0;
    return c;
}

struct crypt *crypt_new(const char *method, const char *password, crypt_rng_fn *rng,
                        void *rng_user, int *err)
{
    uint8_t key[CRYPT_KEY_LEN];
    const struct crypt_method_desc *m = find_method(method);
    int rc = ERR_INVAL;
    struct crypt *c = NULL;

    if (!m || !password)
        goto out;
    if (m->kind == KIND_NONE || m->kind == KIND_NULL) {
        memset(key, 0, sizeof(key)); /* unused: no derivation to pay for */
        rc = 0;
    } else if (m->kind == KIND_SECURE) {
        rc = crypt_derive_secure_key(password, key);
    } else {
        rc = crypt_derive_key(password, key);
    }
    if (rc == 0)
        c = crypt_new_key(method, key, rng, rng_user, &rc);
out:
    sodium_memzero(key, sizeof(key));
    if (err)
        *err = rc;
    return c;
}

void crypt_free(struct crypt *c)
{
    if (!c)
        return;
    if (c->hd)
        gcry_cipher_close(c->hd);
    secure_free(c->sec);
    if (c->xor_table)
        sodium_memzero(c->xor_table, XOR_TABLE_LEN);
    free(c->xor_table);
    sodium_memzero(c, sizeof(*c));
    free(c);
}

void crypt_set_role(struct crypt *c, enum crypt_role role)
{
    if (c->sec)
        secure_set_role(c->sec, role);
}

void crypt_set_start(struct crypt *c, uint64_t now_ms)
{
    if (c->sec)
        secure_set_start(c->sec, now_ms);
}

const char *crypt_method(const struct crypt *c)
{
    return c->m->name;
}

size_t crypt_head_len(const struct crypt *c)
{
    switch (c->m->kind) {
    case KIND_SECURE:
        return CRYPT_SECURE_HEAD_LEN;
    case KIND_GCM:
        return CRYPT_GCM_HEAD_LEN;
    case KIND_NULL:
        return 0;
    default:
        return CRYPT_KCP_HEAD_LEN;
    }
}

size_t crypt_tail_len(const struct crypt *c)
{
    switch (c->m->kind) {
    case KIND_SECURE:
        return CRYPT_SECURE_TAIL_LEN;
    case KIND_GCM:
        return CRYPT_GCM_TAIL_LEN;
    default:
        return 0;
    }
}

bool crypt_is_authenticated(const struct crypt *c)
{
    return c->m->kind == KIND_SECURE || c->m->kind == KIND_GCM;
}

const struct crypt_stats *crypt_get_stats(const struct crypt *c)
{
    return &c->stats;
}

typedef uint8_t vec16 __attribute__((vector_size(16)));

/* p[i] ^= table[i] for i < len, 16 bytes at a time (the byte loop is not vectorised at -O2;
 * memcpy keeps the unaligned loads and stores well-defined). */
static void xor_table_apply(const uint8_t *table, uint8_t *p, size_t len)
{
    size_t i = 0;
    for (; i + 16 <= len; i += 16) {
        vec16 a, b;
        memcpy(&a, p + i, 16);
        memcpy(&b, table + i, 16);
        a ^= b;
        memcpy(p + i, &a, 16);
    }
    for (; i < len; i++)
        p[i] ^= table[i];
}

/* Applies the kcptun cipher of |c| to the whole datagram |p| in place. */
static void kcp_cipher(struct crypt *c, uint8_t *p, size_t len, bool decrypt)
{
    switch (c->m->kind) {
    case KIND_GCRY_CFB:
        /* Cannot fail: the handle is keyed, the IV has the block size, in == out. */
        gcry_cipher_setiv(c->hd, cfb_iv, c->m->block_len);
        if (decrypt)
            gcry_cipher_decrypt(c->hd, p, len, NULL, 0);
        else
            gcry_cipher_encrypt(c->hd, p, len, NULL, 0);
        break;
    case KIND_TEA_CFB:
    case KIND_XTEA_CFB:
        tea_cfb(&c->tea, cfb_iv, p, len, decrypt);
        break;
    case KIND_SALSA20:
        crypto_stream_salsa20_xor(p + 8, p + 8, len - 8, p, c->key);
        break;
    case KIND_XOR:
        xor_table_apply(c->xor_table, p, MIN(len, (size_t)XOR_TABLE_LEN));
        break;
    case KIND_NONE:
    case KIND_GCM:
    case KIND_NULL:
    case KIND_SECURE:
        break;
    }
}

/* Copies the next |len| random bytes of the pool to |out|, refilling it from the rng. */
static void take_nonce(struct crypt *c, uint8_t *out, size_t len)
{
    if (c->pool_pos + len > NONCE_POOL_LEN) {
        c->rng(c->rng_user, c->pool, NONCE_POOL_LEN);
        c->pool_pos = 0;
    }
    memcpy(out, c->pool + c->pool_pos, len);
    c->pool_pos += len;
}

ssize_t crypt_seal(struct crypt *c, uint8_t *buf, size_t payload_len, size_t cap,
                   uint64_t now_ms)
{
    size_t total = crypt_head_len(c) + payload_len + crypt_tail_len(c);
    if (total > cap || total > CRYPT_MAX_DATAGRAM)
        return ERR_TOOBIG;
    if (c->sec) {
        take_nonce(c, buf, SECURE_NONCE_LEN);
        return (ssize_t)secure_seal(c->sec, buf, payload_len, now_ms);
    }
    if (c->m->kind == KIND_NULL)
        return (ssize_t)total;
    if (c->m->kind == KIND_GCM) {
        /* kcp-go's aeadCrypt: Seal(nonce, plaintext = everything after it, AAD empty). The
         * handle is keyed and the nonce has the length GCM wants: these calls cannot fail. */
        take_nonce(c, buf, GCM_NONCE_LEN);
        gcry_cipher_setiv(c->hd, buf, GCM_NONCE_LEN);
        gcry_cipher_encrypt(c->hd, buf + GCM_NONCE_LEN, payload_len, NULL, 0);
        gcry_cipher_gettag(c->hd, buf + GCM_NONCE_LEN + payload_len, GCM_TAG_LEN);
        return (ssize_t)total;
    }
    take_nonce(c, buf, KCP_NONCE_LEN);
    put_u32le(buf + KCP_CRC_OFF, kcp_crc32(c, buf + CRYPT_KCP_HEAD_LEN, payload_len));
    kcp_cipher(c, buf, total, false);
    return (ssize_t)total;
}

/* Opens an aes-128-gcm datagram in place: nonce 12 | ciphertext | tag 16. Returns the
 * plaintext length, or ERR_AUTH (counted: too short, or the tag does not verify). */
static ssize_t gcm_open(struct crypt *c, uint8_t *buf, size_t len)
{
    if (len < GCM_NONCE_LEN + GCM_TAG_LEN) {
        c->stats.in_short++;
        return ERR_AUTH;
    }
    size_t n = len - GCM_NONCE_LEN - GCM_TAG_LEN;
    gcry_cipher_setiv(c->hd, buf, GCM_NONCE_LEN);
    gcry_cipher_decrypt(c->hd, buf + GCM_NONCE_LEN, n, NULL, 0);
    if (gcry_cipher_checktag(c->hd, buf + GCM_NONCE_LEN + n, GCM_TAG_LEN) != 0) {
        c->stats.in_csum_errors++;
        return ERR_AUTH;
    }
    return (ssize_t)n;
}

ssize_t crypt_open(struct crypt *c, uint8_t *buf, size_t len, uint64_t now_ms,
                   const uint8_t **payload)
{
    ssize_t n;

    if (c->sec) {
        n = secure_open(c->sec, buf, len, now_ms, &c->stats);
    } else if (c->m->kind == KIND_NULL) {
        n = (ssize_t)len;
    } else if (c->m->kind == KIND_GCM) {
        n = gcm_open(c, buf, len);
    } else if (len < CRYPT_KCP_HEAD_LEN) {
        c->stats.in_short++;
        n = ERR_AUTH;
    } else {
        kcp_cipher(c, buf, len, true);
        n = (ssize_t)(len - CRYPT_KCP_HEAD_LEN);
        if (kcp_crc32(c, buf + CRYPT_KCP_HEAD_LEN, (size_t)n) != rd_u32le(buf + KCP_CRC_OFF)) {
            c->stats.in_csum_errors++;
            n = ERR_AUTH;
        }
    }
    if (n < 0)
        return n;
    c->stats.in_pkts++;
    *payload = buf + crypt_head_len(c);
    return n;
}

/* ---- mismatch probe ------------------------------------------------------------------- */

/* Methods tried by the probe: every method derived from kcptun's PBKDF2 key, in the table's
 * order ("null" is judged apart; the secure mode's Argon2id key is not derived). */
struct crypt_probe {
    size_t n;
    struct crypt *c[ARRAY_SIZE(methods)];
    uint8_t buf[CRYPT_MAX_DATAGRAM];
};

static void probe_rng(void *user, uint8_t *buf, size_t len)
{
    (void)user;
    memset(buf, 0, len); /* the probe only opens */
}

struct crypt_probe *crypt_probe_new(const char *password)
{
    uint8_t key[CRYPT_KEY_LEN];
    struct crypt_probe *p = calloc(1, sizeof(*p));
    if (!p || crypt_derive_key(password, key) < 0) {
        free(p);
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(methods); i++) {
        if (methods[i].kind == KIND_SECURE || methods[i].kind == KIND_NULL)
            continue;
        struct crypt *c = crypt_new_key(methods[i].name, key, probe_rng, NULL, NULL);
        if (c)
            p->c[p->n++] = c;
    }
    sodium_memzero(key, sizeof(key));
    return p;
}

void crypt_probe_free(struct crypt_probe *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++)
        crypt_free(p->c[i]);
    free(p);
}

/* True if |p| (|len| bytes) looks like a bare FEC-layer or KCP packet: kcptun's "null". */
static bool looks_bare(const uint8_t *p, size_t len)
{
    if (len < 24)
        return false;
    uint16_t type = rd_u16le(p + 4);
    if (type == 0xf1 || type == 0xf2)
        return len >= 8 + 24 || type == 0xf2;
    return p[4] >= 81 && p[4] <= 84 && rd_u32le(p + 20) <= len - 24;
}

const char *crypt_probe_identify(struct crypt_probe *p, const uint8_t *dgram, size_t len)
{
    if (len > sizeof(p->buf))
        return NULL;
    for (size_t i = 0; i < p->n; i++) {
        const uint8_t *payload;
        memcpy(p->buf, dgram, len);
        if (crypt_open(p->c[i], p->buf, len, 0, &payload) >= 0)
            return crypt_method(p->c[i]);
    }
    return looks_bare(dgram, len) ? "null" : NULL;
}
