/* SPDX-License-Identifier: MIT */
/* Names of the project-wide error codes. */
#include "common/err.h"

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
