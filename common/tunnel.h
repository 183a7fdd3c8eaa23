/* SPDX-License-Identifier: MIT */
/* Pure core: one tunnel session (link + compression + mux) without sockets, clocks or loops. */
#ifndef KTUN_TUNNEL_H
#define KTUN_TUNNEL_H

#include "common/link.h"
#include "common/mux.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * A tunnel is what kcptun calls a session: one KCP conversation carrying smux streams,
 * optionally through snappy framing.
 *
 *   stream bytes --tunnel_stream_write--> mux frames --> comp encoder --> link_send
 *       --> output(datagram)                                                 (sending)
 *   tunnel_input(datagram) --> link --> link_recv --> comp decoder --> mux_input
 *       --> on_deliver --> tunnel_stream_read --> stream bytes               (receiving)
 *
 * The caller (a libev shell, the simulator, a test) owns every address, socket, transport
 * and timer: the core sees datagrams and a millisecond clock |now_ms| that never goes back.
 * Where a datagram came from and where output goes is the caller's business; so is the
 * mapping from datagrams to tunnels (tunnel_route helps a listener with kcp-go's rules).
 *
 * Driving a tunnel:
 *   - tunnel_input / tunnel_input_payload for each datagram received, then one tunnel_pump
 *     for the batch;
 *   - tunnel_tick at tunnel_next_deadline, then tunnel_pump;
 *   - tunnel_pump after local events too (a stream was written, opened or released).
 * tunnel_pump moves received bytes up to mux (calling on_deliver so the caller can read its
 * streams), lets paused writers go on (on_writable), flushes the link, and reports the tunnel's death: once tunnel_is_dead is true
 * the caller frees the tunnel (it sends nothing more; kcptun sessions end silently).
 *
 * A tunnel dies when mux closes the session (a protocol error, the keepalive check: no frame
 * from the peer for one keepalive timeout while the receive budget has room) or when the
 * snappy stream from the peer is corrupt. A KCP segment that exhausted its retransmissions
 * does not by itself end the tunnel: the keepalive check does.
 *
 * Receive budget: tunnels of one process may share a struct tunnel_budget. While the bytes
 * buffered for streams of all tunnels sharing it reach its limit, a tunnel stops taking
 * bytes from KCP (so KCP's receive window closes towards the peer) and marks itself
 * stalled. Once the buffered total drops below the limit, the caller calls tunnel_unstall on
 * every stalled tunnel and pumps it. Each tunnel also has mux's own budget (--smuxbuf).
 * KCP receive windows that grow with the path (link_config.rcv_budget) take what they grow
 * by from the same budget and give it back when their tunnel is freed; all of them together
 * at most half the limit, so the data waiting for streams always keeps the other half.
 *
 * Callbacks run inside tunnel_* calls; they may call tunnel_stream_* but never tunnel_input,
 * tunnel_tick, tunnel_pump or tunnel_free of the same tunnel.
 */

/* tunnel_stream_room reports nothing below this much room (a read is not worth doing). */
#define TUNNEL_MIN_ROOM 2048u
/* Bytes taken from KCP at a time (kept until mux consumes them). */
#define TUNNEL_RX_BUF 16384u

/* Process-wide receive budget shared by tunnels (see above). Zero-initialise it and set
 * |limit| (bytes, 0 for none); the tunnels keep |used| and |nstalled| up to date. */
struct tunnel_budget {
    uint64_t limit;    /* stream bytes buffered by all tunnels before they stop reading KCP */
    uint64_t used;     /* stream bytes buffered now by all tunnels sharing it */
    uint64_t reserved; /* bytes of KCP receive windows grown beyond their configured size */
    size_t nstalled;   /* tunnels stalled for want of budget */
};

/* True while the tunnels sharing |b| buffer, or have reserved for grown receive windows,
 * |limit| bytes or more (false for NULL). */
bool tunnel_budget_over(const struct tunnel_budget *b);

/*
 * Auto-detection (a listener that does not force --smuxver / --nocomp, docs/protocol.md):
 * with comp_auto the first byte that comes out of KCP decides the compression of the session
 * (0xff, the type of the snappy stream identifier chunk: snappy framing; anything else: plain
 * smux frames, whose first byte is the version); with mux.version MUX_VERSION_AUTO the
 * version byte of the first frame decides the smux version. Until the peer's first byte has
 * arrived the tunnel sends no keepalive, so a peer is never sent a format it may refuse.
 *
 * Mismatches: when the peer's first frame does not parse because of a different format, the
 * tunnel dies and its log callback gets one line naming the flag (--smuxver or --nocomp).
 * A client also notices a server whose smux closed the session at its first frame (kcptun
 * does so, silently, on a version or compression mismatch): no smux frame ever arrived, and
 * the server's KCP either acknowledged data and then answered as a fresh session (una 0,
 * kcp-go's listener opens a new one for the conv; confirmed by the answer to a NOP sent on
 * the first such segment, which a late datagram of the session's start may also be) or
 * acknowledged data and then fell silent
 * until the keepalive check. Such a tunnel dies with tunnel_peer_refused true; the client
 * tries the next format of tunnel_next_format for new sessions.
 */
/* A client's tunnel_config.replay_max while it does not know the server's smux format: below
 * the smux v2 initial window (MUX_INITIAL_PEER_WINDOW), so a copy opens again at once. */
#define TUNNEL_REPLAY_MAX 131072u

struct tunnel_config {
    struct link_config link; /* KCP + FEC settings */
    struct mux_config mux;   /* smux settings (version MUX_VERSION_AUTO: the peer decides) */
    bool nocomp;             /* no snappy framing between mux and KCP */
    /* ktun extensions (docs/extensions.md). A server answers capability offers with
     * |ext_caps|; a client with |ext_offer| offers |ext_caps| (it must only be set when the
     * configuration needs a ktun peer, or in the secure mode: a kcptun server never gets one). */
    uint32_t ext_caps;       /* EXT_CAP_* this end supports */
    bool ext_offer;          /* client: send a capability offer */
    bool comp_auto;          /* the peer's first byte decides compression (nocomp ignored) */
    /* Client: bytes of each stream kept while the server has not sent one smux frame (its
     * smux may still refuse the session, tunnel_peer_refused); a stream's writes stop at this
     * bound (tunnel_stream_room) until the server is heard. 0: no copies. */
    size_t replay_max;
};

/* Capability offers a client sends before it takes the server for kcptun (or an older
 * ktun); the first follows the tunnel's creation, the next ones after max(this, RTO) times
 * 1, 2, 4, then 8 (about 16 s in all). Offers sent while nothing at all came from the server
 * (its KCP did not even acknowledge) go on at the longest wait and do not count: the count
 * starts again when the server is heard. */
#define TUNNEL_OFFER_TRIES 10
#define TUNNEL_OFFER_WAIT_MS 250u
/* Datagrams (bytes of their records) a client holds while its offer is unanswered. */
#define TUNNEL_DGRAM_HOLD 16384u

/* Sends one sealed datagram (|len| bytes, borrowed for the call) towards the peer. */
typedef void tunnel_output_fn(void *user, const uint8_t *dgram, size_t len);
/* A stream event for stream |sid|. */
typedef void tunnel_stream_fn(void *user, uint32_t sid);
/* The tunnel has new stream data buffered (or stream ends): read the streams now. */
typedef void tunnel_event_fn(void *user);
/* One line worth a warning in the log (a corrupt compressed stream). */
typedef void tunnel_log_fn(void *user, const char *msg);

/* A received datagram (borrowed for the callback). */
struct tunnel_dgram {
    uint32_t flow;           /* flow id chosen by the end that opened the flow */
    const uint8_t *target;   /* "host:port" (no NUL), |target_len| bytes; NULL if absent;
                              * "" (length 0): the server's -t target */
    size_t target_len;
    const uint8_t *data;     /* payload */
    size_t len;
    bool recovered;          /* its packet was rebuilt from FEC parity */
};

struct tunnel_callbacks {
    tunnel_output_fn *output;        /* required */
    /* The peer opened stream |sid|. The callee owns it and must eventually call
     * tunnel_stream_release. NULL: every such stream is released at once (the client). */
    tunnel_stream_fn *on_stream_open;
    /* Called by tunnel_pump after it moved received bytes up to mux: the caller reads its
     * streams (tunnel_stream_read). Reading frees budget, so it may be called several times
     * per pump. May be NULL. */
    tunnel_event_fn *on_deliver;
    /* Called by tunnel_pump, before it flushes the link, when the tunnel is alive and
     * tunnel_send_room is at least TUNNEL_MIN_ROOM: sources paused for want of room may go
     * on. May be NULL. */
    tunnel_event_fn *on_writable;
    tunnel_log_fn *log;              /* may be NULL */
    /* Called by tunnel_pump once the peer's capabilities are known, or once the client gave
     * its offer up (tunnel_peer_is_ktun then stays false). May be NULL. */
    tunnel_event_fn *on_caps;
    /* A datagram of the datagram channel arrived (see tunnel_dgram_send). May be NULL:
     * datagrams are then counted as dropped. */
    void (*on_dgram)(void *user, const struct tunnel_dgram *d);
    /* The peer sent EXT_FLOW_OPEN or EXT_FLOW_CLOSE (|type|) for |flow|. May be NULL. */
    void (*on_flow)(void *user, uint8_t type, uint32_t flow);
};

struct tunnel_stats {
    uint64_t bytes_sent;      /* bytes handed to KCP (framing included) */
    uint64_t bytes_received;  /* bytes taken from KCP */
    uint64_t dgram_out;       /* datagrams sent (datagram channel) */
    uint64_t dgram_in;        /* datagrams delivered */
    uint64_t dgram_recovered; /* ... of which FEC rebuilt the packet */
    uint64_t dgram_dropped;   /* datagrams dropped: too big, duplicate, stale, malformed, no
                               * ktun peer, held too long */
    uint64_t dgram_toobig;    /* ... of which too big for one packet (never fragmented) */
    struct link_stats link;   /* KCP, FEC and datagram counters */
    struct mux_stats mux;     /* stream counters */
};

struct tunnel;

/* Creates a tunnel for conversation |conv|. |cfg| and |cb| are copied; |crypt| and |budget|
 * (may be NULL) are borrowed and must outlive the tunnel; |user| goes to every callback;
 * |now_ms| starts the keepalive clocks. Returns NULL with *|err| (may be NULL) set to an
 * ERR_* of link_new or ERR_NOMEM. */
struct tunnel *tunnel_new(uint32_t conv, const struct tunnel_config *cfg, bool is_client,
                          struct crypt *crypt, struct tunnel_budget *budget,
                          const struct tunnel_callbacks *cb, void *user, uint64_t now_ms,
                          int *err);

/* Frees |t| and its streams, giving its share of the budget back; sends nothing. NULL is
 * allowed. */
void tunnel_free(struct tunnel *t);
/* Gives memory kept for reuse back: the compression buffers when they hold nothing, the
 * link's spare segments (link_trim). For idle sessions; the next traffic allocates again. */
void tunnel_trim(struct tunnel *t);

/* Feeds one raw datagram (opened in place, so |dgram| is modified). Returns link_input's
 * result (drops are counted in the link's stats). Call tunnel_pump after the batch. */
int tunnel_input(struct tunnel *t, uint8_t *dgram, size_t len, uint64_t now_ms);

/* Feeds a payload the caller already opened with crypt_open (a listener does, to route). */
int tunnel_input_payload(struct tunnel *t, const uint8_t *payload, size_t len, uint64_t now_ms);

/* Runs the timers due at |now_ms| (KCP retransmissions, keepalive NOP and check). Call
 * tunnel_pump afterwards. */
void tunnel_tick(struct tunnel *t, uint64_t now_ms);

/* Moves received data up to mux (on_deliver) and sends what is due. Returns false once the
 * tunnel is dead (then free it). A call from inside a callback of the same tunnel does
 * nothing. */
bool tunnel_pump(struct tunnel *t, uint64_t now_ms);

/* Absolute time of the next tunnel_tick with work to do, UINT64_MAX if none. */
uint64_t tunnel_next_deadline(const struct tunnel *t, uint64_t now_ms);

/* Clears the tunnel's stalled mark (see the receive budget above). Returns true if it was
 * stalled: pump it soon. */
bool tunnel_unstall(struct tunnel *t);
/* True while the tunnel waits for the shared budget. */
bool tunnel_is_stalled(const struct tunnel *t);

/* True once the tunnel died; tunnel_dead_reason says why (a static string, NULL if alive). */
bool tunnel_is_dead(const struct tunnel *t);
const char *tunnel_dead_reason(const struct tunnel *t);

/* Marks the tunnel dead with |reason| (static) unless it already died. */
void tunnel_kill(struct tunnel *t, const char *reason);

uint32_t tunnel_conv(const struct tunnel *t);
/* The session's format once known: true with the smux version in |*smuxver| and whether
 * snappy framing is on in |*comp|; false while auto-detection still waits for the peer. */
bool tunnel_format(const struct tunnel *t, int *smuxver, bool *comp);
/* Client: what a session that heard nothing usable from the server after |age_ms| can mean.
 * Returns false when there is nothing to explain (the server's KCP answered, or nothing was
 * sent); otherwise writes one line to |buf| (|cap| bytes) naming the likely causes and flags:
 * no datagram came back (server down, wrong address or port, a firewall, --tcp, or a
 * different --key/--crypt, which servers drop without an answer), datagrams
 * came back that do not open (--key or --crypt), or ones that open and carry no KCP segment
 * for us (--datashard/--parityshard: FEC on one end only). */
bool tunnel_explain_silence(const struct tunnel *t, uint64_t age_ms, char *buf, size_t cap);
/* A listener refusing a new session (its session limit) tells the client at once instead of
 * leaving it to time out: the client's opened first datagram |payload| (|len| bytes, conv
 * |conv|) is acknowledged (so the client does not resend it) together with KCP's first segment
 * of TUNNEL_REFUSAL_LEN zero bytes, in one datagram sealed by |crypt|, framed per |cfg|, sent
 * through |out|. Neither a snappy
 * stream (it must start with the stream identifier) nor smux (version 0) takes them, so a
 * kcptun client closes the session and its connections at once, and a ktun client logs that
 * the server refused it. Nothing a kcptun peer does not already parse: a plain KCP segment.
 * Returns 0 or an ERR_* (no memory, bad configuration). */
#define TUNNEL_REFUSAL_LEN 8u
/* True if the opened |payload| starts with a session's first data segment (KCP PUSH, sn 0,
 * behind an FEC data header or not): what a refusal answers, and nothing else (an ACK of the
 * refusal is not answered again). */
bool tunnel_is_session_start(const uint8_t *payload, size_t len);
int tunnel_send_refusal(uint32_t conv, const uint8_t *payload, size_t len,
                        const struct link_config *cfg, struct crypt *crypt,
                        tunnel_output_fn *out, void *user, uint64_t now_ms);

/* True once a smux frame from the peer arrived. */
bool tunnel_peer_heard(const struct tunnel *t);
/* True if the tunnel died because the peer's smux refused the session (see above). */
bool tunnel_peer_refused(const struct tunnel *t);
/* Client, with tunnel_config.replay_max: after the server refused the session
 * (tunnel_peer_refused), everything stream |sid| wrote (*|data|, *|len|, valid until
 * tunnel_free), so that the stream can open again on the next session and send it again.
 * False if the stream has no such copy (the server was heard, or none was kept). */
bool tunnel_stream_replay(const struct tunnel *t, uint32_t sid, const uint8_t **data,
                          size_t *len);
/* The client's probe after a refusal: advances |*step| (0 at first) to the next format to try
 * for new sessions, given the configured |smuxver| and |nocomp| and which of them the user
 * set (|ver_set|, |comp_set|: those stay). The order is: the other smux version, the other
 * compression, both. Writes the format to |*ver_out| and |*nocomp_out| and returns true, or
 * returns false when nothing is left to try. */
bool tunnel_next_format(unsigned *step, int smuxver, bool nocomp, bool ver_set, bool comp_set,
                        int *ver_out, bool *nocomp_out);
/* Updates the secure crypt mode's wall-clock offset (see link_set_wall_offset). */
void tunnel_set_wall_offset(struct tunnel *t, int64_t wall_offset_ms);
/* Copies the counters into |*out|. */
void tunnel_get_stats(const struct tunnel *t, struct tunnel_stats *out);
/* What grows when the session advances (docs/roaming.md): |*recv_avail| in-order bytes
 * received and not yet taken from KCP, |*wait_snd| segments waiting for acknowledgement
 * (shrinks as the peer acknowledges). Compare before and after one tunnel_input. */
void tunnel_progress(const struct tunnel *t, size_t *recv_avail, size_t *wait_snd);
/* KCP's current retransmission timeout in ms. */
uint32_t tunnel_rto(const struct tunnel *t);
/* Sends a keepalive (an smux NOP) now: new data for the peer, which any smux peer accepts.
 * Returns 0 or ERR_CLOSED. */
int tunnel_ping(struct tunnel *t);
/* Applies the settings of |cfg| that the peer never sees to a live tunnel (SIGHUP): mux's
 * keepalive, stream limit and close-wait (mux_set_local). Returns 0 or ERR_INVAL. */
int tunnel_set_local(struct tunnel *t, const struct tunnel_config *cfg, uint64_t now_ms);
/* Number of live streams. */
size_t tunnel_stream_count(const struct tunnel *t);

/* ---- ktun extensions (docs/extensions.md) ------------------------------------------- */

/* True when the peer is known to be ktun: in the secure mode (only ktun speaks it) and after
 * a capability exchange. A kcptun peer is never sent an extension; rules that need a ktun
 * peer (a client that moves to a new path, docs/roaming.md) are used only then. */
bool tunnel_peer_is_ktun(const struct tunnel *t);
/* Capabilities both ends have (EXT_CAP_*): the exchange's result, 0 before it (and for a
 * kcptun peer). */
uint32_t tunnel_peer_caps(const struct tunnel *t);
/* True while the client's capability offer is unanswered and not yet given up. */
bool tunnel_caps_pending(const struct tunnel *t);

/* Largest datagram payload tunnel_dgram_send takes with a target of |target_len| bytes (0:
 * none): what one packet carries (the --mtu minus the crypt, FEC, segment and record
 * headers). */
size_t tunnel_dgram_max(const struct tunnel *t, size_t target_len);

/* Sends one datagram of flow |flow| (|target|, |target_len| bytes: "host:port"; NULL: no
 * target; non-NULL with length 0: the server's -t target; see docs/extensions.md),
 * unreliably: it leaves with the next packet, protected by FEC, and is
 * never retransmitted. While the client's offer is unanswered it is held (up to
 * TUNNEL_DGRAM_HOLD bytes; the secure mode sends at once). Call tunnel_pump afterwards.
 * Returns 0; ERR_TOOBIG (larger than tunnel_dgram_max, counted, never fragmented); ERR_PROTO
 * when the peer has no datagram channel (kcptun; counted); ERR_LIMIT when the hold is full
 * (counted); ERR_CLOSED once the tunnel died. */
int tunnel_dgram_send(struct tunnel *t, uint32_t flow, const uint8_t *target,
                      size_t target_len, const uint8_t *data, size_t len);

/* Tells the peer that flow |flow| opened (EXT_FLOW_OPEN, the server: stop repeating the
 * target) or closed (EXT_FLOW_CLOSE). Same rules as tunnel_dgram_send. */
int tunnel_flow_signal(struct tunnel *t, uint8_t type, uint32_t flow);

/* ---- streams ------------------------------------------------------------------------ */

/* Opens a stream (SYN) and stores its id in |*sid|. Returns 0 or an ERR_* of
 * mux_stream_open. */
int tunnel_stream_open(struct tunnel *t, uint32_t *sid);

/* Bytes stream |sid| may write now without growing the link's send queue past its room:
 * 0 while that room is under TUNNEL_MIN_ROOM or the v2 stream window is closed, else at
 * most |cap|. A source that gets 0 pauses until tunnel_send_room is back to TUNNEL_MIN_ROOM. */
size_t tunnel_stream_room(const struct tunnel *t, uint32_t sid, size_t cap);

/* Bytes all streams together may still write (0 once the session died). */
size_t tunnel_send_room(const struct tunnel *t);

/* As mux_stream_write, mux_stream_read, mux_stream_close (half-close: FIN) and
 * mux_stream_release. */
ssize_t tunnel_stream_write(struct tunnel *t, uint32_t sid, const uint8_t *data, size_t len);
ssize_t tunnel_stream_read(struct tunnel *t, uint32_t sid, uint8_t *buf, size_t cap);
int tunnel_stream_close(struct tunnel *t, uint32_t sid);
/* As mux_stream_close_wait: the half-close whose FIN waits the configured close-wait. */
int tunnel_stream_close_wait(struct tunnel *t, uint32_t sid, uint64_t now_ms);
int tunnel_stream_release(struct tunnel *t, uint32_t sid);

/* ---- routing (listeners) ------------------------------------------------------------ */

enum tunnel_route {
    TUNNEL_ROUTE_FEED,    /* feed it to the existing tunnel */
    TUNNEL_ROUTE_NEW,     /* no tunnel yet: create one for the returned conv, then feed it */
    TUNNEL_ROUTE_REPLACE, /* the peer restarted: free the tunnel, create one for the conv */
    TUNNEL_ROUTE_DROP,    /* drop and count it as an input error */
    TUNNEL_ROUTE_IGNORE,  /* drop silently (FEC parity for no tunnel) */
};

/* kcp-go's listener rules for an opened payload from a peer address whose tunnel is |t|
 * (NULL if none): parity feeds the existing tunnel and never opens one; the tunnel's own
 * conv feeds it; another conv replaces the tunnel only when its first segment has sn 0 (the
 * client restarted on the same address), else it is dropped; an unparsable payload is
 * dropped. Stores the payload's conv in |*conv|. */
enum tunnel_route tunnel_route(const struct tunnel *t, const uint8_t *payload, size_t len,
                               uint32_t *conv);

#endif
