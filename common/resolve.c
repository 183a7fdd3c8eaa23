/* SPDX-License-Identifier: MIT */
/* libev shell: host name lookups off the event loop (see resolve.h). */
#include "common/resolve.h"

#include "common/err.h"
#include "common/util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

/* One lookup, shared by its thread and its resolver; the last of the two frees it. */
struct resolve_job {
    pthread_mutex_t mu;
    int refs;             /* 2 while both hold it */
    bool abandoned;       /* the resolver let go: report nothing */
    bool done;            /* the result below is set */
    struct ev_loop *loop; /* where to report */
    ev_async *async;      /* ... through this */
    bool passive;
    int rc;
    struct net_addr addr;
    char err[NET_ERR_LEN];
    char hostport[];
};

struct resolver {
    struct ev_loop *loop;
    ev_async async;
    resolve_done_fn *cb;
    void *user;
    struct resolve_job *job; /* in flight, or NULL */
    unsigned long started;
};

/* Drops one reference; frees the job with the last one. */
static void job_put(struct resolve_job *j)
{
    pthread_mutex_lock(&j->mu);
    bool last = --j->refs == 0;
    pthread_mutex_unlock(&j->mu);
    if (last) {
        pthread_mutex_destroy(&j->mu);
        free(j);
    }
}

static void *job_run(void *arg)
{
    struct resolve_job *j = arg;
    struct net_addr addr;
    char err[NET_ERR_LEN] = "";
    int rc = net_resolve(j->hostport, j->passive, &addr, err);
    pthread_mutex_lock(&j->mu);
    j->rc = rc;
    j->addr = addr;
    memcpy(j->err, err, sizeof(err));
    j->done = true;
    if (!j->abandoned)
        ev_async_send(j->loop, j->async);
    pthread_mutex_unlock(&j->mu);
    job_put(j);
    return NULL;
}

static void resolver_async_cb(EV_P_ ev_async *w, int revents)
{
    (void)loop;
    (void)revents;
    struct resolver *r = container_of(w, struct resolver, async);
    struct resolve_job *j = r->job;
    if (!j)
        return;
    pthread_mutex_lock(&j->mu);
    bool done = j->done;
    int rc = j->rc;
    struct net_addr addr = j->addr;
    char err[NET_ERR_LEN];
    memcpy(err, j->err, sizeof(err));
    pthread_mutex_unlock(&j->mu);
    if (!done)
        return;
    r->job = NULL;
    job_put(j);
    r->cb(r->user, rc, rc == 0 ? &addr : NULL, err);
}

struct resolver *resolver_new(struct ev_loop *loop, resolve_done_fn *cb, void *user)
{
    struct resolver *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->loop = loop;
    r->cb = cb;
    r->user = user;
    ev_async_init(&r->async, resolver_async_cb);
    ev_async_start(loop, &r->async);
    ev_unref(loop); /* a pending lookup alone does not keep the loop running */
    return r;
}

void resolver_free(struct resolver *r)
{
    if (!r)
        return;
    if (r->job) {
        pthread_mutex_lock(&r->job->mu);
        r->job->abandoned = true;
        pthread_mutex_unlock(&r->job->mu);
        job_put(r->job);
    }
    ev_ref(r->loop);
    ev_async_stop(r->loop, &r->async);
    free(r);
}

int resolver_start(struct resolver *r, const char *hostport, bool passive)
{
    if (r->job)
        return ERR_AGAIN;
    size_t n = strlen(hostport);
    struct resolve_job *j = calloc(1, sizeof(*j) + n + 1);
    if (!j)
        return ERR_NOMEM;
    memcpy(j->hostport, hostport, n + 1);
    j->passive = passive;
    j->loop = r->loop;
    j->async = &r->async;
    j->refs = 2;
    pthread_mutex_init(&j->mu, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* the thread takes no signal: the loop's thread handles them */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, job_run, j);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&j->mu);
        free(j);
        return rc == ENOMEM || rc == EAGAIN ? ERR_NOMEM : ERR_INVAL;
    }
    r->job = j;
    r->started++;
    return 0;
}

bool resolver_busy(const struct resolver *r)
{
    return r->job != NULL;
}

unsigned long resolver_started(const struct resolver *r)
{
    return r->started;
}
