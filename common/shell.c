/* SPDX-License-Identifier: MIT */
/* libev shell, process level: loop, signals, SNMP timer, datagram batching (see shell.h). */
#include "common/shell.h"

#include "common/config.h"
#include "common/ext.h"
#include "common/log.h"
#include "common/sess.h"
#include "common/udpfwd.h"
#include "common/util.h"
#include "crypto/crypt.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

void sess_params_from_config(const struct config *cfg, struct sess_params *p)
{
    memset(p, 0, sizeof(*p));
    struct link_config *lc = &p->tun.link;
    link_config_default(lc);
    lc->data_shards = cfg->datashard;
    lc->parity_shards = cfg->parityshard;
    lc->mtu = (size_t)cfg->mtu;
    lc->sndwnd = cfg->sndwnd;
    lc->rcvwnd = cfg->rcvwnd;
    lc->rcv_budget = cfg->bufbudget;
    lc->nodelay = cfg->nodelay;
    lc->interval_ms = cfg->interval_ms;
    lc->resend = cfg->resend;
    lc->nc = cfg->nc;
    lc->ack_nodelay = cfg->acknodelay;
    lc->pace = !cfg->nopace;
    lc->no_fec_hold = cfg->nofechold;
    lc->rate_limit = cfg->ratelimit > 0 ? (uint64_t)cfg->ratelimit : 0;
    lc->message_mode = false;
    lc->wall_offset_ms = shell_wall_offset_ms(); /* refreshed on every session timer */
    lc->log = log_core_debug;
    lc->log_user = (void *)"link";
    p->tun.ext_caps = EXT_CAPS_ALL;
    p->tun.ext_offer = config_offers_caps(cfg);
    struct mux_config *mc = &p->tun.mux;
    mux_config_default(mc);
    mc->version = cfg->smuxver;
    mc->max_receive_buffer = (uint32_t)cfg->smuxbuf;
    mc->max_stream_buffer = (uint32_t)cfg->streambuf;
    mc->keepalive_interval_ms = (uint32_t)cfg->keepalive_s * 1000;
    mc->max_streams = cfg->maxstreams > 0 ? (uint32_t)cfg->maxstreams : 0;
    mc->max_frame_size = (uint32_t)cfg->framesize;
    /* --closewait -1 (default): no delay, but a FIN to a v2 peer that half-closed first waits
     * until it has read everything, at most kcptun's 30 s (docs/kcptun-newer.md). */
    mc->close_wait_ms = cfg->closewait_s > 0 ? (uint32_t)cfg->closewait_s * 1000u : 0;
    mc->fin_hold_ms = cfg->closewait_s < 0 ? 30000u : 0;
    p->tun.nocomp = cfg->nocomp;
    if (cfg->role == CONFIG_SERVER) { /* what the user did not set, each session detects */
        if (!cfg->smuxver_set)
            mc->version = MUX_VERSION_AUTO;
        p->tun.comp_auto = !cfg->nocomp_set;
    }
    p->sockbuf = cfg->sockbuf;
    p->dscp = cfg->dscp;
    p->quiet = cfg->quiet;
    p->bufbudget = cfg->bufbudget;
}

/* ---- process limits ------------------------------------------------------------------- */

uint64_t shell_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = was;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

uint64_t shell_mem_budget(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t mem = pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize / 2 : 1ull << 30;
    static const int which[] = {RLIMIT_AS, RLIMIT_DATA};
    for (size_t i = 0; i < sizeof(which) / sizeof(which[0]); i++) {
        struct rlimit rl;
        if (getrlimit(which[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
            mem = MIN(mem, (uint64_t)rl.rlim_cur);
    }
    return mem;
}

/* ---- datagram batching ---------------------------------------------------------------- */

void shell_flush_dgrams(struct shell *sh)
{
    if (sh->sb.n == 0)
        return;
    int dropped = net_sbatch_flush(sh->sb_udp, &sh->sb);
    (void)dropped; /* a refused datagram is a datagram lost on the wire: KCP resends it */
    sh->sb_udp = NULL;
}

/* Runs before the loop waits for events: whatever the callbacks of this iteration queued
 * leaves now, so no datagram waits for an unrelated event. */
static void flush_prepare_cb(EV_P_ ev_prepare *w, int revents)
{
    (void)loop;
    (void)revents;
    shell_flush_dgrams(container_of(w, struct shell, flush_prepare));
}

void shell_send_dgram(struct shell *sh, struct net_udp *u, const uint8_t *p, size_t len,
                      const struct net_addr *to)
{
    if (sh->sb.n && sh->sb_udp != u)
        shell_flush_dgrams(sh);
    sh->sb_udp = u;
    if (net_sbatch_add(u, &sh->sb, p, len, to) != 0)
        return;
    sh->base.v[SNMP_OUT_PKTS]++;
    sh->base.v[SNMP_OUT_BYTES] += len;
}

struct crypt *shell_crypt_new(const struct config *cfg, enum crypt_role role,
                              struct crypt_rng **rng)
{
    const char *who = role == CRYPT_ROLE_CLIENT ? "client" : "server";
    int cerr = 0;
    *rng = NULL;
    if (crypt_lib_init() != 0 || sodium_init() < 0 || !(*rng = crypt_rng_new())) {
        LOG_ERROR("%s: cannot initialise the crypto libraries", who);
        return NULL;
    }
    struct crypt *c = crypt_new(cfg->crypt, cfg->key, crypt_rng_fill, *rng, &cerr);
    if (!c) {
        char msg[256];
        crypt_error(cfg->crypt, cerr, msg, sizeof(msg));
        LOG_ERROR("%s: --crypt: %s", who, msg);
        crypt_rng_free(*rng);
        *rng = NULL;
        return NULL;
    }
    crypt_set_role(c, role);
    crypt_set_start(c, (uint64_t)(ev_time() * 1e3));
    return c;
}

/* ---- receive budget ------------------------------------------------------------------- */

void shell_wake_stalled(struct shell *sh)
{
    if (sh->budget.nstalled == 0 || tunnel_budget_over(&sh->budget))
        return;
    for (struct sess *s = sh->sessions; s; s = s->next) {
        if (!tunnel_unstall(s->tun))
            continue;
        ev_timer_stop(sh->loop, &s->timer);
        ev_timer_set(&s->timer, 0.0, 0.0);
        ev_timer_start(sh->loop, &s->timer);
    }
}

/* ---- counters ------------------------------------------------------------------------- */

void shell_tunnel_to_snmp(const struct tunnel *t, struct snmp *o)
{
    struct tunnel_stats ts;
    tunnel_get_stats(t, &ts);
    const struct link_stats *ls = &ts.link;
    o->v[SNMP_BYTES_SENT] += ts.bytes_sent;
    o->v[SNMP_BYTES_RECEIVED] += ts.bytes_received;
    o->v[SNMP_KCP_IN_ERRORS] += ls->kcp.in_errors;
    o->v[SNMP_IN_SEGS] += ls->kcp.in_segs;
    o->v[SNMP_OUT_SEGS] += ls->kcp.out_segs;
    o->v[SNMP_RETRANS_SEGS] += ls->kcp.retrans_segs;
    o->v[SNMP_FAST_RETRANS_SEGS] += ls->kcp.fast_retrans_segs;
    o->v[SNMP_EARLY_RETRANS_SEGS] += ls->kcp.early_retrans_segs;
    o->v[SNMP_LOST_SEGS] += ls->kcp.lost_segs;
    o->v[SNMP_REPEAT_SEGS] += ls->kcp.repeat_segs;
    o->v[SNMP_FEC_PARITY_SHARDS] += ls->fec.parity_shards;
    o->v[SNMP_FEC_ERRS] += ls->fec.errs;
    o->v[SNMP_FEC_RECOVERED] += ls->fec.recovered;
    o->v[SNMP_FEC_SHORT_SHARDS] += ls->fec.short_shards;
    o->v[SNMP_DGRAM_IN] += ts.dgram_in;
    o->v[SNMP_DGRAM_OUT] += ts.dgram_out;
    o->v[SNMP_DGRAM_DROPPED] += ts.dgram_dropped;
    o->v[SNMP_DGRAM_RECOVERED] += ts.dgram_recovered;
    o->v[SNMP_REDUNDANT_SEGS] += ls->kcp.redundant_segs;
    o->v[SNMP_FEC_PARITY_SKIPPED] += ls->fec_parity_skipped;
}

void shell_snmp(const struct shell *sh, struct snmp *out)
{
    *out = sh->base;
    for (const struct sess *s = sh->sessions; s; s = s->next)
        shell_tunnel_to_snmp(s->tun, out);
    const struct crypt_stats *cs = crypt_get_stats(sh->crypt);
    out->v[SNMP_IN_CSUM_ERRORS] = cs->in_csum_errors + cs->in_auth_errors;
    out->v[SNMP_CURR_ESTAB] = sh->nsess;
}

static void shell_log_snmp(const struct shell *sh)
{
    struct snmp snap;
    char line[LOG_LINE_MAX];
    shell_snmp(sh, &snap);
    LOG_INFO("snmp: %s", snmp_format_line(&snap, line, sizeof(line)));
}

/* ---- signals and timers --------------------------------------------------------------- */

static void sig_stop_cb(EV_P_ ev_signal *w, int revents)
{
    (void)revents;
    struct shell *sh = w->signum == SIGINT ? container_of(w, struct shell, sig_int)
                                           : container_of(w, struct shell, sig_term);
    LOG_INFO("shell: signal %d, shutting down", w->signum);
    sh->stopping = true;
    ev_break(EV_A_ EVBREAK_ALL);
}

static void sig_hup_cb(EV_P_ ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    char err[256];
    if (log_reopen(err, sizeof(err)) != 0)
        LOG_WARN("shell: cannot reopen the log: %s", err);
    struct shell *sh = container_of(w, struct shell, sig_hup);
    if (sh->hooks.reload)
        sh->hooks.reload(sh);
}

void shell_reconfigure(struct shell *sh, const struct config *cfg, struct crypt *crypt)
{
    const struct qpp *qpp = sh->params.tun.mux.qpp; /* built by the role from --key: kept */
    sess_params_from_config(cfg, &sh->params);
    sh->params.tun.mux.qpp = qpp;
    if (crypt)
        sh->crypt = crypt;
    sh->budget.limit = sh->params.bufbudget > 0 ? (uint64_t)sh->params.bufbudget : 0;
    log_set_level((enum log_level)cfg->loglevel);
    log_set_quiet(cfg->quiet);
    /* what the peer never sees applies to live sessions too: keepalive, --maxstreams,
     * --closewait */
    uint64_t now = shell_now_ms();
    size_t n = 0;
    for (struct sess *s = sh->sessions, *nx; s; s = nx) {
        nx = s->next;
        if (tunnel_set_local(s->tun, &sh->params.tun, now) == 0)
            n++;
        sess_pump(s); /* the timer follows the new keepalive */
    }
    if (n)
        LOG_INFO("reload: keepalive %u s, --maxstreams %u, --closewait %u s for %zu live "
                 "session(s)", cfg->keepalive_s > 0 ? (unsigned)cfg->keepalive_s : 0,
                 sh->params.tun.mux.max_streams, sh->params.tun.mux.close_wait_ms / 1000, n);
    shell_wake_stalled(sh);
    shell_flush_dgrams(sh);
}

static void sig_usr1_cb(EV_P_ ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    shell_log_snmp(container_of(w, struct shell, sig_usr1));
}

static void snmp_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct shell *sh = container_of(w, struct shell, snmp_timer);
    struct snmp snap;
    shell_snmp(sh, &snap);
    if (snmp_append_csv(sh->snmplog, time(NULL), &snap) != 0)
        LOG_WARN("snmp: cannot append to %s: %s", sh->snmplog, strerror(errno));
}

static void shell_start_signals(struct shell *sh)
{
    struct ev_loop *loop = sh->loop;
    signal(SIGPIPE, SIG_IGN);
    ev_signal_init(&sh->sig_int, sig_stop_cb, SIGINT);
    ev_signal_init(&sh->sig_term, sig_stop_cb, SIGTERM);
    ev_signal_init(&sh->sig_usr1, sig_usr1_cb, SIGUSR1);
    ev_signal_init(&sh->sig_hup, sig_hup_cb, SIGHUP);
    ev_signal_start(EV_A_ &sh->sig_hup);
    ev_signal_start(EV_A_ &sh->sig_int);
    ev_signal_start(EV_A_ &sh->sig_term);
    ev_signal_start(EV_A_ &sh->sig_usr1);
}

void shell_drop_pages(void *p, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t b = ((uintptr_t)p + len) & ~(uintptr_t)(page - 1);
    if (b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Idle memory: once a whole tick of SHELL_TRIM_S passed without any datagram read, the
 * buffers a burst of traffic filled go back to the kernel: the receive batch (allocated again
 * by the next read), the sessions' idle compression buffers and spare KCP segments
 * (tunnel_trim), the pages of the empty send batch and of the TCP and UDP-forward read
 * buffers, and the free memory of the C library's heap. An idle tunnel then holds what its
 * sessions' state needs, not what its busiest second needed; the next burst pays some page
 * faults. */
static void shell_trim(struct shell *sh)
{
    net_rbatch_free(&sh->rb);
    for (struct sess *s = sh->sessions; s; s = s->next)
        if (s->tun)
            tunnel_trim(s->tun);
    if (sh->sb.n == 0)
        shell_drop_pages(sh->sb.buf, sizeof(sh->sb.buf));
    shell_drop_pages(sh->scratch, sizeof(sh->scratch));
    udpfwd_trim(sh);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

static void trim_timer_cb(EV_P_ ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct shell *sh = container_of(w, struct shell, trim_timer);
    if (sh->rb.reads != sh->trim_reads) {
        sh->trim_reads = sh->rb.reads;
        sh->trimmed = false;
    } else if (!sh->trimmed) {
        shell_trim(sh);
        sh->trimmed = true;
    }
}

int shell_init(struct shell *sh, struct ev_loop *loop, const struct sess_params *params,
               bool is_client, struct crypt *crypt, const struct shell_hooks *hooks,
               const char *snmplog, int snmpperiod)
{
    memset(sh, 0, offsetof(struct shell, sb));
    sh->sb.n = 0;
    sh->loop = loop;
    sh->params = *params;
    sh->is_client = is_client;
    sh->crypt = crypt;
    sh->hooks = *hooks;
    sh->sb_udp = NULL;
    sh->snmplog = snmplog && snmplog[0] ? snmplog : NULL;
    sh->snmpperiod = snmpperiod;
    sh->stopping = false;
    sh->budget = (struct tunnel_budget){
        .limit = params->bufbudget > 0 ? (uint64_t)params->bufbudget : 0,
    };
    shell_start_signals(sh);
    ev_prepare_init(&sh->flush_prepare, flush_prepare_cb);
    ev_prepare_start(EV_A_ &sh->flush_prepare);
    ev_init(&sh->snmp_timer, snmp_timer_cb);
    if (sh->snmplog && snmpperiod > 0) {
        ev_timer_set(&sh->snmp_timer, snmpperiod, snmpperiod);
        ev_timer_start(EV_A_ &sh->snmp_timer);
    }
    ev_timer_init(&sh->trim_timer, trim_timer_cb, SHELL_TRIM_S, SHELL_TRIM_S);
    ev_timer_start(EV_A_ &sh->trim_timer);
    return 0;
}

void shell_run(struct shell *sh)
{
    ev_run(sh->loop, 0);
    shell_stop(sh);
}

void shell_stop(struct shell *sh)
{
    struct ev_loop *loop = sh->loop;
    if (sh->hooks.shutdown)
        sh->hooks.shutdown(sh);
    udpfwd_stop(sh);
    while (sh->sessions)
        sess_close(sh->sessions, "shutdown");
    shell_flush_dgrams(sh);
    shell_log_snmp(sh);
    ev_signal_stop(EV_A_ &sh->sig_int);
    ev_signal_stop(EV_A_ &sh->sig_term);
    ev_signal_stop(EV_A_ &sh->sig_usr1);
    ev_signal_stop(EV_A_ &sh->sig_hup);
    ev_timer_stop(EV_A_ &sh->snmp_timer);
    ev_timer_stop(EV_A_ &sh->trim_timer);
    ev_prepare_stop(EV_A_ &sh->flush_prepare);
    net_rbatch_free(&sh->rb);
}
