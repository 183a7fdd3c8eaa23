/* SPDX-License-Identifier: MIT */
/* The default session limit: sized from the descriptor limit and memory. */
#include "common/config.h"
#include "tests/test.h"

TEST(maxsessions_auto_takes_the_scarcer_of_descriptors_and_memory)
{
    /* descriptors scarce: one per session after the reserve */
    CHECK_EQ(config_auto_maxsessions(1024, 16ull << 30), 1024 - (int)CONFIG_FD_RESERVE);
    CHECK_EQ(config_auto_maxsessions(20000, 16ull << 30), 20000 - (int)CONFIG_FD_RESERVE);
    /* memory scarce: 256 MiB / 256 KiB */
    CHECK_EQ(config_auto_maxsessions(1 << 20, 256ull << 20), 1024);
    /* the 2000 stock clients of a default 1024-descriptor soft limit raised to 524288 */
    CHECK(config_auto_maxsessions(524288, 4ull << 30) >= 2000);
    /* bounds */
    CHECK_EQ(config_auto_maxsessions(10, 1ull << 40), CONFIG_MAXSESSIONS_MIN);
    CHECK_EQ(config_auto_maxsessions(UINT64_MAX, UINT64_MAX), CONFIG_MAXSESSIONS_MAX);
    CHECK_EQ(config_auto_maxsessions(0, 0), CONFIG_MAXSESSIONS_MIN);
}
