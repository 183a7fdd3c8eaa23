/* SPDX-License-Identifier: MIT */
/* Shell logging: level filter, timestamped single-write lines, append-only file, reopen. */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"

int log_threshold = LOG_LEVEL_INFO;
bool log_streams_on = true;

static struct {
    int fd;             /* destination: 2 (stderr) or our own file */
    char path[1024];    /* file name for log_reopen; "" when logging to stderr */
} log_dest = {2, ""};

static const char *const level_names[LOG_LEVEL_COUNT] = {
    [LOG_LEVEL_ERROR] = "error",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_DEBUG] = "debug",
};

const char *log_level_name(int level)
{
    if (level < 0 || level >= LOG_LEVEL_COUNT)
        return "?";
    return level_names[level];
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < LOG_LEVEL_COUNT; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "warning") == 0)
        return LOG_LEVEL_WARN;
    return ERR_INVAL;
}

bool log_is_enabled(enum log_level level)
{
    return (int)level <= log_threshold;
}

void log_set_level(enum log_level level)
{
    log_threshold = (int)level;
}

void log_set_quiet(bool quiet)
{
    log_streams_on = !quiet;
}

int log_fd(void)
{
    return log_dest.fd;
}

/* Writes all of |p|; a log line must not be split by a short write. Errors are dropped:
 * there is nowhere left to report them. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* "YYYY/MM/DD HH:MM:SS [level] " into |buf|; returns its length. */
static size_t format_prefix(char *buf, size_t cap, enum log_level level)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    int n = snprintf(buf, cap, "%04d/%02d/%02d %02d:%02d:%02d [%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     log_level_name((int)level));
    return n < 0 ? 0 : (size_t)n >= cap ? cap - 1 : (size_t)n;
}

void log_write(enum log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX + 1];
    size_t pos = format_prefix(line, LOG_LINE_MAX, level);
    size_t room = LOG_LINE_MAX - pos; /* message bytes that fit, excluding the newline */
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(line + pos, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t len = (size_t)n < room ? (size_t)n : room - 1;
    if ((size_t)n >= room && room > 4)
        memcpy(line + pos + len - 3, "...", 3);
    for (size_t i = pos; i < pos + len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c < 0x20 || c == 0x7f)
            line[i] = '?';
    }
    len += pos;
    line[len++] = '\n';
    write_all(log_dest.fd, line, len);
}

bool log_limit_pass(struct log_limit *l, uint64_t now_ms, uint64_t period_ms)
{
    if (l->last_ms && now_ms - l->last_ms < period_ms)
        return false;
    l->last_ms = now_ms;
    return true;
}

void log_core_debug(void *user, const char *msg)
{
    const char *tag = user;
    if (tag)
        LOG_DEBUG("%s: %s", tag, msg);
    else
        LOG_DEBUG("%s", msg);
}

/* Opens |path| for appending; returns the fd or -1 with the reason in |err|. */
static int open_append(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd == -1 && err)
        snprintf(err, errlen, "log: cannot open %s: %s", path, strerror(errno));
    return fd;
}

int log_open(const char *path, char *err, size_t errlen)
{
    if (path == NULL || path[0] == '\0') {
        log_close();
        return 0;
    }
    if (strlen(path) >= sizeof(log_dest.path)) {
        if (err)
            snprintf(err, errlen, "log: file name too long: %.64s...", path);
        return ERR_INVAL;
    }
    int fd = open_append(path, err, errlen);
    if (fd == -1)
        return ERR_CLOSED;
    log_close();
    log_dest.fd = fd;
    strcpy(log_dest.path, path);
    return 0;
}

int log_reopen(char *err, size_t errlen)
{
    if (log_dest.path[0] == '\0')
        return 0;
    int fd = open_append(log_dest.path, err, errlen);
    if (fd == -1)
        return ERR_CLOSED;
    /* dup3 swaps the file under the same descriptor number, so nothing caches a stale fd. */
    if (dup3(fd, log_dest.fd, O_CLOEXEC) == -1) {
        if (err)
            snprintf(err, errlen, "log: cannot reopen %s: %s", log_dest.path, strerror(errno));
        close(fd);
        return ERR_CLOSED;
    }
    close(fd);
    return 0;
}

void log_close(void)
{
    if (log_dest.fd != 2)
        close(log_dest.fd);
    log_dest.fd = 2;
    log_dest.path[0] = '\0';
}
