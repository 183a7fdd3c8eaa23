/* SPDX-License-Identifier: MIT */
/* Configuration of UDP forwards and ktun extensions: -U, --peer, --plugin_mode, JSON. */
#include "common/config.h"
#include "common/err.h"
#include "tests/test.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses and validates the NULL-terminated argument list for the client. */
static int client_args(struct config *cfg, char *err, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)"ktun-client";
    va_list ap;
    va_start(ap, err);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    unsetenv("KCPTUN_KEY");
    config_defaults(cfg, CONFIG_CLIENT);
    err[0] = '\0';
    int rc = config_parse_args(cfg, argc, argv, err, CONFIG_ERR_MAX);
    return rc ? rc : config_validate(cfg, err, CONFIG_ERR_MAX);
}

TEST(udp_config_forwards_and_offers)
{
    static struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(client_args(&cfg, err, "-U", "5353:127.0.0.1:53", "--udpforward",
                         "0.0.0.0:7000", (char *)NULL), 0);
    CHECK(strcmp(cfg.udpfwd, "5353:127.0.0.1:53\n0.0.0.0:7000\n") == 0);
    CHECK(config_needs_ktun_peer(&cfg));
    CHECK(config_offers_caps(&cfg));
    /* stock kcptun options: no offer */
    CHECK_EQ(client_args(&cfg, err, (char *)NULL), 0);
    CHECK(!config_offers_caps(&cfg));
    CHECK_EQ(client_args(&cfg, err, "--crypt", "xsalsa20-poly1305", (char *)NULL), 0);
    CHECK(config_offers_caps(&cfg));
    CHECK_EQ(client_args(&cfg, err, "--peer", "ktun", (char *)NULL), 0);
    CHECK(config_offers_caps(&cfg));
    CHECK_EQ(client_args(&cfg, err, "--crypt", "xsalsa20-poly1305", "--peer", "kcptun",
                         (char *)NULL), 0);
    CHECK(!config_offers_caps(&cfg));
    /* errors name the flag */
    CHECK_EQ(client_args(&cfg, err, "-U", "53:host", (char *)NULL), ERR_INVAL);
    CHECK(strstr(err, "-U") != NULL);
    CHECK_EQ(client_args(&cfg, err, "--peer", "go", (char *)NULL), ERR_INVAL);
    CHECK(strstr(err, "--peer") != NULL);
    CHECK_EQ(client_args(&cfg, err, "--peer", "kcptun", "-U", "53", (char *)NULL), ERR_INVAL);
    CHECK(strstr(err, "--peer kcptun") != NULL);
    CHECK_EQ(client_args(&cfg, err, "--udpidle", "0", (char *)NULL), ERR_INVAL);
    CHECK_EQ(client_args(&cfg, err, "--plugin_mode", "both", (char *)NULL), ERR_INVAL);
    CHECK(strstr(err, "--plugin_mode") != NULL);
}

TEST(udp_config_json_and_plugin_mode)
{
    static struct config cfg;
    char err[CONFIG_ERR_MAX], path[] = "/tmp/ktun-udpcfg-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const char *json = "{\"udpforward\": [\"5353:10.0.0.1:53\", \"6000\"], \"udpidle\": 5}";
    REQUIRE(write(fd, json, strlen(json)) == (ssize_t)strlen(json));
    close(fd);
    CHECK_EQ(client_args(&cfg, err, "-c", path, (char *)NULL), 0);
    CHECK(strcmp(cfg.udpfwd, "5353:10.0.0.1:53\n6000\n") == 0);
    CHECK_EQ(cfg.udpidle_s, 5);
    unlink(path);
    /* SIP003u: plugin_mode from the plugin options */
    config_defaults(&cfg, CONFIG_CLIENT);
    CHECK_EQ(config_apply_sip003(&cfg, "127.0.0.1", "8388", "127.0.0.1", "1080",
                                 "plugin_mode=tcp_and_udp", err, sizeof(err)), 0);
    CHECK(config_plugin_udp(&cfg));
    CHECK(config_offers_caps(&cfg));
    config_defaults(&cfg, CONFIG_CLIENT);
    CHECK_EQ(config_apply_sip003(&cfg, "127.0.0.1", "8388", "127.0.0.1", "1080", "", err,
                                 sizeof(err)), 0);
    CHECK(!config_plugin_udp(&cfg));
    CHECK(!config_offers_caps(&cfg));
}
