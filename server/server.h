/* SPDX-License-Identifier: MIT */
/* ktun-server: UDP listener whose KCP sessions' streams are forwarded to the target. */
#ifndef KTUN_SERVER_H
#define KTUN_SERVER_H

#include "common/config.h"

/* Runs the server described by the validated |cfg| until SIGINT/SIGTERM. Returns the process
 * exit status: 0 after a clean shutdown, 1 if setup failed (logged). */
int server_run(const struct config *cfg);

#endif
