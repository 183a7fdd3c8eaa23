/* SPDX-License-Identifier: MIT */
/* ktun-client: local TCP listener whose connections become streams over KCP sessions. */
#ifndef KTUN_CLIENT_H
#define KTUN_CLIENT_H

#include "common/config.h"

/* Runs the client described by the validated |cfg| until SIGINT/SIGTERM. Returns the process
 * exit status: 0 after a clean shutdown, 1 if setup failed (logged). */
int client_run(const struct config *cfg);

#endif
