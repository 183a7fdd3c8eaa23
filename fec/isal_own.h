/* SPDX-License-Identifier: MIT */
/* The part of ISA-L's interface ktun uses (CRC-32, CRC-32C and the GF(2^8) erasure-code
 * kernels), in portable C of our own, for builds without libisal (make ISAL=0, the size
 * profile's default): on MIPS and 32-bit ARM ISA-L runs its portable C code anyway, and
 * without it a router keeps no libisal on flash (100 KB and more) nor its 300 KB of mapped
 * pages in memory. On x86-64 ISA-L's SIMD kernels are faster.
 *
 * The functions are compiled in every build under isal_own_* names (tests/unit/ checks them
 * against ISA-L); with KTUN_NO_ISAL this header maps ISA-L's names onto them, so that
 * including it instead of <isa-l/crc.h> and <isa-l/erasure_code.h> is all a caller changes.
 * Same arguments, same results, same 32-byte-per-coefficient table layout. */
#ifndef KTUN_ISAL_OWN_H
#define KTUN_ISAL_OWN_H

#include <stdint.h>

/* CRC-32 (zlib's crc32: reflected, polynomial 0x04c11db7), seed and result inverted inside. */
uint32_t isal_own_crc32_gzip_refl(uint32_t seed, const unsigned char *buf, uint64_t len);
/* CRC-32C (Castagnoli), no inversion of the seed or the result (as ISA-L's crc32_iscsi). */
unsigned int isal_own_crc32_iscsi(unsigned char *buf, int len, unsigned int init_crc);
/* GF(2^8) with polynomial 0x11d. */
unsigned char isal_own_gf_mul(unsigned char a, unsigned char b);
/* Inverts the n x n matrix |in| (destroyed) into |out|; 0, or -1 when singular. */
int isal_own_gf_invert_matrix(unsigned char *in, unsigned char *out, const int n);
/* 32 bytes per coefficient of the rows x k matrix |a|: the products with every low nibble,
 * then with every high nibble. */
void isal_own_ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls);
/* coding[i][b] = sum over j of a[i][j] * data[j][b], for |len| bytes. */
void isal_own_ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
                             unsigned char **data, unsigned char **coding);

#ifdef KTUN_NO_ISAL
#define crc32_gzip_refl isal_own_crc32_gzip_refl
#define crc32_iscsi isal_own_crc32_iscsi
#define gf_mul isal_own_gf_mul
#define gf_invert_matrix isal_own_gf_invert_matrix
#define ec_init_tables isal_own_ec_init_tables
#define ec_encode_data isal_own_ec_encode_data
#endif

#endif
