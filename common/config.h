/* SPDX-License-Identifier: MIT */
/* Command line, JSON config file and validation for ktun-client and ktun-server. */
#ifndef KTUN_CONFIG_H
#define KTUN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * The flags, their defaults and the JSON keys are those of kcptun 20210922,
 * so existing command lines, systemd units and JSON files keep working:
 *
 *   - every long flag is accepted as "--name value", "--name=value", "-name value" and
 *     "-name=value" (urfave/cli + Go's flag package accept all four); one-letter forms are
 *     -l, -r (client), -t (server), -c, -h, -v; aliases --ds and --ps;
 *   - boolean flags take no separate value: "--nocomp" or "--nocomp=false";
 *   - integers are Go literals: 1350, 0x546, 0o2506, 0b101, 1_350;
 *   - names must be exact (getopt's abbreviations such as --loc are refused, as in Go);
 *   - "-c FILE" loads a JSON object after all flags: its keys override the flags, absent keys
 *     keep the flag values, null keeps the value; keys match case-insensitively (Go's
 *     encoding/json); then the mode table is applied, so a named --mode overrides
 *     --nodelay/--interval/--resend/--nc (as kcptun);
 *   - KCPTUN_KEY, when set, replaces the default key (a --key flag still wins).
 *
 * Where ktun is stricter than kcptun (every case is an error, exit status 2, one line):
 *   - unknown --crypt or --mode names (kcptun silently uses aes / the manual knobs);
 *   - values kcp-go or smux would ignore, clamp or crash on (mtu, windows, FEC shard counts,
 *     keepalive > 30, streambuf > smuxbuf, conn 0, interval outside 10..5000, ...);
 *   - addresses that do not parse as host:port, and stray positional arguments (kcptun
 *     ignores them; "--nocomp false" is the usual cause);
 *   - in the JSON file: syntax errors (reported with line and column), values of the wrong
 *     type, fractional numbers, trailing data after the object.
 * Accepted with a warning (kept in |warnings| and logged at startup): unknown JSON keys and
 * keys of the other role (kcptun ignores them; newer kcptun versions add keys), --pprof
 * (server; there is no Go profiler to start), the built-in default key.
 *
 * Newer kcptun releases (JSON keys as theirs): --crypt aes-128-gcm and null, --framesize,
 * --closewait, --ratelimit, --QPP ("qpp"),
 * --QPPCount ("qpp-count"); ktun adds --QPPVariant ("qpp-variant": A, B or C, default C =
 * kcptun v20251222 and later, see crypto/qpp.h) to talk to older QPP builds.
 *
 * ktun extras: --crypt xsalsa20-poly1305 (authenticated mode, not kcptun-compatible),
 * --maxsessions (server), --maxstreams, --bufbudget, --loglevel, and the repeatable
 * --allow (server), -L/--tcpforward and -D/--socks (client) (JSON: a string or an array of
 * strings; docs/forwards.md).
 */

#ifndef KTUN_VERSION
#define KTUN_VERSION "0.1.0"
#endif

/* The newest kcptun release whose wire ktun speaks: what -v reports as "kcptun version". */
#define KTUN_KCPTUN_VERSION "20260208"

#define CONFIG_ADDR_MAX 320  /* host:port or Unix socket path, NUL included */
#define CONFIG_KEY_MAX 512   /* pre-shared key, NUL included */
#define CONFIG_NAME_MAX 32   /* crypt and mode names */
#define CONFIG_PATH_MAX 1024 /* file names (--log, --snmplog, -c) */
#define CONFIG_WARN_MAX 1024 /* collected warnings */
#define CONFIG_ERR_MAX 256   /* a comfortable size for |err| buffers */
#define CONFIG_LIST_MAX 4096 /* a repeatable option's values, one per line, NUL included */

enum config_role {
    CONFIG_CLIENT, /* ktun-client: TCP listener -> KCP sessions */
    CONFIG_SERVER, /* ktun-server: KCP listener -> TCP/Unix target */
    CONFIG_ROLE_COUNT
};

/* Positive results of config_parse_args: the caller prints and exits with status 0. */
enum config_result {
    CONFIG_OK = 0,      /* go on: validate and run */
    CONFIG_HELP = 1,    /* --help, -h or the "help" command: print config_usage() */
    CONFIG_VERSION = 2, /* --version or -v: print config_version() */
};

/* config_setup's "keep going" result (any other value is an exit status). */
#define CONFIG_RUN (-1)

struct config {
    enum config_role role;
    /* addresses */
    char localaddr[CONFIG_ADDR_MAX];  /* client: TCP listen host:port */
    char remoteaddr[CONFIG_ADDR_MAX]; /* client: server's UDP host:port */
    char listen[CONFIG_ADDR_MAX];     /* server: UDP listen host:port */
    char target[CONFIG_ADDR_MAX];     /* server: TCP host:port, or a Unix socket path */
    char allow[CONFIG_LIST_MAX];      /* server --allow values, each ending in '\n' */
    char tcpfwd[CONFIG_LIST_MAX];     /* client -L specs, each ending in '\n' */
    char socks[CONFIG_LIST_MAX];      /* client -D specs, each ending in '\n' */
    bool localaddr_set;               /* client: -l given (flag, JSON or plugin); without it a
                                         client with -L or -D opens no -l listener */
    /* encryption */
    char key[CONFIG_KEY_MAX];         /* pre-shared secret (never log it) */
    char crypt[CONFIG_NAME_MAX];      /* method name, see config_crypt_is_known() */
    /* KCP */
    char mode[CONFIG_NAME_MAX];       /* normal, fast, fast2, fast3 or manual */
    int nodelay;                      /* 0/1; set from the mode unless manual */
    int interval_ms;                  /* KCP update interval */
    int resend;                       /* fast-resend threshold, 0 = off */
    int nc;                           /* 1 = no congestion control */
    bool acknodelay;                  /* flush ACKs right after input */
    bool nopace;                      /* ktun: kcp-go's fixed-window sending (no pacing) */
    bool nofechold;                   /* ktun: no FEC hold (kcp-go's fast retransmit) */
    int mtu;                          /* max datagram size, bytes */
    int sndwnd;                       /* send window, segments */
    int rcvwnd;                       /* receive window, segments */
    int datashard;                    /* FEC data shards (0 = no FEC) */
    int parityshard;                  /* FEC parity shards (0 = no FEC) */
    int dscp;                         /* DSCP, 6 bits */
    bool nocomp;                      /* no snappy framing */
    bool nocomp_set;                  /* --nocomp given: forced, not detected (as smuxver_set) */
    int sockbuf;                      /* UDP SO_SNDBUF/SO_RCVBUF, bytes */
    /* client session management */
    int conn;                         /* parallel KCP sessions */
    int autoexpire_s;                 /* session accepts new streams this long; 0 = forever */
    int scavengettl_s;                /* expired session lives on this long */
    int hop_s;                        /* --hop: sessions change server port this often; 0 = off */
    /* smux */
    int smuxver;                      /* 1 or 2 */
    bool smuxver_set;                 /* --smuxver given (flag, JSON or plugin option): a
                                         server forces it instead of detecting it per session */
    int smuxbuf;                      /* session receive buffer, bytes */
    int streambuf;                    /* per-stream receive buffer (v2 window), bytes */
    int keepalive_s;                  /* NOP interval; the peer's timeout is 30 s */
    /* newer kcptun */
    int framesize;                    /* --framesize: largest smux PSH payload sent, 1..65535 */
    int closewait_s;                  /* --closewait: seconds before our FIN after local EOF */
    int64_t ratelimit;                /* --ratelimit: bytes/s per KCP session, 0 = none */
    bool android_vpn;                 /* -V / __android_vpn (refused by config_validate) */
    bool sip003;                      /* started as a shadowsocks plugin (SS_* environment) */
    bool qpp;                         /* --QPP: per-stream byte substitution (crypto/qpp.h) */
    int qppcount;                     /* --QPPCount: number of pads, 1..65535 */
    char qppvariant[CONFIG_NAME_MAX]; /* --QPPVariant: pad variant A, B or C (qpp_variant_parse) */
    /* statistics and logging */
    char snmplog[CONFIG_PATH_MAX];    /* CSV file name (Go time layout allowed), "" = off */
    int snmpperiod_s;                 /* seconds between CSV rows */
    char log[CONFIG_PATH_MAX];        /* log file (append), "" = stderr */
    bool quiet;                       /* no stream open/close lines */
    int loglevel;                     /* enum log_level threshold */
    /* accepted for compatibility */
    bool tcp;                         /* fake TCP (kcptun's tcpraw): common/rawtcp.h */
    bool tcp_auto;                    /* --tcp auto: the client picks UDP or fake TCP */
    bool pprof;                       /* server: ignored with a warning */
    /* ktun resource limits */
    int maxsessions;                  /* server: concurrent KCP sessions */
    int maxstreams;                   /* streams per session */
    int64_t bufbudget;                /* buffered bytes per process, all sessions */
    /* ktun extensions (docs/extensions.md) */
    char peer[CONFIG_NAME_MAX];       /* client --peer: auto, ktun or kcptun */
    char udpfwd[CONFIG_LIST_MAX];     /* client -U values, each ending in '\n' */
    char plugin_mode[CONFIG_NAME_MAX]; /* SIP003u: tcp_only, udp_only or tcp_and_udp */
    int udpidle_s;                    /* --udpidle: seconds before an idle UDP flow closes */
    int udpflows;                     /* --udpflows: open UDP flows per session */
    int udpflowsall;                  /* --udpflowsall: open UDP flows of the process */
    /* bookkeeping */
    char config_file[CONFIG_PATH_MAX]; /* -c FILE, "" if none */
    char warnings[CONFIG_WARN_MAX];   /* non-fatal notes, one per line, each ending in '\n' */
};

/* Fills |cfg| with kcptun 20210922's defaults for |role| (the two roles differ: windows,
 * addresses) and ktun's for the extras. The KCP knobs hold the manual-mode defaults
 * (0, 50, 0, 0) until config_apply_mode(). Reads no environment. */
void config_defaults(struct config *cfg, enum config_role role);

/* Parses |argc|/|argv| (argv[0] is the program name) over |cfg|, which must hold
 * config_defaults() for its role: KCPTUN_KEY, then the flags, then the -c JSON file, then the
 * shadowsocks plugin environment (config_apply_sip003), then the mode table. Uses getopt_long_only (resets its global state; argv is not reordered).
 * Returns CONFIG_OK, CONFIG_HELP or CONFIG_VERSION (the caller prints and exits 0), or
 * ERR_INVAL with a one-line reason naming the flag, key or file in |err| (|errlen| bytes).
 * Does not range-check values: call config_validate() next. */
int config_parse_args(struct config *cfg, int argc, char **argv, char *err, size_t errlen);

/* Reads the JSON object in the file |path| into |cfg| (keys as in kcptun's examples/server.json),
 * without applying the mode. Returns 0 or ERR_INVAL with a one-line reason in |err|; unknown
 * keys are appended to cfg->warnings. |cfg| may be partly updated on error. */
int config_load_json(struct config *cfg, const char *path, char *err, size_t errlen);

/* Applies the mode table to the four KCP knobs: normal 0/40/2/1,
 * fast 0/30/2/1, fast2 1/20/2/1, fast3 1/10/2/1; "manual" keeps them. Returns 0, or ERR_INVAL
 * for an unknown mode name with the reason in |err|. */
int config_apply_mode(struct config *cfg, char *err, size_t errlen);

/* Checks every value and address of |cfg| for its role. Returns 0, or ERR_INVAL with a
 * one-line reason naming the offending flag in |err|. No network lookups. */
int config_validate(const struct config *cfg, char *err, size_t errlen);

/* Splits |s| = "host:port", "[v6addr]:port" or ":port" into |host| (brackets removed, "" for
 * any address) and |port| (digits or a service name), sized |hostlen| and |portlen|, ready
 * for getaddrinfo (pass NULL for an empty host). Returns 0, or ERR_INVAL with the reason in
 * |err| (NULL allowed). No lookups. */
int config_parse_addr(const char *s, char *host, size_t hostlen, char *port, size_t portlen,
                      char *err, size_t errlen);

/* Most ports a server's --listen range may bind (one UDP socket each). */
#define CONFIG_LISTEN_PORTS_MAX 1024

/* kcptun's port ranges: if |s| is "host:MIN-MAX", writes "host:MIN" to |base| (|basecap|
 * bytes), MIN and MAX to |*lo| and |*hi| and returns 1; otherwise copies |s| to |base|, sets
 * both to 0 and returns 0. Returns ERR_INVAL for a malformed range (not 1 <= MIN <= MAX <=
 * 65535) or a short |base|. No lookups. */
int config_port_range(const char *s, char *base, size_t basecap, uint16_t *lo, uint16_t *hi);

struct allow_list;
/* Parses the server's --allow values into |out| (appended; NULL: only check them). Returns 0,
 * or ERR_INVAL with a one-line reason naming --allow in |err|. The -t target is not added. */
int config_allow_list(const struct config *cfg, struct allow_list *out, char *err,
                      size_t errlen);
/* True in shadowsocks plugin mode with plugin_mode udp_only or tcp_and_udp (SIP003u). */
bool config_plugin_udp(const struct config *cfg);
/* True if the client's configuration needs a ktun server (UDP forwards, forward targets). */
bool config_needs_ktun_peer(const struct config *cfg);
/* True if the client offers ktun capabilities (docs/extensions.md): --peer ktun, or --peer
 * auto with the secure mode or a configuration that needs a ktun server; never with --peer
 * kcptun, never on the server (it only answers). */
bool config_offers_caps(const struct config *cfg);

/* --maxsessions 0 (the default) sizes the limit at start: every session needs at least one
 * descriptor (its streams' target connections) besides CONFIG_FD_RESERVE for the process, and
 * about CONFIG_SESSION_BYTES of memory of its own (KCP, snappy buffers, receive buffer). */
#define CONFIG_MAXSESSIONS_MAX (1 << 20)
#define CONFIG_MAXSESSIONS_MIN 16
#define CONFIG_FD_RESERVE 64u
#define CONFIG_SESSION_BYTES (256u << 10)
/* The session limit for |fds| descriptors (the soft RLIMIT_NOFILE) and |mem_bytes| of memory
 * the process may use: the smaller of the two counts, within
 * CONFIG_MAXSESSIONS_MIN..CONFIG_MAXSESSIONS_MAX. */
int config_auto_maxsessions(uint64_t fds, uint64_t mem_bytes);

/* True if the server's target is a Unix socket path (it starts with '/' or '.'). */
bool config_target_is_unix(const struct config *cfg);

/* True if |name| is a crypt method ktun knows (kcptun's thirteen plus xsalsa20-poly1305). */
bool config_crypt_is_known(const char *name);

#define CONFIG_OPTION_KEY_MAX 64 /* SIP003 option names */

/* Splits a SIP003 option string ("key=value;key;k\\;ey=v\\=al") into at most |max| pairs:
 * '\\' makes the next byte literal, a key without '=' gets the value "1". Returns the number
 * of pairs, or ERR_INVAL with a one-line reason (empty key, '\\' at the end, too long). */
int config_sip003_parse(const char *opts, char keys[][CONFIG_OPTION_KEY_MAX],
                        char vals[][CONFIG_PATH_MAX], int max, char *err, size_t errlen);

/* Shadowsocks plugin mode (SIP003): when |remote_host|, |remote_port| and |local_host| are
 * all non-empty (the SS_* variables), derives the addresses (client: localaddr = local,
 * remoteaddr = remote; server: listen = remote, target = local; IPv6 bracketed; a
 * '|'-separated SS_REMOTE_HOST as shadowsocks-libev passes it: the client dials the first
 * host, the server listens on the wildcard if one is listed, else on the first), then applies
 * |options| with the long flag names as keys (the first of repeated keys wins). Sets
 * cfg->sip003. Returns 0 (also when not in plugin mode) or ERR_INVAL with a one-line reason:
 * SS_LOCAL_PORT missing, a malformed option string, an unknown option or a bad value. Keys of
 * the other role are ignored with a warning. config_parse_args calls it after the JSON file. */
int config_apply_sip003(struct config *cfg, const char *remote_host, const char *remote_port,
                        const char *local_host, const char *local_port, const char *options,
                        char *err, size_t errlen);

struct qpp;
/* Builds the QPP pads of |cfg| (--key as the seed, --QPPCount, --QPPVariant; cfg->qpp must
 * be set and the config validated). Returns them (free with qpp_free), or NULL with a
 * one-line reason in |err|. */
struct qpp *config_qpp_new(const struct config *cfg, char *err, size_t errlen);

/* "ktun-client" or "ktun-server". */
const char *config_prog_name(enum config_role role);

/* Writes the --help text for |role| (flags, defaults, ktun extras, environment) to |out|. */
void config_usage(enum config_role role, FILE *out);

/* Writes the --version line for |role| to |out|. */
void config_version(enum config_role role, FILE *out);

/* Logs the effective settings (never the key) and cfg->warnings, as kcptun does at start. */
void config_log_summary(const struct config *cfg);

/* Everything main() needs before running: defaults, parse, validate, then the log (--log,
 * --quiet, --loglevel) and the startup summary. Prints help/version to stdout, or
 * "<prog>: <reason>" to stderr. Returns CONFIG_RUN to go on, or the exit status: 0 after
 * help/version, 2 for a usage or configuration error. */
int config_setup(struct config *cfg, enum config_role role, int argc, char **argv);

/* SIGHUP: parses the command line config_setup saw again (KCPTUN_KEY and the -c file are read
 * anew) into |out| and validates it. Returns 0, or ERR_INVAL with a one-line reason in |err|
 * (also when config_setup never ran). */
int config_reload(struct config *out, char *err, size_t errlen);

/* Writes to |out| (|cap| bytes) the flags whose values differ between |a| and |b| and that
 * a running process cannot take over (addresses, --crypt/--key on the server, --conn, --log,
 * --snmplog, --tcp), comma-separated; "" when there is none. */
void config_restart_only(const struct config *a, const struct config *b, char *out, size_t cap);

#endif
