/* SPDX-License-Identifier: MIT */
/* Datagram crypt layer: kcptun's 13 methods byte for byte, plus ktun's authenticated mode. */
#ifndef KTUN_CRYPT_H
#define KTUN_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * kcptun methods (aes aes-128 aes-192 salsa20 blowfish twofish cast5 3des tea xtea xor sm4
 * none), kcp-go 5.6.1 framing:
 *
 *   offset 0        16          20
 *          nonce[16] CRC32 (LE)  payload (FEC header + KCP packet, or KCP packet)
 *
 * The nonce is random, the CRC32 (IEEE, zlib) covers bytes [20:] of the plaintext, and then
 * the whole datagram is encrypted in place (CFB with kcp-go's fixed IV for the block ciphers;
 * salsa20 keeps bytes 0..7 in clear as its nonce; xor uses a fixed 1500-byte table; none
 * leaves it as is). The key is PBKDF2-HMAC-SHA1(password, "kcp-go", 4096, 32), sliced per
 * method. Integrity is only a CRC: these methods are not authenticated.
 *
 * ktun's own "xsalsa20-poly1305" (docs/secure-mode.md has the exact format):
 *
 *   offset 0          24                              len-16
 *          nonce[24]  secretbox(hdr[24] || payload)   tag[16]
 *   hdr = sender_id u64 | counter u64 | time_ms u48 | direction u8 | version u8 (all LE)
 *
 * The key is Argon2id(password, fixed salt, fixed limits). A datagram is accepted only if its
 * tag verifies, its direction is the peer's, and its (sender_id, counter) was never accepted
 * before by this object; a sender_id this object has not seen yet is accepted only if time_ms
 * is within CRYPT_SECURE_TOLERANCE_MS of the receiver's now_ms and not before the time given
 * to crypt_set_start.
 *
 * Ownership and sharing: a struct crypt is single-threaded. For the secure mode, every
 * datagram arriving on one socket owner MUST be opened through ONE object (the server: the
 * listener's object, for the first datagram of a peer and for all later ones of every
 * session), because the replay table lives in the object: a second object would accept
 * datagrams the first one has already accepted. The same object may seal for every session.
 * For kcptun methods the object has no per-packet state and may be shared freely.
 */

#define CRYPT_KEY_LEN 32           /* derived key length, all methods */
#define CRYPT_KCP_HEAD_LEN 20      /* kcptun methods: nonce 16 + CRC32 4 */
#define CRYPT_GCM_HEAD_LEN 12      /* aes-128-gcm: nonce */
#define CRYPT_GCM_TAIL_LEN 16      /* aes-128-gcm: GCM tag */
#define CRYPT_SECURE_HEAD_LEN 48   /* secure mode: nonce 24 + inner header 24 */
#define CRYPT_SECURE_TAIL_LEN 16   /* secure mode: Poly1305 tag */
#define CRYPT_MAX_HEAD_LEN 48      /* the largest crypt_head_len() of any method */
#define CRYPT_MAX_TAIL_LEN 16      /* the largest crypt_tail_len() of any method */
#define CRYPT_MAX_DATAGRAM 1500    /* kcp-go's mtuLimit: seal never makes a longer datagram */
#define CRYPT_SECURE_METHOD "xsalsa20-poly1305"

#define CRYPT_SECURE_TOLERANCE_MS 120000u /* |time_ms - now_ms| limit for a new sender */
#define CRYPT_SECURE_WINDOW 2048u         /* replay bitmap width in counters per sender */
#define CRYPT_SECURE_MAX_SENDERS 1024u    /* replay table bound (live senders) */
#define CRYPT_SECURE_OPSLIMIT 3u          /* Argon2id passes */
#define CRYPT_SECURE_MEMLIMIT (8u << 20)  /* Argon2id memory in bytes (8 MiB) */

/* Fills |len| bytes at |buf| with random bytes. Production passes crypt_rng_sodium. */
typedef void crypt_rng_fn(void *user, uint8_t *buf, size_t len);

enum crypt_role {
    CRYPT_ROLE_CLIENT, /* seals client->server datagrams, opens server->client ones */
    CRYPT_ROLE_SERVER, /* the reverse */
    CRYPT_ROLE_COUNT
};

/* Drop counters (kcptun SNMP names where one exists). */
struct crypt_stats {
    uint64_t in_pkts;          /* datagrams accepted by crypt_open */
    uint64_t in_short;         /* shorter than head + tail */
    uint64_t in_csum_errors;   /* kcptun methods: CRC32 mismatch (kcptun InCsumErrors) */
    uint64_t in_auth_errors;   /* secure mode: tag did not verify, or bad version */
    uint64_t in_replays;       /* secure mode: counter already seen / older than window, or
                                  a datagram of our own direction (reflection) */
    uint64_t in_stale;         /* secure mode: new sender with time_ms out of tolerance */
    uint64_t in_table_full;    /* secure mode: new sender refused, replay table full */
};

/* Prepares libsodium; idempotent, called by crypt_new* and the key derivation functions.
 * libgcrypt is initialised on first use, by a method or derivation that needs it ("none" and
 * the secure mode never do). Returns 0, or ERR_INVAL if the library cannot be initialised. */
int crypt_lib_init(void);

/* crypt_rng_fn over libsodium's randombytes_buf; |user| is ignored. On Linux this is one
 * getrandom() per 256 bytes, about 0.1 us per nonce here: crypt_rng_fill is faster. */
void crypt_rng_sodium(void *user, uint8_t *buf, size_t len);

/* A fast random source for nonces: ChaCha20 keystream under a key taken from
 * randombytes_buf, with the key replaced after every call (fast key erasure), so past output
 * cannot be recomputed from the state. Single-threaded; not to be shared across fork(). */
struct crypt_rng;

/* Creates a generator seeded from randombytes_buf. Returns NULL if out of memory or
 * libsodium cannot start. Free with crypt_rng_free (NULL is fine). */
struct crypt_rng *crypt_rng_new(void);
void crypt_rng_free(struct crypt_rng *r);

/* crypt_rng_fn for a struct crypt_rng passed as |user|: fills |len| bytes at |buf|. */
void crypt_rng_fill(void *user, uint8_t *buf, size_t len);

/* NULL-terminated list of the accepted method names, kcptun's first ("aes" is kcptun's
 * default), then CRYPT_SECURE_METHOD. Static storage. */
const char *const *crypt_method_names(void);

/* Returns true if |method| names a method crypt_new accepts. */
bool crypt_method_is_known(const char *method);

/* PBKDF2-HMAC-SHA1 of |pass_len| bytes (empty allowed) with the string |salt| into |out_len|
 * bytes (libgcrypt set up first). Returns 0, or ERR_INVAL if the library refuses. */
int crypt_pbkdf2_sha1(const void *pass, size_t pass_len, const char *salt, unsigned long iter,
                      uint8_t *out, size_t out_len);

/* kcptun key derivation: PBKDF2-HMAC-SHA1(|password| bytes, "kcp-go", 4096) into |out|.
 * Returns 0, or ERR_INVAL if the library refuses. */
int crypt_derive_key(const char *password, uint8_t out[static CRYPT_KEY_LEN]);

/* Secure-mode key derivation: Argon2id13 with the fixed salt and limits of
 * docs/secure-mode.md into |out|. Costs CRYPT_SECURE_MEMLIMIT bytes and tens of ms.
 * Returns 0, or ERR_NOMEM if Argon2 cannot get its memory. */
int crypt_derive_secure_key(const char *password, uint8_t out[static CRYPT_KEY_LEN]);

/* Creates a crypt object for |method| keyed from |password| (derivation as above for the
 * method; "none" derives nothing). |rng| (with |rng_user|) supplies the secure mode's sender
 * id (8 bytes, at once) and the nonces, fetched 1536 bytes at a time: the n-th nonce of the
 * object is bytes n*16 .. n*16+15 (secure mode: n*24 ..) of the rng's output after the sender
 * id. It must outlive the object. Production: crypt_rng_fill. Role defaults to
 * CRYPT_ROLE_CLIENT. Returns the object, or NULL with *|err| set to ERR_INVAL (unknown method:
 * the message from crypt_error names it; or a library failure) or ERR_NOMEM. |err| may be
 * NULL. */
struct crypt *crypt_new(const char *method, const char *password, crypt_rng_fn *rng,
                        void *rng_user, int *err);

/* As crypt_new, but with the already derived |key| (crypt_derive_key for kcptun methods,
 * crypt_derive_secure_key for the secure mode), so that several objects cost one derivation. */
struct crypt *crypt_new_key(const char *method, const uint8_t key[static CRYPT_KEY_LEN],
                            crypt_rng_fn *rng, void *rng_user, int *err);

/* Formats why crypt_new(|method|, ...) failed with |err| into |msg| (at most |cap| bytes,
 * NUL-terminated), e.g. "unknown crypt method 'foo' (known: aes, ...)" for an unknown name. */
void crypt_error(const char *method, int err, char *msg, size_t cap);

/* Wipes the keys and frees |c|; NULL is fine. */
void crypt_free(struct crypt *c);

/* Sets which side |c| is on (secure mode: the direction byte it writes and expects; kcptun
 * methods: no effect). */
void crypt_set_role(struct crypt *c, enum crypt_role role);

/* Tells |c| the wall clock (ms since the Unix epoch) at which this process started receiving.
 * Secure mode: a sender not yet known is refused if its datagram was sealed before |now_ms|,
 * which keeps datagrams captured before a restart from opening sessions after it. Call once,
 * right after crypt_new, with the loop's wall clock. kcptun methods: no effect. */
void crypt_set_start(struct crypt *c, uint64_t now_ms);

/* The method name |c| was created with (static storage). */
const char *crypt_method(const struct crypt *c);

/* Bytes the caller must reserve in front of the payload: 20 for kcptun methods, 48 for the
 * secure mode. */
size_t crypt_head_len(const struct crypt *c);

/* Bytes the caller must leave free after the payload: 0 for kcptun methods, 16 for the secure
 * mode. */
size_t crypt_tail_len(const struct crypt *c);

/* True for the secure mode (forgeries are rejected), false for the kcptun methods. */
bool crypt_is_authenticated(const struct crypt *c);

/* Seals one datagram in place. The caller has put |payload_len| bytes at buf +
 * crypt_head_len(c); |cap| is the size of |buf|. Fills the header (and tail) and encrypts.
 * |now_ms| is the wall clock in ms since the Unix epoch (used by the secure mode only).
 * Returns the datagram length (head + payload + tail), or ERR_TOOBIG if it would exceed |cap|
 * or CRYPT_MAX_DATAGRAM. */
ssize_t crypt_seal(struct crypt *c, uint8_t *buf, size_t payload_len, size_t cap,
                   uint64_t now_ms);

/* Opens the datagram of |len| bytes at |buf| in place. |now_ms| is the wall clock in ms since
 * the Unix epoch. On success sets *|payload| to the payload inside |buf| and returns its
 * length. Returns ERR_AUTH (short datagram, CRC mismatch, bad tag, replay, reflection, stale
 * new sender: every one a silent drop, counted in the stats) or ERR_LIMIT (secure mode: a new
 * sender while the replay table is full of live senders) or ERR_NOMEM (growing that table).
 * After a failure the bytes of |buf| are unspecified. */
ssize_t crypt_open(struct crypt *c, uint8_t *buf, size_t len, uint64_t now_ms,
                   const uint8_t **payload);

/* Mismatch probe: names the --crypt method a datagram that failed to open does open with
 * under a given key. Holds one object per kcptun method keyed from |password| (one PBKDF2
 * run); NULL if out of memory. Free with crypt_probe_free (NULL is fine). */
struct crypt_probe;
struct crypt_probe *crypt_probe_new(const char *password);
void crypt_probe_free(struct crypt_probe *p);

/* Tries every kcptun method (aes ... none, aes-128-gcm) on a copy of |dgram| (|len| bytes) and
 * returns the name of the first that opens it (CRC32 or GCM tag), "null" if the bytes look
 * like a bare FEC/KCP packet, or NULL: no method opens it under this key (a different --key,
 * or not kcptun at all). A CRC match by chance has odds of 2^-32 per method. Pure: no I/O. */
const char *crypt_probe_identify(struct crypt_probe *p, const uint8_t *dgram, size_t len);

/* The drop and accept counters of |c|. */
const struct crypt_stats *crypt_get_stats(const struct crypt *c);

#endif
