/* SPDX-License-Identifier: MIT */
/* Pure core: snappy block encoder and decoder, see snappy.h. */
#include "common/snappy.h"

#include <string.h>

#define FRAGMENT_MAX 65536u /* input compressed with one table: offsets fit 16 bits */
#define TABLE_BITS_MAX 14u
#define MIN_MATCH 4u
/* No match is looked for in the last bytes of a fragment: the 4-byte loads stay inside it. */
#define INPUT_MARGIN 15u

size_t snap_max_compressed_len(size_t n)
{
    return 32 + n + n / 6;
}

static uint32_t load32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v)); /* the value is only hashed and compared: byte order is moot */
    return v;
}

static uint8_t *put_varint(uint8_t *op, size_t v)
{
    while (v >= 0x80) {
        *op++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *op++ = (uint8_t)v;
    return op;
}

static uint8_t *put_literal(uint8_t *op, const uint8_t *p, size_t len)
{
    size_t v = len - 1;
    if (v < 60) {
        *op++ = (uint8_t)(v << 2);
    } else {
        unsigned nb = v < 0x100 ? 1 : v < 0x10000 ? 2 : v < 0x1000000 ? 3 : 4;
        *op++ = (uint8_t)((59 + nb) << 2);
        for (unsigned i = 0; i < nb; i++)
            *op++ = (uint8_t)(v >> (8 * i));
    }
    memcpy(op, p, len);
    return op + len;
}

/* A copy of |len| (1..64) bytes at |off| (1..65535) with a two-byte offset. */
static uint8_t *put_copy2(uint8_t *op, size_t off, size_t len)
{
    *op++ = (uint8_t)(2 | (len - 1) << 2);
    *op++ = (uint8_t)off;
    *op++ = (uint8_t)(off >> 8);
    return op;
}

/* A copy of |len| (>= 4) bytes at |off|: pieces of 64 while at least 68 remain (so that the
 * rest is never below 4), the short form for 4..11 bytes within 2 KB. */
static uint8_t *put_copy(uint8_t *op, size_t off, size_t len)
{
    while (len >= 68) {
        op = put_copy2(op, off, 64);
        len -= 64;
    }
    if (len > 64) {
        op = put_copy2(op, off, 60);
        len -= 60;
    }
    if (len < 12 && off < 2048) {
        *op++ = (uint8_t)(1 | (len - 4) << 2 | (off >> 8) << 5);
        *op++ = (uint8_t)off;
        return op;
    }
    return put_copy2(op, off, len);
}

static unsigned hash4(uint32_t v, unsigned bits)
{
    return (unsigned)((v * 0x1e35a7bdu) >> (32 - bits));
}

/* Length of the common run of |a| and |b| (b after a), at most up to |end|. */
static size_t match_len(const uint8_t *a, const uint8_t *b, const uint8_t *end)
{
    const uint8_t *start = b;
    while (b + 8 <= end) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            return (size_t)(b - start) + (size_t)__builtin_ctzll(x ^ y) / 8;
#else
            break;
#endif
        }
        a += 8;
        b += 8;
    }
    while (b < end && *a == *b) {
        a++;
        b++;
    }
    return (size_t)(b - start);
}

static uint8_t *compress_fragment(const uint8_t *in, size_t n, uint8_t *op, uint16_t *table)
{
    const uint8_t *lit = in; /* start of the pending literal */
    if (n < INPUT_MARGIN + MIN_MATCH)
        return put_literal(op, in, n);
    unsigned bits = 8;
    while (bits < TABLE_BITS_MAX && ((size_t)1 << bits) < n)
        bits++;
    memset(table, 0, sizeof(*table) << bits);

    const uint8_t *end = in + n, *limit = end - INPUT_MARGIN;
    const uint8_t *ip = in + 1;
    while (ip < limit) {
        /* Look for a 4-byte match, striding further apart after every 32 misses. */
        const uint8_t *cand;
        unsigned skip = 32;
        for (;;) {
            uint32_t v = load32(ip);
            unsigned h = hash4(v, bits);
            cand = in + table[h];
            table[h] = (uint16_t)(ip - in);
            if (cand < ip && load32(cand) == v)
                break;
            ip += skip++ >> 5;
            if (ip >= limit)
                goto done;
        }
        if (ip > lit)
            op = put_literal(op, lit, (size_t)(ip - lit));
        /* Copies as long as they run, then look for the next match right after. */
        for (;;) {
            size_t len = MIN_MATCH + match_len(cand + MIN_MATCH, ip + MIN_MATCH, end);
            op = put_copy(op, (size_t)(ip - cand), len);
            ip += len;
            lit = ip;
            if (ip >= limit)
                goto done;
            table[hash4(load32(ip - 1), bits)] = (uint16_t)(ip - 1 - in);
            uint32_t v = load32(ip);
            unsigned h = hash4(v, bits);
            cand = in + table[h];
            table[h] = (uint16_t)(ip - in);
            if (!(cand < ip && load32(cand) == v))
                break;
        }
        ip++;
    }
done:
    if (lit < end)
        op = put_literal(op, lit, (size_t)(end - lit));
    return op;
}

size_t snap_compress(const uint8_t *in, size_t n, uint8_t *out)
{
    uint16_t table[1u << TABLE_BITS_MAX];
    uint8_t *op = put_varint(out, n);
    for (size_t off = 0; off < n; off += FRAGMENT_MAX) {
        size_t len = n - off < FRAGMENT_MAX ? n - off : FRAGMENT_MAX;
        op = compress_fragment(in + off, len, op, table);
    }
    return (size_t)(op - out);
}

/* Reads the preamble: returns its length in bytes, 0 if malformed. */
static size_t get_varint(const uint8_t *in, size_t n, size_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < n && i < 5; i++) {
        x |= (uint64_t)(in[i] & 0x7f) << (7 * i);
        if (!(in[i] & 0x80)) {
            if (x > 0xffffffffu)
                return 0;
            *v = (size_t)x;
            return i + 1;
        }
    }
    return 0;
}

bool snap_uncompressed_len(const uint8_t *in, size_t n, size_t *out_len)
{
    return get_varint(in, n, out_len) != 0;
}

bool snap_uncompress(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    size_t want, ip = get_varint(in, n, &want), op = 0;
    if (!ip || want > cap)
        return false;
    while (ip < n) {
        uint8_t tag = in[ip++];
        uint64_t len, off;
        switch (tag & 3) {
        case 0:
            len = tag >> 2;
            if (len >= 60) {
                size_t nb = (size_t)len - 59;
                if (n - ip < nb)
                    return false;
                len = 0;
                for (size_t i = 0; i < nb; i++)
                    len |= (uint64_t)in[ip + i] << (8 * i);
                ip += nb;
            }
            len += 1;
            if (len > n - ip || len > want - op)
                return false;
            if (len <= 16 && n - ip >= 16 && cap - op >= 16)
                memcpy(out + op, in + ip, 16); /* fixed size: two moves, no call */
            else
                memcpy(out + op, in + ip, (size_t)len);
            ip += (size_t)len;
            op += (size_t)len;
            continue;
        case 1:
            if (n - ip < 1)
                return false;
            len = 4 + ((tag >> 2) & 7);
            off = (uint64_t)(tag >> 5) << 8 | in[ip];
            ip += 1;
            break;
        case 2:
            if (n - ip < 2)
                return false;
            len = (tag >> 2) + 1u;
            off = (uint64_t)in[ip] | (uint64_t)in[ip + 1] << 8;
            ip += 2;
            break;
        default:
            if (n - ip < 4)
                return false;
            len = (tag >> 2) + 1u;
            off = (uint64_t)in[ip] | (uint64_t)in[ip + 1] << 8 | (uint64_t)in[ip + 2] << 16 |
                  (uint64_t)in[ip + 3] << 24;
            ip += 4;
            break;
        }
        if (off == 0 || off > op || len > want - op)
            return false;
        uint8_t *d = out + op;
        const uint8_t *s = d - off;
        if (off >= 16 && len <= 16 && cap - op >= 16) {
            memcpy(d, s, 16); /* fixed size, as above; the source ends before d + 16 */
        } else if (off >= len) {
            memcpy(d, s, (size_t)len);
        } else if (off >= 8) {
            for (size_t i = 0; i < len; i += 8) /* 8-byte steps never overlap their source */
                memcpy(d + i, s + i, (size_t)(len - i < 8 ? len - i : 8));
        } else {
            for (size_t i = 0; i < len; i++) /* overlapping: repeats the last |off| bytes */
                d[i] = s[i];
        }
        op += (size_t)len;
    }
    if (op != want)
        return false;
    *out_len = op;
    return true;
}
