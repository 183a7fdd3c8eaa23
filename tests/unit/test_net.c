/* SPDX-License-Identifier: MIT */
/* Tests for the socket helpers on loopback: address parsing, UDP batching, TCP, options. */
#include "common/err.h"
#include "common/net.h"
#include "tests/test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint16_t addr_port(const struct net_addr *a)
{
    if (a->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)&a->ss)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)(const void *)&a->ss)->sin6_port);
}

static int local_addr(int fd, struct net_addr *a)
{
    a->len = sizeof(a->ss);
    return getsockname(fd, (struct sockaddr *)&a->ss, &a->len);
}

static bool wait_fd(int fd, short ev)
{
    struct pollfd p = {.fd = fd, .events = ev};
    return poll(&p, 1, 2000) == 1;
}

TEST(net_resolve_forms)
{
    struct net_addr a;
    char err[NET_ERR_LEN], s[NET_ADDR_STRLEN];
    CHECK_EQ(net_resolve("127.0.0.1:29900", false, &a, err), 0);
    CHECK_EQ(a.ss.ss_family, AF_INET);
    CHECK(strcmp(net_addr_str(&a, s, sizeof(s)), "127.0.0.1:29900") == 0);
    CHECK_EQ(net_resolve("[::1]:80", false, &a, err), 0);
    CHECK_EQ(a.ss.ss_family, AF_INET6);
    CHECK(strcmp(net_addr_str(&a, s, sizeof(s)), "[::1]:80") == 0);
    CHECK_EQ(net_resolve("localhost:7", false, &a, err), 0);
    CHECK_EQ(addr_port(&a), 7);
    CHECK_EQ(net_resolve(":12948", true, &a, err), 0);
    CHECK_EQ(addr_port(&a), 12948);
    CHECK_EQ(net_resolve(":12948", false, &a, NULL), 0);
    CHECK_EQ(net_resolve("nohostport", false, &a, err), ERR_INVAL);
    CHECK(strstr(err, "nohostport") != NULL);
    CHECK_EQ(net_resolve("::1:80", false, &a, NULL), ERR_INVAL);
    CHECK_EQ(net_resolve("1.2.3.4:", false, &a, NULL), ERR_INVAL);
    CHECK_EQ(net_resolve("1.2.3.4:port", false, &a, NULL), ERR_INVAL);
    CHECK_EQ(net_resolve("[::1:80", false, &a, NULL), ERR_INVAL);
    CHECK_EQ(net_resolve(NULL, false, &a, NULL), ERR_INVAL);
}

TEST(net_addr_equal_and_hash)
{
    struct net_addr a, b, c;
    REQUIRE(net_resolve("127.0.0.1:1000", false, &a, NULL) == 0);
    REQUIRE(net_resolve("127.0.0.1:1000", false, &b, NULL) == 0);
    REQUIRE(net_resolve("127.0.0.1:1001", false, &c, NULL) == 0);
    CHECK(net_addr_equal(&a, &b));
    CHECK_EQ(net_addr_hash(&a), net_addr_hash(&b));
    CHECK(!net_addr_equal(&a, &c));
    CHECK(net_addr_hash(&a) != net_addr_hash(&c));
}

TEST(net_udp_batch_roundtrip)
{
    static struct net_rbatch rb;
    static struct net_sbatch sb;
    struct net_addr any, ra;
    REQUIRE(net_resolve("127.0.0.1:0", true, &any, NULL) == 0);
    struct net_udp rx, tx;
    net_udp_init(&rx, net_udp_socket(AF_INET, &any, NULL), false, false);
    net_udp_init(&tx, net_udp_socket(AF_INET, NULL, NULL), false, false);
    REQUIRE(rx.fd >= 0 && tx.fd >= 0);
    REQUIRE(local_addr(rx.fd, &ra) == 0);
    CHECK_EQ(net_recv_batch(&rx, &rb), ERR_AGAIN);
    uint8_t big[NET_DGRAM_MAX + 1];
    memset(big, 0, sizeof(big));
    CHECK_EQ(net_sbatch_add(&tx, &sb, big, sizeof(big), &ra), ERR_TOOBIG);
    int total = NET_BATCH + 5; /* forces one flush inside net_sbatch_add */
    for (int i = 0; i < total; i++) {
        uint8_t d[3] = {(uint8_t)i, 0xab, 0xcd};
        CHECK_EQ(net_sbatch_add(&tx, &sb, d, (size_t)(1 + i % 3), &ra), 0);
    }
    CHECK_EQ(net_sbatch_flush(&tx, &sb), 0);
    CHECK_EQ(sb.n, 0);
    int got = 0;
    struct net_addr txa;
    REQUIRE(local_addr(tx.fd, &txa) == 0);
    while (got < total && wait_fd(rx.fd, POLLIN)) {
        int n = net_recv_batch(&rx, &rb);
        REQUIRE(n > 0);
        uint8_t *p;
        size_t len;
        const struct net_addr *from;
        while (net_rbatch_next(&rb, &p, &len, &from)) {
            CHECK_EQ(len, (size_t)(1 + got % 3));
            CHECK_EQ(p[0], (uint8_t)got);
            CHECK_EQ(addr_port(from), addr_port(&txa));
            got++;
        }
    }
    CHECK_EQ(got, total);
    net_rbatch_free(&rb);
    close(rx.fd);
    close(tx.fd);
}

TEST(net_tcp_listen_connect_accept)
{
    struct net_addr any, la, peer;
    char err[NET_ERR_LEN];
    REQUIRE(net_resolve("127.0.0.1:0", true, &any, NULL) == 0);
    int l = net_tcp_listen(&any, 16, err);
    REQUIRE(l >= 0);
    REQUIRE(local_addr(l, &la) == 0);
    CHECK_EQ(net_tcp_accept(l, &peer, err), ERR_AGAIN);
    int c = net_tcp_connect(&la, err);
    REQUIRE(c >= 0);
    REQUIRE(wait_fd(c, POLLOUT));
    CHECK_EQ(net_sock_error(c), 0);
    REQUIRE(wait_fd(l, POLLIN));
    int s = net_tcp_accept(l, &peer, err);
    REQUIRE(s >= 0);
    CHECK_EQ(write(c, "hi", 2), 2);
    char b[4];
    REQUIRE(wait_fd(s, POLLIN));
    CHECK_EQ(read(s, b, sizeof(b)), 2);
    CHECK_EQ(read(s, b, sizeof(b)), -1); /* non-blocking */
    CHECK_EQ(errno, EAGAIN);
    close(s);
    close(c);
    /* a closed port refuses: at once, or as the socket's pending error */
    close(l);
    c = net_tcp_connect(&la, err);
    if (c >= 0) {
        REQUIRE(wait_fd(c, POLLOUT));
        CHECK_EQ(net_sock_error(c), ECONNREFUSED);
        close(c);
    } else {
        CHECK(strstr(err, "connect") != NULL);
    }
}

TEST(net_socket_options)
{
    char err[NET_ERR_LEN];
    int fd = net_udp_socket(AF_INET, NULL, NULL);
    REQUIRE(fd >= 0);
    CHECK_EQ(net_set_sockbuf(fd, 1 << 20, err), 0);
    int v = 0;
    socklen_t l = sizeof(v);
    CHECK_EQ(getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, &l), 0);
    CHECK(v >= 4096);
    CHECK_EQ(net_set_dscp(fd, AF_INET, 46, err), 0);
    l = sizeof(v);
    CHECK_EQ(getsockopt(fd, IPPROTO_IP, IP_TOS, &v, &l), 0);
    CHECK_EQ(v, 46 << 2);
    CHECK_EQ(net_set_dscp(fd, AF_INET, 64, err), ERR_INVAL);
    close(fd);
    fd = net_udp_socket(AF_INET6, NULL, NULL);
    if (fd >= 0) {
        CHECK_EQ(net_set_dscp(fd, AF_INET6, 10, err), 0);
        l = sizeof(v);
        CHECK_EQ(getsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &v, &l), 0);
        CHECK_EQ(v, 10);
        close(fd);
    }
}
