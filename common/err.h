/* SPDX-License-Identifier: MIT */
/* Project-wide error codes: functions return 0 (or a length) on success, ERR_* (< 0) on failure. */
#ifndef KTUN_ERR_H
#define KTUN_ERR_H

enum ktun_err {
    ERR_NOMEM = -1,  /* allocation failed */
    ERR_AGAIN = -2,  /* nothing to do now: need more input, or would block */
    ERR_PROTO = -3,  /* malformed or unexpected input from the peer */
    ERR_AUTH = -4,   /* integrity or authentication check failed (always a silent drop) */
    ERR_INVAL = -5,  /* invalid argument or configuration */
    ERR_CLOSED = -6, /* the object is closed */
    ERR_TOOBIG = -7, /* input exceeds a limit */
    ERR_LIMIT = -8,  /* a configured resource limit was reached */
};

/* Returns a short English description of |err| (an ERR_* value); never NULL. */
const char *err_str(int err);

#include <stddef.h>

/* Formats a one-line reason into |err| (|errlen| bytes; either may be 0/NULL for none) and
 * returns ERR_INVAL: the shape of every parser's "bad input" exit. */
int err_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
