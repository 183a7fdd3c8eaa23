/* SPDX-License-Identifier: MIT */
/* ktun-server entry point: parse and validate the configuration, then run the server. */
#include "common/config.h"
#include "server/server.h"

int main(int argc, char **argv)
{
    static struct config cfg;
    int rc = config_setup(&cfg, CONFIG_SERVER, argc, argv);
    if (rc != CONFIG_RUN)
        return rc;
    return server_run(&cfg);
}
