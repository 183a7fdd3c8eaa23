/* SPDX-License-Identifier: MIT */
/* shadowsocks-android's socket protection (net_set_protect): a small protect_path server that
 * records the descriptors it receives stands in for the app. */
#include "common/err.h"
#include "common/config.h"
#include "common/net.h"
#include "tests/test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define PROTECT_MAX 8

/* The app's side: accepts |want| connections, reads the byte and its descriptor, records
 * the descriptor's inode and answers |reply|. */
struct protector {
    int lfd;
    int want;
    uint8_t reply;
    int got;                     /* descriptors received */
    ino_t ino[PROTECT_MAX];      /* their inodes (a socket's identity) */
    int bytes_without_fd;        /* requests that came without a descriptor */
};

static void *protector_run(void *arg)
{
    struct protector *p = arg;
    for (int i = 0; i < p->want; i++) {
        int c = accept(p->lfd, NULL, NULL);
        if (c < 0)
            break;
        uint8_t b;
        union {
            struct cmsghdr h;
            uint8_t buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct iovec iov = {.iov_base = &b, .iov_len = 1};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                           .msg_controllen = sizeof(ctl.buf)};
        if (recvmsg(c, &m, 0) == 1) {
            struct cmsghdr *h = CMSG_FIRSTHDR(&m);
            if (h && h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS &&
                p->got < PROTECT_MAX) {
                int fd;
                memcpy(&fd, CMSG_DATA(h), sizeof(fd));
                struct stat st;
                if (fstat(fd, &st) == 0)
                    p->ino[p->got++] = st.st_ino;
                close(fd);
            } else {
                p->bytes_without_fd++;
            }
            if (write(c, &p->reply, 1) != 1)
                p->bytes_without_fd += 100;
        }
        close(c);
    }
    return NULL;
}

static int protector_listen(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 8) != 0)
        return -1;
    return fd;
}

static ino_t ino_of(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

TEST(protect_hands_every_client_udp_socket_to_the_app)
{
    char dir[] = "/tmp/ktun-protect-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[96];
    snprintf(path, sizeof(path), "%s/protect_path", dir);
    struct protector p = {.want = 3, .reply = 0};
    p.lfd = protector_listen(path);
    REQUIRE(p.lfd >= 0);
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, protector_run, &p) == 0);

    char err[NET_ERR_LEN] = "";
    net_set_protect(path);
    int a = net_udp_socket(AF_INET, NULL, err);
    int b = net_udp_socket(AF_INET6, NULL, err); /* a new path's socket: protected too */
    struct net_addr any;
    REQUIRE(net_resolve("127.0.0.1:0", true, &any, err) == 0);
    int bound = net_udp_socket(AF_INET, &any, err); /* a listener's: not the app's business */
    /* the app refuses: the socket is not made, and the reason is named */
    p.reply = 1;
    int c = net_udp_socket(AF_INET, NULL, err);
    CHECK(c < 0);
    CHECK(strstr(err, "did not protect") != NULL);
    pthread_join(th, NULL);
    CHECK(a >= 0 && b >= 0 && bound >= 0);
    CHECK_EQ(p.got, 3);
    CHECK_EQ(p.bytes_without_fd, 0);
    CHECK(p.got >= 2 && p.ino[0] == ino_of(a) && p.ino[1] == ino_of(b));
    /* no app listening: the socket is not made either */
    close(p.lfd);
    unlink(path);
    err[0] = '\0';
    int d = net_udp_socket(AF_INET, NULL, err);
    CHECK(d < 0);
    CHECK(strstr(err, "connect") != NULL);
    net_set_protect(NULL);
    int e = net_udp_socket(AF_INET, NULL, err);
    CHECK(e >= 0);
    close(a);
    close(b);
    close(bound);
    close(e);
    rmdir(dir);
}

TEST(protect_dash_v_is_the_clients_android_vpn_flag)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    char a0[] = "ktun-client", a1[] = "-V";
    char *argv[] = {a0, a1, NULL};
    config_defaults(&cfg, CONFIG_CLIENT);
    CHECK_EQ(config_parse_args(&cfg, 2, argv, err, sizeof(err)), CONFIG_OK);
    CHECK(cfg.android_vpn);
    CHECK_EQ(config_validate(&cfg, err, sizeof(err)), 0);
    char b0[] = "ktun-server", b1[] = "-V";
    char *bargv[] = {b0, b1, NULL};
    config_defaults(&cfg, CONFIG_SERVER);
    CHECK_EQ(config_parse_args(&cfg, 2, bargv, err, sizeof(err)), ERR_INVAL);
}
