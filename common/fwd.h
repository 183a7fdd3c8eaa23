/* SPDX-License-Identifier: MIT */
/* Pure core: forward specs (-L, -D) and the stream target header between ktun ends. */
#ifndef KTUN_FWD_H
#define KTUN_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Forward specs, in ssh's grammar (docs/forwards.md):
 *
 *   -L [bind:]port:host:hostport     a TCP port forwarded to host:hostport
 *   -D [bind:]port                   a SOCKS5 server
 *
 * bind and host may be IPv6 in brackets; an absent bind is the loopback (127.0.0.1, as
 * ssh's default), "*" or an empty bind ("":port) every address.
 *
 * Stream target header (docs/forwards.md, only when both ends are ktun): the first bytes a
 * client writes on every stream it opens, and the first bytes the server answers with.
 *
 *   request:  'K' | 1 | atyp | address | port BE16        (no address and no port: atyp 0)
 *             atyp 0 = the server's own -t target, 1 = IPv4 (4 bytes), 3 = a host name
 *             (1 length byte, 1..255, then the name), 4 = IPv6 (16 bytes)
 *   reply:    'K' | 1 | status       status: 0 connected, else a SOCKS5 reply code (below)
 */

#define FWD_HOST_MAX 256      /* host text, NUL included */
#define FWD_MAGIC 0x4b        /* 'K' */
#define FWD_VERSION 1
#define FWD_REQ_MAX (3 + 1 + 255 + 2) /* longest request header */
#define FWD_REPLY_LEN 3

enum fwd_atyp {
    FWD_ATYP_DEFAULT = 0, /* the server's -t target */
    FWD_ATYP_IPV4 = 1,
    FWD_ATYP_NAME = 3,
    FWD_ATYP_IPV6 = 4,
};

/* Reply statuses: SOCKS5's reply codes (RFC 1928), so that -D passes them on unchanged. */
enum fwd_status {
    FWD_OK = 0,
    FWD_FAIL = 1,          /* general failure */
    FWD_NOT_ALLOWED = 2,   /* not in the server's --allow */
    FWD_NET_UNREACH = 3,
    FWD_HOST_UNREACH = 4,  /* also: the name does not resolve */
    FWD_REFUSED = 5,
    FWD_TIMEOUT = 6,
    FWD_BAD_ATYP = 8,
};

/* A target as the header carries it. */
struct fwd_target {
    uint8_t atyp;               /* enum fwd_atyp */
    uint8_t addr[16];           /* IPv4 (4 bytes) or IPv6 (16) */
    char name[FWD_HOST_MAX];    /* FWD_ATYP_NAME: NUL-terminated, 1..255 bytes */
    uint16_t port;              /* host order; 0 for FWD_ATYP_DEFAULT */
};

/* A parsed -L or -D spec. */
struct fwd_spec {
    char kind;                  /* 'L' or 'D' (or 'U') */
    char bind[FWD_HOST_MAX];    /* listen host: "" = every address */
    uint16_t bind_port;         /* 1..65535 */
    char host[FWD_HOST_MAX];    /* 'L'/'U': target host, brackets removed */
    uint16_t port;              /* 'L'/'U': target port, 1..65535 */
};

/* Parses |s| as a spec of |kind| ('L' or 'U': [bind:]port:host:hostport; 'D': [bind:]port).
 * Returns 0, or ERR_INVAL with a one-line reason in |err| (|errlen| bytes, NULL allowed). */
int fwd_parse_spec(char kind, const char *s, struct fwd_spec *out, char *err, size_t errlen);

/* Fills |*t| for |host| (an IPv4 or IPv6 literal, or a name of 1..255 bytes) and |port|.
 * Returns 0 or ERR_INVAL. */
int fwd_target_set(struct fwd_target *t, const char *host, uint16_t port);

/* Longest ATYP ADDR PORT (SOCKS5's address layout, which the request header uses too). */
#define FWD_ADDR_MAX (1 + 1 + 255 + 2)

/* Writes |t| (IPv4, IPv6 or a name) as ATYP ADDR PORT into |out|, which has room for
 * FWD_ADDR_MAX bytes, or for 1 + 16 + 2 when |t| is an address. Returns its length, or
 * ERR_INVAL for another type or a name that is empty or longer than 255 bytes. */
int fwd_addr_encode(const struct fwd_target *t, uint8_t *out);

/* Writes the request header for |t| into |out| (FWD_REQ_MAX bytes suffice). Returns its
 * length, or ERR_INVAL for a target that cannot be encoded. */
int fwd_request_encode(const struct fwd_target *t, uint8_t *out, size_t cap);

/* Parses a request header at the start of |p| (|len| bytes available). Returns the header's
 * length (the stream's data follows it), ERR_AGAIN if |len| bytes are a proper beginning of
 * a header, or ERR_PROTO (bad magic, version, atyp, name length, or a name with bytes no
 * host name has). */
int fwd_request_decode(const uint8_t *p, size_t len, struct fwd_target *t);

/* Writes the reply header with |status| into |out| (FWD_REPLY_LEN bytes). */
void fwd_reply_encode(uint8_t status, uint8_t out[FWD_REPLY_LEN]);

/* Parses a reply header of |len| bytes: returns the status (>= 0), ERR_AGAIN if short, or
 * ERR_PROTO. */
int fwd_reply_decode(const uint8_t *p, size_t len);

/* Writes "host:port" for |t| ("[v6]:port"; "-t" for FWD_ATYP_DEFAULT) into |buf| (|cap|
 * bytes, cut if short). Returns |buf|. */
const char *fwd_target_str(const struct fwd_target *t, char *buf, size_t cap);

/* A short text for status |s| ("not allowed by --allow", ...). */
const char *fwd_status_str(int s);

/* One log line per key and period: a small table of recently logged keys (a peer and a
 * target, hashed by the caller). Zero-initialise it. */
#define FWD_LOGBOOK_SLOTS 64
struct fwd_logbook {
    uint64_t key[FWD_LOGBOOK_SLOTS];
    uint64_t at_ms[FWD_LOGBOOK_SLOTS];
    uint64_t suppressed;      /* lines not logged because their key was logged recently */
};

/* True if |key| was not logged within |period_ms| before |now_ms| (then it counts as logged
 * now); false, counting a suppressed line, otherwise. A key may be forgotten early when more
 * than FWD_LOGBOOK_SLOTS keys are logged per period (then it logs again: never silenced). */
bool fwd_logbook_pass(struct fwd_logbook *b, uint64_t key, uint64_t now_ms, uint64_t period_ms);

/* FNV-1a 64 over |len| bytes, continuing from |h| (start with FWD_HASH_INIT). */
#define FWD_HASH_INIT 0xcbf29ce484222325ull
uint64_t fwd_hash(uint64_t h, const void *p, size_t len);

#endif
