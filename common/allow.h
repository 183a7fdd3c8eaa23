/* SPDX-License-Identifier: MIT */
/* Pure core: the server's allow-list of targets (--allow): parsing and matching. */
#ifndef KTUN_ALLOW_H
#define KTUN_ALLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Which targets a ktun server opens for its peers (streams and datagram flows that name
 * their own target, docs/forwards.md). The server's -t target is always allowed; --allow
 * adds entries. Nothing else is reached: by default a ktun server is never an open proxy.
 *
 * Grammar of one --allow value (entries separated by ',' or white space):
 *
 *   entry = host ":" ports
 *   host  = "*"                          every address and every name
 *         | IPV4 [ "/" BITS ]            an address, or a CIDR block (BITS 0..32)
 *         | "[" IPV6 [ "/" BITS ] "]"    the same for IPv6 (BITS 0..128); "[IPV6]/BITS"
 *         |                              is accepted too
 *         | NAME                         a host name, exactly (case-insensitive, a final
 *         |                              dot ignored)
 *         | "*." NAME                    every name ending in "." NAME (not NAME itself)
 *   ports = "*"                          every port 1..65535
 *         | PORT [ "-" PORT ]            one port, or a range (1..65535, low <= high)
 *
 * A CIDR block's host bits must be zero (10.0.0.0/8, not 10.1.2.3/8). IPv6 needs its
 * brackets; zone ids ("%eth0") are refused; an IPv4-mapped IPv6 address (::ffff:a.b.c.d)
 * matches as the IPv4 address. A NAME is letters, digits, '-' and '_' in dot-separated
 * labels of 1..63 bytes, 253 bytes at most; a name whose last label is all digits must be an
 * IPv4 address. Examples:
 *
 *   127.0.0.1:22    10.0.0.0/8:1-1024    [2001:db8::/32]:443    db.internal:5432
 *   *.corp.example:*    *:53    [::1]:8000-8100
 *
 * Matching: a target named by address matches the address entries ("*" included); a target
 * named by host name matches the name entries ("*" included) as given, and otherwise the
 * server resolves it and checks the address it would connect to against the address
 * entries. The port must fall in the entry's ports.
 */

#define ALLOW_NAME_MAX 253   /* longest host name, without the NUL */
#define ALLOW_ENTRIES_MAX 4096 /* entries one list may hold */

enum allow_kind {
    ALLOW_ANY = 0,    /* "*": every address and name */
    ALLOW_ADDR = 1,   /* an address or CIDR block (IPv4 kept IPv4-mapped) */
    ALLOW_NAME = 2,   /* one host name */
    ALLOW_SUFFIX = 3, /* "*.NAME": names below NAME */
};

struct allow_entry {
    uint8_t kind;                   /* enum allow_kind */
    uint8_t prefix;                 /* ALLOW_ADDR: leading bits that must match, 0..128 (an
                                       IPv4 block of n bits has 96 + n) */
    uint16_t port_lo, port_hi;      /* ports matched, 1 <= lo <= hi <= 65535 */
    uint8_t addr[16];               /* ALLOW_ADDR: IPv6, or IPv4 as ::ffff:a.b.c.d */
    char name[ALLOW_NAME_MAX + 1];  /* ALLOW_NAME / ALLOW_SUFFIX: lower case, no final dot */
};

/* A list of entries; zero-initialise it, free it with allow_free. */
struct allow_list {
    struct allow_entry *v;
    size_t n, cap;
};

/* Parses one entry |s| (|len| bytes, no NUL needed) into |*e|. Returns 0, or ERR_INVAL with
 * a one-line reason in |err| (|errlen| bytes; NULL allowed). */
int allow_parse_entry(const char *s, size_t len, struct allow_entry *e, char *err,
                      size_t errlen);

/* Parses the entries of one --allow value |spec| (separated by ',' or white space; at least
 * one) and appends them to |l|. Returns 0; ERR_INVAL with a one-line reason naming the entry
 * (nothing is appended then); ERR_LIMIT past ALLOW_ENTRIES_MAX; ERR_NOMEM. */
int allow_add(struct allow_list *l, const char *spec, char *err, size_t errlen);

/* Appends an entry for the single address |addr| (|addrlen| 4 for IPv4 or 16 for IPv6) and
 * |port|. Returns 0, ERR_INVAL (bad length or port 0), ERR_LIMIT or ERR_NOMEM. */
int allow_add_addr(struct allow_list *l, const uint8_t *addr, size_t addrlen, uint16_t port);

/* Frees the entries; |l| is empty (and reusable) afterwards. */
void allow_free(struct allow_list *l);

/* True if the target at address |addr| (|addrlen| 4 or 16 bytes, network order) and |port|
 * matches an address entry or "*". */
bool allow_match(const struct allow_list *l, const uint8_t *addr, size_t addrlen,
                 uint16_t port);

/* True if the target named |name| (|len| bytes; case and one final dot do not matter) and
 * |port| matches a name entry, a "*." entry or "*". A name that is an address literal
 * matches as that address. Does not resolve: see the matching rule above. */
bool allow_match_name(const struct allow_list *l, const char *name, size_t len,
                      uint16_t port);

/* True if some entry admits |port| at all (a name need not be resolved otherwise). */
bool allow_port_possible(const struct allow_list *l, uint16_t port);

/* Parses an IPv4 ("a.b.c.d") or IPv6 (no brackets, no zone) literal of |len| bytes into
 * |out| (network order) and stores 4 or 16 in |*outlen|. Returns true on success. */
bool allow_parse_ip(const char *s, size_t len, uint8_t out[16], size_t *outlen);

/* Writes entry |e| in the grammar above into |buf| (|cap| bytes, NUL-terminated, cut if
 * short). Returns |buf|. */
const char *allow_entry_str(const struct allow_entry *e, char *buf, size_t cap);

#endif
