/* SPDX-License-Identifier: MIT */
/* Process-wide tunnel counters in kcptun's SNMP layout, the --snmplog CSV and the SIGUSR1 line. */
#include "common/snmp.h"

#include "common/err.h"
#include "common/util.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *const snmp_names[SNMP_FIELD_COUNT] = {
    "BytesSent",       "BytesReceived",    "MaxConn",          "ActiveOpens",
    "PassiveOpens",    "CurrEstab",        "InErrs",           "InCsumErrors",
    "KCPInErrors",     "InPkts",           "OutPkts",          "InSegs",
    "OutSegs",         "InBytes",          "OutBytes",         "RetransSegs",
    "FastRetransSegs", "EarlyRetransSegs", "LostSegs",         "RepeatSegs",
    "FECParityShards", "FECErrs",          "FECRecovered",     "FECShortShards",
    "DgramIn",         "DgramOut",         "DgramDropped",     "DgramRecovered",
    "RedundantSegs",   "FECParitySkipped",
};

const char *snmp_field_name(enum snmp_field f)
{
    return (unsigned)f < SNMP_FIELD_COUNT ? snmp_names[f] : "?";
}

void snmp_add(struct snmp *a, const struct snmp *b)
{
    for (int i = 0; i < SNMP_FIELD_COUNT; i++)
        a->v[i] += b->v[i];
}

const char *snmp_format_line(const struct snmp *s, char *buf, size_t cap)
{
    size_t off = 0;
    if (cap)
        buf[0] = '\0';
    for (int i = 0; i < SNMP_FIELD_COUNT && off < cap; i++) {
        int n = snprintf(buf + off, cap - off, "%s%s=%" PRIu64, i ? " " : "", snmp_names[i],
                         s->v[i]);
        if (n < 0)
            break;
        off += (size_t)n;
    }
    return buf;
}

/* One token of Go's reference time "Mon Jan 2 15:04:05 MST 2006" and its expansion. */
struct go_token {
    const char *tok; /* layout text */
    int kind;        /* what it prints */
};

enum {
    TK_LONG_MONTH, TK_MONTH, TK_NUM_MONTH, TK_ZERO_MONTH, TK_LONG_WEEKDAY, TK_WEEKDAY,
    TK_DAY, TK_UNDER_DAY, TK_ZERO_DAY, TK_YEARDAY, TK_HOUR, TK_HOUR12, TK_ZERO_HOUR12,
    TK_MINUTE, TK_ZERO_MINUTE, TK_SECOND, TK_ZERO_SECOND, TK_LONG_YEAR, TK_YEAR, TK_PM,
    TK_LOWER_PM, TK_TZ, TK_NUM_TZ, TK_NUM_COLON_TZ, TK_NUM_SHORT_TZ, TK_ISO_TZ,
    TK_ISO_COLON_TZ,
};

/* Longest tokens first where one is a prefix of another (Go's nextStdChunk order). */
static const struct go_token go_tokens[] = {
    {"January", TK_LONG_MONTH}, {"Jan", TK_MONTH},       {"Monday", TK_LONG_WEEKDAY},
    {"Mon", TK_WEEKDAY},        {"MST", TK_TZ},          {"002", TK_YEARDAY},
    {"01", TK_ZERO_MONTH},      {"02", TK_ZERO_DAY},     {"03", TK_ZERO_HOUR12},
    {"04", TK_ZERO_MINUTE},     {"05", TK_ZERO_SECOND},  {"06", TK_YEAR},
    {"15", TK_HOUR},            {"1", TK_NUM_MONTH},     {"2006", TK_LONG_YEAR},
    {"2", TK_DAY},              {"_2", TK_UNDER_DAY},    {"3", TK_HOUR12},
    {"4", TK_MINUTE},           {"5", TK_SECOND},        {"PM", TK_PM},
    {"pm", TK_LOWER_PM},        {"-07:00", TK_NUM_COLON_TZ}, {"-0700", TK_NUM_TZ},
    {"-07", TK_NUM_SHORT_TZ},   {"Z07:00", TK_ISO_COLON_TZ}, {"Z0700", TK_ISO_TZ},
};

static int fmt_token(int kind, const struct tm *tm, char *o, size_t cap)
{
    static const char *const months[] = {"January", "February", "March", "April", "May",
                                         "June", "July", "August", "September", "October",
                                         "November", "December"};
    static const char *const days[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                       "Thursday", "Friday", "Saturday"};
    int h12 = tm->tm_hour % 12 ? tm->tm_hour % 12 : 12;
    long off = tm->tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    long aoff = off < 0 ? -off : off;
    switch (kind) {
    case TK_LONG_MONTH: return snprintf(o, cap, "%s", months[tm->tm_mon]);
    case TK_MONTH: return snprintf(o, cap, "%.3s", months[tm->tm_mon]);
    case TK_NUM_MONTH: return snprintf(o, cap, "%d", tm->tm_mon + 1);
    case TK_ZERO_MONTH: return snprintf(o, cap, "%02d", tm->tm_mon + 1);
    case TK_LONG_WEEKDAY: return snprintf(o, cap, "%s", days[tm->tm_wday]);
    case TK_WEEKDAY: return snprintf(o, cap, "%.3s", days[tm->tm_wday]);
    case TK_DAY: return snprintf(o, cap, "%d", tm->tm_mday);
    case TK_UNDER_DAY: return snprintf(o, cap, "%2d", tm->tm_mday);
    case TK_ZERO_DAY: return snprintf(o, cap, "%02d", tm->tm_mday);
    case TK_YEARDAY: return snprintf(o, cap, "%03d", tm->tm_yday + 1);
    case TK_HOUR: return snprintf(o, cap, "%02d", tm->tm_hour);
    case TK_HOUR12: return snprintf(o, cap, "%d", h12);
    case TK_ZERO_HOUR12: return snprintf(o, cap, "%02d", h12);
    case TK_MINUTE: return snprintf(o, cap, "%d", tm->tm_min);
    case TK_ZERO_MINUTE: return snprintf(o, cap, "%02d", tm->tm_min);
    case TK_SECOND: return snprintf(o, cap, "%d", tm->tm_sec);
    case TK_ZERO_SECOND: return snprintf(o, cap, "%02d", tm->tm_sec);
    case TK_LONG_YEAR: return snprintf(o, cap, "%04d", tm->tm_year + 1900);
    case TK_YEAR: return snprintf(o, cap, "%02d", (tm->tm_year + 1900) % 100);
    case TK_PM: return snprintf(o, cap, "%s", tm->tm_hour >= 12 ? "PM" : "AM");
    case TK_LOWER_PM: return snprintf(o, cap, "%s", tm->tm_hour >= 12 ? "pm" : "am");
    case TK_TZ: return snprintf(o, cap, "%s", tm->tm_zone ? tm->tm_zone : "UTC");
    case TK_ISO_TZ:
    case TK_ISO_COLON_TZ:
        if (off == 0)
            return snprintf(o, cap, "Z");
        return kind == TK_ISO_TZ ? snprintf(o, cap, "%c%02ld%02ld", sign, aoff / 60, aoff % 60)
                                 : snprintf(o, cap, "%c%02ld:%02ld", sign, aoff / 60, aoff % 60);
    case TK_NUM_TZ: return snprintf(o, cap, "%c%02ld%02ld", sign, aoff / 60, aoff % 60);
    case TK_NUM_COLON_TZ: return snprintf(o, cap, "%c%02ld:%02ld", sign, aoff / 60, aoff % 60);
    default: return snprintf(o, cap, "%c%02ld", sign, aoff / 60);
    }
}

int snmp_format_time(const char *layout, time_t t, char *out, size_t cap)
{
    struct tm tm;
    size_t off = 0;
    if (cap == 0)
        return ERR_TOOBIG;
    localtime_r(&t, &tm);
    for (const char *p = layout; *p;) {
        const struct go_token *hit = NULL;
        for (size_t i = 0; i < ARRAY_SIZE(go_tokens) && !hit; i++)
            if (strncmp(p, go_tokens[i].tok, strlen(go_tokens[i].tok)) == 0)
                hit = &go_tokens[i];
        int n;
        if (hit) {
            n = fmt_token(hit->kind, &tm, out + off, cap - off);
            p += strlen(hit->tok);
        } else {
            n = snprintf(out + off, cap - off, "%c", *p);
            p++;
        }
        if (n < 0 || (size_t)n >= cap - off)
            return ERR_TOOBIG;
        off += (size_t)n;
    }
    out[off] = '\0';
    return 0;
}

int snmp_append_csv(const char *path_layout, time_t t, const struct snmp *s)
{
    char path[4096], name[1024];
    const char *slash = strrchr(path_layout, '/');
    size_t dirlen = slash ? (size_t)(slash - path_layout) + 1 : 0;
    if (dirlen >= sizeof(path) ||
        snmp_format_time(path_layout + dirlen, t, name, sizeof(name)) != 0 ||
        (size_t)snprintf(path, sizeof(path), "%.*s%s", (int)dirlen, path_layout, name) >=
            sizeof(path))
        return ERR_INVAL;
    FILE *f = fopen(path, "a");
    if (!f)
        return ERR_INVAL;
    struct stat st;
    bool empty = fstat(fileno(f), &st) == 0 && st.st_size == 0;
    if (empty) {
        fputs("Unix", f);
        for (int i = 0; i < SNMP_FIELD_COUNT; i++)
            fprintf(f, ",%s", snmp_names[i]);
        fputc('\n', f);
    }
    fprintf(f, "%lld", (long long)t);
    for (int i = 0; i < SNMP_FIELD_COUNT; i++)
        fprintf(f, ",%" PRIu64, s->v[i]);
    fputc('\n', f);
    return fclose(f) == 0 ? 0 : ERR_INVAL;
}
