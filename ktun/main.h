/* SPDX-License-Identifier: MIT */
/* Entry points of the two roles, shared by their own binaries and the multi-call `ktun`. */
#ifndef KTUN_MAIN_H
#define KTUN_MAIN_H

/* main() of ktun-client and ktun-server: argv[0] is the program name, options follow.
 * Return the process exit status (0, 1 run-time failure, 2 configuration error). */
int ktun_client_main(int argc, char **argv);
int ktun_server_main(int argc, char **argv);

#endif
