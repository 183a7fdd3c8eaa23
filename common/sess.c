/* SPDX-License-Identifier: MIT */
/* libev shell: one session's timer and UDP I/O around its tunnel core (see sess.h). */
#include "common/sess.h"

#include "common/err.h"
#include "common/log.h"
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

static void sess_log_cb(void *user, const char *msg)
{
    struct sess *s = user;
    LOG_WARN("sess: %s: %s", s->name, msg);
}

/* ---- events --------------------------------------------------------------------------- */

/* When the path counts as dead (see SESS_PATH_RTOS), or UINT64_MAX if nothing is
 * outstanding or the session does not watch its path. */
static uint64_t sess_path_deadline(const struct sess *s)
{
    size_t avail, wait;
    if (!s->path_watch)
        return UINT64_MAX;
    tunnel_progress(s->tun, &avail, &wait);
    if (wait == 0)
        return UINT64_MAX;
    uint64_t after = MAX((uint64_t)tunnel_rto(s->tun) * SESS_PATH_RTOS, SESS_PATH_MIN_MS);
    return s->path_rx_ms + after;
}

/* Client: nothing came back on this path for a few RTOs with data outstanding. Moves the
 * session to a new UDP socket, or closes it once SESS_PATH_TRIES moves went unanswered. */
static void sess_path_dead(struct sess *s, uint64_t now)
{
    struct shell *sh = s->sh;
    struct ev_loop *loop = sh->loop;
    uint64_t silent = now - s->path_rx_ms;
    if (s->path_tries >= SESS_PATH_TRIES) {
        LOG_WARN("sess: %s: no answer on %u new paths either: the server restarted or is "
                 "unreachable, closing the session", s->name, s->path_tries);
        tunnel_kill(s->tun, "server gone");
        return;
    }
    if (sh->hooks.path_change)
        sh->hooks.path_change(sh, s);
    char err[NET_ERR_LEN];
    int fd = net_udp_socket(s->peer.ss.ss_family, NULL, err);
    s->path_rx_ms = now;
    s->path_tries++;
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
    LOG_INFO("sess: %s: nothing from the server for %llu ms with data outstanding: new UDP "
             "socket (a new source port), try %u of %u", s->name, (unsigned long long)silent,
             s->path_tries, SESS_PATH_TRIES);
}

static void sess_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sess *s = container_of(w, struct sess, timer);
    uint64_t now = shell_now_ms();
    tunnel_set_wall_offset(s->tun, shell_wall_offset_ms());
    tunnel_tick(s->tun, now);
    if (now >= sess_path_deadline(s))
        sess_path_dead(s, now);
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
    if (tunnel_input(s->tun, p, len, shell_now_ms()) == 0 && s->path_watch) {
        if (s->path_tries)
            LOG_INFO("sess: %s: the server answers on the new path", s->name);
        s->path_rx_ms = shell_now_ms();
        s->path_tries = 0;
    }
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
    roam_init(&s->roam, crypt_is_authenticated(sh->crypt) ? ROAM_MODE_SECURE : ROAM_MODE_COMPAT);
    /* a fake-TCP flow cannot change its port this way (--tcp) */
    s->path_watch = own_fd && sh->is_client && !udp->raw && crypt_is_authenticated(sh->crypt);
    s->path_rx_ms = now;
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
    s->hops++;
    snprintf(s->name, sizeof(s->name), "conv %u peer %s", s->conv,
             net_addr_str(to, as, sizeof(as)));
    if (log_limit_pass(&s->hop_log, now, 60000))
        LOG_INFO("sess: %s: hopped to this server port (hop %llu)", s->name,
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
    uint64_t d = MIN(tunnel_next_deadline(s->tun, now), sess_path_deadline(s));
    ev_timer_stop(EV_A_ &s->timer);
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

void sess_close(struct sess *s, const char *reason)
{
    struct shell *sh = s->sh;
    struct ev_loop *loop = sh->loop;
    LOG_INFO("sess: closed %s (%s), %zu streams", s->name, reason, s->nstreams);
    while (s->streams)
        stream_free(s->streams, "session closed");
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
}
