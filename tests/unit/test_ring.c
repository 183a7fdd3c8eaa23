/* SPDX-License-Identifier: MIT */
/* Tests for the power-of-two byte ring buffer. */
#include "common/ring.h"
#include "tests/test.h"

#include <stdlib.h>
#include <string.h>

TEST(ring_rounds_capacity_up)
{
    struct ring r;
    REQUIRE(ring_init(&r, 100) == 0);
    CHECK_EQ(ring_cap(&r), 128);
    CHECK_EQ(ring_len(&r), 0);
    CHECK_EQ(ring_room(&r), 128);
    ring_release(&r);
    REQUIRE(ring_init(&r, 1) == 0);
    CHECK_EQ(ring_cap(&r), 16);
    ring_release(&r);
    ring_release(&r);
}

TEST(ring_write_read_partial_and_full)
{
    struct ring r;
    REQUIRE(ring_init(&r, 16) == 0);
    uint8_t in[40], out[40];
    for (int i = 0; i < 40; i++)
        in[i] = (uint8_t)i;
    CHECK_EQ(ring_write(&r, in, 40), 16);
    CHECK_EQ(ring_room(&r), 0);
    CHECK_EQ(ring_write(&r, in, 1), 0);
    CHECK_EQ(ring_read(&r, out, 10), 10);
    CHECK_MEM(out, in, 10);
    /* wraps around the end */
    CHECK_EQ(ring_write(&r, in + 16, 10), 10);
    CHECK_EQ(ring_read(&r, out, 40), 16);
    CHECK_MEM(out, in + 10, 16);
    CHECK_EQ(ring_len(&r), 0);
    CHECK_EQ(ring_read(&r, out, 40), 0);
    ring_release(&r);
}

TEST(ring_iov_spans_wrap)
{
    struct ring r;
    struct iovec iov[2];
    REQUIRE(ring_init(&r, 16) == 0);
    CHECK_EQ(ring_data_iov(&r, iov), 0);
    CHECK_EQ(ring_room_iov(&r, iov), 1);
    CHECK_EQ(iov[0].iov_len, 16);
    ring_produce(&r, 12);
    ring_consume(&r, 8);
    /* data at 8..11, room at 12..15 and 0..7 */
    CHECK_EQ(ring_data_iov(&r, iov), 1);
    CHECK_EQ(iov[0].iov_len, 4);
    CHECK_EQ(ring_room_iov(&r, iov), 2);
    CHECK_EQ(iov[0].iov_len, 4);
    CHECK_EQ(iov[1].iov_len, 8);
    CHECK(iov[1].iov_base == r.data);
    ring_produce(&r, 6);
    CHECK_EQ(ring_data_iov(&r, iov), 2);
    CHECK_EQ(iov[0].iov_len, 8);
    CHECK_EQ(iov[1].iov_len, 2);
    ring_release(&r);
}

/* Random interleaving of writes and reads keeps the byte sequence intact. */
TEST(ring_random_stream_integrity)
{
    struct ring r;
    REQUIRE(ring_init(&r, 64) == 0);
    uint32_t seed = 12345;
    uint8_t wnext = 0, rnext = 0, tmp[100];
    size_t total = 0;
    for (int iter = 0; iter < 20000; iter++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = (seed >> 16) % 100;
        if (seed & 0x8000) {
            for (size_t i = 0; i < n; i++)
                tmp[i] = (uint8_t)(wnext + i);
            size_t w = ring_write(&r, tmp, n);
            wnext = (uint8_t)(wnext + w);
        } else {
            size_t got = ring_read(&r, tmp, n);
            for (size_t i = 0; i < got; i++) {
                if (tmp[i] != rnext) {
                    CHECK_EQ(tmp[i], rnext);
                    ring_release(&r);
                    return;
                }
                rnext++;
            }
            total += got;
        }
        CHECK(ring_len(&r) <= ring_cap(&r));
    }
    CHECK(total > 100000);
    ring_release(&r);
}
