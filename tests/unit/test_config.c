/* SPDX-License-Identifier: MIT */
/* Tests for the command line, JSON config, mode table, validation and address parsing. */
#include "common/config.h"
#include "common/err.h"
#include "common/log.h"
#include "tests/test.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_ARGS 32

/* Parses the NULL-terminated argument list (program name added) for |role| over fresh
 * defaults. KCPTUN_KEY is set to |env_key|, or removed when it is NULL. */
static int parse_env(struct config *cfg, enum config_role role, char *err, const char *env_key,
                     ...)
{
    static char store[MAX_ARGS][CONFIG_PATH_MAX];
    char *argv[MAX_ARGS + 1];
    int argc = 0;
    va_list ap;

    if (env_key)
        setenv("KCPTUN_KEY", env_key, 1);
    else
        unsetenv("KCPTUN_KEY");
    snprintf(store[argc], sizeof(store[argc]), "%s", config_prog_name(role));
    argv[argc] = store[argc];
    argc++;
    va_start(ap, env_key);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < MAX_ARGS; argc++) {
        snprintf(store[argc], sizeof(store[argc]), "%s", a);
        argv[argc] = store[argc];
    }
    va_end(ap);
    argv[argc] = NULL;
    config_defaults(cfg, role);
    err[0] = '\0';
    int rc = config_parse_args(cfg, argc, argv, err, CONFIG_ERR_MAX);
    unsetenv("KCPTUN_KEY");
    return rc;
}

#define parse(cfg, role, err, ...) parse_env(cfg, role, err, NULL, __VA_ARGS__, NULL)
#define parse0(cfg, role, err) parse_env(cfg, role, err, NULL, NULL)

/* Parses then validates; returns the first failure or 0. */
#define parse_valid(cfg, role, err, ...)                                                    \
    (parse(cfg, role, err, __VA_ARGS__) ?: config_validate(cfg, err, CONFIG_ERR_MAX))

/* Writes |text| to a fresh temporary file named into |path|. */
static void write_temp(char *path, size_t cap, const char *text)
{
    snprintf(path, cap, "/tmp/ktun-test-config-XXXXXX");
    int fd = mkstemp(path);
    if (fd == -1)
        return;
    size_t n = strlen(text);
    if (write(fd, text, n) != (ssize_t)n)
        path[0] = '\0';
    close(fd);
}

static bool one_line(const char *s)
{
    return s[0] != '\0' && strchr(s, '\n') == NULL;
}

/* ------------------------------------------------------------------------------------------ */

TEST(config_defaults_match_kcptun)
{
    struct config c, s;
    config_defaults(&c, CONFIG_CLIENT);
    config_defaults(&s, CONFIG_SERVER);
    struct {
        const char *name;
        long long client, server;
    } ints[] = {
        {"nodelay", c.nodelay, s.nodelay},       {"interval", c.interval_ms, s.interval_ms},
        {"resend", c.resend, s.resend},          {"nc", c.nc, s.nc},
        {"mtu", c.mtu, s.mtu},                   {"sndwnd", c.sndwnd, s.sndwnd},
        {"rcvwnd", c.rcvwnd, s.rcvwnd},          {"datashard", c.datashard, s.datashard},
        {"parityshard", c.parityshard, s.parityshard}, {"dscp", c.dscp, s.dscp},
        {"sockbuf", c.sockbuf, s.sockbuf},       {"smuxver", c.smuxver, s.smuxver},
        {"smuxbuf", c.smuxbuf, s.smuxbuf},       {"streambuf", c.streambuf, s.streambuf},
        {"keepalive", c.keepalive_s, s.keepalive_s}, {"snmpperiod", c.snmpperiod_s, s.snmpperiod_s},
        {"nocomp", c.nocomp, s.nocomp},          {"acknodelay", c.acknodelay, s.acknodelay},
        {"quiet", c.quiet, s.quiet},             {"tcp", c.tcp, s.tcp},
        {"pprof", c.pprof, s.pprof},
    };
    /* kcptun 20210922 (kcptun-client/-server --help, and their startup log in manual mode) */
    static const long long want[][2] = {
        {0, 0}, {50, 50}, {0, 0}, {0, 0}, {1350, 1350}, {128, 1024}, {512, 1024}, {10, 10},
        {3, 3}, {0, 0}, {4194304, 4194304}, {1, 1}, {4194304, 4194304}, {2097152, 2097152},
        {10, 10}, {60, 60}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0},
    };
    REQUIRE(sizeof(want) / sizeof(want[0]) == sizeof(ints) / sizeof(ints[0]));
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        if (ints[i].client != want[i][0] || ints[i].server != want[i][1])
            test_fail(__FILE__, __LINE__, "default %s: client %lld server %lld, want %lld %lld",
                      ints[i].name, ints[i].client, ints[i].server, want[i][0], want[i][1]);
    }
    CHECK(strcmp(c.localaddr, ":12948") == 0);
    CHECK(strcmp(c.remoteaddr, "vps:29900") == 0);
    CHECK(strcmp(s.listen, ":29900") == 0);
    CHECK(strcmp(s.target, "127.0.0.1:12948") == 0);
    CHECK(strcmp(c.key, "it's a secrect") == 0);
    CHECK(strcmp(s.key, "it's a secrect") == 0);
    CHECK(strcmp(c.crypt, "aes") == 0 && strcmp(s.crypt, "aes") == 0);
    CHECK(strcmp(c.mode, "fast") == 0 && strcmp(s.mode, "fast") == 0);
    CHECK(c.snmplog[0] == '\0' && c.log[0] == '\0' && c.config_file[0] == '\0');
    CHECK_EQ(c.conn, 1);
    CHECK_EQ(c.autoexpire_s, 0);
    CHECK_EQ(c.scavengettl_s, 600);
    CHECK_EQ(s.maxsessions, 0); /* sized at start */
    CHECK_EQ(c.maxstreams, 4096);
    CHECK_EQ(s.bufbudget, 256 << 20);
    CHECK_EQ(c.loglevel, LOG_LEVEL_INFO);
    CHECK_EQ(c.role, CONFIG_CLIENT);
    CHECK_EQ(s.role, CONFIG_SERVER);
}

TEST(config_no_args_gives_valid_fast_mode)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
        CHECK_EQ(parse0(&cfg, (enum config_role)r, err), CONFIG_OK);
        CHECK_EQ(config_validate(&cfg, err, sizeof(err)), 0);
        CHECK_EQ(cfg.nodelay, 0);
        CHECK_EQ(cfg.interval_ms, 30);
        CHECK_EQ(cfg.resend, 2);
        CHECK_EQ(cfg.nc, 1);
        CHECK(strstr(cfg.warnings, "default key") != NULL);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Every flag, every syntax */

struct flag_case {
    const char *name;       /* long name */
    unsigned roles;         /* 1 client, 2 server */
    const char *value;      /* text given */
    size_t offset;          /* field */
    char kind;              /* 'i' int, 'l' int64, 's' string */
    long long want;         /* for numbers */
};

#define FC(n, r, v, f, k, w) {n, r, v, offsetof(struct config, f), k, w}

static const struct flag_case flag_cases[] = {
    FC("localaddr", 1, "127.0.0.1:1000", localaddr, 's', 0),
    FC("remoteaddr", 1, "[::1]:2000", remoteaddr, 's', 0),
    FC("listen", 2, "[::]:3000", listen, 's', 0),
    FC("target", 2, "/run/app.sock", target, 's', 0),
    FC("key", 3, "s3cret key", key, 's', 0),
    FC("crypt", 3, "salsa20", crypt, 's', 0),
    FC("mode", 3, "manual", mode, 's', 0),
    FC("conn", 1, "4", conn, 'i', 4),
    FC("autoexpire", 1, "1800", autoexpire_s, 'i', 1800),
    FC("scavengettl", 1, "30", scavengettl_s, 'i', 30),
    FC("mtu", 3, "1400", mtu, 'i', 1400),
    FC("sndwnd", 3, "2048", sndwnd, 'i', 2048),
    FC("rcvwnd", 3, "4096", rcvwnd, 'i', 4096),
    FC("datashard", 3, "20", datashard, 'i', 20),
    FC("ds", 3, "21", datashard, 'i', 21),
    FC("parityshard", 3, "5", parityshard, 'i', 5),
    FC("ps", 3, "6", parityshard, 'i', 6),
    FC("dscp", 3, "46", dscp, 'i', 46),
    FC("sockbuf", 3, "16777217", sockbuf, 'i', 16777217),
    FC("smuxver", 3, "2", smuxver, 'i', 2),
    FC("smuxbuf", 3, "8388608", smuxbuf, 'i', 8388608),
    FC("streambuf", 3, "1048576", streambuf, 'i', 1048576),
    FC("keepalive", 3, "20", keepalive_s, 'i', 20),
    FC("snmplog", 3, "./snmp-20060102.log", snmplog, 's', 0),
    FC("snmpperiod", 3, "30", snmpperiod_s, 'i', 30),
    FC("log", 3, "/var/log/ktun.log", log, 's', 0),
    FC("nodelay", 3, "1", nodelay, 'i', 1),
    FC("interval", 3, "15", interval_ms, 'i', 15),
    FC("resend", 3, "3", resend, 'i', 3),
    FC("nc", 3, "1", nc, 'i', 1),
    FC("maxsessions", 2, "99", maxsessions, 'i', 99),
    FC("maxstreams", 3, "77", maxstreams, 'i', 77),
    FC("bufbudget", 3, "8589934592", bufbudget, 'l', 8589934592LL),
    FC("loglevel", 3, "debug", loglevel, 'i', LOG_LEVEL_DEBUG),
};

static void check_flag_value(const struct config *cfg, const struct flag_case *fc,
                             const char *syntax)
{
    const char *field = (const char *)cfg + fc->offset;
    bool ok;
    if (fc->kind == 's') {
        ok = strcmp(field, fc->value) == 0;
    } else if (fc->kind == 'l') {
        int64_t v;
        memcpy(&v, field, sizeof(v));
        ok = v == fc->want;
    } else {
        int v;
        memcpy(&v, field, sizeof(v));
        ok = v == fc->want;
    }
    if (!ok)
        test_fail(__FILE__, __LINE__, "flag %s in syntax '%s' did not store %s", fc->name,
                  syntax, fc->value);
}

TEST(config_every_flag_in_every_syntax)
{
    static const char *const syntaxes[] = {"--", "-", "--=", "-="};
    struct config cfg;
    char err[CONFIG_ERR_MAX], a1[CONFIG_PATH_MAX], a2[CONFIG_PATH_MAX];

    for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
        const struct flag_case *fc = &flag_cases[i];
        for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
            if (!(fc->roles & (1u << r)))
                continue;
            for (int s = 0; s < 4; s++) {
                int rc;
                /* the mode is manual so the four knobs are kept as given */
                snprintf(a1, sizeof(a1), "%s%s%s", s % 2 ? "-" : "--", fc->name,
                         s >= 2 ? "=" : "");
                if (s >= 2) {
                    strcat(a1, fc->value);
                    rc = parse(&cfg, (enum config_role)r, err, "--mode", "manual", a1);
                } else {
                    snprintf(a2, sizeof(a2), "%s", fc->value);
                    rc = parse(&cfg, (enum config_role)r, err, "--mode", "manual", a1, a2);
                }
                if (rc != CONFIG_OK) {
                    test_fail(__FILE__, __LINE__, "%s %s: rc %d: %s", a1, fc->value, rc, err);
                    continue;
                }
                check_flag_value(&cfg, fc, syntaxes[s]);
            }
        }
    }
}

TEST(config_flags_of_the_other_role_are_refused)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
        const struct flag_case *fc = &flag_cases[i];
        if (fc->roles == 3)
            continue;
        enum config_role other = fc->roles == 1 ? CONFIG_SERVER : CONFIG_CLIENT;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", fc->name);
        CHECK_EQ(parse(&cfg, other, err, flag, fc->value), ERR_INVAL);
        CHECK(strstr(err, flag) != NULL);
        CHECK(strstr(err, config_prog_name(other)) != NULL);
    }
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--pprof"), ERR_INVAL);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-t", "1.2.3.4:5"), ERR_INVAL);
    CHECK(strstr(err, "-t") != NULL);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-r", "1.2.3.4:5"), ERR_INVAL);
}

TEST(config_short_forms)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];

    REQUIRE(parse(&cfg, CONFIG_CLIENT, err, "-l", ":1000", "-r", "host:2000") == CONFIG_OK);
    CHECK(strcmp(cfg.localaddr, ":1000") == 0);
    CHECK(strcmp(cfg.remoteaddr, "host:2000") == 0);
    REQUIRE(parse(&cfg, CONFIG_CLIENT, err, "-l=:1001", "--r=host:2001") == CONFIG_OK);
    CHECK(strcmp(cfg.localaddr, ":1001") == 0);
    CHECK(strcmp(cfg.remoteaddr, "host:2001") == 0);
    REQUIRE(parse(&cfg, CONFIG_CLIENT, err, "--l", ":1002") == CONFIG_OK);
    CHECK(strcmp(cfg.localaddr, ":1002") == 0);
    /* -l is --listen on the server, and -t exists only there */
    REQUIRE(parse(&cfg, CONFIG_SERVER, err, "-l", ":3000", "-t", "10.0.0.1:22") == CONFIG_OK);
    CHECK(strcmp(cfg.listen, ":3000") == 0);
    CHECK(strcmp(cfg.target, "10.0.0.1:22") == 0);
    CHECK(cfg.localaddr[0] == '\0');
    /* getopt's glued short values and abbreviations are not Go syntax */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-l:1000"), ERR_INVAL);
    CHECK(strstr(err, "-l:1000") != NULL);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--loc", ":1"), ERR_INVAL);
    CHECK(strstr(err, "--loc") != NULL);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-parity", "3"), ERR_INVAL);
    CHECK(strstr(err, "-parity") != NULL);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-tcpx"), ERR_INVAL);
}

TEST(config_boolean_flags)
{
    static const struct {
        const char *name;
        size_t offset;
        unsigned roles;
    } bools[] = {
        {"nocomp", offsetof(struct config, nocomp), 3},
        {"acknodelay", offsetof(struct config, acknodelay), 3},
        {"quiet", offsetof(struct config, quiet), 3},
        {"tcp", offsetof(struct config, tcp), 3},
        {"pprof", offsetof(struct config, pprof), 2},
        {"nopace", offsetof(struct config, nopace), 3},
        {"nofechold", offsetof(struct config, nofechold), 3},
    };
    static const struct {
        const char *suffix;
        bool want;
    } forms[] = {
        {"", true},      {"=true", true},   {"=1", true},  {"=t", true},    {"=T", true},
        {"=TRUE", true}, {"=True", true},   {"=false", false}, {"=0", false}, {"=f", false},
        {"=F", false},   {"=FALSE", false}, {"=False", false},
    };
    struct config cfg;
    char err[CONFIG_ERR_MAX], arg[64];

    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        enum config_role role = bools[i].roles & 1 ? CONFIG_CLIENT : CONFIG_SERVER;
        for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]); f++) {
            for (int dashes = 1; dashes <= 2; dashes++) {
                snprintf(arg, sizeof(arg), "%s%s%s", dashes == 2 ? "--" : "-", bools[i].name,
                         forms[f].suffix);
                int rc = parse(&cfg, role, err, arg);
                bool v;
                memcpy(&v, (const char *)&cfg + bools[i].offset, sizeof(v));
                if (rc != CONFIG_OK || v != forms[f].want)
                    test_fail(__FILE__, __LINE__, "%s: rc %d value %d (%s)", arg, rc, v, err);
            }
        }
    }
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--nocomp=yes"), ERR_INVAL);
    CHECK(strstr(err, "--nocomp") != NULL && strstr(err, "yes") != NULL);
    /* Go takes "--nocomp false" as --nocomp plus an ignored argument: ktun explains */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--nocomp", "false"), ERR_INVAL);
    CHECK(strstr(err, "--nocomp=false") != NULL);
    CHECK(one_line(err));
}

TEST(config_go_integer_literals)
{
    static const struct {
        const char *text;
        int want;
    } good[] = {
        {"1350", 1350},   {"+1350", 1350},          {"0x_546", 1350}, {"0_2506", 1350},
        {"0x546", 1350},  {"0X546", 1350},          {"0o2506", 1350}, {"02506", 1350},
        {"0b10101000110", 1350}, {"1_350", 1350},   {"0x5_46", 1350}, {"-7", -7},
        {"0", 0},
    };
    static const char *const bad[] = {
        "", "abc", "12a", " 12", "12 ", "1__0", "_1", "1_", "0x", "0b2", "09", "1.5", "1e3",
        "--5", "+", "1_x", "0x_", "9223372036854775808", "2147483648", "-2147483649",
    };
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = parse(&cfg, CONFIG_CLIENT, err, "--mode", "manual", "--resend", good[i].text);
        if (rc != CONFIG_OK || cfg.resend != good[i].want)
            test_fail(__FILE__, __LINE__, "'%s': rc %d value %d", good[i].text, rc, cfg.resend);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(&cfg, CONFIG_CLIENT, err, "--mtu", bad[i]);
        if (rc != ERR_INVAL || !strstr(err, "--mtu") || !one_line(err))
            test_fail(__FILE__, __LINE__, "'%s': rc %d err '%s'", bad[i], rc, err);
    }
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--bufbudget", "9223372036854775807"), CONFIG_OK);
    CHECK(cfg.bufbudget == INT64_MAX);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mtu", "abc"), ERR_INVAL);
    CHECK(strcmp(err, "--mtu: invalid value 'abc' (not an integer)") == 0);
}

TEST(config_command_line_errors)
{
    static const struct {
        const char *a, *b, *culprit;
    } cases[] = {
        {"--bogus", "1", "--bogus"},
        {"-bogus", NULL, "-bogus"},
        {"extra", NULL, "extra"},
        {"--mtu", NULL, "--mtu"},
        {"--conn", "--key", "--conn"},
        {"--key", "-mtu=5", "--key"},
        {"--help=1", NULL, "--help"},
        {"--", "x", "'x'"},
        {"-", NULL, "'-'"},
        {"---mtu", "1", "---mtu"},
        {"--=1", NULL, "--=1"},
        {"--loglevel", "loud", "--loglevel"},
    };
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = cases[i].b ? parse(&cfg, CONFIG_CLIENT, err, cases[i].a, cases[i].b)
                            : parse(&cfg, CONFIG_CLIENT, err, cases[i].a);
        if (rc != ERR_INVAL || !strstr(err, cases[i].culprit) || !one_line(err))
            test_fail(__FILE__, __LINE__, "%s %s: rc %d err '%s'", cases[i].a,
                      cases[i].b ? cases[i].b : "", rc, err);
    }
    /* a key may start with a dash as long as it is not a flag name */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--key", "-secret-"), CONFIG_OK);
    CHECK(strcmp(cfg.key, "-secret-") == 0);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mtu", "-5"), CONFIG_OK);
    CHECK_EQ(cfg.mtu, -5);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mtu", "1400", "--"), CONFIG_OK);
    CHECK_EQ(cfg.mtu, 1400);
    /* the last occurrence wins, as with Go's flag package */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mtu", "1400", "-mtu", "1300"), CONFIG_OK);
    CHECK_EQ(cfg.mtu, 1300);
    char longkey[CONFIG_KEY_MAX + 10];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--key", longkey), ERR_INVAL);
    CHECK(strstr(err, "--key") && strstr(err, "too long"));
}

TEST(config_help_and_version)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--help"), CONFIG_HELP);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-h"), CONFIG_HELP);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-help"), CONFIG_HELP);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "help"), CONFIG_HELP);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "h"), CONFIG_HELP);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--version"), CONFIG_VERSION);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-v"), CONFIG_VERSION);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-version"), CONFIG_VERSION);
    /* help/version win over bad values, and the first one asked for wins */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mtu", "abc", "-h"), CONFIG_HELP);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-c", "/nonexistent.json", "-v"), CONFIG_VERSION);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-v", "-h"), CONFIG_VERSION);
    /* but unknown flags are still errors */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-h", "--bogus"), ERR_INVAL);

    for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        REQUIRE(f != NULL);
        config_usage((enum config_role)r, f);
        config_version((enum config_role)r, f);
        fclose(f);
        CHECK(strstr(text, config_prog_name((enum config_role)r)) != NULL);
        CHECK(strstr(text, KTUN_VERSION) != NULL);
        /* the version line reads like kcptun's: "kcptun version X ..." */
        CHECK(strstr(text, "\nkcptun version " KTUN_KCPTUN_VERSION " (") != NULL);
        for (size_t i = 0; i < sizeof(flag_cases) / sizeof(flag_cases[0]); i++) {
            char flag[64], flag2[64];
            snprintf(flag, sizeof(flag), "--%s ", flag_cases[i].name);
            snprintf(flag2, sizeof(flag2), "--%s,", flag_cases[i].name);
            bool mine = flag_cases[i].roles & (1u << r);
            if ((strstr(text, flag) != NULL || strstr(text, flag2) != NULL) != mine)
                test_fail(__FILE__, __LINE__, "help of role %d and %s", r, flag);
        }
        CHECK(strstr(text, "--ds N") != NULL && strstr(text, "--ps N") != NULL);
        CHECK(strstr(text, "xsalsa20-poly1305") != NULL);
        CHECK(strstr(text, "KCPTUN_KEY") != NULL);
        CHECK(strstr(text, r == CONFIG_CLIENT ? "(default 128)" : "(default 1024)") != NULL);
        CHECK(strstr(text, r == CONFIG_CLIENT ? "-l, --localaddr" : "-l, --listen") != NULL);
        for (const char *p = text; *p;) {
            size_t n = strcspn(p, "\n");
            if (n > 100)
                test_fail(__FILE__, __LINE__, "help line over 100 columns: %.40s", p);
            p += n + (p[n] == '\n');
        }
        free(text);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Environment, JSON, modes */

TEST(config_env_key)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(parse_env(&cfg, CONFIG_CLIENT, err, "from-env", NULL), CONFIG_OK);
    CHECK(strcmp(cfg.key, "from-env") == 0);
    CHECK(strstr(cfg.warnings, "default key") == NULL);
    CHECK_EQ(parse_env(&cfg, CONFIG_SERVER, err, "from-env", "--key", "from-flag", NULL),
             CONFIG_OK);
    CHECK(strcmp(cfg.key, "from-flag") == 0);
    /* set but empty still replaces the default (urfave/cli reads any set variable) */
    CHECK_EQ(parse_env(&cfg, CONFIG_SERVER, err, "", NULL), CONFIG_OK);
    CHECK(strcmp(cfg.key, "") == 0);
    CHECK_EQ(parse0(&cfg, CONFIG_SERVER, err), CONFIG_OK);
    CHECK(strcmp(cfg.key, "it's a secrect") == 0);

    char path[64];
    write_temp(path, sizeof(path), "{\"key\": \"from-json\"}");
    REQUIRE(path[0]);
    CHECK_EQ(parse_env(&cfg, CONFIG_CLIENT, err, "from-env", "--key", "from-flag", "-c", path,
                       NULL),
             CONFIG_OK);
    CHECK(strcmp(cfg.key, "from-json") == 0);
    unlink(path);
}

/* The shapes of kcptun's examples/local.json and examples/server.json (Debian package). */
static const char local_json[] =
    "{\n\t\"localaddr\": \":2000\",\n\t\"remoteaddr\": \"11.22.33.44:2000\",\n"
    "\t\"key\": \"PASSWORD\",\n\t\"crypt\": \"aes-128\",\n\t\"mode\": \"fast3\",\n"
    "\t\"mtu\": 1400,\n\t\"sndwnd\": 128,\n\t\"rcvwnd\": 1024,\n\t\"datashard\": 10,\n"
    "\t\"parityshard\": 3,\n\t\"dscp\": 46,\n\t\"nocomp\": true,\n\t\"acknodelay\": false,\n"
    "\t\"nodelay\": 1,\n\t\"interval\": 40,\n\t\"resend\": 2,\n\t\"nc\": 1,\n"
    "\t\"sockbuf\": 16777217,\n\t\"smuxver\": 1,\n\t\"smuxbuf\": 16777217,\n"
    "\t\"streambuf\": 2097152,\n\t\"keepalive\": 10,\n\t\"autoexpire\": 1800,\n"
    "\t\"quiet\": false,\n\t\"tcp\": false\n}\n";

static const char server_json[] =
    "{\n        \"listen\": \":2000\",\n        \"target\": \"127.0.0.1:9999\",\n"
    "        \"key\": \"PASSWORD\",\n        \"crypt\": \"aes-128\",\n"
    "        \"mode\": \"fast3\",\n        \"mtu\": 1400,\n        \"sndwnd\": 2048,\n"
    "        \"rcvwnd\": 2048,\n        \"datashard\": 10,\n        \"parityshard\": 3,\n"
    "        \"dscp\": 46,\n        \"nocomp\": true,\n        \"acknodelay\": false,\n"
    "        \"nodelay\": 1,\n        \"interval\": 40,\n        \"resend\": 2,\n"
    "        \"nc\": 1,\n        \"sockbuf\": 16777217,\n        \"smuxver\": 1,\n"
    "        \"smuxbuf\": 16777217,\n        \"streambuf\": 2097152,\n"
    "        \"keepalive\": 10,\n        \"pprof\":false,\n        \"quiet\":false,\n"
    "        \"tcp\":false\n}";

TEST(config_json_kcptun_examples)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], path[64];

    write_temp(path, sizeof(path), local_json);
    REQUIRE(path[0]);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "-c", path), 0);
    CHECK(strcmp(cfg.localaddr, ":2000") == 0);
    CHECK(strcmp(cfg.remoteaddr, "11.22.33.44:2000") == 0);
    CHECK(strcmp(cfg.key, "PASSWORD") == 0);
    CHECK(strcmp(cfg.crypt, "aes-128") == 0);
    CHECK(strcmp(cfg.mode, "fast3") == 0);
    CHECK_EQ(cfg.mtu, 1400);
    CHECK_EQ(cfg.sndwnd, 128);
    CHECK_EQ(cfg.rcvwnd, 1024);
    CHECK_EQ(cfg.dscp, 46);
    CHECK(cfg.nocomp);
    CHECK_EQ(cfg.sockbuf, 16777217);
    CHECK_EQ(cfg.smuxbuf, 16777217);
    CHECK_EQ(cfg.autoexpire_s, 1800);
    /* fast3 overrides the file's own nodelay/interval */
    CHECK_EQ(cfg.nodelay, 1);
    CHECK_EQ(cfg.interval_ms, 10);
    CHECK_EQ(cfg.resend, 2);
    CHECK_EQ(cfg.nc, 1);
    CHECK(strcmp(cfg.config_file, path) == 0);
    CHECK_EQ(cfg.warnings[0], '\0');
    unlink(path);

    write_temp(path, sizeof(path), server_json);
    REQUIRE(path[0]);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "-c", path), 0);
    CHECK(strcmp(cfg.listen, ":2000") == 0);
    CHECK(strcmp(cfg.target, "127.0.0.1:9999") == 0);
    CHECK_EQ(cfg.sndwnd, 2048);
    CHECK_EQ(cfg.rcvwnd, 2048);
    CHECK(!cfg.pprof && !cfg.tcp);
    CHECK_EQ(cfg.warnings[0], '\0');

    /* the server's file given to the client: its server keys are ignored with a warning */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-c", path), CONFIG_OK);
    CHECK(strstr(cfg.warnings, "\"listen\"") != NULL);
    CHECK(strstr(cfg.warnings, "\"target\"") != NULL);
    CHECK(strstr(cfg.warnings, "\"pprof\"") != NULL);
    CHECK(strcmp(cfg.localaddr, ":12948") == 0);
    unlink(path);
}

TEST(config_json_overrides_flags_and_keeps_absent)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], path[64];

    write_temp(path, sizeof(path),
               "{\"mtu\": 1400, \"MODE\": \"manual\", \"Interval\": 20, \"sndwnd\": null}");
    REQUIRE(path[0]);
    /* -c placed first still wins over the flags after it */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-c", path, "--mtu", "1300", "--sndwnd", "77",
                   "--rcvwnd", "99", "--mode", "fast2", "--nodelay", "1"),
             CONFIG_OK);
    CHECK_EQ(cfg.mtu, 1400);       /* JSON over flag */
    CHECK_EQ(cfg.sndwnd, 77);      /* null keeps the flag value */
    CHECK_EQ(cfg.rcvwnd, 99);      /* absent keeps the flag value */
    CHECK(strcmp(cfg.mode, "manual") == 0);
    CHECK_EQ(cfg.nodelay, 1);      /* manual: knobs from flags and JSON */
    CHECK_EQ(cfg.interval_ms, 20);
    CHECK_EQ(cfg.resend, 0);
    unlink(path);

    /* a named mode from the flags still overrides knobs from the file */
    write_temp(path, sizeof(path), "{\"nodelay\": 1, \"interval\": 77, \"resend\": 9}");
    REQUIRE(path[0]);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-c", path, "--mode", "normal"), CONFIG_OK);
    CHECK_EQ(cfg.nodelay, 0);
    CHECK_EQ(cfg.interval_ms, 40);
    CHECK_EQ(cfg.resend, 2);
    CHECK_EQ(cfg.nc, 1);
    unlink(path);

    /* duplicate keys: the last wins, as in Go */
    write_temp(path, sizeof(path), "{\"mtu\": 1000, \"mtu\": 1100, \"loglevel\": \"warn\"}");
    REQUIRE(path[0]);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-c", path), CONFIG_OK);
    CHECK_EQ(cfg.mtu, 1100);
    CHECK_EQ(cfg.loglevel, LOG_LEVEL_WARN);
    unlink(path);
}

TEST(config_json_errors_and_warnings)
{
    static const struct {
        const char *json;
        const char *culprit; /* NULL: accepted */
        const char *warning;
    } cases[] = {
        {"{\"mtu\": \"1400\"}", "\"mtu\": expected an integer, got a string", NULL},
        {"{\"mtu\": 1400.5}", "\"mtu\": expected an integer, got 1400.5", NULL},
        {"{\"mtu\": 1e300}", "\"mtu\"", NULL},
        {"{\"mtu\": 3000000000}", "\"mtu\"", NULL},
        {"{\"nocomp\": 1}", "\"nocomp\": expected true or false, got a number", NULL},
        {"{\"key\": true}", "\"key\": expected a string, got a boolean", NULL},
        {"{\"crypt\": [\"aes\"]}", "\"crypt\": expected a string, got an array", NULL},
        {"{\"loglevel\": \"loud\"}", "\"loglevel\"", NULL},
        {"{\"mtu\": 1400,, }", ":1:15: JSON syntax error near ' }'", NULL},
        {"{\n  \"mtu\": 1400,\n  \"sndwnd\": 12a\n}", ":3:15: JSON syntax error near 'a'", NULL},
        {"{\"mtu\": 1400} trailing", ":1:15: JSON syntax error near 'trailing'", NULL},
        {"", ":1:1: JSON syntax error: unexpected end of file", NULL},
        {"{\"mtu\": 1400", "JSON syntax error: unexpected end of file", NULL},
        {"[1]", "top level must be a JSON object, not an array", NULL},
        {"\"x\"", "not a string", NULL},
        {"{\"bogus\": 3, \"ratelimit\": 0}", NULL, "unknown key \"bogus\" ignored"},
        {"{\"ds\": 3}", NULL, "unknown key \"ds\""},
        {"{\"c\": \"x.json\"}", NULL, "unknown key \"c\""},
        {"{\"conn\": 3}", NULL, "\"conn\" is not a ktun-server setting"},
        {"{\"tcp\": false, \"pprof\": true}", NULL, "--pprof"},
    };
    struct config cfg;
    char err[CONFIG_ERR_MAX], path[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        write_temp(path, sizeof(path), cases[i].json);
        REQUIRE(path[0]);
        int rc = parse(&cfg, CONFIG_SERVER, err, "-c", path);
        if (cases[i].culprit) {
            if (rc != ERR_INVAL || !strstr(err, cases[i].culprit) || !strstr(err, path) ||
                !one_line(err))
                test_fail(__FILE__, __LINE__, "json %zu: rc %d err '%s'", i, rc, err);
        } else if (rc != CONFIG_OK || !strstr(cfg.warnings, cases[i].warning)) {
            test_fail(__FILE__, __LINE__, "json %zu: rc %d err '%s' warnings '%s'", i, rc, err,
                      cfg.warnings);
        }
        unlink(path);
    }
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-c", "/nonexistent/ktun.json"), ERR_INVAL);
    CHECK(strstr(err, "-c /nonexistent/ktun.json") != NULL);
    CHECK(one_line(err));
    /* NUL bytes are refused rather than silently cutting the file short */
    snprintf(path, sizeof(path), "/tmp/ktun-test-config-XXXXXX");
    int fd = mkstemp(path);
    REQUIRE(fd != -1);
    CHECK_EQ(write(fd, "{}\0{}", 5), 5);
    close(fd);
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "-c", path), ERR_INVAL);
    CHECK(strstr(err, "NUL") != NULL);
    unlink(path);
}

TEST(config_json_direct_load)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], path[64];
    config_defaults(&cfg, CONFIG_CLIENT);
    write_temp(path, sizeof(path), "{\"mode\": \"fast2\", \"nodelay\": 0, \"interval\": 99}");
    REQUIRE(path[0]);
    CHECK_EQ(config_load_json(&cfg, path, err, sizeof(err)), 0);
    /* loading alone does not apply the mode */
    CHECK_EQ(cfg.interval_ms, 99);
    CHECK_EQ(config_apply_mode(&cfg, err, sizeof(err)), 0);
    CHECK_EQ(cfg.nodelay, 1);
    CHECK_EQ(cfg.interval_ms, 20);
    unlink(path);
}

TEST(config_mode_table)
{
    static const struct {
        const char *mode;
        int nodelay, interval, resend, nc;
    } table[] = {
        {"normal", 0, 40, 2, 1}, {"fast", 0, 30, 2, 1},    {"fast2", 1, 20, 2, 1},
        {"fast3", 1, 10, 2, 1},  {"manual", 1, 15, 5, 0},
    };
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
            int rc = parse(&cfg, (enum config_role)r, err, "--nodelay", "1", "--interval", "15",
                           "--resend", "5", "--nc", "0", "-mode", table[i].mode);
            CHECK_EQ(rc, CONFIG_OK);
            if (cfg.nodelay != table[i].nodelay || cfg.interval_ms != table[i].interval ||
                cfg.resend != table[i].resend || cfg.nc != table[i].nc)
                test_fail(__FILE__, __LINE__, "mode %s: %d %d %d %d", table[i].mode,
                          cfg.nodelay, cfg.interval_ms, cfg.resend, cfg.nc);
        }
    }
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mode", "fsat"), ERR_INVAL);
    CHECK(strstr(err, "--mode") && strstr(err, "fsat") && one_line(err));
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mode", "Fast"), ERR_INVAL);
    /* manual mode defaults are kcptun's hidden-flag defaults */
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "--mode", "manual"), CONFIG_OK);
    CHECK_EQ(cfg.nodelay, 0);
    CHECK_EQ(cfg.interval_ms, 50);
    CHECK_EQ(cfg.resend, 0);
    CHECK_EQ(cfg.nc, 0);
    config_defaults(&cfg, CONFIG_SERVER);
    strcpy(cfg.mode, "bogus");
    CHECK_EQ(config_apply_mode(&cfg, err, sizeof(err)), ERR_INVAL);
    CHECK_EQ(config_validate(&cfg, err, sizeof(err)), ERR_INVAL);
    CHECK(strstr(err, "--mode") != NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation */

TEST(config_validation_names_the_culprit)
{
    static const struct {
        int role; /* 0 client, 1 server */
        const char *a, *b, *c, *d;
        const char *culprit;
    } cases[] = {
        {0, "--mtu", "49", NULL, NULL, "--mtu"},
        {0, "--mtu", "1501", NULL, NULL, "--mtu"},
        {1, "--sndwnd", "0", NULL, NULL, "--sndwnd"},
        {1, "--rcvwnd", "0", NULL, NULL, "--rcvwnd"},
        {1, "--rcvwnd", "65536", NULL, NULL, "--rcvwnd"},
        {0, "--ds", "256", NULL, NULL, "--datashard"},
        {0, "--ps", "-1", NULL, NULL, "--parityshard"},
        {0, "--ds", "200", "--ps", "57", "--datashard/--parityshard"},
        {1, "--smuxver", "3", NULL, NULL, "--smuxver"},
        {1, "--smuxver", "0", NULL, NULL, "--smuxver"},
        {0, "--keepalive", "31", NULL, NULL, "--keepalive"},
        {0, "--keepalive", "0", NULL, NULL, "--keepalive"},
        {1, "--streambuf", "4194305", NULL, NULL, "--streambuf"},
        {1, "--smuxbuf", "1000", NULL, NULL, "--streambuf"},
        {1, "--smuxbuf", "0", NULL, NULL, "--smuxbuf"},
        {0, "--conn", "0", NULL, NULL, "--conn"},
        {0, "--conn", "65536", NULL, NULL, "--conn"},
        {0, "--autoexpire", "-1", NULL, NULL, "--autoexpire"},
        {0, "--scavengettl", "-1", NULL, NULL, "--scavengettl"},
        {1, "--dscp", "64", NULL, NULL, "--dscp"},
        {1, "--dscp", "-1", NULL, NULL, "--dscp"},
        {1, "--sockbuf", "0", NULL, NULL, "--sockbuf"},
        {1, "--crypt", "aes-256", NULL, NULL, "--crypt"},
        {1, "--crypt", "AES", NULL, NULL, "--crypt"},
        {0, "--mode", "manual", "--interval", "5", "--interval"},
        {0, "--mode", "manual", "--interval", "5001", "--interval"},
        {0, "--mode", "manual", "--nodelay", "2", "--nodelay"},
        {0, "--mode", "manual", "--nc", "2", "--nc"},
        {0, "--mode", "manual", "--resend", "-1", "--resend"},
        {1, "--snmplog", "x.csv", "--snmpperiod", "0", "--snmpperiod"},
        {1, "--maxsessions", "-1", NULL, NULL, "--maxsessions"},
        {0, "--maxstreams", "0", NULL, NULL, "--maxstreams"},
        {0, "--bufbudget", "1000", NULL, NULL, "--bufbudget"},
        {0, "-l", "12948", NULL, NULL, "--localaddr"},
        {0, "-r", "vps", NULL, NULL, "--remoteaddr"},
        {0, "-r", "::1:29900", NULL, NULL, "--remoteaddr"},
        {0, "-r", "1.2.3.4:0", NULL, NULL, "--remoteaddr"},
        {0, "-r", "1.2.3.4:65536", NULL, NULL, "--remoteaddr"},
        {0, "-r", "", NULL, NULL, "--remoteaddr"},
        {1, "-l", "[::1]29900", NULL, NULL, "--listen"},
        {1, "-t", "127.0.0.1", NULL, NULL, "--target"},
        {1, "-t", "127.0.0.1:0", NULL, NULL, "--target"},
    };
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        enum config_role role = cases[i].role ? CONFIG_SERVER : CONFIG_CLIENT;
        int rc = parse_env(&cfg, role, err, NULL, cases[i].a, cases[i].b, cases[i].c,
                           cases[i].d, NULL);
        if (rc == CONFIG_OK)
            rc = config_validate(&cfg, err, sizeof(err));
        if (rc != ERR_INVAL || !strstr(err, cases[i].culprit) || !one_line(err))
            test_fail(__FILE__, __LINE__, "case %zu (%s %s): rc %d err '%s'", i, cases[i].a,
                      cases[i].b ? cases[i].b : "", rc, err);
    }
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--keepalive", "31"), ERR_INVAL);
    CHECK(strstr(err, "kcptun") != NULL); /* says why */
}

TEST(config_validation_accepts_the_edges)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--mtu", "50", "--keepalive", "30",
                         "--ds", "128", "--ps", "128", "--dscp", "63", "--conn", "65535"),
             0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--mtu", "1500", "--ds", "0", "--ps", "0",
                         "--sndwnd", "65535", "--rcvwnd", "1", "--smuxver", "2"),
             0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--mode", "manual", "--interval", "10",
                         "--nodelay", "1", "--nc", "1", "--resend", "0"),
             0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--streambuf", "4194304", "--tcp=false",
                         "--snmpperiod", "0"),
             0);
    for (int i = 0; i < 14; i++) {
        static const char *const methods[] = {
            "aes", "aes-128", "aes-192", "salsa20", "blowfish", "twofish", "cast5",
            "3des", "tea", "xtea", "xor", "sm4", "none", "xsalsa20-poly1305",
        };
        CHECK(config_crypt_is_known(methods[i]));
        CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--crypt", methods[i]), 0);
    }
    CHECK(!config_crypt_is_known(""));
    /* addresses of every shape */
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "-l", "[::1]:0", "-r", "[fe80::1%eth0]:29900"),
             0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "-l", "0.0.0.0:12948", "-r", ":29900"), 0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "-l", "[::]:29900", "-t", "localhost:ssh"),
             0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "-t", "/run/target.sock"), 0);
    CHECK(config_target_is_unix(&cfg));
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "-t", "./target.sock"), 0);
    CHECK(config_target_is_unix(&cfg));
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "-t", "[::1]:22"), 0);
    CHECK(!config_target_is_unix(&cfg));
    char longpath[200] = "/";
    memset(longpath + 1, 'p', 150);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "-t", longpath), ERR_INVAL);
    CHECK(strstr(err, "--target") != NULL);
}

TEST(config_parse_addr_shapes)
{
    static const struct {
        const char *in, *host, *port;
    } good[] = {
        {"127.0.0.1:29900", "127.0.0.1", "29900"},
        {":29900", "", "29900"},
        {"[::1]:29900", "::1", "29900"},
        {"[::]:0", "::", "0"},
        {"[fe80::1%eth0]:80", "fe80::1%eth0", "80"},
        {"vps:29900", "vps", "29900"},
        {"example.com:http", "example.com", "http"},
        {"host:065535", "host", "065535"},
    };
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "empty"},
        {"127.0.0.1", "missing port"},
        {"127.0.0.1:", "missing port"},
        {"::1:29900", "too many colons"},
        {"[::1]", "missing port after ']'"},
        {"[::1:29900", "missing ']'"},
        {"[]:80", "empty host"},
        {"[::1]x:80", "missing port after ']'"},
        {"host:65536", "out of range"},
        {"host:123456", "out of range"},
        {"host:-1", "bad port"},
        {"host:0x50", "bad port"},
        {"ho st:80", "bad character"},
        {"a/b:80", "bad character"},
    };
    char host[64], port[16], err[CONFIG_ERR_MAX];
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int rc = config_parse_addr(good[i].in, host, sizeof(host), port, sizeof(port), err,
                                   sizeof(err));
        if (rc != 0 || strcmp(host, good[i].host) != 0 || strcmp(port, good[i].port) != 0)
            test_fail(__FILE__, __LINE__, "'%s': rc %d host '%s' port '%s'", good[i].in, rc,
                      host, port);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = config_parse_addr(bad[i].in, host, sizeof(host), port, sizeof(port), err,
                                   sizeof(err));
        if (rc != ERR_INVAL || !strstr(err, bad[i].why) || !one_line(err))
            test_fail(__FILE__, __LINE__, "'%s': rc %d err '%s'", bad[i].in, rc, err);
    }
    CHECK_EQ(config_parse_addr(NULL, host, sizeof(host), port, sizeof(port), NULL, 0), ERR_INVAL);
    CHECK_EQ(config_parse_addr("averyveryverylonghostname:1", host, 8, port, sizeof(port), err,
                               sizeof(err)),
             ERR_INVAL);
    CHECK(strstr(err, "too long") != NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* config_setup: what main() calls */

/* Runs config_setup with stdout and stderr sent to /dev/null. */
static int setup_quiet(struct config *cfg, enum config_role role, int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int out = dup(1), errfd = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    int rc = config_setup(cfg, role, argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(out, 1);
    dup2(errfd, 2);
    close(out);
    close(errfd);
    close(null);
    return rc;
}

TEST(config_setup_for_main)
{
    struct config cfg;
    char logpath[64], buf[8192];
    write_temp(logpath, sizeof(logpath), "");
    REQUIRE(logpath[0]);

    char a0[] = "ktun-server", a1[] = "--log", a3[] = "--key", a4[] = "topsecret",
         a5[] = "--quiet", a6[] = "--pprof", a7[] = "--loglevel", a8[] = "warn";
    char *argv[] = {a0, a1, logpath, a3, a4, a5, a6, a7, a8, NULL};
    unsetenv("KCPTUN_KEY");
    CHECK_EQ(setup_quiet(&cfg, CONFIG_SERVER, 6, argv), CONFIG_RUN);
    CHECK(!log_streams_on);
    CHECK_EQ(log_threshold, LOG_LEVEL_INFO);
    log_close();
    FILE *f = fopen(logpath, "r");
    REQUIRE(f != NULL);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    CHECK(strstr(buf, "[info] version: ktun-server") != NULL);
    CHECK(strstr(buf, "listening on: :29900") != NULL);
    CHECK(strstr(buf, "nodelay parameters: 0 30 2 1") != NULL);
    CHECK(strstr(buf, "topsecret") == NULL); /* never the key */

    /* --pprof adds a warning line; --loglevel warn hides the info summary */
    CHECK_EQ(setup_quiet(&cfg, CONFIG_SERVER, 9, argv), CONFIG_RUN);
    CHECK_EQ(log_threshold, LOG_LEVEL_WARN);
    log_close();
    log_set_level(LOG_LEVEL_INFO);
    log_set_quiet(false);
    f = fopen(logpath, "r");
    REQUIRE(f != NULL);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    CHECK(strstr(buf, "[warn] config: --pprof") != NULL);
    const char *last = strstr(buf, "[warn]");
    CHECK(last != NULL && strstr(last, "[info]") == NULL);
    unlink(logpath);

    char b1[] = "--version", b2[] = "--mtu", b3[] = "abc", b4[] = "-h";
    char *vargv[] = {a0, b1, NULL};
    CHECK_EQ(setup_quiet(&cfg, CONFIG_SERVER, 2, vargv), 0);
    char *hargv[] = {a0, b4, NULL};
    CHECK_EQ(setup_quiet(&cfg, CONFIG_SERVER, 2, hargv), 0);
    char *bargv[] = {a0, b2, b3, NULL};
    CHECK_EQ(setup_quiet(&cfg, CONFIG_SERVER, 3, bargv), 2);
    char c1[] = "--log", c2[] = "/nonexistent-dir/x.log";
    char *largv[] = {a0, c1, c2, NULL};
    CHECK_EQ(setup_quiet(&cfg, CONFIG_SERVER, 3, largv), 2);
    CHECK_EQ(log_fd(), 2);
}

TEST(config_example_files_spell_out_the_defaults)
{
    static const char *const files[] = {"examples/client.json", "examples/server.json"};
    struct config got, want;
    char err[CONFIG_ERR_MAX];

    for (int r = 0; r < CONFIG_ROLE_COUNT; r++) {
        REQUIRE(access(files[r], R_OK) == 0); /* tests run from the repository root */
        CHECK_EQ(parse_valid(&got, (enum config_role)r, err, "-c", files[r]), 0);
        CHECK_EQ(got.warnings[0], '\0');
        /* every value but the key and the remote address is the default */
        REQUIRE(parse0(&want, (enum config_role)r, err) == CONFIG_OK);
        strcpy(want.key, "CHANGE-ME");
        if (r == CONFIG_CLIENT) {
            strcpy(want.remoteaddr, "vps.example.com:29900");
            want.smuxver_set = want.nocomp_set = true; /* the server's file leaves them out */
            want.localaddr_set = true; /* the file names -l */
        }
        strcpy(want.config_file, files[r]);
        memset(want.warnings, 0, sizeof(want.warnings));
        memset(got.warnings, 0, sizeof(got.warnings));
        CHECK_MEM(&got, &want, sizeof(got));
    }
}

TEST(config_newer_kcptun_crypt_and_qpp)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], path[64];

    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--crypt", "aes-128-gcm"), 0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--crypt", "null"), 0);
    CHECK(!cfg.qpp);
    CHECK_EQ(cfg.qppcount, 61);
    CHECK(strcmp(cfg.qppvariant, "C") == 0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--QPP", "--QPPCount", "7", "--QPPVariant",
                         "a"),
             0);
    CHECK(cfg.qpp);
    CHECK_EQ(cfg.qppcount, 7);
    /* Flag names are case-sensitive, as in kcptun. */
    CHECK_EQ(parse(&cfg, CONFIG_SERVER, err, "--qpp"), ERR_INVAL);
    CHECK(one_line(err));
    /* Refused: a count kcptun would truncate or divide by zero with, an unknown variant. */
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--QPP", "--QPPCount", "0"), ERR_INVAL);
    CHECK(strstr(err, "--QPPCount") != NULL);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--QPP", "--QPPCount", "65536"), ERR_INVAL);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--QPPVariant", "D"), ERR_INVAL);
    CHECK(strstr(err, "--QPPVariant") != NULL && one_line(err));
    /* Without --QPP the count is not looked at (kcptun checks it only with QPP on). */
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--QPPCount", "0"), 0);

    /* JSON keys of newer kcptun: qpp, qpp-count; ours: qpp-variant. */
    write_temp(path, sizeof(path),
               "{\"key\": \"k\", \"crypt\": \"aes-128-gcm\", \"qpp\": true, \"qpp-count\": 13, "
               "\"qpp-variant\": \"B\"}");
    REQUIRE(path[0]);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "-c", path), 0);
    CHECK(strcmp(cfg.crypt, "aes-128-gcm") == 0);
    CHECK(cfg.qpp);
    CHECK_EQ(cfg.qppcount, 13);
    CHECK(strcmp(cfg.qppvariant, "B") == 0);
    CHECK_EQ(cfg.warnings[0], '\0');
    unlink(path);
    write_temp(path, sizeof(path), "{\"qpp-count\": \"x\"}");
    REQUIRE(path[0]);
    CHECK_EQ(parse(&cfg, CONFIG_CLIENT, err, "-c", path), ERR_INVAL);
    CHECK(strstr(err, "qpp-count") != NULL);
    unlink(path);
}

TEST(config_tcp_and_tcp_auto)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--tcp", "--mtu", "1200"), 0);
    CHECK(cfg.tcp && !cfg.tcp_auto);
    CHECK_EQ(cfg.mtu, 1200);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--tcp", "auto", "--mtu", "1200"), 0);
    CHECK(cfg.tcp && cfg.tcp_auto);
    CHECK_EQ(cfg.mtu, 1200); /* the flags after "auto" are still read */
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "-tcp=auto"), 0);
    CHECK(cfg.tcp && cfg.tcp_auto);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--tcp=false"), 0);
    CHECK(!cfg.tcp && !cfg.tcp_auto);
    /* anything else after --tcp is still a stray argument, and a bad value says so */
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--tcp", "yes"), ERR_INVAL);
    CHECK(one_line(err));
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--tcp=sometimes"), ERR_INVAL);
    CHECK(strstr(err, "--tcp") != NULL);
}

TEST(config_newer_kcptun_framesize_closewait_ratelimit)
{
    struct config cfg;
    char err[CONFIG_ERR_MAX], path[64];

    CHECK_EQ(parse_valid(&cfg, CONFIG_SERVER, err, "--framesize", "8192", "--closewait", "30",
                         "--ratelimit", "1000000"),
             0);
    CHECK_EQ(cfg.framesize, 8192);
    CHECK_EQ(cfg.closewait_s, 30);
    CHECK_EQ(cfg.ratelimit, 1000000);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--framesize", "0"), ERR_INVAL);
    CHECK(strstr(err, "--framesize") != NULL && one_line(err));
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--framesize", "65536"), ERR_INVAL);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--closewait", "-2"), ERR_INVAL);
    CHECK(strstr(err, "--closewait") != NULL && one_line(err));
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--key", "k"), 0);
    CHECK_EQ(cfg.closewait_s, -1); /* automatic: held only for a v2 peer that half-closed */
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--closewait", "0"), 0);
    CHECK_EQ(cfg.closewait_s, 0);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--ratelimit", "-1"), ERR_INVAL);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "--ratelimit", "5", "--nopace"), ERR_INVAL);
    CHECK(strstr(err, "--nopace") != NULL);
    write_temp(path, sizeof(path),
               "{\"key\": \"k\", \"framesize\": 4096, \"closewait\": 5, \"ratelimit\": 777}");
    REQUIRE(path[0]);
    CHECK_EQ(parse_valid(&cfg, CONFIG_CLIENT, err, "-c", path), 0);
    CHECK_EQ(cfg.framesize, 4096);
    CHECK_EQ(cfg.closewait_s, 5);
    CHECK_EQ(cfg.ratelimit, 777);
    CHECK_EQ(cfg.warnings[0], '\0');
    unlink(path);
}
