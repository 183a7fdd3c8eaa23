/* SPDX-License-Identifier: MIT */
/* Sessions that follow their peer: NAT rebinding, replays from a third address, two addresses
 * racing, in virtual time, with real link stacks and the roam rule deciding on the server. */

/*
 * Endpoints: the client, the server, a replayer and NAT mappings. The client sends through
 * its current mapping; a mapping forwards up with its own id as the source address, and
 * forwards down only while it is live (a rebound NAT's old port is gone, so what the server
 * still sends there is lost). Every mapping also captures what it forwards up, and the
 * replayer sends those captured datagrams to the server from its own address.
 *
 * The server holds one session and its reply address. A datagram from the reply address is
 * simply fed; one from any other address is fed with the session's output held back, then
 * roam_decide says where that output goes and whether the reply address moves (the same
 * steps as the real server's session layer).
 *
 * The application: the client sends a 64-byte message every 50 ms (sequence number + seeded
 * bytes); the server echoes the byte stream; the client checks every echo in order and
 * records its round trip.
 */

#include "common/link.h"
#include "common/roam.h"
#include "common/util.h"
#include "common/wire.h"
#include "crypto/crypt.h"
#include "fec/fec.h"
#include "tests/sim/vnet.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_LEN 64
#define MSG_EVERY_MS 50
#define MAX_MSGS 4096
#define MAX_NATS 12 /* with the client, server and replayer: VNET_MAX_ENDPOINTS */
#define CAPTURE 128
#define HELD_MAX 32
#define CONV 0x51a7e0u
#define WALL_OFFSET_MS 1700000000000LL

struct world;

struct nat {
    struct world *w;
    int id;
    bool live;      /* forwards down */
    bool killed;    /* forwards nothing either way (a middlebox dropped the flow for good) */
    bool up_dead;   /* forwards nothing up (the path died towards the server only) */
    uint64_t up, down, down_dead;
};

struct held {
    size_t len;
    uint8_t data[1500];
};

struct world {
    struct vnet *net;
    struct crypt *ccrypt, *scrypt;
    /* client */
    int cli_id;
    struct link *cli;
    int cur_nat;          /* index into nats of the client's current mapping */
    bool racing;          /* the client alternates at random between nats[0] and nats[1] */
    uint32_t sent, echoed;
    uint64_t sent_ms[MAX_MSGS];
    uint64_t rtt_max_ms;
    uint64_t next_msg_ms;
    uint64_t msg_every_ms;
    uint32_t msgs;        /* messages to send in all */
    uint8_t rxbuf[MSG_LEN];
    size_t rxlen;
    uint32_t bad;         /* echoes out of order, duplicated or corrupt */
    bool path_rule;       /* the client replaces a dead path (roam_path) */
    struct roam_path path;
    uint64_t replaced;    /* path replacements (a new mapping each) */
    uint64_t replaced_spare; /* replacements asked for with no mapping left */
    uint64_t gone_ms;     /* when roam_path said the server is gone (0: never) */
    uint64_t replaced_at_restart; /* replacements before the server restarted */
    uint32_t rto_at_restart;      /* the client's RTO then */
    uint32_t rto_at_gone;         /* ... and when it took the server for gone */
    /* the client's own stalls: its loop does not run (a loaded host) */
    uint64_t stall_every_ms, stall_ms; /* stall_ms of every stall_every_ms */
    bool stall_credit;    /* the client reports late wakes (roam_path_late) */
    bool resumed;         /* a stall ended: the next tick is the late wake */
    uint64_t cli_due;     /* the deadline the client planned its last wake for */
    uint64_t stalls;      /* stalls that held datagrams */
    struct held inq[HELD_MAX * 4]; /* the socket's receive queue while stalled */
    size_t ninq;
    uint64_t inq_dropped;
    /* server */
    int srv_id;
    struct link *srv;
    struct roam roam;
    int reply;            /* vnet id of the reply address */
    bool holding;         /* output held while a datagram from a new address is fed */
    struct held held[HELD_MAX];
    size_t nheld;
    uint64_t moved_to_replayer; /* sessions stolen: the reply address became the replayer */
    uint64_t bad_reply_addr;    /* the reply address was ever outside the client's mappings */
    bool srv_lost;              /* restarted: it knows the session no more and answers nothing */
    /* nats */
    struct nat nats[MAX_NATS];
    int nnats;
    struct {
        uint64_t at_ms;
        size_t len;
        uint8_t data[1500];
    } cap[CAPTURE];
    size_t ncap;
    /* replayer */
    int rp_id;
    uint64_t replays_left, replays_sent, replay_replies;
    uint64_t replay_every_us, next_replay_us, replay_age_ms;
};

static struct world *W; /* the running world, for callbacks without a user pointer */

/* ---- client ---- */

static void msg_fill(uint32_t seq, uint8_t *m)
{
    put_u32le(m, seq);
    for (size_t i = 4; i < MSG_LEN; i++)
        m[i] = (uint8_t)(seq * 31u + i);
}

static int client_nat(struct world *w)
{
    if (w->racing)
        return w->nats[vnet_rand(w->net) % 2].id;
    return w->nats[w->cur_nat].id;
}

static void cli_out(void *user, const uint8_t *d, size_t len)
{
    struct world *w = user;
    vnet_send_to(w->net, w->cli_id, client_nat(w), d, len);
}

static void cli_pump(struct world *w, uint64_t now)
{
    while (w->sent < w->msgs && now >= w->next_msg_ms) {
        uint8_t m[MSG_LEN];
        msg_fill(w->sent, m);
        if (link_send(w->cli, m, MSG_LEN) != 0)
            break;
        w->sent_ms[w->sent++] = now;
        w->next_msg_ms += w->msg_every_ms;
        link_flush(w->cli, now);
    }
    for (;;) {
        ssize_t n = link_recv(w->cli, w->rxbuf + w->rxlen, MSG_LEN - w->rxlen);
        if (n <= 0)
            break;
        w->rxlen += (size_t)n;
        if (w->rxlen < MSG_LEN)
            continue;
        w->rxlen = 0;
        uint8_t want[MSG_LEN];
        msg_fill(w->echoed, want);
        if (memcmp(want, w->rxbuf, MSG_LEN) != 0 || w->echoed >= w->sent) {
            w->bad++;
            continue;
        }
        uint64_t rtt = now - w->sent_ms[w->echoed++];
        w->rtt_max_ms = MAX(w->rtt_max_ms, rtt);
    }
}

/* Is the client's loop stalled at |now|? Stalls take the last stall_ms of every
 * stall_every_ms (shifted by 1 ms: each begins just after a message left, so that something
 * is outstanding) while messages are sent. */
static bool cli_stalled(const struct world *w, uint64_t now)
{
    return w->stall_ms && now >= 1 && now < (uint64_t)w->msgs * w->msg_every_ms &&
           (now - 1) % w->stall_every_ms >= w->stall_every_ms - w->stall_ms;
}

static void cli_input(struct world *w, const uint8_t *pkt, size_t len, uint64_t now)
{
    uint8_t tmp[1500];
    if (len > sizeof(tmp))
        return;
    memcpy(tmp, pkt, len);
    size_t wait0 = link_wait_snd(w->cli);
    /* as the session layer: an answer acknowledges something (or nothing was outstanding) */
    if (link_input(w->cli, tmp, len, now) == 0 && w->path_rule &&
        (wait0 == 0 || link_wait_snd(w->cli) < wait0))
        roam_path_answered(&w->path, now);
}

static void cli_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    (void)from;
    struct world *w = user;
    if (cli_stalled(w, now)) {
        /* nobody reads the socket: the datagram waits in its receive queue */
        if (w->ninq < sizeof(w->inq) / sizeof(w->inq[0]) && len <= sizeof(w->inq[0].data)) {
            w->inq[w->ninq].len = len;
            memcpy(w->inq[w->ninq++].data, pkt, len);
        } else {
            w->inq_dropped++;
        }
        w->resumed = true;
        return;
    }
    cli_input(w, pkt, len, now);
    cli_pump(w, now);
}

static uint64_t cli_deadline(void *user, uint64_t now)
{
    struct world *w = user;
    if (w->gone_ms)
        return VNET_NEVER; /* the session was closed */
    if (cli_stalled(w, now)) {
        w->resumed = true;
        return ((now - 1) / w->stall_every_ms + 1) * w->stall_every_ms + 1;
    }
    if (w->resumed)
        return now; /* the late wake: the deadline planned before the stall has passed */
    uint64_t d = link_next_deadline(w->cli, now);
    if (w->path_rule) {
        bool outstanding = link_wait_snd(w->cli) > 0;
        roam_path_outstanding(&w->path, now, outstanding);
        d = MIN(d, roam_path_deadline(&w->path, outstanding, link_rto(w->cli)));
    }
    d = w->sent < w->msgs ? MIN(d, w->next_msg_ms) : d;
    w->cli_due = d;
    return d;
}

/* The client's path rule, as the real session layer applies it: a new mapping for a dead
 * path, the end of the session when the server is gone. */
static void cli_path(struct world *w, uint64_t now)
{
    if (!w->path_rule || w->gone_ms)
        return;
    switch (roam_path_check(&w->path, now, link_wait_snd(w->cli) > 0, link_rto(w->cli))) {
    case ROAM_PATH_REPLACE:
        w->replaced++;
        if (w->cur_nat + 1 < w->nnats)
            w->cur_nat++;
        else
            w->replaced_spare++;
        break;
    case ROAM_PATH_GONE:
        w->gone_ms = now;
        w->rto_at_gone = link_rto(w->cli);
        break;
    case ROAM_PATH_WAIT:
        break;
    }
}

static void cli_tick(void *user, uint64_t now)
{
    struct world *w = user;
    if (w->gone_ms || cli_stalled(w, now))
        return;
    bool late = w->resumed;
    w->resumed = false;
    /* the worst order a real loop may take on waking: the timer runs before the reads */
    if (late && w->stall_credit && w->path_rule && now > w->cli_due)
        roam_path_late(&w->path, now, now - w->cli_due, link_rto(w->cli));
    link_tick(w->cli, now);
    cli_path(w, now);
    if (late) {
        w->stalls += w->ninq > 0;
        for (size_t i = 0; i < w->ninq && !w->gone_ms; i++)
            cli_input(w, w->inq[i].data, w->inq[i].len, now);
        w->ninq = 0;
    }
    cli_pump(w, now);
}

/* ---- server ---- */

static bool is_client_nat(const struct world *w, int id)
{
    for (int i = 0; i < w->nnats; i++)
        if (w->nats[i].id == id)
            return true;
    return false;
}

static void srv_out(void *user, const uint8_t *d, size_t len)
{
    struct world *w = user;
    if (w->srv_lost)
        return; /* restarted: the session's state is gone */
    if (w->holding && w->nheld < HELD_MAX && len <= sizeof(w->held[0].data)) {
        w->held[w->nheld].len = len;
        memcpy(w->held[w->nheld++].data, d, len);
        return;
    }
    vnet_send_to(w->net, w->srv_id, w->reply, d, len);
}

static void srv_echo(struct world *w, uint64_t now)
{
    uint8_t buf[4096];
    for (;;) {
        ssize_t n = link_recv(w->srv, buf, sizeof(buf));
        if (n <= 0)
            break;
        link_send(w->srv, buf, (size_t)n);
    }
    link_flush(w->srv, now);
}

static void srv_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct world *w = user;
    uint8_t tmp[1500];
    const uint8_t *payload;
    if (len > sizeof(tmp) || w->srv_lost)
        return;
    memcpy(tmp, pkt, len);
    /* as the real listener: open first (replays die here in the secure mode), then route */
    ssize_t plen = crypt_open(w->scrypt, tmp, len, now + (uint64_t)WALL_OFFSET_MS, &payload);
    if (plen < 0)
        return;
    uint32_t conv, sn;
    bool parity;
    if (link_peek(payload, (size_t)plen, &conv, &sn, &parity) != 0)
        return;
    struct roam_scan scan;
    roam_scan(payload, (size_t)plen, CONV, &scan);
    if (from == w->reply) {
        link_input_payload(w->srv, payload, (size_t)plen, now);
        roam_observe(&w->roam, &scan);
        srv_echo(w, now);
        return;
    }
    if (parity || conv != CONV)
        return; /* parity from an unknown address names no session */
    /* From a new address: feed it with the output held, then ask the rule. */
    size_t avail0 = link_recv_avail(w->srv), wait0 = link_wait_snd(w->srv);
    w->holding = true;
    w->nheld = 0;
    link_input_payload(w->srv, payload, (size_t)plen, now);
    w->holding = false;
    struct roam_facts f = {
        .authenticated = true, /* crypt_open accepted it */
        .advanced = link_recv_avail(w->srv) > avail0 || link_wait_snd(w->srv) < wait0,
        .scan = scan,
    };
    enum roam_verdict v = roam_decide(&w->roam, &f, now);
    roam_observe(&w->roam, &scan);
    if (v == ROAM_MOVE) {
        w->reply = from;
        if (from == w->rp_id)
            w->moved_to_replayer++;
        if (!is_client_nat(w, from))
            w->bad_reply_addr++;
    }
    for (size_t i = 0; i < w->nheld; i++) {
        vnet_send_to(w->net, w->srv_id, w->reply, w->held[i].data, w->held[i].len);
        if (v == ROAM_PROBE && i < ROAM_PROBE_MAX_DGRAMS)
            vnet_send_to(w->net, w->srv_id, from, w->held[i].data, w->held[i].len);
    }
    w->nheld = 0;
    srv_echo(w, now);
}

static uint64_t srv_deadline(void *user, uint64_t now)
{
    struct world *w = user;
    return w->srv_lost ? VNET_NEVER : link_next_deadline(w->srv, now);
}

static void srv_tick(void *user, uint64_t now)
{
    struct world *w = user;
    link_tick(w->srv, now);
    srv_echo(w, now);
}

/* ---- NAT mappings and the replayer ---- */

static void nat_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    struct nat *n = user;
    struct world *w = n->w;
    if (n->killed) {
        n->down_dead += from != w->cli_id;
        return;
    }
    if (from == w->cli_id && n->up_dead)
        return;
    if (from == w->cli_id) {
        n->up++;
        if (len <= sizeof(w->cap[0].data)) {
            size_t i = w->ncap++ % CAPTURE;
            w->cap[i].at_ms = now;
            w->cap[i].len = len;
            memcpy(w->cap[i].data, pkt, len);
        }
        vnet_send_to(w->net, n->id, w->srv_id, pkt, len);
    } else if (n->live) {
        n->down++;
        vnet_send_to(w->net, n->id, w->cli_id, pkt, len);
    } else {
        n->down_dead++;
    }
}

static void rp_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    (void)from, (void)pkt, (void)len, (void)now;
    struct world *w = user;
    w->replay_replies++;
}

static uint64_t rp_deadline(void *user, uint64_t now)
{
    (void)now;
    struct world *w = user;
    return w->replays_left ? (w->next_replay_us + 999) / 1000 : VNET_NEVER;
}

static void rp_tick(void *user, uint64_t now)
{
    struct world *w = user;
    while (w->replays_left && w->next_replay_us <= now * 1000) {
        size_t n = MIN(w->ncap, (size_t)CAPTURE);
        size_t i = n ? (size_t)(vnet_rand(w->net) % n) : 0;
        if (!n || w->cap[i].at_ms + w->replay_age_ms > now) {
            w->next_replay_us = (now + 1) * 1000;
            return;
        }
        vnet_send_to(w->net, w->rp_id, w->srv_id, w->cap[i].data, w->cap[i].len);
        w->replays_left--;
        w->replays_sent++;
        w->next_replay_us += w->replay_every_us;
    }
}

/* ---- the experiment ---- */

struct scenario {
    const char *method;     /* crypt method of both ends */
    uint64_t duration_ms;   /* messages are sent for this long */
    uint64_t rebind_ms;     /* the client's NAT mapping changes this often, 0 = never */
    bool racing;            /* two live mappings used at random, per datagram */
    uint64_t replays;       /* captured datagrams replayed from the replayer's address */
    uint64_t replay_age_ms; /* ... each at least this old (0: may race the original) */
    double loss;            /* loss on every link */
    uint32_t delay_ms;      /* one-way delay of every link (client-NAT and NAT-server halves) */
    bool path_rule;         /* the client replaces a dead path (roam_path) */
    uint64_t kill_ms;       /* the client's current mapping dies both ways this often */
    uint64_t restart_ms;    /* the server loses the session at this time (0: never) */
    bool kill_up_only;      /* a kill drops the client's datagrams only (replies still come) */
    uint64_t stall_every_ms, stall_ms; /* the client's loop stalls stall_ms every stall_every_ms */
    bool no_stall_credit;   /* the client does not report its late wakes (the old rule) */
    uint64_t msg_every_ms;  /* a message this often (0: MSG_EVERY_MS) */
};

struct result {
    uint32_t sent, echoed, bad;
    uint64_t rtt_max_ms, moves, probes, stolen, bad_reply_addr, replays_sent, replay_replies;
    uint64_t down_dead;
    uint64_t replaced, replaced_spare, gone_ms, replaced_at_restart;
    uint32_t rto_at_restart, rto_at_gone;
    uint64_t stalls, stalled_ms, inq_dropped;
};

static bool run_done(void *user)
{
    struct world *w = user;
    return (w->echoed == w->msgs && !w->replays_left) || w->gone_ms;
}

static void nat_add(struct world *w)
{
    static const struct vnet_endpoint_cb cb = {nat_deliver, NULL, NULL};
    struct nat *n = &w->nats[w->nnats++];
    n->w = w;
    n->live = true;
    n->id = vnet_add_endpoint(w->net, &cb, n);
}

static struct crypt *new_crypt(const char *method, enum crypt_role role)
{
    int err = 0;
    struct crypt *c = crypt_new(method, "roam sim key", crypt_rng_sodium, NULL, &err);
    if (c)
        crypt_set_role(c, role);
    return c;
}

static void run(const struct scenario *sc, uint64_t seed, struct result *res)
{
    struct world *w = calloc(1, sizeof(*w));
    REQUIRE(w);
    W = w;
    memset(res, 0, sizeof(*res));
    w->net = vnet_new(vnet_seed_from_env(seed));
    w->ccrypt = new_crypt(sc->method, CRYPT_ROLE_CLIENT);
    w->scrypt = new_crypt(sc->method, CRYPT_ROLE_SERVER);
    REQUIRE(w->net && w->ccrypt && w->scrypt);
    struct link_config lc;
    link_config_default(&lc);
    lc.nodelay = 1, lc.interval_ms = 10, lc.resend = 2, lc.nc = 1; /* fast3 */
    lc.wall_offset_ms = WALL_OFFSET_MS;
    w->cli = link_new(CONV, &lc, w->ccrypt, cli_out, w, NULL);
    w->srv = link_new(CONV, &lc, w->scrypt, srv_out, w, NULL);
    REQUIRE(w->cli && w->srv);
    roam_init(&w->roam, crypt_is_authenticated(w->scrypt) ? ROAM_MODE_SECURE : ROAM_MODE_COMPAT);

    static const struct vnet_endpoint_cb ccb = {cli_deliver, cli_deadline, cli_tick};
    static const struct vnet_endpoint_cb scb = {srv_deliver, srv_deadline, srv_tick};
    static const struct vnet_endpoint_cb rcb = {rp_deliver, rp_deadline, rp_tick};
    w->cli_id = vnet_add_endpoint(w->net, &ccb, w);
    w->srv_id = vnet_add_endpoint(w->net, &scb, w);
    w->rp_id = vnet_add_endpoint(w->net, &rcb, w);
    int rebinds = sc->rebind_ms ? (int)(sc->duration_ms / sc->rebind_ms) : 0;
    int nnats = MIN(sc->racing ? 2 : 1 + rebinds, MAX_NATS);
    if (sc->path_rule)
        nnats = MAX_NATS; /* spare mappings for the client's replacements */
    for (int i = 0; i < nnats; i++)
        nat_add(w);
    REQUIRE(w->nats[nnats - 1].id > 0);
    struct vnet_link_cfg lk = {.loss = sc->loss, .delay_ms = sc->delay_ms, .jitter_ms = 2};
    for (int i = 0; i < nnats; i++) {
        vnet_link_set_both(w->net, w->cli_id, w->nats[i].id, &lk);
        vnet_link_set_both(w->net, w->nats[i].id, w->srv_id, &lk);
    }
    vnet_link_set_both(w->net, w->rp_id, w->srv_id, &lk);
    w->racing = sc->racing;
    w->reply = w->nats[0].id; /* the session was opened through the first mapping */
    w->msg_every_ms = sc->msg_every_ms ? sc->msg_every_ms : MSG_EVERY_MS;
    w->msgs = (uint32_t)MIN(sc->duration_ms / w->msg_every_ms, (uint64_t)MAX_MSGS);
    w->next_msg_ms = 0;
    w->replays_left = sc->replays;
    w->replay_age_ms = sc->replay_age_ms;
    w->replay_every_us = sc->replays ? sc->duration_ms * 1000 / sc->replays : 0;
    w->next_replay_us = 1000 * 1000; /* from 1 s on, once something was captured */
    w->path_rule = sc->path_rule;
    roam_path_init(&w->path, 0);
    w->stall_every_ms = sc->stall_every_ms;
    w->stall_ms = sc->stall_ms;
    w->stall_credit = !sc->no_stall_credit;

    if (sc->kill_ms || sc->restart_ms) {
        /* flows killed every kill_ms, the server restarted at restart_ms */
        uint64_t t = 0, end = sc->duration_ms + 30000;
        enum vnet_result r2 = VNET_TIMEOUT;
        while (t < end && r2 != VNET_DONE) {
            uint64_t next = end;
            if (sc->kill_ms && (t / sc->kill_ms + 1) * sc->kill_ms < sc->duration_ms)
                next = (t / sc->kill_ms + 1) * sc->kill_ms;
            if (sc->restart_ms > t && sc->restart_ms < next)
                next = sc->restart_ms;
            r2 = vnet_run(w->net, next, run_done, w);
            t = next;
            if (r2 == VNET_DONE)
                break;
            if (sc->restart_ms && t == sc->restart_ms) {
                w->srv_lost = true;
                w->replaced_at_restart = w->replaced;
                w->rto_at_restart = link_rto(w->cli);
            }
            else if (sc->kill_ms && t < sc->duration_ms && sc->kill_up_only)
                w->nats[w->cur_nat].up_dead = true;
            else if (sc->kill_ms && t < sc->duration_ms)
                w->nats[w->cur_nat].killed = true;
        }
        if (r2 != VNET_DONE)
            printf("  run ended %s at %llu ms, seed %llu\n", vnet_result_str(r2),
                   (unsigned long long)vnet_now(w->net), (unsigned long long)vnet_seed(w->net));
        rebinds = -1; /* skip the rebinding loop below */
    }

    enum vnet_result r = rebinds < 0 ? VNET_DONE : VNET_TIMEOUT;
    for (int k = 1; k <= rebinds + 1; k++) {
        uint64_t until = k <= rebinds ? (uint64_t)k * sc->rebind_ms : sc->duration_ms + 30000;
        r = vnet_run(w->net, until, k <= rebinds ? NULL : run_done, w);
        if (k <= rebinds && w->cur_nat + 1 < nnats) {
            w->nats[w->cur_nat].live = false; /* the old mapping is gone */
            w->cur_nat++;
        }
    }
    if (r != VNET_DONE)
        printf("  run ended %s at %llu ms, seed %llu\n", vnet_result_str(r),
               (unsigned long long)vnet_now(w->net), (unsigned long long)vnet_seed(w->net));
    res->sent = w->sent, res->echoed = w->echoed, res->bad = w->bad;
    res->rtt_max_ms = w->rtt_max_ms;
    res->moves = w->roam.moves, res->probes = w->roam.probes;
    res->stolen = w->moved_to_replayer, res->bad_reply_addr = w->bad_reply_addr;
    res->replays_sent = w->replays_sent, res->replay_replies = w->replay_replies;
    for (int i = 0; i < w->nnats; i++)
        res->down_dead += w->nats[i].down_dead;
    res->replaced = w->replaced, res->replaced_spare = w->replaced_spare;
    res->gone_ms = w->gone_ms;
    res->replaced_at_restart = w->replaced_at_restart;
    res->rto_at_restart = w->rto_at_restart;
    res->rto_at_gone = w->rto_at_gone;
    res->stalls = w->stalls, res->stalled_ms = w->path.stalled_ms;
    res->inq_dropped = w->inq_dropped;
    if (sc->path_rule)
        printf("  path: %llu replaced (%llu without a spare mapping), gone at %llu ms\n",
               (unsigned long long)w->replaced, (unsigned long long)w->replaced_spare,
               (unsigned long long)w->gone_ms);
    printf("  %s: sent %u echoed %u bad %u rtt_max %llu ms moves %llu probes %llu stolen %llu "
           "replays %llu replies-to-replayer %llu lost-on-dead-path %llu\n",
           sc->method, res->sent, res->echoed, res->bad, (unsigned long long)res->rtt_max_ms,
           (unsigned long long)res->moves, (unsigned long long)res->probes,
           (unsigned long long)res->stolen, (unsigned long long)res->replays_sent,
           (unsigned long long)res->replay_replies, (unsigned long long)res->down_dead);
    link_free(w->cli);
    link_free(w->srv);
    crypt_free(w->ccrypt);
    crypt_free(w->scrypt);
    vnet_free(w->net);
    free(w);
    W = NULL;
}

/* Every message echoed once, in order, and the path change cost at most |max_rtt_ms|. */
static void check_stream(const struct result *r, uint64_t max_rtt_ms)
{
    CHECK(r->sent > 0);
    CHECK_EQ(r->echoed, r->sent);
    CHECK_EQ(r->bad, 0);
    CHECK(r->rtt_max_ms <= max_rtt_ms);
    CHECK_EQ(r->stolen, 0);
    CHECK_EQ(r->bad_reply_addr, 0);
}

/* ---- the rule itself ---- */

/* A KCP segment header for |conv|: cmd, ts, sn, then |len| payload bytes (zero). */
static size_t seg(uint8_t *p, uint32_t conv, uint8_t cmd, uint32_t ts, uint32_t len)
{
    struct kcp_seg_hdr h = {.conv = conv, .cmd = cmd, .wnd = 128, .ts = ts, .sn = 1, .len = len};
    uint8_t *q = kcp_seg_hdr_encode(p, &h);
    memset(q, 0, len);
    return (size_t)(q - p) + len;
}

TEST(roam_scan_reads_push_and_ack_timestamps)
{
    uint8_t pkt[512];
    size_t n = seg(pkt, CONV, KCP_CMD_ACK, 500, 0);
    n += seg(pkt + n, CONV, KCP_CMD_PUSH, 7000, 10);
    n += seg(pkt + n, CONV, KCP_CMD_ACK, 900, 0);
    n += seg(pkt + n, CONV, KCP_CMD_PUSH, 6999, 3);
    n += seg(pkt + n, CONV, KCP_CMD_WASK, 99999, 0);
    struct roam_scan s;
    roam_scan(pkt, n, CONV, &s);
    CHECK(s.has_push && s.has_ack);
    CHECK_EQ(s.push_ts, 7000);
    CHECK_EQ(s.ack_ts, 900);
    /* wrong conv: nothing */
    roam_scan(pkt, n, CONV + 1, &s);
    CHECK(!s.has_push && !s.has_ack);
    /* truncated in the second segment's payload: only the first (an ACK) counts */
    roam_scan(pkt, KCP_OVERHEAD + KCP_OVERHEAD + 5, CONV, &s);
    CHECK(!s.has_push && s.has_ack);
    CHECK_EQ(s.ack_ts, 500);
    /* behind an FEC data header */
    uint8_t fec[600];
    put_u32le(fec, 77);
    put_u16le(fec + 4, FEC_TYPE_DATA);
    put_u16le(fec + 6, (uint16_t)(n + 2));
    memcpy(fec + FEC_HEADER_LEN, pkt, n);
    roam_scan(fec, n + FEC_HEADER_LEN, CONV, &s);
    CHECK(s.has_push && s.push_ts == 7000);
    /* an FEC size field that lies about the length: nothing */
    put_u16le(fec + 6, (uint16_t)(n + 3));
    roam_scan(fec, n + FEC_HEADER_LEN, CONV, &s);
    CHECK(!s.has_push && !s.has_ack);
    /* parity: nothing */
    put_u16le(fec + 4, FEC_TYPE_PARITY);
    roam_scan(fec, n + FEC_HEADER_LEN, CONV, &s);
    CHECK(!s.has_push && !s.has_ack);
    for (size_t len = 0; len < 8; len++) {
        roam_scan(pkt, len, CONV, &s);
        CHECK(!s.has_push && !s.has_ack);
    }
}

TEST(roam_newest_across_the_wrap)
{
    struct roam r;
    roam_init(&r, ROAM_MODE_COMPAT);
    struct roam_scan s = {.has_push = true, .push_ts = 0xfffffff0u};
    CHECK(roam_is_newest(&r, &s)); /* nothing seen yet */
    roam_observe(&r, &s);
    CHECK(roam_is_newest(&r, &s)); /* equal counts as newest (same millisecond) */
    s.push_ts = 0x10; /* after the wrap */
    CHECK(roam_is_newest(&r, &s));
    roam_observe(&r, &s);
    s.push_ts = 0xfffffff5u;
    CHECK(!roam_is_newest(&r, &s));
    /* an old push with a new ack is newest by the ack */
    s.has_ack = true, s.ack_ts = 5;
    CHECK(roam_is_newest(&r, &s));
    roam_observe(&r, &s);
    s.ack_ts = 4;
    CHECK(!roam_is_newest(&r, &s));
    struct roam_scan none = {0};
    CHECK(!roam_is_newest(&r, &none));
}

static struct roam_facts facts(bool auth, bool advanced, uint32_t push_ts)
{
    struct roam_facts f = {.authenticated = auth, .advanced = advanced};
    f.scan.has_push = true;
    f.scan.push_ts = push_ts;
    return f;
}

TEST(roam_rule_secure)
{
    struct roam r;
    roam_init(&r, ROAM_MODE_SECURE);
    struct roam_scan seen = {.has_push = true, .push_ts = 1000};
    roam_observe(&r, &seen);
    struct roam_facts f = facts(true, false, 1000);
    CHECK_EQ(roam_decide(&r, &f, 0), ROAM_MOVE); /* no progress needed */
    f = facts(true, true, 999);
    CHECK_EQ(roam_decide(&r, &f, 0), ROAM_IGNORE); /* older than what the session has */
    f = facts(false, true, 2000);
    CHECK_EQ(roam_decide(&r, &f, 1), ROAM_IGNORE);
    f = facts(true, true, 2000);
    f.parity_only = true;
    CHECK_EQ(roam_decide(&r, &f, 2), ROAM_IGNORE);
    CHECK_EQ(r.moves, 1);
    CHECK_EQ(r.ignored, 3);
}

TEST(roam_rule_compat)
{
    struct roam r;
    roam_init(&r, ROAM_MODE_COMPAT);
    struct roam_scan seen = {.has_push = true, .push_ts = 1000};
    roam_observe(&r, &seen);
    /* the CRC of kcptun's modes is no proof: a replay passes it */
    struct roam_facts f = facts(true, false, 500);
    CHECK_EQ(roam_decide(&r, &f, 0), ROAM_IGNORE);
    /* the replay of a datagram whose original was lost advances the session, but is old */
    f = facts(true, true, 999);
    CHECK_EQ(roam_decide(&r, &f, 0), ROAM_IGNORE);
    f = facts(true, true, 1001);
    CHECK_EQ(roam_decide(&r, &f, 0), ROAM_MOVE);
    /* ACK-only that advanced: moves; ACK-only that did not: ignored, never probed */
    f = (struct roam_facts){.authenticated = true, .advanced = true};
    f.scan.has_ack = true, f.scan.ack_ts = 50;
    CHECK_EQ(roam_decide(&r, &f, 10), ROAM_MOVE);
    f.advanced = false;
    CHECK_EQ(roam_decide(&r, &f, 10), ROAM_IGNORE);
    CHECK_EQ(r.moves, 2);
}

TEST(roam_rule_compat_probe_rate)
{
    struct roam r;
    roam_init(&r, ROAM_MODE_COMPAT);
    struct roam_facts f = facts(true, false, 1000);
    CHECK_EQ(roam_decide(&r, &f, 1000), ROAM_PROBE);
    CHECK_EQ(roam_decide(&r, &f, 1000 + ROAM_PROBE_GAP_MS - 1), ROAM_IGNORE);
    CHECK_EQ(roam_decide(&r, &f, 1000 + ROAM_PROBE_GAP_MS), ROAM_PROBE);
    /* the first probe at time 0 is a probe too (no "last probe" yet) */
    roam_init(&r, ROAM_MODE_COMPAT);
    CHECK_EQ(roam_decide(&r, &f, 0), ROAM_PROBE);
    CHECK_EQ(roam_decide(&r, &f, 1), ROAM_IGNORE);
    /* 200k newest-looking datagrams over 60 s: at most 60000 / gap + 1 probes */
    roam_init(&r, ROAM_MODE_COMPAT);
    for (uint64_t i = 0; i < 200000; i++)
        roam_decide(&r, &f, i * 60000 / 200000);
    CHECK(r.probes <= 60000 / ROAM_PROBE_GAP_MS + 1);
    CHECK_EQ(r.moves, 0);
    CHECK_EQ(strcmp(roam_verdict_name(ROAM_PROBE), "probe"), 0);
    CHECK_EQ(strcmp(roam_verdict_name(ROAM_MOVE), "move"), 0);
    CHECK_EQ(strcmp(roam_verdict_name(ROAM_IGNORE), "ignore"), 0);
}

/* ---- simulations ---- */

static const struct scenario rebind90 = {
    .duration_ms = 90000, .rebind_ms = 10000, .delay_ms = 10,
};

TEST(roam_sim_rebind_every_10s_aes)
{
    struct scenario sc = rebind90;
    sc.method = "aes";
    struct result r;
    run(&sc, 1, &r);
    check_stream(&r, 1000);
    CHECK_EQ(r.moves, 8); /* 90 s / 10 s: 8 rebinds inside the run (the 9th ends it) */
}

TEST(roam_sim_rebind_every_10s_secure)
{
    struct scenario sc = rebind90;
    sc.method = "xsalsa20-poly1305";
    struct result r;
    run(&sc, 2, &r);
    check_stream(&r, 1000);
    CHECK(r.moves >= 8); /* every new mapping: one move (more if reordering alternates) */
}

TEST(roam_sim_rebind_lossy_aes)
{
    struct scenario sc = rebind90;
    sc.method = "aes";
    sc.duration_ms = 60000;
    sc.loss = 0.05;
    struct result r;
    run(&sc, 3, &r);
    check_stream(&r, 3000);
    CHECK(r.moves >= 5);
}

TEST(roam_sim_replays_from_third_address_aes)
{
    /* 20k replays of delivered datagrams while the client rebinds: never a move there */
    struct scenario sc = rebind90;
    sc.method = "aes";
    sc.duration_ms = 40000;
    sc.replays = 20000;
    sc.replay_age_ms = 300;
    struct result r;
    run(&sc, 4, &r);
    check_stream(&r, 1000);
    CHECK_EQ(r.replays_sent, 20000);
    /* only probes answer a replayer: bounded by the probe rate */
    CHECK(r.replay_replies <= ROAM_PROBE_MAX_DGRAMS * (40000 / ROAM_PROBE_GAP_MS + 1));
}

TEST(roam_sim_replays_from_third_address_secure)
{
    struct scenario sc = rebind90;
    sc.method = "xsalsa20-poly1305";
    sc.duration_ms = 40000;
    sc.replays = 20000;
    sc.replay_age_ms = 300;
    struct result r;
    run(&sc, 6, &r);
    check_stream(&r, 1000);
    CHECK_EQ(r.replays_sent, 20000);
    CHECK_EQ(r.replay_replies, 0); /* the crypt refuses every replay before the rule */
}

TEST(roam_sim_replays_racing_the_original)
{
    /* Replays sent the moment they are captured may arrive before their original, and a
     * captured datagram lost further on is new to the server: that is the on-path attacker
     * of docs/roaming.md, who can take the reply address (as he could drop the traffic).
     * The real client's next datagram takes it back: every message still arrives. */
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int i = 0; i < 2; i++) {
        struct scenario sc = {.method = methods[i], .duration_ms = 20000, .replays = 20000,
                              .delay_ms = 10, .loss = 0.02};
        struct result r;
        run(&sc, 5 + (uint64_t)i, &r);
        CHECK_EQ(r.echoed, r.sent);
        CHECK_EQ(r.bad, 0);
        CHECK(r.rtt_max_ms <= 3000);
    }
}

TEST(roam_sim_two_addresses_racing)
{
    /* the client's datagrams leave through two live mappings at random (a load-balancing
     * router), and a replayer replays from a third: replies always reach one of the two */
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int i = 0; i < 2; i++) {
        struct scenario sc = {.method = methods[i], .duration_ms = 30000, .racing = true,
                              .replays = 5000, .replay_age_ms = 300, .delay_ms = 10,
                              .loss = 0.01};
        struct result r;
        run(&sc, 7 + (uint64_t)i, &r);
        check_stream(&r, 1500);
        CHECK(r.moves > 10);
    }
}

/* ---- the client's side: dead paths and a restarted server ---- */

TEST(roam_path_rule)
{
    struct roam_path p;
    roam_path_init(&p, 1000);
    /* before the server's first answer: never a verdict */
    CHECK_EQ(roam_path_deadline(&p, true, 100), UINT64_MAX);
    CHECK_EQ(roam_path_check(&p, 1000000, true, 100), ROAM_PATH_WAIT);
    CHECK(!roam_path_answered(&p, 1000));
    /* nothing outstanding: never a verdict */
    CHECK_EQ(roam_path_deadline(&p, false, 100), UINT64_MAX);
    CHECK_EQ(roam_path_check(&p, 1000000, false, 100), ROAM_PATH_WAIT);
    roam_path_outstanding(&p, 1000, true); /* outstanding since 1000 */
    /* a short RTO: the floor; a long one: ROAM_PATH_RTOS of them */
    CHECK_EQ(roam_path_deadline(&p, true, 100), 1000 + ROAM_PATH_MIN_MS);
    CHECK_EQ(roam_path_deadline(&p, true, 2000), 1000 + 2000 * ROAM_PATH_RTOS);
    CHECK_EQ(roam_path_check(&p, 1999, true, 100), ROAM_PATH_WAIT);
    CHECK_EQ(roam_path_check(&p, 2000, true, 100), ROAM_PATH_REPLACE);
    CHECK_EQ(p.tries, 1);
    /* the new path gets its own silence count */
    CHECK_EQ(roam_path_check(&p, 2999, true, 100), ROAM_PATH_WAIT);
    /* an answer: back to zero, and it says a replaced path was answered */
    CHECK(roam_path_answered(&p, 2500));
    CHECK(!roam_path_answered(&p, 2600));
    CHECK_EQ(p.tries, 0);
    for (unsigned i = 0; i < ROAM_PATH_TRIES; i++)
        CHECK_EQ(roam_path_check(&p, 2600 + (i + 1) * ROAM_PATH_MIN_MS, true, 10),
                 ROAM_PATH_REPLACE);
    uint64_t t = 2600 + (ROAM_PATH_TRIES + 1) * ROAM_PATH_MIN_MS;
    CHECK_EQ(roam_path_check(&p, t - 1, true, 10), ROAM_PATH_WAIT);
    CHECK_EQ(roam_path_check(&p, t, true, 10), ROAM_PATH_GONE);
    CHECK_EQ(p.replaced, 1 + ROAM_PATH_TRIES);
}

TEST(roam_path_silence_starts_when_outstanding)
{
    struct roam_path p;
    roam_path_init(&p, 0);
    roam_path_answered(&p, 1000);
    roam_path_outstanding(&p, 1000, false);
    /* idle for 9 s, then something leaves: its silence starts now, not at the last answer */
    CHECK_EQ(roam_path_check(&p, 10000, true, 100), ROAM_PATH_WAIT);
    CHECK_EQ(roam_path_deadline(&p, true, 100), 10000 + ROAM_PATH_MIN_MS);
    /* still outstanding later: no new start */
    roam_path_outstanding(&p, 10500, true);
    CHECK_EQ(roam_path_deadline(&p, true, 100), 10000 + ROAM_PATH_MIN_MS);
    CHECK_EQ(roam_path_check(&p, 11000, true, 100), ROAM_PATH_REPLACE);
}

TEST(roam_path_late_wakes)
{
    struct roam_path p;
    roam_path_init(&p, 0);
    roam_path_answered(&p, 1000);
    roam_path_outstanding(&p, 1000, true);
    /* late by no more than an RTO: noise the round trip already holds, still silence */
    roam_path_late(&p, 1900, 100, 100);
    CHECK_EQ(roam_path_deadline(&p, true, 100), 2000);
    /* late by 700 ms: that stall is not silence of the path */
    roam_path_late(&p, 1950, 700, 100);
    CHECK_EQ(roam_path_deadline(&p, true, 100), 2700);
    CHECK_EQ(p.stalls, 1);
    CHECK_EQ(p.stalled_ms, 700);
    /* a stall longer than the silence so far takes only the silence */
    roam_path_late(&p, 4000, 3000, 100);
    CHECK_EQ(roam_path_deadline(&p, true, 100), 5000);
    CHECK_EQ(p.stalled_ms, 700 + 2300);
    CHECK_EQ(roam_path_check(&p, 4999, true, 100), ROAM_PATH_WAIT);
    CHECK_EQ(roam_path_check(&p, 5000, true, 100), ROAM_PATH_REPLACE);
}

TEST(roam_mode_of_methods)
{
    const char *compat[] = {"aes", "aes-128-gcm", "none", "xor", "salsa20"};
    for (size_t i = 0; i < sizeof(compat) / sizeof(compat[0]); i++) {
        struct crypt *c = new_crypt(compat[i], CRYPT_ROLE_SERVER);
        if (!c)
            continue; /* a build without that method */
        CHECK_EQ(roam_mode_of(c), ROAM_MODE_COMPAT);
        crypt_free(c);
    }
    struct crypt *c = new_crypt(CRYPT_SECURE_METHOD, CRYPT_ROLE_SERVER);
    REQUIRE(c);
    CHECK_EQ(roam_mode_of(c), ROAM_MODE_SECURE);
    crypt_free(c);
}

TEST(roam_sim_path_killed_every_10s)
{
    /* A middlebox drops the client's flow for good every 10 s (both ways): the client notices
     * the silence, moves to a new mapping, and the server follows, in kcptun's modes (the
     * first datagram on the new path carries new data) as in the secure mode. */
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int i = 0; i < 2; i++) {
        struct scenario sc = {.method = methods[i], .duration_ms = 60000, .delay_ms = 10,
                              .path_rule = true, .kill_ms = 10000};
        struct result r;
        run(&sc, 11 + (uint64_t)i, &r);
        check_stream(&r, 2 * ROAM_PATH_MIN_MS);
        CHECK_EQ(r.replaced, 5); /* one per kill inside the run */
        CHECK_EQ(r.replaced_spare, 0);
        CHECK_EQ(r.gone_ms, 0);
        CHECK(r.moves >= 5);
    }
}

TEST(roam_sim_path_dead_one_way)
{
    /* The path dies towards the server only: the server's datagrams still arrive (it resends
     * what the client's lost acknowledgements never confirmed), yet none acknowledges the
     * client's data, so the path still counts as dead and is replaced. */
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int i = 0; i < 2; i++) {
        struct scenario sc = {.method = methods[i], .duration_ms = 40000, .delay_ms = 10,
                              .path_rule = true, .kill_ms = 10000, .kill_up_only = true};
        struct result r;
        run(&sc, 41 + (uint64_t)i, &r);
        check_stream(&r, 2 * ROAM_PATH_MIN_MS);
        CHECK_EQ(r.replaced, 3);
        CHECK_EQ(r.gone_ms, 0);
    }
}

TEST(roam_sim_path_killed_lossy_slow)
{
    /* the same across link speeds and loss: 5% loss, one-way delays from 2 to 150 ms */
    const uint32_t delays[] = {2, 40, 150};
    for (int i = 0; i < 3; i++) {
        struct scenario sc = {.method = "aes", .duration_ms = 40000, .delay_ms = delays[i],
                              .loss = 0.05, .path_rule = true, .kill_ms = 10000};
        struct result r;
        run(&sc, 21 + (uint64_t)i, &r);
        CHECK_EQ(r.echoed, r.sent);
        CHECK_EQ(r.bad, 0);
        CHECK_EQ(r.stolen, 0);
        CHECK(r.replaced >= 3);
        CHECK_EQ(r.replaced_spare, 0);
        CHECK_EQ(r.gone_ms, 0);
    }
}

TEST(roam_sim_server_restart_noticed)
{
    /* The server restarts and knows the session no more (a ktun server does not answer a
     * datagram of an unknown session past its start): the client closes the session after
     * ROAM_PATH_TRIES unanswered new paths. How long that takes follows the path's RTO (which
     * answers still in flight at the restart may raise); no path is replaced before it. */
    const uint32_t delays[] = {2, 25, 100, 250};
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 4; i++) {
            struct scenario sc = {.method = methods[m], .duration_ms = 30000,
                                  .delay_ms = delays[i], .loss = 0.01, .path_rule = true,
                                  .restart_ms = 10000};
            struct result r;
            run(&sc, 31 + (uint64_t)(m * 4 + i), &r);
            CHECK_EQ(r.bad, 0);
            CHECK_EQ(r.replaced_at_restart, 0);
            CHECK(r.gone_ms > sc.restart_ms);
            uint32_t rto = MAX(r.rto_at_restart, r.rto_at_gone);
            uint64_t window = MAX((uint64_t)ROAM_PATH_MIN_MS, (uint64_t)ROAM_PATH_RTOS * rto);
            uint64_t bound = (ROAM_PATH_TRIES + 1) * window + MSG_EVERY_MS + 4 * delays[i];
            printf("  delay %u ms: rto %u-%u ms, gone %llu ms after the restart (bound %llu)\n",
                   delays[i], r.rto_at_restart, r.rto_at_gone,
                   (unsigned long long)(r.gone_ms - sc.restart_ms), (unsigned long long)bound);
            CHECK(r.gone_ms - sc.restart_ms <= bound);
            CHECK_EQ(r.replaced, ROAM_PATH_TRIES);
        }
}

TEST(roam_sim_client_stalls)
{
    /* The client's own loop stalls (a loaded host does not schedule it): the server's answers
     * wait unread in its socket, and on waking its timer runs before the reads. That silence
     * is the client's, not the path's: no path is replaced, and nothing is lost. Without the
     * late-wake report (the old rule) the same runs replace paths. Stalls of 1.5-4 s every 6 s,
     * one-way delays 2-100 ms, aes and the secure mode. */
    const uint32_t delays[] = {2, 25, 100};
    const uint64_t stalls[] = {1500, 4000};
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 2; k++) {
                struct scenario sc = {.method = methods[m], .duration_ms = 30000,
                                      .delay_ms = delays[i], .path_rule = true,
                                      .stall_every_ms = 6000, .stall_ms = stalls[k]};
                struct result r, old;
                uint64_t seed = 61 + (uint64_t)(m * 6 + i * 2 + k);
                run(&sc, seed, &r);
                sc.no_stall_credit = true;
                run(&sc, seed, &old);
                printf("  delay %u ms, stalls of %llu ms: %llu stalls, %llu ms not counted, "
                       "%llu replaced (old rule: %llu)\n", delays[i],
                       (unsigned long long)stalls[k], (unsigned long long)r.stalls,
                       (unsigned long long)r.stalled_ms, (unsigned long long)r.replaced,
                       (unsigned long long)old.replaced);
                CHECK(r.stalls >= 4);
                CHECK_EQ(r.inq_dropped, 0);
                CHECK_EQ(r.echoed, r.sent);
                CHECK_EQ(r.bad, 0);
                CHECK_EQ(r.replaced, 0);
                CHECK_EQ(r.gone_ms, 0);
                CHECK(old.replaced > 0);
            }
}

TEST(roam_sim_server_restart_noticed_while_client_stalls)
{
    /* A stalling client still notices a restarted server: only the stalls are taken out, so
     * the server is gone at most the stalled time later than ROAM_PATH_TRIES + 1 windows. */
    const uint32_t delays[] = {2, 25};
    for (int i = 0; i < 2; i++) {
        struct scenario sc = {.method = "xsalsa20-poly1305", .duration_ms = 30000,
                              .delay_ms = delays[i], .loss = 0.01, .path_rule = true,
                              .restart_ms = 10000, .stall_every_ms = 4000, .stall_ms = 1500};
        struct result r;
        run(&sc, 81 + (uint64_t)i, &r);
        CHECK_EQ(r.bad, 0);
        CHECK_EQ(r.replaced_at_restart, 0);
        CHECK(r.gone_ms > sc.restart_ms);
        uint32_t rto = MAX(r.rto_at_restart, r.rto_at_gone);
        uint64_t window = MAX((uint64_t)ROAM_PATH_MIN_MS, (uint64_t)ROAM_PATH_RTOS * rto);
        uint64_t active = (ROAM_PATH_TRIES + 1) * window + MSG_EVERY_MS + 4 * delays[i];
        /* the loop runs 2.5 s of every 4 s: stalls may add up to 1.5 s per 2.5 s of waiting */
        uint64_t bound = active + (active / 2500 + 1) * 1500;
        printf("  delay %u ms: gone %llu ms after the restart (bound %llu), %llu ms of stalls "
               "not counted\n", delays[i], (unsigned long long)(r.gone_ms - sc.restart_ms),
               (unsigned long long)bound, (unsigned long long)r.stalled_ms);
        CHECK(r.gone_ms - sc.restart_ms <= bound);
        CHECK_EQ(r.replaced, ROAM_PATH_TRIES);
    }
}

TEST(roam_sim_idle_gaps)
{
    /* One message every 3 s: between them nothing is outstanding and the server has nothing
     * to send. Silence before a message left is no sign of a dead path: nothing is replaced. */
    const uint32_t delays[] = {2, 25, 100};
    const char *methods[] = {"aes", "xsalsa20-poly1305"};
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 3; i++) {
            struct scenario sc = {.method = methods[m], .duration_ms = 30000,
                                  .delay_ms = delays[i], .loss = 0.01, .path_rule = true,
                                  .msg_every_ms = 3000};
            struct result r;
            run(&sc, 91 + (uint64_t)(m * 3 + i), &r);
            CHECK_EQ(r.echoed, r.sent);
            CHECK_EQ(r.bad, 0);
            CHECK_EQ(r.replaced, 0);
        }
}
