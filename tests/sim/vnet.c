/* SPDX-License-Identifier: MIT */
/* Deterministic discrete-event network simulator (see vnet.h). */
#include "tests/sim/vnet.h"

#include <stdlib.h>
#include <string.h>

/* An endpoint asking to be ticked at or before "now" this many times in a row without the clock
 * moving is considered stuck (a deadline that never advances would otherwise spin forever). */
#define VNET_STUCK_LIMIT 100000

struct vnet_pkt {
    uint64_t arrive_us; /* arrival time */
    uint64_t order;     /* tie-breaker: send order, keeps equal-time arrivals FIFO */
    int from;
    int to;
    size_t len;
    uint8_t data[];
};

struct vnet_link {
    struct vnet_link_cfg cfg;
    struct vnet_link_stats stats;
    uint64_t busy_until_us; /* rate cap: when the bottleneck finishes its current backlog */
};

struct vnet_endpoint {
    struct vnet_endpoint_cb cb;
    void *user;
    int peer;
    struct vnet_endpoint_stats stats;
};

struct vnet {
    uint64_t seed;
    uint64_t rng;
    uint64_t now_us;
    uint64_t order;
    int n_ep;
    struct vnet_endpoint ep[VNET_MAX_ENDPOINTS];
    struct vnet_link link[VNET_MAX_ENDPOINTS][VNET_MAX_ENDPOINTS];
    struct vnet_pkt **heap; /* min-heap on (arrive_us, order) */
    size_t heap_len;
    size_t heap_cap;
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t vnet_seed_from_env(uint64_t dflt)
{
    const char *s = getenv("SIM_SEED");
    if (!s || !*s)
        return dflt;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 0);
    return end && *end == '\0' ? (uint64_t)v : dflt;
}

struct vnet *vnet_new_at(uint64_t seed, uint64_t start_ms)
{
    struct vnet *net = calloc(1, sizeof(*net));
    if (!net)
        return NULL;
    uint64_t s = seed;
    net->seed = seed;
    net->rng = splitmix64(&s);
    if (net->rng == 0)
        net->rng = 0x2545f4914f6cdd1dull;
    net->now_us = start_ms * 1000;
    return net;
}

struct vnet *vnet_new(uint64_t seed)
{
    return vnet_new_at(seed, 0);
}

void vnet_free(struct vnet *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->heap_len; i++)
        free(net->heap[i]);
    free(net->heap);
    free(net);
}

uint64_t vnet_rand(struct vnet *net)
{
    uint64_t x = net->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    net->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

double vnet_rand_unit(struct vnet *net)
{
    return (double)(vnet_rand(net) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t rand_below(struct vnet *net, uint64_t n)
{
    return n ? vnet_rand(net) % n : 0;
}

uint64_t vnet_now(const struct vnet *net)
{
    return net->now_us / 1000;
}

uint64_t vnet_seed(const struct vnet *net)
{
    return net->seed;
}

size_t vnet_in_flight(const struct vnet *net)
{
    return net->heap_len;
}

const char *vnet_result_str(enum vnet_result r)
{
    static const char *const names[VNET_RESULT_COUNT] = {"done", "timeout", "idle", "stuck"};
    return (unsigned)r < VNET_RESULT_COUNT ? names[r] : "?";
}

static bool valid_ep(const struct vnet *net, int ep)
{
    return ep >= 0 && ep < net->n_ep;
}

int vnet_add_endpoint(struct vnet *net, const struct vnet_endpoint_cb *cb, void *user)
{
    if (net->n_ep >= VNET_MAX_ENDPOINTS)
        return -1;
    int id = net->n_ep++;
    net->ep[id].cb = *cb;
    net->ep[id].user = user;
    net->ep[id].peer = -1;
    if (id == 1) {
        net->ep[0].peer = 1;
        net->ep[1].peer = 0;
    }
    return id;
}

void vnet_set_peer(struct vnet *net, int ep, int peer)
{
    if (valid_ep(net, ep))
        net->ep[ep].peer = peer;
}

void vnet_link_set(struct vnet *net, int from, int to, const struct vnet_link_cfg *cfg)
{
    if (from < 0 || to < 0 || from >= VNET_MAX_ENDPOINTS || to >= VNET_MAX_ENDPOINTS)
        return;
    struct vnet_link *l = &net->link[from][to];
    l->cfg = *cfg;
    if (l->cfg.rate_bps && !l->cfg.queue_bytes)
        l->cfg.queue_bytes = 65536;
    if (l->cfg.reorder > 0 && !l->cfg.reorder_ms)
        l->cfg.reorder_ms = 2 * l->cfg.jitter_ms + 10;
}

void vnet_link_set_both(struct vnet *net, int a, int b, const struct vnet_link_cfg *cfg)
{
    vnet_link_set(net, a, b, cfg);
    vnet_link_set(net, b, a, cfg);
}

struct vnet_link_stats vnet_link_stats(const struct vnet *net, int from, int to)
{
    struct vnet_link_stats none = {0};
    if (from < 0 || to < 0 || from >= VNET_MAX_ENDPOINTS || to >= VNET_MAX_ENDPOINTS)
        return none;
    return net->link[from][to].stats;
}

struct vnet_endpoint_stats vnet_endpoint_stats(const struct vnet *net, int ep)
{
    struct vnet_endpoint_stats none = {0};
    return valid_ep(net, ep) ? net->ep[ep].stats : none;
}

static bool pkt_before(const struct vnet_pkt *a, const struct vnet_pkt *b)
{
    return a->arrive_us < b->arrive_us || (a->arrive_us == b->arrive_us && a->order < b->order);
}

static int heap_push(struct vnet *net, struct vnet_pkt *p)
{
    if (net->heap_len == net->heap_cap) {
        size_t cap = net->heap_cap ? net->heap_cap * 2 : 256;
        struct vnet_pkt **h = realloc(net->heap, cap * sizeof(*h));
        if (!h)
            return -1;
        net->heap = h;
        net->heap_cap = cap;
    }
    size_t i = net->heap_len++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pkt_before(p, net->heap[parent]))
            break;
        net->heap[i] = net->heap[parent];
        i = parent;
    }
    net->heap[i] = p;
    return 0;
}

static struct vnet_pkt *heap_pop(struct vnet *net)
{
    struct vnet_pkt *top = net->heap[0];
    struct vnet_pkt *last = net->heap[--net->heap_len];
    size_t i = 0, n = net->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pkt_before(net->heap[c + 1], net->heap[c]))
            c++;
        if (!pkt_before(net->heap[c], last))
            break;
        net->heap[i] = net->heap[c];
        i = c;
    }
    if (n)
        net->heap[i] = last;
    return top;
}

static bool in_blackout(const struct vnet_link_cfg *cfg, uint64_t now_ms)
{
    for (int i = 0; i < VNET_MAX_BLACKOUTS; i++) {
        const struct vnet_blackout *b = &cfg->blackout[i];
        if (b->until_ms > b->from_ms && now_ms >= b->from_ms && now_ms < b->until_ms)
            return true;
    }
    return false;
}

/* Schedules one copy of the packet at |depart_us| plus propagation delay, jitter and reorder. */
static int schedule(struct vnet *net, struct vnet_link *l, int from, int to, const uint8_t *pkt,
                    size_t len, uint64_t depart_us)
{
    const struct vnet_link_cfg *cfg = &l->cfg;
    uint64_t delay_us = (uint64_t)cfg->delay_ms * 1000;
    if (cfg->jitter_ms)
        delay_us += rand_below(net, (uint64_t)cfg->jitter_ms * 1000 + 1);
    if (cfg->reorder > 0 && vnet_rand_unit(net) < cfg->reorder) {
        delay_us += (uint64_t)cfg->reorder_ms * 1000;
        l->stats.reordered++;
    }
    struct vnet_pkt *p = malloc(sizeof(*p) + len);
    if (!p)
        return -1;
    p->arrive_us = depart_us + delay_us;
    p->order = net->order++;
    p->from = from;
    p->to = to;
    p->len = len;
    if (len)
        memcpy(p->data, pkt, len);
    if (heap_push(net, p) < 0) {
        free(p);
        return -1;
    }
    return 0;
}

int vnet_send_to(struct vnet *net, int from, int to, const uint8_t *pkt, size_t len)
{
    if (!valid_ep(net, from) || !valid_ep(net, to))
        return -1;
    struct vnet_link *l = &net->link[from][to];
    const struct vnet_link_cfg *cfg = &l->cfg;
    l->stats.sent++;
    l->stats.bytes_sent += len;
    if (in_blackout(cfg, vnet_now(net)) || (cfg->loss > 0 && vnet_rand_unit(net) < cfg->loss)) {
        l->stats.dropped++;
        return 0;
    }
    uint64_t depart_us = net->now_us;
    if (cfg->rate_bps) {
        /* Backlog = bytes still waiting for the bottleneck; tail-drop beyond queue_bytes. */
        uint64_t start = l->busy_until_us > net->now_us ? l->busy_until_us : net->now_us;
        uint64_t backlog = (start - net->now_us) * cfg->rate_bps / 8000000;
        if (backlog + len > cfg->queue_bytes) {
            l->stats.dropped_queue++;
            return 0;
        }
        uint64_t tx_us = ((uint64_t)len * 8000000 + cfg->rate_bps - 1) / cfg->rate_bps;
        l->busy_until_us = start + tx_us;
        depart_us = l->busy_until_us;
    }
    if (schedule(net, l, from, to, pkt, len, depart_us) < 0)
        return -1;
    if (cfg->dup > 0 && vnet_rand_unit(net) < cfg->dup) {
        l->stats.duplicated++;
        if (schedule(net, l, from, to, pkt, len, depart_us) < 0)
            return -1;
    }
    return 0;
}

int vnet_send(struct vnet *net, int from, const uint8_t *pkt, size_t len)
{
    if (!valid_ep(net, from))
        return -1;
    return vnet_send_to(net, from, net->ep[from].peer, pkt, len);
}

static uint64_t ep_deadline_us(struct vnet *net, int i)
{
    struct vnet_endpoint *e = &net->ep[i];
    if (!e->cb.next_deadline)
        return VNET_NEVER;
    uint64_t d = e->cb.next_deadline(e->user, vnet_now(net));
    if (d == VNET_NEVER || d > VNET_NEVER / 1000 - 1)
        return VNET_NEVER;
    return d * 1000;
}

/* Delivers every packet due by now, then ticks every endpoint whose deadline has come. */
static void step(struct vnet *net)
{
    while (net->heap_len && net->heap[0]->arrive_us <= net->now_us) {
        struct vnet_pkt *p = heap_pop(net);
        struct vnet_link *l = &net->link[p->from][p->to];
        struct vnet_endpoint *e = &net->ep[p->to];
        l->stats.delivered++;
        l->stats.bytes_delivered += p->len;
        e->stats.delivered++;
        if (e->cb.deliver)
            e->cb.deliver(e->user, p->from, p->data, p->len, vnet_now(net));
        free(p);
    }
    for (int i = 0; i < net->n_ep; i++) {
        struct vnet_endpoint *e = &net->ep[i];
        if (e->cb.tick && ep_deadline_us(net, i) <= net->now_us) {
            e->stats.ticks++;
            e->cb.tick(e->user, vnet_now(net));
        }
    }
}

enum vnet_result vnet_run(struct vnet *net, uint64_t until_ms, vnet_done_fn *done, void *user)
{
    uint64_t until_us = until_ms > VNET_NEVER / 1000 ? VNET_NEVER : until_ms * 1000;
    uint64_t same_time = 0, last_us = net->now_us;
    for (;;) {
        if (done && done(user))
            return VNET_DONE;
        uint64_t next = net->heap_len ? net->heap[0]->arrive_us : VNET_NEVER;
        for (int i = 0; i < net->n_ep; i++) {
            uint64_t d = ep_deadline_us(net, i);
            if (d < next)
                next = d;
        }
        if (next == VNET_NEVER)
            return VNET_IDLE;
        if (next > until_us) {
            if (until_us > net->now_us)
                net->now_us = until_us;
            return VNET_TIMEOUT;
        }
        /* Deadlines are whole ms: a deadline in the past fires now, never moves time back. */
        if (next > net->now_us)
            net->now_us = next;
        if (net->now_us == last_us) {
            if (++same_time > VNET_STUCK_LIMIT)
                return VNET_STUCK;
        } else {
            same_time = 0;
            last_us = net->now_us;
        }
        step(net);
    }
}
