/* SPDX-License-Identifier: MIT */
/* Forward specs (-L, -D), the stream target header, the refusal logbook, SOCKS5 messages. */
#include "tests/test.h"

#include "common/err.h"
#include "common/fwd.h"
#include "common/socks5.h"

#include <string.h>

static int spec(char kind, const char *s, struct fwd_spec *out)
{
    char err[256] = "";
    int rc = fwd_parse_spec(kind, s, out, err, sizeof(err));
    if (rc != 0 && (!err[0] || strchr(err, '\n')))
        test_fail(__FILE__, __LINE__, "'%s': no one-line reason", s);
    return rc;
}

TEST(fwd_spec_tcp)
{
    struct fwd_spec f;
    CHECK_EQ(spec('L', "8080:example.com:80", &f), 0);
    CHECK(strcmp(f.bind, "127.0.0.1") == 0 && f.bind_port == 8080);
    CHECK(strcmp(f.host, "example.com") == 0 && f.port == 80);
    CHECK_EQ(spec('L', "0.0.0.0:8080:10.0.0.1:22", &f), 0);
    CHECK(strcmp(f.bind, "0.0.0.0") == 0 && strcmp(f.host, "10.0.0.1") == 0 && f.port == 22);
    CHECK_EQ(spec('L', "*:1:h:2", &f), 0);
    CHECK(f.bind[0] == '\0');
    CHECK_EQ(spec('L', ":1:h:2", &f), 0);
    CHECK(f.bind[0] == '\0');
    CHECK_EQ(spec('L', "[::1]:8080:[2001:db8::1]:443", &f), 0);
    CHECK(strcmp(f.bind, "::1") == 0 && strcmp(f.host, "2001:db8::1") == 0 && f.port == 443);
    CHECK_EQ(spec('L', "65535:h:65535", &f), 0);
    const char *bad[] = {"", "8080", "8080:h", "8080:h:0", "0:h:80", "65536:h:1", "x:h:1",
                         "1:h:x", "1::2", "a:b:c:d:e", "1:2001:db8::1:2", "[::1]:1:h",
                         "1:[h]:2", "1:[::1:2", "b:1:h:2:3", "1:h h:2", "1:[::1]x:2",
                         "[1.2.3.4]:1:h:2", "1:h:-2", "1:h:+2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (spec('L', bad[i], &f) != ERR_INVAL)
            test_fail(__FILE__, __LINE__, "-L '%s' accepted", bad[i]);
}

TEST(fwd_spec_socks)
{
    struct fwd_spec f;
    CHECK_EQ(spec('D', "1080", &f), 0);
    CHECK(strcmp(f.bind, "127.0.0.1") == 0 && f.bind_port == 1080);
    CHECK_EQ(spec('D', "*:1080", &f), 0);
    CHECK(f.bind[0] == '\0');
    CHECK_EQ(spec('D', "[::]:1080", &f), 0);
    CHECK(strcmp(f.bind, "::") == 0);
    CHECK_EQ(spec('D', "1080:h:80", &f), ERR_INVAL);
    CHECK_EQ(spec('D', "", &f), ERR_INVAL);
    CHECK_EQ(spec('D', "a:b:1", &f), ERR_INVAL);
    CHECK_EQ(spec('X', "1", &f), ERR_INVAL);
}

/* Encodes |t|, checks the decoder gives it back at every split, and returns the length. */
static int round_trip(const struct fwd_target *t)
{
    uint8_t b[FWD_REQ_MAX + 8];
    int n = fwd_request_encode(t, b, sizeof(b));
    if (n <= 0)
        return n;
    for (int k = 0; k < n; k++) {
        struct fwd_target d;
        if (fwd_request_decode(b, (size_t)k, &d) != ERR_AGAIN)
            test_fail(__FILE__, __LINE__, "a %d-byte prefix of %d is not ERR_AGAIN", k, n);
    }
    struct fwd_target d;
    b[n] = 0x77; /* stream data follows the header */
    int m = fwd_request_decode(b, (size_t)n + 1, &d);
    CHECK_EQ(m, n);
    CHECK_EQ(d.atyp, t->atyp);
    CHECK_EQ(d.port, t->port);
    CHECK(memcmp(d.addr, t->addr, 16) == 0 && strcmp(d.name, t->name) == 0);
    return n;
}

TEST(fwd_header_round_trip)
{
    struct fwd_target t;
    uint8_t b[FWD_REQ_MAX];
    memset(&t, 0, sizeof(t));
    t.atyp = FWD_ATYP_DEFAULT;
    CHECK_EQ(round_trip(&t), 3);
    CHECK_EQ(fwd_request_encode(&t, b, sizeof(b)), 3);
    CHECK(b[0] == 'K' && b[1] == 1 && b[2] == 0);
    REQUIRE(fwd_target_set(&t, "10.1.2.3", 22) == 0);
    CHECK_EQ(t.atyp, FWD_ATYP_IPV4);
    CHECK_EQ(round_trip(&t), 3 + 4 + 2);
    CHECK_EQ(fwd_request_encode(&t, b, sizeof(b)), 9);
    const uint8_t want4[] = {'K', 1, 1, 10, 1, 2, 3, 0, 22};
    CHECK_MEM(b, want4, sizeof(want4));
    REQUIRE(fwd_target_set(&t, "2001:db8::1", 443) == 0);
    CHECK_EQ(t.atyp, FWD_ATYP_IPV6);
    CHECK_EQ(round_trip(&t), 3 + 16 + 2);
    REQUIRE(fwd_target_set(&t, "example.com", 8080) == 0);
    CHECK_EQ(round_trip(&t), 3 + 1 + 11 + 2);
    CHECK_EQ(fwd_request_encode(&t, b, sizeof(b)), 17);
    CHECK(b[3] == 11 && memcmp(b + 4, "example.com", 11) == 0 && b[15] == 0x1f && b[16] == 0x90);
    char longname[256];
    memset(longname, 'a', 255);
    longname[255] = '\0';
    REQUIRE(fwd_target_set(&t, longname, 1) == 0);
    CHECK_EQ(round_trip(&t), FWD_REQ_MAX);
    CHECK_EQ(fwd_request_encode(&t, b, FWD_REQ_MAX - 1), ERR_INVAL);
    /* what fwd_target_set refuses */
    CHECK_EQ(fwd_target_set(&t, "", 1), ERR_INVAL);
    CHECK_EQ(fwd_target_set(&t, "a b", 1), ERR_INVAL);
    CHECK_EQ(fwd_target_set(&t, "a", 0), ERR_INVAL);
    char toolong[300];
    memset(toolong, 'a', 256);
    toolong[256] = '\0';
    CHECK_EQ(fwd_target_set(&t, toolong, 1), ERR_INVAL);
}

TEST(fwd_header_refuses_garbage)
{
    struct fwd_target t;
    const uint8_t magic[] = {'X'};
    CHECK_EQ(fwd_request_decode(magic, 1, &t), ERR_PROTO);
    const uint8_t ver[] = {'K', 2};
    CHECK_EQ(fwd_request_decode(ver, 2, &t), ERR_PROTO);
    const uint8_t atyp[] = {'K', 1, 2};
    CHECK_EQ(fwd_request_decode(atyp, 3, &t), ERR_PROTO);
    const uint8_t empty[] = {'K', 1, 3, 0, 0, 80};
    CHECK_EQ(fwd_request_decode(empty, sizeof(empty), &t), ERR_PROTO);
    const uint8_t badname[] = {'K', 1, 3, 3, 'a', '/'};
    CHECK_EQ(fwd_request_decode(badname, sizeof(badname), &t), ERR_PROTO); /* before the end */
    const uint8_t port0[] = {'K', 1, 1, 1, 2, 3, 4, 0, 0};
    CHECK_EQ(fwd_request_decode(port0, sizeof(port0), &t), ERR_PROTO);
    CHECK_EQ(fwd_request_decode(NULL, 0, &t), ERR_AGAIN);
}

TEST(fwd_reply)
{
    uint8_t r[FWD_REPLY_LEN];
    fwd_reply_encode(FWD_NOT_ALLOWED, r);
    CHECK(r[0] == 'K' && r[1] == 1 && r[2] == 2);
    CHECK_EQ(fwd_reply_decode(r, 3), FWD_NOT_ALLOWED);
    CHECK_EQ(fwd_reply_decode(r, 2), ERR_AGAIN);
    CHECK_EQ(fwd_reply_decode(r, 0), ERR_AGAIN);
    r[0] = 'H'; /* "HTTP/1.1 ...": a server that is not ktun */
    CHECK_EQ(fwd_reply_decode(r, 1), ERR_PROTO);
    CHECK(strstr(fwd_status_str(FWD_NOT_ALLOWED), "--allow") != NULL);
}

TEST(fwd_target_str_forms)
{
    struct fwd_target t;
    char buf[300];
    REQUIRE(fwd_target_set(&t, "2001:db8::1", 443) == 0);
    CHECK(strcmp(fwd_target_str(&t, buf, sizeof(buf)), "[2001:db8:0:0:0:0:0:1]:443") == 0);
    REQUIRE(fwd_target_set(&t, "10.0.0.1", 22) == 0);
    CHECK(strcmp(fwd_target_str(&t, buf, sizeof(buf)), "10.0.0.1:22") == 0);
    REQUIRE(fwd_target_set(&t, "db", 5) == 0);
    CHECK(strcmp(fwd_target_str(&t, buf, sizeof(buf)), "db:5") == 0);
    REQUIRE(fwd_target_set(&t, "2001:db8::1", 443) == 0);
    fwd_target_str(&t, buf, 5); /* cut, terminated */
    CHECK(strlen(buf) < 5);
}

TEST(fwd_logbook_once_per_key_and_period)
{
    struct fwd_logbook b;
    memset(&b, 0, sizeof(b));
    CHECK(fwd_logbook_pass(&b, 1, 1000, 60000));
    CHECK(!fwd_logbook_pass(&b, 1, 1001, 60000));
    CHECK(!fwd_logbook_pass(&b, 1, 60999, 60000));
    CHECK(fwd_logbook_pass(&b, 2, 2000, 60000));
    CHECK(fwd_logbook_pass(&b, 1, 61000, 60000)); /* a period later */
    CHECK(!fwd_logbook_pass(&b, 1, 61001, 60000));
    CHECK_EQ(b.suppressed, 3);
    /* at time 0 too */
    memset(&b, 0, sizeof(b));
    CHECK(fwd_logbook_pass(&b, 0, 0, 60000));
    CHECK(!fwd_logbook_pass(&b, 0, 5, 60000));
    /* more keys than slots: the oldest is forgotten, never a new key silenced */
    memset(&b, 0, sizeof(b));
    for (uint64_t k = 1; k <= FWD_LOGBOOK_SLOTS + 10; k++)
        CHECK(fwd_logbook_pass(&b, k, 100 + k, 60000));
    CHECK(!fwd_logbook_pass(&b, FWD_LOGBOOK_SLOTS + 10, 200, 60000));
    CHECK(fwd_logbook_pass(&b, 1, 300, 60000)); /* forgotten early: logs again */
    CHECK(fwd_hash(FWD_HASH_INIT, "a", 1) != fwd_hash(FWD_HASH_INIT, "b", 1));
}

TEST(socks5_greeting)
{
    bool no_auth;
    const uint8_t g[] = {5, 2, 2, 0};
    for (size_t k = 0; k < sizeof(g); k++)
        CHECK_EQ(socks5_greeting_parse(g, k, &no_auth), ERR_AGAIN);
    CHECK_EQ(socks5_greeting_parse(g, sizeof(g), &no_auth), 4);
    CHECK(no_auth);
    const uint8_t userpass[] = {5, 1, 2};
    CHECK_EQ(socks5_greeting_parse(userpass, 3, &no_auth), 3);
    CHECK(!no_auth);
    const uint8_t v4[] = {4, 1, 0};
    CHECK_EQ(socks5_greeting_parse(v4, 3, &no_auth), ERR_PROTO);
    const uint8_t none[] = {5, 0};
    CHECK_EQ(socks5_greeting_parse(none, 2, &no_auth), ERR_PROTO);
    uint8_t r[2];
    socks5_method_reply(true, r);
    CHECK(r[0] == 5 && r[1] == 0);
    socks5_method_reply(false, r);
    CHECK(r[1] == 0xff);
}

TEST(socks5_requests)
{
    struct socks5_request q;
    const uint8_t c4[] = {5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90, 'G'};
    for (size_t k = 0; k < 10; k++)
        CHECK_EQ(socks5_request_parse(c4, k, &q), ERR_AGAIN);
    CHECK_EQ(socks5_request_parse(c4, sizeof(c4), &q), 10);
    CHECK(q.cmd == SOCKS5_CMD_CONNECT && q.rep == 0 && q.target.atyp == FWD_ATYP_IPV4 &&
          q.target.port == 8080 && q.target.addr[0] == 127);
    const uint8_t cn[] = {5, 1, 0, 3, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't', 0, 80};
    CHECK_EQ(socks5_request_parse(cn, sizeof(cn), &q), (int)sizeof(cn));
    CHECK(q.rep == 0 && q.target.atyp == FWD_ATYP_NAME && strcmp(q.target.name, "localhost") == 0 &&
          q.target.port == 80);
    /* a name that is an address literal travels as the address */
    const uint8_t cl[] = {5, 1, 0, 3, 7, '1', '.', '2', '.', '3', '.', '4', 0, 80};
    CHECK_EQ(socks5_request_parse(cl, sizeof(cl), &q), (int)sizeof(cl));
    CHECK(q.rep == 0 && q.target.atyp == FWD_ATYP_IPV4 && q.target.addr[3] == 4);
    uint8_t c6[22] = {5, 1, 0, 4};
    c6[19] = 1;
    c6[21] = 22;
    CHECK_EQ(socks5_request_parse(c6, sizeof(c6), &q), 22);
    CHECK(q.rep == 0 && q.target.atyp == FWD_ATYP_IPV6 && q.target.addr[15] == 1 &&
          q.target.port == 22);
    const uint8_t udp[] = {5, 3, 0, 1, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(socks5_request_parse(udp, sizeof(udp), &q), 10);
    CHECK(q.cmd == SOCKS5_CMD_UDP && q.rep == 0 && q.target.port == 0);
    const uint8_t bind[] = {5, 2, 0, 1, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(socks5_request_parse(bind, sizeof(bind), &q), 10);
    CHECK_EQ(q.rep, SOCKS5_REP_CMD_UNSUPPORTED);
    const uint8_t atyp[] = {5, 1, 0, 9, 1, 2};
    CHECK_EQ(socks5_request_parse(atyp, sizeof(atyp), &q), (int)sizeof(atyp));
    CHECK_EQ(q.rep, FWD_BAD_ATYP);
    const uint8_t badname[] = {5, 1, 0, 3, 3, 'a', '\n', 'b', 0, 80};
    CHECK_EQ(socks5_request_parse(badname, sizeof(badname), &q), (int)sizeof(badname));
    CHECK_EQ(q.rep, FWD_FAIL);
    const uint8_t emptyname[] = {5, 1, 0, 3, 0, 0, 80};
    CHECK_EQ(socks5_request_parse(emptyname, sizeof(emptyname), &q), (int)sizeof(emptyname));
    CHECK_EQ(q.rep, FWD_FAIL);
    const uint8_t rsv[] = {5, 1, 1, 1};
    CHECK_EQ(socks5_request_parse(rsv, sizeof(rsv), &q), ERR_PROTO);
    const uint8_t ver[] = {4, 1, 0, 1};
    CHECK_EQ(socks5_request_parse(ver, sizeof(ver), &q), ERR_PROTO);
}

TEST(socks5_replies_and_udp_headers)
{
    uint8_t r[SOCKS5_REPLY_MAX];
    CHECK_EQ(socks5_reply_encode(0, NULL, r), 10);
    const uint8_t ok[] = {5, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    CHECK_MEM(r, ok, sizeof(ok));
    struct fwd_target t;
    REQUIRE(fwd_target_set(&t, "::1", 1080) == 0);
    CHECK_EQ(socks5_reply_encode(FWD_NOT_ALLOWED, &t, r), 22);
    CHECK(r[1] == 2 && r[3] == 4 && r[19] == 1 && r[20] == 0x04 && r[21] == 0x38);
    /* UDP headers: encode, parse back */
    uint8_t h[SOCKS5_UDP_HDR_MAX + 4];
    REQUIRE(fwd_target_set(&t, "dns.example", 53) == 0);
    int n = socks5_udp_encode(&t, h, sizeof(h));
    CHECK_EQ(n, 4 + 1 + 11 + 2);
    struct fwd_target d;
    CHECK_EQ(socks5_udp_parse(h, (size_t)n + 3, &d), n);
    CHECK(d.atyp == FWD_ATYP_NAME && strcmp(d.name, "dns.example") == 0 && d.port == 53);
    REQUIRE(fwd_target_set(&t, "10.0.0.53", 53) == 0);
    n = socks5_udp_encode(&t, h, sizeof(h));
    CHECK_EQ(n, 10);
    CHECK_EQ(socks5_udp_parse(h, 10, &d), 10);
    CHECK(d.atyp == FWD_ATYP_IPV4 && d.addr[3] == 53);
    CHECK_EQ(socks5_udp_parse(h, 9, &d), ERR_PROTO);
    h[2] = 1; /* a fragment */
    CHECK_EQ(socks5_udp_parse(h, 10, &d), ERR_PROTO);
    h[2] = 0;
    h[8] = h[9] = 0; /* port 0 */
    CHECK_EQ(socks5_udp_parse(h, 10, &d), ERR_PROTO);
    CHECK_EQ(socks5_udp_encode(&t, h, 9), ERR_INVAL);
}
