/* SPDX-License-Identifier: MIT */
/* Tests for the shell logger: format, level filter, quiet category, file output and reopen. */
#include "common/err.h"
#include "common/log.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A fresh temporary path (the file itself is removed so log_open creates it). */
static void temp_path(char *buf, size_t cap)
{
    snprintf(buf, cap, "/tmp/ktun-test-log-XXXXXX");
    int fd = mkstemp(buf);
    if (fd != -1) {
        close(fd);
        unlink(buf);
    }
}

/* Reads the whole of |path| into |buf| (NUL-terminated); returns the length or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Checks that |line| starts with "YYYY/MM/DD HH:MM:SS [level] " and returns the rest. */
static const char *after_stamp(const char *line, const char *level)
{
    int y, mo, d, h, mi, s, used = 0;
    char lv[16];
    if (sscanf(line, "%4d/%2d/%2d %2d:%2d:%2d [%15[a-z]] %n", &y, &mo, &d, &h, &mi, &s, lv,
               &used) != 7 || used == 0)
        return NULL;
    if (y < 2000 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return NULL;
    if (line[4] != '/' || line[7] != '/' || line[10] != ' ' || line[13] != ':')
        return NULL;
    if (strcmp(lv, level) != 0)
        return NULL;
    return line + used;
}

static int evaluated;
static int side_effect(void)
{
    return ++evaluated;
}

TEST(log_lines_have_timestamp_and_land_in_file)
{
    char path[64], buf[4096], err[256];
    temp_path(path, sizeof(path));
    REQUIRE(log_open(path, err, sizeof(err)) == 0);
    log_set_level(LOG_LEVEL_INFO);
    LOG_INFO("sess: hello %d", 42);
    LOG_WARN("client: careful: %s", "x");
    LOG_ERROR("server: broken");
    log_close();
    CHECK_EQ(log_fd(), 2);

    REQUIRE(slurp(path, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 3);
    const char *rest = after_stamp(buf, "info");
    REQUIRE(rest != NULL);
    CHECK(strncmp(rest, "sess: hello 42\n", 15) == 0);
    char *l2 = strchr(buf, '\n') + 1;
    rest = after_stamp(l2, "warn");
    REQUIRE(rest != NULL);
    CHECK(strncmp(rest, "client: careful: x\n", 19) == 0);
    char *l3 = strchr(l2, '\n') + 1;
    rest = after_stamp(l3, "error");
    REQUIRE(rest != NULL);
    CHECK(strcmp(rest, "server: broken\n") == 0);
    unlink(path);
}

TEST(log_file_is_appended_not_truncated)
{
    char path[64], buf[4096];
    temp_path(path, sizeof(path));
    REQUIRE(log_open(path, NULL, 0) == 0);
    LOG_INFO("first");
    log_close();
    REQUIRE(log_open(path, NULL, 0) == 0);
    LOG_INFO("second");
    log_close();
    REQUIRE(slurp(path, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 2);
    CHECK(strstr(buf, "] first\n") != NULL);
    CHECK(strstr(buf, "] second\n") != NULL);
    unlink(path);
}

TEST(log_level_filter_skips_argument_evaluation)
{
    char path[64], buf[4096];
    temp_path(path, sizeof(path));
    REQUIRE(log_open(path, NULL, 0) == 0);
    evaluated = 0;
    log_set_level(LOG_LEVEL_INFO);
    CHECK(!log_is_enabled(LOG_LEVEL_DEBUG));
    CHECK(log_is_enabled(LOG_LEVEL_WARN));
    LOG_DEBUG("hidden %d", side_effect());
    CHECK_EQ(evaluated, 0);
    log_set_level(LOG_LEVEL_DEBUG);
    LOG_DEBUG("shown %d", side_effect());
    CHECK_EQ(evaluated, 1);
    log_set_level(LOG_LEVEL_ERROR);
    LOG_WARN("hidden warn %d", side_effect());
    LOG_INFO("hidden info");
    CHECK_EQ(evaluated, 1);
    LOG_ERROR("shown error");
    log_set_level(LOG_LEVEL_INFO);
    log_close();
    REQUIRE(slurp(path, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 2);
    CHECK(strstr(buf, "[debug] shown 1\n") != NULL);
    CHECK(strstr(buf, "[error] shown error\n") != NULL);
    CHECK(strstr(buf, "hidden") == NULL);
    unlink(path);
}

TEST(log_quiet_suppresses_only_stream_lines)
{
    char path[64], buf[4096];
    temp_path(path, sizeof(path));
    REQUIRE(log_open(path, NULL, 0) == 0);
    log_set_level(LOG_LEVEL_INFO);
    log_set_quiet(false);
    LOG_STREAM("stream opened in: %s", "a");
    log_set_quiet(true);
    LOG_STREAM("stream opened in: %s", "b");
    LOG_INFO("other info");
    log_set_quiet(false);
    log_set_level(LOG_LEVEL_WARN);
    LOG_STREAM("stream below threshold");
    log_set_level(LOG_LEVEL_INFO);
    log_close();
    REQUIRE(slurp(path, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 2);
    CHECK(strstr(buf, "stream opened in: a") != NULL);
    CHECK(strstr(buf, "stream opened in: b") == NULL);
    CHECK(strstr(buf, "other info") != NULL);
    CHECK(strstr(buf, "below threshold") == NULL);
    unlink(path);
}

TEST(log_one_event_is_one_line)
{
    char path[64], buf[8192];
    temp_path(path, sizeof(path));
    REQUIRE(log_open(path, NULL, 0) == 0);
    LOG_WARN("peer said: %s", "evil\nfake line\r\x1b[0m");
    char big[3000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    LOG_INFO("big %s", big);
    log_close();
    long n = slurp(path, buf, sizeof(buf));
    REQUIRE(n > 0);
    CHECK_EQ(count_lines(buf), 2);
    CHECK(strstr(buf, "peer said: evil?fake line??[0m\n") != NULL);
    char *l2 = strchr(buf, '\n') + 1;
    size_t l2len = strlen(l2);
    CHECK_EQ(l2len, LOG_LINE_MAX);
    CHECK(strncmp(l2 + l2len - 5, "z...\n", 5) == 0);
    unlink(path);
}

TEST(log_reopen_follows_rotation)
{
    char path[64], rotated[80], buf[4096], err[256];
    temp_path(path, sizeof(path));
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    REQUIRE(log_open(path, err, sizeof(err)) == 0);
    int fd = log_fd();
    LOG_INFO("before rotation");
    REQUIRE(rename(path, rotated) == 0);
    LOG_INFO("still old file");
    CHECK_EQ(log_reopen(err, sizeof(err)), 0);
    CHECK_EQ(log_fd(), fd);
    LOG_INFO("after rotation");
    log_close();
    CHECK_EQ(log_reopen(err, sizeof(err)), 0); /* stderr: nothing to do */

    REQUIRE(slurp(rotated, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 2);
    CHECK(strstr(buf, "before rotation") != NULL);
    CHECK(strstr(buf, "still old file") != NULL);
    REQUIRE(slurp(path, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 1);
    CHECK(strstr(buf, "after rotation") != NULL);
    unlink(path);
    unlink(rotated);
}

TEST(log_open_failure_keeps_destination)
{
    char err[256] = "";
    CHECK_EQ(log_open("/nonexistent-dir/ktun.log", err, sizeof(err)), ERR_CLOSED);
    CHECK(strstr(err, "/nonexistent-dir/ktun.log") != NULL);
    CHECK(strchr(err, '\n') == NULL);
    CHECK_EQ(log_fd(), 2);
    char longpath[2048];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[sizeof(longpath) - 1] = '\0';
    CHECK_EQ(log_open(longpath, err, sizeof(err)), ERR_INVAL);
    CHECK_EQ(log_open(NULL, err, sizeof(err)), 0);
    CHECK_EQ(log_open("", err, sizeof(err)), 0);
    CHECK_EQ(log_fd(), 2);
}

TEST(log_level_names)
{
    CHECK_EQ(log_level_parse("error"), LOG_LEVEL_ERROR);
    CHECK_EQ(log_level_parse("WARN"), LOG_LEVEL_WARN);
    CHECK_EQ(log_level_parse("warning"), LOG_LEVEL_WARN);
    CHECK_EQ(log_level_parse("info"), LOG_LEVEL_INFO);
    CHECK_EQ(log_level_parse("debug"), LOG_LEVEL_DEBUG);
    CHECK_EQ(log_level_parse("verbose"), ERR_INVAL);
    CHECK(strcmp(log_level_name(LOG_LEVEL_DEBUG), "debug") == 0);
    CHECK(strcmp(log_level_name(99), "?") == 0);
}

TEST(log_core_adapter_logs_at_debug)
{
    char path[64], buf[4096];
    temp_path(path, sizeof(path));
    REQUIRE(log_open(path, NULL, 0) == 0);
    static char tag[] = "fec";
    log_set_level(LOG_LEVEL_INFO);
    log_core_debug(tag, "hidden at info");
    log_set_level(LOG_LEVEL_DEBUG);
    log_core_debug(tag, "bad shard dropped");
    log_core_debug(NULL, "untagged");
    log_set_level(LOG_LEVEL_INFO);
    log_close();
    REQUIRE(slurp(path, buf, sizeof(buf)) > 0);
    CHECK_EQ(count_lines(buf), 2);
    CHECK(strstr(buf, "[debug] fec: bad shard dropped\n") != NULL);
    CHECK(strstr(buf, "[debug] untagged\n") != NULL);
    CHECK(strstr(buf, "hidden") == NULL);
    unlink(path);
}

TEST(log_limit_passes_once_per_period)
{
    struct log_limit l = {0};
    CHECK(log_limit_pass(&l, 5000, 10000));   /* the first line always passes */
    CHECK(!log_limit_pass(&l, 5001, 10000));
    CHECK(!log_limit_pass(&l, 14999, 10000));
    CHECK(log_limit_pass(&l, 15000, 10000));  /* a full period later */
    CHECK(!log_limit_pass(&l, 20000, 10000));
    CHECK(log_limit_pass(&l, 90000, 10000));
    CHECK_EQ(l.last_ms, 90000);
}
