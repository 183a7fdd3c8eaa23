/* SPDX-License-Identifier: MIT */
/* When a server session follows its peer to a new address: the decision, without I/O. */
#ifndef KTUN_ROAM_H
#define KTUN_ROAM_H

/*
 * A datagram whose conv belongs to a live session arrives from an address that is not the
 * session's reply address (a NAT rebound, the client moved or replaced its socket, or someone
 * replays a captured datagram). The session layer feeds it to the session's link (KCP drops
 * what it has seen already), collects the facts below and asks roam_decide what to do with
 * the reply address. The rule, its threat model and its limits are in docs/roaming.md.
 *
 * "Newest": the datagram carries a data segment whose timestamp (the peer's clock) is not
 * older than any data segment the session accepted, or an acknowledgement echoing a timestamp
 * (our clock) not older than any echoed so far. A captured datagram replayed later is older
 * than what the real peer sent since, whether or not its original was delivered.
 *
 *   secure mode (authenticated crypt; the crypt's sender table already refused replays):
 *     authenticated and newest                                  ROAM_MOVE, at once
 *   kcptun-compatible modes (a captured datagram can be replayed verbatim):
 *     newest and it advanced the session (new data, or data of ours acknowledged)  ROAM_MOVE
 *     newest, carries data segments, advanced nothing           ROAM_PROBE, at most once per
 *         ROAM_PROBE_GAP_MS: the ACKs it caused also go to the new address, so that a real
 *         peer whose acknowledgements were lost on the dead path is answered and proves
 *         itself with its next new data
 *   anything else (older, ACK-only without progress, window probes, FEC parity)  ROAM_IGNORE
 *
 * Every datagram the session accepts, from any address, goes through roam_observe so that
 * "newest" compares with everything seen. Time is |now_ms| of the caller's monotonic clock.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Shortest gap between two probes of one session (bounds what replays can reflect). */
#define ROAM_PROBE_GAP_MS 200u
/* Datagrams a probe may copy to the new address. */
#define ROAM_PROBE_MAX_DGRAMS 2u

enum roam_mode {
    ROAM_MODE_COMPAT, /* kcptun's crypt methods: datagrams can be replayed */
    ROAM_MODE_SECURE, /* authenticated, replay-checked datagrams */
};

enum roam_verdict {
    ROAM_IGNORE, /* keep the reply address; the datagram was still fed to the session */
    ROAM_PROBE,  /* keep it, and copy the datagrams this one caused to the new address too */
    ROAM_MOVE,   /* the new address becomes the reply address now (with what this one caused) */
};

/* Timestamps read from one opened payload (roam_scan). */
struct roam_scan {
    bool has_push;    /* at least one data segment of the conv */
    bool has_ack;     /* at least one ACK segment of the conv */
    uint32_t push_ts; /* newest data segment timestamp (valid with has_push) */
    uint32_t ack_ts;  /* newest echoed timestamp (valid with has_ack) */
};

/* What the session layer knows about one datagram from an address other than the reply
 * address, whose conv is the session's. */
struct roam_facts {
    bool authenticated;    /* the crypt verified it and its replay table accepted it (secure) */
    bool parity_only;      /* an FEC parity shard: carries no KCP segment of its own */
    bool advanced;         /* feeding it advanced the session: data it had not received, or
                              acknowledgement of data it was waiting for */
    struct roam_scan scan; /* its timestamps */
};

/* Per-session state and counters. */
struct roam {
    enum roam_mode mode;
    bool seen_push, seen_ack; /* the maxima below are valid */
    uint32_t max_push_ts;     /* newest data timestamp accepted (peer clock, wraps) */
    uint32_t max_ack_ts;      /* newest echoed timestamp (our clock, wraps) */
    bool probed;              /* |last_probe_ms| is valid */
    uint64_t last_probe_ms;   /* when the last probe was granted */
    uint64_t moves;           /* ROAM_MOVE verdicts */
    uint64_t probes;          /* ROAM_PROBE verdicts */
    uint64_t ignored;         /* ROAM_IGNORE verdicts */
};

struct crypt;

/* ROAM_MODE_SECURE for the secure mode only (authenticated and replay-checked); every other
 * method, aes-128-gcm included (authenticated, but a captured datagram can be replayed), is
 * ROAM_MODE_COMPAT. */
enum roam_mode roam_mode_of(const struct crypt *c);

void roam_init(struct roam *r, enum roam_mode mode);

/* Reads the timestamps of the segments of conversation |conv| in the opened payload |p|
 * (|len| bytes: an optional FEC data header, then KCP segments). Parity shards and malformed
 * input give an empty scan. Never reads outside [p, p + len). */
void roam_scan(const uint8_t *p, size_t len, uint32_t conv, struct roam_scan *out);

/* Records the timestamps of a datagram the session accepted. */
void roam_observe(struct roam *r, const struct roam_scan *s);

/* True if |s| is not older than what roam_observe recorded (see "newest" above). */
bool roam_is_newest(const struct roam *r, const struct roam_scan *s);

/* Decides for one datagram from a new address (call before roam_observe of that datagram)
 * and counts the verdict. */
enum roam_verdict roam_decide(struct roam *r, const struct roam_facts *f, uint64_t now_ms);

/* "move", "probe" or "ignore". */
const char *roam_verdict_name(enum roam_verdict v);

/* ---- the client's side: is the path to the server alive? ----------------------------------
 *
 * A client whose server follows it (a ktun server: docs/roaming.md section 5) watches each
 * session's path. While something is outstanding (data or a keepalive waiting for its
 * acknowledgement) and nothing came from the server for ROAM_PATH_RTOS retransmission
 * timeouts (at least ROAM_PATH_MIN_MS), the path counts as dead: the client replaces it (a
 * new UDP socket, so a new source port, or a new fake-TCP connection) and carries on with the
 * same session. After ROAM_PATH_TRIES replacements without an answer the server is taken for
 * gone (it restarted and lost the session, or is unreachable): the session is closed at once,
 * so that its streams end instead of hanging and new connections get a new session.
 * The retransmission timeout is KCP's, measured on the path, so the silence that counts as
 * death follows the path's round trip; the rule starts with the server's first answer.
 *
 * Silence counts from the later of the server's last answer and the moment something became
 * outstanding: while nothing waits for the server, it has no reason to send, and a path that
 * was idle for a minute is not dead when the first keystroke after it leaves.
 *
 * Only silence the client watched counts: when its own event loop did not run (the host was
 * loaded and did not schedule the process, or it was stopped), the server's answers wait in
 * the socket unread, and the first thing the loop does on waking may be the path check. The
 * shell reports each wake that came later than it planned (roam_path_late); a delay longer
 * than one RTO (the path's own bound on noise: smaller delays are in the round trip it
 * measured) is taken out of the silence. */
#define ROAM_PATH_RTOS 3u
#define ROAM_PATH_MIN_MS 1000u
#define ROAM_PATH_TRIES 2u

enum roam_path_action {
    ROAM_PATH_WAIT,    /* nothing to do before roam_path_deadline */
    ROAM_PATH_REPLACE, /* replace the path now, keep the session */
    ROAM_PATH_GONE,    /* the server is gone: close the session */
};

struct roam_path {
    bool answered;      /* the server answered at least once (the RTO is measured) */
    uint64_t rx_ms;     /* last answer from the server, the last replacement, or when
                           something became outstanding, whichever is later; moved on by the
                           time the client's loop was stalled since */
    bool outstanding;   /* something waited for the server when last told */
    unsigned tries;     /* replacements since the server last answered */
    uint64_t replaced;  /* ROAM_PATH_REPLACE verdicts in all */
    uint64_t stalls;    /* wakes late by more than an RTO (roam_path_late) */
    uint64_t stalled_ms; /* ... and the silence they took out */
};

void roam_path_init(struct roam_path *p, uint64_t now_ms);

/* The server answered: a datagram from it acknowledged something the session was waiting
 * for, or came while nothing was outstanding. (A datagram alone proves nothing about the
 * path towards the server: a server whose acknowledgements are lost on a path that died one
 * way keeps resending its own data.) Returns true if that answers a replaced path (worth a
 * log line). */
bool roam_path_answered(struct roam_path *p, uint64_t now_ms);

/* Whether something waits for the server's answer at |now_ms|: the shell tells every time it
 * may have changed (the session layer: whenever it re-arms its timer); roam_path_check tells
 * too. When something becomes outstanding, the silence starts then. */
void roam_path_outstanding(struct roam_path *p, uint64_t now_ms, bool outstanding);

/* The client's event loop woke at |now_ms|, |late_ms| after it planned to (a timer that was
 * due then). With |rto_ms| the session's retransmission timeout: a delay longer than that
 * was a stall of the client itself, not silence of the path, and does not count. Call it
 * before roam_path_check at that wake. */
void roam_path_late(struct roam_path *p, uint64_t now_ms, uint64_t late_ms, uint32_t rto_ms);

/* When roam_path_check has something to do: UINT64_MAX while nothing is outstanding, and
 * before the server's first answer (a path that never worked is not replaced: the round trip
 * is unknown, and a server that never answered is no reason to believe a new port helps).
 * |rto_ms|: the session's current retransmission timeout. */
uint64_t roam_path_deadline(const struct roam_path *p, bool outstanding, uint32_t rto_ms);

/* The verdict at |now_ms| (it tells roam_path_outstanding |outstanding| first); a REPLACE
 * restarts the silence count (the new path gets its own ROAM_PATH_RTOS timeouts). */
enum roam_path_action roam_path_check(struct roam_path *p, uint64_t now_ms, bool outstanding,
                                      uint32_t rto_ms);

#endif
