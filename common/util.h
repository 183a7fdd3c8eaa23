/* SPDX-License-Identifier: MIT */
/* Small shared helpers. */
#ifndef KTUN_UTIL_H
#define KTUN_UTIL_H

#include <stddef.h>

#define container_of(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
