/* SPDX-License-Identifier: MIT */
/* ktun-client: local TCP listener whose connections become streams over KCP sessions. */
#ifndef KTUN_CLIENT_H
#define KTUN_CLIENT_H

#include "common/config.h"

#include <ev.h>

/* Runs the client described by the validated |cfg| until SIGINT/SIGTERM. Returns the process
 * exit status: 0 after a clean shutdown, 1 if setup failed (logged). */
int client_run(const struct config *cfg);

/* ---- between client.c and forward.c (the -L and -D listeners) ---- */

struct client;
struct sess;
struct client_fwds;

/* The session the next stream goes to (kcptun's round-robin over --conn slots, opening one
 * if needed), or NULL if none can be had now. */
struct sess *client_stream_sess(struct client *c);

/* Opens the listeners of cfg->tcpfwd (-L) and cfg->socks (-D) on |loop|. Returns the set
 * (empty when there is none), or NULL after logging why a listener could not be opened. */
struct client_fwds *client_fwds_start(struct client *c, struct ev_loop *loop,
                                      const struct config *cfg);

/* Stops accepting (shutdown); SOCKS5 handshakes in progress are closed. NULL allowed. */
void client_fwds_stop(struct client_fwds *f);

/* Closes the listeners and frees the set. NULL allowed. */
void client_fwds_free(struct client_fwds *f);

#endif
