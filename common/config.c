/* SPDX-License-Identifier: MIT */
/* Command line (getopt_long_only over one option table), JSON file, mode table, validation. */
#include "common/config.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <strings.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/allow.h"
#include "common/udpflow.h"
#include "common/err.h"
#include "common/fwd.h"
#include "common/fwrule.h"
#include "common/log.h"
#include "common/util.h"
#include "crypto/crypt.h"
#include "crypto/qpp.h"

#define ROLE_C (1u << CONFIG_CLIENT)
#define ROLE_S (1u << CONFIG_SERVER)
#define ROLE_ALL (ROLE_C | ROLE_S)

#define DEFAULT_KEY "it's a secrect" /* sic: kcptun's spelling, part of the default */
#define JSON_FILE_MAX (1 << 20)      /* refuse bigger config files */
#define JSON_SAFE_INT 9007199254740992.0 /* 2^53: larger doubles are not exact integers */

enum opt_type {
    OPT_STR,     /* string copied into a char array */
    OPT_INT,     /* Go integer literal into an int */
    OPT_I64,     /* Go integer literal into an int64_t */
    OPT_BOOL,    /* flag alone = true; "--x=false" form accepted */
    OPT_LEVEL,   /* log level name into an int */
    OPT_FILE,    /* -c: JSON file, loaded after the other flags */
    OPT_LIST,    /* repeatable: each value appended as one line (JSON: string or array) */
    OPT_HELP,    /* --help, -h */
    OPT_VERSION, /* --version, -v */
};

enum opt_section {
    SEC_MAIN,   /* kcptun's visible flags */
    SEC_MANUAL, /* kcptun's hidden manual-mode knobs */
    SEC_KTUN,   /* ktun extras */
};

struct opt_desc {
    const char *name;     /* long flag name, also the JSON key (NULL: not in JSON) */
    const char *alias;    /* second long name (--ds, --ps), or NULL */
    char letter;          /* one-letter form, or 0 */
    uint8_t roles;        /* ROLE_* mask */
    uint8_t type;         /* enum opt_type */
    uint8_t section;      /* enum opt_section, for --help */
    uint16_t offset;      /* field in struct config */
    uint16_t size;        /* field size (strings: capacity including the NUL) */
    const char *metavar;  /* value placeholder in --help, NULL for booleans */
    const char *help;     /* one-line description */
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define NOFIELD 0, 0

/* The one option table: getopt's table, the JSON keys and --help are all derived from it. */
static const struct opt_desc opts[] = {
    {"localaddr", NULL, 'l', ROLE_C, OPT_STR, SEC_MAIN, FIELD(localaddr), "ADDR",
     "local TCP listen address"},
    {"remoteaddr", NULL, 'r', ROLE_C, OPT_STR, SEC_MAIN, FIELD(remoteaddr), "ADDR",
     "kcp server address; host:MIN-MAX picks a random port of the range per session"},
    {"listen", NULL, 'l', ROLE_S, OPT_STR, SEC_MAIN, FIELD(listen), "ADDR",
     "kcp server listen address; :MIN-MAX binds every port of the range"},
    {"target", NULL, 't', ROLE_S, OPT_STR, SEC_MAIN, FIELD(target), "ADDR",
     "target host:port, or a Unix socket path starting with / or ."},
    {"key", NULL, 0, ROLE_ALL, OPT_STR, SEC_MAIN, FIELD(key), "KEY",
     "pre-shared secret between client and server (env KCPTUN_KEY)"},
    {"crypt", NULL, 0, ROLE_ALL, OPT_STR, SEC_MAIN, FIELD(crypt), "METHOD",
     "aes, aes-128, aes-192, salsa20, blowfish, twofish, cast5, 3des, tea, xtea, xor, sm4, "
     "none, aes-128-gcm, null (newer kcptun), xsalsa20-poly1305 (ktun only)"},
    {"mode", NULL, 0, ROLE_ALL, OPT_STR, SEC_MAIN, FIELD(mode), "MODE",
     "profiles: fast3, fast2, fast, normal, manual"},
    {"conn", NULL, 0, ROLE_C, OPT_INT, SEC_MAIN, FIELD(conn), "N",
     "number of UDP connections (KCP sessions) to the server"},
    {"autoexpire", NULL, 0, ROLE_C, OPT_INT, SEC_MAIN, FIELD(autoexpire_s), "SECONDS",
     "auto expiration time of a UDP connection, 0 to disable"},
    {"scavengettl", NULL, 0, ROLE_C, OPT_INT, SEC_MAIN, FIELD(scavengettl_s), "SECONDS",
     "how long an expired connection can live on"},
    {"mtu", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(mtu), "BYTES",
     "maximum transmission unit for UDP packets (50..1500)"},
    {"sndwnd", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(sndwnd), "N",
     "send window size (packets); with pacing (default) a bound on the initial window, the "
     "pacer sizes the window from the measured path (a fixed cap: --nopace)"},
    {"rcvwnd", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(rcvwnd), "N",
     "receive window size (packets)"},
    {"datashard", "ds", 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(datashard), "N",
     "reed-solomon erasure coding: data shards"},
    {"parityshard", "ps", 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(parityshard), "N",
     "reed-solomon erasure coding: parity shards"},
    {"dscp", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(dscp), "N", "DSCP (6 bits)"},
    {"nocomp", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_MAIN, FIELD(nocomp), NULL,
     "disable compression"},
    {"sockbuf", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(sockbuf), "BYTES",
     "per-socket buffer"},
    {"smuxver", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(smuxver), "N",
     "smux version, 1 or 2 (a server without it takes each client's)"},
    {"smuxbuf", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(smuxbuf), "BYTES",
     "overall de-mux buffer"},
    {"streambuf", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(streambuf), "BYTES",
     "per-stream receive buffer (smux v2)"},
    {"keepalive", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(keepalive_s), "SECONDS",
     "seconds between heartbeats (1..30)"},
    {"framesize", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(framesize), "BYTES",
     "largest smux frame payload sent (1..65535; newer kcptun: 8192)"},
    {"closewait", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(closewait_s), "SECONDS",
     "delay our FIN this long after the local side ends, as kcptun v20260208 (its server: "
     "30); default -1: hold it only for an smux v2 peer that half-closed first, until it has "
     "read everything or 30 s (its smux >= 1.5.54 drops data unread when our FIN arrives)"},
    {"ratelimit", NULL, 0, ROLE_ALL, OPT_I64, SEC_MAIN, FIELD(ratelimit), "BYTES/S",
     "cap on each KCP session's sending rate, 0 = none (needs pacing)"},
    {"__android_vpn", NULL, 'V', ROLE_C, OPT_BOOL, SEC_KTUN, FIELD(android_vpn), NULL,
     "shadowsocks-android VPN mode: UDP sockets are handed to ./protect_path"},
    {"QPP", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_MAIN, FIELD(qpp), NULL,
     "kcptun's Quantum Permutation Pad: substitute every stream byte (both ends must agree)"},
    {"QPPCount", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(qppcount), "N",
     "number of QPP pads (1..65535; an odd count, 7 or more, is kcptun's advice)"},
    {"QPPVariant", NULL, 0, ROLE_ALL, OPT_STR, SEC_KTUN, FIELD(qppvariant), "A|B|C",
     "QPP pads of kcptun builds up to 2025-12-18 (A), to 2025-12-22 (B), or later (C)"},
    {"snmplog", NULL, 0, ROLE_ALL, OPT_STR, SEC_MAIN, FIELD(snmplog), "FILE",
     "collect SNMP counters to a CSV file; Go time layout allowed: ./snmp-20060102.log"},
    {"snmpperiod", NULL, 0, ROLE_ALL, OPT_INT, SEC_MAIN, FIELD(snmpperiod_s), "SECONDS",
     "SNMP collect period"},
    {"pprof", NULL, 0, ROLE_S, OPT_BOOL, SEC_MAIN, FIELD(pprof), NULL,
     "accepted for kcptun compatibility and ignored (no Go profiler)"},
    {"log", NULL, 0, ROLE_ALL, OPT_STR, SEC_MAIN, FIELD(log), "FILE",
     "log file (appended; reopened on SIGHUP), default stderr"},
    {"quiet", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_MAIN, FIELD(quiet), NULL,
     "suppress the 'stream open/close' messages"},
    {"tcp", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_MAIN, FIELD(tcp), NULL,
     "emulate a TCP connection (kcptun's tcpraw; Linux, root, iptables); client: "
     "'--tcp auto' uses UDP or fake TCP, whichever answers"},
    {NULL, "c", 'c', ROLE_ALL, OPT_FILE, SEC_MAIN, FIELD(config_file), "FILE",
     "JSON config file; its keys override the command line"},
    {"acknodelay", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_MANUAL, FIELD(acknodelay), NULL,
     "flush ACKs immediately when a packet is received"},
    {"nodelay", NULL, 0, ROLE_ALL, OPT_INT, SEC_MANUAL, FIELD(nodelay), "0|1",
     "KCP nodelay"},
    {"interval", NULL, 0, ROLE_ALL, OPT_INT, SEC_MANUAL, FIELD(interval_ms), "MS",
     "KCP update interval (10..5000)"},
    {"resend", NULL, 0, ROLE_ALL, OPT_INT, SEC_MANUAL, FIELD(resend), "N",
     "KCP fast resend after N duplicate ACKs, 0 = off"},
    {"nc", NULL, 0, ROLE_ALL, OPT_INT, SEC_MANUAL, FIELD(nc), "0|1",
     "1 = no congestion control"},
    {"maxsessions", NULL, 0, ROLE_S, OPT_INT, SEC_KTUN, FIELD(maxsessions), "N",
     "maximum concurrent KCP sessions; 0 = from the descriptor limit and memory"},
    {"maxstreams", NULL, 0, ROLE_ALL, OPT_INT, SEC_KTUN, FIELD(maxstreams), "N",
     "maximum streams per session"},
    {"bufbudget", NULL, 0, ROLE_ALL, OPT_I64, SEC_KTUN, FIELD(bufbudget), "BYTES",
     "total buffered bytes of the process, all sessions"},
    {"nopace", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_KTUN, FIELD(nopace), NULL,
     "send as kcp-go does (fixed windows, bursts) instead of pacing at the measured rate"},
    {"nofechold", NULL, 0, ROLE_ALL, OPT_BOOL, SEC_KTUN, FIELD(nofechold), NULL,
     "fast-retransmit as kcp-go does, without giving FEC parity the chance to rebuild"},
    {"hop", NULL, 0, ROLE_C, OPT_INT, SEC_KTUN, FIELD(hop_s), "SECONDS",
     "move each session to another random port of the -r range this often (secure mode, "
     "ktun server with -l :MIN-MAX); 0 = off"},
    {"tcpforward", NULL, 'L', ROLE_C, OPT_LIST, SEC_KTUN, FIELD(tcpfwd),
     "[BIND:]PORT:HOST:HOSTPORT",
     "repeatable, as ssh -L: a local TCP port forwarded to HOST:HOSTPORT as the server sees "
     "it (ktun server; BIND defaults to 127.0.0.1, * for every address)"},
    {"socks", NULL, 'D', ROLE_C, OPT_LIST, SEC_KTUN, FIELD(socks), "[BIND:]PORT",
     "repeatable, as ssh -D: a SOCKS5 server (CONNECT, UDP ASSOCIATE) whose connections and "
     "datagrams the ktun server opens (names resolved there)"},
    {"allow", NULL, 0, ROLE_S, OPT_LIST, SEC_KTUN, FIELD(allow), "HOST:PORTS",
     "repeatable: a target peers may name besides --target: host:port, a CIDR block, a "
     "name, *.domain, ports N, N-M or * (docs/forwards.md)"},
    {"udpforward", NULL, 'U', ROLE_C, OPT_LIST, SEC_KTUN, FIELD(udpfwd),
     "[BIND:]PORT:HOST:HOSTPORT",
     "repeatable: a local UDP port whose datagrams the ktun server sends to HOST:HOSTPORT, "
     "one flow per source, over the datagram channel (BIND defaults to 127.0.0.1)"},
    {"udpidle", NULL, 0, ROLE_ALL, OPT_INT, SEC_KTUN, FIELD(udpidle_s), "SECONDS",
     "a UDP flow with no datagram for this long closes"},
    {"udpflows", NULL, 0, ROLE_ALL, OPT_INT, SEC_KTUN, FIELD(udpflows), "N",
     "open UDP flows per session at most"},
    {"udpflowsall", NULL, 0, ROLE_ALL, OPT_INT, SEC_KTUN, FIELD(udpflowsall), "N",
     "open UDP flows of the process at most"},
    {"plugin_mode", NULL, 0, ROLE_ALL, OPT_STR, SEC_KTUN, FIELD(plugin_mode),
     "tcp_only|udp_only|tcp_and_udp",
     "shadowsocks plugin (SIP003u): with udp the client also carries the UDP relay's "
     "datagrams from SS_LOCAL to the server's SS_LOCAL over the datagram channel"},
    {"peer", NULL, 0, ROLE_C, OPT_STR, SEC_KTUN, FIELD(peer), "auto|ktun|kcptun",
     "ktun extensions (docs/extensions.md): auto offers them when a UDP forward or a "
     "forward target needs a ktun server, or in the secure mode; ktun always; kcptun never"},
    {"loglevel", NULL, 0, ROLE_ALL, OPT_LEVEL, SEC_KTUN, FIELD(loglevel), "LEVEL",
     "error, warn, info or debug"},
    {"help", NULL, 'h', ROLE_ALL, OPT_HELP, SEC_MAIN, NOFIELD, NULL, "show help"},
    {"version", NULL, 'v', ROLE_ALL, OPT_VERSION, SEC_MAIN, NOFIELD, NULL,
     "print the version"},
};

#define OPT_COUNT ((int)ARRAY_SIZE(opts))
#define OPT_VAL_BASE 257 /* getopt values: OPT_VAL_BASE + index into opts[] */

static const char *const crypt_names[] = {
    "aes",  "aes-128", "aes-192", "salsa20", "blowfish", "twofish", "cast5",
    "3des", "tea",     "xtea",    "xor",     "sm4",      "none",    "aes-128-gcm",
    "null", "xsalsa20-poly1305",
};

struct mode_row {
    const char *name;
    int nodelay, interval_ms, resend, nc;
};

static const struct mode_row modes[] = {
    {"normal", 0, 40, 2, 1},
    {"fast", 0, 30, 2, 1},
    {"fast2", 1, 20, 2, 1},
    {"fast3", 1, 10, 2, 1},
};

/* ------------------------------------------------------------------------------------------ */
/* Small helpers */

static void add_warning(struct config *cfg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends one line to cfg->warnings; lines that do not fit are dropped whole. */
static void add_warning(struct config *cfg, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    size_t used = strlen(cfg->warnings), n = strlen(line);
    if (used + n + 2 <= sizeof(cfg->warnings)) {
        memcpy(cfg->warnings + used, line, n);
        cfg->warnings[used + n] = '\n';
        cfg->warnings[used + n + 1] = '\0';
    }
}

static bool has_role(const struct opt_desc *o, enum config_role role)
{
    return (o->roles & (1u << role)) != 0;
}

/* The name used in messages: "--mtu", "-c". */
static void opt_label(const struct opt_desc *o, char *buf, size_t cap)
{
    if (o->name)
        snprintf(buf, cap, "--%s", o->name);
    else
        snprintf(buf, cap, "-%c", o->letter);
}

const char *config_prog_name(enum config_role role)
{
    return role == CONFIG_SERVER ? "ktun-server" : "ktun-client";
}

bool config_crypt_is_known(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(crypt_names); i++)
        if (strcmp(name, crypt_names[i]) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Defaults */

void config_defaults(struct config *cfg, enum config_role role)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->role = role;
    if (role == CONFIG_CLIENT) {
        strcpy(cfg->localaddr, ":12948");
        strcpy(cfg->remoteaddr, "vps:29900");
        cfg->sndwnd = 128;
        cfg->rcvwnd = 512;
    } else {
        strcpy(cfg->listen, ":29900");
        strcpy(cfg->target, "127.0.0.1:12948");
        cfg->sndwnd = 1024;
        cfg->rcvwnd = 1024;
    }
    strcpy(cfg->key, DEFAULT_KEY);
    strcpy(cfg->crypt, "aes");
    strcpy(cfg->mode, "fast");
    cfg->nodelay = 0;
    cfg->interval_ms = 50;
    cfg->resend = 0;
    cfg->nc = 0;
    cfg->mtu = 1350;
    cfg->datashard = 10;
    cfg->parityshard = 3;
    cfg->sockbuf = 4194304;
    cfg->conn = 1;
    cfg->autoexpire_s = 0;
    cfg->scavengettl_s = 600;
    cfg->hop_s = 0;
    cfg->smuxver = 1;
    cfg->smuxbuf = 4194304;
    cfg->streambuf = 2097152;
    cfg->keepalive_s = 10;
    cfg->framesize = 32768;
    cfg->closewait_s = -1;
    cfg->ratelimit = 0;
    cfg->qpp = false;
    cfg->qppcount = QPP_COUNT_DEFAULT;
    strcpy(cfg->qppvariant, qpp_variant_name(QPP_VARIANT_DEFAULT));
    cfg->snmpperiod_s = 60;
    cfg->loglevel = LOG_LEVEL_INFO;
    cfg->maxsessions = 0; /* sized at start: config_auto_maxsessions */
    cfg->maxstreams = 4096;
    cfg->bufbudget = (int64_t)256 << 20;
    strcpy(cfg->peer, "auto");
    strcpy(cfg->plugin_mode, "tcp_only");
    cfg->udpidle_s = 60;
    cfg->udpflows = 4096;
    cfg->udpflowsall = 16384;
}

bool config_plugin_udp(const struct config *cfg)
{
    return cfg->sip003 && (strcmp(cfg->plugin_mode, "tcp_and_udp") == 0 ||
                           strcmp(cfg->plugin_mode, "udp_only") == 0);
}

bool config_needs_ktun_peer(const struct config *cfg)
{
    return cfg->udpfwd[0] != '\0' ||
           (cfg->role == CONFIG_CLIENT &&
            (cfg->tcpfwd[0] || cfg->socks[0] || config_plugin_udp(cfg)));
}

bool config_offers_caps(const struct config *cfg)
{
    if (cfg->role != CONFIG_CLIENT || strcmp(cfg->peer, "kcptun") == 0)
        return false;
    return strcmp(cfg->peer, "ktun") == 0 || strcmp(cfg->crypt, "xsalsa20-poly1305") == 0 ||
           config_needs_ktun_peer(cfg);
}

/* ------------------------------------------------------------------------------------------ */
/* Value parsing */

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return 99;
}

/* Parses a Go integer literal as strconv.ParseInt(s, 0, 64) does: optional sign, 0x/0o/0b
 * prefixes, a leading 0 for octal, '_' between digits. Returns 0 or ERR_INVAL. */
static int parse_go_int(const char *s, int64_t *out)
{
    bool neg = false;
    int base = 10;
    uint64_t v = 0, limit;
    bool any = false;      /* a digit was seen */
    bool us_ok = false;    /* an '_' may come next: after a digit or a base prefix */

    if (*s == '+' || *s == '-')
        neg = *s++ == '-';
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        base = 16, s += 2, us_ok = true;
    else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
        base = 8, s += 2, us_ok = true;
    else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
        base = 2, s += 2, us_ok = true;
    else if (s[0] == '0' && s[1] != '\0')
        base = 8, s += 1, any = true, us_ok = true;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *s; s++) {
        if (*s == '_') {
            if (!us_ok)
                return ERR_INVAL;
            us_ok = false;
            continue;
        }
        int d = digit_value(*s);
        if (d >= base)
            return ERR_INVAL;
        if (v > (limit - (uint64_t)d) / (uint64_t)base)
            return ERR_INVAL;
        v = v * (uint64_t)base + (uint64_t)d;
        any = true;
        us_ok = true;
    }
    if (!any || s[-1] == '_')
        return ERR_INVAL;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* strconv.ParseBool's spellings. Returns 0 or ERR_INVAL. */
static int parse_go_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return ERR_INVAL;
}

static int set_string(struct config *cfg, const struct opt_desc *o, const char *v,
                      const char *label, char *err, size_t errlen)
{
    size_t n = strlen(v);
    if (n >= o->size)
        return err_fail(err, errlen, "%s: value too long (%zu bytes, at most %u)", label, n,
                        (unsigned)o->size - 1);
    memcpy((char *)cfg + o->offset, v, n + 1);
    if (o->offset == offsetof(struct config, localaddr))
        cfg->localaddr_set = true;
    return 0;
}

/* Notes that the user gave a setting the server could otherwise detect per session. */
static void note_given(struct config *cfg, const struct opt_desc *o)
{
    if (o->offset == offsetof(struct config, smuxver))
        cfg->smuxver_set = true;
    else if (o->offset == offsetof(struct config, nocomp))
        cfg->nocomp_set = true;
}

static int set_int64(struct config *cfg, const struct opt_desc *o, int64_t v, const char *label,
                     const char *text, char *err, size_t errlen)
{
    note_given(cfg, o);
    if (o->type == OPT_INT) {
        if (v < INT_MIN || v > INT_MAX)
            return err_fail(err, errlen, "%s: %s is out of range", label, text);
        int iv = (int)v;
        memcpy((char *)cfg + o->offset, &iv, sizeof(iv));
    } else {
        memcpy((char *)cfg + o->offset, &v, sizeof(v));
    }
    return 0;
}

/* Appends |v| as one more line of the list option |o|. */
static int append_list(struct config *cfg, const struct opt_desc *o, const char *v,
                       const char *label, char *err, size_t errlen)
{
    char *field = (char *)cfg + o->offset;
    size_t used = strlen(field), n = strlen(v);
    if (n == 0 || strchr(v, '\n'))
        return err_fail(err, errlen, "%s: %s value", label, n ? "multi-line" : "empty");
    if (used + n + 2 > o->size)
        return err_fail(err, errlen, "%s: too many values (%u bytes in all at most)", label,
                        (unsigned)o->size - 2);
    memcpy(field + used, v, n);
    field[used + n] = '\n';
    field[used + n + 1] = '\0';
    return 0;
}

static void set_bool(struct config *cfg, const struct opt_desc *o, bool v)
{
    note_given(cfg, o);
    memcpy((char *)cfg + o->offset, &v, sizeof(v));
}

static int set_level(struct config *cfg, const struct opt_desc *o, const char *v,
                     const char *label, char *err, size_t errlen)
{
    int level = log_level_parse(v);
    if (level < 0)
        return err_fail(err, errlen, "%s: unknown level '%s' (error, warn, info, debug)", label, v);
    memcpy((char *)cfg + o->offset, &level, sizeof(level));
    return 0;
}

/* Stores the command-line text |v| (NULL for a bare boolean flag) into option |o|. */
/* "--tcp auto" / "--tcp=auto": fake TCP or UDP, whichever answers (ktun only). */
static bool is_tcp_auto(const struct opt_desc *o, const char *v)
{
    return v && o->name && strcmp(o->name, "tcp") == 0 && strcmp(v, "auto") == 0;
}

static int set_from_text(struct config *cfg, const struct opt_desc *o, const char *v, char *err,
                         size_t errlen)
{
    char label[40];
    int64_t n;
    bool b = true;

    opt_label(o, label, sizeof(label));
    switch ((enum opt_type)o->type) {
    case OPT_STR:
    case OPT_FILE:
        return set_string(cfg, o, v, label, err, errlen);
    case OPT_LIST:
        return append_list(cfg, o, v, label, err, errlen);
    case OPT_INT:
    case OPT_I64:
        if (parse_go_int(v, &n) < 0)
            return err_fail(err, errlen, "%s: invalid value '%s' (not an integer)", label, v);
        return set_int64(cfg, o, n, label, v, err, errlen);
    case OPT_BOOL:
        if (v && is_tcp_auto(o, v)) {
            cfg->tcp = cfg->tcp_auto = true;
            return 0;
        }
        if (v && parse_go_bool(v, &b) < 0)
            return err_fail(err, errlen, "%s: invalid value '%s' (true or false)", label, v);
        set_bool(cfg, o, b);
        return 0;
    case OPT_LEVEL:
        return set_level(cfg, o, v, label, err, errlen);
    case OPT_HELP:
    case OPT_VERSION:
        return 0;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Command line */

/* Finds the option spelled |name| (|len| bytes: a long name, alias or letter) for |role|.
 * Returns its index, or -1; |other_role| is set when the name belongs to the other role. */
static int find_opt(const char *name, size_t len, enum config_role role, bool *other_role)
{
    *other_role = false;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opts[i];
        bool match = (o->name && strlen(o->name) == len && memcmp(o->name, name, len) == 0) ||
                     (o->alias && strlen(o->alias) == len && memcmp(o->alias, name, len) == 0) ||
                     (o->letter && len == 1 && name[0] == o->letter);
        if (!match)
            continue;
        if (has_role(o, role))
            return i;
        *other_role = true;
    }
    return -1;
}

static bool takes_value(const struct opt_desc *o)
{
    return o->type == OPT_STR || o->type == OPT_INT || o->type == OPT_I64 ||
           o->type == OPT_LEVEL || o->type == OPT_FILE || o->type == OPT_LIST;
}

/* Explains a stray positional argument |arg| that follows |prev| (may be NULL). */
static int stray_argument(const char *prev, const char *arg, enum config_role role, char *err,
                          size_t errlen)
{
    bool dummy, b;
    if (prev && prev[0] == '-' && parse_go_bool(arg, &b) == 0) {
        const char *name = prev + (prev[1] == '-' ? 2 : 1);
        int i = find_opt(name, strlen(name), role, &dummy);
        if (i >= 0 && opts[i].type == OPT_BOOL)
            return err_fail(err, errlen,
                            "unexpected argument '%s': boolean flags take no separate value "
                            "(write %s=%s)", arg, prev, arg);
    }
    return err_fail(err, errlen, "unexpected argument '%s' (%s takes no positional arguments)", arg,
                    config_prog_name(role));
}

/* True if |a| spells one of |role|'s flags ("--key", "-mtu=5"): Go would take it as the
 * previous flag's value, but it is almost surely a forgotten value. */
static bool looks_like_flag(const char *a, enum config_role role)
{
    bool other;
    if (a[0] != '-' || a[1] == '\0')
        return false;
    const char *name = a + (a[1] == '-' ? 2 : 1);
    size_t len = strcspn(name, "=");
    return len > 0 && find_opt(name, len, role, &other) >= 0;
}

/*
 * Checks every flag spelling before getopt sees it. getopt_long_only would also accept
 * abbreviations ("--loc") and glued short values ("-l:1"), neither of which Go's flag package
 * takes, and its messages name no role. After this pass getopt only meets exact names, each
 * with its value. Returns CONFIG_OK, CONFIG_HELP (the "help" command) or ERR_INVAL.
 */
static int prescan(int argc, char **argv, enum config_role role, char *err, size_t errlen)
{
    const char *prev = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0') {
            if (i == 1 && (strcmp(a, "help") == 0 || strcmp(a, "h") == 0))
                return CONFIG_HELP;
            return stray_argument(prev, a, role, err, errlen);
        }
        if (strcmp(a, "--") == 0) {
            if (i + 1 < argc)
                return stray_argument(NULL, argv[i + 1], role, err, errlen);
            return CONFIG_OK;
        }
        const char *name = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        bool other;
        if (len == 0)
            return err_fail(err, errlen, "bad flag syntax '%s'", a);
        int k = find_opt(name, len, role, &other);
        if (k < 0) {
            if (other)
                return err_fail(err, errlen, "flag %.*s is not a %s flag", (int)(len + name - a), a,
                                config_prog_name(role));
            return err_fail(err, errlen, "unknown flag %.*s (see --help)", (int)(len + name - a),
                            a);
        }
        const struct opt_desc *o = &opts[k];
        if (!eq && i + 1 < argc && is_tcp_auto(o, argv[i + 1]))
            i++; /* "--tcp auto" */
        if (eq && (o->type == OPT_HELP || o->type == OPT_VERSION))
            return err_fail(err, errlen, "flag %.*s takes no value", (int)(len + name - a), a);
        if (takes_value(o) && !eq) {
            if (i + 1 >= argc || looks_like_flag(argv[i + 1], role))
                return err_fail(err, errlen, "flag %s needs a value", a);
            i++;
        }
        prev = a;
    }
    return CONFIG_OK;
}

/* Single-letter long names need NUL-terminated strings: one per letter used in opts[]. */
static const char *letter_name(char c)
{
    static const char *const names[] = {"l", "r", "t", "c", "h", "v", "U", "L", "D", "V"};
    static const char letters[] = "lrtchvULDV";
    const char *p = c ? strchr(letters, c) : NULL;
    return p ? names[p - letters] : NULL;
}

/* Builds getopt's table from opts[] for |role|: every name, alias and letter becomes a long
 * option (getopt_long_only then reads "-l", "--l", "-mode" and "--mode" alike). */
static void build_longopts(struct option *lo, enum config_role role)
{
    int n = 0;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opts[i];
        if (!has_role(o, role))
            continue;
        int has_arg = takes_value(o) ? required_argument
                      : o->type == OPT_BOOL ? optional_argument : no_argument;
        const char *names[3] = {o->name, o->alias, letter_name(o->letter)};
        for (int j = 0; j < 3; j++) {
            if (!names[j])
                continue;
            lo[n].name = names[j];
            lo[n].has_arg = has_arg;
            lo[n].flag = NULL;
            lo[n].val = OPT_VAL_BASE + i;
            n++;
        }
    }
    memset(&lo[n], 0, sizeof(lo[n]));
}

int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    struct option lo[3 * ARRAY_SIZE(opts) + 1];
    const char *env = getenv("KCPTUN_KEY");
    int rc, result = CONFIG_OK;

    bool dummy;
    int key_opt = find_opt("key", 3, cfg->role, &dummy);
    if (env && set_string(cfg, &opts[key_opt], env, "KCPTUN_KEY", err, errlen) < 0)
        return ERR_INVAL;
    rc = prescan(argc, argv, cfg->role, err, errlen);
    if (rc != CONFIG_OK)
        return rc;
    build_longopts(lo, cfg->role);
    optind = 0; /* glibc: full reinitialisation */
    opterr = 0;
    /* A bad value does not stop the loop: --help or --version anywhere still wins. */
    for (;;) {
        int c = getopt_long_only(argc, argv, "+:", lo, NULL);
        if (c == -1)
            break;
        char *e = rc == CONFIG_OK ? err : NULL; /* keep the first reason */
        if (c < OPT_VAL_BASE || c >= OPT_VAL_BASE + OPT_COUNT) {
            rc = err_fail(e, errlen, "cannot parse argument %d ('%s')", optind - 1,
                          argv[optind - 1]);
            continue;
        }
        const struct opt_desc *o = &opts[c - OPT_VAL_BASE];
        if (o->type == OPT_HELP && result == CONFIG_OK)
            result = CONFIG_HELP;
        else if (o->type == OPT_VERSION && result == CONFIG_OK)
            result = CONFIG_VERSION;
        else if (set_from_text(cfg, o, optarg, e, errlen) < 0)
            rc = ERR_INVAL;
        else if (!optarg && optind < argc && is_tcp_auto(o, argv[optind])) {
            cfg->tcp_auto = true; /* "--tcp auto" */
            optind++;
        }
    }
    if (result != CONFIG_OK)
        return result;
    if (rc == CONFIG_OK && optind < argc) /* prescan() makes this unreachable; be safe */
        rc = err_fail(err, errlen, "unexpected argument '%s'", argv[optind]);
    if (rc != CONFIG_OK)
        return rc;
    if (cfg->config_file[0] && config_load_json(cfg, cfg->config_file, err, errlen) < 0)
        return ERR_INVAL;
    if (config_apply_sip003(cfg, getenv("SS_REMOTE_HOST"), getenv("SS_REMOTE_PORT"),
                            getenv("SS_LOCAL_HOST"), getenv("SS_LOCAL_PORT"),
                            getenv("SS_PLUGIN_OPTIONS"), err, errlen) < 0)
        return ERR_INVAL;
    if (config_apply_mode(cfg, err, errlen) < 0)
        return ERR_INVAL;
    if (cfg->role == CONFIG_SERVER && cfg->pprof)
        add_warning(cfg, "--pprof: ktun has no Go profiler; ignored");
    if (strcmp(cfg->key, DEFAULT_KEY) == 0)
        add_warning(cfg, "--key: using kcptun's built-in default key; set --key or KCPTUN_KEY");
    return CONFIG_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Shadowsocks plugin mode (SIP003) */

/* Writes "host:port" into |out|, bracketing IPv6 literals. */
static int join_addr(char *out, size_t cap, const char *host, size_t host_len, const char *port,
                     const char *what, char *err, size_t errlen)
{
    bool v6 = memchr(host, ':', host_len) != NULL;
    int n = snprintf(out, cap, "%s%.*s%s:%s", v6 ? "[" : "", (int)host_len, host, v6 ? "]" : "",
                     port);
    if (n < 0 || (size_t)n >= cap)
        return err_fail(err, errlen, "%s: address too long", what);
    return 0;
}

/* The address to use from SS_REMOTE_HOST, which shadowsocks-libev fills with every server host
 * joined by '|': the server listens on the wildcard if the list has one ("0.0.0.0|::" becomes
 * the dual-stack [::]), else on the first; the client dials the first. */
static int remote_addr(struct config *cfg, const char *hosts, const char *port, char *out,
                       size_t cap, char *err, size_t errlen)
{
    const char *first = hosts;
    size_t first_len = strcspn(hosts, "|");
    if (first_len == 0)
        return err_fail(err, errlen, "SS_REMOTE_HOST: empty host in '%s'", hosts);
    if (cfg->role == CONFIG_SERVER) {
        bool v4_any = false, v6_any = false;
        int n = 0;
        for (const char *h = hosts; *h;) {
            size_t len = strcspn(h, "|");
            v4_any |= len == 7 && memcmp(h, "0.0.0.0", 7) == 0;
            v6_any |= len == 2 && memcmp(h, "::", 2) == 0;
            n++;
            h += len + (h[len] == '|');
        }
        if (v6_any)
            return join_addr(out, cap, "::", 2, port, "SS_REMOTE_HOST", err, errlen);
        if (v4_any)
            return join_addr(out, cap, "0.0.0.0", 7, port, "SS_REMOTE_HOST", err, errlen);
        if (n > 1)
            add_warning(cfg, "SS_REMOTE_HOST: listening on %.*s only (of '%s')", (int)first_len,
                        first, hosts);
    }
    return join_addr(out, cap, first, first_len, port, "SS_REMOTE_HOST", err, errlen);
}

int config_sip003_parse(const char *text, char keys[][CONFIG_OPTION_KEY_MAX],
                        char vals[][CONFIG_PATH_MAX], int max, char *err, size_t errlen)
{
    int n = 0;
    const char *p = text;
    while (*p) {
        if (n == max)
            return err_fail(err, errlen, "SS_PLUGIN_OPTIONS: more than %d options", max);
        char *out = keys[n];
        size_t len = 0, cap = CONFIG_OPTION_KEY_MAX;
        bool in_key = true, has_value = false;
        for (; *p && *p != ';'; p++) {
            char c = *p;
            if (c == '\\') {
                if (!p[1])
                    return err_fail(err, errlen, "SS_PLUGIN_OPTIONS: '\\' at the end");
                c = *++p;
            } else if (c == '=' && in_key) {
                out[len] = '\0';
                in_key = false;
                has_value = true;
                out = vals[n];
                len = 0;
                cap = CONFIG_PATH_MAX;
                continue;
            }
            if (len + 1 >= cap)
                return err_fail(err, errlen, "SS_PLUGIN_OPTIONS: option %d is too long", n + 1);
            out[len++] = c;
        }
        out[len] = '\0';
        if (!keys[n][0])
            return err_fail(err, errlen, "SS_PLUGIN_OPTIONS: empty option name (option %d)", n + 1);
        if (!has_value)
            strcpy(vals[n], "1"); /* a bare key means true */
        n++;
        if (*p == ';')
            p++;
    }
    return n;
}

int config_apply_sip003(struct config *cfg, const char *remote_host, const char *remote_port,
                        const char *local_host, const char *local_port, const char *options,
                        char *err, size_t errlen)
{
    if (!remote_host || !*remote_host || !remote_port || !*remote_port || !local_host ||
        !*local_host)
        return 0; /* not started as a plugin */
    if (!local_port || !*local_port)
        return err_fail(err, errlen, "SS_LOCAL_PORT: not set (shadowsocks plugin mode needs all "
                                 "of SS_REMOTE_HOST, SS_REMOTE_PORT, SS_LOCAL_HOST, "
                                 "SS_LOCAL_PORT)");
    cfg->sip003 = true;
    char remote[CONFIG_ADDR_MAX], local[CONFIG_ADDR_MAX];
    if (remote_addr(cfg, remote_host, remote_port, remote, sizeof(remote), err, errlen) < 0 ||
        join_addr(local, sizeof(local), local_host, strlen(local_host), local_port,
                  "SS_LOCAL_HOST", err, errlen) < 0)
        return ERR_INVAL;
    if (cfg->role == CONFIG_CLIENT) {
        strcpy(cfg->localaddr, local);
        cfg->localaddr_set = true;
        strcpy(cfg->remoteaddr, remote);
    } else {
        strcpy(cfg->listen, remote);
        strcpy(cfg->target, local);
    }
    if (!options || !*options)
        return 0;
    static char keys[64][CONFIG_OPTION_KEY_MAX];
    static char vals[64][CONFIG_PATH_MAX];
    int n = config_sip003_parse(options, keys, vals, 64, err, errlen);
    if (n < 0)
        return ERR_INVAL;
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(keys[i], keys[j]) == 0; /* the first of repeated keys wins */
        if (seen)
            continue;
        bool other;
        int k = find_opt(keys[i], strlen(keys[i]), cfg->role, &other);
        if (k < 0 && other) {
            add_warning(cfg, "SS_PLUGIN_OPTIONS: %s is not a %s option; ignored", keys[i],
                        config_prog_name(cfg->role));
            continue;
        }
        const struct opt_desc *o = k >= 0 ? &opts[k] : NULL;
        if (!o || !o->name || o->type == OPT_FILE || o->type == OPT_HELP ||
            o->type == OPT_VERSION)
            return err_fail(err, errlen, "SS_PLUGIN_OPTIONS: unknown option '%s'", keys[i]);
        char why[CONFIG_ERR_MAX];
        if (set_from_text(cfg, o, vals[i], why, sizeof(why)) < 0)
            return err_fail(err, errlen, "SS_PLUGIN_OPTIONS: %s", why);
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON file */

static const char *json_type_name(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "null";
}

/* JSON keys of newer kcptun that differ from the flag name. */
static const struct {
    const char *json, *flag;
} json_keys[] = {
    {"qpp-count", "QPPCount"},
    {"qpp-variant", "QPPVariant"},
};

/* The option whose JSON key is |key| (case-insensitive, as Go's encoding/json), any role. */
static const struct opt_desc *find_json_key(const char *key)
{
    for (size_t k = 0; k < ARRAY_SIZE(json_keys); k++)
        if (strcasecmp(json_keys[k].json, key) == 0)
            key = json_keys[k].flag;
    for (int i = 0; i < OPT_COUNT; i++) {
        const struct opt_desc *o = &opts[i];
        if (o->name && o->type != OPT_HELP && o->type != OPT_VERSION &&
            strcasecmp(o->name, key) == 0)
            return o;
    }
    return NULL;
}

/* Stores one JSON member |item| of file |path| into |cfg|. */
static int json_apply(struct config *cfg, const char *path, const cJSON *item, char *err,
                      size_t errlen)
{
    const char *key = item->string;
    const struct opt_desc *o = find_json_key(key);
    char label[CONFIG_PATH_MAX + 80];

    if (!o) {
        add_warning(cfg, "-c %s: unknown key \"%s\" ignored", path, key);
        return 0;
    }
    if (!has_role(o, cfg->role)) {
        add_warning(cfg, "-c %s: key \"%s\" is not a %s setting; ignored", path, key,
             config_prog_name(cfg->role));
        return 0;
    }
    if (cJSON_IsNull(item))
        return 0; /* Go leaves the field alone */
    snprintf(label, sizeof(label), "-c %s: key \"%s\"", path, key);
    switch ((enum opt_type)o->type) {
    case OPT_STR:
    case OPT_LEVEL:
        if (!cJSON_IsString(item))
            return err_fail(err, errlen, "%s: expected a string, got %s", label,
                            json_type_name(item));
        if (o->type == OPT_LEVEL)
            return set_level(cfg, o, item->valuestring, label, err, errlen);
        return set_string(cfg, o, item->valuestring, label, err, errlen);
    case OPT_INT:
    case OPT_I64: {
        double d = item->valuedouble;
        char text[64];
        if (!cJSON_IsNumber(item))
            return err_fail(err, errlen, "%s: expected an integer, got %s", label,
                            json_type_name(item));
        snprintf(text, sizeof(text), "%.17g", d);
        if (!(d <= JSON_SAFE_INT && d >= -JSON_SAFE_INT) || d != (double)(int64_t)d)
            return err_fail(err, errlen, "%s: expected an integer, got %s", label, text);
        return set_int64(cfg, o, (int64_t)d, label, text, err, errlen);
    }
    case OPT_BOOL:
        if (!cJSON_IsBool(item))
            return err_fail(err, errlen, "%s: expected true or false, got %s", label,
                            json_type_name(item));
        set_bool(cfg, o, cJSON_IsTrue(item));
        return 0;
    case OPT_LIST:
        /* the file's list replaces the command line's */
        ((char *)cfg + o->offset)[0] = '\0';
        if (cJSON_IsString(item))
            return append_list(cfg, o, item->valuestring, label, err, errlen);
        if (!cJSON_IsArray(item))
            return err_fail(err, errlen, "%s: expected a string or an array of strings, got %s",
                            label, json_type_name(item));
        for (const cJSON *v = item->child; v; v = v->next) {
            if (!cJSON_IsString(v))
                return err_fail(err, errlen, "%s: expected an array of strings, found %s", label,
                                json_type_name(v));
            if (append_list(cfg, o, v->valuestring, label, err, errlen) < 0)
                return ERR_INVAL;
        }
        return 0;
    case OPT_FILE:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return 0;
}

/* Reads at most JSON_FILE_MAX bytes of |path| into a NUL-terminated heap buffer. */
static int read_text_file(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    int rc = ERR_INVAL;

    if (!f)
        return err_fail(err, errlen, "-c %s: %s", path, strerror(errno));
    buf = malloc(JSON_FILE_MAX + 1);
    if (!buf) {
        rc = err_fail(err, errlen, "-c %s: out of memory", path);
        goto out;
    }
    size_t n = fread(buf, 1, JSON_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = err_fail(err, errlen, "-c %s: read error", path);
        goto out;
    }
    if (n > JSON_FILE_MAX) {
        rc = err_fail(err, errlen, "-c %s: file too big (over %d bytes)", path, JSON_FILE_MAX);
        goto out;
    }
    if (memchr(buf, '\0', n)) {
        rc = err_fail(err, errlen, "-c %s: contains a NUL byte (not a JSON text file)", path);
        goto out;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    fclose(f);
    return rc;
}

/* Length of the printable start of |p|, at most |max|: error snippets stay on one line. */
static size_t snippet_len(const char *p, size_t max)
{
    size_t n = 0;
    while (n < max && (unsigned char)p[n] >= ' ' && p[n] != 0x7f)
        n++;
    return n;
}

int config_load_json(struct config *cfg, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    const char *end = NULL;
    int rc = read_text_file(path, &text, &len, err, errlen);

    if (rc < 0)
        return rc;
    root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root) {
        size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : len;
        int line = 1, col = 1;
        for (size_t i = 0; i < off; i++, col++)
            if (text[i] == '\n')
                line++, col = 0;
        if (off >= len)
            rc = err_fail(err, errlen, "-c %s:%d:%d: JSON syntax error: unexpected end of file",
                          path, line, col);
        else
            rc = err_fail(err, errlen, "-c %s:%d:%d: JSON syntax error near '%.*s'", path, line,
                          col, (int)snippet_len(text + off, 12), text + off);
        goto out;
    }
    if (!cJSON_IsObject(root)) {
        rc = err_fail(err, errlen, "-c %s: the top level must be a JSON object, not %s", path,
                      json_type_name(root));
        goto out;
    }
    for (const cJSON *it = root->child; it; it = it->next) {
        rc = json_apply(cfg, path, it, err, errlen);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    cJSON_Delete(root);
    free(text);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Mode table */

static const struct mode_row *find_mode(const char *name)
{
    for (size_t i = 0; i < ARRAY_SIZE(modes); i++)
        if (strcmp(name, modes[i].name) == 0)
            return &modes[i];
    return NULL;
}

int config_apply_mode(struct config *cfg, char *err, size_t errlen)
{
    const struct mode_row *m = find_mode(cfg->mode);
    if (m) {
        cfg->nodelay = m->nodelay;
        cfg->interval_ms = m->interval_ms;
        cfg->resend = m->resend;
        cfg->nc = m->nc;
        return 0;
    }
    if (strcmp(cfg->mode, "manual") == 0)
        return 0;
    return err_fail(err, errlen, "--mode: unknown mode '%s' (fast3, fast2, fast, normal, manual)",
                    cfg->mode);
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses */

static bool is_service_name(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 31 || !isalpha((unsigned char)p[0]))
        return false;
    for (; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return false;
    return true;
}

/* Checks the port text |p| of address |s|: decimal 0..65535 or a service name. */
static int check_port(const char *s, const char *p, char *err, size_t errlen)
{
    if (*p == '\0')
        return err_fail(err, errlen, "address '%s': missing port (want host:port)", s);
    if (strspn(p, "0123456789") == strlen(p)) {
        const char *q = p + strspn(p, "0"); /* leading zeros are fine, as in Go */
        if (strlen(q) > 5 || atoi(q) > 65535)
            return err_fail(err, errlen, "address '%s': port %s is out of range 0..65535", s, p);
        return 0;
    }
    if (!is_service_name(p))
        return err_fail(err, errlen, "address '%s': bad port '%s'", s, p);
    return 0;
}

int config_parse_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
                      char *err, size_t errlen)
{
    const char *h, *hend, *p;

    if (s == NULL || *s == '\0')
        return err_fail(err, errlen, "empty address (want host:port)");
    if (s[0] == '[') {
        h = s + 1;
        hend = strchr(h, ']');
        if (!hend)
            return err_fail(err, errlen, "address '%s': missing ']'", s);
        if (hend == h)
            return err_fail(err, errlen, "address '%s': empty host in brackets", s);
        if (hend[1] != ':')
            return err_fail(err, errlen, "address '%s': missing port after ']' (want [host]:port)",
                            s);
        p = hend + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return err_fail(err, errlen, "address '%s': missing port (want host:port)", s);
        if (memchr(s, ':', (size_t)(colon - s)))
            return err_fail(err, errlen,
                            "address '%s': too many colons (write IPv6 as [::1]:29900)", s);
        h = s;
        hend = colon;
        p = colon + 1;
    }
    for (const char *q = h; q < hend; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= ' ' || c == 0x7f || c == '[' || c == ']' || c == '/')
            return err_fail(err, errlen, "address '%s': bad character in host", s);
    }
    if (check_port(s, p, err, errlen) < 0)
        return ERR_INVAL;
    if ((size_t)(hend - h) >= hostlen || strlen(p) >= portlen)
        return err_fail(err, errlen, "address '%s': too long", s);
    memcpy(host, h, (size_t)(hend - h));
    host[hend - h] = '\0';
    strcpy(port, p);
    return 0;
}

int config_port_range(const char *s, char *base, size_t basecap, uint16_t *lo, uint16_t *hi)
{
    *lo = *hi = 0;
    const char *colon = s ? strrchr(s, ':') : NULL;
    const char *dash = colon ? strchr(colon + 1, '-') : NULL;
    if (!dash) {
        if (!s || strlen(s) >= basecap)
            return ERR_INVAL;
        strcpy(base, s);
        return 0;
    }
    const char *a = colon + 1, *b = dash + 1;
    size_t alen = (size_t)(dash - a), blen = strlen(b);
    if (alen == 0 || alen > 5 || blen == 0 || blen > 5 || strspn(a, "0123456789") != alen ||
        strspn(b, "0123456789") != blen)
        return ERR_INVAL;
    long x = strtol(a, NULL, 10), y = strtol(b, NULL, 10);
    if (x < 1 || y > 65535 || x > y || (size_t)(dash - s) >= basecap)
        return ERR_INVAL;
    memcpy(base, s, (size_t)(dash - s));
    base[dash - s] = '\0';
    *lo = (uint16_t)x;
    *hi = (uint16_t)y;
    return 1;
}

int config_auto_maxsessions(uint64_t fds, uint64_t mem_bytes)
{
    uint64_t by_fd = fds > CONFIG_FD_RESERVE ? fds - CONFIG_FD_RESERVE : 0;
    uint64_t by_mem = mem_bytes / CONFIG_SESSION_BYTES;
    uint64_t n = MIN(by_fd, by_mem);
    return (int)MAX(MIN(n, (uint64_t)CONFIG_MAXSESSIONS_MAX), (uint64_t)CONFIG_MAXSESSIONS_MIN);
}

bool config_target_is_unix(const struct config *cfg)
{
    return cfg->target[0] == '/' || cfg->target[0] == '.';
}

/* Validates address |s| given by |flag|; |connect| refuses port 0 (only a listener may ask
 * the kernel for an ephemeral port). A port range MIN-MAX is allowed where |max_range| > 0,
 * with at most that many ports. */
static int check_addr_range(const char *flag, const char *s, bool connect, unsigned max_range,
                            char *err, size_t errlen)
{
    char base[CONFIG_ADDR_MAX + 16];
    uint16_t lo, hi;
    int rc = max_range ? config_port_range(s, base, sizeof(base), &lo, &hi) : 0;
    if (rc < 0)
        return err_fail(err, errlen, "%s: address '%s': bad port range (want host:MIN-MAX, "
                        "1 <= MIN <= MAX <= 65535)", flag, s);
    if (rc > 0 && (unsigned)(hi - lo) + 1 > max_range)
        return err_fail(err, errlen, "%s: address '%s': port range of %u ports, at most %u", flag,
                        s, (unsigned)(hi - lo) + 1, max_range);
    if (rc > 0)
        s = base;
    char host[CONFIG_ADDR_MAX], port[32], why[CONFIG_ERR_MAX];
    if (config_parse_addr(s, host, sizeof(host), port, sizeof(port), why, sizeof(why)) < 0)
        return err_fail(err, errlen, "%s: %s", flag, why);
    if (connect && strspn(port, "0") == strlen(port))
        return err_fail(err, errlen, "%s: address '%s': port 0 cannot be connected to", flag, s);
    return 0;
}

static int check_addr(const char *flag, const char *s, bool connect, char *err, size_t errlen)
{
    return check_addr_range(flag, s, connect, 0, err, errlen);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation */

static int check_range(const char *flag, int64_t v, int64_t lo, int64_t hi, const char *why,
                       char *err, size_t errlen)
{
    if (v >= lo && v <= hi)
        return 0;
    return err_fail(err, errlen, "%s: %lld is out of range %lld..%lld%s%s%s", flag, (long long)v,
                    (long long)lo, (long long)hi, why ? " (" : "", why ? why : "", why ? ")" : "");
}

static int validate_client(const struct config *cfg, char *err, size_t errlen)
{
    if (check_addr("--localaddr", cfg->localaddr, false, err, errlen) < 0 ||
        check_addr_range("--remoteaddr", cfg->remoteaddr, true, 65535, err, errlen) < 0 ||
        check_range("--conn", cfg->conn, 1, 65535, NULL, err, errlen) < 0 ||
        check_range("--autoexpire", cfg->autoexpire_s, 0, INT_MAX, "0 disables", err,
                    errlen) < 0 ||
        check_range("--scavengettl", cfg->scavengettl_s, 0, INT_MAX, NULL, err, errlen) < 0 ||
        check_range("--hop", cfg->hop_s, 0, 86400, "0 disables", err, errlen) < 0)
        return ERR_INVAL;
    char line[CONFIG_LIST_MAX], why[CONFIG_ERR_MAX];
    for (const char *p = cfg->udpfwd; *p;) {
        size_t n = strcspn(p, "\n");
        struct udpflow_spec spec;
        memcpy(line, p, n);
        line[n] = '\0';
        if (udpflow_parse_spec(line, &spec, why, sizeof(why)) < 0)
            return err_fail(err, errlen, "-U/--udpforward: %s", why);
        p += n + (p[n] == '\n');
    }
    const struct {
        char kind;
        const char *list;
    } fl[] = {{'L', cfg->tcpfwd}, {'D', cfg->socks}};
    for (size_t k = 0; k < ARRAY_SIZE(fl); k++) {
        for (const char *p = fl[k].list; *p;) {
            struct fwd_spec spec;
            size_t n = strcspn(p, "\n");
            memcpy(line, p, n);
            line[n] = '\0';
            if (fwd_parse_spec(fl[k].kind, line, &spec, why, sizeof(why)) < 0)
                return err_fail(err, errlen, "-%c: %s", fl[k].kind, why);
            p += n + (p[n] == '\n');
        }
    }
    if (strcmp(cfg->peer, "auto") != 0 && strcmp(cfg->peer, "ktun") != 0 &&
        strcmp(cfg->peer, "kcptun") != 0)
        return err_fail(err, errlen, "--peer: '%s' is not auto, ktun or kcptun", cfg->peer);
    if (strcmp(cfg->peer, "kcptun") == 0 && config_needs_ktun_peer(cfg))
        return err_fail(err, errlen, "--peer kcptun: UDP forwards and forward targets need a ktun "
                                 "server");
    if (cfg->hop_s > 0) {
        char base[CONFIG_ADDR_MAX + 16];
        uint16_t lo, hi;
        if (config_port_range(cfg->remoteaddr, base, sizeof(base), &lo, &hi) != 1 || lo == hi)
            return err_fail(err, errlen, "--hop: needs a port range of two ports or more in "
                            "--remoteaddr (host:MIN-MAX)");
        if (strcmp(cfg->crypt, "xsalsa20-poly1305") != 0 && strcmp(cfg->peer, "ktun") != 0)
            return err_fail(err, errlen, "--hop: needs --crypt xsalsa20-poly1305 or --peer ktun (a "
                            "kcptun server cannot follow a session to another port)");
    }
    return 0;
}

int config_allow_list(const struct config *cfg, struct allow_list *out, char *err,
                      size_t errlen)
{
    struct allow_list tmp = {0}, *l = out ? out : &tmp;
    char line[CONFIG_LIST_MAX], why[CONFIG_ERR_MAX];
    int rc = 0;
    for (const char *p = cfg->allow; *p && rc == 0;) {
        size_t n = strcspn(p, "\n");
        memcpy(line, p, n);
        line[n] = '\0';
        rc = allow_add(l, line, why, sizeof(why));
        if (rc < 0)
            err_fail(err, errlen, "--allow: %s", why);
        p += n + (p[n] == '\n');
    }
    if (rc < 0 || !out)
        allow_free(l);
    return rc < 0 ? ERR_INVAL : 0;
}

static int validate_server(const struct config *cfg, char *err, size_t errlen)
{
    if (check_addr_range("--listen", cfg->listen, false, CONFIG_LISTEN_PORTS_MAX, err, errlen) < 0)
        return ERR_INVAL;
    if (config_target_is_unix(cfg)) {
        if (strlen(cfg->target) > 107)
            return err_fail(err, errlen, "--target: Unix socket path longer than 107 bytes");
    } else {
        char why[CONFIG_ERR_MAX];
        if (check_addr("--target", cfg->target, true, why, sizeof(why)) < 0)
            return err_fail(err, errlen, "%s; Unix socket paths start with / or .", why);
    }
    if (config_allow_list(cfg, NULL, err, errlen) < 0)
        return ERR_INVAL;
    return check_range("--maxsessions", cfg->maxsessions, 0, CONFIG_MAXSESSIONS_MAX,
                       "0 sizes it from the descriptor limit and memory", err, errlen);
}

/* KCP and FEC knobs: the ranges kcp-go 5.6.1 honours instead of clamping or ignoring. */
static int validate_kcp(const struct config *cfg, char *err, size_t errlen)
{
    if (!find_mode(cfg->mode) && strcmp(cfg->mode, "manual") != 0)
        return err_fail(err, errlen,
                        "--mode: unknown mode '%s' (fast3, fast2, fast, normal, manual)",
                        cfg->mode);
    if (check_range("--nodelay", cfg->nodelay, 0, 1, NULL, err, errlen) < 0 ||
        check_range("--interval", cfg->interval_ms, 10, 5000, "kcp-go clamps to this", err,
                    errlen) < 0 ||
        check_range("--resend", cfg->resend, 0, INT_MAX, "0 disables", err, errlen) < 0 ||
        check_range("--nc", cfg->nc, 0, 1, NULL, err, errlen) < 0 ||
        check_range("--mtu", cfg->mtu, 50, 1500, "kcp-go ignores other values", err,
                    errlen) < 0 ||
        check_range("--sndwnd", cfg->sndwnd, 1, 65535, "windows travel as 16-bit fields", err,
                    errlen) < 0 ||
        check_range("--rcvwnd", cfg->rcvwnd, 1, 65535, "windows travel as 16-bit fields", err,
                    errlen) < 0 ||
        check_range("--datashard", cfg->datashard, 0, 255, NULL, err, errlen) < 0 ||
        check_range("--parityshard", cfg->parityshard, 0, 255, NULL, err, errlen) < 0 ||
        check_range("--dscp", cfg->dscp, 0, 63, "6 bits", err, errlen) < 0 ||
        check_range("--sockbuf", cfg->sockbuf, 1, INT_MAX, NULL, err, errlen) < 0)
        return ERR_INVAL;
    if (cfg->datashard + cfg->parityshard > 256)
        return err_fail(err, errlen,
                        "--datashard/--parityshard: %d + %d shards exceed 256 (Reed-Solomon limit)",
                        cfg->datashard, cfg->parityshard);
    return 0;
}

static int validate_smux(const struct config *cfg, char *err, size_t errlen)
{
    if (check_range("--smuxver", cfg->smuxver, 1, 2, NULL, err, errlen) < 0 ||
        check_range("--smuxbuf", cfg->smuxbuf, 1, INT_MAX, NULL, err, errlen) < 0 ||
        check_range("--streambuf", cfg->streambuf, 1, INT_MAX, NULL, err, errlen) < 0 ||
        check_range("--keepalive", cfg->keepalive_s, 1, 30,
                    "the peer's timeout is 30 s; kcptun refuses sessions beyond it", err,
                    errlen) < 0)
        return ERR_INVAL;
    if (cfg->streambuf > cfg->smuxbuf)
        return err_fail(err, errlen,
                        "--streambuf: %d is larger than --smuxbuf %d (smux refuses it)",
                        cfg->streambuf, cfg->smuxbuf);
    if (check_range("--framesize", cfg->framesize, 1, 65535, "smux's frame length field", err,
                    errlen) < 0 ||
        check_range("--closewait", cfg->closewait_s, -1, 3600, "-1: automatic", err, errlen) < 0 ||
        check_range("--ratelimit", cfg->ratelimit, 0, (int64_t)1 << 40, "bytes per second",
                    err, errlen) < 0)
        return ERR_INVAL;
    if (cfg->ratelimit > 0 && cfg->nopace)
        return err_fail(err, errlen, "--ratelimit: caps ktun's pacer, which --nopace turns off");
    enum qpp_variant v;
    if (qpp_variant_parse(cfg->qppvariant, &v) < 0)
        return err_fail(err, errlen,
                        "--QPPVariant: unknown variant '%s' "
                        "(A: kcptun builds 2024-07-16..2025-12-18, B: ..2025-12-22, C: later)",
                        cfg->qppvariant);
    if (cfg->qpp && check_range("--QPPCount", cfg->qppcount, 1, QPP_COUNT_MAX, NULL, err,
                                errlen) < 0)
        return ERR_INVAL;
    return 0;
}

static int validate_misc(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->snmplog[0] &&
        check_range("--snmpperiod", cfg->snmpperiod_s, 1, INT_MAX, NULL, err, errlen) < 0)
        return ERR_INVAL;
    if (check_range("--loglevel", cfg->loglevel, 0, LOG_LEVEL_COUNT - 1, NULL, err, errlen) < 0 ||
        check_range("--maxstreams", cfg->maxstreams, 1, 1 << 20, NULL, err, errlen) < 0 ||
        (strcmp(cfg->plugin_mode, "tcp_only") != 0 && strcmp(cfg->plugin_mode, "udp_only") != 0 &&
         strcmp(cfg->plugin_mode, "tcp_and_udp") != 0 &&
         err_fail(err, errlen, "--plugin_mode: '%s' is not tcp_only, udp_only or tcp_and_udp",
                  cfg->plugin_mode) < 0) ||
        check_range("--udpidle", cfg->udpidle_s, 1, 86400, NULL, err, errlen) < 0 ||
        check_range("--udpflows", cfg->udpflows, 1, 1 << 20, NULL, err, errlen) < 0 ||
        check_range("--udpflowsall", cfg->udpflowsall, 1, 1 << 22, NULL, err, errlen) < 0 ||
        check_range("--bufbudget", cfg->bufbudget, cfg->smuxbuf, (int64_t)1 << 40,
                    "at least --smuxbuf", err, errlen) < 0)
        return ERR_INVAL;
    return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->role == CONFIG_CLIENT ? validate_client(cfg, err, errlen) < 0
                                   : validate_server(cfg, err, errlen) < 0)
        return ERR_INVAL;
    if (!config_crypt_is_known(cfg->crypt))
        return err_fail(err, errlen,
                        "--crypt: unknown method '%s' (aes, aes-128, aes-192, salsa20, blowfish, "
                        "twofish, cast5, 3des, tea, xtea, xor, sm4, none, aes-128-gcm, null, "
                        "xsalsa20-poly1305)",
                        cfg->crypt);
    if (validate_kcp(cfg, err, errlen) < 0 || validate_smux(cfg, err, errlen) < 0 ||
        validate_misc(cfg, err, errlen) < 0)
        return ERR_INVAL;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Help, version, startup */

#define HELP_COL 32  /* descriptions start here */
#define HELP_WIDTH 99

/* Writes |text| from column |col| on, wrapping at HELP_WIDTH with a HELP_COL indent. */
static void put_wrapped(FILE *out, int col, const char *text)
{
    while (*text) {
        size_t word = strcspn(text, " ");
        if (col > HELP_COL && col + 1 + (int)word > HELP_WIDTH) {
            fprintf(out, "\n%*s", HELP_COL, "");
            col = HELP_COL;
        } else if (col > HELP_COL) {
            fputc(' ', out);
            col++;
        }
        fwrite(text, 1, word, out);
        col += (int)word;
        text += word;
        text += strspn(text, " ");
    }
    fputc('\n', out);
}

/* " (default ...)" for option |o| in the defaults |d|, or "" when there is none to show. */
static void default_text(const struct opt_desc *o, const struct config *d, char *buf, size_t cap)
{
    const char *field = (const char *)d + o->offset;
    int iv;
    int64_t lv;

    buf[0] = '\0';
    switch ((enum opt_type)o->type) {
    case OPT_STR:
        if (field[0])
            snprintf(buf, cap, "(default \"%s\")", field);
        break;
    case OPT_INT:
        memcpy(&iv, field, sizeof(iv));
        snprintf(buf, cap, "(default %d)", iv);
        break;
    case OPT_I64:
        memcpy(&lv, field, sizeof(lv));
        snprintf(buf, cap, "(default %lld)", (long long)lv);
        break;
    case OPT_LEVEL:
        memcpy(&iv, field, sizeof(iv));
        snprintf(buf, cap, "(default %s)", log_level_name(iv));
        break;
    case OPT_BOOL:
    case OPT_FILE:
    case OPT_LIST:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
}

static void usage_option(FILE *out, const struct opt_desc *o, const struct config *d)
{
    char left[96], def[CONFIG_ADDR_MAX + 32], text[512];
    const char *mv = o->metavar ? o->metavar : "";
    const char *sp = o->metavar ? " " : "";
    int n;

    if (o->letter && o->name)
        n = snprintf(left, sizeof(left), "  -%c, --%s%s%s", o->letter, o->name, sp, mv);
    else if (o->name && o->alias)
        n = snprintf(left, sizeof(left), "  --%s, --%s%s%s", o->name, o->alias, sp, mv);
    else if (o->name)
        n = snprintf(left, sizeof(left), "  --%s%s%s", o->name, sp, mv);
    else
        n = snprintf(left, sizeof(left), "  -%c%s%s", o->letter, sp, mv);
    fputs(left, out);
    if (n >= HELP_COL - 1)
        fprintf(out, "\n%*s", HELP_COL, "");
    else
        fprintf(out, "%*s", HELP_COL - n, "");
    default_text(o, d, def, sizeof(def));
    snprintf(text, sizeof(text), "%s%s%s", o->help, def[0] ? " " : "", def);
    put_wrapped(out, HELP_COL, text);
}

void config_usage(enum config_role role, FILE *out)
{
    static const char *const titles[] = {
        [SEC_MAIN] = ("Options (as kcptun's; -name works like --name, and --name=VALUE like "
                      "--name VALUE):"),
        [SEC_MANUAL] = "Manual mode knobs (kcptun's hidden flags; used only with --mode manual):",
        [SEC_KTUN] = "ktun options:",
    };
    struct config d;

    config_defaults(&d, role);
    fprintf(out, "Usage: %s [options]\n\n", config_prog_name(role));
    fprintf(out, "%s, wire-compatible with kcptun 20210922.\n",
            role == CONFIG_CLIENT ? "KCP tunnel client: TCP connections in, KCP sessions out"
                                  : "KCP tunnel server: KCP sessions in, TCP connections out");
    for (int sec = SEC_MAIN; sec <= SEC_KTUN; sec++) {
        fprintf(out, "\n%s\n", titles[sec]);
        for (int i = 0; i < OPT_COUNT; i++)
            if (opts[i].section == sec && has_role(&opts[i], role))
                usage_option(out, &opts[i], &d);
    }
    fprintf(out, "\nAddresses are host:port, [IPv6]:port or :port.\n"
                 "A named --mode overrides the manual knobs, also those from -c.\n"
                 "Environment: KCPTUN_KEY replaces the default --key.\n"
                 "Invalid flags or settings exit with status 2.\n");
}

struct qpp *config_qpp_new(const struct config *cfg, char *err, size_t errlen)
{
    enum qpp_variant v = QPP_VARIANT_DEFAULT;
    int rc = ERR_INVAL;
    struct qpp *q = NULL;
    if (qpp_variant_parse(cfg->qppvariant, &v) == 0 && cfg->qppcount > 0)
        q = qpp_new(cfg->key, strlen(cfg->key), (unsigned)cfg->qppcount, v, &rc);
    if (!q)
        err_fail(err, errlen, "--QPP: cannot build %d pads: %s", cfg->qppcount, err_str(rc));
    return q;
}

void config_version(enum config_role role, FILE *out)
{
    /* First three words as kcptun prints them ("kcptun version X"), for scripts and LuCI
     * apps that parse the version of a binary they call kcptun. */
    fprintf(out, "kcptun version %s (%s %s, speaks the wire of kcptun 20210922 to %s)\n",
            KTUN_KCPTUN_VERSION, config_prog_name(role), KTUN_VERSION, KTUN_KCPTUN_VERSION);
}

void config_log_summary(const struct config *cfg)
{
    bool client = cfg->role == CONFIG_CLIENT;

    LOG_INFO("version: %s %s", config_prog_name(cfg->role), KTUN_VERSION);
    if (cfg->config_file[0])
        LOG_INFO("config file: %s", cfg->config_file);
    if (cfg->sip003)
        LOG_INFO("shadowsocks plugin mode (SIP003): addresses from SS_*, options from "
                 "SS_PLUGIN_OPTIONS");
    if (!client && !cfg->smuxver_set)
        LOG_INFO("smux version: each client's (1 or 2; --smuxver forces one)");
    else
        LOG_INFO("smux version: %d", cfg->smuxver);
    LOG_INFO("listening on: %s", client ? cfg->localaddr : cfg->listen);
    for (const char *p = client ? cfg->tcpfwd : ""; *p;) {
        size_t n = strcspn(p, "\n");
        LOG_INFO("forward -L %.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    for (const char *p = client ? cfg->socks : ""; *p;) {
        size_t n = strcspn(p, "\n");
        LOG_INFO("SOCKS5 -D %.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    if (client)
        LOG_INFO("remote address: %s", cfg->remoteaddr);
    else
        LOG_INFO("target: %s%s", cfg->target, config_target_is_unix(cfg) ? " (unix)" : "");
    for (const char *p = cfg->allow; !client && *p;) {
        size_t n = strcspn(p, "\n");
        LOG_INFO("allow: %.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    LOG_INFO("encryption: %s", cfg->crypt);
    LOG_INFO("mode: %s, nodelay parameters: %d %d %d %d", cfg->mode, cfg->nodelay,
             cfg->interval_ms, cfg->resend, cfg->nc);
    LOG_INFO("sndwnd: %d rcvwnd: %d", cfg->sndwnd, cfg->rcvwnd);
    if (!client && !cfg->nocomp_set)
        LOG_INFO("compression: each client's (--nocomp or --nocomp=false forces it)");
    else
        LOG_INFO("compression: %s", cfg->nocomp ? "false" : "true");
    LOG_INFO("mtu: %d", cfg->mtu);
    LOG_INFO("datashard: %d parityshard: %d", cfg->datashard, cfg->parityshard);
    LOG_INFO("acknodelay: %s", cfg->acknodelay ? "true" : "false");
    LOG_INFO("pacing: %s fec hold: %s", cfg->nopace ? "false" : "true",
             cfg->nofechold ? "false" : "true");
    LOG_INFO("dscp: %d", cfg->dscp);
    LOG_INFO("sockbuf: %d", cfg->sockbuf);
    LOG_INFO("smuxbuf: %d streambuf: %d", cfg->smuxbuf, cfg->streambuf);
    LOG_INFO("keepalive: %d", cfg->keepalive_s);
    LOG_INFO("framesize: %d closewait: %d ratelimit: %lld", cfg->framesize, cfg->closewait_s,
             (long long)cfg->ratelimit);
    if (cfg->qpp) {
        LOG_INFO("QPP: true, QPPCount: %d, variant %s", cfg->qppcount, cfg->qppvariant);
        if (strlen(cfg->key) < 211)
            LOG_WARN("QPP: a key of %zu bytes is short; kcptun advises at least 211",
                     strlen(cfg->key));
        if (cfg->qppcount < 7 || cfg->qppcount % 2 == 0)
            LOG_WARN("QPP: QPPCount %d; kcptun advises an odd count of at least 7",
                     cfg->qppcount);
    }
    if (client)
        LOG_INFO("conn: %d autoexpire: %d scavengettl: %d", cfg->conn, cfg->autoexpire_s,
                 cfg->scavengettl_s);
    LOG_INFO("snmplog: %s snmpperiod: %d", cfg->snmplog, cfg->snmpperiod_s);
    LOG_INFO("quiet: %s", cfg->quiet ? "true" : "false");
    if (client)
        LOG_INFO("limits: maxstreams %d, bufbudget %lld", cfg->maxstreams,
                 (long long)cfg->bufbudget);
    else if (cfg->maxsessions == 0)
        LOG_INFO("limits: maxsessions auto, maxstreams %d, bufbudget %lld", cfg->maxstreams,
                 (long long)cfg->bufbudget);
    else
        LOG_INFO("limits: maxsessions %d, maxstreams %d, bufbudget %lld", cfg->maxsessions,
                 cfg->maxstreams, (long long)cfg->bufbudget);
    for (const char *p = cfg->warnings; *p;) {
        size_t n = strcspn(p, "\n");
        LOG_WARN("config: %.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static int saved_argc;
static char **saved_argv;

int config_reload(struct config *out, char *err, size_t errlen)
{
    if (!saved_argv)
        return err_fail(err, errlen, "no command line to read again");
    enum config_role role = out->role;
    config_defaults(out, role);
    int rc = config_parse_args(out, saved_argc, saved_argv, err, errlen);
    if (rc > 0)
        return err_fail(err, errlen, "--help or --version on the command line");
    if (rc == CONFIG_OK)
        rc = config_validate(out, err, errlen);
    return rc;
}

void config_restart_only(const struct config *a, const struct config *b, char *out, size_t cap)
{
    struct {
        const char *flag;
        bool differ;
    } f[] = {
        {"--localaddr", strcmp(a->localaddr, b->localaddr) != 0},
        {"-L", strcmp(a->tcpfwd, b->tcpfwd) != 0},
        {"-D", strcmp(a->socks, b->socks) != 0},
        {"--listen", strcmp(a->listen, b->listen) != 0},
        {"--key", a->role == CONFIG_SERVER && strcmp(a->key, b->key) != 0},
        {"--crypt", a->role == CONFIG_SERVER && strcmp(a->crypt, b->crypt) != 0},
        {"--conn", a->conn != b->conn},
        {"--log", strcmp(a->log, b->log) != 0},
        {"--snmplog", strcmp(a->snmplog, b->snmplog) != 0 || a->snmpperiod_s != b->snmpperiod_s},
        {"--tcp", a->tcp != b->tcp || a->tcp_auto != b->tcp_auto},
        {"--QPP", a->qpp != b->qpp || a->qppcount != b->qppcount ||
                      strcmp(a->qppvariant, b->qppvariant) != 0 ||
                      (a->qpp && strcmp(a->key, b->key) != 0)},
    };
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
        if (f[i].differ && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? ", " : "", f[i].flag);
}

int config_setup(struct config *cfg, enum config_role role, int argc, char **argv)
{
    char err[CONFIG_ERR_MAX + CONFIG_PATH_MAX];
    const char *prog = config_prog_name(role);
    int rc;

    saved_argc = argc;
    saved_argv = argv;
    config_defaults(cfg, role);
    rc = config_parse_args(cfg, argc, argv, err, sizeof(err));
    if (rc == CONFIG_HELP) {
        config_usage(role, stdout);
        return 0;
    }
    if (rc == CONFIG_VERSION) {
        config_version(role, stdout);
        return 0;
    }
    if (rc == CONFIG_OK)
        rc = config_validate(cfg, err, sizeof(err));
    /* --tcp without root or iptables cannot work: say so before anything starts */
    if (rc == CONFIG_OK && cfg->tcp && fwrule_check(4, err, sizeof(err)) != 0)
        rc = ERR_INVAL;
    if (rc == CONFIG_OK)
        rc = log_open(cfg->log, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    log_set_level((enum log_level)cfg->loglevel);
    log_set_quiet(cfg->quiet);
    if (cfg->sip003) {
        /* A plugin must not outlive its shadowsocks host (SIP003). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            return 1; /* the host died before the line above */
    }
    config_log_summary(cfg);
    return CONFIG_RUN;
}
