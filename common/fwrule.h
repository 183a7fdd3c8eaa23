/* SPDX-License-Identifier: MIT */
/* Firewall rules that keep the kernel's own TCP segments of a fake-TCP flow off the wire. */
#ifndef KTUN_FWRULE_H
#define KTUN_FWRULE_H

/*
 * With --tcp the kernel holds a real TCP connection (so that the handshake is genuine) but
 * must not send anything on it afterwards: its ACKs, window updates and RSTs would contradict
 * the fake segments. Every segment ktun itself sends leaves a raw socket marked FWRULE_MARK;
 * one iptables/ip6tables rule per local port drops the other (kernel) segments of that port
 * that have no SYN (so the kernel's SYN and SYN-ACK still make the handshake):
 *
 *   -I OUTPUT 1 -p tcp --sport PORT [-d ADDR --dport PORT] --tcp-flags SYN NONE
 *     -m mark ! --mark FWRULE_MARK -m comment --comment ktun-tcp:PID -j DROP
 *
 * Rules are removed when their owner closes them, at exit() (atexit), and on SIGTERM/SIGINT
 * through the normal shutdown. Rules left by a process that died without cleaning up (their
 * comment names a PID that is no longer a running ktun) are removed by fwrule_clean_stale at
 * the next start.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Mark of every segment ktun sends through its raw sockets ("kt"). */
#define FWRULE_MARK 0x6b74u
/* Comment prefix of every rule ktun installs (followed by the owner's PID). */
#define FWRULE_TAG "ktun-tcp:"

/* One installed rule. */
struct fwrule {
    int family;           /* 4: iptables, 6: ip6tables */
    char args[8][64];     /* match arguments after "-p tcp" (sport, optional dst and dport) */
    int nargs;
    bool installed;
    struct fwrule *next;  /* registry of installed rules (removed at exit) */
};

/* Checks that rules can be installed: root (CAP_NET_ADMIN for raw sockets) and the firewall
 * tool of |family| (iptables, or ip6tables for 6) on PATH. Returns 0, or -1 with a one-line
 * reason in |err| (|errlen| bytes). */
int fwrule_check(int family, char *err, size_t errlen);

/* Removes ktun rules of |family| whose owner process is gone. Returns how many. */
int fwrule_clean_stale(int family);

/* Installs the rule for local port |sport| (and, for a client, peer |daddr|:|dport|; |daddr|
 * NULL for a server) in |r|. Returns 0, or -1 with the reason in |err|. */
int fwrule_add(struct fwrule *r, int family, uint16_t sport, const char *daddr, uint16_t dport,
               char *err, size_t errlen);

/* As fwrule_add for a server listening on every port of [sport, sport_hi] (one rule,
 * "--sport LO:HI"). */
int fwrule_add_range(struct fwrule *r, int family, uint16_t sport, uint16_t sport_hi,
                     char *err, size_t errlen);

/* Removes the rule of |r| if installed (no-op otherwise). */
void fwrule_del(struct fwrule *r);

/* Removes every installed rule (also run at exit). */
void fwrule_del_all(void);

#endif
