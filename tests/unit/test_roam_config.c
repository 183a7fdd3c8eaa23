/* SPDX-License-Identifier: MIT */
/* Configuration of roaming: port ranges (-r host:MIN-MAX, -l :MIN-MAX), --hop, and what a
 * SIGHUP reload may change. */
#include "common/config.h"
#include "common/err.h"
#include "common/net.h"
#include "tests/test.h"

#include <string.h>

TEST(portrange_parse)
{
    char base[64];
    uint16_t lo, hi;
    CHECK_EQ(config_port_range("vps:29900", base, sizeof(base), &lo, &hi), 0);
    CHECK(strcmp(base, "vps:29900") == 0 && lo == 0 && hi == 0);
    CHECK_EQ(config_port_range("vps:3000-3015", base, sizeof(base), &lo, &hi), 1);
    CHECK(strcmp(base, "vps:3000") == 0 && lo == 3000 && hi == 3015);
    CHECK_EQ(config_port_range(":1-65535", base, sizeof(base), &lo, &hi), 1);
    CHECK(strcmp(base, ":1") == 0 && lo == 1 && hi == 65535);
    CHECK_EQ(config_port_range("[::1]:400-400", base, sizeof(base), &lo, &hi), 1);
    CHECK(strcmp(base, "[::1]:400") == 0 && lo == 400 && hi == 400);
    /* a dash in the host is not a range */
    CHECK_EQ(config_port_range("my-vps:80", base, sizeof(base), &lo, &hi), 0);
    CHECK(strcmp(base, "my-vps:80") == 0);
    const char *bad[] = {"h:5-4", "h:0-10", "h:1-65536", "h:-5", "h:5-", "h:a-b", "h:1-2-3",
                         "h:123456-123457", "h:1 -2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(config_port_range(bad[i], base, sizeof(base), &lo, &hi), ERR_INVAL);
    CHECK_EQ(config_port_range("vps:3000-3015", base, 8, &lo, &hi), ERR_INVAL); /* short */
    CHECK_EQ(config_port_range("vps:3000", base, 8, &lo, &hi), ERR_INVAL);
}

static int validate(enum config_role role, const char *flag, const char *addr, char *err)
{
    struct config cfg;
    config_defaults(&cfg, role);
    char *argv[] = {(char *)"prog", (char *)flag, (char *)addr, NULL};
    if (config_parse_args(&cfg, 3, argv, err, CONFIG_ERR_MAX) != 0)
        return -1;
    return config_validate(&cfg, err, CONFIG_ERR_MAX);
}

TEST(portrange_validate)
{
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(validate(CONFIG_CLIENT, "-r", "127.0.0.1:3000-3015", err), 0);
    CHECK_EQ(validate(CONFIG_CLIENT, "-r", "127.0.0.1:1-65535", err), 0);
    CHECK(validate(CONFIG_CLIENT, "-r", "127.0.0.1:3015-3000", err) < 0);
    CHECK(strstr(err, "--remoteaddr") && strstr(err, "range"));
    CHECK_EQ(validate(CONFIG_SERVER, "-l", ":3000-3015", err), 0);
    CHECK(validate(CONFIG_SERVER, "-l", ":3000-9000", err) < 0);
    CHECK(strstr(err, "--listen") && strstr(err, "at most"));
    /* ranges only where kcptun has them */
    CHECK(validate(CONFIG_SERVER, "-t", "127.0.0.1:80-90", err) < 0);
    CHECK(validate(CONFIG_CLIENT, "-l", "127.0.0.1:80-90", err) < 0);
}

TEST(portrange_addr_port)
{
    struct net_addr a;
    char err[NET_ERR_LEN], s[NET_ADDR_STRLEN];
    REQUIRE(net_resolve("127.0.0.1:3000", false, &a, err) == 0);
    CHECK_EQ(net_addr_port(&a), 3000);
    net_addr_set_port(&a, 3015);
    CHECK_EQ(net_addr_port(&a), 3015);
    CHECK(strcmp(net_addr_str(&a, s, sizeof(s)), "127.0.0.1:3015") == 0);
    REQUIRE(net_resolve("[::1]:7", false, &a, err) == 0);
    net_addr_set_port(&a, 65535);
    CHECK_EQ(net_addr_port(&a), 65535);
}

TEST(roam_config_hop)
{
    char err[CONFIG_ERR_MAX];
    struct config cfg;
    config_defaults(&cfg, CONFIG_CLIENT);
    char *ok[] = {(char *)"prog", (char *)"-r", (char *)"127.0.0.1:3000-3015", (char *)"--hop",
                  (char *)"5", (char *)"--crypt", (char *)"xsalsa20-poly1305", NULL};
    REQUIRE(config_parse_args(&cfg, 7, ok, err, sizeof(err)) == 0);
    CHECK_EQ(cfg.hop_s, 5);
    CHECK_EQ(config_validate(&cfg, err, sizeof(err)), 0);
    /* kcptun's modes: a kcptun server cannot follow a session to another port */
    config_defaults(&cfg, CONFIG_CLIENT);
    char *aes[] = {(char *)"prog", (char *)"-r", (char *)"127.0.0.1:3000-3015", (char *)"--hop",
                   (char *)"5", NULL};
    REQUIRE(config_parse_args(&cfg, 5, aes, err, sizeof(err)) == 0);
    CHECK(config_validate(&cfg, err, sizeof(err)) < 0);
    CHECK(strstr(err, "--hop") && strstr(err, "xsalsa20-poly1305"));
    /* ... unless the server is declared ktun (the capability exchange confirms it) */
    config_defaults(&cfg, CONFIG_CLIENT);
    char *kt[] = {(char *)"prog", (char *)"-r", (char *)"127.0.0.1:3000-3015", (char *)"--hop",
                  (char *)"5", (char *)"--peer", (char *)"ktun", (char *)"--tcp", NULL};
    REQUIRE(config_parse_args(&cfg, 8, kt, err, sizeof(err)) == 0);
    CHECK_EQ(config_validate(&cfg, err, sizeof(err)), 0); /* with --tcp too */
    /* one port is no range to hop over */
    config_defaults(&cfg, CONFIG_CLIENT);
    char *one[] = {(char *)"prog", (char *)"-r", (char *)"127.0.0.1:3000-3000", (char *)"--hop",
                   (char *)"5", (char *)"--crypt", (char *)"xsalsa20-poly1305", NULL};
    REQUIRE(config_parse_args(&cfg, 7, one, err, sizeof(err)) == 0);
    CHECK(config_validate(&cfg, err, sizeof(err)) < 0);
    CHECK(strstr(err, "port range") != NULL);
}

TEST(roam_config_restart_only)
{
    struct config a, b;
    char out[256];
    config_defaults(&a, CONFIG_CLIENT);
    b = a;
    config_restart_only(&a, &b, out, sizeof(out));
    CHECK_EQ(out[0], '\0');
    /* wire settings, the key of a client, limits: no restart needed */
    b.datashard = 4, b.mtu = 1200, b.keepalive_s = 5, b.hop_s = 3, b.bufbudget = 1;
    strcpy(b.key, "other");
    strcpy(b.remoteaddr, "10.0.0.1:4000");
    config_restart_only(&a, &b, out, sizeof(out));
    CHECK_EQ(out[0], '\0');
    b.conn = 2;
    strcpy(b.localaddr, ":1");
    config_restart_only(&a, &b, out, sizeof(out));
    CHECK(strcmp(out, "--localaddr, --conn") == 0);
    /* a server's single listener opens everything with one crypt object */
    config_defaults(&a, CONFIG_SERVER);
    b = a;
    strcpy(b.key, "other");
    strcpy(b.crypt, "salsa20");
    config_restart_only(&a, &b, out, sizeof(out));
    CHECK(strcmp(out, "--key, --crypt") == 0);
    /* a short buffer is cut, never overrun */
    char tiny[8];
    config_restart_only(&a, &b, tiny, sizeof(tiny));
    CHECK(strlen(tiny) < sizeof(tiny));
}
