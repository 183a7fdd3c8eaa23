/* SPDX-License-Identifier: MIT */
/* libev shell: host name lookups off the event loop (a worker thread per lookup). */
#ifndef KTUN_RESOLVE_H
#define KTUN_RESOLVE_H

#include "common/net.h"

#include <ev.h>
#include <stdbool.h>

/*
 * getaddrinfo blocks for as long as the name servers take (seconds, or the resolver's whole
 * timeout when they do not answer); on the loop's thread that stalls every session of the
 * process. A resolver runs one lookup at a time (net_resolve) on a thread of its own and
 * reports the result on the loop through an ev_async: the callback runs on the loop's thread.
 * A lookup that never ends costs a parked thread, nothing else; freeing the resolver abandons
 * it (its result is dropped when it finally comes).
 */

/* The result of one lookup: |rc| 0 and |*addr| set, or |rc| < 0 and |err| saying why. */
typedef void resolve_done_fn(void *user, int rc, const struct net_addr *addr, const char *err);

struct resolver;

/* A resolver reporting on |loop| to |cb| with |user|. NULL when out of memory. */
struct resolver *resolver_new(struct ev_loop *loop, resolve_done_fn *cb, void *user);

/* Abandons the lookup in flight, if any (its callback never runs) and frees |r| (NULL is
 * allowed). */
void resolver_free(struct resolver *r);

/* Starts looking up |hostport| (as net_resolve, |passive| likewise). Returns 0; ERR_AGAIN if a
 * lookup is already in flight (its result comes to the callback; start again after it if the
 * name changed); ERR_NOMEM or ERR_INVAL (no thread) without starting one. */
int resolver_start(struct resolver *r, const char *hostport, bool passive);

/* True while a lookup is in flight. */
bool resolver_busy(const struct resolver *r);

/* Lookups started so far. */
unsigned long resolver_started(const struct resolver *r);

#endif
