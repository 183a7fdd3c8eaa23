/* SPDX-License-Identifier: MIT */
/* Tests for UDP GSO sends and GRO reads on loopback: datagrams arrive exactly as queued. */
#include "common/err.h"
#include "common/net.h"
#include "tests/test.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int local_addr(int fd, struct net_addr *a)
{
    a->len = sizeof(a->ss);
    return getsockname(fd, (struct sockaddr *)&a->ss, &a->len);
}

static bool wait_fd(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 2000) == 1;
}

/* A UDP socket on 127.0.0.1 with the offloads asked for; its address in |a|. */
static int open_udp(struct net_udp *u, bool gso, bool gro, struct net_addr *a)
{
    struct net_addr any;
    if (net_resolve("127.0.0.1:0", true, &any, NULL) != 0)
        return -1;
    int fd = net_udp_socket(AF_INET, &any, NULL);
    if (fd < 0)
        return -1;
    net_udp_init(u, fd, gso, gro);
    return local_addr(fd, a);
}

/* Datagram |i| of a test sequence: |len| bytes that name their index and position. */
static void fill(uint8_t *p, size_t len, int i)
{
    for (size_t k = 0; k < len; k++)
        p[k] = (uint8_t)(i * 31 + (int)k);
}

/* Reads from |u| until |n| datagrams arrived (or 2 s pass); checks each against |lens| and
 * fill(). Returns the datagrams seen, and the messages they came in through |*msgs|. */
static int expect(struct net_udp *u, struct net_rbatch *rb, const size_t *lens, int n,
                  const struct net_addr *src, int *msgs)
{
    int got = 0;
    *msgs = 0;
    while (got < n && wait_fd(u->fd)) {
        int m = net_recv_batch(u, rb);
        if (m <= 0)
            break;
        *msgs += m;
        uint8_t *p;
        size_t len;
        const struct net_addr *from;
        while (net_rbatch_next(rb, &p, &len, &from)) {
            if (got >= n) {
                got++;
                continue;
            }
            uint8_t want[NET_DGRAM_MAX];
            fill(want, lens[got], got);
            CHECK_EQ(len, lens[got]);
            if (len == lens[got])
                CHECK_MEM(p, want, len);
            CHECK(net_addr_equal(from, src));
            got++;
        }
    }
    return got;
}

/* Queues datagrams of sizes |lens| to |to| on |tx| and flushes them. */
static int send_all(struct net_udp *tx, struct net_sbatch *sb, const size_t *lens, int n,
                    const struct net_addr *to)
{
    for (int i = 0; i < n; i++) {
        uint8_t d[NET_DGRAM_MAX];
        fill(d, lens[i], i);
        if (net_sbatch_add(tx, sb, d, lens[i], to) != 0)
            return -1;
    }
    return net_sbatch_flush(tx, sb);
}

/* Runs of equal sizes, each ended by a shorter one, then single odd sizes. */
static const size_t k_lens[] = {1200, 1200, 1200, 1200, 1200, 700, 1400, 1400, 1400, 1400,
                                1400, 1400, 1400, 1400, 1400, 1400, 9,   500,  501,  1,
                                1350, 1350, 1350, 1350, 1350, 1350, 1350};
#define K_N ((int)(sizeof(k_lens) / sizeof(k_lens[0])))

TEST(net_gso_send_arrives_as_separate_datagrams)
{
    static struct net_sbatch sb;
    static struct net_rbatch rb;
    struct net_udp tx, rx;
    struct net_addr ta, ra;
    REQUIRE(open_udp(&tx, true, false, &ta) == 0);
    REQUIRE(open_udp(&rx, false, false, &ra) == 0);
    CHECK_EQ(send_all(&tx, &sb, k_lens, K_N, &ra), 0);
    int msgs = 0;
    CHECK_EQ(expect(&rx, &rb, k_lens, K_N, &ta, &msgs), K_N);
    CHECK_EQ(msgs, K_N); /* without GRO each datagram is its own message */
    net_rbatch_free(&rb);
    close(tx.fd);
    close(rx.fd);
}

TEST(net_gro_read_is_split_into_the_datagrams_sent)
{
    static struct net_sbatch sb;
    static struct net_rbatch rb;
    struct net_udp tx, rx;
    struct net_addr ta, ra;
    REQUIRE(open_udp(&tx, true, false, &ta) == 0);
    REQUIRE(open_udp(&rx, false, true, &ra) == 0);
    bool offload = tx.gso && rx.gro, gso0 = tx.gso;
    CHECK_EQ(send_all(&tx, &sb, k_lens, K_N, &ra), 0);
    CHECK_EQ(tx.gso, gso0); /* still on: the kernel took it */
    int msgs = 0;
    CHECK_EQ(expect(&rx, &rb, k_lens, K_N, &ta, &msgs), K_N);
    /* on loopback a GSO send reaches a GRO socket whole: runs 5+1, 10+1, 1, 1+1, 7 */
    if (offload)
        CHECK_EQ(msgs, 5);
    net_rbatch_free(&rb);
    close(tx.fd);
    close(rx.fd);
}

TEST(net_gso_runs_split_by_destination)
{
    static struct net_sbatch sb;
    static struct net_rbatch rb;
    struct net_udp tx, a, b;
    struct net_addr ta, aa, ba;
    REQUIRE(open_udp(&tx, true, false, &ta) == 0);
    REQUIRE(open_udp(&a, false, true, &aa) == 0);
    REQUIRE(open_udp(&b, false, true, &ba) == 0);
    /* a a b b a a a: the runs to |a| must not swallow the datagrams for |b| */
    const struct net_addr *to[] = {&aa, &aa, &ba, &ba, &aa, &aa, &aa};
    const size_t alens[] = {1000, 1000, 1000, 1000, 1000};
    const size_t blens[] = {1000, 1000};
    int ai = 0, bi = 0;
    for (int i = 0; i < 7; i++) {
        uint8_t d[1000];
        fill(d, sizeof(d), to[i] == &aa ? ai++ : bi++);
        CHECK_EQ(net_sbatch_add(&tx, &sb, d, sizeof(d), to[i]), 0);
    }
    CHECK_EQ(net_sbatch_flush(&tx, &sb), 0);
    int msgs = 0;
    CHECK_EQ(expect(&a, &rb, alens, 5, &ta, &msgs), 5);
    CHECK_EQ(expect(&b, &rb, blens, 2, &ta, &msgs), 2);
    net_rbatch_free(&rb);
    close(tx.fd);
    close(a.fd);
    close(b.fd);
}

TEST(net_gso_refused_falls_back_for_good)
{
    static struct net_sbatch sb;
    static struct net_rbatch rb;
    struct net_udp tx, rx;
    struct net_addr ta, ra;
    REQUIRE(open_udp(&tx, true, false, &ta) == 0);
    REQUIRE(open_udp(&rx, false, false, &ra) == 0);
    if (!tx.gso) {
        close(tx.fd);
        close(rx.fd);
        return; /* this kernel has no UDP GSO: nothing to refuse */
    }
    /* the kernel refuses GSO (EINVAL) on a socket that sends without UDP checksums */
    int on = 1;
    REQUIRE(setsockopt(tx.fd, SOL_SOCKET, SO_NO_CHECK, &on, sizeof(on)) == 0);
    const size_t lens[] = {800, 800, 800, 800, 300};
    CHECK_EQ(send_all(&tx, &sb, lens, 5, &ra), 0);
    CHECK(!tx.gso);
    int msgs = 0;
    CHECK_EQ(expect(&rx, &rb, lens, 5, &ta, &msgs), 5);
    CHECK_EQ(send_all(&tx, &sb, lens, 5, &ra), 0);
    CHECK_EQ(expect(&rx, &rb, lens, 5, &ta, &msgs), 5);
    net_rbatch_free(&rb);
    close(tx.fd);
    close(rx.fd);
}

TEST(net_gso_run_limits)
{
    static struct net_sbatch sb;
    static struct net_rbatch rb;
    struct net_udp tx, rx;
    struct net_addr ta, ra;
    REQUIRE(open_udp(&tx, true, false, &ta) == 0);
    REQUIRE(open_udp(&rx, false, true, &ra) == 0);
    /* a full batch of the largest datagrams: NET_BATCH x 1500 stays under NET_GSO_BYTES */
    size_t lens[NET_BATCH + 3];
    for (int i = 0; i < NET_BATCH + 3; i++)
        lens[i] = i == NET_BATCH + 2 ? 0 : NET_DGRAM_MAX;
    CHECK_EQ(send_all(&tx, &sb, lens, NET_BATCH + 3, &ra), 0);
    int msgs = 0;
    CHECK_EQ(expect(&rx, &rb, lens, NET_BATCH + 3, &ta, &msgs), NET_BATCH + 3);
    if (tx.gso && rx.gro)
        CHECK_EQ(msgs, 3); /* NET_BATCH in one, then 2, then the empty one alone */
    CHECK_EQ(NET_BATCH * NET_DGRAM_MAX <= NET_GSO_BYTES, 1);
    net_rbatch_free(&rb);
    close(tx.fd);
    close(rx.fd);
}
