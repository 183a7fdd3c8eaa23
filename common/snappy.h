/* SPDX-License-Identifier: MIT */
/* Pure core: the snappy block format (github.com/google/snappy format_description.txt), an
 * encoder and a decoder of our own in C, so that the programs need neither libsnappy nor the
 * C++ runtime it brings. The framing around the blocks is common/comp.c's.
 *
 * A block is the uncompressed length as a varint, then elements: literals (tag 00, length in
 * the tag or in 1-4 following bytes) and copies of earlier output (tag 01: length 4-11 and an
 * 11-bit offset; tag 10: length 1-64 and a 16-bit offset; tag 11: a 32-bit offset, decoded
 * but never produced). The encoder finds 4-byte matches through a hash table of positions, per
 * 64 KB fragment, and skips ahead faster the longer it finds none, as snappy does; its output
 * is any valid block, not byte-identical to libsnappy's. */
#ifndef KTUN_SNAPPY_H
#define KTUN_SNAPPY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest block snap_compress writes for |n| input bytes. */
size_t snap_max_compressed_len(size_t n);

/* Compresses |n| bytes of |in| into |out| (room for snap_max_compressed_len(n) bytes).
 * Returns the block length. */
size_t snap_compress(const uint8_t *in, size_t n, uint8_t *out);

/* Reads the uncompressed length from the block's preamble. Returns false for a bad varint
 * (longer than 5 bytes, above 2^32-1, or cut short). */
bool snap_uncompressed_len(const uint8_t *in, size_t n, size_t *out_len);

/* Decodes the block |in| (|n| bytes) into |out| (|cap| bytes). Returns true and sets *out_len
 * when the block is valid and its content fits; false for any malformed block (bad preamble,
 * element cut short, copy before the start of the output, output longer or shorter than the
 * preamble says). Never reads or writes out of bounds. */
bool snap_uncompress(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *out_len);

#endif
