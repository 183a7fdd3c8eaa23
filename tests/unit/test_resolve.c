/* SPDX-License-Identifier: MIT */
/* Lookups off the event loop (common/resolve.c): results arrive on the loop's thread. */
#include "common/err.h"
#include "common/resolve.h"
#include "tests/test.h"

#include <ev.h>
#include <stdio.h>
#include <string.h>

struct rstate {
    struct ev_loop *loop;
    int calls, rc;
    struct net_addr addr;
    char err[NET_ERR_LEN];
};

static void done_cb(void *user, int rc, const struct net_addr *a, const char *err)
{
    struct rstate *st = user;
    st->calls++;
    st->rc = rc;
    if (a)
        st->addr = *a;
    snprintf(st->err, sizeof(st->err), "%s", err ? err : "");
    ev_break(st->loop, EVBREAK_ONE);
}

static void timeout_cb(EV_P_ ev_timer *w, int revents)
{
    (void)w, (void)revents;
    ev_break(EV_A_ EVBREAK_ONE);
}

/* Runs |loop| until the callback ran or 5 s passed. */
static void run_until_done(struct rstate *st)
{
    ev_timer t;
    ev_timer_init(&t, timeout_cb, 5.0, 0.0);
    ev_timer_start(st->loop, &t);
    ev_run(st->loop, 0);
    ev_timer_stop(st->loop, &t);
}

TEST(resolve_numeric_and_busy)
{
    struct rstate st = {.loop = ev_loop_new(EVFLAG_AUTO)};
    REQUIRE(st.loop);
    struct resolver *r = resolver_new(st.loop, done_cb, &st);
    REQUIRE(r);
    CHECK(!resolver_busy(r));
    CHECK_EQ(resolver_start(r, "127.0.0.1:4321", false), 0);
    CHECK(resolver_busy(r));
    CHECK_EQ(resolver_start(r, "127.0.0.2:1", false), ERR_AGAIN); /* one at a time */
    run_until_done(&st);
    CHECK_EQ(st.calls, 1);
    CHECK_EQ(st.rc, 0);
    CHECK_EQ(st.addr.ss.ss_family, AF_INET);
    CHECK_EQ(net_addr_port(&st.addr), 4321);
    CHECK(!resolver_busy(r));
    /* a failure reports why */
    CHECK_EQ(resolver_start(r, "no-port-here", false), 0);
    run_until_done(&st);
    CHECK_EQ(st.calls, 2);
    CHECK(st.rc < 0);
    CHECK(strstr(st.err, "no-port-here") != NULL);
    CHECK_EQ(resolver_started(r), 2);
    resolver_free(r);
    ev_loop_destroy(st.loop);
}

TEST(resolve_abandoned_lookup_never_calls_back)
{
    struct rstate st = {.loop = ev_loop_new(EVFLAG_AUTO)};
    REQUIRE(st.loop);
    struct resolver *r = resolver_new(st.loop, done_cb, &st);
    REQUIRE(r);
    CHECK_EQ(resolver_start(r, "127.0.0.1:80", false), 0);
    resolver_free(r); /* the thread finishes on its own and frees the job */
    ev_timer t;
    ev_timer_init(&t, timeout_cb, 0.2, 0.0);
    ev_timer_start(st.loop, &t);
    ev_run(st.loop, 0);
    CHECK_EQ(st.calls, 0);
    ev_loop_destroy(st.loop);
}
