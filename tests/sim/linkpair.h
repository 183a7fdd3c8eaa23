/* SPDX-License-Identifier: MIT */
/* Simulator glue shared by the link-level simulations: a client and a server link stack
 * (KCP + FEC + crypt none) as two vnet endpoints, with kcptun's fast3 settings. */
#ifndef KTUN_TESTS_SIM_LINKPAIR_H
#define KTUN_TESTS_SIM_LINKPAIR_H

#include "common/link.h"
#include "crypto/crypt.h"
#include "tests/sim/vnet.h"

#include <stdbool.h>
#include <stdint.h>

/* One end. Embed it first in a test's own endpoint struct; |pump| (may be NULL) runs after
 * every delivery and tick, |deadline| (may be NULL) adds the test's own next event. */
struct sim_end {
    struct vnet *net;
    struct link *link;
    struct crypt *crypt;
    int id;
    void (*pump)(struct sim_end *e, uint64_t now_ms);
    uint64_t (*deadline)(struct sim_end *e, uint64_t now_ms);
};

/* kcptun's fast3 flags with FEC 10/3 and the client's default windows (128/512); |ktun|
 * selects ktun's sending (pacing, FEC hold, ACK repeat) or kcp-go's. */
void sim_link_config(struct link_config *lc, bool ktun);

/* Joins |cli| and |srv| on |net| through |lk| (both directions): crypt "none", the client
 * with |lc|, the server with |lc| but kcptun's server windows (1024/1024), conversation
 * |conv|. Returns 0, or -1 if anything failed (then sim_pair_close cleans up). */
int sim_pair_open(struct vnet *net, struct sim_end *cli, struct sim_end *srv,
                  const struct link_config *lc, const struct vnet_link_cfg *lk, uint32_t conv);

/* Frees both links and crypts (not the structs, not the net). */
void sim_pair_close(struct sim_end *cli, struct sim_end *srv);

/* The grids' settings from the environment, to check a change off the grid: if $|name| is a
 * comma-separated list of exactly |n| numbers, each times |scale| replaces |v|[i]
 * (SIM_GRID_DELAYS=30,70,100,200 SIM_GRID_RATES=10,50,100: ms and Mbit/s). Returns whether it
 * did; a malformed list is reported and ignored. */
bool sim_grid_env(const char *name, uint64_t *v, size_t n, uint64_t scale);

#endif
