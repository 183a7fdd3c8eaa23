/* SPDX-License-Identifier: MIT */
/* ktun, the multi-call binary: one program that runs as the client or the server.
 *
 * The role comes from the name it is called by (ktun-client, ktun-server, kcptun's
 * kcptun-client and kcptun-server, or the release names client_linux_amd64, server_...), so
 * that links or copies under those names replace the two programs; or from the first
 * argument: `ktun client -l :2222 ...`. */
#include <stdio.h>
#include <string.h>

#include "common/config.h"
#include "ktun/main.h"

enum role { ROLE_NONE, ROLE_CLIENT, ROLE_SERVER };

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The role a program name |name| (no directory) stands for. */
static enum role role_of_name(const char *name)
{
    if (!strcmp(name, "ktun-client") || !strcmp(name, "kcptun-client") ||
        has_prefix(name, "client_"))
        return ROLE_CLIENT;
    if (!strcmp(name, "ktun-server") || !strcmp(name, "kcptun-server") ||
        has_prefix(name, "server_"))
        return ROLE_SERVER;
    return ROLE_NONE;
}

/* The role of a first argument |arg|. */
static enum role role_of_arg(const char *arg)
{
    if (!strcmp(arg, "client") || !strcmp(arg, "ktun-client"))
        return ROLE_CLIENT;
    if (!strcmp(arg, "server") || !strcmp(arg, "ktun-server"))
        return ROLE_SERVER;
    return ROLE_NONE;
}

static void usage(FILE *out)
{
    fputs("Usage: ktun client [options]    (or call it as ktun-client, kcptun-client)\n"
          "       ktun server [options]    (or call it as ktun-server, kcptun-server)\n"
          "       ktun --version | --help\n"
          "\n"
          "KCP tunnel, wire-compatible with kcptun 20210922. `ktun client --help` and\n"
          "`ktun server --help` list the options of each role.\n",
          out);
}

static int run_role(enum role role, int argc, char **argv)
{
    return role == ROLE_CLIENT ? ktun_client_main(argc, argv) : ktun_server_main(argc, argv);
}

int main(int argc, char **argv)
{
    const char *name = argc > 0 && argv[0] ? argv[0] : "ktun";
    const char *slash = strrchr(name, '/');
    enum role role = role_of_name(slash ? slash + 1 : name);
    if (role != ROLE_NONE)
        return run_role(role, argc, argv);
    if (argc > 1 && (role = role_of_arg(argv[1])) != ROLE_NONE)
        return run_role(role, argc - 1, argv + 1);
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
                     !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-v") ||
                     !strcmp(argv[1], "version"))) {
        printf("ktun version %s (wire-compatible with kcptun 20210922)\n", KTUN_VERSION);
        return 0;
    }
    if (argc > 1)
        fprintf(stderr, "ktun: unknown role \"%s\": expected client or server\n", argv[1]);
    else
        fputs("ktun: expected client or server\n", stderr);
    usage(stderr);
    return 2;
}
