/* SPDX-License-Identifier: MIT */
/* The UDP flow table (common/udpflow.h): limits, idle expiry, ids never reopened. */
#include "common/err.h"
#include "common/udpflow.h"
#include "tests/test.h"

#include <string.h>

static int idle_calls;
static uint32_t idle_last;

static void on_idle(void *cb_user, uint32_t id, void *flow_user)
{
    (void)cb_user;
    (void)flow_user;
    idle_calls++;
    idle_last = id;
}

TEST(udpflow_limits_per_session_and_in_all)
{
    struct udpflow_limits lim = {.idle_ms = 1000, .per_sess = 3, .total = 4};
    struct udpflow_table a, b;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    int err;
    for (uint32_t id = 1; id <= 3; id++)
        CHECK(udpflow_open(&a, &lim, id, NULL, 0, &err) != NULL);
    CHECK(udpflow_open(&a, &lim, 4, NULL, 0, &err) == NULL);
    CHECK_EQ(err, ERR_LIMIT);
    CHECK(udpflow_open(&b, &lim, 1, NULL, 0, &err) != NULL); /* ids are per table */
    CHECK(udpflow_open(&b, &lim, 2, NULL, 0, &err) == NULL);
    CHECK_EQ(err, ERR_LIMIT); /* 4 in all */
    CHECK(udpflow_open(&b, &lim, 1, NULL, 0, &err) == NULL);
    CHECK_EQ(err, ERR_INVAL);
    udpflow_close(&a, &lim, udpflow_find(&a, 2), 10);
    CHECK_EQ(lim.open_total, 3);
    CHECK(udpflow_open(&b, &lim, 2, NULL, 10, &err) != NULL);
    /* a closed id never opens again */
    CHECK(udpflow_open(&a, &lim, 2, NULL, 20, &err) == NULL);
    CHECK_EQ(err, ERR_CLOSED);
    CHECK(udpflow_find(&a, 2) && !udpflow_find(&a, 2)->open);
    udpflow_table_free(&a, &lim, NULL, NULL);
    udpflow_table_free(&b, &lim, NULL, NULL);
    CHECK_EQ(lim.open_total, 0);
}

TEST(udpflow_idle_expiry_and_tombstones)
{
    struct udpflow_limits lim = {.idle_ms = 1000, .per_sess = 100, .total = 100};
    struct udpflow_table t;
    memset(&t, 0, sizeof(t));
    int err;
    CHECK(udpflow_open(&t, &lim, 5, NULL, 0, &err) != NULL);
    CHECK(udpflow_open(&t, &lim, 9, NULL, 0, &err) != NULL);
    CHECK(udpflow_open(&t, &lim, 7, NULL, 0, &err) != NULL); /* out of order: kept sorted */
    CHECK_EQ(t.v[1].id, 7);
    udpflow_find(&t, 9)->last_ms = 800; /* touched */
    idle_calls = 0;
    CHECK_EQ(udpflow_expire(&t, &lim, 999, on_idle, NULL), 1000);
    CHECK_EQ(idle_calls, 0);
    CHECK_EQ(udpflow_expire(&t, &lim, 1000, on_idle, NULL), 1800);
    CHECK_EQ(idle_calls, 2);
    CHECK_EQ(t.nopen, 1);
    CHECK_EQ(t.ntomb, 2);
    CHECK(udpflow_open(&t, &lim, 5, NULL, 1100, &err) == NULL);
    CHECK_EQ(err, ERR_CLOSED);
    /* tombstones are forgotten after UDPFLOW_TOMB_MS */
    udpflow_expire(&t, &lim, 1000 + UDPFLOW_TOMB_MS, on_idle, NULL);
    CHECK_EQ(idle_calls, 3);
    CHECK_EQ(idle_last, 9);
    CHECK_EQ(t.ntomb, 1); /* 9's, closed just now */
    CHECK(udpflow_find(&t, 5) == NULL);
    CHECK_EQ(lim.open_total, 0);
    udpflow_table_free(&t, &lim, NULL, NULL);
}

TEST(udpflow_tombstones_are_bounded)
{
    struct udpflow_limits lim = {.idle_ms = 1000, .per_sess = 10, .total = 10};
    struct udpflow_table t;
    memset(&t, 0, sizeof(t));
    int err;
    for (uint32_t id = 1; id <= UDPFLOW_TOMB_MAX + 10; id++) {
        struct udpflow *f = udpflow_open(&t, &lim, id, NULL, id, &err);
        REQUIRE(f);
        udpflow_close(&t, &lim, f, id);
    }
    CHECK_EQ(t.ntomb, UDPFLOW_TOMB_MAX);
    CHECK_EQ(t.n, UDPFLOW_TOMB_MAX);
    CHECK(udpflow_find(&t, 10) == NULL);  /* the oldest went */
    CHECK(udpflow_find(&t, 11) != NULL);
    udpflow_table_free(&t, &lim, NULL, NULL);
}

TEST(udpflow_spec_parse)
{
    struct udpflow_spec sp;
    char err[128];
    CHECK_EQ(udpflow_parse_spec("5353:127.0.0.1:53", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, "127.0.0.1:5353") == 0);
    CHECK(strcmp(sp.target, "127.0.0.1:53") == 0);
    CHECK_EQ(udpflow_parse_spec("0.0.0.0:5353:dns.example:53", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, "0.0.0.0:5353") == 0);
    CHECK(strcmp(sp.target, "dns.example:53") == 0);
    CHECK_EQ(udpflow_parse_spec("[::1]:5353:[2001:db8::1]:53", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, "[::1]:5353") == 0);
    CHECK(strcmp(sp.target, "[2001:db8::1]:53") == 0);
    CHECK_EQ(udpflow_parse_spec("*:7000:10.0.0.1:7000", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, ":7000") == 0);
    CHECK_EQ(udpflow_parse_spec(":7000:10.0.0.1:7000", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, ":7000") == 0);
    CHECK_EQ(udpflow_parse_spec("5353", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, "127.0.0.1:5353") == 0);
    CHECK(strcmp(sp.target, "") == 0);
    CHECK_EQ(udpflow_parse_spec("[::1]:5353", &sp, err, sizeof(err)), 0);
    CHECK(strcmp(sp.listen, "[::1]:5353") == 0);
    CHECK(strcmp(sp.target, "") == 0);
    const char *bad[] = {"", "x", "5353:53:", "x:127.0.0.1:53", "5353:127.0.0.1:0",
                         "5353:127.0.0.1:65536", "5353::53", "a:b:5353:h:53", "70000:h:53",
                         "5353:[::1:53", "1:2:3:4:5", "[]:5:h:53", "5:[]:53"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK_EQ(udpflow_parse_spec(bad[i], &sp, err, sizeof(err)), ERR_INVAL);
}
