/* SPDX-License-Identifier: MIT */
/* Shell logging: one timestamped line per event, to stderr or an append-only log file. */
#ifndef KTUN_LOG_H
#define KTUN_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Line format, after Go's log package as used by kcptun (local time):
 *
 *     2026/11/22 04:05:06 [info] sess: decrypt failed from 1.2.3.4:5 (dropped)
 *
 * Each line goes out with one write(2) on a descriptor opened with O_APPEND, so lines from
 * concurrent writers never interleave. Control characters in the message (a newline in a
 * peer-supplied string, say) are replaced by '?', so one event is always one line.
 *
 * This module is shell code: it reads the wall clock and keeps process-wide state. Cores
 * never call it; they get an injected log callback that the shell points here.
 *
 * Do not include <syslog.h> next to this header: its LOG_INFO/LOG_DEBUG constants clash with
 * the macros below.
 */

enum log_level {
    LOG_LEVEL_ERROR, /* the process or a session cannot go on */
    LOG_LEVEL_WARN,  /* something is wrong but handled */
    LOG_LEVEL_INFO,  /* normal life-cycle events (the default threshold) */
    LOG_LEVEL_DEBUG, /* per-packet detail, dropped input */
    LOG_LEVEL_COUNT
};

/* Longest line written, timestamp and newline included; longer messages end in "...". */
#define LOG_LINE_MAX 1024

/* Current threshold: events above it are not formatted at all. Read it through the macros. */
extern int log_threshold;
/* True when the "stream open/close" category is on (cleared by --quiet). */
extern bool log_streams_on;

/* Formats and writes one line at |level| regardless of the threshold (the macros check it
 * first). |fmt| is printf-style; a trailing newline is added. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The level test comes before the arguments are evaluated, so a disabled LOG_DEBUG costs one
 * comparison (redis serverLog). */
#define LOG_AT(level, ...)                                                                  \
    do {                                                                                    \
        if ((int)(level) <= log_threshold)                                                  \
            log_write((level), __VA_ARGS__);                                                \
    } while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LEVEL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LEVEL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LEVEL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(LOG_LEVEL_DEBUG, __VA_ARGS__)
/* The "stream opened/closed" category (kcptun's lines that --quiet suppresses), at info. */
#define LOG_STREAM(...)                                                                     \
    do {                                                                                    \
        if (log_streams_on && LOG_LEVEL_INFO <= log_threshold)                              \
            log_write(LOG_LEVEL_INFO, __VA_ARGS__);                                         \
    } while (0)

/* Adapter for the cores' injected log callbacks (link_log_fn, fec_log_fn: they take
 * (void *user, const char *msg)): writes "|user|: |msg|" at debug level, where |user| is a
 * module tag string such as "fec" (borrowed; NULL for none). Core messages are about dropped
 * or odd input, which stays out of the info level. */
void log_core_debug(void *user, const char *msg);

/* Period of the rate-limited warnings (a peer over a limit, say): one line per 10 s. */
#define LOG_REPEAT_MS 10000u

/* Rate limit for one kind of repeated warning: zero-initialise it, then write the line only
 * when log_limit_pass says so. */
struct log_limit {
    uint64_t last_ms; /* time of the last line let through, 0 for never */
};

/* One line per period: true (and remembers |now_ms|) if no line passed |l| yet or the last
 * one is at least |period_ms| old. |now_ms| comes from the caller's clock. */
bool log_limit_pass(struct log_limit *l, uint64_t now_ms, uint64_t period_ms);

/* True if an event at |level| would be written. */
bool log_is_enabled(enum log_level level);

/* Sets the threshold: events at |level| or more severe are written. */
void log_set_level(enum log_level level);

/* Turns the stream open/close category off (|quiet| true) or on. */
void log_set_quiet(bool quiet);

/* Parses a level name ("error", "warn", "info", "debug"; "warning" too). Returns the level or
 * ERR_INVAL. */
int log_level_parse(const char *name);

/* Returns the name of |level| ("info", ...); "?" for a value out of range. */
const char *log_level_name(int level);

/* Sends the log to |path| (created if missing, opened for append, mode 0644 before umask), or
 * to stderr when |path| is NULL or "". The path is copied. Any previous file is closed.
 * Returns 0, or ERR_INVAL (path too long) / ERR_CLOSED (open failed) with a one-line reason
 * in |err| (|errlen| bytes; |err| may be NULL); the previous destination is kept then. */
int log_open(const char *path, char *err, size_t errlen);

/* Reopens the current log file by name, for log rotation (call it from the loop on SIGHUP,
 * not from a signal handler). A no-op returning 0 when logging to stderr. On failure the old
 * descriptor stays in use and ERR_CLOSED is returned with the reason in |err|. */
int log_reopen(char *err, size_t errlen);

/* Closes the log file (if any) and goes back to stderr. */
void log_close(void);

/* Returns the descriptor lines are written to (2 for stderr). */
int log_fd(void);

#endif
