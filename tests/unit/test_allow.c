/* SPDX-License-Identifier: MIT */
/* The server's allow-list: grammar, refusals, address, CIDR, name and port matching. */
#include "tests/test.h"

#include "common/allow.h"
#include "common/err.h"

#include <string.h>

static const uint8_t lo4[4] = {127, 0, 0, 1};

static bool ip(const char *s, uint8_t out[16], size_t *n)
{
    return allow_parse_ip(s, strlen(s), out, n);
}

/* Parses |spec| into a fresh list; the caller frees it. */
static int list_of(struct allow_list *l, const char *spec, char *err)
{
    memset(l, 0, sizeof(*l));
    return allow_add(l, spec, err, 256);
}

static bool match_ip(const struct allow_list *l, const char *addr, uint16_t port)
{
    uint8_t a[16];
    size_t n;
    if (!ip(addr, a, &n))
        return false;
    return allow_match(l, a, n, port);
}

static bool match_name(const struct allow_list *l, const char *name, uint16_t port)
{
    return allow_match_name(l, name, strlen(name), port);
}

TEST(allow_ip_literals)
{
    uint8_t a[16];
    size_t n;
    CHECK(ip("127.0.0.1", a, &n) && n == 4 && memcmp(a, lo4, 4) == 0);
    CHECK(ip("0.0.0.0", a, &n) && n == 4);
    CHECK(ip("255.255.255.255", a, &n) && n == 4 && a[3] == 255);
    CHECK(!ip("256.0.0.1", a, &n));
    CHECK(!ip("1.2.3", a, &n));
    CHECK(!ip("1.2.3.4.5", a, &n));
    CHECK(!ip("01.2.3.4", a, &n));
    CHECK(!ip("1..3.4", a, &n));
    CHECK(!ip("", a, &n));
    CHECK(ip("::1", a, &n) && n == 16 && a[15] == 1 && a[0] == 0);
    CHECK(ip("::", a, &n) && n == 16 && a[15] == 0);
    CHECK(ip("2001:db8::", a, &n) && a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d &&
          a[3] == 0xb8 && a[15] == 0);
    CHECK(ip("1:2:3:4:5:6:7:8", a, &n) && a[14] == 0 && a[15] == 8);
    CHECK(ip("::ffff:10.1.2.3", a, &n) && n == 16 && a[10] == 0xff && a[12] == 10 &&
          a[15] == 3);
    CHECK(ip("fe80::1:2", a, &n) && a[0] == 0xfe && a[13] == 1 && a[15] == 2);
    CHECK(!ip("1:2:3:4:5:6:7", a, &n));
    CHECK(!ip("1:2:3:4:5:6:7:8:9", a, &n));
    CHECK(!ip("1::2::3", a, &n));
    CHECK(!ip(":1", a, &n));
    CHECK(!ip("1:", a, &n));
    CHECK(!ip("12345::", a, &n));
    CHECK(!ip("fe80::1%eth0", a, &n));
    CHECK(!ip("::g", a, &n));
}

TEST(allow_grammar_accepts)
{
    const char *good[] = {
        "127.0.0.1:22", "10.0.0.0/8:1-1024", "[2001:db8::/32]:443", "[2001:db8::]/32:443",
        "db.internal:5432", "*.corp.example:*", "*:53", "[::1]:8000-8100", "0.0.0.0/0:*",
        "Example.COM.:80", "host-1_a:65535", "1host.example:1", "[::ffff:10.0.0.0/104]:1",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct allow_entry e;
        char err[256] = "";
        int rc = allow_parse_entry(good[i], strlen(good[i]), &e, err, sizeof(err));
        if (rc != 0)
            test_fail(__FILE__, __LINE__, "'%s' refused: %s", good[i], err);
    }
}

TEST(allow_grammar_refuses)
{
    const char *bad[] = {
        "",             "127.0.0.1",      "127.0.0.1:",     "127.0.0.1:0",   "1.2.3.4:65536",
        "1.2.3.4:2-1",  "1.2.3.4:-5",     "1.2.3.4:5-",     "1.2.3.4:x",     "::1:22",
        "[::1:22",      "[::1]",          "[::1]22",        "[1.2.3.4]:5",   "10.1.2.3/8:1",
        "10.0.0.0/33:1", "[::/129]:1",    "1.2.3.400:5",    "a..b:5",        ".a:5",
        "a b:5",        "*x:5",           "*.:5",           "**:5",          "[fe80::1%e]:5",
        "1.2.3.4/:5",   "host/8:5",       "1.2.3.4:1-2-3",  "1.2.3.4:+5",    "-:5",
        "1.2.3.4:000001",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct allow_entry e;
        char err[256] = "";
        int rc = allow_parse_entry(bad[i], strlen(bad[i]), &e, err, sizeof(err));
        if (rc != ERR_INVAL)
            test_fail(__FILE__, __LINE__, "'%s' accepted", bad[i]);
        else if (!err[0] || strchr(err, '\n'))
            test_fail(__FILE__, __LINE__, "'%s': no one-line reason", bad[i]);
    }
    /* a name of 63-byte labels up to 253 bytes is fine, 254 is not; a 64-byte label is not */
    char name[300];
    memset(name, 'a', sizeof(name));
    for (int i = 63; i < 253; i += 64)
        name[i] = '.';
    memcpy(name + 253, ":1", 3);
    struct allow_entry e;
    CHECK_EQ(allow_parse_entry(name, strlen(name), &e, NULL, 0), 0);
    memset(name, 'a', sizeof(name));
    for (int i = 63; i < 254; i += 64)
        name[i] = '.';
    memcpy(name + 254, ":1", 3);
    CHECK_EQ(allow_parse_entry(name, strlen(name), &e, NULL, 0), ERR_INVAL);
    memset(name, 'a', 64);
    memcpy(name + 64, ":1", 3);
    CHECK_EQ(allow_parse_entry(name, strlen(name), &e, NULL, 0), ERR_INVAL);
}

TEST(allow_add_lists_and_errors)
{
    struct allow_list l;
    char err[256];
    CHECK_EQ(list_of(&l, "1.2.3.4:5, a.example:6\t*:53", err), 0);
    CHECK_EQ(l.n, 3);
    /* a bad entry appends nothing and names the entry */
    CHECK_EQ(allow_add(&l, "5.6.7.8:9,bad", err, sizeof(err)), ERR_INVAL);
    CHECK_EQ(l.n, 3);
    CHECK(strstr(err, "bad") != NULL);
    CHECK_EQ(allow_add(&l, " , ", err, sizeof(err)), ERR_INVAL);
    CHECK_EQ(l.n, 3);
    allow_free(&l);
    CHECK_EQ(l.n, 0);
    /* the cap */
    memset(&l, 0, sizeof(l));
    for (int i = 0; i < ALLOW_ENTRIES_MAX; i++)
        REQUIRE(allow_add_addr(&l, lo4, 4, (uint16_t)(i + 1)) == 0);
    CHECK_EQ(allow_add(&l, "*:1", err, sizeof(err)), ERR_LIMIT);
    CHECK_EQ(allow_add_addr(&l, lo4, 4, 1), ERR_LIMIT);
    allow_free(&l);
    CHECK_EQ(allow_add_addr(&l, lo4, 5, 1), ERR_INVAL);
    CHECK_EQ(allow_add_addr(&l, lo4, 4, 0), ERR_INVAL);
}

TEST(allow_empty_list_refuses_everything)
{
    struct allow_list l = {0};
    CHECK(!match_ip(&l, "127.0.0.1", 22));
    CHECK(!match_name(&l, "localhost", 22));
    CHECK(!allow_port_possible(&l, 22));
}

TEST(allow_match_addresses_and_blocks)
{
    struct allow_list l;
    char err[256];
    REQUIRE(list_of(&l, "127.0.0.1:22 10.0.0.0/8:1-1024 [2001:db8::/32]:443 [::1]:8000-8100",
                    err) == 0);
    CHECK(match_ip(&l, "127.0.0.1", 22));
    CHECK(!match_ip(&l, "127.0.0.1", 23));
    CHECK(!match_ip(&l, "127.0.0.2", 22));
    CHECK(match_ip(&l, "10.0.0.0", 1));
    CHECK(match_ip(&l, "10.255.255.255", 1024));
    CHECK(!match_ip(&l, "10.255.255.255", 1025));
    CHECK(!match_ip(&l, "11.0.0.0", 80));
    CHECK(!match_ip(&l, "9.255.255.255", 80));
    CHECK(match_ip(&l, "::ffff:10.1.1.1", 80)); /* IPv4-mapped matches as IPv4 */
    CHECK(match_ip(&l, "::ffff:127.0.0.1", 22));
    CHECK(match_ip(&l, "2001:db8:ffff::1", 443));
    CHECK(!match_ip(&l, "2001:db9::1", 443));
    CHECK(!match_ip(&l, "2001:db8::1", 444));
    CHECK(match_ip(&l, "::1", 8050));
    CHECK(!match_ip(&l, "::1", 22));
    CHECK(!match_ip(&l, "::2", 8050));
    CHECK(!match_ip(&l, "::a00:1", 80)); /* 10.0.0.1 IPv4-compatible is not IPv4 */
    /* port 0 never matches */
    CHECK(!match_ip(&l, "10.0.0.1", 0));
    /* names: only as address literals */
    CHECK(match_name(&l, "10.1.2.3", 80));
    CHECK(!match_name(&l, "localhost", 22));
    CHECK(allow_port_possible(&l, 1024));
    CHECK(allow_port_possible(&l, 8100));
    CHECK(!allow_port_possible(&l, 8101));
    uint8_t junk[5] = {0};
    CHECK(!allow_match(&l, junk, 5, 22));
    allow_free(&l);
}

TEST(allow_match_odd_prefixes)
{
    struct allow_list l;
    char err[256];
    REQUIRE(list_of(&l, "192.168.4.0/22:1 [fe80::/10]:2 0.0.0.0/0:3 [::/0]:4", err) == 0);
    CHECK(match_ip(&l, "192.168.7.255", 1));
    CHECK(!match_ip(&l, "192.168.8.0", 1));
    CHECK(!match_ip(&l, "192.168.3.255", 1));
    CHECK(match_ip(&l, "febf::1", 2));
    CHECK(!match_ip(&l, "fec0::1", 2));
    CHECK(match_ip(&l, "1.2.3.4", 3));
    CHECK(!match_ip(&l, "::2", 3)); /* 0.0.0.0/0 is IPv4 only */
    CHECK(match_ip(&l, "::2", 4));
    CHECK(match_ip(&l, "1.2.3.4", 4)); /* ::/0 covers the IPv4-mapped range too */
    allow_free(&l);
}

TEST(allow_match_names)
{
    struct allow_list l;
    char err[256];
    REQUIRE(list_of(&l, "db.internal:5432 *.corp.example:* Example.COM.:80", err) == 0);
    CHECK(match_name(&l, "db.internal", 5432));
    CHECK(match_name(&l, "DB.Internal.", 5432));
    CHECK(!match_name(&l, "db.internal", 5433));
    CHECK(!match_name(&l, "xdb.internal", 5432));
    CHECK(!match_name(&l, "db.internal.evil", 5432));
    CHECK(!match_name(&l, "a.db.internal", 5432));
    CHECK(match_name(&l, "a.corp.example", 1));
    CHECK(match_name(&l, "x.y.CORP.example", 65535));
    CHECK(!match_name(&l, "corp.example", 1)); /* "*." does not take the name itself */
    CHECK(!match_name(&l, "acorp.example", 1));
    CHECK(match_name(&l, "example.com", 80));
    CHECK(!match_name(&l, "example.com", 443));
    CHECK(!match_name(&l, "", 80));
    CHECK(!match_name(&l, ".", 80));
    /* names never match address entries, addresses never match names */
    CHECK(!match_ip(&l, "127.0.0.1", 80));
    allow_free(&l);
    REQUIRE(list_of(&l, "*:53", err) == 0);
    CHECK(match_name(&l, "anything.example", 53));
    CHECK(match_ip(&l, "::1", 53));
    CHECK(match_ip(&l, "8.8.8.8", 53));
    CHECK(!match_name(&l, "anything.example", 54));
    allow_free(&l);
}

TEST(allow_entry_str_round_trips)
{
    const char *in[] = {"127.0.0.1:22", "10.0.0.0/8:1-1024", "*:*", "*.corp.example:53",
                        "db.internal:5432", "[2001:db8::/32]:443", "[::1]:8000-8100"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
        struct allow_entry a, b;
        char buf[300];
        REQUIRE(allow_parse_entry(in[i], strlen(in[i]), &a, NULL, 0) == 0);
        allow_entry_str(&a, buf, sizeof(buf));
        if (allow_parse_entry(buf, strlen(buf), &b, NULL, 0) != 0 || memcmp(&a, &b, sizeof(a)))
            test_fail(__FILE__, __LINE__, "'%s' printed as '%s' does not read back", in[i], buf);
    }
    struct allow_entry e;
    char buf[300];
    REQUIRE(allow_parse_entry("10.0.0.0/8:1-1024", 17, &e, NULL, 0) == 0);
    CHECK(strcmp(allow_entry_str(&e, buf, sizeof(buf)), "10.0.0.0/8:1-1024") == 0);
}

#include "common/config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Parses the NULL-terminated arguments after |err| as |role|'s command line and validates;
 * returns the first failing status. */
static int args(struct config *cfg, enum config_role role, char *err, ...)
{
    char store[8][512];
    char *argv[9];
    int argc = 0;
    va_list ap;
    va_start(ap, err);
    for (const char *a; argc < 8 && (a = va_arg(ap, const char *));) {
        snprintf(store[argc], sizeof(store[argc]), "%s", a);
        argv[argc] = store[argc];
        argc++;
    }
    va_end(ap);
    argv[argc] = NULL;
    config_defaults(cfg, role);
    int rc = config_parse_args(cfg, argc, argv, err, CONFIG_ERR_MAX);
    if (rc == CONFIG_OK)
        rc = config_validate(cfg, err, CONFIG_ERR_MAX);
    return rc;
}

TEST(allow_config_flags)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    REQUIRE(cfg);
    char err[CONFIG_ERR_MAX];
    CHECK_EQ(args(cfg, CONFIG_SERVER, err, "ktun-server", "--allow", "10.0.0.0/8:1-1024",
                  "-allow=*:53", "--allow", "db.internal:5432,[::1]:80", NULL), 0);
    CHECK(strcmp(cfg->allow, "10.0.0.0/8:1-1024\n*:53\ndb.internal:5432,[::1]:80\n") == 0);
    struct allow_list l = {0};
    CHECK_EQ(config_allow_list(cfg, &l, err, sizeof(err)), 0);
    CHECK_EQ(l.n, 4);
    CHECK(match_name(&l, "DB.internal", 5432));
    CHECK(!match_ip(&l, "127.0.0.1", 12948)); /* -t is the server's to add */
    allow_free(&l);
    /* no --allow: nothing listed */
    CHECK_EQ(args(cfg, CONFIG_SERVER, err, "ktun-server", NULL), 0);
    CHECK(cfg->allow[0] == '\0');
    /* a bad entry is a configuration error naming --allow */
    CHECK_EQ(args(cfg, CONFIG_SERVER, err, "ktun-server", "--allow", "10.1.2.3/8:22", NULL),
             ERR_INVAL);
    CHECK(strncmp(err, "--allow: ", 9) == 0 && strstr(err, "10.1.2.3/8") != NULL);
    CHECK_EQ(args(cfg, CONFIG_SERVER, err, "ktun-server", "--allow", "", NULL), ERR_INVAL);
    /* the client has no --allow */
    CHECK_EQ(args(cfg, CONFIG_CLIENT, err, "ktun-client", "--allow", "*:1", NULL), ERR_INVAL);
    free(cfg);
}

TEST(allow_config_json)
{
    struct config *cfg = calloc(1, sizeof(*cfg));
    REQUIRE(cfg);
    char err[CONFIG_ERR_MAX], path[] = "/tmp/ktun-allow-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    REQUIRE(f);
    fputs("{\"allow\": [\"*.corp.example:*\", \"[2001:db8::]/32:443\"]}", f);
    fclose(f);
    /* the file's list replaces the command line's */
#define RUN() args(cfg, CONFIG_SERVER, err, "ktun-server", "--allow", "1.2.3.4:5", "-c", path, NULL)
    CHECK_EQ(RUN(), 0);
    CHECK(strcmp(cfg->allow, "*.corp.example:*\n[2001:db8::]/32:443\n") == 0);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"allow\": \"1.2.3.4:5\"}", f);
    fclose(f);
    CHECK_EQ(RUN(), 0);
    CHECK(strcmp(cfg->allow, "1.2.3.4:5\n") == 0);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"allow\": [\"*:53\", 7]}", f);
    fclose(f);
    CHECK_EQ(RUN(), ERR_INVAL);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("{\"allow\": \"*:0\"}", f);
    fclose(f);
    CHECK_EQ(RUN(), ERR_INVAL);
    CHECK(strstr(err, "--allow") != NULL);
#undef RUN
    unlink(path);
    free(cfg);
}
