/* SPDX-License-Identifier: MIT */
/* Pure core: one session's table of UDP flows (docs/extensions.md): ids, idle timeouts,
 * limits per session and in all, and the ids of closed flows. */
#ifndef KTUN_UDPFLOW_H
#define KTUN_UDPFLOW_H

/*
 * A flow is open (the shell holds a socket for it) or closed. A closed flow's id is kept
 * for UDPFLOW_TOMB_MS (a tombstone) so that late, duplicated or rebuilt datagrams of it are
 * dropped instead of opening it again: a flow id is never reused within a session.
 * Tombstones beyond UDPFLOW_TOMB_MAX per table go oldest first.
 *
 * Entries live in an array sorted by id (ids grow, so opening appends): pointers to them are
 * valid until the next udpflow_open or udpflow_expire on the same table.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UDPFLOW_TOMB_MS 60000u   /* how long a closed id is remembered */
#define UDPFLOW_TOMB_MAX 4096u   /* closed ids remembered per table at most */

struct udpflow {
    uint32_t id;
    bool open;
    uint64_t last_ms;   /* open: the last datagram either way; closed: when it closed */
    void *user;         /* the shell's state of an open flow */
};

struct udpflow_table {
    struct udpflow *v;  /* sorted by id */
    size_t n, cap;
    size_t nopen;       /* open flows */
    size_t ntomb;       /* closed ones */
};

/* Limits shared by the tables of a process. */
struct udpflow_limits {
    uint32_t idle_ms;     /* an open flow with no datagram for this long closes */
    size_t per_sess;      /* open flows per table */
    size_t total;         /* open flows of all tables */
    size_t open_total;    /* open flows of all tables now (kept by the functions below) */
};

/* The entry for |id| (open or closed), or NULL. */
struct udpflow *udpflow_find(struct udpflow_table *t, uint32_t id);

/* Opens flow |id| at |now_ms| with |user|. Returns the entry, or NULL with *|err|: ERR_CLOSED
 * (the id was closed: never reopened), ERR_LIMIT (per_sess or total reached), ERR_INVAL (the
 * id is open already), ERR_NOMEM. */
struct udpflow *udpflow_open(struct udpflow_table *t, struct udpflow_limits *lim, uint32_t id,
                             void *user, uint64_t now_ms, int *err);

/* Closes open flow |f| at |now_ms|: it becomes a tombstone (its |user| is cleared). */
void udpflow_close(struct udpflow_table *t, struct udpflow_limits *lim, struct udpflow *f,
                   uint64_t now_ms);

/* Called by udpflow_expire for each open flow it is about to close (idle), with the flow's
 * id and user pointer. */
typedef void udpflow_idle_fn(void *cb_user, uint32_t id, void *flow_user);

/* Closes the open flows idle for lim->idle_ms or more (calling |idle| for each first) and
 * forgets tombstones older than UDPFLOW_TOMB_MS. Returns the time of the next expiry, or
 * UINT64_MAX. */
uint64_t udpflow_expire(struct udpflow_table *t, struct udpflow_limits *lim, uint64_t now_ms,
                        udpflow_idle_fn *idle, void *cb_user);

/* Closes every open flow (calling |idle| for each, if not NULL) and frees the table; it is
 * empty and reusable afterwards. */
void udpflow_table_free(struct udpflow_table *t, struct udpflow_limits *lim,
                        udpflow_idle_fn *idle, void *cb_user);

/* A parsed -U spec: [bind:]port[:host:hostport] (ssh's -L grammar; bind and host may be IPv6
 * in brackets; no bind: 127.0.0.1; "*" or an empty bind: every address; no host:hostport:
 * the server's -t target, target ""). */
#define UDPFLOW_SPEC_MAX 320
struct udpflow_spec {
    char listen[UDPFLOW_SPEC_MAX]; /* "bind:port" for net_resolve ("[v6]:port", ":port") */
    char target[UDPFLOW_SPEC_MAX]; /* "host:hostport" as the server sees it, "" for -t */
};

/* Parses |s|. Returns 0, or ERR_INVAL with a one-line reason in |err| (|errlen| bytes). */
int udpflow_parse_spec(const char *s, struct udpflow_spec *out, char *err, size_t errlen);

#endif
