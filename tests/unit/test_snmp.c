/* SPDX-License-Identifier: MIT */
/* Tests for the SNMP counters: names, the log line, Go time layouts and the CSV file. */
#include "common/err.h"
#include "common/snmp.h"
#include "tests/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(snmp_names_and_line)
{
    CHECK_EQ(SNMP_KCPTUN_FIELDS, 24);
    CHECK_EQ(SNMP_FIELD_COUNT, 30);
    CHECK(strcmp(snmp_field_name(SNMP_DGRAM_RECOVERED), "DgramRecovered") == 0);
    CHECK(strcmp(snmp_field_name(SNMP_REDUNDANT_SEGS), "RedundantSegs") == 0);
    CHECK(strcmp(snmp_field_name(SNMP_FEC_PARITY_SKIPPED), "FECParitySkipped") == 0);
    CHECK(strcmp(snmp_field_name(SNMP_BYTES_SENT), "BytesSent") == 0);
    CHECK(strcmp(snmp_field_name(SNMP_FEC_SHORT_SHARDS), "FECShortShards") == 0);
    CHECK(strcmp(snmp_field_name(SNMP_KCP_IN_ERRORS), "KCPInErrors") == 0);
    struct snmp a = {{0}}, b = {{0}};
    a.v[SNMP_IN_PKTS] = 3;
    b.v[SNMP_IN_PKTS] = 4;
    b.v[SNMP_OUT_BYTES] = 99;
    snmp_add(&a, &b);
    char line[1024];
    snmp_format_line(&a, line, sizeof(line));
    CHECK(strncmp(line, "BytesSent=0 BytesReceived=0 ", 28) == 0);
    CHECK(strstr(line, " InPkts=7 ") != NULL);
    CHECK(strstr(line, " OutBytes=99 ") != NULL);
    CHECK(strstr(line, " DgramRecovered=0 RedundantSegs=0 FECParitySkipped=0") != NULL);
    char tiny[10];
    snmp_format_line(&a, tiny, sizeof(tiny));
    CHECK_EQ(strlen(tiny), 9);
}

TEST(snmp_go_time_layout)
{
    setenv("TZ", "UTC", 1);
    tzset();
    time_t t = 1136214245; /* Mon Jan 2 15:04:05 UTC 2006: the layout prints itself */
    char out[128];
    CHECK_EQ(snmp_format_time("snmp-20060102-150405.csv", t, out, sizeof(out)), 0);
    CHECK(strcmp(out, "snmp-20060102-150405.csv") == 0);
    t = 1700000000; /* 2023-11-14 22:13:20 UTC, a Tuesday */
    CHECK_EQ(snmp_format_time("x20060102_15.04.05.csv", t, out, sizeof(out)), 0);
    CHECK(strcmp(out, "x20231114_22.13.20.csv") == 0);
    CHECK_EQ(snmp_format_time("Mon Jan _2 3PM 002 -0700", t, out, sizeof(out)), 0);
    CHECK(strcmp(out, "Tue Nov 14 10PM 318 +0000") == 0);
    CHECK_EQ(snmp_format_time("plain.csv", t, out, sizeof(out)), 0);
    CHECK(strcmp(out, "plain.csv") == 0);
    CHECK_EQ(snmp_format_time("2006", t, out, 4), ERR_TOOBIG);
}

TEST(snmp_csv_header_once)
{
    char dir[] = "/tmp/ktun-snmp-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char layout[256], path[256];
    snprintf(layout, sizeof(layout), "%s/s.csv", dir);
    snprintf(path, sizeof(path), "%s/s.csv", dir);
    struct snmp s = {{0}};
    s.v[SNMP_OUT_PKTS] = 5;
    s.v[SNMP_REDUNDANT_SEGS] = 7; /* ktun's own: after kcptun's 24 columns */
    CHECK_EQ(snmp_append_csv(layout, 100, &s), 0);
    s.v[SNMP_OUT_PKTS] = 6;
    CHECK_EQ(snmp_append_csv(layout, 101, &s), 0);
    FILE *f = fopen(path, "r");
    REQUIRE(f != NULL);
    char line[1024];
    REQUIRE(fgets(line, sizeof(line), f) != NULL);
    CHECK(strncmp(line, "Unix,BytesSent,BytesReceived,MaxConn,", 37) == 0);
    int commas = 0;
    for (char *p = line; *p; p++)
        commas += *p == ',';
    CHECK_EQ(commas, 30); /* kcptun's 24 columns, then ktun's own */
    CHECK(strstr(line, ",FECRecovered,FECShortShards,DgramIn,DgramOut,DgramDropped,"
                       "DgramRecovered,RedundantSegs,FECParitySkipped\n") != NULL);
    REQUIRE(fgets(line, sizeof(line), f) != NULL);
    CHECK(strcmp(line, "100,0,0,0,0,0,0,0,0,0,0,5,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,7,0\n") == 0);
    REQUIRE(fgets(line, sizeof(line), f) != NULL);
    CHECK(strncmp(line, "101,", 4) == 0);
    CHECK(fgets(line, sizeof(line), f) == NULL);
    fclose(f);
    unlink(path);
    rmdir(dir);
    CHECK_EQ(snmp_append_csv("/nonexistent-dir/x.csv", 1, &s), ERR_INVAL);
}
