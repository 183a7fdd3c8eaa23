/* SPDX-License-Identifier: MIT */
/* Names of the project-wide error codes. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *err_str(int err)
{
    switch (err) {
    case 0: return "success";
    case ERR_NOMEM: return "out of memory";
    case ERR_AGAIN: return "try again";
    case ERR_PROTO: return "protocol error";
    case ERR_AUTH: return "authentication failed";
    case ERR_INVAL: return "invalid argument";
    case ERR_CLOSED: return "closed";
    case ERR_TOOBIG: return "too big";
    case ERR_LIMIT: return "limit reached";
    default: return "unknown error";
    }
}

int err_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return ERR_INVAL;
}
