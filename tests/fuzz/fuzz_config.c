/* SPDX-License-Identifier: MIT */
/* libFuzzer harness: the command line (config_parse_args) and the JSON config file loader. */
#include "tests/fuzz/fuzz.h"

#include "common/config.h"
#include "common/err.h"

#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Input layout:
 *   role u8 | argv_len LE16 | argv bytes | JSON bytes (the rest)
 * role % 2 picks client or server. The argv bytes are split at NUL into arguments (argv[0]
 * is the program name). The JSON bytes are the content of the file every "-c" names: the
 * harness replaces each "-c" argument's value by the path of an in-memory file holding them,
 * so that no other file is ever read. The JSON bytes are also loaded on their own with
 * config_load_json. Every successful parse is then applied and validated.
 */

#define FUZZ_CONFIG_MAX_ARGS 128

static int json_fd = -1;
static char json_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    json_fd = memfd_create("fuzz-config", 0);
    FUZZ_CHECK(json_fd >= 0);
    snprintf(json_path, sizeof(json_path), "/proc/self/fd/%d", json_fd);
    unsetenv("KCPTUN_KEY");
    return 0;
}

/* True if |arg| is the -c flag (one or two dashes, exact name), with |*inline_value| set when
 * it is written "-c=VALUE". */
static bool is_config_flag(const char *arg, bool *inline_value)
{
    if (arg[0] != '-')
        return false;
    arg += arg[1] == '-' ? 2 : 1;
    if (arg[0] != 'c')
        return false;
    *inline_value = arg[1] == '=';
    return arg[1] == '\0' || arg[1] == '=';
}

static void check_result(struct config *cfg, int rc, const char *err)
{
    char verr[CONFIG_ERR_MAX];

    FUZZ_CHECK(rc == CONFIG_OK || rc == CONFIG_HELP || rc == CONFIG_VERSION || rc == ERR_INVAL);
    if (rc == ERR_INVAL) /* the reason may quote an argument, newlines and all */
        FUZZ_CHECK(err[0] != '\0');
    if (rc != CONFIG_OK)
        return;
    FUZZ_CHECK(memchr(cfg->warnings, '\0', sizeof(cfg->warnings)) != NULL);
    verr[0] = '\0';
    rc = config_validate(cfg, verr, sizeof(verr));
    FUZZ_CHECK(rc == 0 || (rc == ERR_INVAL && verr[0] != '\0'));
    if (rc == 0) {
        char host[CONFIG_ADDR_MAX], port[CONFIG_ADDR_MAX];
        const char *addr = cfg->role == CONFIG_CLIENT ? cfg->remoteaddr : cfg->listen;
        FUZZ_CHECK(config_parse_addr(addr, host, sizeof(host), port, sizeof(port), NULL, 0) == 0);
        FUZZ_CHECK(config_crypt_is_known(cfg->crypt));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_reader r;
    char *argv[FUZZ_CONFIG_MAX_ARGS + 1];
    char *args = NULL, *fixed[FUZZ_CONFIG_MAX_ARGS];
    struct config *cfg = malloc(sizeof(*cfg));
    char err[CONFIG_ERR_MAX];
    int argc = 0, nfixed = 0;

    if (json_fd < 0)
        LLVMFuzzerInitialize(NULL, NULL);
    if (!cfg)
        return 0;
    fuzz_reader_init(&r, data, size);
    enum config_role role = fuzz_u8(&r) % 2 ? CONFIG_SERVER : CONFIG_CLIENT;
    size_t alen, jlen;
    const uint8_t *abytes = fuzz_bytes(&r, fuzz_u16(&r), &alen);
    const uint8_t *json = fuzz_bytes(&r, fuzz_left(&r), &jlen);

    FUZZ_CHECK(ftruncate(json_fd, 0) == 0);
    FUZZ_CHECK(pwrite(json_fd, json, jlen, 0) == (ssize_t)jlen);

    /* The JSON on its own. */
    config_defaults(cfg, role);
    err[0] = '\0';
    int rc = config_load_json(cfg, json_path, err, sizeof(err));
    FUZZ_CHECK(rc == 0 || (rc == ERR_INVAL && err[0] != '\0'));
    if (rc == 0) {
        err[0] = '\0';
        rc = config_apply_mode(cfg, err, sizeof(err));
        FUZZ_CHECK(rc == 0 || rc == ERR_INVAL);
        if (rc == 0)
            check_result(cfg, CONFIG_OK, err);
    }

    /* The command line, with every -c pointed at the JSON. */
    args = malloc(alen + 1);
    if (!args)
        goto out;
    memcpy(args, abytes, alen);
    args[alen] = '\0';
    argv[argc++] = (char *)config_prog_name(role);
    for (size_t i = 0; i < alen && argc < FUZZ_CONFIG_MAX_ARGS; i += strlen(args + i) + 1)
        argv[argc++] = args + i;
    argv[argc] = NULL;
    for (int i = 1; i < argc; i++) {
        bool inline_value;
        if (!is_config_flag(argv[i], &inline_value))
            continue;
        if (inline_value) {
            char *a = malloc(sizeof(json_path) + 4);
            if (!a)
                goto out;
            snprintf(a, sizeof(json_path) + 4, "-c=%s", json_path);
            fixed[nfixed++] = argv[i] = a;
        } else if (i + 1 < argc) {
            argv[++i] = json_path;
        }
    }
    config_defaults(cfg, role);
    err[0] = '\0';
    rc = config_parse_args(cfg, argc, argv, err, sizeof(err));
    check_result(cfg, rc, err);
out:
    for (int i = 0; i < nfixed; i++)
        free(fixed[i]);
    free(args);
    free(cfg);
    return 0;
}
