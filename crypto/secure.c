/* SPDX-License-Identifier: MIT */
/* Secure mode: secretbox seal/open of whole datagrams plus replay and reflection checks. */
#include "crypto/secure.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/wire.h"
#include "crypto/replay.h"

_Static_assert(CRYPT_SECURE_HEAD_LEN == SECURE_NONCE_LEN + SECURE_INNER_LEN, "head layout");
_Static_assert(CRYPT_SECURE_TAIL_LEN == crypto_secretbox_MACBYTES, "tag length");
_Static_assert(SECURE_NONCE_LEN == crypto_secretbox_NONCEBYTES, "nonce length");
_Static_assert(CRYPT_KEY_LEN == crypto_secretbox_KEYBYTES, "key length");
_Static_assert(CRYPT_SECURE_WINDOW == REPLAY_WINDOW, "replay window");

enum secure_direction {
    SECURE_DIR_TO_SERVER = 1, /* sealed by a client */
    SECURE_DIR_TO_CLIENT = 2, /* sealed by a server */
};

struct secure {
    uint8_t key[CRYPT_KEY_LEN];  /* secretbox key (Argon2id output) */
    uint64_t sender_id;          /* our random id, written into every datagram we seal */
    uint64_t counter;            /* next counter to seal */
    uint8_t dir_out;             /* direction byte we write */
    uint8_t dir_in;              /* direction byte we accept */
    struct replay_table *replay; /* peers' windows, keyed by their sender ids */
};

struct secure *secure_new(const uint8_t key[static CRYPT_KEY_LEN], crypt_rng_fn *rng,
                          void *rng_user)
{
    struct secure *s = calloc(1, sizeof(*s));
    if (!s)
        goto out;
    s->replay = replay_new(CRYPT_SECURE_MAX_SENDERS, CRYPT_SECURE_TOLERANCE_MS);
    if (!s->replay) {
        free(s);
        s = NULL;
        goto out;
    }
    memcpy(s->key, key, CRYPT_KEY_LEN);
    uint8_t id[8];
    rng(rng_user, id, sizeof(id));
    s->sender_id = (uint64_t)rd_u32le(id) | (uint64_t)rd_u32le(id + 4) << 32;
    secure_set_role(s, CRYPT_ROLE_CLIENT);
out:
    return s;
}

void secure_free(struct secure *s)
{
    if (!s)
        return;
    replay_free(s->replay);
    sodium_memzero(s, sizeof(*s));
    free(s);
}

void secure_set_role(struct secure *s, enum crypt_role role)
{
    bool server = role == CRYPT_ROLE_SERVER;
    s->dir_out = server ? SECURE_DIR_TO_CLIENT : SECURE_DIR_TO_SERVER;
    s->dir_in = server ? SECURE_DIR_TO_SERVER : SECURE_DIR_TO_CLIENT;
}

void secure_set_start(struct secure *s, uint64_t start_ms)
{
    replay_set_floor(s->replay, start_ms);
}

static uint8_t *put_u64le(uint8_t *p, uint64_t v)
{
    return put_u32le(put_u32le(p, (uint32_t)v), (uint32_t)(v >> 32));
}

static uint64_t rd_u64le(const uint8_t *p)
{
    return (uint64_t)rd_u32le(p) | (uint64_t)rd_u32le(p + 4) << 32;
}

size_t secure_seal(struct secure *s, uint8_t *buf, size_t payload_len, uint64_t now_ms)
{
    size_t boxed = SECURE_INNER_LEN + payload_len;
    uint8_t *p = buf + SECURE_NONCE_LEN;

    p = put_u64le(p, s->sender_id);
    p = put_u64le(p, s->counter++);
    p = put_u32le(p, (uint32_t)now_ms);
    p = put_u16le(p, (uint16_t)(now_ms >> 32));
    p = put_u8(p, s->dir_out);
    put_u8(p, SECURE_VERSION);
    crypto_secretbox_detached(buf + SECURE_NONCE_LEN, buf + SECURE_NONCE_LEN + boxed,
                              buf + SECURE_NONCE_LEN, boxed, buf, s->key);
    return SECURE_NONCE_LEN + boxed + CRYPT_SECURE_TAIL_LEN;
}

/* Maps a replay verdict to the stats and the return value of crypt_open. */
static int replay_result(enum replay_verdict v, struct crypt_stats *st)
{
    switch (v) {
    case REPLAY_OK:
        return 0;
    case REPLAY_SEEN:
    case REPLAY_TOO_OLD:
        st->in_replays++;
        return ERR_AUTH;
    case REPLAY_STALE:
        st->in_stale++;
        return ERR_AUTH;
    case REPLAY_FULL:
        st->in_table_full++;
        return ERR_LIMIT;
    case REPLAY_NOMEM:
    case REPLAY_VERDICT_COUNT:
        break;
    }
    st->in_table_full++;
    return ERR_NOMEM;
}

ssize_t secure_open(struct secure *s, uint8_t *buf, size_t len, uint64_t now_ms,
                    struct crypt_stats *st)
{
    if (len < CRYPT_SECURE_HEAD_LEN + CRYPT_SECURE_TAIL_LEN) {
        st->in_short++;
        return ERR_AUTH;
    }
    size_t boxed = len - SECURE_NONCE_LEN - CRYPT_SECURE_TAIL_LEN;
    uint8_t *inner = buf + SECURE_NONCE_LEN;
    if (crypto_secretbox_open_detached(inner, inner, inner + boxed, boxed, buf, s->key) != 0 ||
        inner[23] != SECURE_VERSION) {
        st->in_auth_errors++;
        return ERR_AUTH;
    }
    if (inner[22] != s->dir_in) {
        st->in_replays++; /* our own direction: a datagram reflected back at us */
        return ERR_AUTH;
    }
    uint64_t sender = rd_u64le(inner), counter = rd_u64le(inner + 8);
    uint64_t time_ms = (uint64_t)rd_u32le(inner + 16) | (uint64_t)rd_u16le(inner + 20) << 32;
    int rc = replay_result(replay_accept(s->replay, sender, counter, time_ms, now_ms), st);
    if (rc < 0)
        return rc;
    return (ssize_t)(len - CRYPT_SECURE_HEAD_LEN - CRYPT_SECURE_TAIL_LEN);
}
