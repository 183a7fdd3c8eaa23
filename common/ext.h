/* SPDX-License-Identifier: MIT */
/* Pure core: ktun's wire extensions (docs/extensions.md), the extension segment and its
 * records. Used only between ktun ends; a kcptun peer never receives them. */
#ifndef KTUN_EXT_H
#define KTUN_EXT_H

/*
 * An extension segment travels inside a KCP packet, after the packet's KCP segments (or
 * alone), so it shares the packet's FEC group and crypt. It is shaped like a KCP segment
 * header so that every KCP-segment walker (kcp-go's Input, ktun's roaming scan) reads it as
 * one segment of an unknown command and stops or skips there:
 *
 *   conv LE32 | cmd 0xDA | 0 | wnd 0 LE16 | ts 0 LE32 | sn 0xFFFFFFFF LE32 | una 0 LE32 |
 *   len LE32 | len bytes of records
 *
 * A record is  type u8 | vlen LE16 | vlen bytes. Unknown types are skipped.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXT_CMD 0xDA          /* KCP command byte of the extension segment */
#define EXT_SEG_HDR 24        /* segment header bytes (as a KCP segment's) */
#define EXT_SEG_SN 0xFFFFFFFFu /* sn field: never 0, so a listener never takes it for a restart */
#define EXT_REC_HDR 3         /* record header: type + value length */

/* Record types. */
#define EXT_CAPS_OFFER 0x01   /* client -> server: version u8 | caps LE32 */
#define EXT_CAPS_ANSWER 0x02  /* server -> client: version u8 | caps LE32 */
#define EXT_DGRAM 0x10        /* either way: one datagram (common/dgram.h) */
#define EXT_FLOW_OPEN 0x11    /* server -> client: flow LE32 opened */
#define EXT_FLOW_CLOSE 0x12   /* either way: flow LE32 closed, never reused */

#define EXT_VERSION 1
/* Capability bits (a set of LE32). */
#define EXT_CAP_DGRAM 0x1u    /* datagram channel and UDP flows */
#define EXT_CAP_TARGET 0x2u   /* streams carry their target in their first frame */
#define EXT_CAPS_ALL (EXT_CAP_DGRAM | EXT_CAP_TARGET)

struct ext_rec {
    uint8_t type;
    const uint8_t *val; /* |len| bytes inside the parsed buffer */
    size_t len;
};

/* Looks for an extension segment in KCP packet |pkt| (|len| bytes) of conversation |conv|.
 * Walks the KCP segments by their headers; the first one whose cmd is EXT_CMD is the
 * extension segment. Stores in |*kcp_len| the bytes before it (all of |len| when there is
 * none: the packet goes to KCP unchanged) and its records in |*body|/|*body_len| (NULL/0 if
 * none). Returns 0, or ERR_PROTO when the extension segment is malformed (another conv, a
 * length past the packet's end, a nonzero reserved byte); |*kcp_len| is still set then. */
int ext_split(const uint8_t *pkt, size_t len, uint32_t conv, size_t *kcp_len,
              const uint8_t **body, size_t *body_len);

/* Parses the extension segment at |seg| (|len| bytes to the packet's end; found where
 * kcp_input_until stopped at EXT_CMD). Returns 0 with its records in |*body|/|*body_len|, or
 * ERR_PROTO (NULL/0) when it is malformed as ext_split tells. */
int ext_seg_parse(const uint8_t *seg, size_t len, uint32_t conv, const uint8_t **body,
                  size_t *body_len);

/* Writes the EXT_SEG_HDR-byte segment header for |body_len| bytes of records to |p|. */
void ext_seg_header(uint8_t *p, uint32_t conv, size_t body_len);

/* Reads the record at *|p| (before |end|) into |*r| and advances *|p|. Returns 1 for a
 * record, 0 at the end, ERR_PROTO for a truncated record (*|p| is then set to |end|). */
int ext_next(const uint8_t **p, const uint8_t *end, struct ext_rec *r);

/* Writes a record header (type, |vlen|) at |p|; returns p + EXT_REC_HDR. */
uint8_t *ext_put_rec(uint8_t *p, uint8_t type, size_t vlen);

/* Capability records (EXT_CAPS_OFFER / EXT_CAPS_ANSWER): value = version u8 | caps LE32,
 * longer values allowed (later versions append fields). */
#define EXT_CAPS_VLEN 5
/* Writes a whole caps record (header included, EXT_REC_HDR + EXT_CAPS_VLEN bytes). */
size_t ext_put_caps(uint8_t *p, uint8_t type, uint32_t caps);
/* Parses a caps record's value. Returns 0 with |*version| and |*caps|, or ERR_PROTO. */
int ext_parse_caps(const struct ext_rec *r, uint8_t *version, uint32_t *caps);

/* Records whose value is one flow id (EXT_FLOW_OPEN / EXT_FLOW_CLOSE). */
#define EXT_FLOW_VLEN 4
size_t ext_put_flow(uint8_t *p, uint8_t type, uint32_t flow);
int ext_parse_flow(const struct ext_rec *r, uint32_t *flow);

#endif
