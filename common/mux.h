/* SPDX-License-Identifier: MIT */
/* Pure stream multiplexer speaking smux 1.5.16 (versions 1 and 2): bytes in, events and frames out. */
#ifndef KTUN_MUX_H
#define KTUN_MUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/qpp.h"

/*
 * Frame layout, all fields little-endian, length BEFORE stream id:
 *
 *   0      1      2             4                          8
 *   +------+------+-------------+--------------------------+----------------------+
 *   | ver  | cmd  | length LE16 | stream id LE32           | payload (PSH, UPD)   |
 *   +------+------+-------------+--------------------------+----------------------+
 *
 * UPD payload (v2 only): consumed LE32 || window LE32.
 *
 * Behaviour notes (what this module does, and why):
 *  - Receiving follows smux 1.5.16 exactly: the length field is ignored for SYN/FIN/NOP (no
 *    payload is read) and UPD always carries 8 bytes; a wrong version or an unknown command is a
 *    protocol error that closes the session (on_close). PSH/FIN/UPD for an unknown stream, a
 *    duplicate SYN, and UPD in a v1 session are dropped and counted. Any length up to 65535 is
 *    accepted; frames we send carry at most max_frame_size payload bytes.
 *  - Session receive budget (smuxbuf): a token bucket. Each PSH payload byte buffered for a
 *    stream takes a token, each byte read (or discarded by mux_stream_release) gives it back.
 *    When the bucket is <= 0 at a frame boundary, mux_input stops consuming, so backpressure
 *    reaches the layer below (KCP's window). A frame already begun is always completed, so
 *    buffered payload stays below max_receive_buffer + 65535.
 *  - Stream window (v2): the sender side keeps numWritten/peerConsumed/peerWindow (initially
 *    262144) and never sends past the window; the receiver side sends UPD(numRead,
 *    max_stream_buffer) after the first read and whenever max_stream_buffer/2 bytes were read
 *    since the last UPD. A stream whose reader stalls therefore holds at most
 *    max(262144, max_stream_buffer) bytes if the peer honours the window (Go smux does); the
 *    session bucket is the hard bound whatever the peer does.
 *  - Half-close: mux_stream_close sends FIN (our write side is done) but the stream keeps
 *    receiving until the application releases it; the peer's FIN is reported by on_stream_fin
 *    and by mux_stream_read returning 0 once the data before it has been read. A kcptun peer
 *    closes both ways at once (FIN, then it forgets the stream and drops later frames for it);
 *    that is harmless here: data we still write is discarded by it and, in v2, our writer simply
 *    runs out of window. Leaving such a stream is the shell's policy (release it on the peer's
 *    FIN for kcptun behaviour, or after a close-wait delay).
 *  - Keepalive: a NOP every keepalive_interval_ms from mux_new; every keepalive_timeout_ms the
 *    session checks whether any frame header arrived since the previous check and, if none did
 *    and the receive bucket is not exhausted, closes the session (on_close "keepalive timeout").
 *  - QPP (kcptun --QPP, cfg.qpp set): PSH payloads are encrypted right before they are framed
 *    and decrypted when their frame is complete, each stream and direction with its own
 *    keystream from position 0; headers and the other commands are untouched.
 *  - Stream ids: client 3, 5, 7, ...; server 2, 4, 6, ...; once the counter wraps no more
 *    streams can be opened (ERR_LIMIT). An id still in use (a peer that opened one of our
 *    parity) is skipped.
 */

#define MUX_HEADER_SIZE 8
#define MUX_UPD_SIZE 8
#define MUX_MAX_PAYLOAD 65535u
#define MUX_INITIAL_PEER_WINDOW 262144u

enum mux_cmd {
    MUX_CMD_SYN = 0, /* stream open */
    MUX_CMD_FIN = 1, /* stream end of data (EOF mark) */
    MUX_CMD_PSH = 2, /* data */
    MUX_CMD_NOP = 3, /* keepalive */
    MUX_CMD_UPD = 4, /* v2 window update */
    MUX_CMD_COUNT
};

/* Parsed frame header. */
struct mux_frame_hdr {
    uint8_t ver;    /* protocol version */
    uint8_t cmd;    /* enum mux_cmd (unchecked) */
    uint16_t len;   /* payload length field */
    uint32_t sid;   /* stream id */
};

/* Parses the 8-byte header at |p| (|len| bytes available) into |*h|. Returns 0, or ERR_AGAIN if
 * fewer than 8 bytes are given. Does not validate version or command. */
int mux_frame_parse(const uint8_t *p, size_t len, struct mux_frame_hdr *h);

/* Writes the 8-byte header |h| at |p| (8 bytes of room); returns p + 8. */
uint8_t *mux_frame_put(uint8_t *p, const struct mux_frame_hdr *h);

/* mux_config.version: take the version of the peer's first frame (1 or 2). Until it arrives
 * the session sends no keepalive; a frame we send first fixes version 1. */
#define MUX_VERSION_AUTO 0

struct mux_config {
    int version;                   /* 1 or 2 (--smuxver), or MUX_VERSION_AUTO */
    uint32_t max_receive_buffer;   /* session receive budget in bytes (--smuxbuf), > 0 */
    uint32_t max_stream_buffer;    /* v2 stream window advertised in UPD (--streambuf) */
    uint32_t keepalive_interval_ms; /* NOP period (--keepalive * 1000); 0 disables keepalive */
    uint32_t keepalive_timeout_ms; /* dead-peer check period (30000 in kcptun) */
    uint32_t max_frame_size;       /* PSH payload limit when sending (32768), 1..65535 */
    uint32_t max_streams;          /* live streams allowed (ktun limit); 0 = unlimited */
    uint32_t close_wait_ms;        /* mux_stream_close_wait holds FIN back this long (kcptun
                                      --closewait); 0 = at once */
    uint32_t fin_hold_ms;          /* with close_wait_ms 0, v2: mux_stream_close_wait after
                                      the peer's FIN holds ours until the peer's UPD shows it
                                      read all we wrote, at most this long; 0 = never */
    const struct qpp *qpp;         /* kcptun --QPP: pads (borrowed, outlive the session);
                                      NULL = off. Every stream's PSH payload is substituted,
                                      one keystream per stream and direction. */
};

/* Fills |cfg| with kcptun 20210922 defaults: version 1, 4194304, 2097152, 10000 ms, 30000 ms,
 * 32768, max_streams 65536, no QPP. */
void mux_config_default(struct mux_config *cfg);

/* Checks |cfg| like smux VerifyConfig: version 1, 2 or MUX_VERSION_AUTO; max_frame_size
 * 1..65535; max_receive_buffer > 0; 0 < max_stream_buffer <= max_receive_buffer <= INT32_MAX; with
 * keepalive on, keepalive_timeout_ms >= keepalive_interval_ms. Returns 0 or ERR_INVAL. */
int mux_config_validate(const struct mux_config *cfg);

/* Sends one whole frame |frame| (|len| bytes, header + payload, borrowed for the call) to the
 * layer below. One call per frame: the compression layer emits one chunk per frame. Returns 0,
 * or a negative ERR_* which closes the session (on_close "output failed"). */
typedef int mux_output_fn(void *user, const uint8_t *frame, size_t len);
/* Stream events; |sid| names the stream. */
typedef void mux_stream_event_fn(void *user, uint32_t sid);
/* The session is dead; |reason| is a static string. Called at most once. */
typedef void mux_close_fn(void *user, const char *reason);

/*
 * Callbacks may call any mux_stream_* function and mux_stream_open, but never mux_input,
 * mux_tick or mux_free on the same session. NULL event callbacks are allowed; output is required.
 */
struct mux_callbacks {
    mux_output_fn *output;
    /* The peer opened stream |sid| (SYN). It is accepted: the application owns it from now on
     * and must eventually call mux_stream_release. */
    mux_stream_event_fn *on_stream_open;
    /* A PSH frame added data to stream |sid| (called once per such frame). */
    mux_stream_event_fn *on_stream_readable;
    /* v2: a window update reopened the window of stream |sid| after a write was cut short. */
    mux_stream_event_fn *on_stream_writable;
    /* The peer's FIN for stream |sid| arrived (once per stream). Every byte the peer wrote
     * before it is already buffered (its on_stream_readable calls came first); mux_stream_read
     * returns them, then 0 (EOF). The stream stays usable for writing until released. */
    mux_stream_event_fn *on_stream_fin;
    /* The session died: protocol error, keepalive timeout or output failure. No callback
     * follows. Buffered stream data stays readable; everything else returns ERR_CLOSED. */
    mux_close_fn *on_close;
};

struct mux_stats {
    uint64_t fins_released;     /* FINs held by fin_hold_ms (counted in fins_delayed too)
                                   sent early: the peer had read everything */
    uint64_t frames_in;         /* frame headers received */
    uint64_t frames_out;        /* frames sent */
    uint64_t bytes_in;          /* PSH payload bytes buffered for streams */
    uint64_t bytes_out;         /* PSH payload bytes sent */
    uint64_t nop_in, nop_out;   /* keepalive frames */
    uint64_t upd_in, upd_out;   /* v2 window updates applied / sent */
    uint64_t streams_opened;    /* opened locally (SYN sent) */
    uint64_t streams_accepted;  /* opened by the peer */
    uint64_t streams_refused;   /* peer SYNs refused (max_streams or no memory), answered by FIN */
    uint64_t streams_closed;    /* released */
    uint64_t dropped_frames;    /* frames ignored: unknown stream, duplicate SYN/FIN, UPD in v1 */
    uint64_t dropped_bytes;     /* PSH payload bytes read and discarded */
    uint64_t protocol_errors;   /* fatal: bad version or command (session closed) */
    uint64_t keepalive_timeouts; /* sessions closed by the keepalive check (0 or 1) */
    uint64_t input_stalls;      /* mux_input calls cut short by the receive bucket */
    uint64_t rx_buffered;       /* payload bytes currently buffered in all streams */
    uint64_t rx_buffered_peak;  /* maximum of rx_buffered */
    uint64_t rx_alloc;          /* bytes currently allocated for receive buffers (with overhead) */
    uint64_t rx_alloc_peak;     /* maximum of rx_alloc */
    uint64_t last_rx_ms;        /* now_ms of the last mux_input call that completed a header */
    uint64_t fins_delayed;      /* FINs held back by close_wait_ms */
    uint8_t bad_version;        /* version byte of the frame that failed the version check */
};

struct mux;

/* Creates a session. |cfg| is copied (see mux_config_validate); |is_client| picks odd stream
 * ids (3, 5, ...) instead of even (2, 4, ...); |cb| is copied, |user| is passed to every
 * callback; |now_ms| starts the keepalive clocks. Returns NULL on invalid config or no memory. */
struct mux *mux_new(const struct mux_config *cfg, bool is_client, const struct mux_callbacks *cb,
                    void *user, uint64_t now_ms);

/* Frees the session, its streams and buffers; sends nothing. NULL is allowed. */
void mux_free(struct mux *m);

/* Feeds |len| bytes received from the layer below; the input may be split at any byte. Returns
 * the number of bytes consumed (the caller keeps the rest and offers it again later); fewer than
 * |len| when the receive bucket ran out at a frame boundary (see mux_input_blocked): retry after
 * mux_stream_read or mux_stream_release freed budget. Returns ERR_AGAIN if nothing could be
 * consumed for that reason, ERR_PROTO if this input closed the session (on_close was called),
 * ERR_CLOSED if the session was already closed or closed during a callback. */
ssize_t mux_input(struct mux *m, const uint8_t *data, size_t len, uint64_t now_ms);

/* True when the receive bucket is exhausted, so mux_input would consume nothing more. */
bool mux_input_blocked(const struct mux *m);

/* Absolute time (ms) at which mux_tick must next run, or UINT64_MAX if never. */
uint64_t mux_next_deadline(const struct mux *m);

/* Runs due timers: sends the keepalive NOP, checks the keepalive timeout (may call on_close).
 * Returns 0, or ERR_CLOSED if the session is (now) closed. */
int mux_tick(struct mux *m, uint64_t now_ms);

/* Sends a keepalive NOP now (the peer's KCP gets new data), without moving the keepalive
 * schedule. Returns 0, or ERR_CLOSED. */
int mux_ping(struct mux *m);

/* Applies the settings of |cfg| that the peer never sees to a live session (SIGHUP): the
 * keepalive (when it changed, the next NOP leaves keepalive_interval_ms after |now_ms| and
 * the next dead-peer check keepalive_timeout_ms after it), max_streams (streams beyond it stay
 * until they end) and close_wait_ms and fin_hold_ms (for FINs queued from now on). Returns 0, or ERR_INVAL
 * (keepalive timeout below the interval, as mux_config_validate) changing nothing. */
int mux_set_local(struct mux *m, const struct mux_config *cfg, uint64_t now_ms);

/* True once the session is dead (on_close has been called). */
bool mux_is_closed(const struct mux *m);

/* The session's smux version: 1 or 2, or MUX_VERSION_AUTO while it waits for the peer's first
 * frame to decide. */
int mux_version(const struct mux *m);

/* Opens a stream: sends SYN and stores its id in |*sid|. Returns 0; ERR_LIMIT if max_streams
 * streams are live or the id space is exhausted; ERR_CLOSED; ERR_NOMEM. */
int mux_stream_open(struct mux *m, uint32_t *sid);

/* Copies up to |cap| (> 0) buffered bytes of stream |sid| into |buf|, returning the count (> 0);
 * this frees receive budget and, in v2, may send UPD. Returns 0 at end of stream (the peer's FIN
 * arrived and all data before it was read), ERR_AGAIN if no data is buffered yet, ERR_CLOSED if
 * |sid| is not a live stream or the session died and the buffer is empty, ERR_INVAL if cap is 0. */
ssize_t mux_stream_read(struct mux *m, uint32_t sid, uint8_t *buf, size_t cap);

/* Sends up to |len| bytes of |data| on stream |sid| as PSH frames of at most max_frame_size.
 * v1 takes everything; v2 takes at most the peer's open window (then on_stream_writable reports
 * when it reopens). Returns the count taken (0 only for len 0); ERR_AGAIN if the v2 window is
 * closed; ERR_CLOSED if the stream is unknown, already closed for writing, or the session is
 * dead; ERR_PROTO if the peer claimed to have consumed more than we sent (smux ErrConsumed). */
ssize_t mux_stream_write(struct mux *m, uint32_t sid, const uint8_t *data, size_t len);

/* Bytes mux_stream_write would take now: the v2 window left (0 when closed), SIZE_MAX in v1;
 * 0 for an unknown or write-closed stream. */
size_t mux_stream_writable(const struct mux *m, uint32_t sid);

/* Half-close: ends our write side by sending FIN (only the first call sends it). The stream
 * still receives until released. Returns 0, or ERR_CLOSED (unknown stream or dead session). */
int mux_stream_close(struct mux *m, uint32_t sid);

/* Half-close after the close-wait (kcptun --closewait): as mux_stream_close, but the FIN leaves
 * close_wait_ms after |now_ms| (from mux_tick; mux_next_deadline includes it). Writes are
 * refused from now on; reading goes on. Releasing the stream meanwhile keeps the FIN due (it
 * then goes out for the forgotten id); mux_stream_close sends it at once. kcptun's server waits
 * 30 s before its FIN, because a peer on smux >= 1.5.54 that has already sent its own FIN
 * destroys the stream, with data it has not read yet, when ours arrives. With close_wait_ms 0
 * and fin_hold_ms set, a v2 stream whose peer's FIN has arrived holds its FIN until the peer's
 * UPD reports everything we wrote read, or fin_hold_ms. Without a delay, or with more than
 * max_streams FINs already waiting, the FIN leaves at once. Returns 0, or
 * ERR_CLOSED (unknown stream or dead session). */
int mux_stream_close_wait(struct mux *m, uint32_t sid, uint64_t now_ms);

/* Forgets stream |sid|: sends FIN unless already sent or pending (and the session is alive), discards
 * unread data (returning its budget) and frees the stream; later frames for |sid| are dropped.
 * This is smux's Stream.Close. Returns 0, or ERR_CLOSED if |sid| is not a live stream. */
int mux_stream_release(struct mux *m, uint32_t sid);

/* Payload bytes buffered for reading on stream |sid| (0 if unknown). */
size_t mux_stream_buffered(const struct mux *m, uint32_t sid);

/* True if |sid| is a live (not yet released) stream. */
bool mux_stream_exists(const struct mux *m, uint32_t sid);

/* Number of live streams. */
size_t mux_stream_count(const struct mux *m);

/* Copies the counters into |*st|. */
void mux_get_stats(const struct mux *m, struct mux_stats *st);

/* Sets the last allocated stream id, so the next mux_stream_open uses |last| + 2 (test hook for
 * the id-exhaustion path; the parity of |last| must match the session's role). */
void mux_debug_set_last_sid(struct mux *m, uint32_t last);

#endif
