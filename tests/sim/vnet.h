/* SPDX-License-Identifier: MIT */
/* Deterministic discrete-event network simulator: virtual clock, seeded PRNG, lossy links. */
#ifndef KTUN_TESTS_VNET_H
#define KTUN_TESTS_VNET_H

/*
 * vnet connects two or more endpoints through directional links. Nothing sleeps: the clock
 * jumps straight to the next event, which is the earliest of every endpoint's deadline and
 * every in-flight packet's arrival. All randomness comes from one seeded PRNG, so a run is
 * reproducible from its seed; SIM_SEED=<n> in the environment overrides the default seed
 * (see vnet_seed_from_env) and vnet_seed() gives the seed to print when a test fails.
 *
 * Each endpoint supplies three callbacks (any may be NULL):
 *   deliver(user, from, pkt, len, now_ms)  a packet arrived (pkt borrowed for the call)
 *   next_deadline(user, now_ms)            absolute ms of the next wake-up, UINT64_MAX if none
 *   tick(user, now_ms)                     called once the deadline has been reached
 * Callbacks send with vnet_send() (to the endpoint's default peer) or vnet_send_to().
 *
 * Links (one per ordered endpoint pair) are perfect by default: no delay, no loss, no rate cap.
 * vnet_link_set() installs a model: loss probability, fixed delay, uniform jitter, reordering
 * (a packet is held back by an extra delay), duplication, a rate cap with a bounded queue
 * (tail drop) and blackout windows. Per-link counters come from vnet_link_stats().
 *
 * Usage:
 *
 *     struct vnet *net = vnet_new(vnet_seed_from_env(42));
 *     static const struct vnet_endpoint_cb cb = {my_deliver, my_deadline, my_tick};
 *     int a = vnet_add_endpoint(net, &cb, &side_a);     // 0
 *     int b = vnet_add_endpoint(net, &cb, &side_b);     // 1; a and b become default peers
 *     struct vnet_link_cfg lc = {.loss = 0.1, .delay_ms = 20, .jitter_ms = 5, .dup = 0.01};
 *     vnet_link_set(net, a, b, &lc);
 *     vnet_link_set(net, b, a, &lc);
 *     // my_tick/my_deliver call vnet_send(net, self_id, pkt, len) to transmit.
 *     enum vnet_result r = vnet_run(net, 60000, transfer_done, &state);
 *     if (r != VNET_DONE)
 *         printf("failed, seed %llu\n", (unsigned long long)vnet_seed(net));
 *     vnet_free(net);
 *
 * All times are virtual milliseconds starting at vnet_new()'s |start_ms| (see vnet_new_at);
 * internally the clock runs in microseconds so that rate caps serialise packets exactly.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VNET_MAX_ENDPOINTS 16
#define VNET_MAX_BLACKOUTS 4
#define VNET_NEVER UINT64_MAX

struct vnet;

typedef void vnet_deliver_fn(void *user, int from, const uint8_t *pkt, size_t len,
                             uint64_t now_ms);
typedef uint64_t vnet_deadline_fn(void *user, uint64_t now_ms);
typedef void vnet_tick_fn(void *user, uint64_t now_ms);
/* Run predicate: returns true when the experiment is finished. */
typedef bool vnet_done_fn(void *user);

struct vnet_endpoint_cb {
    vnet_deliver_fn *deliver;        /* packet arrival; NULL drops arrivals (still counted) */
    vnet_deadline_fn *next_deadline; /* NULL: the endpoint never wakes on its own */
    vnet_tick_fn *tick;              /* called when now >= next_deadline */
};

/* A time window [from_ms, until_ms) during which a link drops everything sent into it. */
struct vnet_blackout {
    uint64_t from_ms;
    uint64_t until_ms;
};

struct vnet_link_cfg {
    double loss;          /* probability a packet is dropped on entry, 0..1 */
    uint32_t delay_ms;    /* fixed one-way propagation delay */
    uint32_t jitter_ms;   /* extra uniform delay 0..jitter_ms (itself reorders packets) */
    double reorder;       /* probability a packet is held back by an extra reorder_ms */
    uint32_t reorder_ms;  /* hold-back delay for reordered packets (default 2*jitter+10) */
    double dup;           /* probability a packet is delivered twice (copy has own jitter) */
    uint64_t rate_bps;    /* bottleneck rate in bits per second; 0 = unlimited */
    size_t queue_bytes;   /* bottleneck queue size; 0 = 64 KiB when rate_bps is set */
    struct vnet_blackout blackout[VNET_MAX_BLACKOUTS]; /* unused entries are {0, 0} */
};

struct vnet_link_stats {
    uint64_t sent;          /* packets handed to the link */
    uint64_t dropped;       /* lost by the loss model or during a blackout */
    uint64_t dropped_queue; /* tail-dropped because the rate-cap queue was full */
    uint64_t duplicated;    /* extra copies created */
    uint64_t reordered;     /* packets held back by the reorder model */
    uint64_t delivered;     /* packets (including copies) handed to the receiver */
    uint64_t bytes_sent;    /* bytes handed to the link */
    uint64_t bytes_delivered;
};

struct vnet_endpoint_stats {
    uint64_t ticks;      /* tick callbacks */
    uint64_t delivered;  /* packets received */
};

enum vnet_result {
    VNET_DONE,    /* the done predicate returned true */
    VNET_TIMEOUT, /* the clock reached the time limit first */
    VNET_IDLE,    /* nothing is pending anywhere: no packet in flight, no deadline */
    VNET_STUCK,   /* an endpoint kept asking for a deadline in the past without progress */
    VNET_RESULT_COUNT
};

/* Returns the seed in $SIM_SEED if set (decimal or 0x hex), otherwise |dflt|. */
uint64_t vnet_seed_from_env(uint64_t dflt);

/* Creates a simulator whose PRNG starts from |seed| and whose clock reads 0 ms. Returns NULL
 * on allocation failure. Free with vnet_free. */
struct vnet *vnet_new(uint64_t seed);
/* Like vnet_new with the clock starting at |start_ms| (e.g. to test 32-bit timestamp wrap). */
struct vnet *vnet_new_at(uint64_t seed, uint64_t start_ms);
/* Frees |net| and every packet in flight; NULL is allowed. Endpoint users are not touched. */
void vnet_free(struct vnet *net);

/* Adds an endpoint with callbacks |cb| (copied) and |user|. Returns its id (0, 1, ...) or -1
 * when VNET_MAX_ENDPOINTS are in use. The first two endpoints become each other's default
 * peer; change that with vnet_set_peer. */
int vnet_add_endpoint(struct vnet *net, const struct vnet_endpoint_cb *cb, void *user);
/* Sets the destination of vnet_send from endpoint |ep| to |peer|. */
void vnet_set_peer(struct vnet *net, int ep, int peer);

/* Installs link model |cfg| (copied) for packets from |from| to |to|. */
void vnet_link_set(struct vnet *net, int from, int to, const struct vnet_link_cfg *cfg);
/* Installs |cfg| in both directions between |a| and |b|. */
void vnet_link_set_both(struct vnet *net, int a, int b, const struct vnet_link_cfg *cfg);
/* Counters of the link from |from| to |to|. */
struct vnet_link_stats vnet_link_stats(const struct vnet *net, int from, int to);
/* Counters of endpoint |ep|. */
struct vnet_endpoint_stats vnet_endpoint_stats(const struct vnet *net, int ep);

/* Sends |len| bytes of |pkt| (copied) from endpoint |from| to its default peer, or to |to|.
 * Callable from any callback or between runs. Returns 0, or -1 if the packet was refused
 * (bad endpoint or allocation failure); losses are not errors. */
int vnet_send(struct vnet *net, int from, const uint8_t *pkt, size_t len);
int vnet_send_to(struct vnet *net, int from, int to, const uint8_t *pkt, size_t len);

/* Runs events until |done|(|user|) is true (checked before every step; NULL = never), the
 * clock would pass |until_ms| (it then reads exactly |until_ms|), or nothing is pending. */
enum vnet_result vnet_run(struct vnet *net, uint64_t until_ms, vnet_done_fn *done, void *user);

/* Current virtual time in ms. */
uint64_t vnet_now(const struct vnet *net);
/* The seed this simulator was created with. */
uint64_t vnet_seed(const struct vnet *net);
/* Draws from the simulator's PRNG (xorshift64* seeded through splitmix64). Tests may use it for
 * payloads and mutations so that SIM_SEED replays everything. */
uint64_t vnet_rand(struct vnet *net);
/* Uniform double in [0, 1). */
double vnet_rand_unit(struct vnet *net);
/* Packets currently in flight on all links. */
size_t vnet_in_flight(const struct vnet *net);
/* Short name of a result ("done", "timeout", ...). */
const char *vnet_result_str(enum vnet_result r);

#endif
