/* SPDX-License-Identifier: MIT */
/* libev shell: one session's timer and UDP I/O around its tunnel core (see sess.h). */
#include "common/sess.h"

#include "common/err.h"
#include "common/log.h"
#include "common/rawtcp.h"
#include "common/socksudp.h"
#include "common/udpfwd.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- tunnel callbacks ----------------------------------------------------------------- */

static void sess_output_cb(void *user, const uint8_t *dgram, size_t len)
{
    struct sess *s = user;
    struct sess_hold *h = s->hold;
    if (h && h->n < SESS_HOLD_MAX && len <= NET_DGRAM_MAX) {
        memcpy(h->data[h->n], dgram, len);
        h->len[h->n++] = len;
        return;
    }
    shell_send_dgram(s->sh, s->udp, dgram, len, &s->peer);
}

static void sess_stream_open_cb(void *user, uint32_t sid)
{
    struct sess *s = user;
    s->sh->hooks.stream_accept(s->sh, s, sid);
}

/* Received data is buffered in the tunnel: move it on to every stream's TCP socket. */
static void sess_deliver_cb(void *user)
{
    struct sess *s = user;
    for (struct stream *st = s->streams, *nx; st; st = nx) {
        nx = st->next;
        stream_push_tcp(st);
    }
}

/* The link has room again: streams paused for want of it may read TCP. */
static void sess_writable_cb(void *user)
{
    struct sess *s = user;
    for (struct stream *st = s->streams; st; st = st->next)
        stream_resume(st);
}

/* The capability exchange ended (docs/extensions.md). */
static void sess_caps_cb(void *user)
{
    struct sess *s = user;
    if (tunnel_peer_is_ktun(s->tun))
        LOG_INFO("sess: %s: ktun peer, extensions 0x%x", s->name, tunnel_peer_caps(s->tun));
    stream_caps_known(s);
    if (s->sh->hooks.caps)
        s->sh->hooks.caps(s->sh, s);
}

static void sess_dgram_cb(void *user, const struct tunnel_dgram *d)
{
    if (!socksudp_dgram(user, d))
        udpfwd_dgram(user, d);
}

static void sess_flow_cb(void *user, uint8_t type, uint32_t flow)
{
    if (!socksudp_flow(user, type, flow))
        udpfwd_flow(user, type, flow);
}

static void sess_log_cb(void *user, const char *msg)
{
    struct sess *s = user;
    LOG_WARN("sess: %s: %s", s->name, msg);
}

/* ---- events --------------------------------------------------------------------------- */

/* True if |s| watches its path: a client session over its own UDP socket whose server is
 * known to be ktun (a kcptun server would not follow a new port; it would take the new
 * socket's datagrams for a stranger's). */
static bool sess_path_watched(const struct sess *s)
{
    return s->path_client && tunnel_peer_is_ktun(s->tun);
}

/* Whether something waits for the server's answer. */
static bool sess_outstanding(const struct sess *s)
{
    size_t avail, wait;
    tunnel_progress(s->tun, &avail, &wait);
    return wait > 0;
}

/* When the path rule has something to do, or UINT64_MAX. Tells the rule whether something is
 * outstanding at |now| (this runs after every event: the silence starts when it becomes so). */
static uint64_t sess_path_deadline(struct sess *s, uint64_t now)
{
    if (!sess_path_watched(s))
        return UINT64_MAX;
    bool outstanding = sess_outstanding(s);
    roam_path_outstanding(&s->path, now, outstanding);
    return roam_path_deadline(&s->path, outstanding, tunnel_rto(s->tun));
}

/* Client: moves the session to a new UDP socket, and sends a keepalive at once: new data
 * that makes the server follow (in kcptun's crypt modes it follows a datagram that advances
 * the session, docs/roaming.md). */
static void sess_path_replace(struct sess *s, uint64_t silent)
{
    struct shell *sh = s->sh;
    struct ev_loop *loop = sh->loop;
    if (sh->hooks.path_change)
        sh->hooks.path_change(sh, s);
    char err[NET_ERR_LEN];
    if (s->udp->raw) {
        /* fake TCP: a new connection from a new port, the same session */
        if (sh->sb_udp == s->udp)
            shell_flush_dgrams(sh);
        if (rawtcp_redial(s->udp->raw, &s->peer, err) != 0)
            LOG_WARN("sess: %s: nothing from the server for %llu ms; %s", s->name,
                     (unsigned long long)silent, err);
        else
            LOG_INFO("sess: %s: nothing from the server for %llu ms with data outstanding: "
                     "new fake-TCP connection (a new source port), try %u of %u", s->name,
                     (unsigned long long)silent, s->path.tries, ROAM_PATH_TRIES);
        tunnel_ping(s->tun);
        return;
    }
    int fd = net_udp_socket(s->peer.ss.ss_family, NULL, err);
    if (fd < 0) {
        LOG_WARN("sess: %s: nothing from the server for %llu ms; no new socket: %s", s->name,
                 (unsigned long long)silent, err);
        return;
    }
    if (sh->params.sockbuf > 0)
        net_set_sockbuf(fd, sh->params.sockbuf, err);
    if (sh->sb_udp == s->udp)
        shell_flush_dgrams(sh);
    ev_io_stop(EV_A_ &s->udp_io);
    net_udp_close(&s->own_udp);
    net_udp_init(&s->own_udp, fd, true, true);
    ev_io_set(&s->udp_io, fd, EV_READ);
    ev_io_start(EV_A_ &s->udp_io);
    tunnel_ping(s->tun);
    LOG_INFO("sess: %s: nothing from the server for %llu ms with data outstanding: new UDP "
             "socket (a new source port), try %u of %u", s->name, (unsigned long long)silent,
             s->path.tries, ROAM_PATH_TRIES);
}

/* Client: the path rule's verdict at |now|. */
static void sess_path_check(struct sess *s, uint64_t now)
{
    if (!sess_path_watched(s))
        return;
    uint64_t silent = now - s->path.rx_ms;
    switch (roam_path_check(&s->path, now, sess_outstanding(s), tunnel_rto(s->tun))) {
    case ROAM_PATH_REPLACE:
        sess_path_replace(s, silent);
        break;
    case ROAM_PATH_GONE:
        LOG_WARN("sess: %s: no answer on %u new paths either: the server restarted or is "
                 "unreachable, closing the session", s->name, s->path.tries);
        tunnel_kill(s->tun, "server gone");
        break;
    case ROAM_PATH_WAIT:
        break;
    }
}

static void sess_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sess *s = container_of(w, struct sess, timer);
    uint64_t now = shell_now_ms();
    /* a wake later than planned: the loop did not run meanwhile (a loaded host) */
    if (s->path_client && now > s->timer_due_ms)
        roam_path_late(&s->path, now, now - s->timer_due_ms, tunnel_rto(s->tun));
    tunnel_set_wall_offset(s->tun, shell_wall_offset_ms());
    tunnel_tick(s->tun, now);
    sess_path_check(s, now);
    if (sess_pump(s))
        shell_flush_dgrams(s->sh);
}

/* Feeds one datagram from |from|: the first reply fixes the peer's address; datagrams from
 * any other address are dropped and counted. */
static void sess_udp_input(struct sess *s, uint8_t *p, size_t len, const struct net_addr *from)
{
    struct shell *sh = s->sh;
    sh->base.v[SNMP_IN_PKTS]++;
    sh->base.v[SNMP_IN_BYTES] += len;
    if (!s->peer_locked) {
        s->peer = *from;
        s->peer_locked = true;
    } else if (!net_addr_equal(&s->peer, from) &&
               !(s->prev_until_ms && shell_now_ms() < s->prev_until_ms &&
                 net_addr_equal(&s->prev_peer, from))) {
        sh->base.v[SNMP_IN_ERRS]++;
        return;
    }
    /* The path works when the server acknowledges what we sent: a datagram from it is no
     * proof by itself (a server whose acknowledgements are lost keeps resending its data). */
    size_t avail, wait0, wait1;
    tunnel_progress(s->tun, &avail, &wait0);
    if (tunnel_input(s->tun, p, len, shell_now_ms()) != 0)
        return;
    tunnel_progress(s->tun, &avail, &wait1);
    if (wait0 > 0 && wait1 >= wait0)
        return;
    if (s->path_client && roam_path_answered(&s->path, shell_now_ms()))
        LOG_INFO("sess: %s: the server answers on the new path", s->name);
    if (s->udp->raw)
        rawtcp_path_answered(s->udp->raw);
}

static void sess_udp_cb(EV_P_ ev_io *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sess *s = container_of(w, struct sess, udp_io);
    struct shell *sh = s->sh;
    for (int b = 0; b < SHELL_RX_BATCHES; b++) {
        int n = net_recv_batch(s->udp, &sh->rb);
        if (n <= 0)
            break;
        uint8_t *p;
        size_t len;
        const struct net_addr *from;
        while (net_rbatch_next(&sh->rb, &p, &len, &from))
            sess_udp_input(s, p, len, from);
        if (!sess_pump(s))
            break;
        if (n < sh->rb.slots)
            break;
    }
    shell_flush_dgrams(sh);
}

/* ---- life cycle ----------------------------------------------------------------------- */

/* Links |s| into the shell's list and counts it. */
static void sess_attach(struct shell *sh, struct sess *s)
{
    s->next = sh->sessions;
    if (sh->sessions)
        sh->sessions->prev = s;
    sh->sessions = s;
    sh->nsess++;
    sh->base.v[sh->is_client ? SNMP_ACTIVE_OPENS : SNMP_PASSIVE_OPENS]++;
    sh->base.v[SNMP_MAX_CONN] = MAX(sh->base.v[SNMP_MAX_CONN], (uint64_t)sh->nsess);
}

/* The tunnel core of |s|, with the shell's callbacks and the process's parameters. */
static struct tunnel *sess_tunnel_new(struct sess *s, uint64_t now, int *err)
{
    struct shell *sh = s->sh;
    struct tunnel_callbacks cb = {
        .output = sess_output_cb,
        .on_stream_open = sh->hooks.stream_accept ? sess_stream_open_cb : NULL,
        .on_deliver = sess_deliver_cb,
        .on_writable = sess_writable_cb,
        .log = sess_log_cb,
        .on_caps = sess_caps_cb,
        .on_dgram = sess_dgram_cb,
        .on_flow = sess_flow_cb,
    };
    sh->params.tun.link.wall_offset_ms = shell_wall_offset_ms();
    return tunnel_new(s->conv, &sh->params.tun, sh->is_client, sh->crypt, &sh->budget, &cb, s,
                      now, err);
}

struct sess *sess_new(struct shell *sh, size_t size, struct net_udp *udp, bool own_fd,
                      const struct net_addr *peer, uint32_t conv)
{
    struct ev_loop *loop = sh->loop;
    uint64_t now = shell_now_ms();
    char as[NET_ADDR_STRLEN];
    int err = ERR_NOMEM;
    struct sess *s = calloc(1, MAX(size, sizeof(struct sess)));
    if (!s)
        goto fail;
    s->sh = sh;
    s->own_fd = own_fd;
    s->own_udp = *udp;
    s->udp = own_fd ? &s->own_udp : udp;
    s->peer = *peer;
    s->peer_locked = !own_fd;
    s->conv = conv;
    s->created_ms = now;
    roam_init(&s->roam, roam_mode_of(sh->crypt));
    /* --tcp auto watches its own paths (it switches between UDP and fake TCP) */
    s->path_client = own_fd && sh->is_client && !(udp->raw && rawtcp_is_auto(udp->raw));
    roam_path_init(&s->path, now);
    s->timer_due_ms = UINT64_MAX;
    snprintf(s->name, sizeof(s->name), "conv %u peer %s", conv,
             net_addr_str(peer, as, sizeof(as)));
    s->tun = sess_tunnel_new(s, now, &err);
    if (!s->tun)
        goto fail;
    ev_init(&s->timer, sess_timer_cb);
    if (own_fd) {
        ev_io_init(&s->udp_io, sess_udp_cb, s->udp->fd, EV_READ);
        ev_io_start(EV_A_ &s->udp_io);
    }
    sess_attach(sh, s);
    LOG_INFO("sess: opened %s", s->name);
    return s;
fail:
    LOG_ERROR("sess: cannot create conv %u: %s", conv, err_str(err));
    free(s);
    if (own_fd)
        net_udp_close(udp);
    return NULL;
}

void sess_input_raw(struct sess *s, uint8_t *dgram, size_t len)
{
    tunnel_input(s->tun, dgram, len, shell_now_ms());
}

void sess_input_payload(struct sess *s, const uint8_t *payload, size_t len)
{
    struct roam_scan scan;
    roam_scan(payload, len, s->conv, &scan);
    if (tunnel_input_payload(s->tun, payload, len, shell_now_ms()) == 0)
        roam_observe(&s->roam, &scan);
}

enum roam_verdict sess_input_candidate(struct sess *s, const uint8_t *payload, size_t len,
                                       bool authenticated, struct sess_hold *h)
{
    uint64_t now = shell_now_ms();
    struct roam_facts f = {.authenticated = authenticated};
    roam_scan(payload, len, s->conv, &f.scan);
    size_t avail0, wait0, avail1, wait1;
    tunnel_progress(s->tun, &avail0, &wait0);
    h->n = 0;
    s->hold = h;
    int rc = tunnel_input_payload(s->tun, payload, len, now);
    s->hold = NULL;
    tunnel_progress(s->tun, &avail1, &wait1);
    f.advanced = avail1 > avail0 || wait1 < wait0;
    enum roam_verdict v = roam_decide(&s->roam, &f, now);
    if (rc == 0)
        roam_observe(&s->roam, &f.scan);
    return v;
}

void sess_hold_release(struct sess *s, struct sess_hold *h, struct net_udp *probe_udp,
                       const struct net_addr *probe_to)
{
    for (size_t i = 0; i < h->n; i++) {
        shell_send_dgram(s->sh, s->udp, h->data[i], h->len[i], &s->peer);
        if (probe_to && i < ROAM_PROBE_MAX_DGRAMS)
            shell_send_dgram(s->sh, probe_udp, h->data[i], h->len[i], probe_to);
    }
    h->n = 0;
}

void sess_hop(struct sess *s, const struct net_addr *to)
{
    uint64_t now = shell_now_ms();
    char as[NET_ADDR_STRLEN];
    s->prev_peer = s->peer;
    s->prev_until_ms = now + SESS_HOP_GRACE_MS;
    s->peer = *to;
    if (s->udp->raw) {
        /* fake TCP: a new connection to that port (the old one's datagrams are lost) */
        char err[NET_ERR_LEN];
        if (s->sh->sb_udp == s->udp)
            shell_flush_dgrams(s->sh);
        if (rawtcp_redial(s->udp->raw, to, err) != 0)
            LOG_WARN("sess: %s: %s", s->name, err);
    }
    tunnel_ping(s->tun); /* new data: a server in kcptun's crypt modes follows it at once */
    s->hops++;
    snprintf(s->name, sizeof(s->name), "conv %u peer %s", s->conv,
             net_addr_str(to, as, sizeof(as)));
    if (log_limit_pass(&s->hop_log, now, 60000))
        LOG_INFO("sess: %s: hopped to this server port (hop %llu)", s->name,
                 (unsigned long long)s->hops);
    else
        LOG_DEBUG("sess: %s: hopped to this server port (hop %llu)", s->name,
                  (unsigned long long)s->hops);
}

void sess_set_peer(struct sess *s, struct net_udp *udp, const struct net_addr *peer)
{
    char from[NET_ADDR_STRLEN], to[NET_ADDR_STRLEN];
    net_addr_str(&s->peer, from, sizeof(from));
    net_addr_str(peer, to, sizeof(to));
    s->peer = *peer;
    s->udp = udp;
    snprintf(s->name, sizeof(s->name), "conv %u peer %s", s->conv, to);
    if (log_limit_pass(&s->move_log, shell_now_ms(), 10000)) {
        LOG_INFO("sess: conv %u: peer moved from %s to %s (move %llu, %llu since the last line)",
                 s->conv, from, to, (unsigned long long)s->roam.moves,
                 (unsigned long long)(s->roam.moves - s->moves_logged));
        s->moves_logged = s->roam.moves;
    }
}

static void sess_arm_timer(struct sess *s)
{
    struct ev_loop *loop = s->sh->loop;
    uint64_t now = shell_now_ms();
    uint64_t d = MIN(tunnel_next_deadline(s->tun, now), sess_path_deadline(s, now));
    ev_timer_stop(EV_A_ &s->timer);
    s->timer_due_ms = MAX(d, now);
    if (d == UINT64_MAX)
        return;
    double after = d > now ? (double)(d - now) / 1e3 : 0.0;
    ev_timer_set(&s->timer, after, 0.0);
    ev_timer_start(EV_A_ &s->timer);
}

/* Says in the log, at most once per 10 s, that the peer opened more streams than
 * --maxstreams allows (mux refused them with a FIN). */
static void sess_log_refused(struct sess *s, uint64_t now)
{
    struct tunnel_stats ts;
    tunnel_get_stats(s->tun, &ts);
    uint64_t refused = ts.mux.streams_refused;
    if (refused == s->refused_logged || !log_limit_pass(&s->refused_log, now, LOG_REPEAT_MS))
        return;
    LOG_WARN("sess: %s: --maxstreams %u reached: refused %llu stream(s) opened by the peer",
             s->name, s->sh->params.tun.mux.max_streams,
             (unsigned long long)(refused - s->refused_logged));
    s->refused_logged = refused;
}

/* The peer's first smux frame: a listener that detects the format says what it found. */
static void sess_heard(struct sess *s)
{
    struct shell *sh = s->sh;
    int ver;
    bool comp;
    s->heard = true;
    if (!sh->is_client && (sh->params.tun.comp_auto ||
                           sh->params.tun.mux.version == MUX_VERSION_AUTO) &&
        tunnel_format(s->tun, &ver, &comp))
        LOG_INFO("sess: %s: the client speaks smux v%d, %s", s->name, ver,
                 comp ? "compressed" : "uncompressed (--nocomp)");
    if (sh->hooks.heard)
        sh->hooks.heard(sh, s);
}

bool sess_pump(struct sess *s)
{
    if (s->in_pump)
        return true; /* called back from inside the pump: it finishes the work */
    uint64_t now = shell_now_ms();
    s->in_pump = true;
    bool alive = tunnel_pump(s->tun, now);
    s->in_pump = false;
    if (!alive) {
        sess_close(s, tunnel_dead_reason(s->tun));
        return false;
    }
    sess_log_refused(s, now);
    if (!s->heard && tunnel_peer_heard(s->tun))
        sess_heard(s);
    sess_arm_timer(s);
    shell_wake_stalled(s->sh);
    return true;
}

/* Takes |s| out of the shell's list. */
static void sess_detach(struct shell *sh, struct sess *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        sh->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    sh->nsess--;
}

/* A TCP connection whose stream opens again on the next session (shell_hooks.replay). */
struct sess_orphan {
    struct sess_orphan *next;
    int fd;
    size_t len;
    uint8_t data[];
};

/* The server's smux refused |s|: every plain stream that kept a copy of what it sent leaves
 * its socket and the copy on |*list| instead of closing it. */
static void sess_orphan_streams(struct sess *s, struct sess_orphan **list)
{
    for (struct stream *st = s->streams, *nx; st; st = nx) {
        nx = st->next;
        const uint8_t *data;
        size_t len;
        if (st->fd < 0 || st->wait || st->fwd != STREAM_FWD_NONE ||
            !tunnel_stream_replay(s->tun, st->sid, &data, &len))
            continue;
        struct sess_orphan *o = malloc(sizeof(*o) + len);
        if (!o)
            continue;
        o->fd = st->fd;
        o->len = len;
        if (len)
            memcpy(o->data, data, len);
        o->next = *list;
        *list = o;
        st->fd = -1; /* stream_free leaves the socket open */
        stream_free(st, "to be opened again on the next session");
    }
}

void sess_close(struct sess *s, const char *reason)
{
    struct shell *sh = s->sh;
    struct ev_loop *loop = sh->loop;
    struct sess_orphan *orphans = NULL;
    LOG_INFO("sess: closed %s (%s), %zu streams", s->name, reason, s->nstreams);
    if (sh->hooks.replay && tunnel_peer_refused(s->tun))
        sess_orphan_streams(s, &orphans);
    while (s->streams)
        stream_free(s->streams, "session closed");
    udpfwd_sess_gone(s);
    socksudp_sess_gone(s);
    if (sh->hooks.sess_gone)
        sh->hooks.sess_gone(sh, s);
    ev_timer_stop(EV_A_ &s->timer);
    if (s->own_fd) {
        ev_io_stop(EV_A_ &s->udp_io);
        if (sh->sb_udp == s->udp)
            shell_flush_dgrams(sh);
        net_udp_close(s->udp);
    }
    shell_tunnel_to_snmp(s->tun, &sh->base);
    tunnel_free(s->tun);
    sess_detach(sh, s);
    free(s);
    while (orphans) { /* after the role took note of the refusal (sess_gone) */
        struct sess_orphan *o = orphans;
        orphans = o->next;
        sh->hooks.replay(sh, o->fd, o->data, o->len);
        free(o);
    }
}
