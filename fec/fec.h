/* SPDX-License-Identifier: MIT */
/* FEC packet layer of kcp-go 5.6.1: seqid/type header, shard groups, parity, recovery. */
#ifndef KTUN_FEC_H
#define KTUN_FEC_H

/*
 * Works on "FEC-layer packets": what follows the 20-byte crypt header.
 *
 *   data:   seqid LE32 | 0x00F1 LE16 | size LE16 (= 2 + KCP length) | KCP packet
 *   parity: seqid LE32 | 0x00F2 LE16 | parity bytes (as long as the group's longest data
 *           packet minus 6)
 *
 * Groups: shard_size = ds + ps consecutive seqids, the first ds carry data, the others the
 * parity of those data shards (the bytes from offset 6 on, zero-padded to the longest). Seqids
 * start at 0 and wrap to 0 after paws - 1, paws = floor(0xFFFFFFFF / shard_size) * shard_size,
 * so a group is never split by the wrap. Parity is generated when the ds-th data packet of a
 * group is encoded (no timer, as kcp-go 5.6.1).
 *
 * The decoder hands data packets to the layer above at once and keeps them, with parity,
 * for recovery (window of 3 * shard_size packets, entries older than 60000 ms dropped).
 * Recovery uses the local (ds, ps), which must be the peer's. kcp-go turns parity into fake
 * KCP data when they differ (§3.5); this decoder never does. It learns from the type
 * markers which (ds', ps') layouts the peer can be using (every ds' + ps' <= 256 is kept as a
 * candidate until a packet contradicts it) and rebuilds a group only when every layout still
 * possible puts that group's shards at the same rows of the same code; until then the group
 * stays in the window (kcp-go would drop it) so a later shard can retry. With the same
 * layout on both ends this is known within the first groups (the vectors' group 0 already
 * qualifies). A packet whose type contradicts its position under the local (ds, ps) is a
 * proven mismatch: recovery stops for good (data packets still go up), the mismatch counter
 * grows and the log callback is called once.
 *
 * Newer senders. kcp-go 5.6.6 and later skip a group's parity when the data shards came
 * slowly (idle gaps): such data-only groups are normal here (data goes up by type, a group
 * missing data and parity just ages out of the window). kcp-go 5.6.6 .. 5.6.15 (kcptun
 * 2024-01-05 .. 2024-08-28) also do not advance the seqid past the skipped parity, so their
 * groups drift against ours by ps per skip: the first such packet contradicts the local layout
 * and recovery stops for that session as above (data still goes up, parity never does), the
 * log line naming this cause too. Type 0x00F3 (out of band) is counted and dropped.
 *
 * Differences from kcp-go 5.6.1, all on the safe side: no recovery under an unproven or
 * mismatched layout (see above; kcp-go also builds a (1,1) decoder when local FEC is off);
 * the last 64 finished groups are remembered, so late or duplicated shards of theirs do not
 * rebuild and deliver the group again (kcp-go does, e.g. always for ds = 1).
 */

#include "common/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEC_HEADER_LEN 8          /* seqid + type + size in front of a data packet's KCP bytes */
#define FEC_PARITY_OFFSET 6       /* seqid + type: where the RS shard starts */
#define FEC_MAX_PACKET 1500       /* kcp-go's 1500-byte datagram limit: --crypt null adds no header */
#define FEC_MIN_PACKET 24         /* kcp-go drops shorter FEC-layer packets (IKCP_OVERHEAD) */
#define FEC_TYPE_DATA 0xf1
#define FEC_TYPE_PARITY 0xf2
#define FEC_TYPE_OOB 0xf3         /* kcp-go >= 5.6.60 out-of-band: counted and dropped */
#define FEC_MAX_SHARDS 256        /* ds + ps limit */
#define FEC_RX_MULTI 3            /* decoder window: FEC_RX_MULTI * (ds + ps) packets */
#define FEC_EXPIRE_MS 60000       /* decoder entries older than this are dropped */

/* Receive-side counters. The kcptun SNMP name is given for each. */
struct fec_stats {
    uint64_t parity_shards; /* FECParityShards: parity packets received */
    uint64_t errs;          /* FECErrs: recovered shards whose size field was invalid */
    uint64_t recovered;     /* FECRecovered: recovered packets the layer above accepted */
    uint64_t short_shards;  /* FECShortShards: data packets pushed out of the window */
    uint64_t mismatch;      /* FECMismatch (ktun): packets contradicting our (ds, ps) */
    uint64_t oob;           /* OOBPackets: type 0xF3 packets (dropped, kcptun never sends) */
};

/* Receives each FEC-layer packet the encoder emits (|pkt| borrowed for the call). Returns
 * 0 or a negative ERR_*, which the encoder passes on. */
typedef int fec_emit_fn(void *user, const uint8_t *pkt, size_t len);

/* Receives each KCP packet the decoder delivers (borrowed for the call); |recovered| is
 * true for packets rebuilt from parity (kcp-go feeds those with regular=false). Returns 0
 * if the layer above accepted the packet, a negative ERR_* otherwise (only counted). It must
 * not call back into the decoder. */
typedef int fec_deliver_fn(void *user, const uint8_t *kcp_pkt, size_t len, bool recovered);

/* Called once per decoder with a one-line message (borrowed) when a (ds, ps) mismatch with
 * the peer is detected. */
typedef void fec_log_fn(void *user, const char *msg);

struct fec_encoder;
struct fec_decoder;

/* True if FEC-layer packet |pkt| of |len| bytes carries an FEC header: LE16 at offset 4 is
 * 0x00F1, 0x00F2 or 0x00F3 (a KCP packet has cmd 81..84 and frg there, which never matches).
 * Decided per packet, whatever the local ds/ps. 0x00F3 is kcp-go's out-of-band packet
 * (v5.6.60+: FF FF FF FF | F3 00 | size | conv | payload), never sent by kcptun. */
bool fec_is_fec_packet(const uint8_t *pkt, size_t len);

/* Creates an encoder for |data_shards| / |parity_shards|. If either is <= 0, FEC is off and
 * the encoder is a pass-through: it emits each KCP packet unchanged and header length 0.
 * Returns NULL when ds + ps > FEC_MAX_SHARDS (kcptun's limit; kcp-go would silently send
 * without FEC) or memory ran out. Free with fec_encoder_free. */
struct fec_encoder *fec_encoder_new(int data_shards, int parity_shards);

/* Frees |enc|; NULL is allowed. */
void fec_encoder_free(struct fec_encoder *enc);

/* Bytes the encoder puts in front of a KCP packet: FEC_HEADER_LEN with FEC, 0 without (the
 * KCP MSS is the MTU minus 20 crypt bytes, minus this, minus 24). */
size_t fec_encoder_header_len(const struct fec_encoder *enc);

/* Encodes KCP packet |kcp_pkt| (|len| bytes, borrowed): emits the FEC data packet through
 * |emit|, then, if it was the ds-th data packet of its group, the group's ps parity packets.
 * A pass-through encoder emits |kcp_pkt| as is. Returns 0; ERR_TOOBIG if the FEC-layer
 * packet would exceed FEC_MAX_PACKET (nothing emitted, state unchanged); ERR_INVAL for len 0;
 * or the first negative value |emit| returned (the group state still advances and every
 * packet is still emitted). */
int fec_encoder_encode(struct fec_encoder *enc, const uint8_t *kcp_pkt, size_t len,
                       fec_emit_fn *emit, void *user);

/* Parity shards actually emitted for the groups that close from now on: the first
 * |parity| (clamped to 0 .. ps) of the group's ps. The seqids of the others are skipped all
 * the same, so every receiver keeps the group layout and sees them as lost (a kcp-go
 * decoder recovers less, nothing else changes). Default: ps. No effect without FEC. */
void fec_encoder_set_parity(struct fec_encoder *enc, int parity);

/* Sets the seqid of the next data packet to |seqid| rounded down to a group start (tests:
 * seqid wrap; a fresh encoder starts at 0 like kcp-go). No effect without FEC. */
void fec_encoder_set_next_seqid(struct fec_encoder *enc, uint32_t seqid);

/* Creates a decoder for the local |data_shards| / |parity_shards|. If either is <= 0 the
 * decoder recovers nothing but still delivers the data packets of FEC-framed input (kcp-go
 * accepts them); each FEC packet then counts as a mismatch (the peer has FEC on) and the
 * log callback says so once. |log| (may be NULL) with |log_user| is called once on the first
 * detected mismatch. Returns NULL when ds + ps > FEC_MAX_SHARDS or memory ran out. */
struct fec_decoder *fec_decoder_new(int data_shards, int parity_shards, fec_log_fn *log,
                                    void *log_user);

/* Frees |dec| and every held packet; NULL is allowed. */
void fec_decoder_free(struct fec_decoder *dec);

/* Feeds one received FEC-layer packet |pkt| (|len| bytes, borrowed) at time |now_ms|.
 * A packet without FEC header is delivered unchanged (plain KCP). A data packet is delivered
 * (bytes 8..len, as kcp-go) before any packet it allows to recover; recovered packets follow
 * in seqid order, each exactly once. Returns 0; ERR_PROTO for a packet shorter than
 * FEC_MIN_PACKET (dropped; kcp-go counts InErrs); ERR_TOOBIG for one longer than
 * FEC_MAX_PACKET (dropped); ERR_NOMEM if it could not be kept for recovery (data packets are
 * still delivered). */
int fec_decoder_input(struct fec_decoder *dec, const uint8_t *pkt, size_t len, uint64_t now_ms,
                      fec_deliver_fn *deliver, void *user);

/* Counters of |dec| (see struct fec_stats). */
const struct fec_stats *fec_decoder_stats(const struct fec_decoder *dec);

/* Packets currently held for recovery. */
size_t fec_decoder_pending(const struct fec_decoder *dec);

/* True once a (ds, ps) mismatch was detected: recovery is off for good. */
bool fec_decoder_has_mismatch(const struct fec_decoder *dec);

#endif
