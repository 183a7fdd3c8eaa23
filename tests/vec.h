/* SPDX-License-Identifier: MIT */
/* Known-answer vector access for tests: JSON files in tests/vectors/ and hex decoding. */
#ifndef KTUN_TESTS_VEC_H
#define KTUN_TESTS_VEC_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* Loads tests/vectors/|name| (or $KTUN_VECTORS/|name|). Returns a tree the caller frees with
 * cJSON_Delete, or NULL after printing why. */
cJSON *vec_load(const char *name);

/* Decodes the hex string |hex| into a new buffer stored in |*out| (caller frees; never NULL on
 * success, even for ""). Returns the byte count, or -1 on a malformed string. */
long vec_hex(const char *hex, uint8_t **out);

/* Hex string of field |key| in |obj| decoded as above; -1 if absent or malformed. */
long vec_hex_field(const cJSON *obj, const char *key, uint8_t **out);

/* Integer field |key| of |obj|, or |dflt| if absent. */
long long vec_int(const cJSON *obj, const char *key, long long dflt);

/* String field |key| of |obj|, or NULL. */
const char *vec_str(const cJSON *obj, const char *key);

#endif
