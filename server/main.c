/* SPDX-License-Identifier: MIT */
/* ktun-server entry point: parse and validate the configuration, then run the server. */
#include "common/config.h"
#include "ktun/main.h"
#include "server/server.h"

/* The server's main(); the multi-call binary `ktun` (ktun/main.c) calls it too. */
int ktun_server_main(int argc, char **argv)
{
    static struct config cfg;
    int rc = config_setup(&cfg, CONFIG_SERVER, argc, argv);
    if (rc != CONFIG_RUN)
        return rc;
    return server_run(&cfg);
}

#ifndef KTUN_MULTICALL
int main(int argc, char **argv)
{
    return ktun_server_main(argc, argv);
}
#endif
