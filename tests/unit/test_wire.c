/* SPDX-License-Identifier: MIT */
/* Tests for the little-endian field helpers and error names. */
#include "common/err.h"
#include "common/wire.h"
#include "tests/test.h"

#include <string.h>

TEST(wire_put_get_roundtrip)
{
    uint8_t b[7];
    uint8_t *p = put_u32le(b, 0x3ade68b1u);
    p = put_u16le(p, 0x00f1);
    p = put_u8(p, 0x51);
    CHECK_EQ(p - b, 7);
    static const uint8_t want[7] = {0xb1, 0x68, 0xde, 0x3a, 0xf1, 0x00, 0x51};
    CHECK_MEM(b, want, 7);

    const uint8_t *q = b, *end = b + sizeof(b);
    uint32_t v32;
    uint16_t v16;
    uint8_t v8;
    CHECK_EQ(get_u32le(&q, end, &v32), 0);
    CHECK_EQ(v32, 0x3ade68b1u);
    CHECK_EQ(get_u16le(&q, end, &v16), 0);
    CHECK_EQ(v16, 0xf1);
    CHECK_EQ(get_u8(&q, end, &v8), 0);
    CHECK_EQ(v8, 0x51);
    CHECK_EQ(get_u8(&q, end, &v8), -1);
    CHECK(q == end);
}

TEST(wire_get_refuses_short_fields)
{
    uint8_t b[3] = {1, 2, 3};
    const uint8_t *q = b;
    uint32_t v;
    CHECK_EQ(get_u32le(&q, b + 3, &v), -1);
    CHECK(q == b);
}

TEST(err_names_are_distinct)
{
    CHECK(strcmp(err_str(ERR_AUTH), err_str(ERR_PROTO)) != 0);
    CHECK(strcmp(err_str(12345), "unknown error") == 0);
}
