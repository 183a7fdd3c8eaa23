/* SPDX-License-Identifier: MIT */
/* Byte ring buffer with a power-of-two capacity, for TCP <-> stream data in the shell. */
#ifndef KTUN_RING_H
#define KTUN_RING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Bytes live at data[head & mask] .. data[(head + len - 1) & mask]; head and tail count bytes
 * ever consumed and produced (they wrap; only their difference matters). */
struct ring {
    uint8_t *data; /* cap bytes, owned */
    size_t mask;   /* cap - 1 */
    size_t head;   /* read position (bytes consumed so far) */
    size_t tail;   /* write position (bytes produced so far) */
};

/* Allocates |cap| bytes (rounded up to a power of two, at least 16). Returns 0 or ERR_NOMEM. */
int ring_init(struct ring *r, size_t cap);

/* Frees the storage; |r| may be zeroed or already released. */
void ring_release(struct ring *r);

/* Capacity, bytes held, and free room. */
static inline size_t ring_cap(const struct ring *r) { return r->mask + 1; }
static inline size_t ring_len(const struct ring *r) { return r->tail - r->head; }
static inline size_t ring_room(const struct ring *r) { return ring_cap(r) - ring_len(r); }

/* Copies up to |len| bytes of |p| in; returns how many fit. */
size_t ring_write(struct ring *r, const void *p, size_t len);

/* Copies up to |cap| bytes out into |p| and consumes them; returns the count. */
size_t ring_read(struct ring *r, void *p, size_t cap);

/* Fills up to two iovecs describing the held bytes (for writev); returns how many (0..2). */
int ring_data_iov(const struct ring *r, struct iovec iov[2]);

/* Fills up to two iovecs describing the free room (for readv); returns how many (0..2). */
int ring_room_iov(const struct ring *r, struct iovec iov[2]);

/* Marks |n| bytes consumed (after writev) / produced (after readv); |n| must fit. */
void ring_consume(struct ring *r, size_t n);
void ring_produce(struct ring *r, size_t n);

#endif
