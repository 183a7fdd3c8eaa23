/* SPDX-License-Identifier: MIT */
/* ktun-client entry point: parse and validate the configuration, then run the client. */
#include "client/client.h"
#include "common/config.h"
#include "ktun/main.h"

/* The client's main(); the multi-call binary `ktun` (ktun/main.c) calls it too. */
int ktun_client_main(int argc, char **argv)
{
    static struct config cfg;
    int rc = config_setup(&cfg, CONFIG_CLIENT, argc, argv);
    if (rc != CONFIG_RUN)
        return rc;
    return client_run(&cfg);
}

#ifndef KTUN_MULTICALL
int main(int argc, char **argv)
{
    return ktun_client_main(argc, argv);
}
#endif
