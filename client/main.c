/* SPDX-License-Identifier: MIT */
/* ktun-client entry point: parse and validate the configuration, then run the client. */
#include "client/client.h"
#include "common/config.h"

int main(int argc, char **argv)
{
    static struct config cfg;
    int rc = config_setup(&cfg, CONFIG_CLIENT, argc, argv);
    if (rc != CONFIG_RUN)
        return rc;
    return client_run(&cfg);
}
