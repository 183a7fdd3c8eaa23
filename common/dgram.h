/* SPDX-License-Identifier: MIT */
/* Pure core: the datagram record of the extension segment (docs/extensions.md) and the
 * receiver's duplicate filter. */
#ifndef KTUN_DGRAM_H
#define KTUN_DGRAM_H

/*
 * EXT_DGRAM record value:
 *
 *   flow LE32 | seq LE32 | flags u8 | [tlen u8 | tlen bytes "host:port"] | payload
 *
 * |flow| names the UDP flow (chosen by the end that opened it, the client); |seq| counts
 * every datagram record one end sends in one session (starting at 0, wrapping); flag
 * DGRAM_F_TARGET says a target follows (the opener repeats it until the peer confirms the flow
 * with EXT_FLOW_OPEN); flag DGRAM_F_DEFAULT instead names the server's own -t target. Other
 * flag bits are reserved: a record with one set (or both of these) is dropped.
 *
 * The receiver drops a sequence number it has already seen or that is DGRAM_WINDOW or more
 * behind the highest seen (duplicates from the network or from FEC recovery of a packet
 * that also arrived, and datagrams too stale to matter).
 */

#include "common/ext.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DGRAM_F_TARGET 0x01
#define DGRAM_F_DEFAULT 0x02    /* the flow goes to the server's -t target (no target bytes) */
#define DGRAM_FIXED 9           /* flow + seq + flags */
#define DGRAM_TARGET_MAX 255    /* bytes of a target */
#define DGRAM_WINDOW 1024       /* sequence numbers the duplicate filter remembers */

struct dgram {
    uint32_t flow;
    uint32_t seq;
    uint8_t flags;
    const uint8_t *target;      /* |target_len| bytes (no NUL); "" (length 0) with
                                 * DGRAM_F_DEFAULT; NULL without a target */
    size_t target_len;
    const uint8_t *data;        /* payload, |len| bytes */
    size_t len;
};

/* Record bytes (header included) of a datagram of |len| payload bytes with a target of
 * |target_len| bytes (0: none). */
size_t dgram_rec_len(size_t target_len, size_t len);

/* Writes the whole record (dgram_rec_len bytes) to |p|; |target| NULL: no target; non-NULL
 * with |target_len| 0: the server's -t target (DGRAM_F_DEFAULT).
 * Returns the bytes written. The caller checks the sizes (target_len <= DGRAM_TARGET_MAX,
 * record <= 65535 + EXT_REC_HDR). */
size_t dgram_put(uint8_t *p, uint32_t flow, uint32_t seq, const uint8_t *target,
                 size_t target_len, const uint8_t *data, size_t len);

/* Parses the value of an EXT_DGRAM record. Returns 0, or ERR_PROTO (truncated, reserved
 * flag bits, empty target). */
int dgram_parse(const struct ext_rec *r, struct dgram *d);

/* Duplicate filter (zero-initialised = empty). */
struct dgram_window {
    bool any;                   /* a sequence number was accepted */
    uint32_t top;               /* highest accepted */
    uint64_t bits[DGRAM_WINDOW / 64]; /* bit (seq % DGRAM_WINDOW): seen, for top-WINDOW < seq <= top */
};

/* Returns true (and remembers |seq|) the first time |seq| is offered while it is within the
 * window; false for a duplicate or a sequence number DGRAM_WINDOW or more behind the top. */
bool dgram_window_accept(struct dgram_window *w, uint32_t seq);

#endif
