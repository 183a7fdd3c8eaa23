/* SPDX-License-Identifier: MIT */
/* Shared pieces of the libFuzzer harnesses: the entry points and a reader over the fuzz input. */
#ifndef KTUN_FUZZ_H
#define KTUN_FUZZ_H

/*
 * Every tests/fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize for objects that are costly to create, e.g. the Argon2id-keyed crypt).
 * Built with clang -fsanitize=fuzzer it is a libFuzzer binary (make fuzz); linked with
 * tests/fuzz/replay.c it is a plain program that runs corpus files through the same function
 * (make test, via tests/e2e/test_fuzz_replay.sh).
 *
 * Inputs are read as a script of records; each harness documents its layout. A reader that
 * runs out returns zeros and empty byte ranges, so every input is a valid script.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test was broken: report where and abort (the fuzzer saves
 * the input). */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);   \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

struct fuzz_reader {
    const uint8_t *p;
    size_t left;
};

static inline void fuzz_reader_init(struct fuzz_reader *r, const uint8_t *data, size_t size)
{
    r->p = data;
    r->left = size;
}

static inline size_t fuzz_left(const struct fuzz_reader *r)
{
    return r->left;
}

static inline uint8_t fuzz_u8(struct fuzz_reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

/* Little-endian 16-bit value (missing bytes read as 0). */
static inline uint16_t fuzz_u16(struct fuzz_reader *r)
{
    uint16_t lo = fuzz_u8(r);
    return (uint16_t)(lo | (uint16_t)fuzz_u8(r) << 8);
}

/* Little-endian 32-bit value (missing bytes read as 0). */
static inline uint32_t fuzz_u32(struct fuzz_reader *r)
{
    uint32_t lo = fuzz_u16(r);
    return lo | (uint32_t)fuzz_u16(r) << 16;
}

/* Takes up to |want| bytes: returns where they start and stores the count in |*got|. */
static inline const uint8_t *fuzz_bytes(struct fuzz_reader *r, size_t want, size_t *got)
{
    const uint8_t *p = r->p;
    size_t n = want < r->left ? want : r->left;
    r->p += n;
    r->left -= n;
    *got = n;
    return p;
}

/* Takes a record "len LE16 | len bytes" (shorter at the end of the input). */
static inline const uint8_t *fuzz_record(struct fuzz_reader *r, size_t *got)
{
    size_t want = fuzz_u16(r);
    return fuzz_bytes(r, want, got);
}

#endif
