/* SPDX-License-Identifier: MIT */
/* Shadowsocks plugin mode (SIP003): the option grammar, addresses from the SS_* variables,
 * precedence over flags and JSON, and one-line refusals. */
#include "common/config.h"
#include "common/err.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

static char keys[16][CONFIG_OPTION_KEY_MAX];
static char vals[16][CONFIG_PATH_MAX];

TEST(sip003_option_grammar)
{
    char err[CONFIG_ERR_MAX];
    int n = config_sip003_parse("key=pa\\;ss\\=1;crypt=aes-128;nocomp", keys, vals, 16, err,
                                sizeof(err));
    CHECK_EQ(n, 3);
    CHECK(strcmp(keys[0], "key") == 0 && strcmp(vals[0], "pa;ss=1") == 0);
    CHECK(strcmp(keys[1], "crypt") == 0 && strcmp(vals[1], "aes-128") == 0);
    CHECK(strcmp(keys[2], "nocomp") == 0 && strcmp(vals[2], "1") == 0);
    /* a trailing ';' is fine, '\\\\' is a backslash, the value runs to the next ';' */
    n = config_sip003_parse("a=x\\\\y=z;", keys, vals, 16, err, sizeof(err));
    CHECK_EQ(n, 1);
    CHECK(strcmp(vals[0], "x\\y=z") == 0);
    CHECK_EQ(config_sip003_parse("", keys, vals, 16, err, sizeof(err)), 0);
    /* errors: empty key (leading ';' or ';;'), '\\' at the end, too many */
    CHECK_EQ(config_sip003_parse(";a=1", keys, vals, 16, err, sizeof(err)), ERR_INVAL);
    CHECK(strstr(err, "empty option name") != NULL);
    CHECK_EQ(config_sip003_parse("a=1;;b", keys, vals, 16, err, sizeof(err)), ERR_INVAL);
    CHECK_EQ(config_sip003_parse("=1", keys, vals, 16, err, sizeof(err)), ERR_INVAL);
    CHECK_EQ(config_sip003_parse("a=1\\", keys, vals, 16, err, sizeof(err)), ERR_INVAL);
    CHECK(strstr(err, "at the end") != NULL);
    CHECK_EQ(config_sip003_parse("a;b;c", keys, vals, 2, err, sizeof(err)), ERR_INVAL);
}

static int apply(struct config *cfg, enum config_role role, const char *rh, const char *lp,
                 const char *opts, char *err)
{
    config_defaults(cfg, role);
    return config_apply_sip003(cfg, rh, "8388", "127.0.0.1", lp, opts, err, CONFIG_ERR_MAX);
}

TEST(sip003_addresses)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(apply(&cfg, CONFIG_CLIENT, "203.0.113.7", "1080", NULL, err), 0);
    CHECK(cfg.sip003);
    CHECK(strcmp(cfg.localaddr, "127.0.0.1:1080") == 0);
    CHECK(strcmp(cfg.remoteaddr, "203.0.113.7:8388") == 0);
    CHECK_EQ(apply(&cfg, CONFIG_CLIENT, "2001:db8::1|203.0.113.7", "1080", NULL, err), 0);
    CHECK(strcmp(cfg.remoteaddr, "[2001:db8::1]:8388") == 0);
    CHECK_EQ(apply(&cfg, CONFIG_SERVER, "0.0.0.0|::", "5555", NULL, err), 0);
    CHECK(strcmp(cfg.listen, "[::]:8388") == 0);
    CHECK(strcmp(cfg.target, "127.0.0.1:5555") == 0);
    CHECK_EQ(apply(&cfg, CONFIG_SERVER, "0.0.0.0", "5555", NULL, err), 0);
    CHECK(strcmp(cfg.listen, "0.0.0.0:8388") == 0);
    CHECK_EQ(apply(&cfg, CONFIG_SERVER, "192.0.2.1|192.0.2.2", "5555", NULL, err), 0);
    CHECK(strcmp(cfg.listen, "192.0.2.1:8388") == 0);
    CHECK(strstr(cfg.warnings, "SS_REMOTE_HOST") != NULL);
    CHECK_EQ(config_validate(&cfg, err, CONFIG_ERR_MAX), 0);
    /* not a plugin: nothing changes */
    config_defaults(&cfg, CONFIG_CLIENT);
    CHECK_EQ(config_apply_sip003(&cfg, NULL, "1", "127.0.0.1", "2", NULL, err, sizeof(err)), 0);
    CHECK(!cfg.sip003);
    CHECK(strcmp(cfg.localaddr, ":12948") == 0);
    /* SS_LOCAL_PORT missing */
    CHECK_EQ(apply(&cfg, CONFIG_CLIENT, "203.0.113.7", "", NULL, err), ERR_INVAL);
    CHECK(strstr(err, "SS_LOCAL_PORT") != NULL && strchr(err, '\n') == NULL);
}

TEST(sip003_options)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(apply(&cfg, CONFIG_CLIENT, "203.0.113.7", "1080",
                   "crypt=aes-128-gcm;mode=fast2;key=a\\;b;nocomp;datashard=5;parityshard=2;"
                   "mtu=1200;mtu=1000;remoteaddr=198.51.100.1:4000;ratelimit=1000;framesize=8192;"
                   "listen=:1",
                   err),
             0);
    CHECK(strcmp(cfg.crypt, "aes-128-gcm") == 0);
    CHECK(strcmp(cfg.mode, "fast2") == 0);
    CHECK(strcmp(cfg.key, "a;b") == 0);
    CHECK(cfg.nocomp);
    CHECK_EQ(cfg.datashard, 5);
    CHECK_EQ(cfg.parityshard, 2);
    CHECK_EQ(cfg.mtu, 1200); /* the first of repeated keys wins */
    CHECK(strcmp(cfg.remoteaddr, "198.51.100.1:4000") == 0); /* options beat the variables */
    CHECK_EQ(cfg.ratelimit, 1000);
    CHECK_EQ(cfg.framesize, 8192);
    CHECK(strstr(cfg.warnings, "listen") != NULL); /* a server key on the client: ignored */
    CHECK_EQ(config_validate(&cfg, err, CONFIG_ERR_MAX), 0);
    /* bad options exit with one line instead of being ignored */
    static const char *const bad[] = {"mtu=abc", "nocomp=maybe", "nosuchkey=1", "c=/etc/x",
                                      "crypt"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = apply(&cfg, CONFIG_CLIENT, "203.0.113.7", "1080", bad[i], err);
        if (rc == 0)
            rc = config_validate(&cfg, err, CONFIG_ERR_MAX);
        if (rc != ERR_INVAL || strchr(err, '\n') != NULL)
            test_fail(__FILE__, __LINE__, "option '%s' accepted or reason not one line",
                      bad[i]);
    }
    /* Android VPN mode: sockets go through protect_path (net_set_protect) */
    CHECK_EQ(apply(&cfg, CONFIG_CLIENT, "203.0.113.7", "1080", "__android_vpn", err), 0);
    CHECK_EQ(config_validate(&cfg, err, CONFIG_ERR_MAX), 0);
    CHECK(cfg.android_vpn);
}

TEST(sip003_environment_beats_flags_and_json)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    char a0[] = "ktun-server", a1[] = "--mtu", a2[] = "1400", a3[] = "--crypt", a4[] = "salsa20";
    char *argv[] = {a0, a1, a2, a3, a4, NULL};
    setenv("SS_REMOTE_HOST", "127.0.0.1", 1);
    setenv("SS_REMOTE_PORT", "9000", 1);
    setenv("SS_LOCAL_HOST", "127.0.0.1", 1);
    setenv("SS_LOCAL_PORT", "9001", 1);
    setenv("SS_PLUGIN_OPTIONS", "crypt=null;mode=fast3", 1);
    config_defaults(&cfg, CONFIG_SERVER);
    CHECK_EQ(config_parse_args(&cfg, 5, argv, err, sizeof(err)), CONFIG_OK);
    CHECK(strcmp(cfg.listen, "127.0.0.1:9000") == 0);
    CHECK(strcmp(cfg.target, "127.0.0.1:9001") == 0);
    CHECK(strcmp(cfg.crypt, "null") == 0);
    CHECK_EQ(cfg.mtu, 1400);
    CHECK_EQ(cfg.interval_ms, 10); /* fast3 applied after the options */
    setenv("SS_PLUGIN_OPTIONS", "mtu=x", 1);
    config_defaults(&cfg, CONFIG_SERVER);
    CHECK_EQ(config_parse_args(&cfg, 1, argv, err, sizeof(err)), ERR_INVAL);
    CHECK(strstr(err, "SS_PLUGIN_OPTIONS") != NULL);
    unsetenv("SS_REMOTE_HOST");
    unsetenv("SS_REMOTE_PORT");
    unsetenv("SS_LOCAL_HOST");
    unsetenv("SS_LOCAL_PORT");
    unsetenv("SS_PLUGIN_OPTIONS");
}
