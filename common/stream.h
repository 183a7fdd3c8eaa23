/* SPDX-License-Identifier: MIT */
/* libev shell: the TCP side of one stream of a session. */
#ifndef KTUN_STREAM_H
#define KTUN_STREAM_H

#include "common/fwd.h"
#include "common/ring.h"

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * Back-pressure: a TCP socket is read only while the tunnel's send queue has room
 * (tunnel_stream_room), so a full KCP send window stops reading TCP; a stream's data is taken
 * from the tunnel only while its TCP socket takes the bytes, so a TCP peer that stops reading
 * fills the tunnel's receive budget and closes the KCP receive window instead of growing
 * memory.
 */

/* Per-stream ring of bytes on their way to the TCP socket. */
#define STREAM_RING 16384
/* Once one direction of a stream has ended, the other may go on this long (seconds) before
 * both are closed. smux has no reset: a FIN is all the peer learns when an application goes
 * away, so a half-closed stream must not live forever (newer kcptun's --closewait). */
#define STREAM_CLOSE_WAIT_S 30.0
/* TCP reads per readiness event while the socket has more (fewer loop turns and sends). */
#define STREAM_TCP_READS 4

struct sess;

/* Target header phase of a stream between ktun ends (docs/forwards.md). */
enum stream_fwd {
    STREAM_FWD_NONE = 0, /* plain bytes both ways (also every stream with a kcptun peer) */
    STREAM_FWD_HEADER,   /* server: waiting for the target header; no socket yet */
    STREAM_FWD_RESOLVE,  /* server: the role looks the target's name up (stream_target_done) */
    STREAM_FWD_CONNECT,  /* server: dialling the target the header named; replies once known */
    STREAM_FWD_REPLY,    /* client: the server's reply comes before the stream's bytes */
    STREAM_FWD_WAIT,     /* client: no tunnel stream yet, the capability exchange is on */
};

/* Bytes a SOCKS5 client may send after its request, before the stream opens. */
#define STREAM_EARLY_MAX 512

/* What a stream waiting for the capability exchange will open with. */
struct stream_wait {
    bool has_target;             /* false: the server's -t (an -l connection) */
    struct fwd_target target;
    size_t early_len;
    uint8_t early[STREAM_EARLY_MAX];
};

/* One TCP connection carried as one tunnel stream. */
struct stream {
    struct sess *s;              /* owning session */
    struct stream *prev, *next;  /* session's stream list */
    uint32_t sid;                /* mux stream id */
    int fd;                      /* TCP socket */
    ev_io rio, wio;              /* TCP readable / writable */
    ev_timer linger;             /* close-wait once one direction has ended */
    struct ring out;             /* stream data waiting for the TCP socket */
    bool connecting;             /* server: the dial is in progress */
    bool rd_paused;              /* TCP reads stopped for want of link room */
    bool rd_eof;                 /* TCP EOF seen, FIN sent */
    bool peer_eof;               /* the peer's FIN was read from mux */
    bool wr_shut;                /* TCP write side shut down after peer_eof */
    uint8_t fwd;                 /* enum stream_fwd */
    bool socks;                  /* client: a -D connection (the reply becomes SOCKS5's) */
    struct stream_wait *wait;    /* STREAM_FWD_WAIT: how to open, once the server is known */
    struct resolver *res;        /* STREAM_FWD_RESOLVE: the lookup (freed with the stream) */
    void *role_data;             /* the role's state of that lookup (free()d with the stream) */
};

/* The stream_target hook's "decided later" (see stream_target_done). */
#define STREAM_TARGET_WAIT (-1000)

/* Opens a new stream on |s| for the connected TCP socket |fd| (client): for the server's -t
 * target; between ktun ends with a target header for it. Returns 0, or an ERR_* from
 * tunnel_stream_open (then |fd| is closed). */
int stream_open_local(struct sess *s, int fd);

/* Client: opens a plain stream on |s| again for TCP socket |fd|, whose first session's smux
 * refused it, sending the |len| bytes of |data| it sent there first (shell_hooks.replay).
 * Returns 0, or an ERR_* (|fd| closed). */
int stream_open_replay(struct sess *s, int fd, const uint8_t *data, size_t len);

/* Client: opens a stream on |s| for the connected TCP socket |fd| to target |t| (NULL: the
 * server's -t). With a ktun server (tunnel_peer_is_ktun) it starts with the target header,
 * then |early| (|early_len| bytes, at most STREAM_EARLY_MAX, the socket sent already); the
 * server's reply comes before the stream's bytes; with |socks| it is passed on as a SOCKS5
 * reply, and a refusal is sent to |fd| as one before it closes. While the capability exchange
 * is on (tunnel_caps_pending) the connection waits (see stream_caps_known). With a server that
 * is not ktun, a connection with a target is refused (logged) and one without is a plain
 * kcptun stream. Returns 0, or an ERR_* (|fd| closed). */
int stream_open_target(struct sess *s, int fd, const struct fwd_target *t, bool socks,
                       const uint8_t *early, size_t early_len);

/* Client: the capability exchange of |s| ended: every waiting connection opens its stream
 * (or is refused) as stream_open_target decides now. */
void stream_caps_known(struct sess *s);

/* Server: the role's decision on a stream whose stream_target hook returned
 * STREAM_TARGET_WAIT: a socket connecting to the target, or minus an enum fwd_status. */
void stream_target_done(struct stream *st, int fd);

/* Server: takes the peer's stream |sid|, whose first bytes are a target header; the role's
 * stream_target hook then decides. Returns 0 or ERR_NOMEM (stream released). */
int stream_accept_header(struct sess *s, uint32_t sid);

/* Attaches TCP socket |fd| to the already accepted stream |sid| (server). |connecting|: the
 * non-blocking connect is still in progress. Returns 0 or ERR_NOMEM (fd closed, stream
 * released). */
int stream_attach(struct sess *s, uint32_t sid, int fd, bool connecting);

/* Frees the stream: watchers, socket, tunnel stream (FIN unless sent), ring. |why| is logged. */
void stream_free(struct stream *st, const char *why);

/* Moves stream data from the tunnel to TCP until either side blocks. Returns false if the
 * stream was freed (finished or failed). */
bool stream_push_tcp(struct stream *st);

/* Restarts TCP reads paused for want of room, if the stream has room now. */
void stream_resume(struct stream *st);

#endif
