/* SPDX-License-Identifier: MIT */
/* Simulator glue: two link stacks as vnet endpoints (see linkpair.h). */
#include "tests/sim/linkpair.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sim_link_config(struct link_config *lc, bool ktun)
{
    link_config_default(lc);
    lc->nodelay = 1, lc->interval_ms = 10, lc->resend = 2, lc->nc = 1; /* fast3 */
    lc->sndwnd = 128, lc->rcvwnd = 512;
    lc->pace = ktun;
    lc->no_fec_hold = !ktun;
}

static void end_out(void *user, const uint8_t *dgram, size_t len)
{
    struct sim_end *e = user;
    vnet_send(e->net, e->id, dgram, len);
}

static void end_deliver(void *user, int from, const uint8_t *pkt, size_t len, uint64_t now)
{
    (void)from;
    struct sim_end *e = user;
    uint8_t tmp[2048]; /* link_input opens the datagram in place */
    if (len > sizeof(tmp))
        return;
    memcpy(tmp, pkt, len);
    link_input(e->link, tmp, len, now);
    if (e->pump)
        e->pump(e, now);
}

static uint64_t end_deadline(void *user, uint64_t now)
{
    struct sim_end *e = user;
    uint64_t d = link_next_deadline(e->link, now);
    if (e->deadline) {
        uint64_t own = e->deadline(e, now);
        d = own < d ? own : d;
    }
    return d;
}

static void end_tick(void *user, uint64_t now)
{
    struct sim_end *e = user;
    link_tick(e->link, now);
    if (e->pump)
        e->pump(e, now);
}

static int end_open(struct vnet *net, struct sim_end *e, const struct link_config *lc,
                    uint32_t conv, enum crypt_role role)
{
    static const struct vnet_endpoint_cb cb = {end_deliver, end_deadline, end_tick};
    int err = 0;
    e->net = net;
    e->crypt = crypt_new("none", "sim", crypt_rng_sodium, NULL, &err);
    if (!e->crypt)
        return -1;
    crypt_set_role(e->crypt, role);
    e->link = link_new(conv, lc, e->crypt, end_out, e, NULL);
    if (!e->link)
        return -1;
    e->id = vnet_add_endpoint(net, &cb, e);
    return e->id < 0 ? -1 : 0;
}

int sim_pair_open(struct vnet *net, struct sim_end *cli, struct sim_end *srv,
                  const struct link_config *lc, const struct vnet_link_cfg *lk, uint32_t conv)
{
    struct link_config sc = *lc;
    sc.sndwnd = 1024, sc.rcvwnd = 1024;
    if (end_open(net, cli, lc, conv, CRYPT_ROLE_CLIENT) < 0 ||
        end_open(net, srv, &sc, conv, CRYPT_ROLE_SERVER) < 0)
        return -1;
    vnet_link_set_both(net, cli->id, srv->id, lk);
    return 0;
}

void sim_pair_close(struct sim_end *cli, struct sim_end *srv)
{
    link_free(cli->link);
    link_free(srv->link);
    crypt_free(cli->crypt);
    crypt_free(srv->crypt);
    cli->link = srv->link = NULL;
    cli->crypt = srv->crypt = NULL;
}

bool sim_grid_env(const char *name, uint64_t *v, size_t n, uint64_t scale)
{
    const char *s = getenv(name);
    if (!s || !*s)
        return false;
    uint64_t tmp[16];
    size_t i = 0;
    const char *p = s;
    while (i < n && i < 16) {
        char *end;
        unsigned long long x = strtoull(p, &end, 10);
        if (end == p)
            break;
        tmp[i++] = (uint64_t)x * scale;
        p = end;
        if (*p != ',')
            break;
        p++;
    }
    if (i != n || *p != '\0') {
        printf("    %s=%s ignored: want %zu comma-separated numbers\n", name, s, n);
        return false;
    }
    for (i = 0; i < n; i++)
        v[i] = tmp[i];
    printf("    %s=%s\n", name, s);
    return true;
}
