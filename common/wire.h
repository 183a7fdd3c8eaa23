/* SPDX-License-Identifier: MIT */
/* Little-endian wire field access. put_* return the advanced pointer; get_* check bounds. */
#ifndef KTUN_WIRE_H
#define KTUN_WIRE_H

#include <stdint.h>

static inline uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static inline uint8_t *put_u16le(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static inline uint8_t *put_u32le(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

static inline uint16_t rd_u16le(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t rd_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t rd_u32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static inline uint8_t *put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* Reads a field at *|p| if it fits before |end|: returns 0 and advances *|p|, or -1. */
static inline int get_u8(const uint8_t **p, const uint8_t *end, uint8_t *v)
{
    if (end - *p < 1)
        return -1;
    *v = **p;
    *p += 1;
    return 0;
}

static inline int get_u16le(const uint8_t **p, const uint8_t *end, uint16_t *v)
{
    if (end - *p < 2)
        return -1;
    *v = rd_u16le(*p);
    *p += 2;
    return 0;
}

static inline int get_u32le(const uint8_t **p, const uint8_t *end, uint32_t *v)
{
    if (end - *p < 4)
        return -1;
    *v = rd_u32le(*p);
    *p += 4;
    return 0;
}

#endif
