/* SPDX-License-Identifier: MIT */
/* Firewall rules for --tcp: installed through iptables/ip6tables, tagged with the owner's PID. */
#include "common/fwrule.h"

#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static struct fwrule *registry;
static bool atexit_done;

static const char *tool(int family)
{
    return family == 6 ? "ip6tables" : "iptables";
}

/* Reads what |fd| has into |buf| after its |*n| bytes (|cap| bytes with one kept for the NUL;
 * what does not fit, or all with |buf| NULL, is read and thrown away). False at EOF or error. */
static bool read_some(int fd, char *buf, size_t cap, size_t *n)
{
    char sink[512];
    bool keep = buf && *n + 1 < cap;
    ssize_t r = read(fd, keep ? buf + *n : sink, keep ? cap - 1 - *n : sizeof(sink));
    if (r > 0 && keep)
        *n += (size_t)r;
    return r > 0 || (r < 0 && errno == EINTR);
}

/* Runs |argv| (argv[0] looked up on PATH) with stdin from /dev/null; stdout goes into |out|
 * (|cap| bytes, NUL-terminated, may be NULL to discard), stderr's first line into |errl|
 * (|errcap| bytes, may be NULL). Returns the exit status, or -1 when it could not run. */
static int run(const char *const argv[], char *out, size_t cap, char *errl, size_t errcap)
{
    int po[2], pe[2];
    if (pipe2(po, O_CLOEXEC) != 0)
        return -1;
    if (pipe2(pe, O_CLOEXEC) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(po[0]);
        close(po[1]);
        close(pe[0]);
        close(pe[1]);
        return -1;
    }
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        /* a clean signal state: the parent may block or ignore some */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t n = 0, ne = 0;
    char ebuf[512];
    bool open_o = true, open_e = true;
    /* read both pipes until both reach EOF (one after the other; the outputs are small) */
    while (open_o || open_e) {
        if (open_o)
            open_o = read_some(po[0], out, cap, &n);
        else
            open_e = read_some(pe[0], ebuf, sizeof(ebuf), &ne);
    }
    close(po[0]);
    close(pe[0]);
    if (out && cap)
        out[n] = '\0';
    ebuf[ne] = '\0';
    if (errl && errcap) {
        size_t l = strcspn(ebuf, "\n");
        if (l >= errcap)
            l = errcap - 1;
        memcpy(errl, ebuf, l);
        errl[l] = '\0';
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    if (!WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

/* True when |name| is an executable file in a directory of PATH (or a path itself). */
static bool on_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    while (*path) {
        size_t l = strcspn(path, ":");
        char full[512];
        if (l > 0 && l + strlen(name) + 2 < sizeof(full)) {
            memcpy(full, path, l);
            full[l] = '/';
            strcpy(full + l + 1, name);
            if (access(full, X_OK) == 0)
                return true;
        }
        path += l;
        if (*path == ':')
            path++;
    }
    return false;
}

int fwrule_check(int family, char *err, size_t errlen)
{
    if (geteuid() != 0) {
        snprintf(err, errlen, "--tcp needs root (raw sockets and %s rules)", tool(family));
        return -1;
    }
    if (!on_path(tool(family))) {
        snprintf(err, errlen, "--tcp needs %s (not found on PATH; Debian package iptables)",
                 tool(family));
        return -1;
    }
    return 0;
}

/* True when the process |pid| runs and is a ktun program. */
static bool owner_alive(long pid)
{
    if (pid <= 0)
        return false;
    if (pid == (long)getpid())
        return true;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return false;
    char p[64], comm[64] = "";
    snprintf(p, sizeof(p), "/proc/%ld/comm", pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return false;
    if (!fgets(comm, sizeof(comm), f))
        comm[0] = '\0';
    fclose(f);
    return strncmp(comm, "ktun", 4) == 0;
}

int fwrule_clean_stale(int family)
{
    static char out[1 << 16];
    const char *argv[] = {tool(family), "-w", "5", "-S", "OUTPUT", NULL};
    if (run(argv, out, sizeof(out), NULL, 0) != 0)
        return 0;
    /* rule numbers of stale ktun rules, in listing order */
    int stale[256], nstale = 0, num = 0;
    for (char *line = out; *line && nstale < 256;) {
        char *eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        if (strncmp(line, "-A OUTPUT ", 10) == 0) {
            num++;
            const char *tag = strstr(line, FWRULE_TAG);
            if (tag) {
                long pid = strtol(tag + strlen(FWRULE_TAG), NULL, 10);
                if (!owner_alive(pid))
                    stale[nstale++] = num;
            }
        }
        if (!eol)
            break;
        line = eol + 1;
    }
    int removed = 0;
    for (int i = nstale - 1; i >= 0; i--) { /* from the bottom: numbers above stay valid */
        char nbuf[16];
        snprintf(nbuf, sizeof(nbuf), "%d", stale[i]);
        const char *dargv[] = {tool(family), "-w", "5", "-D", "OUTPUT", nbuf, NULL};
        if (run(dargv, NULL, 0, NULL, 0) == 0)
            removed++;
    }
    if (removed)
        LOG_INFO("tcp: removed %d stale %s rule%s of a previous ktun run", removed, tool(family),
                 removed == 1 ? "" : "s");
    return removed;
}

/* Builds the command line of |r| for |op| ("-I" with position 1, or "-D"). */
static void build_argv(const struct fwrule *r, const char *op, const char *argv[], char *tagbuf,
                       size_t taglen)
{
    int a = 0;
    argv[a++] = tool(r->family);
    argv[a++] = "-w";
    argv[a++] = "5"; /* wait for the xtables lock, but not forever */
    argv[a++] = op;
    argv[a++] = "OUTPUT";
    if (op[1] == 'I')
        argv[a++] = "1";
    argv[a++] = "-p";
    argv[a++] = "tcp";
    for (int i = 0; i < r->nargs; i++)
        argv[a++] = r->args[i];
    argv[a++] = "--tcp-flags";
    argv[a++] = "SYN";
    argv[a++] = "NONE";
    argv[a++] = "-m";
    argv[a++] = "mark";
    argv[a++] = "!";
    argv[a++] = "--mark";
    argv[a++] = "0x6b74";
    argv[a++] = "-m";
    argv[a++] = "comment";
    argv[a++] = "--comment";
    snprintf(tagbuf, taglen, FWRULE_TAG "%ld", (long)getpid());
    argv[a++] = tagbuf;
    argv[a++] = "-j";
    argv[a++] = "DROP";
    argv[a] = NULL;
}

static void del_all_at_exit(void)
{
    fwrule_del_all();
}

static int add(struct fwrule *r, int family, uint16_t sport, uint16_t sport_hi,
               const char *daddr, uint16_t dport, char *err, size_t errlen)
{
    _Static_assert(FWRULE_MARK == 0x6b74u, "the rule text spells the mark");
    memset(r, 0, sizeof(*r));
    r->family = family;
    snprintf(r->args[r->nargs++], sizeof(r->args[0]), "--sport");
    if (sport_hi > sport)
        snprintf(r->args[r->nargs++], sizeof(r->args[0]), "%u:%u", (unsigned)sport,
                 (unsigned)sport_hi);
    else
        snprintf(r->args[r->nargs++], sizeof(r->args[0]), "%u", (unsigned)sport);
    if (daddr) {
        snprintf(r->args[r->nargs++], sizeof(r->args[0]), "-d");
        snprintf(r->args[r->nargs++], sizeof(r->args[0]), "%s", daddr);
        snprintf(r->args[r->nargs++], sizeof(r->args[0]), "--dport");
        snprintf(r->args[r->nargs++], sizeof(r->args[0]), "%u", (unsigned)dport);
    }
    const char *argv[32];
    char tag[48], why[200] = "";
    build_argv(r, "-I", argv, tag, sizeof(tag));
    int st = run(argv, NULL, 0, why, sizeof(why));
    if (st != 0) {
        snprintf(err, errlen, "--tcp: %s failed (%s)", tool(family),
                 why[0] ? why : st < 0 ? "could not run it" : "exit status");
        return -1;
    }
    r->installed = true;
    r->next = registry;
    registry = r;
    if (!atexit_done) {
        atexit(del_all_at_exit);
        atexit_done = true;
    }
    return 0;
}

int fwrule_add(struct fwrule *r, int family, uint16_t sport, const char *daddr, uint16_t dport,
               char *err, size_t errlen)
{
    return add(r, family, sport, sport, daddr, dport, err, errlen);
}

int fwrule_add_range(struct fwrule *r, int family, uint16_t sport, uint16_t sport_hi,
                     char *err, size_t errlen)
{
    return add(r, family, sport, sport_hi, NULL, 0, err, errlen);
}

void fwrule_del(struct fwrule *r)
{
    if (!r->installed)
        return;
    for (struct fwrule **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    r->installed = false;
    const char *argv[32];
    char tag[48], why[200] = "";
    build_argv(r, "-D", argv, tag, sizeof(tag));
    if (run(argv, NULL, 0, why, sizeof(why)) != 0)
        LOG_WARN("tcp: removing a %s rule failed: %s", tool(r->family), why);
}

void fwrule_del_all(void)
{
    while (registry)
        fwrule_del(registry);
}
