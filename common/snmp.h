/* SPDX-License-Identifier: MIT */
/* Process-wide tunnel counters in kcptun's SNMP layout, the --snmplog CSV and the SIGUSR1 line. */
#ifndef KTUN_SNMP_H
#define KTUN_SNMP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* kcp-go 5.6.1's DefaultSnmp fields, in CSV column order after "Unix", then ktun's own. */
enum snmp_field {
    SNMP_BYTES_SENT,          /* application bytes handed to KCP sessions */
    SNMP_BYTES_RECEIVED,      /* application bytes read from KCP sessions */
    SNMP_MAX_CONN,            /* highest CurrEstab seen */
    SNMP_ACTIVE_OPENS,        /* sessions dialled (client) */
    SNMP_PASSIVE_OPENS,       /* sessions accepted (server) */
    SNMP_CURR_ESTAB,          /* sessions alive now */
    SNMP_IN_ERRS,             /* datagrams dropped before KCP (wrong source, no session...) */
    SNMP_IN_CSUM_ERRORS,      /* datagrams failing the crypt check */
    SNMP_KCP_IN_ERRORS,       /* packets KCP refused */
    SNMP_IN_PKTS,             /* datagrams received */
    SNMP_OUT_PKTS,            /* datagrams sent */
    SNMP_IN_SEGS,             /* KCP segments received */
    SNMP_OUT_SEGS,            /* KCP segments sent */
    SNMP_IN_BYTES,            /* UDP payload bytes received */
    SNMP_OUT_BYTES,           /* UDP payload bytes sent */
    SNMP_RETRANS_SEGS,        /* all retransmissions */
    SNMP_FAST_RETRANS_SEGS,   /* fast retransmissions */
    SNMP_EARLY_RETRANS_SEGS,  /* early retransmissions */
    SNMP_LOST_SEGS,           /* timeouts (RTO retransmissions) */
    SNMP_REPEAT_SEGS,         /* duplicate segments received */
    SNMP_FEC_PARITY_SHARDS,   /* FEC parity shards received */
    SNMP_FEC_ERRS,            /* FEC recovery failures */
    SNMP_FEC_RECOVERED,       /* data shards recovered by FEC */
    SNMP_FEC_SHORT_SHARDS,    /* FEC groups too short to recover */
    SNMP_KCPTUN_FIELDS,       /* kcptun's 24 columns end here; ktun's follow */
    SNMP_DGRAM_IN = SNMP_KCPTUN_FIELDS, /* datagrams delivered (datagram channel) */
    SNMP_DGRAM_OUT,           /* datagrams sent */
    SNMP_DGRAM_DROPPED,       /* datagrams dropped (too big, duplicate, stale, refused, ...) */
    SNMP_DGRAM_RECOVERED,     /* datagrams whose packet FEC rebuilt */
    SNMP_REDUNDANT_SEGS,      /* RedundantSegs: loss-protection copies sent (a peer counts
                               * each one that arrives as a RepeatSegs) */
    SNMP_FEC_PARITY_SKIPPED,  /* FECParitySkipped: parity shards adaptive FEC left unsent */
    SNMP_FIELD_COUNT
};

/* One snapshot of every counter (cumulative since start, except CurrEstab). */
struct snmp {
    uint64_t v[SNMP_FIELD_COUNT];
};

/* kcp-go's name of |f| ("BytesSent", ...); never NULL. */
const char *snmp_field_name(enum snmp_field f);

/* Adds every counter of |b| into |a| (MaxConn and CurrEstab included). */
void snmp_add(struct snmp *a, const struct snmp *b);

/* Writes "Name=value" pairs separated by spaces into |buf| (|cap| bytes, NUL-terminated,
 * truncated if short). Returns |buf|. */
const char *snmp_format_line(const struct snmp *s, char *buf, size_t cap);

/* Expands the Go time layout |layout| (kcptun formats the --snmplog file name part with
 * time.Format: 2006 01 02 15 04 05 Jan Mon PM -0700 and their variants) for local time |t|
 * into |out| (|cap| bytes). Returns 0, or ERR_TOOBIG if |out| is too small. */
int snmp_format_time(const char *layout, time_t t, char *out, size_t cap);

/* Appends one CSV row (epoch |t|, kcptun's 24 counters in its order, then ktun's) to the file |path_layout| expanded as
 * kcptun does (directory kept, file name formatted with snmp_format_time), writing the header
 * row first when the file is empty. Returns 0, or ERR_INVAL if the file cannot be written. */
int snmp_append_csv(const char *path_layout, time_t t, const struct snmp *s);

#endif
