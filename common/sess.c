/* SPDX-License-Identifier: MIT */
/* libev shell: one session's timer and UDP I/O around its tunnel core (see sess.h). */
#include "common/sess.h"

#include "common/err.h"
#include "common/log.h"
#include "common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- tunnel callbacks ----------------------------------------------------------------- */

static void sess_output_cb(void *user, const uint8_t *dgram, size_t len)
{
    struct sess *s = user;
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

static void sess_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct sess *s = container_of(w, struct sess, timer);
    tunnel_set_wall_offset(s->tun, shell_wall_offset_ms());
    tunnel_tick(s->tun, shell_now_ms());
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
    } else if (!net_addr_equal(&s->peer, from)) {
        sh->base.v[SNMP_IN_ERRS]++;
        return;
    }
    sess_input_raw(s, p, len);
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
    tunnel_input_payload(s->tun, payload, len, shell_now_ms());
}

static void sess_arm_timer(struct sess *s)
{
    struct ev_loop *loop = s->sh->loop;
    uint64_t now = shell_now_ms();
    uint64_t d = tunnel_next_deadline(s->tun, now);
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
