/* SPDX-License-Identifier: MIT */
/* Byte ring buffer with a power-of-two capacity, for TCP <-> stream data in the shell. */
#include "common/ring.h"

#include "common/err.h"
#include "common/util.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int ring_init(struct ring *r, size_t cap)
{
    size_t c = 16;
    while (c < cap)
        c <<= 1;
    r->data = malloc(c);
    if (!r->data)
        return ERR_NOMEM;
    r->mask = c - 1;
    r->head = r->tail = 0;
    return 0;
}

void ring_release(struct ring *r)
{
    free(r->data);
    r->data = NULL;
    r->mask = 0;
    r->head = r->tail = 0;
}

/* Contiguous spans starting at position |pos| covering |n| bytes. */
static int spans(const struct ring *r, size_t pos, size_t n, struct iovec iov[2])
{
    if (n == 0)
        return 0;
    size_t off = pos & r->mask;
    size_t first = MIN(n, ring_cap(r) - off);
    iov[0].iov_base = r->data + off;
    iov[0].iov_len = first;
    if (first == n)
        return 1;
    iov[1].iov_base = r->data;
    iov[1].iov_len = n - first;
    return 2;
}

int ring_data_iov(const struct ring *r, struct iovec iov[2])
{
    return spans(r, r->head, ring_len(r), iov);
}

int ring_room_iov(const struct ring *r, struct iovec iov[2])
{
    return spans(r, r->tail, ring_room(r), iov);
}

void ring_consume(struct ring *r, size_t n)
{
    assert(n <= ring_len(r) && "ring: consume beyond data");
    r->head += n;
}

void ring_produce(struct ring *r, size_t n)
{
    assert(n <= ring_room(r) && "ring: produce beyond room");
    r->tail += n;
}

size_t ring_write(struct ring *r, const void *p, size_t len)
{
    struct iovec iov[2];
    size_t n = MIN(len, ring_room(r)), done = 0;
    int k = spans(r, r->tail, n, iov);
    for (int i = 0; i < k; i++) {
        memcpy(iov[i].iov_base, (const uint8_t *)p + done, iov[i].iov_len);
        done += iov[i].iov_len;
    }
    r->tail += n;
    return n;
}

size_t ring_read(struct ring *r, void *p, size_t cap)
{
    struct iovec iov[2];
    size_t n = MIN(cap, ring_len(r)), done = 0;
    int k = spans(r, r->head, n, iov);
    for (int i = 0; i < k; i++) {
        memcpy((uint8_t *)p + done, iov[i].iov_base, iov[i].iov_len);
        done += iov[i].iov_len;
    }
    r->head += n;
    return n;
}
